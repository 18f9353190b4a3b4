package e2e

// Issue 13 ("what is replicated follows the rules users know"): ignore patterns given with
// `partner add --ignore` have .gitignore's semantics, where a leading "/" anchors a pattern to
// the partnership's top folder.

import (
	"path/filepath"
	"strings"
	"testing"
)

// ignoreSetup makes files named name at the top and deeper on both sides.
func ignoreSetup(t *testing.T, e *env, name string) {
	t.Helper()
	put(t, filepath.Join(e.desktop, name, "top.txt"), "the computer's top "+name, at(0))
	put(t, filepath.Join(e.desktop, "src", name, "deep.txt"), "the computer's deeper "+name, at(1))
	put(t, filepath.Join(e.devDir(), name, "phone top.txt"), "the phone's top "+name, at(2))
	put(t, filepath.Join(e.devDir(), "Photos", name, "phone deep.txt"), "the phone's deeper "+name, at(3))
}

// checkAnchored fails unless only the top-level item called name stayed on its side.
func checkAnchored(t *testing.T, e *env, pattern, name string) {
	t.Helper()
	for _, c := range []struct{ dir, rel string }{
		{e.devDir(), name + "/top.txt"},
		{e.desktop, name + "/phone top.txt"},
	} {
		if exists(filepath.Join(c.dir, filepath.FromSlash(c.rel))) {
			t.Errorf("--ignore %s: the top-level %s was synced (%s)", pattern, c.rel, c.dir)
		}
	}
	for _, c := range []struct{ dir, rel, want string }{
		{e.devDir(), "src/" + name + "/deep.txt", "the computer's deeper " + name},
		{e.desktop, "Photos/" + name + "/phone deep.txt", "the phone's deeper " + name},
	} {
		p := filepath.Join(c.dir, filepath.FromSlash(c.rel))
		if !exists(p) {
			t.Errorf("--ignore %s: %s was not synced, but the pattern is anchored to the top (it ignores only the top-level %s)", pattern, c.rel, name)
		} else if got := get(t, p); got != c.want {
			t.Errorf("--ignore %s: %s = %q, want %q", pattern, p, got, c.want)
		}
	}
}

// TestIgnoreLeadingSlashAnchors: "/build" ignores the build folder at the top of the
// partnership only; a build folder deeper down is synced both ways.
func TestIgnoreLeadingSlashAnchors(t *testing.T) {
	e := newEnv(t)
	ignoreSetup(t, e, "build")
	e.partner("--ignore", "/build")
	e.syncOnce()
	checkAnchored(t, e, "/build", "build")
}

// TestIgnoreDotSlashAnchors: "./cache" names the cache folder at the top, as "/cache" does. A
// pattern that matches nothing and says nothing is what users do not expect: either it anchors
// like "/cache", or `partner add` refuses it with a message that names it.
func TestIgnoreDotSlashAnchors(t *testing.T) {
	e := newEnv(t)
	ignoreSetup(t, e, "cache")
	r := e.run("partner", "add", "--name", "docs", "--provider", "files", "--device", e.serial(),
		"--desktop", e.desktop, "--device-path", "Documents", "--ignore", "./cache")
	if r.code != 0 {
		if !strings.Contains(r.stderr, "./cache") {
			t.Errorf("partner add refused --ignore ./cache without naming it: %v", r)
		}
		return
	}
	e.syncOnce()
	checkAnchored(t, e, "./cache", "cache")
}
