package manager

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// TestPluginStopped: a provider plugin (a real executable in <config>/plugins) that crashes
// shows as "provider stopped", and the next sync starts it again.
func TestPluginStopped(t *testing.T) {
	w := newWorld(t)
	exe := filepath.Join(w.config, "plugins", "cradle-provider-notes")
	build := exec.Command("go", "build", "-o", exe, "../examples/cradle-provider-notes")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example plugin: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(w.desktop, "first.md"), "# first")
	m, err := New(ctxT(t), Config{Dir: w.config, Monitors: []device.Monitor{w.mon}, Service: true, DebounceDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if errs := m.PluginErrors(); len(errs) > 0 {
		t.Fatalf("plugin errors: %v", errs)
	}
	ev := m.collect(t, SessionFinished|ProviderStopped|StatusChanged)
	w.waitDevice(m)
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Notes", Provider: "notes", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop, "device-path": "Notes"}})
	if err != nil {
		t.Fatal(err)
	}
	s := ev.next(30*time.Second, "the first session", finished(TriggerConnect)).Data.(Session)
	if s.Outcome != OutcomeOK || s.ToDevice.Created != 1 {
		t.Fatalf("first session = %+v", s)
	}
	pid := findProcess(t, exe)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev.next(10*time.Second, "provider stopped", func(e Event) bool { return e.Type == ProviderStopped })
	// A session the first one's echo started may be running when the plugin dies: it ends, and
	// the partnership then shows the provider stopped.
	deadline := time.Now().Add(15 * time.Second)
	for st := m.Status()[0]; st.State != StateStopped || st.Fix == ""; st = m.Status()[0] {
		if time.Now().After(deadline) {
			t.Fatalf("status after the crash = %+v, want provider-stopped with its fix", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	writeFile(t, filepath.Join(w.desktop, "second.md"), "# second")
	if err := m.SyncNow(p.ID); err != nil {
		t.Fatal(err)
	}
	s = ev.next(30*time.Second, "the sync after the crash", finished(TriggerManual)).Data.(Session)
	if s.Outcome != OutcomeOK || s.ToDevice.Created != 1 {
		t.Fatalf("session after the crash = %+v", s)
	}
	if _, err := os.Stat(filepath.Join(w.phone, "Notes", "second.md")); err != nil {
		t.Errorf("second.md did not reach the phone: %v", err)
	}
	if st := m.Status()[0]; st.State != StateIdle || st.Error != "" {
		t.Errorf("status after the restart = %+v", st)
	}
	if pid2 := findProcess(t, exe); pid2 == pid {
		t.Errorf("the plugin runs as the same process %d", pid)
	}
}

// findProcess returns the pid of the (one) process running the executable exe.
func findProcess(t *testing.T, exe string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && target == exe {
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no process runs %s", exe)
	return 0
}
