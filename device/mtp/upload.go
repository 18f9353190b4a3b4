package mtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// checkNew checks that parent's storage can hold a new object called name (or self renamed so):
// a name its rules refuse is device.ErrNameNotAllowed, and on a storage that folds case, a
// sibling whose name differs only in case is device.ErrExists: the storage takes both for one
// name, and sending one would overwrite the other (Android opens it with O_TRUNC). It runs under
// the lock, after child(parent, name) brought parent's listing up to date.
func (d *Device) checkNew(ctx context.Context, parent *node, name string, self *node) error {
	rules, err := d.storageRules(ctx, parent.storage)
	if err != nil {
		return err
	}
	if err := rules.Check(name); err != nil {
		return err
	}
	if !rules.FoldCase {
		return nil
	}
	for other, ch := range parent.children.all() {
		if other != name && ch != self && rules.Same(other, name) {
			return fmt.Errorf("%q differs only in case from %q, and the device's storage takes them for one name: %w",
				name, joinPath(parent.path(), other), device.ErrExists)
		}
	}
	return nil
}

// mkdirAll returns the node of folder p, creating it and its missing parents.
func (d *Device) mkdirAll(ctx context.Context, s device.StorageID, p string) (*node, error) {
	n := d.cache.root(s)
	if p == "" {
		return n, nil
	}
	for name := range strings.SplitSeq(p, "/") {
		child, err := d.child(ctx, n, name)
		if err != nil {
			return nil, err
		}
		if child == nil {
			if err := d.checkNew(ctx, n, name, nil); err != nil {
				return nil, err
			}
			if child, err = d.mkdir(ctx, n, name); err != nil {
				return nil, err
			}
		} else if !child.dir {
			return nil, fmt.Errorf("%s is a file, not a folder: %w", child.path(), device.ErrExists)
		}
		n = child
	}
	return n, nil
}

// mkdir creates the folder name in parent with SendObjectInfo (an association needs no
// SendObject). The handle the device answers is not trusted (see created); once the folder is
// found, it is listed, so that a device that registers only objects in folders it has read
// (QEMU's usb-mtp) knows it and what is sent into it.
func (d *Device) mkdir(ctx context.Context, parent *node, name string) (*node, error) {
	oi := ObjectInfo{
		StorageID:        uint32(parent.storage),
		ObjectFormat:     FormatAssociation,
		AssociationType:  AssociationGenericFolder,
		ParentObject:     parentField(parent),
		Filename:         name,
		ModificationDate: time.Now(),
	}
	h, err := d.sendObjectInfo(ctx, parent, &oi)
	if err != nil {
		return nil, err
	}
	parent, e, err := d.created(ctx, parent, h, name, true, 0)
	if err != nil {
		return nil, err
	}
	n := d.cache.add(parent, e)
	if _, err := d.listDir(ctx, n, false); err != nil {
		return nil, err
	}
	return n, nil
}

// Finding a new object. The handle SendObjectInfo answers is not trusted: some devices register
// a new object only when they notice it (QEMU's usb-mtp, when inotify reports it, and only in a
// folder the session listed), so that handle is their guess of the next free one, unknown for a
// moment, unknown for good, or given to another object in the meantime (QEMU also answers with
// an existing object's handle when the new name is a prefix of its name). The initiator checks
// the object behind it and otherwise looks for the new object by name in fresh listings of its
// folder, waiting a little between them.
const (
	// findFirstWait is the first wait between two looks; each next one doubles, up to
	// findMaxWait.
	findFirstWait = 5 * time.Millisecond
	findMaxWait   = 250 * time.Millisecond
)

// Bounds of the searches (variables for tests).
var (
	// createdWait bounds the search for an object the device accepted: past it, the device
	// is taken not to show the object at all (QEMU never shows names starting with a dot).
	createdWait = 5 * time.Second
	// renewAfter is how long the search goes on in the session that created the object
	// before it renews the session (see created).
	renewAfter = time.Second
	// partialWait bounds the search for what a failed upload left behind on a device that
	// registers new objects late; on others one look is enough.
	partialWait = 2 * time.Second
)

// ErrNotShown is wrapped by the error of Create and Mkdir when the device accepted the new object
// but does not show it: it hides such names (QEMU's usb-mtp hides names starting with a dot), or
// it never registered the object. Nothing can then be done with the object over MTP.
var ErrNotShown = errors.New("the device does not show the new object")

