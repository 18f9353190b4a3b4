package fsstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// WritesAtomic reports whether the device can rename, which makes updates atomic (repl.Atomicity).
// The first call may probe the device (see canRename).
func (s *DeviceStore) WritesAtomic() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok, err := s.canRename(ctx)
	return err == nil && ok
}

// canRename tells whether the device renames objects, finding out once. A device that cannot
// says so when asked to rename an object that does not exist (device/mtp checks what the device
// offers first), which leaves nothing on it. One that may be able to is probed: an empty
// temporary object is created, renamed and deleted. A probe that fails for any reason but an
// unplug or the end of ctx counts as "cannot rename" (updates are then made without a swap,
// which is safe) and is not tried again, so that a device which does not show what is created
// (QEMU hides names starting with a dot) does not collect a probe object at every write.
func (s *DeviceStore) canRename(ctx context.Context) (bool, error) {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probed {
		return s.renameOK, nil
	}
	if s.dev.Info().Transport == "folder" {
		s.probed, s.renameOK = true, true
		return true, nil
	}
	a := s.full(TempPrefix + "probe-" + rand.Text()[:12])
	b := s.full(TempPrefix + "probe-" + rand.Text()[:12])
	err := s.dev.Rename(ctx, s.storage, a, b)
	switch {
	case errors.Is(err, device.ErrUnsupported):
		s.probed, s.renameOK = true, false
		return false, nil
	case err != nil && !errors.Is(err, device.ErrNotFound):
		if transient(ctx, err) {
			return false, fmt.Errorf("check whether the device can rename: %w", providers.MapDeviceError(err))
		}
		s.logf("files: the device's answer to a rename is unclear; updating without renames: %v", err)
		s.probed, s.renameOK = true, false
		return false, nil
	}
	if s.base != "" {
		if _, err := s.dev.Mkdir(ctx, s.storage, s.base); err != nil {
			return false, fmt.Errorf("create %s on the device: %w", s.describeBase(), providers.MapDeviceError(err))
		}
	}
	if _, err := s.dev.Create(ctx, s.storage, a, 0, time.Now(), strings.NewReader("")); err != nil {
		s.removeProbe(a)
		if transient(ctx, err) {
			return false, fmt.Errorf("check whether the device can rename: %w", providers.MapDeviceError(err))
		}
		s.logf("files: could not create an object to check whether the device can rename; updating without renames: %v", err)
		s.probed, s.renameOK = true, false
		return false, nil
	}
	err = s.dev.Rename(ctx, s.storage, a, b)
	left := a
	if err == nil {
		left = b
	}
	s.removeProbe(left)
	switch {
	case err == nil:
		s.probed, s.renameOK = true, true
	case transient(ctx, err):
		return false, fmt.Errorf("check whether the device can rename: %w", providers.MapDeviceError(err))
	default:
		if !errors.Is(err, device.ErrUnsupported) {
			s.logf("files: the device could not rename a new object; updating without renames: %v", err)
		}
		s.probed, s.renameOK = true, false
	}
	return s.renameOK, nil
}

// removeProbe deletes the rename probe at p, if the device shows it. It has its own time limit:
// the probe goes even when the caller's ctx ended.
func (s *DeviceStore) removeProbe(p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.dev.Delete(ctx, s.storage, p); err != nil && !errors.Is(err, device.ErrNotFound) {
		s.logf("files: could not remove the probe %s from the device: %v", p, err)
	}
}

// transient tells whether err may not happen again: the device went away, or ctx ended.
func transient(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, device.ErrDisconnected) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, device.ErrBusy)
}

// current returns the item at handle: the device's object, or a kept item (KeepDeleted), and
// whether it is only kept.
func (s *DeviceStore) current(ctx context.Context, handle string) (repl.Entry, bool, error) {
	o, err := s.statFresh(ctx, s.full(handle))
	if err == nil {
		return entryOfObject(handle, o), false, nil
	}
	if errors.Is(err, device.ErrNotFound) && s.seen != nil {
		if st, ok := s.seen.Get(handle); ok {
			return entryOfStamp(handle, st), true, nil
		}
	}
	return repl.Entry{}, false, fmt.Errorf("%s on the device: %w", s.full(handle), providers.MapDeviceError(err))
}

