package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/repl"
)

// pausingDesktop is the files provider's desktop store, asking for no more automatic sessions
// (repl.Monitoring; ActiveSync's continueMonitoring = false).
type pausingDesktop struct{ *fsstore.DesktopStore }

func (pausingDesktop) ContinueMonitoring() bool { return false }

var _ repl.Monitoring = pausingDesktop{}

func init() {
	p, err := providers.Lookup("files")
	if err != nil {
		panic(err)
	}
	p.Name = "files-once"
	open := p.Open
	p.Open = func(ctx context.Context, env providers.Env) (*providers.Instance, error) {
		inst, err := open(ctx, env)
		if err != nil {
			return nil, err
		}
		inst.Desktop = pausingDesktop{inst.Desktop.(*fsstore.DesktopStore)}
		return inst, nil
	}
	providers.Register(p)
}

// TestMonitoringPause: a provider that wants no more scheduled syncs gets none (change
// notifications included) until the user syncs by hand.
func TestMonitoringPause(t *testing.T) {
	w := newWorld(t)
	m := w.open(true)
	ev := m.collect(t, SessionStarted|SessionFinished)
	w.waitDevice(m)
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Once", Provider: "files-once", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}})
	if err != nil {
		t.Fatal(err)
	}
	ev.next(10*time.Second, "the first session", finished(TriggerConnect))
	if st := m.Status()[0]; !st.Paused {
		t.Fatalf("status = %+v, want paused by the provider", st)
	}
	writeFile(t, filepath.Join(w.desktop, "later.txt"), "later")
	ev.none(4*m.debounce, "an automatic session while paused", func(e Event) bool { return e.Type == SessionStarted })
	if st := m.Status()[0]; st.Pending == 0 {
		t.Errorf("status = %+v, want the notified change counted as pending", st)
	}
	if err := m.SyncNow(p.ID); err != nil {
		t.Fatal(err)
	}
	s := ev.next(10*time.Second, "the manual session", finished(TriggerManual)).Data.(Session)
	if s.ToDevice.Created != 1 {
		t.Errorf("manual session = %+v, want later.txt sent", s)
	}
}

