//go:build unix

package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/contacts"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// These tests start real plugin processes: the example notes plugin, built with go build, and
// this test binary itself, which serves as a faulty or crashing plugin when it runs under one of
// the names below (see TestMain).

var buildDir string // where TestMain's helpers put executables; removed at the end

func TestMain(m *testing.M) {
	switch strings.TrimPrefix(filepath.Base(os.Args[0]), ExecutablePrefix) {
	case "wrongversion": // a plugin of ours, built for another protocol version
		hs := Handshake
		hs.ProtocolVersion = 99
		goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: hs, GRPCServer: goplugin.DefaultGRPCServer,
			Plugins: goplugin.PluginSet{pluginKey: &grpcPlugin{srv: &server{}}}})
		return
	case "othercookie": // a go-plugin plugin of another program
		goplugin.Serve(&goplugin.ServeConfig{GRPCServer: goplugin.DefaultGRPCServer,
			HandshakeConfig: goplugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "SOME_OTHER_APP_PLUGIN", MagicCookieValue: "hello"},
			Plugins:         goplugin.PluginSet{pluginKey: &grpcPlugin{srv: &server{}}}})
		return
	case "devside": // a plugin that serves its own device side: the contacts provider's
		decl := Declaration{Name: "devside", Description: "the contacts provider's stores, as a plugin",
			Options: []providers.Option{{Name: "desktop", Kind: providers.KindFolder, Required: true, Help: "a vdir"}}}
		Serve(decl, func(_ context.Context, env Env) (repl.Store, error) {
			return contacts.NewDesktop(env.Options["desktop"], nil)
		}, DeviceSide(func(_ context.Context, env Env) (repl.Store, error) {
			if env.Device == nil {
				return nil, errors.New("no device")
			}
			return contacts.NewDeviceFile(env.Device, env.Options[DevicePathOption], env.StateDir, nil)
		}))
		return
	case "crashy": // a working plugin whose store panics and blocks on request (see probe)
		decl := Declaration{Name: "crashy", Description: "a probe store for tests",
			Options: []providers.Option{{Name: "mode", Kind: providers.KindString, Help: "panic: panic in open"}}}
		Serve(decl, func(_ context.Context, env Env) (repl.Store, error) {
			if env.Options["mode"] == "panic" {
				panic("told to panic at open")
			}
			if env.StateDir != "" {
				if err := os.WriteFile(filepath.Join(env.StateDir, "opened"), []byte("yes"), 0o600); err != nil {
					return nil, err
				}
			}
			return crashyProbe(), nil
		})
		return
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the probe logs; in this process nobody reads it
	var err error
	buildDir, err = os.MkdirTemp("", "cradle-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(buildDir)
	os.Exit(code)
}

// crashyProbe is the store the crashy plugin serves.
func crashyProbe() *probe {
	p := newProbe()
	p.files["big.bin"] = randomBytes(4 << 20)
	for i := range 2000 {
		p.entries = append(p.entries, repl.Entry{Handle: fmt.Sprintf("dir/item-%04d.txt", i), Size: int64(i), ModTime: time.Unix(int64(1e9+i), 0)})
	}
	return p
}

var (
	buildOnce sync.Once
	notesBin  string
	buildErr  error
)

// notesPlugin builds the example notes plugin once per test run and returns its path.
func notesPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		notesBin = filepath.Join(buildDir, "cradle-provider-notes")
		cmd := exec.Command("go", "build", "-o", notesBin, "../../examples/cradle-provider-notes")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build the notes example: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return notesBin
}

// selfPlugin puts this test binary in dir under the plugin name cradle-provider-NAME.
func selfPlugin(t testing.TB, dir, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, ExecutablePrefix+name)
	if err := os.Symlink(exe, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, ExecutablePrefix+name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// logRecorder is a slog.Handler that keeps what the host logs.
type logRecorder struct {
	mu      sync.Mutex
	records []string
	attrs   []slog.Attr
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range l.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{root: l, attrs: as}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// logChild adds attributes and records into its root.
type logChild struct {
	root  *logRecorder
	attrs []slog.Attr
}

func (c *logChild) Enabled(context.Context, slog.Level) bool { return true }

func (c *logChild) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.attrs...)
	return c.root.Handle(ctx, r)
}

