package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/repl"
)

// Device metadata: the device replica's snapshot, kept in .cradle/ at the top of the storage
// that holds the partnership's device path, named
//
//	<provider>-<key>-<generation>-<writer>.snapshot
//
// where key is derived from the provider and the device path (storage and folder), so that two
// computers with the same partnership find the same snapshots, and generation and writer (the
// handle file that wrote it) make every snapshot's name new: a device without rename (MTP on
// some devices) never needs to replace an object in place. A new snapshot is written before the
// old ones are removed, so an unplug in between leaves at least one.

// metaDir is the hidden folder on the device.
const metaDir = fsstore.MetaDir

// Some devices cannot keep the device metadata: QEMU's usb-mtp, like other devices that hide
// names starting with a dot, accepts .cradle but never shows it (and refuses it as "store full"
// once it exists). The device replica's metadata then stays in this computer's handle file only
// (as for a read-only storage): sessions go on without an error, the manager logs it once, and it
// tries the device again after metaLocalRecheck.
const metaLocalRecheck = 24 * time.Hour

// metaSpareSpace is the free space under which a device that answers "full" is taken at its
// word, rather than as a device that cannot keep the metadata.
const metaSpareSpace = 1 << 20

const snapshotSuffix = ".snapshot"

// devicePathOption is the option that names a partnership's place on the device (files,
// photos, contacts and plugins all call it this).
const devicePathOption = providers.OptDevicePath

// metaLocation returns the storage that holds the partnership's snapshots and the prefix of
// their names.
func metaLocation(ctx context.Context, dev device.Device, p Partnership) (device.StorageID, string, error) {
	var (
		storage device.StorageID
		dir     string
	)
	if spec := p.Options[devicePathOption]; spec != "" {
		s, d, err := providers.ParseDevicePath(ctx, dev, spec)
		if err != nil {
			return 0, "", err
		}
		storage, dir = s, d
	} else {
		st, err := dev.Storages(ctx)
		if err != nil {
			return 0, "", err
		}
		if len(st) == 0 {
			return 0, "", fmt.Errorf("the device reports no storage")
		}
		storage = st[0].ID
	}
	sum := sha256.Sum256([]byte(p.Provider + "\x00" + strconv.FormatUint(uint64(storage), 10) + "\x00" + strings.Trim(dir, "/")))
	return storage, safeProvider(p.Provider) + "-" + hex.EncodeToString(sum[:6]), nil
}

// safeProvider keeps a provider's name usable in a device file name.
func safeProvider(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else if r >= 'A' && r <= 'Z' {
			b.WriteRune(r - 'A' + 'a')
		}
	}
	if b.Len() == 0 {
		return "provider"
	}
	return b.String()
}

// snapshotObject is a snapshot found on the device.
type snapshotObject struct {
	name string
	gen  uint64
}

// listSnapshots lists the partnership's snapshots on the device, newest generation first.
func listSnapshots(ctx context.Context, dev device.Device, storage device.StorageID, prefix string) ([]snapshotObject, error) {
	objs, err := dev.List(ctx, storage, metaDir)
	if errors.Is(err, device.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []snapshotObject
	for _, o := range objs {
		if o.Dir || !strings.HasPrefix(o.Name, prefix+"-") || !strings.HasSuffix(o.Name, snapshotSuffix) {
			continue
		}
		rest := strings.TrimSuffix(strings.TrimPrefix(o.Name, prefix+"-"), snapshotSuffix)
		genStr, _, _ := strings.Cut(rest, "-")
		gen, err := strconv.ParseUint(genStr, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, snapshotObject{name: o.Name, gen: gen})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].gen != out[j].gen {
			return out[i].gen > out[j].gen
		}
		return out[i].name > out[j].name
	})
	return out, nil
}

