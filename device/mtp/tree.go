package mtp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// objectInfo asks the device about one object; a size of 0xFFFFFFFF (4 GiB or more) is asked
// again as the 64-bit ObjectSize property.
func (d *Device) objectInfo(ctx context.Context, h uint32) (entry, error) {
	b, _, err := d.conn.dataset(ctx, OpGetObjectInfo, h)
	if err != nil {
		return entry{}, err
	}
	oi := ObjectInfo{Zone: d.zone}
	if err := oi.UnmarshalBinary(b); err != nil {
		return entry{}, fmt.Errorf("%v: %w", OpGetObjectInfo, err)
	}
	e := entry{
		handle:  h,
		storage: device.StorageID(oi.StorageID),
		parent:  oi.ParentObject,
		name:    oi.Filename,
		dir:     oi.IsFolder(),
		size:    int64(oi.CompressedSize),
		mtime:   oi.ModificationDate,
	}
	if e.dir {
		e.size = 0
	} else if oi.CompressedSize == 0xFFFFFFFF {
		if size, err := d.objectSize(ctx, h); err == nil {
			e.size = size
		} else {
			d.log.Warn("mtp: the device reports a size of 4 GiB or more and no exact size", "name", device.SafeName(e.name), "err", err)
		}
	}
	return e, nil
}

// objectSize reads the 64-bit ObjectSize property.
func (d *Device) objectSize(ctx context.Context, h uint32) (int64, error) {
	if !d.devInfo.Supports(OpGetObjectPropValue) {
		return 0, fmt.Errorf("%v: %w", OpGetObjectPropValue, device.ErrUnsupported)
	}
	b, _, err := d.conn.dataset(ctx, OpGetObjectPropValue, h, uint32(PropObjectSize))
	if err != nil {
		return 0, err
	}
	v, err := UnmarshalValue(b, TypeUint64)
	if err != nil {
		return 0, err
	}
	return int64(v.Int), nil
}

