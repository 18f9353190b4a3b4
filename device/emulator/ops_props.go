package emulator

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// props are the object properties the device describes, with their types.
var props = []struct {
	code     mtp.PropCode
	typ      mtp.DataType
	writable bool
}{
	{mtp.PropStorageID, mtp.TypeUint32, false},
	{mtp.PropObjectFormat, mtp.TypeUint16, false},
	{mtp.PropProtectionStatus, mtp.TypeUint16, false},
	{mtp.PropObjectSize, mtp.TypeUint64, false},
	{mtp.PropObjectFileName, mtp.TypeString, true},
	{mtp.PropDateModified, mtp.TypeString, true},
	{mtp.PropParentObject, mtp.TypeUint32, false},
	{mtp.PropPersistentUniqueObjectID, mtp.TypeUint128, false},
	{mtp.PropName, mtp.TypeString, false},
}

func propType(code mtp.PropCode) (mtp.DataType, bool, bool) {
	for _, x := range props {
		if x.code == code {
			return x.typ, x.writable, true
		}
	}
	return 0, false, false
}

func (r *responder) getObjectPropsSupported(p []uint32) (answer, error) {
	codes := make([]mtp.PropCode, len(props))
	for i, x := range props {
		codes[i] = x.code
	}
	return ok(), r.sendBytes(mtp.MarshalCodes(codes))
}

