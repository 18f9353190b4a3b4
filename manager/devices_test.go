package manager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
)

// TestNewDevice: a device seen for the first time is announced; once it has a partnership it is
// not new, and known devices with partnerships are listed when unplugged.
func TestNewDevice(t *testing.T) {
	w := newWorld(t)
	mon := emulator.NewMonitor(emulator.Options{})
	m := w.open(false, mon)
	ev := m.collect(t, DeviceNew|DeviceConnected|DeviceDisconnected)
	if err := mon.Attach(w.phone); err != nil {
		t.Fatal(err)
	}
	d := ev.next(10*time.Second, "new device", func(e Event) bool { return e.Type == DeviceNew }).Data.(DeviceInfo)
	if d.Serial != w.serial() || !d.New || !d.Connected() || len(d.Storages) == 0 {
		t.Errorf("new device = %+v", d)
	}
	if devs := m.Devices(); len(devs) != 1 || !devs[0].New {
		t.Errorf("Devices() = %+v, want the new device", devs)
	}
	w.addDocs(m)
	if devs := m.Devices(); devs[0].New || devs[0].Partnerships != 1 {
		t.Errorf("Devices() after adding a partnership = %+v", devs)
	}
	mon.Detach(w.phone)
	ev.next(10*time.Second, "unplug", func(e Event) bool { return e.Type == DeviceDisconnected })
	devs := m.Devices()
	if len(devs) != 1 || devs[0].State != DeviceStateDisconnected || devs[0].Serial != w.serial() {
		t.Errorf("Devices() after the unplug = %+v, want the known device, disconnected", devs)
	}
	if st := m.Status()[0]; st.State != StateDisconnected {
		t.Errorf("status = %+v, want disconnected", st)
	}
	// Seen before: plugging it in again is not "new".
	mon.Attach(w.phone)
	ev.next(10*time.Second, "re-plug", func(e Event) bool { return e.Type == DeviceConnected })
	ev.none(300*time.Millisecond, "a second new-device event", func(e Event) bool { return e.Type == DeviceNew })
}

// problemMonitor reports one device present but unusable, as device/usb does for a phone held by
// another program.
type problemMonitor struct{ err error }

func (p problemMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	report(device.Presence{Key: "usb:1-2:7", Connected: true, Label: "Google Pixel 7 (18d1:4ee1)", Err: p.err})
	<-ctx.Done()
	return nil
}

// TestDeviceProblem: a device that is present but busy is listed with its diagnosis.
func TestDeviceProblem(t *testing.T) {
	w := newWorld(t)
	diag := fmt.Errorf("the device is held by gvfsd-mtp (pid 1234); quit it with \"gio mount -u mtp://...\": %w", device.ErrBusy)
	m := w.open(false, problemMonitor{diag})
	if err := m.WaitDevices(ctxT(t), "usb:1-2:7"); err != nil {
		t.Fatal(err)
	}
	devs := m.Devices()
	if len(devs) != 1 || devs[0].State != DeviceStateBusy || !strings.Contains(devs[0].Problem, "gvfsd-mtp") || devs[0].Connected() {
		t.Errorf("Devices() = %+v, want the busy phone with its diagnosis", devs)
	}
}

// TestTwoDevicesAtOnce: sessions of two devices run side by side; each device runs one at a time.
func TestTwoDevicesAtOnce(t *testing.T) {
	w := newWorld(t)
	phone2 := filepath.Join(t.TempDir(), "phone2")
	desk2 := filepath.Join(t.TempDir(), "desk2")
	os.MkdirAll(phone2, 0o755)
	os.MkdirAll(desk2, 0o755)
	for i := 0; i < 300; i++ {
		writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("f%03d.txt", i)), strings.Repeat("a", 2000))
		writeFile(t, filepath.Join(desk2, fmt.Sprintf("g%03d.txt", i)), strings.Repeat("b", 2000))
	}
	w.mon = emulator.NewMonitor(emulator.Options{}, w.phone, phone2)
	m := w.open(false)
	if err := m.WaitDevices(ctxT(t), emulator.Key(w.phone), emulator.Key(phone2)); err != nil {
		t.Fatal(err)
	}
	p1 := w.addDocs(m)
	p2, err := m.AddPartnership(ctxT(t), Partnership{Name: "Second", Provider: "files", Device: emulator.Serial(phone2),
		Options: map[string]string{"desktop": desk2, "device-path": "Documents"}})
	if err != nil {
		t.Fatal(err)
	}
	p3, err := m.AddPartnership(ctxT(t), Partnership{Name: "Third", Provider: "files", Device: emulator.Serial(phone2),
		Options: map[string]string{"desktop": desk2, "device-path": "Copy"}})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := m.Sync(ctxT(t), SyncOptions{}, p1.ID, p2.ID, p3.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Outcome != OutcomeOK || s.ToDevice.Created != 300 {
			t.Errorf("session %s = %s, %d created", s.Name, s.Outcome, s.ToDevice.Created)
		}
	}
	overlap := func(a, b Session) bool { return a.Start.Before(b.End) && b.Start.Before(a.End) }
	if !overlap(ss[0], ss[1]) {
		t.Errorf("the two devices' sessions did not overlap: %v-%v and %v-%v", ss[0].Start, ss[0].End, ss[1].Start, ss[1].End)
	}
	if overlap(ss[1], ss[2]) {
		t.Errorf("two sessions of one device overlapped")
	}
}