func (c *logChild) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{root: c.root, attrs: append(slices.Clone(c.attrs), as...)}
}

func (c *logChild) WithGroup(string) slog.Handler { return c }

func (l *logRecorder) find(substrs ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		all := true
		for _, s := range substrs {
			all = all && strings.Contains(r, s)
		}
		if all {
			return r
		}
	}
	return ""
}

func (l *logRecorder) wait(t *testing.T, substrs ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := l.find(substrs...); r != "" {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the host's log has no line with %q", substrs)
	return ""
}

func quietHost() *Host {
	return NewHost(Config{Logger: slog.New(slog.DiscardHandler), StartTimeout: 5 * time.Second})
}

func TestDiscoverLoadsPluginsAndSkipsTheRest(t *testing.T) {
	config := t.TempDir()
	dir := Dir(config)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	notes := notesPlugin(t)
	if err := os.Symlink(notes, filepath.Join(dir, "cradle-provider-notes")); err != nil {
		t.Fatal(err)
	}
	script(t, dir, "hello", `echo "hello, I am a shell script"`)
	script(t, dir, "silent", `exit 0`)
	script(t, dir, "failing", `echo "cannot find libfoo.so" >&2; exit 3`)
	selfPlugin(t, dir, "wrongversion")
	selfPlugin(t, dir, "othercookie")
	if err := os.WriteFile(filepath.Join(dir, "cradle-provider-noexec"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a plugin name"), 0o755); err != nil {
		t.Fatal(err)
	}
	slow := t.TempDir()
	script(t, slow, "sleeper", `sleep 30`)

	h := NewHost(Config{Logger: slog.New(slog.DiscardHandler), StartTimeout: 2 * time.Second})
	start := time.Now()
	names, errs := h.Discover(context.Background(), config, filepath.Join(slow, "cradle-provider-sleeper"))
	if !slices.Equal(names, []string{"notes"}) {
		t.Errorf("Discover registered %v, want [notes]", names)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Discover took %v", d)
	}
	want := []struct {
		plugin    string
		says      []string
		notPlugin bool
	}{
		{"cradle-provider-hello", []string{"is not a Cradle provider plugin", `printed "hello, I am a shell script"`, "remove it from the plugins folder"}, true},
		{"cradle-provider-silent", []string{"exit status 0", "not a Cradle provider plugin"}, true},
		{"cradle-provider-failing", []string{"exited before the plugin handshake", "exit status 3", "cannot find libfoo.so"}, true},
		{"cradle-provider-wrongversion", []string{"speaks provider protocol 99 and this Cradle speaks 1", "rebuild it"}, true},
		{"cradle-provider-othercookie", []string{"a go-plugin plugin of another program"}, true},
		{"cradle-provider-noexec", []string{"is not executable", "chmod +x"}, false},
		{"cradle-provider-sleeper", []string{"did not complete the plugin handshake within 2s"}, true},
	}
	if len(errs) != len(want) {
		t.Errorf("Discover reported %d problems, want %d: %v", len(errs), len(want), errs)
	}
	for _, w := range want {
		var got error
		for _, err := range errs {
			if strings.Contains(err.Error(), w.plugin+" ") {
				got = err
			}
		}
		if got == nil {
			t.Errorf("Discover reported nothing about %s", w.plugin)
			continue
		}
		for _, s := range w.says {
			if !strings.Contains(got.Error(), s) {
				t.Errorf("Discover's error about %s = %q, want it to say %q", w.plugin, got, s)
			}
		}
		if errors.Is(got, ErrNotPlugin) != w.notPlugin {
			t.Errorf("Discover's error about %s = %v; wraps ErrNotPlugin: %v, want %v", w.plugin, got, !w.notPlugin, w.notPlugin)
		}
	}

	p, err := providers.Lookup("notes")
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, o := range p.Options {
		opts = append(opts, o.Name)
	}
	if !slices.Equal(opts, []string{"desktop", "patterns", "device-path"}) {
		t.Errorf("notes options = %v, want [desktop patterns device-path]", opts)
	}
	if p.Description == "" || p.Icon != "document" {
		t.Errorf("notes declared description %q, icon %q", p.Description, p.Icon)
	}
	if _, err := p.Validate(map[string]string{"desktop": "/x", "device-path": "Notes"}); err != nil {
		t.Errorf("Validate of a good notes partnership = %v", err)
	}

	// Discovering again (with any Host) re-registers the same plugin; another executable may not
	// take its name.
	installed := filepath.Join(dir, "cradle-provider-notes")
	if names, errs := quietHost().Discover(context.Background(), "", installed); !slices.Equal(names, []string{"notes"}) || len(errs) != 0 {
		t.Errorf("second Discover = %v, %v; want [notes] and no error", names, errs)
	}
	other := filepath.Join(t.TempDir(), "cradle-provider-notes2")
	if err := os.Symlink(notes, other); err != nil {
		t.Fatal(err)
	}
	_, errs = h.Discover(context.Background(), "", other)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `declares provider "notes", which `+installed+" already provides") {
		t.Errorf("Discover of a second notes plugin = %v, want a name conflict", errs)
	}
}

func TestPluginCannotTakeABuiltInName(t *testing.T) {
	providers.Register(providers.Provider{Name: "crashy", Description: "built in", Open: func(context.Context, providers.Env) (*providers.Instance, error) {
		return nil, errors.New("not for use")
	}})
	names, errs := quietHost().Discover(context.Background(), "", selfPlugin(t, t.TempDir(), "crashy"))
	if len(names) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), `declares provider "crashy", which is a built-in provider`) {
		t.Errorf("Discover of a plugin named like a built-in = %v, %v; want it refused", names, errs)
	}
	if p, _ := providers.Lookup("crashy"); p.Description != "built in" {
		t.Errorf("the built-in provider was replaced by %q", p.Description)
	}
}

