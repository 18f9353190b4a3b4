package torture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// bin is the cradle binary, built once for the run.
var bin string

func TestMain(m *testing.M) { clitest.Main(m, &bin) }

// full tells whether the full campaign runs (CRADLE_TORTURE=1), not the short one.
func full() bool { return os.Getenv("CRADLE_TORTURE") == "1" }

// trials returns a campaign's number of trials: short in the short form, long in the full one,
// or CRADLE_TORTURE_TRIALS when set.
func trials(t *testing.T, short, long int) int {
	t.Helper()
	if v := os.Getenv("CRADLE_TORTURE_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CRADLE_TORTURE_TRIALS=%q is not a positive number", v)
		}
		return n
	}
	if full() {
		return long
	}
	return short
}

// newRand returns the test's random source, seeded from CRADLE_TORTURE_SEED or the clock; the
// seed is logged and returned so that a failure can be replayed.
func newRand(t *testing.T) (*rand.Rand, uint64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CRADLE_TORTURE_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CRADLE_TORTURE_SEED=%q is not a number", v)
		}
		seed = s
	}
	t.Logf("seed %d (replay with CRADLE_TORTURE_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed
}

// record is one campaign's outcome, as docs/reliability.md reports it.
type record struct {
	ID    string `json:"id"`    // R1...R6
	Test  string `json:"test"`  // the Go test
	What  string `json:"what"`  // one line: what was tried
	Full  bool   `json:"full"`  // the full campaign (else the short one)
	Seed  uint64 `json:"seed"`  // the random seed
	Count int    `json:"count"` // trials (or cases)
	// Failed counts trials where a check failed; Lost, Corrupt and Extra count files lost,
	// differing from what the user made, and left over (temporary files, duplicates).
	Failed  int      `json:"failed"`
	Lost    int      `json:"lost"`
	Corrupt int      `json:"corrupt"`
	Extra   int      `json:"extra"`
	Seconds float64  `json:"seconds"`
	Notes   []string `json:"notes,omitempty"`
}

var reportMu sync.Mutex

// report appends r to CRADLE_TORTURE_REPORT (if set) and logs it.
func report(t *testing.T, r record) {
	t.Helper()
	r.Test = t.Name()
	r.Full = full()
	t.Logf("%s: %d trials, %d failed, %d lost, %d corrupt, %d left over (%.0f s)", r.ID, r.Count, r.Failed, r.Lost, r.Corrupt, r.Extra, r.Seconds)
	path := os.Getenv("CRADLE_TORTURE_REPORT")
	if path == "" {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("CRADLE_TORTURE_REPORT: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatalf("CRADLE_TORTURE_REPORT: %v", err)
	}
}

// env is one computer (a config folder and a desktop folder) and one emulated phone.
type env struct {
	t       *testing.T
	root    string
	config  string
	desktop string
	phone   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, config: filepath.Join(root, "config"), desktop: filepath.Join(root, "desktop"), phone: filepath.Join(root, "phone")}
	mkdir(t, e.desktop)
	mkdir(t, e.phone)
	return e
}

// devDir is the partnership's folder on the phone.
func (e *env) devDir() string { return filepath.Join(e.phone, "Documents") }

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
	wall           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// command returns the cradle command with this env's config folder and phone.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	return clitest.Command(ctx, bin, append([]string{"--config", e.config, "--emulate", e.phone}, args...)...)
}

// run runs cradle to the end (at most 5 minutes).
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var r result
	var err error
	t0 := time.Now()
	r.stdout, r.stderr, r.code, err = clitest.Run(e.command(ctx, args...))
	r.wall = time.Since(t0)
	if err != nil {
		e.t.Fatalf("run cradle %v: %v", args, err)
	}
	return r
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

