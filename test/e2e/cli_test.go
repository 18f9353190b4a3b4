package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// TestBadInput: each mistake a user can make gives one clear line on stderr, a non-zero exit and
// no change.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "a.txt"), "a", at(0))
	serial := e.serial()
	e.partner()
	settings := filepath.Join(e.config, "settings.toml")
	before := get(t, settings)
	unchanged := func(what string) {
		t.Helper()
		if got := get(t, settings); got != before {
			t.Errorf("%s changed the settings file:\n%s", what, got)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the message
	}{
		{"unknown provider", []string{"partner", "add", "--name", "x", "--provider", "nosuch", "--device", serial, "--desktop", e.desktop}, `unknown provider "nosuch"`},
		{"missing folder", []string{"partner", "add", "--name", "x", "--provider", "files", "--device", serial,
			"--desktop", filepath.Join(e.desktop, "no", "such"), "--device-path", "Other"}, "does not exist"},
		{"unknown device", []string{"partner", "add", "--name", "x", "--provider", "files", "--device", "NOSUCHSERIAL",
			"--desktop", e.desktop, "--device-path", "Other"}, "NOSUCHSERIAL"},
		{"bad direction", []string{"partner", "add", "--name", "x", "--provider", "files", "--device", serial,
			"--desktop", e.desktop, "--device-path", "Other", "--direction", "sideways"}, "sideways"},
		{"unknown partnership", []string{"sync", "nosuch"}, `no such partnership "nosuch"`},
		{"unknown conflict", []string{"resolve", "1.99", "--keep", "desktop"}, `no conflict "1.99"`},
		{"bad keep", []string{"resolve", "1.1", "--keep", "mine"}, "desktop, device or both"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	} {
		r := e.run(tc.args...)
		oneLine(t, tc.name, r)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: stderr %q does not say %q", tc.name, r.stderr, tc.want)
		}
		unchanged(tc.name)
	}

	// The device not connected: no --emulate.
	r := cradle(t, "--config", e.config, "sync")
	oneLine(t, "device not connected", r)
	if !strings.Contains(r.stderr, "not connected") {
		t.Errorf("device not connected: stderr %q", r.stderr)
	}
	r = cradle(t, "--config", e.config, "sync", "docs")
	oneLine(t, "device not connected (named)", r)
	if !strings.Contains(r.stderr, "plug it in") {
		t.Errorf("device not connected (named): stderr %q", r.stderr)
	}

	// --json prints nothing on stdout when it fails.
	r = e.run("sync", "nosuch", "--json")
	if r.stdout != "" {
		t.Errorf("a failed --json command printed %q on stdout", r.stdout)
	}

	// A config folder that cannot be written.
	var ro string
	if os.Geteuid() == 0 {
		// root writes anywhere: a path below a regular file cannot be created by anyone.
		ro = filepath.Join(e.desktop, "a.txt", "config")
	} else {
		ro = filepath.Join(t.TempDir(), "ro")
		mkdir(t, ro)
		os.Chmod(ro, 0o555)
	}
	r = cradle(t, "--config", ro, "--emulate", e.phone, "status")
	oneLine(t, "config not writable", r)
	if !strings.Contains(r.stderr, ro) {
		t.Errorf("config not writable: stderr %q does not name the folder", r.stderr)
	}

	// A corrupt settings file: the file and line are named, and the file is left alone.
	bad := strings.Replace(before, `direction = "two-way"`, `direction = "two-way`, 1)
	if err := os.WriteFile(settings, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.HasPrefix(l, "direction") {
			line = i + 1
		}
	}
	for _, args := range [][]string{{"status"}, {"sync"}, {"partner", "list"}} {
		r = e.run(args...)
		oneLine(t, "corrupt settings", r)
		if !strings.Contains(r.stderr, settings) || !strings.Contains(r.stderr, "line "+itoa(line)) {
			t.Errorf("corrupt settings: stderr %q does not name %s line %d", r.stderr, settings, line)
		}
		if got := get(t, settings); got != bad {
			t.Errorf("the corrupt settings file was changed")
		}
	}
	// A value that parses but makes no sense is named the same way.
	bad2 := strings.Replace(before, `on-conflict = "ask"`, `on-conflict = "flip-a-coin"`, 1)
	os.WriteFile(settings, []byte(bad2), 0o600)
	r = e.run("status")
	oneLine(t, "bad settings value", r)
	if !strings.Contains(r.stderr, "flip-a-coin") || !strings.Contains(r.stderr, "line ") {
		t.Errorf("bad settings value: stderr %q", r.stderr)
	}
	os.WriteFile(settings, []byte(before), 0o600)
	e.ok("status")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// watcher is a running `cradle watch`, its output collected line by line.
type watcher struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startWatch(t *testing.T, args ...string) *watcher {
	t.Helper()
	w := &watcher{cmd: exec.Command(bin, append(args, "watch")...), done: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), "CRADLE_NO_HARDWARE=1", "LANG=C.UTF-8")
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.cmd.Stderr = w.cmd.Stdout
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
		io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

func (w *watcher) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, w *watcher, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; watch printed:\n%s", what, d, w.output())
}