// TestDeviceMetadataShared: two computers (config folders) syncing one phone share the device
// replica through .cradle/, and a damaged snapshot is replaced without duplicating anything.
func TestDeviceMetadataShared(t *testing.T) {
	a := newWorld(t)
	writeFile(t, filepath.Join(a.desktop, "x.txt"), "x")
	ma := a.open(false)
	a.waitDevice(ma)
	pa := a.addDocs(ma)
	if _, err := ma.Sync(ctxT(t), SyncOptions{}, pa.ID); err != nil {
		t.Fatal(err)
	}
	ma.Close()

	b := &world{t: t, config: filepath.Join(t.TempDir(), "config-b"), desktop: filepath.Join(t.TempDir(), "desktop-b"), phone: a.phone,
		mon: emulator.NewMonitor(emulator.Options{}, a.phone)}
	os.MkdirAll(b.desktop, 0o755)
	mb := b.open(false)
	b.waitDevice(mb)
	pb := b.addDocs(mb)
	ss, err := mb.Sync(ctxT(t), SyncOptions{}, pb.ID)
	if err != nil || ss[0].Outcome != OutcomeOK || ss[0].ToDesktop.Created != 1 {
		t.Fatalf("B's first sync = %+v, %v", ss, err)
	}
	mb.Close()

	deviceReplica := func(config, id string) repl.ReplicaID {
		hf, err := repl.Open(filepath.Join(config, "state", id+".repl"), repl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer hf.Close()
		rs, err := hf.Replicas()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Name == sideDevice {
				return r.ID
			}
		}
		t.Fatalf("no device replica in %s", config)
		return repl.ReplicaID{}
	}
	if ra, rb := deviceReplica(a.config, pa.ID), deviceReplica(b.config, pb.ID); ra != rb {
		t.Errorf("the device replica is %v on A and %v on B; want one identity", ra, rb)
	}
	snaps, _ := filepath.Glob(filepath.Join(a.phone, ".cradle", "*.snapshot"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots on the phone = %v, want one (the older removed)", snaps)
	}
	// Damage it: A falls back on its own copy, says so, and writes a good one.
	if err := os.WriteFile(snaps[0], []byte("CRADLE-SNAPSHOT\ngarbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.mon = emulator.NewMonitor(emulator.Options{}, a.phone)
	ma = a.open(false)
	a.waitDevice(ma)
	ss, err = ma.Sync(ctxT(t), SyncOptions{}, pa.ID)
	if err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync with a damaged snapshot = %+v, %v", ss, err)
	}
	if !strings.Contains(strings.Join(ss[0].Errors, " "), "could not be read") {
		t.Errorf("session errors = %v, want a word about the unreadable device metadata", ss[0].Errors)
	}
	if c := ss[0]; c.ToDesktop.Created+c.ToDevice.Created != 0 {
		t.Errorf("sync with a damaged snapshot created items: %+v", c)
	}
	after, _ := filepath.Glob(filepath.Join(a.phone, ".cradle", "*.snapshot"))
	if len(after) != 1 || after[0] == snaps[0] {
		t.Errorf("snapshots after = %v, want a new one in place of %s", after, snaps[0])
	}
	ents, _ := os.ReadDir(a.desktop)
	if len(ents) != 1 {
		t.Errorf("desktop holds %d entries, want x.txt alone", len(ents))
	}
}

// TestConflictPreviewContacts: a contact edited in the same field on both sides is a conflict
// whose preview shows each side's fields; resolving it keeps the chosen card.
func TestConflictPreviewContacts(t *testing.T) {
	w := newWorld(t)
	card := func(tel string) string {
		return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ana-1\r\nN:Silva;Ana;;;\r\nFN:Ana Silva\r\nTEL;TYPE=cell:" + tel + "\r\nEND:VCARD\r\n"
	}
	writeFile(t, filepath.Join(w.desktop, "ana-1.vcf"), card("+351 910 000 000"))
	m := w.open(false)
	w.waitDevice(m)
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Contacts", Provider: "contacts", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	devFile := filepath.Join(w.phone, "Contacts", "contacts.vcf")
	if _, err := os.Stat(devFile); err != nil {
		t.Fatalf("contacts file on the phone: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	writeFile(t, filepath.Join(w.desktop, "ana-1.vcf"), card("+351 911 111 111"))
	os.Chtimes(filepath.Join(w.desktop, "ana-1.vcf"), past, past)
	writeFile(t, devFile, card("+351 922 222 222"))
	ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
	if err != nil || ss[0].Conflicts != 1 {
		t.Fatalf("sync = %+v, %v; want one conflict", ss, err)
	}
	cs, err := m.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("Conflicts() = %+v, %v", cs, err)
	}
	field := func(pv *Preview, name string) string {
		if pv == nil {
			return ""
		}
		for _, f := range pv.Fields {
			if f.Name == name {
				return f.Value
			}
		}
		return ""
	}
	if d, v := field(cs[0].Desktop.Preview, "TEL"), field(cs[0].Device.Preview, "TEL"); !strings.Contains(d, "911") || !strings.Contains(v, "922") {
		t.Errorf("TEL previews = %q / %q, want each side's number", d, v)
	}
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepDevice); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(w.desktop, "ana-1.vcf"))
	if !strings.Contains(string(b), "922") {
		t.Errorf("desktop card after keeping the device's = %q", b)
	}
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepDevice); !errors.Is(err, ErrNoConflict) {
		t.Errorf("resolving it again = %v, want ErrNoConflict", err)
	}
}

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