// importMeta reads the newest usable snapshot of the partnership from the device into the
// handle file's device replica (repl decides whether it is newer than the local copy). A damaged
// snapshot is skipped for the next older one; none at all leaves the local copy (or, on a first
// sync, a careful matching of both sides).
func (m *Manager) importMeta(ctx context.Context, hf *repl.HandleFile, dev device.Device, p Partnership) (bool, error) {
	storage, prefix, err := metaLocation(ctx, dev, p)
	if err != nil {
		return false, err
	}
	snaps, err := listSnapshots(ctx, dev, storage, prefix)
	if err != nil {
		return false, fmt.Errorf("list %s on the device: %w", metaDir, err)
	}
	if len(snaps) > 0 && writtenHere(hf, snaps[0].name) {
		// The newest is this handle file's own: the local copy is at least as new (ImportReplica
		// would say so too, after reading all of it from the device).
		return false, nil
	}
	var bad []error
	for _, s := range snaps {
		rc, err := dev.Open(ctx, storage, path.Join(metaDir, s.name), 0)
		if err != nil {
			if errors.Is(err, device.ErrNotFound) {
				continue
			}
			return false, fmt.Errorf("read %s/%s on the device: %w", metaDir, s.name, err)
		}
		imported, err := hf.ImportReplica(ctx, sideDevice, rc)
		rc.Close()
		if err == nil {
			if len(bad) > 0 {
				m.log.Warn("manager: skipped damaged device metadata", "partnership", p.ID, "err", errors.Join(bad...))
			}
			return imported, nil
		}
		if errors.Is(err, repl.ErrBadSnapshot) {
			bad = append(bad, fmt.Errorf("%s: %w", s.name, err))
			continue
		}
		return false, fmt.Errorf("import %s/%s: %w", metaDir, s.name, err)
	}
	if len(bad) > 0 {
		return false, fmt.Errorf("every snapshot on the device is damaged: %w", errors.Join(bad...))
	}
	return false, nil
}

