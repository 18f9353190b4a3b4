package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// DefaultDevicePath is where the contacts file lives on a device unless the partnership says
// otherwise.
const DefaultDevicePath = "Contacts/contacts.vcf"

// maxFileSize bounds the contacts file Cradle reads from a device.
const maxFileSize = 256 << 20

// DeviceFile is the device side of a contacts partnership: one vCard file on the device holding
// many cards (as a phone's contacts app exports and imports it). Each card is an item; its
// handle is its UID, or for a card without UID a derived ID kept stable across edits (see
// identity.go).
//
// Reading downloads the file once and keeps it while the device reports the same size and
// modification time. With DeferUploads (as the provider opens it), the cards written and deleted
// change the file in memory and a journal in the state folder, and Flush uploads it once at the
// end of the session (pending.go). Otherwise every write rewrites the whole file. A rewrite: it uploads the new content beside the old
// one and swaps the two by renaming; on a device that cannot rename it deletes the old file and
// creates the new one. A journal in the state folder records the rewrite, and before a device
// that cannot rename is left without the file the previous content is saved there too, so that an
// unplug at any moment loses nothing: the next session puts the previous file back (from the old
// copy on the device, or from the state folder) if the device was left without one. Cards that did not change are written
// back byte for byte, cards that cannot be parsed are kept verbatim, and changed or new cards are
// written in the version the file already uses (3.0 for a new file).
//
// DeviceFile is safe for use from several goroutines; device operations are serialised.
type DeviceFile struct {
	dev      device.Device
	spec     string // the device-path option, for messages
	stateDir string
	log      Logger

	mu        sync.Mutex
	storage   device.StorageID
	path      string // in the storage; "" until resolved
	ids       *idMap
	loaded    bool
	exists    bool
	stat      device.Object // the file as last read or written
	file      *deviceContent
	noRename  bool // the device refused a rename in this session
	recovered bool // the journal was checked in this session
	// versions keeps the cards the store replaces or deletes, named by nameFor; nil: nowhere.
	versions *versions.Dir
	nameFor  func(uid string) string

	// Deferred uploads (pending.go). base is the file as the device has it; s.file is base with
	// the pending changes applied.
	deferUploads  bool
	base          []byte
	pending       []pendingOp // changes not uploaded yet, in order; the first persisted are in the journal
	persisted     int
	pendingLoaded bool
	clashes       []pendingOp     // pending changes the device's own edits left out
	clashKept     map[string]bool // clashes whose card is in the versions area
}

// deviceContent is the parsed contacts file.
type deviceContent struct {
	data     []byte
	version  string // written for changed and new cards
	segs     []*devSeg
	byHandle map[string]*devSeg
	problems []error
}

// devSeg is one segment of the file with what Cradle made of it.
type devSeg struct {
	segment
	card    *card // nil for text between cards and for malformed cards
	bad     error // a card Cradle cannot read, listed under handle but not replicated
	handle  string
	hash    string
	needUID bool // a card without UID: its handle goes into the file as UID on the next rewrite
	modTime time.Time
}

var (
	_ repl.UnitStore = (*DeviceFile)(nil)
	_ repl.Hasher    = (*DeviceFile)(nil)
	_ repl.Stater    = (*DeviceFile)(nil)
)

// NewDeviceFile returns the store for the contacts file at spec on dev ("PATH" on the first
// storage, or "STORAGE:PATH" where STORAGE is a storage ID or description). stateDir holds the
// ID map and the write journal; "" keeps the ID map in memory and writes without a journal (for
// tests only). log may be nil.
func NewDeviceFile(dev device.Device, spec, stateDir string, log Logger) (*DeviceFile, error) {
	if dev == nil {
		return nil, errors.New("contacts: no device")
	}
	if strings.TrimSpace(spec) == "" {
		spec = DefaultDevicePath
	}
	if log == nil {
		log = defaultLogger
	}
	idPath := ""
	if stateDir != "" {
		idPath = filepath.Join(stateDir, "contact-ids.json")
	}
	ids, err := loadIDMap(idPath)
	if err != nil {
		return nil, err
	}
	return &DeviceFile{dev: dev, spec: spec, stateDir: stateDir, log: log, ids: ids}, nil
}

// Problems returns what the last read of the file skipped: malformed cards and duplicate UIDs,
// each naming the line.
func (s *DeviceFile) Problems() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	return append([]error(nil), s.file.problems...)
}

