package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// validName tells whether the device accepts name for a new file or folder: what the host file
// system accepts in one path component.
func (e *Emulator) validName(name string) bool {
	if e.opts.FATNames {
		for _, c := range name {
			if c < 0x20 || strings.ContainsRune(`:*?"<>|\\`, c) {
				return false
			}
		}
	}
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		len(name) <= 255 && !strings.HasPrefix(name, partPrefix)
}

// storedName is the name the device stores for name: FAT storage drops trailing dots and spaces,
// as Android does on removable storage.
func (e *Emulator) storedName(name string) string {
	if e.opts.FATNames {
		if s := strings.TrimRight(name, ". "); s != "" {
			return s
		}
	}
	return name
}

// foldedSibling returns the name of an entry of the host folder dir that folds like name and is
// not name, on a device with Options.FoldCase ("" when there is none).
func (e *Emulator) foldedSibling(dir, name string) string {
	if !e.opts.FoldCase {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, de := range ents {
		if n := de.Name(); n != name && strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

func (r *responder) sendObjectInfo(p []uint32) (answer, error) {
	b, err := r.recvBytes(64 << 10)
	if errors.Is(err, errIncomplete) {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	if err != nil {
		return answer{}, err
	}
	e := r.e
	oi := mtp.ObjectInfo{Zone: e.zone()}
	if err := oi.UnmarshalBinary(b); err != nil {
		return fail(mtp.RespInvalidDataset), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	sid := param(p, 0)
	if sid == 0 {
		sid = e.storages[0].id
	}
	st := t.storage(sid)
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	parent := t.folder(st, param(p, 1))
	if parent == nil {
		return fail(mtp.RespInvalidParentObject), nil
	}
	if !e.validName(oi.Filename) {
		return fail(mtp.RespInvalidParameter), nil
	}
	oi.Filename = e.storedName(oi.Filename)
	if parent.children == nil && e.opts.LateObjects <= 0 {
		// (A device that registers objects late does not read the folder for this, as QEMU's
		// does not: what the initiator creates there has no handle until the folder is listed.)
		if err := t.enumerate(parent); err != nil {
			return fail(mtp.RespInvalidParentObject), nil
		}
	}
	target := filepath.Join(t.path(parent), oi.Filename)
	if _, err := os.Lstat(target); err == nil {
		return fail(mtp.RespGeneralError), nil
	}
	if folded := e.foldedSibling(t.path(parent), oi.Filename); folded != "" {
		if oi.ObjectFormat == mtp.FormatAssociation {
			return fail(mtp.RespGeneralError), nil // mkdir: the folder exists
		}
		// The object table matches names exactly, the storage does not: the new file is the
		// existing one, opened with O_TRUNC (Android).
		e.log.Info("emulator: a new file folds like an existing one; it will overwrite it", "name", oi.Filename, "existing", folded)
		oi.Filename = folded
		target = filepath.Join(t.path(parent), folded)
	}
	parentParam := param(p, 1)
	if parent == st.root {
		parentParam = 0xFFFFFFFF
	}
	if oi.ObjectFormat == mtp.FormatAssociation {
		if err := os.Mkdir(target, 0o755); err != nil {
			e.log.Warn("emulator: mkdir failed", "path", target, "err", err)
			return fail(mtp.RespAccessDenied), nil
		}
		if !oi.ModificationDate.IsZero() {
			os.Chtimes(target, oi.ModificationDate, oi.ModificationDate)
		}
		fi, err := os.Lstat(target)
		if err != nil {
			return fail(mtp.RespGeneralError), nil
		}
		t.pending = nil
		guess := t.guess(parent, oi.Filename)
		if t.late(parent, oi.Filename, target) {
			return ok(st.id, parentParam, guess), nil
		}
		o := t.add(parent, oi.Filename, fi)
		o.children = map[string]*object{}
		t.pending = nil
		return ok(st.id, parentParam, o.handle), nil
	}
	size := int64(oi.CompressedSize)
	if oi.CompressedSize == 0xFFFFFFFF {
		size = -1
	}
	free, _, err := diskSpace(st.dir)
	if e.opts.FreeSpaceZero || (err == nil && size > 0 && uint64(size) > free) {
		return fail(mtp.RespStoreFull), nil
	}
	h := t.guess(parent, oi.Filename)
	if e.opts.LateObjects <= 0 && t.visible(oi.Filename) && t.prefixOf(parent, oi.Filename) == nil {
		h = t.newHandle()
	}
	t.pending = &pendingSend{handle: h, parent: parent, name: oi.Filename, size: size, mtime: oi.ModificationDate}
	if e.opts.IgnoreDates {
		t.pending.mtime = time.Time{}
	}
	if e.opts.RegisterAtInfo && t.visible(oi.Filename) {
		// The object exists from now on, empty until SendObject (Android).
		if old := parent.children[oi.Filename]; old != nil {
			t.pending.handle = old.handle
		} else if f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
			if fi, err := os.Lstat(target); err == nil {
				if parent.children == nil {
					parent.children = map[string]*object{}
				}
				o := t.add(parent, oi.Filename, fi)
				t.pending.handle, t.pending.registered = o.handle, true
			}
		}
	}
	return ok(st.id, parentParam, t.pending.handle), nil
}

// zeros is compared with incoming chunks: all-zero chunks are skipped with a seek, so the
// device writes large sparse files without filling the disk.
var zeros = make([]byte, 1<<20)

func (r *responder) sendObject(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	ps := e.tab.pending
	e.tab.pending = nil
	var dir string
	if ps != nil {
		dir = e.tab.path(ps.parent)
	}
	e.mu.Unlock()
	if ps == nil {
		if err := r.discardData(); err != nil && !errors.Is(err, errIncomplete) {
			return answer{}, err
		}
		return fail(mtp.RespNoValidObjectInfo), nil
	}
	var tmp *os.File
	var err error
	if e.opts.InPlace {
		// The file is written under its own name as the data arrives: what a killed transfer
		// leaves is a piece of it there.
		tmp, err = os.OpenFile(filepath.Join(dir, ps.name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	} else {
		tmp, err = r.createPart(dir, ps.handle)
	}
	if err != nil {
		e.log.Warn("emulator: cannot create a file", "dir", dir, "err", err)
		if err := r.discardData(); err != nil && !errors.Is(err, errIncomplete) {
			return answer{}, err
		}
		return fail(mtp.RespAccessDenied), nil
	}
	written, err := r.receiveFile(tmp)
	if err == nil && ps.size >= 0 && written != ps.size {
		err = fmt.Errorf("%w: %d of %d bytes", errIncomplete, written, ps.size)
	}
	keep := err == nil || e.keepingPartial()
	var fi fs.FileInfo
	if keep {
		// The file's date and what the object table records are set through the open file,
		// before it is renamed into place (a rename changes neither).
		fi, err = r.finishFile(tmp, ps, err)
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if keep && fi != nil {
			e.log.Info("emulator: keeping a partial upload", "name", ps.name, "bytes", written)
			r.install(ps, tmp.Name(), fi)
		} else {
			os.Remove(tmp.Name())
			if ps.registered {
				r.unregister(ps) // Android unlinks a file whose transfer failed
			}
		}
		if errors.Is(err, errIncomplete) {
			return fail(mtp.RespIncompleteTransfer), nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fail(mtp.RespStoreFull), nil
		}
		return answer{}, err
	}
	if a := r.install(ps, tmp.Name(), fi); !a.is(mtp.RespOK) {
		os.Remove(tmp.Name())
		return a, nil
	}
	return ok(), nil
}

// createPart creates the temporary file an upload into dir for the object handle h is written
// to, named so that a process killed in the middle leaves a file the next one recognises
// (stalePart). Its name is made from a counter, not random: one openat, no retries.
func (r *responder) createPart(dir string, h uint32) (*os.File, error) {
	prefix := partName(r.e.pid, h)
	for range 3 {
		r.parts++
		name := filepath.Join(dir, prefix+strconv.FormatUint(r.parts, 36))
		f, err := createExcl(name, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return os.CreateTemp(dir, prefix)
}

// finishFile gives a received file the modification date SendObjectInfo announced (FAT keeps
// it to 2 seconds) and returns what the object table records of it. err is the transfer's
// error (a partial upload kept), returned unless the file itself fails.
func (r *responder) finishFile(f *os.File, ps *pendingSend, err error) (fs.FileInfo, error) {
	e := r.e
	if !ps.mtime.IsZero() {
		if e.opts.FATNames {
			ps.mtime = ps.mtime.Truncate(2 * time.Second) // FAT keeps times to 2 seconds
		}
		if terr := setFileTimes(f, ps.mtime); terr != nil {
			e.log.Warn("emulator: cannot keep the modification date", "path", f.Name(), "err", terr)
		}
	}
	fi, serr := f.Stat()
	if serr != nil {
		return nil, serr
	}
	return fi, err
}

// unregister removes the empty object a failed upload had made at SendObjectInfo.
func (r *responder) unregister(ps *pendingSend) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if o := e.tab.byHandle[ps.handle]; o != nil && o.parent == ps.parent && o.name == ps.name {
		if fi, err := os.Lstat(e.tab.path(o)); err == nil && fi.Size() == 0 {
			os.Remove(e.tab.path(o))
		}
		e.tab.remove(o)
	}
}

// receiveFile writes SendObject's data phase to f, sparsely where the data is zeros.
func (r *responder) receiveFile(f *os.File) (int64, error) {
	d, err := r.recvData()
	if err != nil {
		return 0, err
	}
	if r.recvBuf == nil {
		r.recvBuf = make([]byte, 1<<20)
	}
	buf := r.recvBuf
	var written int64
	hole := false // the file ends with a hole: its size must be set
	for {
		n, rerr := io.ReadFull(d, buf)
		if n > 0 {
			chunk := buf[:n]
			hole = bytes.Equal(chunk, zeros[:n])
			if hole {
				_, err = f.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = f.Write(chunk)
			}
			if err != nil {
				return written, err
			}
			written += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return written, rerr
		}
	}
	if hole {
		if err := f.Truncate(written); err != nil {
			return written, err
		}
	}
	return written, d.finish()
}

// install renames an upload into place (its date already set, fi what it is) and gives it the
// handle SendObjectInfo announced; a device that registers objects late (or never, for hidden
// names) leaves that to later.
func (r *responder) install(ps *pendingSend, tmp string, fi fs.FileInfo) answer {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	target := filepath.Join(t.path(ps.parent), ps.name)
	late := t.late(ps.parent, ps.name, target)
	if tmp != target {
		// syscall.Rename, not os.Rename: that looks the target up first (to refuse a folder,
		// which rename(2) refuses too).
		if err := syscall.Rename(tmp, target); err != nil {
			e.log.Warn("emulator: cannot install an upload", "path", target, "err", err)
			return fail(mtp.RespGeneralError)
		}
	}
	if old := ps.parent.children[ps.name]; old != nil {
		t.remove(old)
	}
	if late {
		return ok() // registered later, or never (a hidden name)
	}
	if t.byHandle[ps.handle] != nil {
		ps.handle = t.newHandle() // renumbered meanwhile
	}
	o := &object{handle: ps.handle, st: ps.parent.st, parent: ps.parent, name: ps.name}
	o.record(fi)
	if ps.parent.children == nil {
		ps.parent.children = map[string]*object{}
	}
	ps.parent.children[ps.name] = o
	t.byHandle[o.handle] = o
	return ok()
}