func (r *responder) getObjectPropDesc(p []uint32) (answer, error) {
	code := mtp.PropCode(param(p, 0))
	typ, writable, known := propType(code)
	if !known {
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	if code == mtp.PropDateModified && r.e.opts.DatesReadOnly {
		writable = false
	}
	d := mtp.PropDesc{Code: code, Type: typ, Writable: writable && !r.e.opts.ReadOnlyProps, Default: mtp.Value{Type: typ}}
	switch code {
	case mtp.PropDateModified:
		d.Form = mtp.FormDateTime
	case mtp.PropProtectionStatus:
		d.Form = mtp.FormEnum
		d.Enum = []mtp.Value{mtp.UintValue(typ, 0), mtp.UintValue(typ, 1)}
	case mtp.PropObjectFileName:
		d.Form = mtp.FormLongString
		d.MaxLength = 255
	}
	b, err := d.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// propValue returns o's value of property code, from its recorded size and time.
func (r *responder) propValue(o *object, code mtp.PropCode) (mtp.Value, bool) {
	typ, _, known := propType(code)
	if !known {
		return mtp.Value{}, false
	}
	v := mtp.Value{Type: typ}
	switch code {
	case mtp.PropStorageID:
		v.Int = uint64(o.st.id)
	case mtp.PropObjectFormat:
		v.Int = uint64(objectFormat(o))
	case mtp.PropObjectSize:
		v.Int = uint64(o.size)
	case mtp.PropObjectFileName, mtp.PropName:
		v.Str = r.e.reportName(o.name)
	case mtp.PropDateModified:
		v.Str = mtp.FormatDateIn(o.modTime(), r.e.zone())
	case mtp.PropParentObject:
		v.Int = uint64(parentHandle(o))
	case mtp.PropPersistentUniqueObjectID:
		sum := sha256.Sum256([]byte(r.e.tab.path(o)))
		copy(v.Wide[:], sum[:16])
	}
	return v, true
}

func (r *responder) getObjectPropValue(p []uint32) (answer, error) {
	r.e.mu.Lock()
	o, fi := r.e.tab.lookup(param(p, 0))
	var v mtp.Value
	known := false
	if o != nil {
		r.e.tab.seen(o, fi)
		v, known = r.propValue(o, mtp.PropCode(param(p, 1)))
	}
	r.e.mu.Unlock()
	switch {
	case o == nil:
		return fail(mtp.RespInvalidObjectHandle), nil
	case !known:
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	b, err := mtp.MarshalValue(v)
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

func (r *responder) setObjectPropValue(p []uint32) (answer, error) {
	b, err := r.recvBytes(64 << 10)
	if errors.Is(err, errIncomplete) {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	if err != nil {
		return answer{}, err
	}
	code := mtp.PropCode(param(p, 1))
	typ, writable, known := propType(code)
	if !known || (code == mtp.PropDateModified && r.e.opts.DatesReadOnly) {
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	if !writable {
		return fail(mtp.RespAccessDenied), nil
	}
	v, err := mtp.UnmarshalValue(b, typ)
	if err != nil {
		return fail(mtp.RespInvalidObjectPropFormat), nil
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	o, _ := t.lookup(param(p, 0))
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	path := t.path(o)
	switch code {
	case mtp.PropObjectFileName:
		if !e.validName(v.Str) {
			return fail(mtp.RespInvalidObjectPropValue), nil
		}
		v.Str = e.storedName(v.Str)
		if folded := e.foldedSibling(filepath.Dir(path), v.Str); folded != "" && folded != o.name {
			return fail(mtp.RespGeneralError), nil // another object has that name, in another case
		}
		if v.Str == o.name {
			return ok(), nil
		}
		target := filepath.Join(filepath.Dir(path), v.Str)
		if _, err := os.Lstat(target); err == nil {
			return fail(mtp.RespGeneralError), nil
		}
		if err := os.Rename(path, target); err != nil {
			return fail(mtp.RespAccessDenied), nil
		}
		if o.parent.children != nil {
			delete(o.parent.children, o.name)
			o.parent.children[v.Str] = o
		}
		o.name = v.Str
	case mtp.PropDateModified:
		mt, err := mtp.ParseDateIn(v.Str, e.zone())
		if err != nil || mt.IsZero() {
			return fail(mtp.RespInvalidObjectPropValue), nil
		}
		if e.opts.FATNames {
			mt = mt.Truncate(2 * time.Second)
		}
		if err := os.Chtimes(path, mt, mt); err != nil {
			return fail(mtp.RespAccessDenied), nil
		}
		if fi, err := os.Lstat(path); err == nil {
			o.record(fi)
		}
	}
	return ok(), nil
}

func (r *responder) getObjectPropList(p []uint32) (answer, error) {
	if r.e.opts.PropList == PropListBroken {
		return fail(mtp.RespOperationNotSupported), nil
	}
	h, format, code, group, depth := param(p, 0), param(p, 1), param(p, 2), param(p, 3), param(p, 4)
	var codes []mtp.PropCode
	switch {
	case code == 0xFFFFFFFF:
		for _, x := range props {
			codes = append(codes, x.code)
		}
	case code == 0 && group == 0:
		return fail(mtp.RespSpecificationByGroupUnsupported), nil
	case code == 0:
		return fail(mtp.RespGroupNotSupported), nil
	default:
		if _, _, known := propType(mtp.PropCode(code)); !known {
			return fail(mtp.RespInvalidObjectPropCode), nil
		}
		codes = []mtp.PropCode{mtp.PropCode(code)}
	}
	e := r.e
	e.mu.Lock()
	t := &e.tab
	var objs []*object
	var a answer
	if e.opts.PropList == PropListIgnoresDepth {
		depth = 0
		if h == 0 || h == 0xFFFFFFFF {
			h = 0 // no such object
		}
	}
	switch {
	case depth == 0 && h == 0xFFFFFFFF:
		objs, a = r.selectObjects(0xFFFFFFFF, format, 0)
	case depth == 0:
		if o, fi := t.lookup(h); o != nil {
			t.seen(o, fi)
			objs, a = []*object{o}, ok()
		} else {
			a = fail(mtp.RespInvalidObjectHandle)
		}
	case depth == 1 && (h == 0 || h == 0xFFFFFFFF):
		objs, a = r.selectObjects(0xFFFFFFFF, format, 0xFFFFFFFF)
	case depth == 1:
		if o, _ := t.lookup(h); o == nil {
			a = fail(mtp.RespInvalidObjectHandle)
		} else {
			objs, a = r.selectObjects(o.st.id, format, h)
		}
	default:
		a = fail(mtp.RespSpecificationByDepthUnsupported)
	}
	// Enumerating (or looking up) the objects just brought their sizes and times up to date.
	// Encoded as it is read, as a phone's responder writes its answer: the list itself is never
	// held.
	var list mtp.PropListWriter
	list.Grow(len(objs) * len(codes))
	for _, o := range objs {
		for _, c := range codes {
			if v, ok := r.propValue(o, c); ok {
				list.Add(o.handle, c, v)
			}
		}
	}
	e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	b, err := list.Bytes()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// event queues an MTP event about handle h (only inside a session); the caller holds e.mu.
func (e *Emulator) event(code mtp.EventCode, h uint32) {
	if e.tab.session == 0 {
		return
	}
	b, _ := mtp.Container{Type: mtp.ContainerEvent, Code: uint16(code), Params: []uint32{h}}.MarshalBinary()
	seq := e.intr.push(b)
	if e.opts.BlockingEvents && seq > 0 {
		// The write to the interrupt endpoint returns when the initiator has read the event;
		// the object table stays locked meanwhile (uMTP-Responder).
		e.intr.waitTaken(seq, e.gone)
	}
}