// where names the file in messages.
func (s *DeviceFile) where() string {
	name := s.dev.Info().Model
	if name == "" {
		name = "the device"
	}
	return fmt.Sprintf("%s on %s", s.spec, name)
}

// resolve finds the storage and path of the file. Called with s.mu held.
func (s *DeviceFile) resolve(ctx context.Context) error {
	if s.path != "" {
		return nil
	}
	storages, err := s.dev.Storages(ctx)
	if err != nil {
		return fmt.Errorf("contacts file %s: list storages: %w", s.where(), devErr(err))
	}
	id, p, err := resolveDevicePath(s.spec, storages)
	if err != nil {
		return err
	}
	s.storage, s.path = id, p
	return nil
}

// resolveDevicePath turns "PATH" or "STORAGE:PATH" into a storage and a clean path.
func resolveDevicePath(spec string, storages []device.Storage) (device.StorageID, string, error) {
	if len(storages) == 0 {
		return 0, "", fmt.Errorf("contacts file %s: the device has no storage (is it unlocked and in file-transfer mode?): %w", spec, repl.ErrGone)
	}
	st, p := storages[0], spec
	if name, rest, ok := strings.Cut(spec, ":"); ok {
		p = rest
		found := false
		for _, s := range storages {
			if storageMatches(s, name) {
				st, found = s, true
				break
			}
		}
		if !found {
			var names []string
			for _, s := range storages {
				names = append(names, fmt.Sprintf("%q (id %d)", s.Description, s.ID))
			}
			return 0, "", fmt.Errorf("device path %s: the device has no storage %q; its storages are %s", spec, name, strings.Join(names, ", "))
		}
	}
	clean, err := device.CheckPath(p)
	if err != nil || clean == "" {
		return 0, "", fmt.Errorf("device path %s: not a usable file path (want e.g. %s): %w", spec, DefaultDevicePath, repl.ErrInvalidName)
	}
	return st.ID, clean, nil
}

func storageMatches(s device.Storage, name string) bool {
	name = strings.TrimSpace(name)
	if strings.EqualFold(s.Description, name) {
		return true
	}
	if n, err := strconv.ParseUint(name, 0, 32); err == nil {
		return device.StorageID(n) == s.ID
	}
	return false
}

// devErr maps device errors to the repl sentinels the engine understands.
func devErr(err error) error {
	switch {
	case errors.Is(err, device.ErrNotFound):
		return repl.Classify(err, repl.ErrNotFound)
	case errors.Is(err, device.ErrDisconnected):
		return repl.Classify(err, repl.ErrGone)
	case errors.Is(err, device.ErrNoSpace):
		return repl.Classify(err, repl.ErrNoSpace)
	case errors.Is(err, device.ErrReadOnly):
		return repl.Classify(err, repl.ErrReadOnly)
	case errors.Is(err, device.ErrPermission), errors.Is(err, device.ErrLocked):
		return repl.Classify(err, repl.ErrPermission)
	case errors.Is(err, device.ErrExists):
		return repl.Classify(err, repl.ErrExists)
	}
	return err
}

// ensure makes s.file the file as the device has it now: it finishes an interrupted write
// first, then downloads the file unless size and modification time are those already read.
// Called with s.mu held.
func (s *DeviceFile) ensure(ctx context.Context) error {
	if err := s.resolve(ctx); err != nil {
		return err
	}
	if !s.recovered {
		if err := s.recover(ctx); err != nil {
			return err
		}
		s.recovered = true
	}
	if err := s.loadPending(); err != nil {
		return err
	}
	obj, err := s.dev.Stat(ctx, s.storage, s.path)
	switch {
	case errors.Is(err, device.ErrNotFound):
		if !s.loaded || s.exists {
			s.exists, s.loaded, s.stat = false, true, device.Object{}
			s.setBase(nil, time.Time{})
		}
		return nil
	case err != nil:
		return fmt.Errorf("contacts file %s: %w", s.where(), devErr(err))
	case obj.Dir:
		return fmt.Errorf("contacts file %s is a folder; choose the path of a .vcf file: %w", s.where(), repl.ErrInvalidName)
	case obj.Size > maxFileSize:
		return fmt.Errorf("contacts file %s is %d MiB, too large for a contacts file", s.where(), obj.Size>>20)
	}
	if s.loaded && s.exists && obj.Size == s.stat.Size && obj.ModTime.Equal(s.stat.ModTime) {
		return nil
	}
	data, err := s.download(ctx)
	if err != nil {
		return err
	}
	s.exists, s.loaded, s.stat = true, true, obj
	s.setBase(data, obj.ModTime)
	return s.ids.save()
}