// partner adds a files partnership between the desktop folder and the phone's Documents.
func (e *env) partner(extra ...string) {
	e.t.Helper()
	var devs []struct{ Serial string }
	r := e.ok("devices", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 {
		e.t.Fatalf("devices --json = %q (%v), want one device", r.stdout, err)
	}
	e.ok(append([]string{"partner", "add", "--name", "docs", "--provider", "files", "--device", devs[0].Serial,
		"--desktop", e.desktop, "--device-path", "Documents"}, extra...)...)
}

// session is what `cradle sync --json` prints of one session.
type session struct {
	Outcome   string
	ToDesktop counts `json:"to_desktop"`
	ToDevice  counts `json:"to_device"`
	Conflicts int
	Skipped   int
	Errors    []string
}

type counts struct{ Created, Updated, Renamed, Deleted int }

// syncJSON runs `cradle sync --json` and returns its one session; it fails the test unless the
// command exits 0.
func (e *env) syncJSON(args ...string) session {
	e.t.Helper()
	r := e.ok(append([]string{"sync", "--json"}, args...)...)
	var ss []session
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil || len(ss) != 1 {
		e.t.Fatalf("sync --json printed %q (%v), want one session", r.stdout, err)
	}
	return ss[0]
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeAt writes a file (creating its folders) and dates it mod.
func writeAt(path string, content []byte, mod time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		return err
	}
	return os.Chtimes(path, mod, mod)
}

// Temporary-file prefixes: the files provider's (both sides), the MTP initiator's renames and
// the emulated device's uploads in progress.
var tempPrefixes = []string{".cradle-part-", ".cradle-rename-", ".cradle-emu-part-"}

func isTemp(name string) bool {
	for _, p := range tempPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// snapshot is a folder's content: each file's relative path with its content hash, each folder
// with a trailing "/" and no hash. Cradle's metadata folder .cradle is left out; temporary files
// are listed apart.
type snapshot struct {
	items map[string]string
	temps []string
}

func scan(dir string) (snapshot, error) {
	s := snapshot{items: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if isTemp(d.Name()) {
			s.temps = append(s.temps, rel)
			return nil
		}
		if d.Name() == ".cradle" && d.IsDir() {
			return filepath.SkipDir
		}
		if d.IsDir() {
			s.items[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.items[rel] = hash(b)
		return nil
	})
	return s, err
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// model is what the user made: each file's relative path and content.
type model map[string][]byte

// diff compares a scanned folder with the model: files missing, files whose content differs, and
// files the model does not have. Folders are not compared (a folder emptied by deletions may
// stay).
func (m model) diff(s snapshot) (lost, corrupt, extra []string) {
	for rel, content := range m {
		h, ok := s.items[rel]
		switch {
		case !ok:
			lost = append(lost, rel)
		case h != hash(content):
			corrupt = append(corrupt, rel)
		}
	}
	for rel := range s.items {
		if strings.HasSuffix(rel, "/") {
			continue
		}
		if _, ok := m[rel]; !ok {
			extra = append(extra, rel)
		}
	}
	sort.Strings(lost)
	sort.Strings(corrupt)
	sort.Strings(extra)
	return lost, corrupt, extra
}

// check compares both sides with the model and with each other; it returns the problems found,
// one line each, and the counts of lost, corrupt and left-over files.
func (m model) check(desktop, device string) (problems []string, lost, corrupt, extra int) {
	for _, side := range []struct{ name, dir string }{{"desktop", desktop}, {"device", device}} {
		s, err := scan(side.dir)
		if err != nil {
			return append(problems, fmt.Sprintf("%s: %v", side.name, err)), 0, 0, 0
		}
		l, c, x := m.diff(s)
		lost, corrupt, extra = lost+len(l), corrupt+len(c), extra+len(x)+len(s.temps)
		if len(l) > 0 {
			problems = append(problems, fmt.Sprintf("%s lost %d files: %s", side.name, len(l), short(l)))
		}
		if len(c) > 0 {
			problems = append(problems, fmt.Sprintf("%s has %d files with the wrong content: %s", side.name, len(c), short(c)))
		}
		if len(x) > 0 {
			problems = append(problems, fmt.Sprintf("%s has %d files nobody made: %s", side.name, len(x), short(x)))
		}
		if len(s.temps) > 0 {
			problems = append(problems, fmt.Sprintf("%s shows %d temporary files: %s", side.name, len(s.temps), short(s.temps)))
		}
	}
	return problems, lost, corrupt, extra
}

// short lists at most five names.
func short(names []string) string {
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
}

// temps lists the temporary files anywhere below dir (Cradle's metadata folder included).
func temps(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && isTemp(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// clock hands out modification times, one second apart, so that every edit is seen as one
// whatever the file system's time resolution.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) next() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

// content returns random content, starting with tag, of a size drawn from a mix: mostly small
// files, some of tens of KiB, and a share of large ones (percent, from 256 KiB to 2 MiB).
func content(r *rand.Rand, tag string, large int) []byte {
	var n int
	switch x := r.IntN(100); {
	case x < large:
		n = 256<<10 + r.IntN(2<<20)
	case x < 70:
		n = 16 + r.IntN(4<<10)
	default:
		n = 4<<10 + r.IntN(60<<10)
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	copy(b, tag)
	return b
}