// partError is the error of created for a file the device shows with another size than was sent.
type partError struct {
	e    entry // the object the device shows
	size int64 // the size sent
}

func (e *partError) Error() string {
	return fmt.Sprintf("%v: the device stored %d of %d bytes", ErrProtocol, e.e.size, e.size)
}

func (e *partError) Unwrap() error { return ErrProtocol }

// created finds the object just made in parent called name: a folder when dir, else a file that
// must hold size bytes. h is the handle SendObjectInfo answered. It runs under the lock, and
// returns the object and its folder's node.
//
// An object not found within renewAfter may never be registered while the session lasts (QEMU's
// usb-mtp compares a new name with only as many characters of the names it knows, and takes the
// report of "pre" next to "pre-existing.txt" for a repeat): the session is renewed once, which
// makes the device read its folders afresh, and the search goes on in the new session (where the
// cache, and so parent, are new). A file still found with another size after createdWait is a
// *partError (the device stored part of it); an object not found at all is ErrNotShown.
func (d *Device) created(ctx context.Context, parent *node, h uint32, name string, dir bool, size int64) (*node, entry, error) {
	var wrong *entry
	ok := func(e entry) bool {
		if dir || e.size == size {
			return true
		}
		wrong = &e
		return false
	}
	start := time.Now()
	e, found, first, err := d.find(ctx, parent, h, name, dir, min(renewAfter, createdWait), ok)
	if err == nil && (!found || !first) && !d.lateObjects {
		d.lateObjects = true
		d.log.Debug("mtp: the device registers new objects late; looking for them by name", "name", name)
	}
	if err == nil && !found && wrong == nil && renewAfter < createdWait {
		d.log.Info("mtp: the device does not show a new object; opening a new session, where it reads its folders afresh",
			"name", device.SafeName(name))
		storage, dirPath := parent.storage, parent.path()
		if err = d.renewSession(ctx); err == nil {
			if parent, err = d.resolve(ctx, storage, dirPath); err == nil {
				e, found, _, err = d.find(ctx, parent, 0, name, dir, createdWait-time.Since(start), ok)
			}
		}
	}
	switch {
	case err != nil:
		return parent, entry{}, err
	case found:
		return parent, e, nil
	case wrong != nil:
		return parent, entry{}, &partError{e: *wrong, size: size}
	}
	what := "file"
	if dir {
		what = "folder"
	}
	return parent, entry{}, fmt.Errorf("the device accepted the %s %q but does not show it after %s, "+
		"even in a new session; it may hide such names (QEMU hides names starting with a dot): %w", what, name, createdWait, ErrNotShown)
}

// renewSession closes the session and opens a new one: the device forgets every handle (and, as
// QEMU's usb-mtp does, reads its folders afresh when they are listed). The path cache is dropped;
// readers in progress find their objects again by path. It runs under the lock.
func (d *Device) renewSession(ctx context.Context) error {
	if _, err := d.conn.do(ctx, call{op: OpCloseSession}); err != nil && !isResponse(err, RespSessionNotOpen) {
		return fmt.Errorf("close the session to open a new one: %w", err)
	}
	d.conn.inSess = false
	d.session++
	d.cache.reset()
	d.skippedHandles = map[uint32]bool{}
	if err := d.openSession(ctx); err != nil {
		return fmt.Errorf("open a new session: %w", err)
	}
	return nil
}