// setBase makes data the file as the device has it, and s.file that file with the changes not
// uploaded yet. Called with s.mu held.
func (s *DeviceFile) setBase(data []byte, mtime time.Time) {
	s.base = data
	s.setContent(data, mtime)
	s.replay()
}

func (s *DeviceFile) download(ctx context.Context) ([]byte, error) {
	rc, err := s.dev.Open(ctx, s.storage, s.path, 0)
	if err != nil {
		return nil, fmt.Errorf("read contacts file %s: %w", s.where(), devErr(err))
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read contacts file %s: %w", s.where(), devErr(err))
	}
	return data, nil
}

// setContent parses data into s.file, assigns IDs to cards without UID and logs problems that are
// new. Called with s.mu held.
func (s *DeviceFile) setContent(data []byte, mtime time.Time) {
	old := s.file
	// Cards whose bytes did not change are not parsed again (a rewrite changes one card).
	known := map[string]*devSeg{}
	if old != nil {
		for _, d := range old.segs {
			if d.card != nil {
				known[string(d.raw)] = d
			}
		}
	}
	f := &deviceContent{data: data, byHandle: map[string]*devSeg{}}
	taken := map[string]bool{}
	var noUID, malformed []*devSeg
	for _, seg := range splitFile(data) {
		d := &devSeg{segment: seg}
		f.segs = append(f.segs, d)
		if !seg.card {
			if !blank(seg.raw) {
				f.problems = append(f.problems, fmt.Errorf("contacts file %s: line %d: text outside any card; kept as it is", s.where(), seg.line))
			}
			continue
		}
		var c *card
		var err error
		if k, ok := known[string(seg.raw)]; ok {
			c, d.hash = k.card, k.hash
		} else if c, err = parseCard(seg.raw, seg.line); err == nil {
			d.hash = unitsHash(c.units())
		}
		if err != nil {
			d.bad = fmt.Errorf("contacts file %s: %w; the card is kept in the file as it is and not synced", s.where(), err)
			f.problems = append(f.problems, d.bad)
			malformed = append(malformed, d)
			continue
		}
		if f.version == "" && c.version != "" {
			f.version = c.version
		}
		d.card = c
		d.modTime = mtime
		if rev, ok := parseREV(c.fields.Value("REV")); ok {
			d.modTime = rev
		}
		if uid := c.uid(); uid != "" {
			if _, dup := f.byHandle[uid]; dup || taken[uid] {
				f.problems = append(f.problems, fmt.Errorf("contacts file %s: line %d: UID %q appears twice; this card is kept in the file as it is and not synced", s.where(), seg.line, uid))
				d.card = nil
				continue
			}
			d.handle = uid
			taken[uid] = true
			f.byHandle[uid] = d
			continue
		}
		noUID = append(noUID, d)
	}
	cards := make([]*card, len(noUID))
	for i, d := range noUID {
		cards[i] = d.card
	}
	keep := map[string]bool{}
	for i, id := range s.ids.assign(cards, taken) {
		noUID[i].handle, noUID[i].needUID = id, true
		f.byHandle[id] = noUID[i]
		keep[id] = true
	}
	// A card Cradle cannot read is held under the UID a lenient scan finds in it: the engine
	// then neither syncs nor deletes it. When such a card has no UID, it may be one of the cards
	// known by a derived ID: every such ID not accounted for is held too.
	unresolved := 0
	for _, d := range malformed {
		uid := lenientUID(d.raw)
		if uid == "" {
			unresolved++
			continue
		}
		if !taken[uid] {
			d.handle = uid
			taken[uid] = true
			f.byHandle[uid] = d
		}
	}
	if unresolved > 0 {
		for id := range s.ids.entries {
			if !keep[id] && !taken[id] {
				keep[id] = true
				f.byHandle[id] = &devSeg{handle: id, modTime: mtime,
					bad: fmt.Errorf("contacts file %s: %d card(s) cannot be read, and contact %s may be one of them; it is left alone until they are fixed", s.where(), unresolved, id)}
			}
		}
	}
	for id := range taken {
		if strings.HasPrefix(id, idPrefix) {
			keep[id] = true // a derived ID written into the file earlier
		}
	}
	s.ids.forget(keep)
	switch f.version {
	case v21, v30, v40:
	case "":
		f.version = v30
	default:
		if strings.HasPrefix(f.version, "2") {
			f.version = v21
		} else if strings.HasPrefix(f.version, "4") {
			f.version = v40
		} else {
			f.version = v30
		}
	}
	reported := map[string]bool{}
	if old != nil {
		for _, p := range old.problems {
			reported[p.Error()] = true
		}
	}
	for _, p := range f.problems {
		if !reported[p.Error()] {
			s.log("%v", p)
		}
	}
	s.file = f
}

