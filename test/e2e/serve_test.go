package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// twin is one of two identical worlds: one where every command runs in its own process, one
// where `cradle watch` runs and serves them.
type twin struct {
	*env
	root    string
	runtime string // XDG_RUNTIME_DIR: the sockets of this world
	serial  string
}

func newTwin(t *testing.T) *twin {
	t.Helper()
	e := newEnv(t)
	tw := &twin{env: e, root: filepath.Dir(e.config), runtime: filepath.Join(t.TempDir(), "run")}
	mkdir(t, tw.runtime)
	os.Chmod(tw.runtime, 0o700)
	// No sync on plug-in, and a change waits a minute before its sync: the served world must
	// only sync when asked, as the other (a sync asked for right after a change must find it
	// in both, not carried already by the served world's change-triggered session).
	mkdir(t, e.config)
	if err := os.WriteFile(filepath.Join(e.config, "settings.toml"), []byte("version = 1\n\n[settings]\nsync-on-connect = false\nchange-delay = \"1m\"\nchange-delay-max = \"1m\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return tw
}

// cradle runs the binary in the twin's root folder (relative paths are relative to it), with
// its runtime folder, and the config folder and phone given.
func (tw *twin) cradle(args ...string) result {
	tw.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := clitest.Command(ctx, bin, append([]string{"--config", tw.config, "--emulate", tw.phone}, args...)...)
	cmd.Dir = tw.root
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+tw.runtime)
	var r result
	var err error
	r.stdout, r.stderr, r.code, err = clitest.Run(cmd)
	if err != nil {
		tw.t.Fatalf("run cradle %v: %v", args, err)
	}
	return r
}

var (
	timeRE    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	freeRE    = regexp.MustCompile(`"free": \d+`)
	freeText  = regexp.MustCompile(`[\d.]+ [kMGTPE]?B free of`)
	sessionRE = regexp.MustCompile(`"id": \d+,\n(\s+)"partnership"`)
)

// normal replaces what differs between the twins by nature: their folders, the phones'
// serials (made from their folders), times, and the history's session numbers.
func (tw *twin) normal(s string) string {
	s = strings.ReplaceAll(s, tw.root, "ROOT")
	s = strings.ReplaceAll(s, tw.serial, "SERIAL")
	s = timeRE.ReplaceAllString(s, "TIME")
	// The disk the phone's folder is on is shared: its free space moves meanwhile.
	s = freeRE.ReplaceAllString(s, `"free": FREE`)
	s = freeText.ReplaceAllString(s, "FREE free of")
	return sessionRE.ReplaceAllString(s, "\"id\": N,\n$1\"partnership\"")
}

// TestServedSameAsInProcess runs every command of the command line in its own process and
// served by a running `cradle watch`, and compares what they print and their exit codes. The
// commands that only read are run in one world, first each in its own process, then with watch
// running; those that change something are run in two identical worlds, one with watch.
func TestServedSameAsInProcess(t *testing.T) {
	alone, served := newTwin(t), newTwin(t)
	for _, tw := range []*twin{alone, served} {
		put(t, filepath.Join(tw.desktop, "notes.txt"), "original", at(0))
		put(t, filepath.Join(tw.devDir(), "photo.jpg"), "jpeg", at(1))
		tw.serial = tw.env.serial()
		// Folders relative to the user's working directory.
		r := tw.cradle("partner", "add", "--name", "docs", "--provider", "files", "--device", tw.serial,
			"--desktop", "desktop", "--device-path", "Documents")
		if r.code != 0 {
			t.Fatalf("partner add: %v", r)
		}
		if r := tw.cradle("sync", "--json"); r.code != 0 {
			t.Fatalf("first sync: %v", r)
		}
		// A conflict waiting.
		put(t, filepath.Join(tw.desktop, "notes.txt"), "desktop edit, longer than the other", at(10))
		put(t, filepath.Join(tw.devDir(), "notes.txt"), "phone edit", at(20))
		if r := tw.cradle("sync", "--json"); r.code != 0 {
			t.Fatalf("the sync that leaves a conflict: %v", r)
		}
	}
	compare := func(name string, a, s result, na, ns func(string) string) {
		t.Helper()
		if a.code != s.code {
			t.Errorf("cradle %s: exit %d in its own process, %d served\nalone: %v\nserved: %v", name, a.code, s.code, a, s)
			return
		}
		if an, sn := na(a.stdout), ns(s.stdout); an != sn {
			t.Errorf("cradle %s: stdout differs\nin its own process:\n%s\nserved:\n%s", name, an, sn)
		}
		if an, sn := na(a.stderr), ns(s.stderr); an != sn {
			t.Errorf("cradle %s: stderr differs\nin its own process:\n%s\nserved:\n%s", name, an, sn)
		}
	}

	// What only reads, and the mistakes: in the served world, alone and then served.
	reads := [][]string{
		{"devices", "--json"},
		{"devices"},
		{"partner", "list", "--json"},
		{"partner", "list"},
		{"status", "--json"},
		{"status"},
		{"conflicts", "--json"},
		{"conflicts"},
		{"sync", "--json"},
		{"sync", "docs"},
		{"sync", "nosuch"},
		{"resolve", "9.9", "--keep", "device"},
		{"resolve", "1.1", "--keep", "sideways"},
		{"status", "extra"},
		{"partner", "add", "--provider", "files"},
		{"partner", "frobnicate"},
		{"conflicts", "--jsn"},
		{"devices", "-h"},
		{"--emulate", "nowhere", "status"},
	}
	before := make([]result, len(reads))
	for i, args := range reads {
		before[i] = served.cradle(args...)
	}
	w := startWatchIn(t, served)
	waitFor(t, 20*time.Second, "watch starts", w, func() bool { return strings.Contains(w.output(), "watching") })
	for i, args := range reads {
		compare(strings.Join(args, " "), before[i], served.cradle(args...), served.normal, served.normal)
	}

	// What changes something: the same in both worlds, alone and served.
	changes := [][]string{
		{"resolve", "1.1", "--keep", "desktop"},
		{"conflicts", "--json"},
		{"status", "--json"},
		{"partner", "add", "--name", "more", "--provider", "files", "--desktop", "more", "--device-path", "More"},
		{"partner", "list", "--json"},
		{"partner", "remove", "more"},
		{"NEW FILES"},
		{"sync", "--json"},
		{"sync", "--json"},
	}
	for _, args := range changes {
		if args[0] == "partner" && args[1] == "add" {
			for _, tw := range []*twin{alone, served} {
				// Beside the first partnership's folder: a change in it would start a sync
				// of that partnership in the served world, which syncs on changes.
				mkdir(t, filepath.Join(tw.root, "more"))
			}
		}
		if args[0] == "NEW FILES" {
			for _, tw := range []*twin{alone, served} {
				put(t, filepath.Join(tw.desktop, "new on the desktop.txt"), "new", at(30))
			}
			continue
		}
		a, sv := alone.cradle(args...), served.cradle(args...)
		if args[0] == "resolve" {
			// The manager queues the session that applies the choice as it records it, and
			// resolve's own sync may merge with it or come after it ("up to date"), in either
			// process: only the first line is the command's own.
			a.stderr, _, _ = strings.Cut(a.stderr, "\n")
			sv.stderr, _, _ = strings.Cut(sv.stderr, "\n")
		}
		compare(strings.Join(args, " "), a, sv, alone.normal, served.normal)
	}
	// The served world's commands ran in watch: it printed their sessions.
	for _, want := range []string{"sync started: docs (manual)", "conflict 1.1 resolved: keep desktop", "partnership 2 (more) saved"} {
		if !strings.Contains(w.output(), want) {
			t.Errorf("watch did not print %q, so it did not serve the commands", want)
		}
	}
	sameTrees(t, served.desktop, served.devDir())
	sameTrees(t, served.desktop, alone.desktop)
	stopWatch(t, w)
	if t.Failed() {
		t.Logf("watch printed:\n%s", w.output())
	}
}

// startWatchIn starts `cradle watch` in a twin's world.
func startWatchIn(t *testing.T, tw *twin) *watcher {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", tw.runtime)
	return startWatch(t, "--config", tw.config, "--emulate", tw.phone)
}

func stopWatch(t *testing.T, w *watcher) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("watch did not stop on SIGINT:\n%s", w.output())
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("watch exited with %v:\n%s", err, w.output())
	}
}

