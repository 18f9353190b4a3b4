package emulator

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/mtp"
)

func quiet(o Options) Options {
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// raw drives an emulator with hand-made containers, as a USB initiator would.
type raw struct {
	t   *testing.T
	e   *Emulator
	ctx context.Context
}

func newRaw(t *testing.T, opts Options, setup func(dir string)) *raw {
	t.Helper()
	dir := t.TempDir()
	if setup != nil {
		setup(dir)
	}
	e, err := New(dir, quiet(opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return &raw{t: t, e: e, ctx: ctx}
}

func (r *raw) command(op mtp.OpCode, tid uint32, params ...uint32) {
	r.t.Helper()
	b, err := mtp.Container{Type: mtp.ContainerCommand, Code: uint16(op), TransactionID: tid, Params: params}.MarshalBinary()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.e.BulkOut(r.ctx, b); err != nil {
		r.t.Fatalf("BulkOut(%v): %v", op, err)
	}
}

func (r *raw) in(n int) []byte {
	r.t.Helper()
	buf := make([]byte, n)
	got, err := r.e.BulkIn(r.ctx, buf)
	if err != nil {
		r.t.Fatalf("BulkIn(%d): %v", n, err)
	}
	return buf[:got]
}

func (r *raw) response(tid uint32) mtp.Container {
	r.t.Helper()
	var c mtp.Container
	b := r.in(512)
	if err := c.UnmarshalBinary(b); err != nil || c.Type != mtp.ContainerResponse || c.TransactionID != tid {
		r.t.Fatalf("response to transaction %d: %+v, %v (%x)", tid, c, err, b)
	}
	return c
}

// session opens a session and returns the handle of the first object at the root.
func (r *raw) session() uint32 {
	r.t.Helper()
	r.command(mtp.OpOpenSession, 0, 1)
	r.response(0)
	r.command(mtp.OpGetObjectHandles, 1, 0xFFFFFFFF, 0, 0xFFFFFFFF)
	data := r.in(512)
	r.response(1)
	hs, err := mtp.UnmarshalHandles(data[mtp.HeaderSize:])
	if err != nil || len(hs) == 0 {
		r.t.Fatalf("GetObjectHandles: %v, %v", hs, err)
	}
	return hs[0]
}

func TestDataPhaseOnPacketBoundary(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 512-mtp.HeaderSize)
	setup := func(dir string) { os.WriteFile(filepath.Join(dir, "f"), payload, 0o644) }

	t.Run("zero-length packet", func(t *testing.T) {
		r := newRaw(t, Options{}, setup)
		h := r.session()
		// A read larger than the data ends at the zero-length packet.
		r.command(mtp.OpGetObject, 2, h)
		if got := r.in(1024); len(got) != 512 {
			t.Fatalf("read = %d bytes, want the 512 of the data container", len(got))
		}
		r.response(2)
		// A read of exactly the data leaves the zero-length packet for the next read.
		r.command(mtp.OpGetObject, 3, h)
		if got := r.in(512); len(got) != 512 {
			t.Fatalf("first read = %d bytes, want the 512 of the data container", len(got))
		}
		if got := r.in(512); len(got) != 0 {
			t.Fatalf("second read = %d bytes, want the zero-length packet", len(got))
		}
		r.response(3)
	})
	t.Run("no zero-length packet", func(t *testing.T) {
		r := newRaw(t, Options{NoZLP: true}, setup)
		h := r.session()
		r.command(mtp.OpGetObject, 2, h)
		// Without a zero-length packet, a read larger than the data runs on into the
		// response, as on QEMU's usb-mtp: an initiator must read exactly what is left.
		if got := r.in(1024); len(got) != 512+mtp.HeaderSize {
			t.Fatalf("read = %d bytes, want the data container and the response run together", len(got))
		}
	})
}

func TestReadsMustBeWholePackets(t *testing.T) {
	r := newRaw(t, Options{}, nil)
	r.command(mtp.OpGetDeviceInfo, 0)
	if _, err := r.e.BulkIn(r.ctx, make([]byte, 100)); !errors.Is(err, errOverflow) {
		t.Errorf("BulkIn(100 bytes) of a longer dataset = %v, want an overflow", err)
	}
}

func TestHeaderAloneIsAnIncompleteTransfer(t *testing.T) {
	r := newRaw(t, Options{}, func(dir string) { os.Mkdir(filepath.Join(dir, "d"), 0o755) })
	r.session()
	oi := mtp.ObjectInfo{StorageID: 0x00010001, ObjectFormat: mtp.FormatText, CompressedSize: 5, Filename: "x.txt"}
	b, _ := oi.MarshalBinary()
	r.command(mtp.OpSendObjectInfo, 2, 0x00010001, 0xFFFFFFFF)
	hdr, _ := mtp.Header{Length: uint32(12 + len(b)), Type: mtp.ContainerData, Code: uint16(mtp.OpSendObjectInfo), TransactionID: 2}.AppendBinary(nil)
	r.e.BulkOut(r.ctx, append(hdr, b...))
	if c := r.response(2); mtp.ResponseCode(c.Code) != mtp.RespOK {
		t.Fatalf("SendObjectInfo = %v", mtp.ResponseCode(c.Code))
	}
	r.command(mtp.OpSendObject, 3)
	hdr, _ = mtp.Header{Length: 12 + 5, Type: mtp.ContainerData, Code: uint16(mtp.OpSendObject), TransactionID: 3}.AppendBinary(nil)
	r.e.BulkOut(r.ctx, hdr) // the header alone: a short transfer that ends the data phase
	if c := r.response(3); mtp.ResponseCode(c.Code) != mtp.RespIncompleteTransfer {
		t.Errorf("SendObject with the header sent alone = %v, want IncompleteTransfer", mtp.ResponseCode(c.Code))
	}
	r.e.BulkOut(r.ctx, []byte("hello")) // the rest arrives as garbage and is ignored
	if _, err := os.Stat(filepath.Join(r.e.Dir(), "x.txt")); !os.IsNotExist(err) {
		t.Errorf("x.txt exists after an incomplete transfer (%v)", err)
	}
	r.command(mtp.OpGetStorageIDs, 4)
	r.in(512)
	r.response(4)
}

func TestSessionRules(t *testing.T) {
	r := newRaw(t, Options{}, nil)
	r.command(mtp.OpGetStorageIDs, 0)
	if c := r.response(0); mtp.ResponseCode(c.Code) != mtp.RespSessionNotOpen {
		t.Errorf("GetStorageIDs outside a session = %v, want SessionNotOpen", mtp.ResponseCode(c.Code))
	}
	r.command(mtp.OpOpenSession, 0, 1)
	r.response(0)
	r.command(mtp.OpOpenSession, 0, 1)
	if c := r.response(0); mtp.ResponseCode(c.Code) != mtp.RespSessionAlreadyOpen {
		t.Errorf("second OpenSession = %v, want SessionAlreadyOpen", mtp.ResponseCode(c.Code))
	}
	r.command(mtp.OpGetStorageIDs, 5)
	r.in(512)
	r.response(5)
	r.command(mtp.OpGetStorageIDs, 5)
	if c := r.response(5); mtp.ResponseCode(c.Code) != mtp.RespInvalidTransactionID {
		t.Errorf("a repeated transaction ID = %v, want InvalidTransactionID", mtp.ResponseCode(c.Code))
	}
	r.command(mtp.OpCode(0x9999), 6)
	if c := r.response(6); mtp.ResponseCode(c.Code) != mtp.RespOperationNotSupported {
		t.Errorf("an unknown operation = %v, want OperationNotSupported", mtp.ResponseCode(c.Code))
	}
}

func TestDeviceInfoFollowsOptions(t *testing.T) {
	ops := func(o Options) []mtp.OpCode {
		r := newRaw(t, o, nil)
		r.command(mtp.OpGetDeviceInfo, 0)
		b := r.in(4096)
		r.response(0)
		var di mtp.DeviceInfo
		if err := di.UnmarshalBinary(b[mtp.HeaderSize:]); err != nil {
			t.Fatal(err)
		}
		if di.Manufacturer != Manufacturer || di.Model != Model || di.SerialNumber != r.e.SerialNumber() || di.Extension("android.com") == o.NoAndroidExtensions {
			t.Errorf("DeviceInfo = %+v", di)
		}
		return di.OperationsSupported
	}
	all := ops(Options{})
	for _, op := range []mtp.OpCode{mtp.OpGetObjectPropList, mtp.OpGetPartialObject64, mtp.OpSetObjectPropValue, mtp.OpMoveObject} {
		if !slices.Contains(all, op) {
			t.Errorf("default device does not offer %v", op)
		}
	}
	q := ops(QEMU())
	for _, op := range []mtp.OpCode{mtp.OpGetObjectPropList, mtp.OpGetPartialObject64, mtp.OpSetObjectPropValue, mtp.OpMoveObject} {
		if slices.Contains(q, op) {
			t.Errorf("QEMU-like device offers %v", op)
		}
	}
	if !slices.Contains(q, mtp.OpGetPartialObject) {
		t.Errorf("QEMU-like device does not offer GetPartialObject")
	}
}

func TestSerial(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	first := Serial(a)
	if Serial(a) != first || first == Serial(b) {
		t.Errorf("Serial(%s) = %s, Serial(%s) = %s: want stable and distinct", a, Serial(a), b, Serial(b))
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(filepath.Dir(a))
	if rel := filepath.Base(a); Serial(rel) != Serial(a) {
		t.Errorf("Serial(%q) = %s, want Serial(%q) = %s", rel, Serial(rel), a, Serial(a))
	}
	if !strings.HasPrefix(Serial(a), "EMU") || len(Serial(a)) != 19 {
		t.Errorf("Serial = %q, want EMU and 16 hex digits", Serial(a))
	}
}

func TestHiddenFiles(t *testing.T) {
	setup := func(dir string) {
		os.WriteFile(filepath.Join(dir, ".nomedia"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, partPrefix+"1-x"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "a"), nil, 0o644)
		os.Symlink("a", filepath.Join(dir, "link"))
	}
	for _, tt := range []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{".nomedia", "a"}},
		{Options{HideDotFiles: true}, []string{"a"}},
	} {
		ctx := context.Background()
		dir := t.TempDir()
		setup(dir)
		d, err := OpenDevice(ctx, dir, quiet(tt.opts))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := d.List(ctx, 0x00010001, "")
		d.Close()
		var names []string
		for _, o := range objs {
			names = append(names, o.Name)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("List with HideDotFiles=%v = %q, %v; want %q", tt.opts.HideDotFiles, names, err, tt.want)
		}
	}
}

// Events are raised for the folders the initiator listed in the session, not for others.
func TestEventsOnlyForListedFolders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "listed"), 0o755)
	os.MkdirAll(filepath.Join(dir, "unlisted"), 0o755)
	d, err := OpenDevice(ctx, dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.List(ctx, 0x00010001, "listed"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "unlisted", "x"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "listed", "y"), nil, 0o644)
	select {
	case ev := <-d.Events():
		if ev.Kind != device.ObjectAdded || ev.Path != "listed/y" {
			t.Errorf("event = %+v, want listed/y added (and nothing for the unlisted folder)", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a file added to a listed folder")
	}
	select {
	case ev := <-d.Events():
		t.Errorf("unexpected event %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestMonitor(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	control := filepath.Join(t.TempDir(), "attached")
	m := NewMonitor(quiet(Options{}), a)
	m.UseControlFile(control)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan device.Presence, 16)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, func(p device.Presence) { reports <- p }) }()
	next := func(what string) device.Presence {
		t.Helper()
		select {
		case p := <-reports:
			return p
		case <-time.After(5 * time.Second):
			t.Fatalf("no report: %s", what)
		}
		return device.Presence{}
	}

	p := next("the device attached at start")
	if p.Key != Key(a) || !p.Connected || p.Device == nil || p.Err != nil || p.Device.Info().Serial != Serial(a) {
		t.Fatalf("first report = %+v, want %s connected", p, a)
	}
	devA := p.Device
	if err := m.Attach(b); err != nil {
		t.Fatal(err)
	}
	if p := next("Attach"); p.Key != Key(b) || !p.Connected || p.Device == nil {
		t.Errorf("after Attach: %+v", p)
	}
	m.Detach(a)
	if p := next("Detach"); p.Key != Key(a) || p.Connected {
		t.Errorf("after Detach: %+v", p)
	}
	var kinds []device.EventKind
	for ev := range devA.Events() {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Contains(kinds, device.DeviceGone) {
		t.Errorf("events of the detached device = %v, want DeviceGone", kinds)
	}
	if _, err := devA.Storages(ctx); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("Storages of the detached device = %v, want ErrDisconnected", err)
	}

	os.WriteFile(control, []byte("# plugged by a test\n"+c+"\n"+filepath.Join(c, "missing")+"\n"), 0o644)
	got := map[string]device.Presence{}
	for range 2 {
		p := next("the control file")
		got[p.Key] = p
	}
	if p := got[Key(c)]; !p.Connected || p.Device == nil {
		t.Errorf("folder from the control file: %+v", p)
	}
	if p := got[Key(filepath.Join(c, "missing"))]; !p.Connected || p.Err == nil || p.Device != nil {
		t.Errorf("missing folder from the control file: %+v, want an error", p)
	}
	os.WriteFile(control, nil, 0o644)
	got = map[string]device.Presence{}
	for range 2 {
		p := next("the emptied control file")
		got[p.Key] = p
	}
	if got[Key(c)].Connected || got[Key(filepath.Join(c, "missing"))].Connected {
		t.Errorf("after emptying the control file: %+v", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestResetDuringTransfer(t *testing.T) {
	r := newRaw(t, Options{}, func(dir string) { os.WriteFile(filepath.Join(dir, "big"), make([]byte, 20<<20), 0o644) })
	h := r.session()
	r.command(mtp.OpGetObject, 2, h)
	r.in(1 << 20)
	if err := r.e.Reset(r.ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	// Nothing of the cancelled transfer is left; the next transaction works.
	r.command(mtp.OpGetStorageIDs, 3)
	b := r.in(512)
	if h, err := mtp.ParseHeader(b); err != nil || h.TransactionID != 3 || h.Type != mtp.ContainerData {
		t.Fatalf("after Reset: %+v, %v", h, err)
	}
	if ids, _ := mtp.UnmarshalHandles(b[12:]); len(ids) != 1 || binary.LittleEndian.Uint32(b[16:]) != 0x00010001 {
		t.Errorf("storage IDs = %v", ids)
	}
	r.response(3)
}

// send runs a transaction with a data phase to the device (payload in one transfer) and returns
// the response.
func (r *raw) send(op mtp.OpCode, tid uint32, payload []byte, params ...uint32) mtp.Container {
	r.t.Helper()
	r.command(op, tid, params...)
	hdr, _ := mtp.Header{Length: uint32(mtp.HeaderSize + len(payload)), Type: mtp.ContainerData, Code: uint16(op), TransactionID: tid}.AppendBinary(nil)
	if _, err := r.e.BulkOut(r.ctx, append(hdr, payload...)); err != nil {
		r.t.Fatalf("BulkOut(data of %v): %v", op, err)
	}
	return r.response(tid)
}

// objectInfo asks about handle h and returns the answer's code and, when OK, the dataset.
func (r *raw) objectInfo(tid, h uint32) (mtp.ResponseCode, mtp.ObjectInfo) {
	r.t.Helper()
	r.command(mtp.OpGetObjectInfo, tid, h)
	var oi mtp.ObjectInfo
	b := r.in(4096)
	if hdr, err := mtp.ParseHeader(b); err == nil && hdr.Type == mtp.ContainerResponse {
		var c mtp.Container
		c.UnmarshalBinary(b)
		return mtp.ResponseCode(c.Code), oi
	}
	if err := oi.UnmarshalBinary(b[mtp.HeaderSize:]); err != nil {
		r.t.Fatalf("ObjectInfo of %d: %v", h, err)
	}
	return mtp.ResponseCode(r.response(tid).Code), oi
}

// With LateObjects, what the initiator creates has no handle until the device notices it, as on
// QEMU's usb-mtp: the handle SendObjectInfo answers is unknown at first, a new folder cannot be
// sent into, and the object appears later with an ObjectAdded event (in a listed folder). A
// hidden name never gets a handle.
func TestLateObjects(t *testing.T) {
	const late = 150 * time.Millisecond
	r := newRaw(t, Options{LateObjects: late, HideDotFiles: true}, func(dir string) {
		os.WriteFile(filepath.Join(dir, "old.txt"), []byte("old"), 0o644)
	})
	r.session() // lists the root: it is watched
	root := uint32(0xFFFFFFFF)
	start := time.Now()
	newFile := func(tid uint32, parent uint32, name string, data []byte) (mtp.ResponseCode, uint32) {
		t.Helper()
		oi := mtp.ObjectInfo{StorageID: 0x00010001, ObjectFormat: mtp.FormatText, CompressedSize: uint32(len(data)), Filename: name}
		b, _ := oi.MarshalBinary()
		c := r.send(mtp.OpSendObjectInfo, tid, b, 0x00010001, parent)
		if mtp.ResponseCode(c.Code) != mtp.RespOK {
			return mtp.ResponseCode(c.Code), 0
		}
		if c := r.send(mtp.OpSendObject, tid+1, data); mtp.ResponseCode(c.Code) != mtp.RespOK {
			t.Fatalf("SendObject(%s) = %v", name, mtp.ResponseCode(c.Code))
		}
		return mtp.RespOK, c.Param(2)
	}

	code, h := newFile(2, root, "new.txt", []byte("hello"))
	if code != mtp.RespOK {
		t.Fatalf("SendObjectInfo(new.txt) = %v", code)
	}
	if code, _ := r.objectInfo(4, h); code != mtp.RespInvalidObjectHandle && time.Since(start) < late {
		t.Errorf("GetObjectInfo(answered handle) right after the upload = %v, want InvalidObjectHandle", code)
	}
	if _, err := os.Stat(filepath.Join(r.e.Dir(), "new.txt")); err != nil {
		t.Errorf("new.txt is not on the host after SendObject: %v", err)
	}
	folder := mtp.ObjectInfo{StorageID: 0x00010001, ObjectFormat: mtp.FormatAssociation, AssociationType: mtp.AssociationGenericFolder, Filename: "dir"}
	b, _ := folder.MarshalBinary()
	c := r.send(mtp.OpSendObjectInfo, 5, b, 0x00010001, root)
	if mtp.ResponseCode(c.Code) != mtp.RespOK {
		t.Fatalf("SendObjectInfo(dir) = %v", mtp.ResponseCode(c.Code))
	}
	if code, _ := newFile(6, c.Param(2), "inside.txt", []byte("x")); code == mtp.RespOK && time.Since(start) < late {
		t.Errorf("sending into a folder the device has not registered = OK, want a refusal")
	}
	hidden, _ := newFile(8, root, ".hidden", []byte("dot"))
	if hidden != mtp.RespOK {
		t.Fatalf("SendObjectInfo(.hidden) = %v", hidden)
	}

	// The device notices new.txt and dir: ObjectAdded for each, with handles that work.
	added := map[string]bool{}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	tid := uint32(20)
	for len(added) < 2 {
		buf := make([]byte, 64)
		n, err := r.e.Interrupt(ctx, buf)
		if err != nil {
			t.Fatalf("waiting for ObjectAdded (got %v): %v", added, err)
		}
		var ev mtp.Container
		if err := ev.UnmarshalBinary(buf[:n]); err != nil || mtp.EventCode(ev.Code) != mtp.EventObjectAdded {
			t.Fatalf("event = %+v, %v; want ObjectAdded", ev, err)
		}
		code, oi := r.objectInfo(tid, ev.Param(0))
		tid++
		if code != mtp.RespOK {
			t.Fatalf("GetObjectInfo(%d) after ObjectAdded = %v", ev.Param(0), code)
		}
		added[oi.Filename] = true
	}
	if !added["new.txt"] || !added["dir"] {
		t.Errorf("ObjectAdded for %v, want new.txt and dir", added)
	}
	if time.Since(start) < late {
		t.Errorf("objects registered after %s, want %s or more", time.Since(start), late)
	}
	r.command(mtp.OpGetObjectHandles, tid, 0xFFFFFFFF, 0, root)
	data := r.in(512)
	r.response(tid)
	hs, _ := mtp.UnmarshalHandles(data[mtp.HeaderSize:])
	if len(hs) != 3 {
		t.Errorf("root holds %d objects, want old.txt, new.txt and dir (.hidden never shows)", len(hs))
	}
}

// With PrefixNames, a new object whose name starts a known sibling's (as QEMU's usb-mtp compares
// names) is answered with that sibling's handle and gets none until the next session.
func TestPrefixNames(t *testing.T) {
	r := newRaw(t, Options{PrefixNames: true}, func(dir string) {
		os.WriteFile(filepath.Join(dir, "pre-existing.txt"), []byte("old"), 0o644)
	})
	old := r.session() // lists the root
	oi := mtp.ObjectInfo{StorageID: 0x00010001, ObjectFormat: mtp.FormatText, CompressedSize: 3, Filename: "pre"}
	b, _ := oi.MarshalBinary()
	c := r.send(mtp.OpSendObjectInfo, 2, b, 0x00010001, 0xFFFFFFFF)
	if mtp.ResponseCode(c.Code) != mtp.RespOK || c.Param(2) != old {
		t.Fatalf("SendObjectInfo(pre) = %v with handle %d, want OK with pre-existing.txt's %d", mtp.ResponseCode(c.Code), c.Param(2), old)
	}
	if c := r.send(mtp.OpSendObject, 3, []byte("new")); mtp.ResponseCode(c.Code) != mtp.RespOK {
		t.Fatalf("SendObject(pre) = %v", mtp.ResponseCode(c.Code))
	}
	count := func(tid uint32) int {
		r.command(mtp.OpGetObjectHandles, tid, 0xFFFFFFFF, 0, 0xFFFFFFFF)
		data := r.in(512)
		r.response(tid)
		hs, _ := mtp.UnmarshalHandles(data[mtp.HeaderSize:])
		return len(hs)
	}
	time.Sleep(300 * time.Millisecond) // the watcher has looked at the folder again
	if n := count(4); n != 1 {
		t.Errorf("the root lists %d objects in the session that made pre, want pre-existing.txt alone", n)
	}
	if code, oi := r.objectInfo(5, old); code != mtp.RespOK || oi.Filename != "pre-existing.txt" {
		t.Errorf("GetObjectInfo(%d) = %v %q, want pre-existing.txt", old, code, oi.Filename)
	}
	r.command(mtp.OpCloseSession, 6)
	r.response(6)
	r.command(mtp.OpOpenSession, 0, 1)
	r.response(0)
	if n := count(1); n != 2 {
		t.Errorf("the root lists %d objects in a new session, want pre and pre-existing.txt", n)
	}
}

// A file changed on the device (a phone's app saving it with the same size) and read by the
// initiator before the device's own watcher settled is still announced: the read recording the
// new size and time used to swallow the event, and an initiator that syncs only the changes it
// is told of never looked at the file (watch quiet with the sides different).
func TestChangeAnnouncedWhenReadFirst(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "listed"), 0o755)
	f := filepath.Join(dir, "listed", "f.txt")
	os.WriteFile(f, []byte("aaaa"), 0o644)
	d, err := OpenDevice(ctx, dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.List(ctx, 0x00010001, "listed"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f, []byte("bbbb"), 0o644)
	later := time.Now().Add(5 * time.Second)
	os.Chtimes(f, later, later)
	if _, err := d.List(ctx, 0x00010001, "listed"); err != nil { // within the watcher's settle time
		t.Fatal(err)
	}
	select {
	case ev := <-d.Events():
		if ev.Kind != device.ObjectChanged || ev.Path != "listed/f.txt" {
			t.Errorf("event = %+v, want listed/f.txt changed", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a file changed on the device and listed before the device's watcher settled")
	}
	select {
	case ev := <-d.Events():
		t.Errorf("a second event %+v for one change", ev)
	case <-time.After(300 * time.Millisecond):
	}
}