// parseREV reads a REV timestamp in the forms writers use (basic and extended ISO 8601, with
// or without a zone, or a date alone).
func parseREV(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"20060102T150405Z", "2006-01-02T15:04:05Z07:00", "20060102T150405-0700",
		"2006-01-02T15:04:05", "20060102T150405", "2006-01-02", "20060102"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (d *devSeg) entry() repl.Entry {
	if d.bad != nil {
		return repl.Entry{Handle: d.handle, Kind: repl.KindFile, Size: int64(len(d.raw)), ModTime: d.modTime, Hash: heldHash}
	}
	return repl.Entry{Handle: d.handle, Kind: repl.KindFile, Size: int64(len(d.raw)), ModTime: d.modTime, Hash: d.hash}
}

// unreadable is the error for an operation on a held card.
func (d *devSeg) unreadable(op string) error {
	return fmt.Errorf("%s contact %s: %v; fix or remove the card on the device: %w", op, d.handle, d.bad, repl.ErrChanged)
}

// Enumerate lists the cards of the contacts file (none when the device has no such file yet).
func (s *DeviceFile) Enumerate(ctx context.Context) (repl.Iterator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	entries := make([]repl.Entry, 0, len(s.file.byHandle))
	for _, d := range s.file.byHandle {
		entries = append(entries, d.entry())
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Handle < entries[j].Handle })
	return &sliceIter{entries: entries}, nil
}

// lookup returns the card with handle in the file as the device has it now. Called with s.mu
// held.
func (s *DeviceFile) lookup(ctx context.Context, handle string) (*devSeg, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	d, ok := s.file.byHandle[handle]
	if !ok {
		return nil, fmt.Errorf("contact %q in %s: %w", handle, s.where(), repl.ErrNotFound)
	}
	return d, nil
}

// IsItemChanged compares content hashes.
func (s *DeviceFile) IsItemChanged(ctx context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated is true for every card the store lists, except those it cannot read.
func (s *DeviceFile) IsItemReplicated(e repl.Entry) bool {
	return e.Kind == repl.KindFile && e.Hash != heldHash
}

// NaturalKey is the card's UID, or for a card without one its derived key, which a desktop card
// without UID and the same name and phone has too.
func (s *DeviceFile) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, e.Handle)
	if err != nil {
		return "", err
	}
	if d.needUID && d.bad == nil {
		return fingerprintOf(d.card).Key, nil
	}
	return d.handle, nil
}

// Hash returns the card's units hash.
func (s *DeviceFile) Hash(ctx context.Context, handle string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, handle)
	if err != nil {
		return "", err
	}
	if d.bad != nil {
		return "", d.unreadable("hash")
	}
	return d.hash, nil
}

// Open returns the card as the file has it.
func (s *DeviceFile) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, handle)
	if err != nil {
		return nil, err
	}
	if d.raw == nil {
		return nil, d.unreadable("open")
	}
	return io.NopCloser(bytes.NewReader(d.raw)), nil
}

// ReadUnits returns the card's change units.
func (s *DeviceFile) ReadUnits(ctx context.Context, handle string) (repl.Units, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, handle)
	if err != nil {
		return nil, err
	}
	if d.bad != nil {
		return nil, d.unreadable("read")
	}
	return d.card.units(), nil
}

// Write creates or updates a card from a vCard (any version) in req.Data. A card that already
// is in the file's version with the right UID goes into the file byte for byte; any other is
// written in the file's version.
func (s *DeviceFile) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle == "" {
		if err := checkUID(req.Name); err != nil {
			return repl.Entry{}, fmt.Errorf("create contact: %w", err)
		}
	}
	in, err := readIncoming(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	return s.write(ctx, req, in)
}

