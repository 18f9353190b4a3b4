package manager

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/repl"
)

// events collects a subscription's events for a test.
type events struct {
	t   *testing.T
	sub *Subscription
}

func (m *Manager) collect(t *testing.T, mask EventType) *events {
	e := &events{t: t, sub: m.Subscribe(mask)}
	t.Cleanup(e.sub.Close)
	return e
}

// next waits for the next event matching ok.
func (e *events) next(d time.Duration, what string, ok func(Event) bool) Event {
	e.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, open := <-e.sub.C():
			if !open {
				e.t.Fatalf("%s: subscription closed", what)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			e.t.Fatalf("%s: no such event within %v", what, d)
		}
	}
}

// none fails if an event matching ok arrives within d.
func (e *events) none(d time.Duration, what string, ok func(Event) bool) {
	e.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-e.sub.C():
			if ok(ev) {
				e.t.Fatalf("%s: got %v %+v", what, ev.Type, ev.Data)
			}
		case <-timeout:
			return
		}
	}
}

func finished(trigger Trigger) func(Event) bool {
	return func(ev Event) bool {
		s, ok := ev.Data.(Session)
		return ev.Type == SessionFinished && ok && (trigger == "" || s.Trigger == trigger)
	}
}

func started(trigger Trigger) func(Event) bool {
	return func(ev Event) bool {
		s, ok := ev.Data.(Session)
		return ev.Type == SessionStarted && ok && s.Trigger == trigger
	}
}

// addDocs adds the usual files partnership (desktop folder with the phone's Documents).
func (w *world) addDocs(m *Manager) Partnership {
	w.t.Helper()
	p, err := m.AddPartnership(ctxT(w.t), Partnership{Name: "Docs", Provider: "files", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}})
	if err != nil {
		w.t.Fatalf("AddPartnership: %v", err)
	}
	return p
}

// TestDebounce: a burst of desktop changes while connected starts one incremental session after
// the quiet period, which carries the whole burst.
func TestDebounce(t *testing.T) {
	w := newWorld(t)
	m := w.open(true)
	ev := m.collect(t, SessionStarted|SessionFinished)
	w.waitDevice(m)
	w.addDocs(m)
	ev.next(10*time.Second, "the first session (on adding the partnership)", finished(TriggerConnect))
	var last time.Time
	for i := 0; i < 5; i++ {
		writeFile(t, filepath.Join(w.desktop, "burst", string(rune('a'+i))+".txt"), "burst")
		last = time.Now()
		time.Sleep(m.debounce / 3)
	}
	st := ev.next(10*time.Second, "a change session", started(TriggerChange))
	if gap := st.Time.Sub(last); gap < m.debounce*9/10 {
		t.Errorf("the session started %v after the last change, before the %v quiet period", gap, m.debounce)
	}
	fin := ev.next(10*time.Second, "its end", finished(TriggerChange)).Data.(Session)
	// The folder and its five files, in one session.
	if fin.ToDevice.Created != 6 {
		t.Errorf("the change session created %d items on the device, want 6 (the whole burst)", fin.ToDevice.Created)
	}
	for i := 0; i < 5; i++ {
		if _, err := os.Stat(filepath.Join(w.phone, "Documents", "burst", string(rune('a'+i))+".txt")); err != nil {
			t.Errorf("burst file %d not on the device: %v", i, err)
		}
	}
}

// TestRetryAfterFailure: a failed session is tried again after the retry interval, and the
// status says what went wrong and when the next try is.
func TestRetryAfterFailure(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.phone, "Documents", "a.txt"), "a")
	fm := newFaultMonitor(w.phone)
	m := w.open(true, fm)
	m.mu.Lock()
	m.conf.Settings.RetryInterval = 700 * time.Millisecond
	m.conf.Settings.SyncOnConnect = false
	m.mu.Unlock()
	w.waitDevice(m)
	p := w.addDocs(m)
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	ev := m.collect(t, SessionFinished|SessionStarted)
	// The echo of the first sync's own writes may start a (quiet) session; let it pass.
	ev.none(5*m.debounce, "", func(Event) bool { return false })
	// Another program holds the device: every command is answered "busy".
	emu := fm.emulator(t)
	emu.Busy(0, -1)
	if err := m.SyncNow(p.ID); err != nil {
		t.Fatal(err)
	}
	fail := ev.next(30*time.Second, "the failed session", finished(TriggerManual)).Data.(Session)
	if fail.Outcome != OutcomeFailed || len(fail.Errors) == 0 {
		t.Fatalf("session = %+v, want failed with an error", fail)
	}
	st := m.Status()[0]
	if st.State != StateError || !strings.Contains(st.Error, "busy") || st.Fix == "" || st.NextSync.IsZero() || time.Until(st.NextSync) > time.Second {
		t.Errorf("status after the failure = %+v, want the busy error with its fix and a retry within a second", st)
	}
	emu.Busy(0, 0)
	retry := ev.next(30*time.Second, "the retry", finished(TriggerRetry)).Data.(Session)
	if retry.Outcome != OutcomeOK {
		t.Errorf("retry = %+v, want ok", retry)
	}
	if st := m.Status()[0]; st.State != StateIdle || st.Error != "" {
		t.Errorf("status after the retry = %+v", st)
	}
}

