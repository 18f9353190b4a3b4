package manager

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// TestFullSessionCatchesUpWatchers: a full session (on plug-in) brings the watchers' change sets
// up to date, so the first edit after it syncs by looking at the edited file only, not with
// another full pass of both sides.
func TestFullSessionCatchesUpWatchers(t *testing.T) {
	w := newWorld(t)
	const folders = 30
	for i := range folders {
		writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("d%02d", i), "f.txt"), "x")
	}
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	for range 2 { // the second settles the device's sync state: nothing left to write
		if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	// The desktop watcher reports files changed just before it started (see providers/files):
	// let the tree age, as a user's has.
	time.Sleep(2500 * time.Millisecond)

	mon := newFaultMonitor(w.phone)
	m = w.open(true, []device.Monitor{mon}...)
	ev := m.collect(t, SessionStarted|SessionFinished)
	ev.next(20*time.Second, "the session on plug-in", finished(TriggerConnect))
	emu := mon.emulator(t)
	// Let the echo of the session's own doings (if any) go by.
	for quiet := false; !quiet; {
		select {
		case e := <-ev.sub.C():
			t.Logf("before the edit: %v %+v", e.Type, e.Data)
		case <-time.After(3 * m.debounce):
			quiet = true
		}
	}
	before := emu.Stats().FolderReads
	writeFile(t, filepath.Join(w.desktop, "d07", "f.txt"), "edited")
	ev.next(20*time.Second, "the session after the edit", finished(TriggerChange))
	if n := emu.Stats().FolderReads - before; n >= folders {
		t.Errorf("the session after one edit read %d of the device's folders: a full pass, not the edited file only", n)
	}
	if got, err := os.ReadFile(filepath.Join(w.phone, "Documents", "d07", "f.txt")); err != nil || string(got) != "edited" {
		t.Errorf("the edit on the device = %q, %v", got, err)
	}
}

// TestOwnWritesNotPending: the files a session writes come back from the watchers as
// notifications; the window must not then say "N changes waiting" for them. A real edit made
// afterwards is shown while it waits, as one change however many events the watcher saw.
func TestOwnWritesNotPending(t *testing.T) {
	w := newWorld(t)
	for i := range 40 {
		writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("to-phone-%02d.txt", i)), "desktop")
		writeFile(t, filepath.Join(w.phone, "Documents", fmt.Sprintf("to-desktop-%02d.txt", i)), "phone")
	}
	m := w.open(true)
	m.mu.Lock()
	m.conf.Settings.SyncOnConnect = false
	m.debounce = time.Second
	m.mu.Unlock()
	w.waitDevice(m)
	p := w.addDocs(m)
	ev := m.collect(t, SessionFinished)
	for range 2 {
		if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(3 * m.debounce); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if st := m.Status()[0]; st.Pending != 0 {
				t.Fatalf("%d changes waiting after a sync that wrote 40 files each way and changed nothing else", st.Pending)
			}
		}
		for i := range 40 {
			writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("to-phone-%02d.txt", i)), "desktop, edited")
			writeFile(t, filepath.Join(w.phone, "Documents", fmt.Sprintf("to-desktop-%02d.txt", i)), "phone, edited")
		}
		ev.next(10*time.Second, "the session after the edits", finished(TriggerChange))
	}
	// Let the echo sessions go by.
	for quiet := false; !quiet; {
		select {
		case <-ev.sub.C():
		case <-time.After(2 * m.debounce):
			quiet = true
		}
	}
	writeFile(t, filepath.Join(w.desktop, "edit.txt"), "edit") // a create and a write: one change
	var seen []int
	for deadline := time.Now().Add(m.debounce); ; time.Sleep(20 * time.Millisecond) {
		st := m.Status()[0]
		if st.Pending == 1 {
			break
		}
		if len(seen) == 0 || seen[len(seen)-1] != st.Pending {
			seen = append(seen, st.Pending)
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes waiting after one new file: %v, want 1", seen)
		}
	}
}

// TestContactEditedOnPhone: a contact edited on the phone while it is connected reaches the
// address book by itself, after the quiet period; the contacts file Cradle writes to the phone
// starts no session of its own.
func TestContactEditedOnPhone(t *testing.T) {
	w := newWorld(t)
	card := func(tel string) string {
		return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ana-1\r\nN:Silva;Ana;;;\r\nFN:Ana Silva\r\nTEL;TYPE=cell:" + tel + "\r\nEND:VCARD\r\n"
	}
	desk := filepath.Join(w.desktop, "ana-1.vcf")
	writeFile(t, desk, card("+351 910 000 000"))
	// The desktop watcher reports cards changed just before it started (see providers/contacts):
	// let the address book age, as a user's has.
	time.Sleep(2500 * time.Millisecond)
	m := w.open(true)
	ev := m.collect(t, SessionStarted|SessionFinished)
	w.waitDevice(m)
	if _, err := m.AddPartnership(ctxT(t), Partnership{Name: "Contacts", Provider: "contacts", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop}}); err != nil {
		t.Fatal(err)
	}
	first := ev.next(10*time.Second, "the first session (on adding the partnership)", finished(TriggerConnect)).Data.(Session)
	if first.Outcome != OutcomeOK || first.ToDevice.Created != 1 {
		t.Fatalf("first session = %+v, want the card created on the phone", first)
	}
	ev.none(3*m.debounce, "a session after the first, with nothing changed but the contacts file Cradle wrote",
		func(e Event) bool { return e.Type == SessionStarted })

	devFile := filepath.Join(w.phone, "Contacts", "contacts.vcf")
	writeFile(t, devFile, card("+351 922 222 222")) // the phone's contacts app
	ev.next(10*time.Second, "a session after the edit on the phone", started(TriggerChange))
	fin := ev.next(20*time.Second, "its end", finished(TriggerChange)).Data.(Session)
	if fin.Outcome != OutcomeOK || fin.ToDesktop.Updated != 1 {
		t.Errorf("the session after the edit = %+v, want the card updated on the desktop", fin)
	}
	if got, err := os.ReadFile(desk); err != nil || !strings.Contains(string(got), "922 222 222") {
		t.Errorf("address book after the edit on the phone = %q, %v", got, err)
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