// WriteUnits creates or updates a card from its complete set of units.
func (s *DeviceFile) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	if req.Handle == "" {
		if err := checkUID(req.Name); err != nil {
			return repl.Entry{}, fmt.Errorf("create contact: %w", err)
		}
	}
	c, err := cardFromUnits(units)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	return s.write(ctx, req, incoming{card: c})
}

// write creates or updates a card and rewrites the file. An update keeps the card's UID (or
// derived ID, which it writes in as UID) and PRODID and refuses with repl.ErrChanged when the card
// changed on the device since the engine recorded req.Expected; req.Name is only used to create
// (it becomes the UID).
func (s *DeviceFile) write(ctx context.Context, req repl.WriteRequest, in incoming) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensure(ctx); err != nil {
		return repl.Entry{}, err
	}
	var target *devSeg
	var prev *card
	uid := req.Name
	if req.Handle != "" {
		d, ok := s.file.byHandle[req.Handle]
		if !ok {
			return repl.Entry{}, fmt.Errorf("update contact %q in %s: %w", req.Handle, s.where(), repl.ErrNotFound)
		}
		if d.bad != nil {
			return repl.Entry{}, d.unreadable("update")
		}
		if req.Expected != nil && changedSince(d.entry(), *req.Expected) {
			return repl.Entry{}, fmt.Errorf("update contact %q in %s: %w", req.Handle, s.where(), repl.ErrChanged)
		}
		target, uid, prev = d, d.handle, d.card
		if err := s.keep(ctx, d, req.Cause); err != nil {
			return repl.Entry{}, err
		}
	} else if _, ok := s.file.byHandle[uid]; ok {
		return repl.Entry{}, fmt.Errorf("create contact %q in %s: %w", uid, s.where(), repl.ErrExists)
	}
	raw := in.build(uid, s.file.version, func(v string) bool { return major(v) == major(s.file.version) }, prev, req)
	if s.deferUploads {
		d, err := s.deferWrite(target, uid, raw)
		if err != nil {
			return repl.Entry{}, fmt.Errorf("write contact %q in %s: %w", uid, s.where(), err)
		}
		return d.entry(), nil
	}
	pieces := make([]piece, 0, len(s.file.segs)+1)
	for _, d := range s.file.segs {
		if d == target {
			pieces = append(pieces, piece{raw: raw})
			continue
		}
		pieces = append(pieces, d.piece())
	}
	if target == nil {
		pieces = append(pieces, piece{raw: raw})
	}
	if err := s.rewrite(ctx, pieces); err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %q: %w", uid, err)
	}
	d, ok := s.file.byHandle[uid]
	if !ok {
		return repl.Entry{}, fmt.Errorf("write contact %q in %s: the card written cannot be read back", uid, s.where())
	}
	return d.entry(), nil
}

// Stat returns the card at handle as Enumerate reports it.
func (s *DeviceFile) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, handle)
	if err != nil {
		return repl.Entry{}, err
	}
	return d.entry(), nil
}

// Delete removes the card from the file and rewrites it; repl.ErrChanged when the card changed on
// the device since the engine recorded expected.
func (s *DeviceFile) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.DeleteFor(ctx, handle, expected, repl.CauseNone)
}

// DeleteFor is Delete, told why (repl.CauseDeleter): with KeepVersions, the card is kept first.
func (s *DeviceFile) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookup(ctx, handle)
	if err != nil {
		return fmt.Errorf("delete contact: %w", err)
	}
	if d.bad != nil {
		return d.unreadable("delete")
	}
	if changedSince(d.entry(), expected) {
		return fmt.Errorf("delete contact %q in %s: %w", handle, s.where(), repl.ErrChanged)
	}
	if err := s.keep(ctx, d, cause); err != nil {
		return err
	}
	if s.deferUploads {
		s.deferDelete(d)
		return nil
	}
	pieces := make([]piece, 0, len(s.file.segs))
	for _, x := range s.file.segs {
		if x != d {
			pieces = append(pieces, x.piece())
		}
	}
	if err := s.rewrite(ctx, pieces); err != nil {
		return fmt.Errorf("delete contact %q: %w", handle, err)
	}
	return nil
}