// TestStop: Stop cancels a running session cleanly (no partial file); the next one finishes.
func TestStop(t *testing.T) {
	w := newWorld(t)
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(w.desktop, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	ev := m.collect(t, SessionProgress)
	done := make(chan []Session, 1)
	go func() {
		ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
		if err != nil {
			t.Error(err)
		}
		done <- ss
	}()
	ev.next(30*time.Second, "bytes moving", func(e Event) bool {
		pr, ok := e.Data.(Progress)
		return ok && pr.Phase == "syncing" && pr.BytesDone > 0
	})
	if st := m.Status()[0]; st.State != StateSyncing || st.Progress == nil || st.Progress.BytesTotal != 64<<20 {
		t.Errorf("status while syncing = %+v", st)
	}
	m.Stop(p.ID)
	ss := <-done
	if len(ss) != 1 || ss[0].Outcome != OutcomeStopped {
		t.Fatalf("stopped session = %+v", ss)
	}
	ents, _ := os.ReadDir(filepath.Join(w.phone, "Documents"))
	for _, e := range ents {
		if e.Name() == "big.bin" {
			if fi, _ := e.Info(); fi.Size() != int64(len(data)) {
				t.Errorf("a partial big.bin (%d bytes) is on the device", fi.Size())
			}
		}
	}
	if st := m.Status()[0]; st.State != StateIdle || st.LastOutcome != OutcomeStopped {
		t.Errorf("status after Stop = %+v", st)
	}
	ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
	if err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync after stop = %+v, %v", ss, err)
	}
	got, err := os.ReadFile(filepath.Join(w.phone, "Documents", "big.bin"))
	if err != nil || len(got) != len(data) || string(got[len(got)-100:]) != string(data[len(data)-100:]) {
		t.Errorf("big.bin on the device after the second sync: %d bytes, %v", len(got), err)
	}
	h, err := m.History(p.ID, 0)
	if err != nil || len(h) != 2 || h[0].Outcome != OutcomeOK || h[1].Outcome != OutcomeStopped {
		t.Errorf("history = %+v, %v; want the stopped and the finished session, newest first", h, err)
	}
}

// TestSchedule: a partnership's interval starts sessions while the device is connected.
func TestSchedule(t *testing.T) {
	w := newWorld(t)
	m := w.open(true)
	m.mu.Lock()
	m.conf.Settings.SyncOnConnect = false
	m.mu.Unlock()
	ev := m.collect(t, SessionFinished)
	w.waitDevice(m)
	p := w.addDocs(m)
	m.mu.Lock()
	for i := range m.conf.Partnerships {
		m.conf.Partnerships[i].Interval = 400 * time.Millisecond
	}
	m.scheduleLocked(m.conf.Partnerships[0], m.parts[p.ID], m.devices[w.serial()])
	m.mu.Unlock()
	for i := 0; i < 2; i++ {
		ev.next(10*time.Second, "a scheduled session", finished(TriggerSchedule))
	}
	if st := m.Status()[0]; st.NextSync.IsZero() {
		t.Errorf("status = %+v, want the next sync time", st)
	}
}