// find looks for parent's child called name (a folder when dir, else a file) for which ok holds:
// first the object behind h (unless h is 0), then in listings of parent, until wait has passed.
// It runs under the lock and reports whether it found one, and whether at the first look at h.
func (d *Device) find(ctx context.Context, parent *node, h uint32, name string, dir bool, wait time.Duration,
	ok func(entry) bool) (e entry, found, first bool, err error) {
	is := func(e entry) bool {
		if e.name != name || e.dir != dir || e.storage != parent.storage {
			return false
		}
		if parent.isRoot() {
			// The root's children name it 0 or 0xFFFFFFFF (QEMU: the root's own handle).
			if n := d.cache.byHandle[e.parent]; !isRootParent(e.parent) && n != nil {
				return false
			}
		} else if e.parent != parent.handle {
			return false
		}
		return ok(e)
	}
	deadline := time.Now().Add(wait)
	pause := findFirstWait
	for look := 0; ; look++ {
		if h != 0 {
			e, err := d.objectInfo(ctx, h)
			if err == nil && is(e) {
				return e, true, look == 0, nil
			}
			if err != nil && !isResponse(err, RespInvalidObjectHandle) {
				return entry{}, false, false, err
			}
		}
		entries, err := d.listDir(ctx, parent, true)
		if err != nil {
			return entry{}, false, false, err
		}
		for _, l := range entries {
			if l.name != name {
				continue
			}
			// Ask afresh: a listing may hold what the cache knew of the object (no size).
			e, err := d.objectInfo(ctx, l.handle)
			if err == nil && is(e) {
				return e, true, false, nil
			}
			if err != nil && !isResponse(err, RespInvalidObjectHandle) {
				return entry{}, false, false, err
			}
		}
		if !time.Now().Add(pause).Before(deadline) {
			return entry{}, false, false, nil
		}
		select {
		case <-ctx.Done():
			return entry{}, false, false, ctx.Err()
		case <-d.conn.goneCh:
			return entry{}, false, false, d.conn.gone()
		case <-time.After(pause):
		}
		pause = min(2*pause, findMaxWait)
	}
}

// parentField is the ParentObject to put in an ObjectInfo sent for a child of n.
func parentField(n *node) uint32 {
	if n.isRoot() {
		return 0
	}
	return n.handle
}

// sendObjectInfo announces an object and returns the handle the device gives it.
func (d *Device) sendObjectInfo(ctx context.Context, parent *node, oi *ObjectInfo) (uint32, error) {
	b, err := oi.MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("%v: %w", OpSendObjectInfo, err)
	}
	resp, err := d.conn.do(ctx, call{op: OpSendObjectInfo, params: []uint32{uint32(parent.storage), parent.param()},
		send: bytes.NewReader(b), sendSize: int64(len(b))})
	if err != nil {
		return 0, err
	}
	if len(resp.Params) < 3 {
		return 0, fmt.Errorf("%w: %v answered without the new object's handle", ErrProtocol, OpSendObjectInfo)
	}
	return resp.Params[2], nil
}

// Mkdir creates the folder p and its missing parents; an existing folder is not an error.
func (d *Device) Mkdir(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err == nil {
		err = d.ptpGuard(p)
	}
	if err != nil {
		return device.Object{}, err
	}
	var obj device.Object
	err = d.locked(ctx, func() error {
		if _, err := d.mkdirAll(ctx, s, p); err != nil {
			return err
		}
		var err error
		obj, err = d.stat(ctx, s, p)
		return err
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("create folder %q on the device: %w", p, err)
	}
	return obj, nil
}

// Create writes a new file of size bytes from r at p, creating missing parent folders, and
// keeps modTime (sent in the ObjectInfo, and set as DateModified afterwards where the device
// ignored it and allows it). An object already at p is device.ErrExists. When the transfer
// fails, the partial object is deleted while the device still answers.
func (d *Device) Create(ctx context.Context, s device.StorageID, p string, size int64, modTime time.Time, r io.Reader) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err == nil && p == "" {
		err = fmt.Errorf("cannot create the storage root: %w", device.ErrExists)
	}
	if err == nil {
		err = d.ptpGuard(p)
	}
	if err == nil && size < 0 {
		err = fmt.Errorf("negative size %d", size)
	}
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q on the device: %w", p, err)
	}
	dir, name := splitPath(p)
	var obj device.Object
	err = d.locked(ctx, func() error {
		parent, err := d.mkdirAll(ctx, s, dir)
		if err != nil {
			return err
		}
		if ch, err := d.child(ctx, parent, name); err != nil {
			return err
		} else if ch != nil {
			return device.ErrExists
		}
		if err := d.checkNew(ctx, parent, name, nil); err != nil {
			return err
		}
		compressed := uint32(0xFFFFFFFF)
		if size < 0xFFFFFFFF {
			compressed = uint32(size)
		}
		oi := ObjectInfo{
			StorageID:        uint32(s),
			ObjectFormat:     FormatForName(name),
			CompressedSize:   compressed,
			ParentObject:     parentField(parent),
			Filename:         name,
			ModificationDate: modTime,
		}
		h, err := d.sendObjectInfo(ctx, parent, &oi)
		if err != nil {
			return err
		}
		// From here on r is (being) consumed: whatever happens, this does not run again.
		if _, err := d.conn.do(ctx, call{op: OpSendObject, send: r, sendSize: size}); err != nil {
			d.cleanup(parent, h, name, p)
			return &final{err}
		}
		parent, e, err := d.created(ctx, parent, h, name, false, size)
		if err != nil {
			if pe := (*partError)(nil); errors.As(err, &pe) {
				d.remove(ctx, parent, pe.e, p)
			}
			return &final{err}
		}
		if !modTime.IsZero() {
			d.learnZone(modTime, &e)
		}
		if !modTime.IsZero() && !e.mtime.Equal(modTime.Truncate(time.Second)) && d.setDate &&
			d.devInfo.Supports(OpSetObjectPropValue) {
			err := d.setProp(ctx, e.handle, PropDateModified, StringValue(FormatDate(modTime)))
			switch {
			case err == nil:
				// Read back what the device kept (a memory card keeps 2-second times).
				e.mtime = modTime.Truncate(time.Second)
				if back, err := d.objectInfo(ctx, e.handle); err == nil && back.name == e.name {
					e.mtime = back.mtime
				}
			case isRefusal(err):
				d.log.Info("mtp: the device does not let modification times be set; keeping its own", "err", err)
				d.setDate = false
			default:
				d.cache.add(parent, e)
				return &final{err}
			}
		}
		d.cache.add(parent, e)
		obj = d.object(s, p, e)
		return nil
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q on the device: %w", p, err)
	}
	return obj, nil
}