// TestRefreshPending: Refresh counts what a session would do, without doing it.
func TestRefreshPending(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "a.txt"), "a")
	writeFile(t, filepath.Join(w.desktop, "b.txt"), "b")
	writeFile(t, filepath.Join(w.phone, "Documents", "c.txt"), "c")
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	if err := m.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := m.Status()[0]; st.Pending != 3 {
		t.Errorf("pending before the first sync = %d, want 3", st.Pending)
	}
	if _, err := os.Stat(filepath.Join(w.phone, "Documents", "a.txt")); err == nil {
		t.Errorf("Refresh copied a file")
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctxT(t), p.ID); err != nil {
		t.Fatal(err)
	}
	if st := m.Status()[0]; st.Pending != 0 || st.LastOutcome != OutcomeOK {
		t.Errorf("status after the sync = %+v, want nothing pending", st)
	}
}

// TestResolveBothWhileAway: "keep both" chosen while the device is away is shown as waiting and
// applied by the next session.
func TestResolveBothWhileAway(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "n.txt"), "original")
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	m.Sync(ctxT(t), SyncOptions{}, p.ID)
	writeFile(t, filepath.Join(w.desktop, "n.txt"), "desktop version")
	writeFile(t, filepath.Join(w.phone, "Documents", "n.txt"), "phone version!")
	if ss, _ := m.Sync(ctxT(t), SyncOptions{}, p.ID); len(ss) != 1 || ss[0].Conflicts != 1 {
		t.Fatalf("sync = %+v, want one conflict", ss)
	}
	ev := m.collect(t, ConflictResolved|DeviceDisconnected)
	w.mon.Detach(w.phone)
	ev.next(10*time.Second, "unplug", func(e Event) bool { return e.Type == DeviceDisconnected })
	cs, _ := m.Conflicts()
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepBoth); err != nil {
		t.Fatal(err)
	}
	if c := ev.next(5*time.Second, "resolved", func(e Event) bool { return e.Type == ConflictResolved }).Data.(Conflict); c.Resolution != KeepBoth {
		t.Errorf("resolved event = %+v", c)
	}
	cs, _ = m.Conflicts()
	if len(cs) != 1 || cs[0].Resolution != KeepBoth {
		t.Errorf("conflicts while away = %+v, want the choice waiting", cs)
	}
	w.mon.Attach(w.phone)
	w.waitDevice(m)
	for deadline := time.Now().Add(10 * time.Second); !m.Status()[0].Connected && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	if cs, _ := m.Conflicts(); len(cs) != 0 {
		t.Errorf("conflicts after the session = %+v", cs)
	}
	copies, _ := filepath.Glob(filepath.Join(w.desktop, "n (conflict*"))
	if len(copies) != 1 {
		t.Errorf("keep both left %v beside n.txt, want one copy", copies)
	}
}

// TestInvalidField: each validation error names the field it concerns, so that a form can put
// the message beside it.
func TestInvalidField(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	good := func() Partnership {
		return Partnership{Name: "Docs", Provider: "files", Device: w.serial(),
			Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}}
	}
	for _, c := range []struct {
		field string
		spoil func(p *Partnership)
	}{
		{"name", func(p *Partnership) { p.Name = " " }},
		{"provider", func(p *Partnership) { p.Provider = "no-such-provider" }},
		{"direction", func(p *Partnership) { p.Direction = "sideways" }},
		{"on-conflict", func(p *Partnership) { p.OnConflict = "coin-toss" }},
		{"option:desktop", func(p *Partnership) { p.Options["desktop"] = filepath.Join(w.desktop, "missing") }},
		{"option:device-path", func(p *Partnership) { p.Options["device-path"] = "Documents/../../etc" }},
	} {
		p := good()
		c.spoil(&p)
		_, err := m.AddPartnership(ctxT(t), p)
		if !errors.Is(err, ErrInvalid) || InvalidField(err) != c.field {
			t.Errorf("%s spoiled: err %v, field %q; want ErrInvalid for %q", c.field, err, InvalidField(err), c.field)
		}
	}
	if _, err := m.AddPartnership(ctxT(t), good()); err != nil {
		t.Errorf("the good partnership: %v", err)
	}
}