// TestUnplugMidSession: a device unplugged during a transfer stops the session with a clear
// status; plugged in again, the next session completes.
func TestUnplugMidSession(t *testing.T) {
	w := newWorld(t)
	data := make([]byte, 48<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(w.desktop, "big.bin"), data, 0o644)
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	ev := m.collect(t, SessionProgress|DeviceDisconnected)
	done := make(chan []Session, 1)
	go func() {
		ss, _ := m.Sync(ctxT(t), SyncOptions{}, p.ID)
		done <- ss
	}()
	ev.next(30*time.Second, "bytes moving", func(e Event) bool {
		pr, ok := e.Data.(Progress)
		return ok && pr.BytesDone > 0
	})
	w.mon.Detach(w.phone)
	ev.next(10*time.Second, "the unplug", func(e Event) bool { return e.Type == DeviceDisconnected })
	ss := <-done
	if len(ss) != 1 || ss[0].Outcome != OutcomeStopped && ss[0].Outcome != OutcomeFailed {
		t.Fatalf("session cut by the unplug = %+v", ss)
	}
	st := m.Status()[0]
	if st.Connected || !strings.Contains(st.Error, "disconnected") || st.Fix == "" {
		t.Errorf("status after the unplug = %+v, want a disconnection error with its fix", st)
	}
	if err := w.mon.Attach(w.phone); err != nil {
		t.Fatal(err)
	}
	w.waitDevice(m)
	deadline := time.Now().Add(10 * time.Second)
	for !m.Status()[0].Connected && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
	if err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync after re-plugging = %+v, %v", ss, err)
	}
	got, _ := os.ReadFile(filepath.Join(w.phone, "Documents", "big.bin"))
	if len(got) != len(data) {
		t.Errorf("big.bin on the device: %d bytes, want %d", len(got), len(data))
	}
}

// TestWatchWithoutSyncOnConnect: with sync on plug-in off, a change made while the device is
// connected still starts a session.
func TestWatchWithoutSyncOnConnect(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	w.addDocs(m)
	s := m.Settings()
	s.SyncOnConnect = false
	if err := m.SetSettings(s); err != nil {
		t.Fatal(err)
	}
	m.Close()
	w.mon = emulator.NewMonitor(emulator.Options{}, w.phone)
	m = w.open(true)
	ev := m.collect(t, SessionStarted|SessionFinished)
	w.waitDevice(m)
	ev.none(3*m.debounce, "a session on plug-in", func(e Event) bool { return e.Type == SessionStarted })
	writeFile(t, filepath.Join(w.desktop, "new.txt"), "new")
	s2 := ev.next(10*time.Second, "a session after the change", finished(TriggerChange)).Data.(Session)
	if s2.ToDevice.Created != 1 {
		t.Errorf("change session = %+v, want new.txt sent", s2)
	}
}

// TestDesktopFolderMovedAway: the computer's folder of a partnership is moved away while it is
// watched. The session fails with what is wrong and how to fix it, not "the device was
// disconnected", and touches nothing on the phone; once the folder is back the sync goes on.
func TestDesktopFolderMovedAway(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.phone, "Documents", "a.txt"), "a")
	m := w.open(true)
	w.waitDevice(m)
	p := w.addDocs(m)
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	ev := m.collect(t, SessionFinished)
	ev.none(5*m.debounce, "", func(Event) bool { return false })
	if err := os.Rename(w.desktop, w.desktop+".away"); err != nil {
		t.Fatal(err)
	}
	// Let the desktop watcher see the folder go first: that order once reported the phone as
	// unplugged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.mu.Lock()
		cs := m.parts[p.ID].changes[0]
		m.mu.Unlock()
		if cs != nil && cs.Gone() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the desktop watcher did not notice its folder going away")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := m.SyncNow(p.ID); err != nil {
		t.Fatal(err)
	}
	s := ev.next(30*time.Second, "the failed session", finished(TriggerManual)).Data.(Session)
	st := m.Status()[0]
	if s.Outcome != OutcomeFailed || st.State != StateError || !strings.Contains(st.Error, w.desktop) ||
		strings.Contains(st.Error, "disconnected") || strings.Contains(st.Fix, "plug") {
		t.Errorf("session %v, status %q (fix %q); want it failed with the missing desktop folder named", s.Outcome, st.Error, st.Fix)
	}
	if got := readFile(t, filepath.Join(w.phone, "Documents", "a.txt")); got != "a" {
		t.Errorf("the phone's a.txt = %q after the desktop folder went away", got)
	}
	if err := os.Rename(w.desktop+".away", w.desktop); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.desktop, "b.txt"), "b")
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatalf("sync with the folder back: %v", err)
	}
	if got := readFile(t, filepath.Join(w.phone, "Documents", "b.txt")); got != "b" {
		t.Errorf("the phone's b.txt = %q after the folder came back, want b", got)
	}
}

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