// A store the plugin cannot open, and a plugin that dies while opening, fail Open clearly.
func TestOpenFailuresAreClear(t *testing.T) {
	p, err := quietHost().Load(context.Background(), notesPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	_, err = p.Open(context.Background(), providers.Env{Options: map[string]string{"desktop": missing}})
	if !errors.Is(err, repl.ErrNotFound) || !strings.HasPrefix(err.Error(), "provider notes: open the store: notes folder: ") || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open of a missing notes folder = %v, want the plugin's ErrNotFound naming the folder", err)
	}

	c := loadSelf(t, quietHost(), "crashy")
	_, err = c.Open(context.Background(), providers.Env{Options: map[string]string{}, StateDir: "/proc/cannot-create"})
	if err == nil || !strings.Contains(err.Error(), "create its state folder") {
		t.Errorf("Open with a state folder that cannot be made = %v", err)
	}
	_, err = c.Open(context.Background(), providers.Env{Options: map[string]string{"mode": "panic"}})
	var stop *StoppedError
	if !errors.As(err, &stop) || !strings.HasPrefix(err.Error(), "provider crashy stopped: exit status 2 (last log: panic: told to panic at open") {
		t.Errorf("Open of a plugin that panics while opening = %v, want how it stopped", err)
	}
}

func openNotes(t *testing.T, p providers.Provider, dir, patterns string) *providers.Instance {
	t.Helper()
	inst, err := p.Open(context.Background(), providers.Env{Options: map[string]string{"desktop": dir, "patterns": patterns}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open a notes partnership: %v", err)
	}
	t.Cleanup(func() {
		if err := inst.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return inst
}

// The conformance suite, with every call crossing into a real plugin process.
func TestConformanceThroughAPluginProcess(t *testing.T) {
	p, err := quietHost().Load(context.Background(), notesPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[repl.Store]string{}
	var mu sync.Mutex
	// The suite names its items *.txt: the plugin's own option makes them notes.
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			dir := t.TempDir()
			st := openNotes(t, p, dir, "*.md, *.txt").Desktop
			mu.Lock()
			dirs[st] = dir
			mu.Unlock()
			return st, storetest.FolderRenamer{Dir: dir}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			mu.Lock()
			dir := dirs[s]
			mu.Unlock()
			return openNotes(t, p, dir, "*.md, *.txt").Desktop
		},
		Folders: true,
		Moves:   true,
	})
}

// pidOf returns the process ID of a plugin store's current process.
func pidOf(t *testing.T, st repl.Store) int {
	t.Helper()
	c := st.(interface{ client() *storeClient }).client()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.proc == nil {
		t.Fatal("the store has no process")
	}
	return c.cur.proc.runner.pid()
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// killReader kills a process once a given number of bytes has been read from it.
type killReader struct {
	r     io.Reader
	after int
	pid   int
	n     int
}

func (k *killReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.n += n
	if k.n >= k.after && k.pid != 0 {
		_ = syscall.Kill(k.pid, syscall.SIGKILL)
		k.pid = 0
		time.Sleep(200 * time.Millisecond) // let the death be seen before the next chunk
	}
	return n, err
}

// A plugin killed in the middle of a sync: every call fails with a clear ErrGone, a Watch gets
// Shutdown, nothing on disk is lost, and the next Open starts the plugin again.
func TestPluginKilledMidSync(t *testing.T) {
	p, err := quietHost().Load(context.Background(), notesPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	big := randomBytes(8 << 20)
	small := []byte("# Shopping\n\n- bread\n")
	for name, b := range map[string][]byte{"big.md": big, "shopping.md": small} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := openNotes(t, p, dir, "*.md").Desktop
	ctx := context.Background()
	notes := make(chan repl.Notification, 64)
	watchDone := make(chan error, 1)
	go func() { watchDone <- st.(repl.Notifier).Watch(ctx, func(n repl.Notification) { notes <- n }) }()
	shopping, err := st.(repl.Stater).Stat(ctx, "shopping.md")
	if err != nil {
		t.Fatal(err)
	}

	// Kill -9 during an Open stream.
	pid := pidOf(t, st)
	rc, err := st.Open(ctx, "big.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	const wantMsg = "provider notes stopped: signal: killed"
	var stopped *StoppedError
	if !errors.Is(err, repl.ErrGone) || !errors.As(err, &stopped) || !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("reading after the plugin was killed = %v, want %q...", err, wantMsg)
	}
	for shutdown := false; !shutdown; {
		select {
		case n := <-notes:
			// The plugin's Watch first reports every note once (see the example's watch.go).
			if n.Kind == repl.Shutdown {
				shutdown = true
				if !errors.Is(n.Err, repl.ErrGone) || !strings.HasPrefix(n.Err.Error(), wantMsg) {
					t.Errorf("Shutdown notification's error = %v, want %q...", n.Err, wantMsg)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no Shutdown notification after the kill")
		}
	}
	if err := <-watchDone; err != nil {
		t.Errorf("Watch after the shutdown = %v, want nil", err)
	}
	// The calls of the interrupted sync keep failing; none restarts the plugin.
	if _, err := st.IsItemChanged(ctx, shopping, shopping.Stamp()); !errors.Is(err, repl.ErrGone) || !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("IsItemChanged after the kill = %v, want %q", err, wantMsg)
	}
	if err := st.Delete(ctx, "shopping.md", shopping.Stamp()); !errors.Is(err, repl.ErrGone) {
		t.Errorf("Delete after the kill = %v, want ErrGone", err)
	}

	// The next Open starts it again, and it serves the whole note.
	rc, err = st.Open(ctx, "big.md")
	if err != nil {
		t.Fatalf("Open after the kill = %v, want a restarted plugin", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || sum(got) != sum(big) {
		t.Errorf("big.md after the restart: %d bytes, %v; want the %d bytes on disk", len(got), err, len(big))
	}
	if pid2 := pidOf(t, st); pid2 == pid {
		t.Errorf("the restarted plugin has the old pid %d", pid)
	}

	// Kill -9 during a Write stream that updates a note: the note keeps its old content.
	pid = pidOf(t, st)
	update := bytes.Repeat([]byte("new text\n"), 200000)
	_, err = st.Write(ctx, repl.WriteRequest{
		Handle: "shopping.md", Expected: new(shopping.Stamp()), Name: "shopping.md", Kind: repl.KindFile,
		Size: int64(len(update)), ModTime: time.Now(), Data: &killReader{r: bytes.NewReader(update), after: 300 << 10, pid: pid},
	})
	if !errors.Is(err, repl.ErrGone) {
		t.Errorf("Write while the plugin was killed = %v, want ErrGone", err)
	}
	for name, want := range map[string][]byte{"big.md": big, "shopping.md": small} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || sum(b) != sum(want) {
			t.Errorf("%s after the kills: %d bytes, %v; want its %d bytes unchanged", name, len(b), err, len(want))
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && e.Name() != "big.md" && e.Name() != "shopping.md" {
			t.Errorf("after the kills the notes folder holds %s", e.Name())
		}
	}

	// A new Watch restarts the plugin too, and reports again.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notes = make(chan repl.Notification, 64)
	go func() { watchDone <- st.(repl.Notifier).Watch(wctx, func(n repl.Notification) { notes <- n }) }()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case n := <-notes:
			if n.Handle == "later.md" {
				cancel()
				<-watchDone
				return
			}
		case <-tick.C:
			_ = os.WriteFile(filepath.Join(dir, "later.md"), []byte(fmt.Sprint(i)), 0o644)
		case <-deadline:
			t.Fatal("no notification from the restarted plugin")
		}
	}
}

func loadSelf(t testing.TB, h *Host, name string) providers.Provider {
	t.Helper()
	p, err := h.Load(context.Background(), selfPlugin(t, t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A plugin that panics: the error says how it ended and what it said.
// A plugin that panics: its store's error is one line with the panic's message and the place of
// the log file, which holds the whole traceback; Cradle's log gets none of the traceback.
func TestPluginPanicIsExplained(t *testing.T) {
	rec := &logRecorder{}
	logs := t.TempDir()
	p := loadSelf(t, NewHost(Config{Logger: slog.New(rec), LogDir: logs}), "crashy")
	inst, err := p.Open(context.Background(), providers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	_, err = inst.Desktop.Open(context.Background(), "panic")
	logFile := filepath.Join(logs, "cradle-provider-crashy.log")
	for _, s := range []string{"provider crashy stopped: exit status 2", "(last log: panic: boom: the probe was told to panic", "its log is " + logFile} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Open of an item that makes the plugin panic = %v, want it to say %q", err, s)
		}
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("the crash's message has several lines: %q", err)
	}
	if b, rerr := os.ReadFile(logFile); rerr != nil || !bytes.Contains(b, []byte("panic: boom: the probe was told to panic")) || !bytes.Contains(b, []byte("goroutine ")) {
		t.Errorf("the plugin's log file %s = %q, %v; want the traceback", logFile, b, rerr)
	}
	rec.mu.Lock()
	for _, r := range rec.records {
		if strings.Contains(r, "goroutine ") && !strings.HasPrefix(r, "DEBUG") {
			t.Errorf("Cradle's log got a line of the traceback: %q", r)
		}
	}
	rec.mu.Unlock()
	if !errors.Is(err, repl.ErrGone) {
		t.Errorf("Open of an item that makes the plugin panic = %v, want ErrGone", err)
	}
	// Restarted by the next Open.
	rc, err := inst.Desktop.Open(context.Background(), "big.bin")
	if err != nil {
		t.Fatalf("Open after the panic = %v", err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != 4<<20 {
		t.Errorf("big.bin after the restart: %d bytes, %v", n, err)
	}
}

// Cancellation reaches the plugin process; its log lines reach the host's log with its name; its
// state folder is its own.
func TestCancellationAndLogsAcrossTheProcess(t *testing.T) {
	rec := &logRecorder{}
	h := NewHost(Config{Logger: slog.New(rec)})
	p := loadSelf(t, h, "crashy")
	state := t.TempDir()
	inst, err := p.Open(context.Background(), providers.Env{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if _, err := os.Stat(filepath.Join(state, pluginStateDir, "opened")); err != nil {
		t.Errorf("the plugin did not get its state folder %s: %v", filepath.Join(state, pluginStateDir), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = inst.Desktop.IsItemChanged(ctx, repl.Entry{Handle: "block"}, repl.Stamp{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("IsItemChanged cancelled by the host = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("IsItemChanged returned %v after the cancel", d)
	}
	rec.wait(t, "INFO probe: blocked call ended", "err=context canceled", "plugin=crashy")
}

// A plugin whose host dies (its stdin pipe closes) exits by itself.
func TestPluginExitsWhenTheHostGoes(t *testing.T) {
	p := loadSelf(t, quietHost(), "crashy")
	inst, err := p.Open(context.Background(), providers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	c := inst.Desktop.(interface{ client() *storeClient }).client()
	c.mu.Lock()
	r := c.cur.proc.runner
	c.mu.Unlock()
	r.mu.Lock()
	_ = r.parent.Close()
	r.mu.Unlock()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin did not exit when its host's pipe closed")
	}
	if st := r.exitStatus(); st != "exit status 0" {
		t.Errorf("the plugin ended with %q, want exit status 0", st)
	}
}

func TestClosedStoreStaysClosed(t *testing.T) {
	p := loadSelf(t, quietHost(), "crashy")
	inst, err := p.Open(context.Background(), providers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c := inst.Desktop.(interface{ client() *storeClient }).client()
	c.mu.Lock()
	r := c.cur.proc.runner
	c.mu.Unlock()
	if err := inst.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin still runs after Close")
	}
	if _, err := inst.Desktop.Enumerate(context.Background()); !errors.Is(err, repl.ErrGone) || err.Error() != "provider crashy is closed" {
		t.Errorf("Enumerate after Close = %v, want %q", err, "provider crashy is closed")
	}
}

// The device side of a plugin partnership is the files provider's device folder, filtered by the
// plugin: a picture in the device's notes folder is not a note.
func TestDeviceSideIsAFilteredDeviceFolder(t *testing.T) {
	p, err := quietHost().Load(context.Background(), notesPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	devRoot := t.TempDir()
	if err := os.MkdirAll(filepath.Join(devRoot, "Notes", "trips"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"Notes/todo.md": "- call Ada\n", "Notes/trips/rome.md": "# Rome\n", "Notes/photo.jpg": "\xff\xd8"} {
		if err := os.WriteFile(filepath.Join(devRoot, filepath.FromSlash(name)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev, err := folder.Open(devRoot, folder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	state := t.TempDir()
	inst, err := p.Open(context.Background(), providers.Env{
		Options:  map[string]string{"desktop": t.TempDir(), "device-path": "Notes"},
		Device:   dev,
		StateDir: state,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx := context.Background()
	it, err := inst.Device.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if inst.Device.IsItemReplicated(e) {
			got = append(got, e.Handle)
		}
	}
	slices.Sort(got)
	if want := []string{"todo.md", "trips", "trips/rome.md"}; !slices.Equal(got, want) {
		t.Errorf("the device side replicates %v, want %v", got, want)
	}
	if _, ok := inst.Device.(repl.Notifier); !ok {
		t.Error("the device side lost the device store's Notifier")
	}
	if _, err := os.Stat(filepath.Join(state, deviceStateDir, deviceReadyMarker)); err != nil {
		t.Errorf("the device side keeps no state in %s: %v", filepath.Join(state, deviceStateDir), err)
	}
}

// A plugin that serves its own device side: a second process opens it on the device the host
// serves over the broker, with the store's abilities, the device's events, and a restart after a
// crash, as the desktop side has them.
func TestDeviceSideServedByThePlugin(t *testing.T) {
	h := quietHost()
	p := loadSelf(t, h, "devside")
	devRoot := t.TempDir()
	dev, err := folder.Open(devRoot, folder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	state := t.TempDir()
	ctx := context.Background()
	inst, err := p.Open(ctx, providers.Env{
		Options:  map[string]string{"desktop": t.TempDir(), DevicePathOption: "Contacts/all.vcf"},
		Device:   dev,
		StateDir: state,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	us, ok := inst.Device.(repl.UnitStore)
	if !ok {
		t.Fatalf("the device side is a %T, want the plugin's repl.UnitStore", inst.Device)
	}
	for _, ability := range []struct {
		name string
		ok   bool
	}{{"Notifier", is[repl.Notifier](inst.Device)}, {"Hasher", is[repl.Hasher](inst.Device)}, {"Stater", is[repl.Stater](inst.Device)}} {
		if !ability.ok {
			t.Errorf("the device side is no %s; the plugin's store is", ability.name)
		}
	}
	if pidOf(t, inst.Device) == pidOf(t, inst.Desktop) {
		t.Error("the device side runs in the desktop side's process")
	}
	// Watch first: the store reports a card another program adds to the file (a device event
	// that crossed into the plugin).
	notes := make(chan repl.Notification, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() { _ = inst.Device.(repl.Notifier).Watch(wctx, func(n repl.Notification) { notes <- n }) }()
	e, err := us.WriteUnits(ctx, repl.WriteRequest{Name: "ada@example.org", Kind: repl.KindFile, Size: -1},
		repl.Units{"FN": []byte("FN:Ada Lovelace"), "EMAIL;HOME": []byte("EMAIL;TYPE=home:ada@example.org")})
	if err != nil {
		t.Fatalf("WriteUnits through the plugin's device side: %v", err)
	}
	onDevice, err := os.ReadFile(filepath.Join(devRoot, "Contacts", "all.vcf"))
	if err != nil || !bytes.Contains(onDevice, []byte("FN:Ada Lovelace")) {
		t.Fatalf("the device holds %q, %v; want Ada's card in Contacts/all.vcf", onDevice, err)
	}
	if err := os.WriteFile(filepath.Join(devRoot, "Contacts", "all.vcf"), append(onDevice,
		"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace@example.org\r\nFN:Grace Hopper\r\nEND:VCARD\r\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case n := <-notes:
			seen = n.Handle == "grace@example.org"
		case <-deadline:
			t.Fatal("no notification for a card added on the device")
		}
	}
	// A device error crosses twice (host device -> plugin store -> host) with its sentinels.
	if _, err := inst.Device.Open(ctx, "nobody@example.org"); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open of a missing card = %v, want ErrNotFound", err)
	}
	// The device side's process crashes: the store says so, and the next enumeration restarts it.
	pid := pidOf(t, inst.Device)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := us.ReadUnits(ctx, e.Handle); !errors.Is(err, repl.ErrGone) {
		t.Errorf("ReadUnits after the device side's process died = %v, want ErrGone", err)
	}
	it, err := inst.Device.Enumerate(ctx)
	if err != nil {
		t.Fatalf("Enumerate after the crash (a restart): %v", err)
	}
	var got []string
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Handle)
	}
	it.Close()
	slices.Sort(got)
	if want := []string{"ada@example.org", "grace@example.org"}; !slices.Equal(got, want) {
		t.Errorf("after the restart the device side holds %v, want %v", got, want)
	}
	if pidOf(t, inst.Device) == pid {
		t.Error("the device side was not restarted")
	}
}

func is[T any](x any) bool {
	_, ok := x.(T)
	return ok
}
