package emulator

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/cradle-sync/cradle/device/mtp"
)

// selectObjects returns the objects GetObjectHandles and GetNumObjects ask for: in storage sid
// (0xFFFFFFFF: all), of format (0: all), in folder parent (0xFFFFFFFF: the root; 0: anywhere).
// It runs under e.mu.
func (r *responder) selectObjects(sid, format, parent uint32) ([]*object, answer) {
	t := &r.e.tab
	var sts []*storage
	if sid == 0xFFFFFFFF {
		sts = t.present()
	} else if st := t.storage(sid); st != nil {
		sts = []*storage{st}
	} else {
		return nil, fail(mtp.RespInvalidStorageID)
	}
	var out []*object
	match := func(o *object) {
		if format == 0 || mtp.FormatCode(format) == objectFormat(o) {
			out = append(out, o)
		}
	}
	for _, st := range sts {
		switch parent {
		case 0:
			if err := t.walk(st.root, match); err != nil {
				return nil, fail(mtp.RespStoreNotAvailable)
			}
			continue
		case 0xFFFFFFFF:
			if err := r.listFolder(st.root); err != nil {
				return nil, fail(mtp.RespStoreNotAvailable)
			}
			for _, c := range sortedChildren(st.root) {
				match(c)
			}
		default:
			o, _ := t.lookup(parent)
			if o == nil {
				return nil, fail(mtp.RespInvalidObjectHandle)
			}
			if !o.dir || (sid != 0xFFFFFFFF && o.st != st) {
				return nil, fail(mtp.RespInvalidParentObject)
			}
			if err := r.listFolder(o); err != nil {
				return nil, fail(mtp.RespInvalidObjectHandle)
			}
			for _, c := range sortedChildren(o) {
				match(c)
			}
			return out, ok()
		}
	}
	return out, ok()
}

// listFolder brings folder o's children up to date for the command running (under e.mu). An
// initiator lists a folder with GetObjectHandles and asks for its objects' properties with
// GetObjectPropList in the very next transaction: like a phone answering from its object
// database, the device reads the folder once for both (a change on the host in between reaches
// the initiator as an event, as it would from a phone). Every other listing reads the folder.
func (r *responder) listFolder(o *object) error {
	t := &r.e.tab
	l := &t.listing
	if r.op == mtp.OpGetObjectPropList && l.session == t.session && t.session != 0 && l.tid+1 == t.lastTID &&
		slices.Contains(l.folders, o) && o.children != nil {
		return nil
	}
	if err := t.enumerate(o); err != nil {
		return err
	}
	if r.op == mtp.OpGetObjectHandles {
		if l.session != t.session || l.tid != t.lastTID {
			*l = listing{session: t.session, tid: t.lastTID}
		}
		l.folders = append(l.folders, o)
	}
	return nil
}

func (r *responder) getObjectHandles(p []uint32) (answer, error) {
	r.e.mu.Lock()
	objs, a := r.selectObjects(param(p, 0), param(p, 1), param(p, 2))
	r.e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	hs := make([]uint32, len(objs))
	for i, o := range objs {
		hs[i] = o.handle
	}
	return ok(), r.sendBytes(mtp.MarshalHandles(hs))
}

func (r *responder) getNumObjects(p []uint32) (answer, error) {
	r.e.mu.Lock()
	objs, a := r.selectObjects(param(p, 0), param(p, 1), param(p, 2))
	r.e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	return ok(uint32(len(objs))), nil
}

func objectFormat(o *object) mtp.FormatCode {
	if o.dir {
		return mtp.FormatAssociation
	}
	return mtp.FormatForName(o.name)
}

func parentHandle(o *object) uint32 {
	if o.parent == nil || o.parent.parent == nil {
		return 0
	}
	return o.parent.handle
}

// objectInfo describes o; it records what the initiator is told.
func (r *responder) objectInfo(o *object, fi fs.FileInfo) mtp.ObjectInfo {
	r.e.tab.seen(o, fi)
	oi := mtp.ObjectInfo{
		StorageID:        o.st.id,
		ObjectFormat:     objectFormat(o),
		ParentObject:     parentHandle(o),
		Filename:         r.e.reportName(o.name),
		CaptureDate:      fi.ModTime(),
		ModificationDate: fi.ModTime(),
		Zone:             r.e.zone(),
	}
	if o.dir {
		oi.AssociationType = mtp.AssociationGenericFolder
	} else {
		oi.CompressedSize = uint32(min(fi.Size(), 0xFFFFFFFF))
	}
	if r.e.opts.ObjectInfo64 {
		oi.Size64, oi.Size = true, uint64(o.size)
	}
	return oi
}

func (r *responder) getObjectInfo(p []uint32) (answer, error) {
	r.e.mu.Lock()
	o, fi := r.e.tab.lookup(param(p, 0))
	var oi mtp.ObjectInfo
	if o != nil {
		oi = r.objectInfo(o, fi)
	}
	r.e.mu.Unlock()
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	b, err := oi.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// reportName is the name the device reports for an object named name on the host: Names
// applied, cut to the 254 UTF-16 code units a PTP string holds (a 255-byte file name does not
// fit), as phones do.
func (e *Emulator) reportName(name string) string {
	if v, ok := e.opts.Names[name]; ok {
		name = v
	}
	units := 0
	for i, c := range name {
		n := 1
		if c > 0xFFFF {
			n = 2
		}
		if units+n > 254 {
			return name[:i]
		}
		units += n
	}
	return name
}

func (r *responder) moveObject(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	o, _ := t.lookup(param(p, 0))
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	st := t.storage(param(p, 1))
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	if st != o.st {
		return fail(mtp.RespSpecificationOfDestinationUnsup), nil
	}
	dest := t.folder(st, param(p, 2))
	if dest == nil {
		return fail(mtp.RespInvalidParentObject), nil
	}
	for x := dest; x != nil; x = x.parent {
		if x == o {
			return fail(mtp.RespInvalidParentObject), nil
		}
	}
	if dest.children == nil {
		infos, err := t.readDir(dest)
		if err != nil {
			return fail(mtp.RespInvalidParentObject), nil
		}
		dest.children = map[string]*object{}
		for name, fi := range infos {
			t.add(dest, name, fi)
		}
	}
	target := filepath.Join(t.path(dest), o.name)
	if _, err := os.Lstat(target); err == nil {
		return fail(mtp.RespGeneralError), nil
	}
	if err := os.Rename(t.path(o), target); err != nil {
		e.log.Warn("emulator: move failed", "to", target, "err", err)
		return fail(mtp.RespAccessDenied), nil
	}
	delete(o.parent.children, o.name)
	o.parent = dest
	dest.children[o.name] = o
	return ok(), nil
}