// handles lists the objects in a folder (GetObjectHandles).
func (d *Device) handles(ctx context.Context, n *node) ([]uint32, error) {
	b, _, err := d.conn.dataset(ctx, OpGetObjectHandles, uint32(n.storage), 0, n.param())
	if isResponse(err, RespInvalidStorageID) {
		return nil, fmt.Errorf("no storage %08X on the device: %w", uint32(n.storage), device.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return UnmarshalHandles(b)
}

// propListEntries asks for every property of n's children in one GetObjectPropList and returns
// the children it fully describes. Devices differ (QEMU answers OperationNotSupported although
// it does not offer the operation; Android takes depth 0 and 1 only; uMTP-Responder ignores the
// depth, describing the folder itself, and has no object 0 for the root): any refusal, a list
// that cannot be read, or one that describes none of the children makes Cradle list object by
// object from then on in this session (for the root alone when only the root was refused).
func (d *Device) propListEntries(ctx context.Context, n *node, want int) (map[uint32]entry, error) {
	h := n.handle
	if n.isRoot() {
		h = 0
	}
	type acc struct {
		e                         entry
		name, format, size, mtime bool
	}
	byHandle := make(map[uint32]*acc)
	b, _, err := d.conn.dataset(ctx, OpGetObjectPropList, h, 0, 0xFFFFFFFF, 0, 1)
	if err == nil {
		// Decoded element by element: the list itself (about ten elements an object, most of
		// them properties Cradle does not read) is never held.
		err = EachPropListEntry(b, func(x PropListEntry) {
			a := byHandle[x.Handle]
			if a == nil {
				a = &acc{e: entry{handle: x.Handle, storage: n.storage, parent: n.param()}}
				byHandle[x.Handle] = a
			}
			switch x.Code {
			case PropObjectFileName:
				a.e.name, a.name = x.Value.Str, x.Value.Type == TypeString
			case PropObjectFormat:
				a.e.dir, a.format = FormatCode(x.Value.Int) == FormatAssociation, true
			case PropObjectSize:
				// A 32-bit size of 0xFFFFFFFF means "4 GiB or more": GetObjectInfo then asks again.
				a.e.size = int64(x.Value.Int)
				a.size = scalarSize(x.Value.Type) == 8 || (scalarSize(x.Value.Type) == 4 && x.Value.Int != 0xFFFFFFFF)
			case PropDateModified:
				t, err := ParseDateIn(x.Value.Str, d.zone)
				a.e.mtime, a.mtime = t, err == nil
			case PropStorageID:
				a.e.storage = device.StorageID(x.Value.Int)
			case PropParentObject:
				a.e.parent = uint32(x.Value.Int)
			}
		})
	}
	if err != nil {
		if n.isRoot() && isResponse(err, RespInvalidObjectHandle) {
			d.log.Info("mtp: the device has no property list for a storage's root; listing it object by object", "err", err)
			d.noRootPropList = true
			return nil, nil
		}
		if isRefusal(err) || errors.Is(err, ErrMalformed) {
			d.log.Info("mtp: property lists do not work on this device; listing object by object", "err", err)
			d.propList = false
			return nil, nil
		}
		return nil, err
	}
	out := make(map[uint32]entry, len(byHandle))
	for h, a := range byHandle {
		if a.name && a.format && (a.size || a.e.dir) && a.mtime && a.e.storage == n.storage &&
			(a.e.parent == n.param() || (n.isRoot() && isRootParent(a.e.parent))) {
			if a.e.dir {
				a.e.size = 0
			}
			out[h] = a.e
		}
	}
	if len(out) == 0 && want > 0 {
		d.log.Info("mtp: the device's property lists describe no object; listing object by object")
		d.propList = false
	}
	return out, nil
}

// listDir asks the device for n's children, brings the cache up to date and returns them.
// Objects with unsafe names are skipped, logged and counted. With quick, objects already cached
// are not asked about again (a refresh after a cache miss).
func (d *Device) listDir(ctx context.Context, n *node, quick bool) ([]entry, error) {
	hs, err := d.handles(ctx, n)
	if err != nil {
		return nil, err
	}
	var known map[uint32]entry
	if quick && n.children != nil {
		known = make(map[uint32]entry, n.children.len())
		for _, ch := range n.children.all() {
			known[ch.handle] = entry{handle: ch.handle, storage: ch.storage, name: ch.name, dir: ch.dir}
		}
	}
	var fromList map[uint32]entry
	unknown := len(hs) - len(known)
	if d.propList && unknown > 1 && !(n.isRoot() && d.noRootPropList) {
		if fromList, err = d.propListEntries(ctx, n, len(hs)); err != nil {
			return nil, err
		}
	}
	entries := make([]entry, 0, len(hs))
	seen := make(map[string]bool, len(hs))
	for _, h := range hs {
		e, ok := known[h]
		if !ok {
			e, ok = fromList[h]
		}
		if !ok {
			e, err = d.objectInfo(ctx, h)
			if isResponse(err, RespInvalidObjectHandle) {
				continue // gone since the device listed it
			}
			if err != nil {
				return nil, err
			}
		}
		if err := device.CheckName(e.name); err != nil {
			d.skip(e.handle, "mtp: skipping an object with an unsafe name", "folder", n.path(), "name", device.SafeName(e.name), "err", err)
			continue
		}
		if seen[e.name] {
			d.skip(e.handle, "mtp: skipping a second object of the same name", "folder", n.path(), "name", e.name)
			continue
		}
		seen[e.name] = true
		entries = append(entries, e)
	}
	d.cache.setChildren(n, entries, time.Now())
	return entries, nil
}

// ptpFolders are the folders a phone in "Transfer photos (PTP)" mode shows at a storage's root.
var ptpFolders = []string{"DCIM", "Pictures"}

// ptpGuard refuses, on a phone in PTP mode, every path outside its photo folders, the root
// included, with device.ErrPTPMode: such a phone hides everything else, and a listing that
// misses it must never read as deletions.
func (d *Device) ptpGuard(p string) error {
	if !d.ptp {
		return nil
	}
	top, _, _ := strings.Cut(p, "/")
	if slices.Contains(ptpFolders, top) {
		return nil
	}
	return fmt.Errorf("%q: %w", p, device.ErrPTPMode)
}

// resolve finds the node of a clean path, listing folders that are not cached yet.
func (d *Device) resolve(ctx context.Context, s device.StorageID, p string) (*node, error) {
	n := d.cache.root(s)
	if p == "" {
		return n, nil
	}
	for name := range strings.SplitSeq(p, "/") {
		if !n.dir {
			return nil, fmt.Errorf("%s is not a folder: %w", n.path(), device.ErrNotFound)
		}
		child, err := d.child(ctx, n, name)
		if err != nil {
			return nil, err
		}
		if child == nil {
			return nil, fmt.Errorf("%s: %w", joinPath(n.path(), name), device.ErrNotFound)
		}
		n = child
	}
	return n, nil
}

// child returns n's child called name, or nil. A miss is trusted only when n was listed less
// than listFresh ago; otherwise n is refreshed first.
func (d *Device) child(ctx context.Context, n *node, name string) (*node, error) {
	if ch := n.children.get(name); ch != nil {
		return ch, nil
	}
	if d.cache.fresh(n, listFresh) {
		return nil, nil
	}
	if _, err := d.listDir(ctx, n, true); err != nil {
		return nil, err
	}
	return n.children.get(name), nil
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func splitPath(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func (d *Device) object(s device.StorageID, p string, e entry) device.Object {
	_, name := splitPath(p)
	return device.Object{Storage: s, Path: p, Name: name, Dir: e.dir, Size: e.size, ModTime: e.mtime}
}

// List returns the children of the folder dir, sorted by name, fresh from the device.
func (d *Device) List(ctx context.Context, s device.StorageID, dir string) ([]device.Object, error) {
	dir, err := device.CheckPath(dir)
	if err == nil {
		err = d.ptpGuard(dir)
	}
	if err != nil {
		return nil, err
	}
	var out []device.Object
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, dir)
		if err != nil {
			return err
		}
		if !n.dir {
			return fmt.Errorf("%s is not a folder: %w", dir, device.ErrNotFound)
		}
		entries, err := d.listDir(ctx, n, false)
		if err != nil {
			return err
		}
		out = make([]device.Object, len(entries))
		for i, e := range entries {
			out[i] = d.object(s, joinPath(dir, e.name), e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q on the device: %w", dir, err)
	}
	slices.SortFunc(out, func(a, b device.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Stat returns the object at p, fresh from the device; the storage root is a folder with an
// empty path.
func (d *Device) Stat(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err == nil && p != "" {
		err = d.ptpGuard(p)
	}
	if err != nil {
		return device.Object{}, err
	}
	var obj device.Object
	err = d.locked(ctx, func() error {
		var err error
		obj, err = d.stat(ctx, s, p)
		return err
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("stat %q on the device: %w", p, err)
	}
	return obj, nil
}

// stat resolves p and asks the device about it, checking that the cached handle still names
// the object (a device that renumbered may have given it to another).
func (d *Device) stat(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	if p == "" {
		if _, err := d.handles(ctx, d.cache.root(s)); err != nil {
			return device.Object{}, err
		}
		return device.Object{Storage: s, Dir: true}, nil
	}
	n, err := d.resolve(ctx, s, p)
	if err != nil {
		return device.Object{}, err
	}
	e, err := d.objectInfo(ctx, n.handle)
	if err == nil && (e.name != n.name || e.dir != n.dir) {
		err = &ResponseError{Op: OpGetObjectInfo, Code: RespInvalidObjectHandle}
	}
	if err != nil {
		return device.Object{}, err
	}
	return d.object(s, p, e), nil
}

// Walk calls fn for every object below dir, parents before children, each folder's children
// sorted by name. fn returning fs.SkipDir skips a folder's contents (or, for a file, the rest of
// its folder); fs.SkipAll ends the walk. Walk does not hold the device while fn runs.
func (d *Device) Walk(ctx context.Context, s device.StorageID, dir string, fn func(device.Object) error) error {
	return device.WalkList(ctx, func(ctx context.Context, dir string) ([]device.Object, error) { return d.List(ctx, s, dir) }, dir, fn)
}
