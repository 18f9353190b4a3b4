package e2e

// Helpers of the content tests (issues 13 and 14): they look at what every file holds on both
// sides, not at what the sync reports.

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// outcome is one session of `cradle sync --json`, with the fields the content tests read.
type outcome struct {
	Outcome   string
	ToDesktop counts `json:"to_desktop"`
	ToDevice  counts `json:"to_device"`
	Conflicts int
	Skipped   int
	Errors    []string
}

// syncOnce runs `cradle sync --json` (it must exit 0) and returns its one session.
func (e *env) syncOnce(args ...string) outcome {
	e.t.Helper()
	r := e.ok(append([]string{"sync", "--json"}, args...)...)
	var ss []outcome
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil || len(ss) != 1 {
		e.t.Fatalf("sync --json printed %q (%v), want one session", r.stdout, err)
	}
	return ss[0]
}

// contents maps every file under dir (Cradle's .cradle folder left out) to what it holds.
func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".cradle" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// holding returns the files under dir (relative, sorted) that hold exactly content.
func holding(t *testing.T, dir, content string) []string {
	t.Helper()
	var out []string
	for p, c := range contents(t, dir) {
		if c == content {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// conflictCopy matches the name a conflict's other version is kept under:
// "dir/name (conflict DATE side).ext".
var conflictCopy = regexp.MustCompile(`\(conflict [^)]*\)`)

// copies returns the conflict copies under dir (relative, sorted).
func copies(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for p := range contents(t, dir) {
		if conflictCopy.MatchString(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// describe lists a folder's files and their contents (shortened), for failure messages.
func describe(t *testing.T, dir string) string {
	t.Helper()
	cs := contents(t, dir)
	names := make([]string, 0, len(cs))
	for p := range cs {
		names = append(names, p)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, p := range names {
		c := cs[p]
		if len(c) > 60 {
			c = c[:60] + "..."
		}
		b.WriteString("  " + p + ": " + strings.ReplaceAll(c, "\n", `\n`) + "\n")
	}
	if b.Len() == 0 {
		return "  (no files)\n"
	}
	return b.String()
}

// nextSecond sleeps until just after the next whole second of the clock: the tests that need
// two moments within one second (MTP dates have whole seconds) start there. It is the only
// sleep these tests take, and it synchronises with the clock, not with Cradle.
func nextSecond() time.Time {
	now := time.Now()
	next := now.Truncate(time.Second).Add(time.Second + 5*time.Millisecond)
	time.Sleep(next.Sub(now))
	return time.Now()
}

// sameSecond tells whether a and b fall within one whole second of the clock.
func sameSecond(a, b time.Time) bool { return a.Unix() == b.Unix() }