// TestServedWatchAndStaleSocket: a second `cradle watch` follows the running one's events; a
// socket left by a killed Cradle is recovered: the next command runs in its own process, the
// next watch serves again.
func TestServedWatchAndStaleSocket(t *testing.T) {
	tw := newTwin(t)
	tw.serial = tw.env.serial()
	w := startWatchIn(t, tw)
	waitFor(t, 20*time.Second, "watch starts", w, func() bool { return strings.Contains(w.output(), "watching") })
	follower := startWatch(t, "--config", tw.config, "--emulate", tw.phone)
	waitFor(t, 20*time.Second, "the second watch follows", follower, func() bool { return strings.Contains(follower.output(), "watching") })
	if r := tw.cradle("partner", "add", "--name", "docs", "--provider", "files", "--desktop", "desktop", "--device-path", "Documents"); r.code != 0 {
		t.Fatalf("partner add, served: %v", r)
	}
	waitFor(t, 20*time.Second, "the second watch prints the first one's events", follower, func() bool {
		return strings.Contains(follower.output(), "partnership 1 (docs) saved")
	})
	stopWatch(t, follower)
	if !strings.Contains(w.output(), "partnership 1 (docs) saved") {
		t.Errorf("the first watch did not print the partnership:\n%s", w.output())
	}
	if strings.Contains(w.output(), "stopping") {
		t.Errorf("the first watch stopped with the second:\n%s", w.output())
	}

	// Killed: its socket stays behind.
	w.cmd.Process.Kill()
	<-w.done
	w.cmd.Wait()
	socks, _ := filepath.Glob(filepath.Join(tw.runtime, "cradle", "*.sock"))
	if len(socks) != 1 {
		t.Fatalf("sockets after the kill: %v, want the one left behind", socks)
	}
	if r := tw.cradle("status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"name": "docs"`) {
		t.Fatalf("status after the kill (in its own process): %v", r)
	}
	w2 := startWatchIn(t, tw)
	waitFor(t, 20*time.Second, "a new watch starts", w2, func() bool { return strings.Contains(w2.output(), "watching") })
	if r := tw.cradle("sync", "--json"); r.code != 0 {
		t.Fatalf("sync served by the new watch: %v", r)
	}
	waitFor(t, 20*time.Second, "the new watch serves", w2, func() bool { return strings.Contains(w2.output(), "sync started: docs (manual)") })
	stopWatch(t, w2)
	if socks, _ := filepath.Glob(filepath.Join(tw.runtime, "cradle", "*.sock")); len(socks) != 0 {
		t.Errorf("sockets after watch stopped: %v, want none", socks)
	}
}

