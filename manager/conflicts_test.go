package manager

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/providers"
)

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

func init() {
	// files-nocopy: the files provider, declared as a provider whose stores cannot hold a
	// conflict copy (as a plugin with a store of one item declares).
	p, err := providers.Lookup("files")
	if err != nil {
		panic(err)
	}
	p.Name, p.NoKeepBoth = "files-nocopy", true
	providers.Register(p)
}

// TestKeepBothRefusedUpFront: a provider that cannot keep both versions of a conflict is never
// offered it: its conflicts list the choices left, resolving with keep-both is refused before
// anything is recorded (naming the choices left), and so is the keep-both policy.
func TestKeepBothRefusedUpFront(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "n.txt"), "original")
	m := w.open(false)
	w.waitDevice(m)
	if _, err := m.AddPartnership(ctxT(t), Partnership{Name: "Both", Provider: "files-nocopy", Device: w.serial(), OnConflict: PolicyKeepBoth,
		Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cannot keep both") {
		t.Errorf("a keep-both partnership of files-nocopy = %v, want refused", err)
	}
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Docs", Provider: "files-nocopy", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}})
	if err != nil {
		t.Fatal(err)
	}
	m.Sync(ctxT(t), SyncOptions{}, p.ID)
	writeFile(t, filepath.Join(w.desktop, "n.txt"), "desktop version")
	writeFile(t, filepath.Join(w.phone, "Documents", "n.txt"), "phone version!")
	if ss, _ := m.Sync(ctxT(t), SyncOptions{}, p.ID); len(ss) != 1 || ss[0].Conflicts != 1 {
		t.Fatalf("sync = %+v, want one conflict", ss)
	}
	cs, _ := m.Conflicts()
	if len(cs) != 1 || !slices.Equal(cs[0].Choices, []Keep{KeepDesktop, KeepDevice}) {
		t.Fatalf("conflicts = %+v, want one whose choices are desktop and device", cs)
	}
	err = m.Resolve(ctxT(t), cs[0].ID, KeepBoth)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "desktop or device") {
		t.Errorf("Resolve(keep both) = %v, want refused naming desktop or device", err)
	}
	if cs, _ := m.Conflicts(); len(cs) != 1 || cs[0].Resolution != "" {
		t.Errorf("after the refusal the conflicts are %+v, want it pending with no choice recorded", cs)
	}
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepDevice); err != nil {
		t.Fatalf("Resolve(keep device) = %v", err)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(w.desktop, "n.txt")); got != "phone version!" {
		t.Errorf("desktop n.txt = %q, want the device's", got)
	}
}

// TestResolutionThatCannotBeCarriedOut: a choice that the session cannot carry out (here, a
// conflict copy whose name is too long for the file system) stays pending with the reason, and
// another choice can be made.
func TestResolutionThatCannotBeCarriedOut(t *testing.T) {
	w := newWorld(t)
	long := strings.Repeat("n", 240) + ".txt"
	writeFile(t, filepath.Join(w.desktop, long), "original")
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	m.Sync(ctxT(t), SyncOptions{}, p.ID)
	writeFile(t, filepath.Join(w.desktop, long), "desktop version")
	writeFile(t, filepath.Join(w.phone, "Documents", long), "phone version!")
	if ss, _ := m.Sync(ctxT(t), SyncOptions{}, p.ID); len(ss) != 1 || ss[0].Conflicts != 1 {
		t.Fatalf("sync = %+v, want one conflict", ss)
	}
	cs, _ := m.Conflicts()
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepBoth); err != nil {
		t.Fatalf("Resolve(keep both) = %v", err)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	cs, _ = m.Conflicts()
	if len(cs) != 1 || cs[0].Resolution != "" || !strings.Contains(cs[0].ResolutionError, "keep both could not be carried out") {
		t.Fatalf("after the session the conflicts are %+v, want it waiting for a new choice, saying why keep-both failed", cs)
	}
	if err := m.Resolve(ctxT(t), cs[0].ID, KeepDesktop); err != nil {
		t.Fatalf("Resolve(keep desktop) after the failure = %v", err)
	}
	if cs, _ := m.Conflicts(); len(cs) != 1 || cs[0].ResolutionError != "" {
		t.Errorf("after choosing again the conflicts are %+v, want the new choice without the old failure", cs)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	if cs, _ := m.Conflicts(); len(cs) != 0 {
		t.Errorf("conflicts after keeping the desktop's = %+v", cs)
	}
	if got := readFile(t, filepath.Join(w.phone, "Documents", long)); got != "desktop version" {
		t.Errorf("phone %s = %q, want the desktop's", long, got)
	}
}