// Write creates, updates, renames or moves an item on the device (see DeviceStore).
func (s *DeviceStore) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := repl.CheckName(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	name := req.Name
	if err := checkHandle(name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	if req.Handle != "" {
		if err := checkHandle(req.Handle); err != nil {
			return repl.Entry{}, fmt.Errorf("write: %w", err)
		}
	}
	var (
		e   repl.Entry
		err error
	)
	if req.Kind == repl.KindFolder {
		e, err = s.writeFolder(ctx, req, name)
	} else {
		e, err = s.writeFile(ctx, req, name)
	}
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %s on the device: %w", s.full(name), err)
	}
	if s.seen != nil {
		if req.Handle != "" && req.Handle != name {
			if err := s.seen.Remove(req.Handle); err != nil {
				return repl.Entry{}, err
			}
		}
		if err := s.seen.Add(name, e.Stamp()); err != nil {
			return repl.Entry{}, err
		}
	}
	return e, nil
}

// moveFile renames or moves the file old (a device path) to the handle name with the device's
// own rename (MoveObject, SetObjectPropValue), ok false when the device cannot (then the caller
// copies, as it does when the new name's folder is not there).
func (s *DeviceStore) moveFile(ctx context.Context, old, name string) (repl.Entry, bool, error) {
	can, err := s.canRename(ctx)
	if err != nil || !can {
		return repl.Entry{}, false, err
	}
	err = s.dev.Rename(ctx, s.storage, old, s.full(name))
	if errors.Is(err, device.ErrUnsupported) || errors.Is(err, device.ErrNotFound) {
		return repl.Entry{}, false, nil
	}
	if err != nil {
		return repl.Entry{}, false, providers.MapDeviceError(err)
	}
	e, err := s.stat(ctx, name)
	return e, err == nil, err
}

// checkExpected returns the current item at req.Handle after checking it against req.Expected.
func (s *DeviceStore) checkExpected(ctx context.Context, req repl.WriteRequest) (repl.Entry, bool, error) {
	cur, kept, err := s.current(ctx, req.Handle)
	if err != nil {
		return repl.Entry{}, false, err
	}
	if req.Expected != nil && repl.StampChanged(*req.Expected, cur) {
		return repl.Entry{}, false, fmt.Errorf("%s was modified on the device since it was last seen: %w",
			s.full(req.Handle), repl.ErrChanged)
	}
	return cur, kept, nil
}

func (s *DeviceStore) exists(ctx context.Context, p string) (bool, error) {
	_, err := s.dev.Stat(ctx, s.storage, p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, device.ErrNotFound) {
		return false, nil
	}
	return false, providers.MapDeviceError(err)
}