// TestWatch: `cradle watch` syncs within seconds of a plug-in (an emulated phone attached
// later) and of a desktop change while connected, and stops cleanly on SIGINT.
func TestWatch(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.devDir(), "on the phone.txt"), "from the phone", at(0))
	e.partner() // the phone is known: it was attached while the partnership was made
	list := filepath.Join(t.TempDir(), "plugged")
	w := startWatch(t, "--config", e.config, "--emulate-list", list)
	waitFor(t, 10*time.Second, "watch starts", w, func() bool { return strings.Contains(w.output(), "watching") })
	put(t, filepath.Join(e.desktop, "made while away.txt"), "desktop", at(1))

	// Plug in.
	plugged := time.Now()
	if err := os.WriteFile(list, []byte(e.phone+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "sync after plug-in", w, func() bool {
		return exists(filepath.Join(e.desktop, "on the phone.txt")) && exists(filepath.Join(e.devDir(), "made while away.txt"))
	})
	t.Logf("synced %.1fs after the plug-in", time.Since(plugged).Seconds())

	// A desktop change while connected.
	changed := time.Now()
	put(t, filepath.Join(e.desktop, "while connected.txt"), "desktop change", at(2))
	waitFor(t, 15*time.Second, "sync after a desktop change", w, func() bool {
		return exists(filepath.Join(e.devDir(), "while connected.txt"))
	})
	t.Logf("synced %.1fs after the desktop change", time.Since(changed).Seconds())

	// A phone change while connected (the emulator reports it with MTP events).
	put(t, filepath.Join(e.devDir(), "phone change.txt"), "phone change", at(3))
	waitFor(t, 15*time.Second, "sync after a phone change", w, func() bool {
		return exists(filepath.Join(e.desktop, "phone change.txt"))
	})

	// Unplug.
	os.WriteFile(list, nil, 0o644)
	waitFor(t, 10*time.Second, "unplug noticed", w, func() bool { return strings.Contains(w.output(), "device disconnected") })

	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case <-w.done:
	case <-ctx.Done():
		t.Fatalf("watch did not stop on SIGINT; printed:\n%s", w.output())
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("watch exited with %v; printed:\n%s", err, w.output())
	}
	out := w.output()
	for _, want := range []string{"device connected", "sync started: docs (connect)", "sync started: docs (change)", "sync finished"} {
		if !strings.Contains(out, want) {
			t.Errorf("watch output lacks %q:\n%s", want, out)
		}
	}
}

// TestFlagsAfterSubcommand: the global flags also work after the subcommand, and positional
// arguments mix with flags.
func TestFlagsAfterSubcommand(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "a.txt"), "a", at(0))
	r := cradle(t, "devices", "--json", "--config", e.config, "--emulate", e.phone)
	var devs []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &devs) != nil || len(devs) != 1 {
		t.Fatalf("devices with flags after it: %v", r)
	}
	serial := devs[0]["serial"].(string)
	r = cradle(t, "partner", "add", "--config", e.config, "--emulate", e.phone, "--name", "docs", "--provider", "files",
		"--device", serial, "--desktop", e.desktop, "--device-path", "Documents", "--on-conflict", "newest")
	if r.code != 0 {
		t.Fatalf("partner add with flags after it: %v", r)
	}
	r = cradle(t, "partner", "list", "--json", "--config", e.config)
	var ps []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ps) != nil || len(ps) != 1 || ps[0]["on_conflict"] != "newest" {
		t.Fatalf("partner list --json: %v", r)
	}
	r = cradle(t, "sync", "docs", "--config", e.config, "--json", "--emulate", e.phone)
	if r.code != 0 || !exists(filepath.Join(e.devDir(), "a.txt")) {
		t.Fatalf("sync docs with flags around it: %v", r)
	}
	r = cradle(t, "status", "--json", "--config", e.config)
	var st []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st) != 1 || st[0]["state"] != "disconnected" || st[0]["last_outcome"] != "ok" {
		t.Fatalf("status --json without the phone: %v", r)
	}
	r = cradle(t, "partner", "remove", "docs", "--config", e.config)
	if r.code != 0 || !strings.Contains(r.stderr, "Removed partnership") {
		t.Fatalf("partner remove: %v", r)
	}
	if exists(filepath.Join(e.config, "state", "1.repl")) {
		t.Errorf("the removed partnership's state is still there")
	}
}

// TestNoDisplay: cradle started without a display to open its window on (over ssh, in a
// console) says so and what to do instead, with no stack trace, and does not hang.
func TestNoDisplay(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := clitest.Command(ctx, bin, "--config", e.config, "--emulate", e.phone)
	cmd.Env = append(cmd.Env, "DISPLAY=:987", "WAYLAND_DISPLAY=") // no X server listens on :987
	_, stderr, code, err := clitest.Run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(stderr, "the window cannot open") || !strings.Contains(stderr, `DISPLAY is ":987"`) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and a message that the window cannot open on DISPLAY :987", code, stderr)
	}
	if strings.Contains(stderr, "goroutine ") {
		t.Errorf("a stack trace on stderr:\n%s", stderr)
	}
}
