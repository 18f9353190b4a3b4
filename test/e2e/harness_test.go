// Package e2e runs the real cradle binary against emulated devices (--emulate DIR), as a user or
// a script would: every test goes through the command line and looks at the files on both sides.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// bin is the cradle binary built once for the whole run.
var bin string

func TestMain(m *testing.M) { clitest.Main(m, &bin) }

// env is one computer (a config folder and a desktop folder) and one emulated phone.
type env struct {
	t       *testing.T
	config  string
	desktop string
	phone   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, config: filepath.Join(root, "config"), desktop: filepath.Join(root, "desktop"), phone: filepath.Join(root, "phone")}
	mkdir(t, e.desktop)
	mkdir(t, e.phone)
	return e
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cradle runs the binary with the given arguments (no --config or --emulate added).
func cradle(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var r result
	var err error
	r.stdout, r.stderr, r.code, err = clitest.Run(clitest.Command(ctx, bin, args...))
	if err != nil {
		t.Fatalf("run cradle %v: %v", args, err)
	}
	return r
}

// run runs cradle with this env's config folder and phone attached.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return cradle(e.t, append([]string{"--config", e.config, "--emulate", e.phone}, args...)...)
}

// ok runs cradle and fails the test unless it exits 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("cradle %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// serial returns the emulated phone's serial, from `cradle devices --json`.
func (e *env) serial() string {
	e.t.Helper()
	var devs []map[string]any
	r := e.ok("devices", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 {
		e.t.Fatalf("devices --json = %q (%v), want one device", r.stdout, err)
	}
	return devs[0]["serial"].(string)
}

// partner adds a files partnership between the desktop folder and the phone's Documents.
func (e *env) partner(extra ...string) {
	e.t.Helper()
	args := append([]string{"partner", "add", "--name", "docs", "--provider", "files", "--device", e.serial(),
		"--desktop", e.desktop, "--device-path", "Documents"}, extra...)
	e.ok(args...)
}

// syncJSON runs `cradle sync --json` and returns the sessions.
func (e *env) syncJSON(args ...string) []session {
	e.t.Helper()
	r := e.ok(append([]string{"sync", "--json"}, args...)...)
	var ss []session
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil {
		e.t.Fatalf("sync --json printed %q: %v", r.stdout, err)
	}
	return ss
}

type counts struct{ Created, Updated, Renamed, Deleted int }

type session struct {
	Partnership string
	Outcome     string
	ToDesktop   counts `json:"to_desktop"`
	ToDevice    counts `json:"to_device"`
	Conflicts   int
	Errors      []string
}

type conflictSide struct {
	Exists   bool
	Size     int64
	Modified time.Time
}

type conflict struct {
	ID              string
	Partnership     string
	Path            string
	Desktop         conflictSide
	Device          conflictSide
	Resolution      string
	ResolutionError string `json:"resolution_error"`
	Choices         []string
}

func (e *env) conflicts() []conflict {
	e.t.Helper()
	r := e.ok("conflicts", "--json")
	var cs []conflict
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil {
		e.t.Fatalf("conflicts --json printed %q: %v", r.stdout, err)
	}
	return cs
}

// devDir is the partnership's folder on the phone.
func (e *env) devDir() string { return filepath.Join(e.phone, "Documents") }

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// put writes a file (creating folders) with a modification time, so edits are always seen.
func put(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// tree describes a folder: each file's relative path and content hash, each folder with "/".
// Cradle's own metadata folder (.cradle) is left out.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if d.Name() == ".cradle" {
			return filepath.SkipDir
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// sameTrees fails unless both folders hold the same names and contents.
func sameTrees(t *testing.T, a, b string) {
	t.Helper()
	ta, tb := tree(t, a), tree(t, b)
	var diff []string
	for k, v := range ta {
		if w, ok := tb[k]; !ok {
			diff = append(diff, "only on "+a+": "+k)
		} else if v != w {
			diff = append(diff, "differs: "+k)
		}
	}
	for k := range tb {
		if _, ok := ta[k]; !ok {
			diff = append(diff, "only on "+b+": "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Fatalf("trees differ:\n%s", strings.Join(diff, "\n"))
	}
}

// fileID is what tells whether a file was rewritten: its inode, size and modification time.
type fileID struct {
	ino  uint64
	size int64
	mod  int64
}

func fileIDs(t *testing.T, dir string) map[string]fileID {
	t.Helper()
	out := map[string]fileID{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".cradle" {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = fileID{ino: st.Ino, size: fi.Size(), mod: fi.ModTime().UnixNano()}
		return nil
	})
	return out
}

// oneLine fails unless stderr holds exactly one non-empty line.
func oneLine(t *testing.T, what string, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code == 0 {
		t.Errorf("%s: exit 0, want an error\n%v", what, r)
	}
	if len(lines) != 1 || lines[0] == "" {
		t.Errorf("%s: stderr has %d lines, want one:\n%s", what, len(lines), r.stderr)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("%s: a stack trace on stderr:\n%s", what, r.stderr)
	}
}

// base is a fixed point in the past that test files are dated from.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
