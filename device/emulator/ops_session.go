package emulator

import (
	"slices"

	"github.com/cradle-sync/cradle/device/mtp"
)

// handler runs one operation; it returns the answer, or an error when the transaction ended
// without one (cancelled, device gone).
type handler func(r *responder, p []uint32) (answer, error)

var handlers map[mtp.OpCode]handler

func init() {
	handlers = map[mtp.OpCode]handler{
		mtp.OpGetDeviceInfo:           (*responder).getDeviceInfo,
		mtp.OpOpenSession:             (*responder).openSession,
		mtp.OpCloseSession:            (*responder).closeSession,
		mtp.OpGetStorageIDs:           (*responder).getStorageIDs,
		mtp.OpGetStorageInfo:          (*responder).getStorageInfo,
		mtp.OpGetNumObjects:           (*responder).getNumObjects,
		mtp.OpGetObjectHandles:        (*responder).getObjectHandles,
		mtp.OpGetObjectInfo:           (*responder).getObjectInfo,
		mtp.OpGetObject:               (*responder).getObject,
		mtp.OpGetPartialObject:        (*responder).getPartialObject,
		mtp.OpGetPartialObject64:      (*responder).getPartialObject,
		mtp.OpDeleteObject:            (*responder).deleteObject,
		mtp.OpSendObjectInfo:          (*responder).sendObjectInfo,
		mtp.OpSendObject:              (*responder).sendObject,
		mtp.OpMoveObject:              (*responder).moveObject,
		mtp.OpGetObjectPropsSupported: (*responder).getObjectPropsSupported,
		mtp.OpGetObjectPropDesc:       (*responder).getObjectPropDesc,
		mtp.OpGetObjectPropValue:      (*responder).getObjectPropValue,
		mtp.OpSetObjectPropValue:      (*responder).setObjectPropValue,
		mtp.OpGetObjectPropList:       (*responder).getObjectPropList,
	}
}

func param(p []uint32, i int) uint32 {
	if i < len(p) {
		return p[i]
	}
	return 0
}

// deviceInfo is the DeviceInfo dataset: an Android-like phone.
func (e *Emulator) deviceInfo() *mtp.DeviceInfo {
	var ops []mtp.OpCode
	for op := range handlers {
		if e.offers(op) {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return &mtp.DeviceInfo{
		StandardVersion:        100,
		VendorExtensionID:      6,
		VendorExtensionVersion: 100,
		VendorExtensionDesc:    e.extensions(),
		OperationsSupported:    ops,
		EventsSupported: []mtp.EventCode{mtp.EventObjectAdded, mtp.EventObjectRemoved, mtp.EventObjectInfoChanged,
			mtp.EventStoreAdded, mtp.EventStoreRemoved},
		PlaybackFormats: []mtp.FormatCode{mtp.FormatUndefined, mtp.FormatAssociation, mtp.FormatText, mtp.FormatMP3,
			mtp.FormatEXIFJPEG, mtp.FormatPNG, mtp.FormatMP4, mtp.FormatVCard3},
		Manufacturer:  e.manufacturer(),
		Model:         e.model(),
		DeviceVersion: Version,
		SerialNumber:  e.reportedSerial(),
	}
}

// extensions is DeviceInfo's vendor extension description.
func (e *Emulator) extensions() string {
	switch {
	case e.opts.PTP:
		return ""
	case e.opts.NoAndroidExtensions:
		return "microsoft.com: 1.0;"
	}
	return "microsoft.com: 1.0; android.com: 1.0;"
}

func (e *Emulator) manufacturer() string {
	if e.opts.Manufacturer != "" {
		return e.opts.Manufacturer
	}
	return Manufacturer
}

func (e *Emulator) model() string {
	if e.opts.Model != "" {
		return e.opts.Model
	}
	return Model
}

// reportedSerial is the serial number in DeviceInfo.
func (e *Emulator) reportedSerial() string {
	if e.opts.UnknownSerial {
		return "????????"
	}
	return e.serial
}

func (r *responder) getDeviceInfo(p []uint32) (answer, error) {
	b, err := r.e.deviceInfo().MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

func (r *responder) openSession(p []uint32) (answer, error) {
	id := param(p, 0)
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	switch {
	case id == 0:
		return fail(mtp.RespInvalidParameter), nil
	case t.stale:
		return answer{code: mtp.RespSessionAlreadyOpen, params: []uint32{id}}, nil
	case t.session != 0:
		return answer{code: mtp.RespSessionAlreadyOpen, params: []uint32{t.session}}, nil
	}
	if !e.opts.KeepHandles || t.sessions == 0 {
		t.clear()
	}
	t.session, t.lastTID = id, 0
	t.sessions++
	return ok(), nil
}

func (r *responder) closeSession(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	if t.stale {
		t.stale = false
		return ok(), nil
	}
	if !e.opts.KeepHandles {
		t.clear()
	}
	t.session, t.lastTID = 0, 0
	e.intr.clear()
	return ok(), nil
}

func (r *responder) getStorageIDs(p []uint32) (answer, error) {
	r.e.mu.Lock()
	var ids []uint32
	for _, st := range r.e.tab.present() {
		if r.e.locked {
			break // a locked phone shows no storage
		}
		ids = append(ids, st.id)
	}
	r.e.mu.Unlock()
	return ok(), r.sendBytes(mtp.MarshalHandles(ids))
}

func (r *responder) getStorageInfo(p []uint32) (answer, error) {
	r.e.mu.Lock()
	st := r.e.tab.storage(param(p, 0))
	r.e.mu.Unlock()
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	free, total, err := diskSpace(st.dir)
	if err != nil {
		r.e.log.Debug("emulator: free space unknown", "dir", st.dir, "err", err)
	}
	if r.e.opts.FreeSpaceZero {
		free = 0
	}
	si := mtp.StorageInfo{
		StorageType:        st.typ,
		FilesystemType:     mtp.FilesystemGenericHierarchical,
		AccessCapability:   mtp.AccessReadWrite,
		MaxCapacity:        total,
		FreeSpaceInBytes:   free,
		FreeSpaceInObjects: 0xFFFFFFFF,
		StorageDescription: st.desc,
	}
	b, err := si.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}
