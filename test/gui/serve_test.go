package gui

import (
	"bytes"
	"context"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/theme"
)

// world is a config folder, a desktop folder and an emulated phone, with commands run in the
// X server's environment (no real devices, a runtime folder of the test's own).
type world struct {
	t       *testing.T
	x       *xserver
	bin     string
	config  string
	desktop string
	phone   string
	runtime string
}

func newWorld(t *testing.T, x *xserver, bin string) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{t: t, x: x, bin: bin, config: filepath.Join(root, "config"), desktop: filepath.Join(root, "desktop"),
		phone: filepath.Join(root, "phone"), runtime: filepath.Join(root, "run")}
	for _, d := range []string{w.config, w.desktop, filepath.Join(w.phone, "Documents"), w.runtime} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Only the test's commands sync.
	os.WriteFile(filepath.Join(w.config, "settings.toml"), []byte("version = 1\n\n[settings]\nsync-on-connect = false\n"), 0o644)
	return w
}

func (w *world) env() []string {
	var env []string
	for _, e := range w.x.env() {
		if !strings.HasPrefix(e, "XDG_RUNTIME_DIR=") {
			env = append(env, e)
		}
	}
	return append(env, "CRADLE_NO_HARDWARE=1", "XDG_RUNTIME_DIR="+w.runtime)
}

// args are the global flags of the world's commands.
func (w *world) args(more ...string) []string {
	return append([]string{"--config", w.config, "--emulate", w.phone}, more...)
}

// cli runs a cradle command to its end.
func (w *world) cli(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, w.args(args...)...)
	cmd.Env = w.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		w.t.Fatalf("cradle %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

func (w *world) ok(args ...string) string {
	w.t.Helper()
	out, errs, code := w.cli(args...)
	if code != 0 {
		w.t.Fatalf("cradle %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

var serialRE = regexp.MustCompile(`"serial": "([^"]+)"`)

// withConflict partners the desktop folder with the phone's Documents and leaves one conflict
// waiting (1.1, notes.txt).
func (w *world) withConflict() {
	w.t.Helper()
	put := func(path, content string, minutes int) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			w.t.Fatal(err)
		}
		tm := time.Date(2026, 3, 1, 12, minutes, 0, 0, time.UTC)
		os.Chtimes(path, tm, tm)
	}
	put(filepath.Join(w.desktop, "notes.txt"), "original", 0)
	m := serialRE.FindStringSubmatch(w.ok("devices", "--json"))
	if m == nil {
		w.t.Fatal("no serial in devices --json")
	}
	w.ok("partner", "add", "--name", "docs", "--provider", "files", "--device", m[1], "--desktop", w.desktop, "--device-path", "Documents")
	w.ok("sync")
	put(filepath.Join(w.desktop, "notes.txt"), "desktop edit, longer than the other", 10)
	put(filepath.Join(w.phone, "Documents", "notes.txt"), "phone edit", 20)
	w.ok("sync")
}

// startEnv starts bin with args in env on the X server.
func (x *xserver) startEnv(env []string, bin string, args ...string) *process {
	x.t.Helper()
	p := &process{t: x.t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		x.t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	x.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if x.t.Failed() {
			x.t.Logf("%s %s output:\n%s", filepath.Base(bin), strings.Join(args, " "), p.output())
		}
	})
	return p
}

// windows returns the IDs of the windows titled title (visible ones when visible).
func (x *xserver) windows(title string, visible bool) []string {
	x.t.Helper()
	args := []string{"search"}
	if visible {
		args = append(args, "--onlyvisible")
	}
	args = append(args, "--name", "^"+regexp.QuoteMeta(title)+"$")
	cmd := exec.Command("xdotool", args...)
	cmd.Env = x.env()
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: none found
		x.t.Fatalf("xdotool %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// TestServedWindow: with the window open, `cradle` started again shows that window (one window
// on the screen, the second process gone), and a `cradle resolve` typed in a terminal is served
// by the window's process: its Conflicts button goes away.
func TestServedWindow(t *testing.T) {
	cradle, _ := binaries(t)
	x := startX(t)
	shots := newShots(t)
	w := newWorld(t, x, cradle)
	w.withConflict()
	p := x.startEnv(w.env(), cradle, w.args()...)
	win := x.window("Cradle")
	x.waitFor("the window with its Conflicts button", func(img image.Image) bool {
		_, ok := button(img, theme.ColorNameWarning, win)
		return ok
	})

	began := time.Now()
	if _, errs, code := w.cli(); code != 0 {
		t.Fatalf("cradle started again: exit %d\n%s", code, errs)
	}
	t.Logf("cradle started again returned in %v", time.Since(began).Round(time.Millisecond))
	if ids := x.windows("Cradle", false); len(ids) != 1 {
		t.Errorf("windows titled Cradle after the second start: %v, want one", ids)
	}

	began = time.Now()
	_, errs, code := w.cli("resolve", "1.1", "--keep", "desktop")
	if code != 0 || !strings.Contains(errs, "Resolved 1.1: keep desktop.") {
		t.Fatalf("cradle resolve: exit %d\n%s", code, errs)
	}
	img := x.waitFor("the Conflicts button to go away", func(img image.Image) bool {
		_, ok := button(img, theme.ColorNameWarning, win)
		return !ok
	})
	t.Logf("the window showed the resolve %v after the command started", time.Since(began).Round(time.Millisecond))
	shots.save("served-resolved", img, win)
	if got, _ := os.ReadFile(filepath.Join(w.phone, "Documents", "notes.txt")); string(got) != "desktop edit, longer than the other" {
		t.Errorf("the phone's notes.txt = %q after keeping the desktop's", got)
	}
	if err := p.stop(); err != nil {
		t.Errorf("the window after SIGTERM: %v", err)
	}
}

// TestWindowInWatch: `cradle` while `cradle watch` runs opens the window in the watch process
// (no second Cradle process stays), a second `cradle` shows the same one, and the commands are
// still served.
func TestWindowInWatch(t *testing.T) {
	cradle, _ := binaries(t)
	x := startX(t)
	w := newWorld(t, x, cradle)
	watch := x.startEnv(w.env(), cradle, w.args("watch")...)
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(watch.output(), "watching") {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not start:\n%s", watch.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ids := x.windows("Cradle", false); len(ids) != 0 {
		t.Fatalf("a window before it was asked for: %v", ids)
	}
	if _, errs, code := w.cli(); code != 0 {
		t.Fatalf("cradle while watch runs: exit %d\n%s", code, errs)
	}
	win := x.window("Cradle")
	x.waitFor("the window to draw", func(img image.Image) bool { return !blank(img, win) })
	if _, errs, code := w.cli(); code != 0 {
		t.Fatalf("cradle again: exit %d\n%s", code, errs)
	}
	if ids := x.windows("Cradle", false); len(ids) != 1 {
		t.Errorf("windows titled Cradle: %v, want one", ids)
	}
	if out := w.ok("status", "--json"); !strings.Contains(out, "[") {
		t.Errorf("status --json served by watch with its window: %q", out)
	}
	if err := watch.stop(); err != nil {
		t.Errorf("watch with a window after SIGTERM: %v", err)
	}
	if !strings.Contains(watch.output(), "stopping") {
		t.Errorf("watch did not stop as it does:\n%s", watch.output())
	}
}