// TestBackgroundWithoutTray: `cradle --background` in a session without a tray serves like
// watch and prints nothing; a window asked of it where there is no display fails with the
// window's message, and the background Cradle goes on serving.
func TestBackgroundWithoutTray(t *testing.T) {
	tw := newTwin(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := clitest.Command(ctx, bin, "--config", tw.config, "--emulate", tw.phone, "--background")
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+tw.runtime, "DBUS_SESSION_BUS_ADDRESS=", "DISPLAY=:987", "WAYLAND_DISPLAY=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if socks, _ := filepath.Glob(filepath.Join(tw.runtime, "cradle", "*.sock")); len(socks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket within 30 s; the background Cradle printed:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := tw.cradle("devices", "--json"); r.code != 0 || !strings.Contains(r.stdout, "serial") {
		t.Fatalf("devices, served by the background Cradle: %v", r)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	win := clitest.Command(ctx2, bin, "--config", tw.config)
	win.Env = append(win.Env, "XDG_RUNTIME_DIR="+tw.runtime, "DISPLAY=:987", "WAYLAND_DISPLAY=")
	_, stderr, code, err := clitest.Run(win)
	if err != nil || code != 1 || !strings.Contains(stderr, "the window cannot open") {
		t.Errorf("cradle (the window) with no display, served: exit %d, %v, stderr:\n%s", code, err, stderr)
	}
	if r := tw.cradle("status"); r.code != 0 {
		t.Errorf("status after the failed window: %v", r)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("--background exited with %v:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("--background did not stop on SIGTERM:\n%s", out.String())
	}
}

// TestVersionAndAutostart: --version names the version of FyneApp.toml; autostart on writes the
// XDG autostart entry that starts this binary in the background, off removes it.
func TestVersionAndAutostart(t *testing.T) {
	r := cradle(t, "--version")
	toml, err := os.ReadFile(filepath.Join("..", "..", "FyneApp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	v := regexp.MustCompile(`Version = "([^"]+)"`).FindSubmatch(toml)
	if r.code != 0 || v == nil || !strings.HasPrefix(r.stdout, fmt.Sprintf("cradle %s (commit ", v[1])) {
		t.Errorf("--version: %v, want cradle %s (commit ...)", r, v[1])
	}
	cfg := t.TempDir()
	run := func(args ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := clitest.Command(ctx, bin, args...)
		cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+cfg)
		var r result
		r.stdout, r.stderr, r.code, _ = clitest.Run(cmd)
		return r
	}
	entry := filepath.Join(cfg, "autostart", "io.github.cradle_sync.cradle.desktop")
	if r := run("autostart"); r.code != 0 || !strings.Contains(r.stderr, "does not start at login") {
		t.Errorf("autostart before: %v", r)
	}
	if r := run("autostart", "on"); r.code != 0 {
		t.Fatalf("autostart on: %v", r)
	}
	b, err := os.ReadFile(entry)
	if err != nil || !strings.Contains(string(b), "Exec="+bin+" --background\n") {
		t.Fatalf("the autostart entry: %q, %v", b, err)
	}
	if r := run("autostart"); r.code != 0 || !strings.Contains(r.stderr, "starts in the background at login") {
		t.Errorf("autostart after on: %v", r)
	}
	if r := run("autostart", "off"); r.code != 0 || exists(entry) {
		t.Errorf("autostart off: %v; entry still there: %v", r, exists(entry))
	}
	if r := run("autostart", "maybe"); r.code != 2 {
		t.Errorf("autostart maybe: %v, want exit 2", r)
	}
}