func (s *DeviceStore) writeFolder(ctx context.Context, req repl.WriteRequest, name string) (repl.Entry, error) {
	target := s.full(name)
	if req.Handle == "" {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		return s.mkdir(ctx, name)
	}
	cur, kept, err := s.checkExpected(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	if req.Handle != name {
		if strings.HasPrefix(name, req.Handle+"/") {
			return repl.Entry{}, fmt.Errorf("cannot move a folder into itself: %w", repl.ErrInvalidName)
		}
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		if kept {
			return s.mkdir(ctx, name)
		}
		if err := s.move(ctx, req.Handle, name, cur.Kind == repl.KindFolder); err != nil {
			return repl.Entry{}, err
		}
		return s.stat(ctx, name)
	}
	if cur.Kind == repl.KindFile && !kept {
		if moved, err := s.keep(ctx, req.Handle, cur, req.Cause); err != nil {
			return repl.Entry{}, err
		} else if !moved {
			if err := s.dev.Delete(ctx, s.storage, target); err != nil {
				return repl.Entry{}, providers.MapDeviceError(err)
			}
		}
	}
	return s.mkdir(ctx, name)
}

func (s *DeviceStore) mkdir(ctx context.Context, name string) (repl.Entry, error) {
	o, err := s.dev.Mkdir(ctx, s.storage, s.full(name))
	if err != nil {
		return repl.Entry{}, providers.MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

func (s *DeviceStore) stat(ctx context.Context, name string) (repl.Entry, error) {
	o, err := s.dev.Stat(ctx, s.storage, s.full(name))
	if err != nil {
		return repl.Entry{}, providers.MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

// move renames an object, or, where the device cannot rename, copies it (a folder with its whole
// tree) through the computer and deletes the original.
func (s *DeviceStore) move(ctx context.Context, from, to string, folder bool) error {
	ok, err := s.canRename(ctx)
	if err != nil {
		return err
	}
	if ok {
		err := s.dev.Rename(ctx, s.storage, s.full(from), s.full(to))
		if err == nil {
			return nil
		}
		if !errors.Is(err, device.ErrUnsupported) {
			return providers.MapDeviceError(err)
		}
		// Some devices rename in place but cannot move between folders: copy.
	}
	if !folder {
		return s.copyDelete(ctx, s.full(from), s.full(to))
	}
	var objs []device.Object
	err = s.dev.Walk(ctx, s.storage, s.full(from), func(o device.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return providers.MapDeviceError(err)
	}
	if _, err := s.dev.Mkdir(ctx, s.storage, s.full(to)); err != nil {
		return providers.MapDeviceError(err)
	}
	for _, o := range objs {
		dst := s.full(to) + o.Path[len(s.full(from)):]
		if o.Dir {
			if _, err := s.dev.Mkdir(ctx, s.storage, dst); err != nil {
				return providers.MapDeviceError(err)
			}
			continue
		}
		if err := s.copyDelete(ctx, o.Path, dst); err != nil {
			return err
		}
	}
	for i := len(objs) - 1; i >= 0; i-- {
		if objs[i].Dir {
			if err := s.dev.Delete(ctx, s.storage, objs[i].Path); err != nil && !errors.Is(err, device.ErrNotFound) {
				return providers.MapDeviceError(err)
			}
		}
	}
	if err := s.dev.Delete(ctx, s.storage, s.full(from)); err != nil && !errors.Is(err, device.ErrNotFound) {
		return providers.MapDeviceError(err)
	}
	return nil
}

// copyDelete copies one object through the computer, then deletes the original.
func (s *DeviceStore) copyDelete(ctx context.Context, from, to string) error {
	o, err := s.dev.Stat(ctx, s.storage, from)
	if err != nil {
		return providers.MapDeviceError(err)
	}
	rc, err := s.dev.Open(ctx, s.storage, from, 0)
	if err != nil {
		return providers.MapDeviceError(err)
	}
	// Read it all first: MTP does one operation at a time, so a copy that read the object
	// while sending it to the same device waited for itself for ever.
	tmp, err := os.CreateTemp("", "cradle-copy-")
	if err != nil {
		rc.Close()
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	_, err = io.Copy(tmp, fsutil.ContextReader(ctx, rc))
	rc.Close()
	if err != nil {
		return providers.MapDeviceError(err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err = s.dev.Create(ctx, s.storage, to, o.Size, o.ModTime, tmp); err != nil {
		return providers.MapDeviceError(err)
	}
	if err := s.dev.Delete(ctx, s.storage, from); err != nil {
		return providers.MapDeviceError(err)
	}
	return nil
}

func (s *DeviceStore) writeFile(ctx context.Context, req repl.WriteRequest, name string) (repl.Entry, error) {
	target := s.full(name)
	data, size, cleanup, err := sized(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	defer cleanup()

	if req.Handle == "" {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		return s.create(ctx, name, size, req.ModTime, data)
	}

	cur, kept, err := s.checkExpected(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	old := s.full(req.Handle)
	if cur.Kind == repl.KindFolder && !kept {
		// A folder becomes a file: only an empty one may go.
		if err := s.dev.Delete(ctx, s.storage, old); err != nil {
			return repl.Entry{}, providers.MapDeviceError(err)
		}
		kept = true // nothing of the old item is left
	}
	if req.Handle != name {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		if req.SameContent && !kept && cur.Kind == repl.KindFile {
			// A rename of the same content: moved on the device, nothing sent, where it can.
			if e, ok, err := s.moveFile(ctx, old, name); err != nil || ok {
				return e, err
			}
		}
		// Create the new name first, then remove the old one: an interruption leaves both,
		// never neither.
		e, err := s.create(ctx, name, size, req.ModTime, data)
		if err != nil {
			return repl.Entry{}, err
		}
		if !kept {
			moved, err := s.keep(ctx, req.Handle, cur, req.Cause)
			if err != nil {
				return repl.Entry{}, err
			}
			if !moved {
				if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
					return repl.Entry{}, fmt.Errorf("remove the old name %s: %w", old, providers.MapDeviceError(err))
				}
			}
		}
		return e, nil
	}
	if kept {
		return s.create(ctx, name, size, req.ModTime, data)
	}

	canRename, err := s.canRename(ctx)
	if err != nil {
		return repl.Entry{}, err
	}
	if !canRename {
		// Not atomic (the engine knows: WritesAtomic is false and it keeps an intent). The old
		// content is kept (on this computer: the device cannot rename) before it goes.
		if moved, err := s.keep(ctx, req.Handle, cur, req.Cause); err != nil {
			return repl.Entry{}, err
		} else if !moved {
			if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
				return repl.Entry{}, providers.MapDeviceError(err)
			}
		}
		return s.create(ctx, name, size, req.ModTime, data)
	}

	tmpName := parentOf(name)
	if tmpName != "" {
		tmpName += "/"
	}
	tmpName += TempPrefix + rand.Text()[:16]
	tmp := s.full(tmpName)
	// Journaled before the upload begins: a device pulled out at any point from here on leaves
	// no upload behind that the next session does not finish or remove (recover).
	sw := swap{Tmp: tmp, Final: old, Size: size, Sized: true}
	if err := s.journal.add(sw); err != nil {
		return repl.Entry{}, err
	}
	committed := false
	defer func() {
		if !committed {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := s.dev.Delete(dctx, s.storage, tmp)
			cancel()
			if err == nil || errors.Is(err, device.ErrNotFound) {
				_ = s.journal.done(sw) // else the next session removes it
			}
		}
	}()
	if _, err := s.dev.Create(ctx, s.storage, tmp, size, req.ModTime, data); err != nil {
		return repl.Entry{}, providers.MapDeviceError(err)
	}
	// The last look before the swap: the user may have changed the file meanwhile.
	if _, _, err := s.checkExpected(ctx, req); err != nil {
		return repl.Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	// The old content leaves its place: into the versions area on the device (a rename), or,
	// copied to this computer first, deleted. The journal finishes the swap if the session dies
	// from here on.
	if moved, err := s.keep(ctx, req.Handle, cur, req.Cause); err != nil {
		return repl.Entry{}, err
	} else if !moved {
		if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
			return repl.Entry{}, providers.MapDeviceError(err)
		}
	}
	committed = true // from here on the upload is the item: never delete it
	if err := s.dev.Rename(ctx, s.storage, tmp, old); err != nil {
		return repl.Entry{}, fmt.Errorf("put the new content in place (it is kept as %s and moved "+
			"into place at the next sync): %w", tmp, providers.MapDeviceError(err))
	}
	if err := s.journal.done(sw); err != nil {
		return repl.Entry{}, err
	}
	return s.stat(ctx, name)
}

func (s *DeviceStore) create(ctx context.Context, name string, size int64, mt time.Time, data io.Reader) (repl.Entry, error) {
	o, err := s.dev.Create(ctx, s.storage, s.full(name), size, mt, data)
	if err != nil {
		if ctx.Err() != nil {
			return repl.Entry{}, ctx.Err()
		}
		return repl.Entry{}, providers.MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

// sized returns the request's content with its size known: a device must be told the size
// before the data (MTP's SendObjectInfo). Content of unknown size is spooled to a temporary file.
func sized(ctx context.Context, req repl.WriteRequest) (io.Reader, int64, func(), error) {
	data := req.Data
	if data == nil {
		data = eofReader{}
	}
	data = fsutil.ContextReader(ctx, data)
	if req.Size >= 0 {
		return data, req.Size, func() {}, nil
	}
	f, err := os.CreateTemp("", "cradle-upload-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, data)
	if err != nil {
		cleanup()
		if ctx.Err() != nil {
			return nil, 0, nil, ctx.Err()
		}
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", providers.MapFSError(err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", err)
	}
	return fsutil.ContextReader(ctx, f), n, cleanup, nil
}

// Delete removes an item from the device if it still matches expected; a folder must be empty.
// With KeepDeleted, a kept item (already gone from the device) is simply forgotten.
func (s *DeviceStore) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.DeleteFor(ctx, handle, expected, repl.CauseNone)
}

// DeleteFor is Delete, told why (repl.CauseDeleter): a file deleted for a cause is kept as a
// version first (see DeviceOptions.KeepOnDevice and Versions).
func (s *DeviceStore) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHandle(handle); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	cur, kept, err := s.current(ctx, handle)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if repl.StampChanged(expected, cur) {
		return fmt.Errorf("delete %s: modified on the device since it was last seen: %w", s.full(handle), repl.ErrChanged)
	}
	if !kept {
		moved, err := s.keep(ctx, handle, cur, cause)
		if err != nil {
			return fmt.Errorf("delete %s on the device: %w", s.full(handle), err)
		}
		if !moved {
			if err := s.dev.Delete(ctx, s.storage, s.full(handle)); err != nil {
				return fmt.Errorf("delete %s on the device: %w", s.full(handle), providers.MapDeviceError(err))
			}
		}
	}
	if s.seen != nil {
		return s.seen.Remove(handle)
	}
	return nil
}