// cleanup deletes what a failed upload of name into parent (path p) left, if the device still
// answers: the object behind h when it is that file, else the file of that name found in
// listings of parent (h may be a guess the device never honoured). Nothing of that name was
// there before the upload.
func (d *Device) cleanup(parent *node, h uint32, name, p string) {
	if d.conn.gone() != nil {
		return
	}
	wait := time.Duration(0)
	if d.lateObjects {
		wait = partialWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+resetWait)
	defer cancel()
	e, found, _, err := d.find(ctx, parent, h, name, false, wait, func(entry) bool { return true })
	switch {
	case err != nil:
		d.log.Warn("mtp: could not look for a partial object after a failed transfer", "path", p, "err", err)
	case !found:
		d.log.Debug("mtp: the failed transfer left no object the device shows", "path", p)
	default:
		d.remove(ctx, parent, e, p)
	}
}

// remove deletes the object e in parent (path p) after a failed upload, logging a failure.
func (d *Device) remove(ctx context.Context, parent *node, e entry, p string) {
	_, err := d.conn.do(ctx, call{op: OpDeleteObject, params: []uint32{e.handle, 0}})
	if err != nil && !isResponse(err, RespInvalidObjectHandle) {
		d.log.Warn("mtp: could not delete a partial object after a failed transfer", "path", p, "err", err)
		return
	}
	if n := parent.children.get(e.name); n != nil && n.handle == e.handle {
		d.cache.remove(n)
	}
}

// setProp sets an object property with SetObjectPropValue.
func (d *Device) setProp(ctx context.Context, h uint32, prop PropCode, v Value) error {
	b, err := MarshalValue(v)
	if err != nil {
		return err
	}
	_, err = d.conn.do(ctx, call{op: OpSetObjectPropValue, params: []uint32{h, uint32(prop)},
		send: bytes.NewReader(b), sendSize: int64(len(b))})
	return err
}

// Delete removes the file p, or the empty folder p (device.ErrNotEmpty otherwise: MTP devices
// delete folders recursively).
func (d *Device) Delete(ctx context.Context, s device.StorageID, p string) error {
	p, err := device.CheckPath(p)
	if err == nil && p == "" {
		err = fmt.Errorf("cannot delete the storage root: %w", device.ErrUnsupported)
	}
	if err == nil {
		err = d.ptpGuard(p)
	}
	if err != nil {
		return fmt.Errorf("delete %q on the device: %w", p, err)
	}
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, p)
		if err != nil {
			return err
		}
		if n.dir {
			hs, err := d.handles(ctx, n)
			if err != nil {
				return err
			}
			if len(hs) > 0 {
				return device.ErrNotEmpty
			}
		}
		if _, err := d.conn.do(ctx, call{op: OpDeleteObject, params: []uint32{n.handle, 0}}); err != nil {
			return err
		}
		d.cache.remove(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %q on the device: %w", p, err)
	}
	return nil
}