// writtenHere tells whether the snapshot named name was written by this handle file: its name
// ends with the first 12 hex digits of the writer, which is the device replica's local author.
func writtenHere(hf *repl.HandleFile, name string) bool {
	rest, ok := strings.CutSuffix(name, snapshotSuffix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || len(rest)-i-1 != 12 {
		return false
	}
	replicas, err := hf.Replicas()
	if err != nil {
		return false
	}
	for _, r := range replicas {
		if r.Name == sideDevice && !r.Author.IsZero() {
			return r.Author.String()[:12] == rest[i+1:]
		}
	}
	return false
}

// exportMeta writes the device replica's snapshot to the device when it changed (or when the
// snapshot this computer wrote last is no longer there), then removes the older ones.
func (m *Manager) exportMeta(ctx context.Context, hf *repl.HandleFile, dev device.Device, p Partnership, changed bool) error {
	mark, marked := m.db.exportMark(p.ID)
	if marked && mark.Local && time.Since(mark.Checked) < metaLocalRecheck && !mark.Checked.After(time.Now()) {
		return nil // the device cannot keep it (found recently): the local copy is all there is
	}
	storage, prefix, err := metaLocation(ctx, dev, p)
	if err != nil {
		return err
	}
	var free uint64 = math.MaxUint64
	if st, err := dev.Storages(ctx); err == nil {
		for _, s := range st {
			if s.ID == storage && s.ReadOnly {
				return nil // nothing can be written there; the next session re-detects the device
			}
			if s.ID == storage {
				free = s.Free
			}
		}
	}
	snaps, err := listSnapshots(ctx, dev, storage, prefix)
	if err != nil {
		return fmt.Errorf("list %s on the device: %w", metaDir, err)
	}
	if marked && !mark.Local && !changed && len(snaps) > 0 && snaps[0].name == mark.Object {
		return nil // the newest snapshot on the device is the one written last here: still current
	}
	// The snapshot (about 100 bytes an item) goes to the device from a temporary file next to
	// the handle file: held in memory, with the copies a growing buffer makes, it was the peak of
	// a large first sync (about 30 MB at 100k items), which writes it while the device's objects
	// are all known to the path cache.
	dir := m.stateDir(p.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write the device replica's snapshot: %w", err)
	}
	// One export at a time per partnership: what an earlier one left (a killed process) goes.
	if stale, _ := filepath.Glob(filepath.Join(dir, ".export-*.snapshot")); len(stale) > 0 {
		for _, s := range stale {
			os.Remove(s)
		}
	}
	f, err := os.CreateTemp(dir, ".export-*.snapshot")
	if err != nil {
		return fmt.Errorf("write the device replica's snapshot: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	info, err := hf.ExportReplica(sideDevice, f)
	if errors.Is(err, repl.ErrUnknownReplica) {
		return nil // nothing synced yet
	}
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("write the device replica's snapshot: %w", err)
	}
	// snapshot returns the snapshot from its start, for each attempt to write it.
	snapshot := func() (io.Reader, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("read the device replica's snapshot back: %w", err)
		}
		return f, nil
	}
	w := info.Writer.String()
	if len(w) > 12 {
		w = w[:12]
	}
	name := fmt.Sprintf("%s-%010d-%s%s", prefix, info.Gen, w, snapshotSuffix)
	target := path.Join(metaDir, name)
	local := func(cause error) error {
		return m.keepMetaLocal(ctx, p, mark, marked, free, size, cause)
	}
	if _, err := dev.Mkdir(ctx, storage, metaDir); err != nil {
		return local(fmt.Errorf("create %s on the device: %w", metaDir, err))
	}
	r, err := snapshot()
	if err != nil {
		return err
	}
	_, err = dev.Create(ctx, storage, target, size, time.Now(), r)
	if errors.Is(err, device.ErrExists) {
		// Left by an earlier attempt that was not confirmed: replace it.
		if err := dev.Delete(ctx, storage, target); err != nil {
			return fmt.Errorf("replace %s on the device: %w", target, err)
		}
		if r, err = snapshot(); err != nil {
			return err
		}
		_, err = dev.Create(ctx, storage, target, size, time.Now(), r)
	}
	if err != nil {
		return local(fmt.Errorf("write %s on the device: %w", target, err))
	}
	// What the next session reads must be there: a device may accept the snapshot and not show it.
	shown, err := listSnapshots(ctx, dev, storage, prefix)
	if err != nil {
		return fmt.Errorf("list %s on the device: %w", metaDir, err)
	}
	if !slices.ContainsFunc(shown, func(s snapshotObject) bool { return s.name == name }) {
		if err := dev.Delete(ctx, storage, target); err != nil && !errors.Is(err, device.ErrNotFound) {
			m.log.Debug("manager: remove a snapshot the device does not show", "partnership", p.ID, "err", err)
		}
		return local(fmt.Errorf("the device does not show %s after writing it", target))
	}
	if marked && mark.Local {
		m.log.Info("manager: the device keeps the sync state again", "partnership", p.ID, "device", p.Device)
	}
	if err := hf.ConfirmExport(sideDevice, info); err != nil {
		return err
	}
	if err := m.db.putExportMark(p.ID, exportMark{Object: name}); err != nil {
		m.log.Warn("manager: remember the device metadata", "err", err)
	}
	var errs []error
	for _, s := range snaps {
		if s.name == name {
			continue
		}
		if err := dev.Delete(ctx, storage, path.Join(metaDir, s.name)); err != nil && !errors.Is(err, device.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove older snapshots on the device: %w", errors.Join(errs...))
	}
	return nil
}

// keepMetaLocal decides, after cause made writing the device metadata fail (creating .cradle or
// the snapshot in it, or the snapshot did not show afterwards), whether the device cannot keep it
// rather than failing now: unless the device went away or is busy, ctx ended, or the device is
// full (it answered so with less than size and metaSpareSpace free), it records that the device
// replica's metadata stays on this computer, logs that the first time, and returns nil.
// Otherwise it returns cause.
func (m *Manager) keepMetaLocal(ctx context.Context, p Partnership, mark exportMark, marked bool, free uint64, size int64, cause error) error {
	if ctx.Err() != nil || errors.Is(cause, device.ErrDisconnected) || errors.Is(cause, device.ErrBusy) ||
		(errors.Is(cause, device.ErrNoSpace) && free < uint64(size)+metaSpareSpace) {
		return cause
	}
	if !marked || !mark.Local {
		m.log.Warn("manager: the device cannot keep Cradle's sync state in "+metaDir+"; it is kept on this computer only "+
			"(another computer syncing this device starts by comparing its content)",
			"partnership", p.ID, "device", p.Device, "reason", cause)
	} else {
		m.log.Debug("manager: the device still cannot keep the sync state", "partnership", p.ID, "reason", cause)
	}
	if err := m.db.putExportMark(p.ID, exportMark{Local: true, Checked: time.Now()}); err != nil {
		m.log.Warn("manager: remember that the device keeps no sync state", "err", err)
	}
	return nil
}
