package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchDeviceAtStart: a device attached when `cradle watch` starts is synced on plug-in, and
// watch prints that session like any other, however quickly it ends (it must not be missed
// between the device attaching and watch listening for events), and the device only once.
func TestWatchDeviceAtStart(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "a.txt"), "desktop", at(0))
	e.partner()
	w := startWatch(t, "--config", e.config, "--emulate", e.phone)
	waitFor(t, 15*time.Second, "the session on plug-in, printed", w, func() bool {
		out := w.output()
		return strings.Contains(out, "sync started: docs (connect)") && strings.Contains(out, "sync finished: docs")
	})
	if got := get(t, filepath.Join(e.devDir(), "a.txt")); got != "desktop" {
		t.Errorf("a.txt on the phone = %q, want %q", got, "desktop")
	}
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("watch did not stop on SIGINT; printed:\n%s", w.output())
	}
	w.cmd.Wait()
	if n := strings.Count(w.output(), "device connected"); n != 1 {
		t.Errorf("watch printed %d \"device connected\" lines, want 1:\n%s", n, w.output())
	}
}
