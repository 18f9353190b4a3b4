package manager

import (
	"fmt"
	"os"
	"path/filepath"
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
