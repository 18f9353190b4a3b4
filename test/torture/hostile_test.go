package torture

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
)

// TestHostileNames (R3): a device that reports hostile names for its objects (path separators,
// "..", absolute paths, NUL and control characters, names reserved on Windows, over-long names,
// Cradle's own metadata and temporary names) through full two-way syncs: nothing is written
// outside the partnership's desktop folder, nothing there is a link, the sessions finish, and
// the well-named files sync as usual.
func TestHostileNames(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	tag := fmt.Sprintf("cradle-hostile-%d", time.Now().UnixNano())
	abs := []string{"/tmp/" + tag + ".txt", "/" + tag, filepath.Join(e.root, tag+"-abs.txt")}
	hostile := []string{
		"..", ".", "", "../escape.txt", "../../escape.txt", "dir/../../escape.txt", `..\..\escape.txt`,
		abs[0], abs[1], abs[2], "a/b.txt", `a\b.txt`, "/", `\`,
		"nul\x00name.txt", "ctrl\x01\x1f.txt", "bell\x07.txt", "tab\there.txt", "new\nline.txt", "del\x7f.txt",
		"CON", "nul.txt", "COM1.txt", "LPT9", "aux.tar.gz",
		strings.Repeat("x", 1000), strings.Repeat("é", 500), strings.Repeat("\U0001F600", 300),
		"\xff\xfe.txt", "\u202etxt.exe", "trailing. ", "~", "~/x.txt", "$HOME",
		".cradle", ".cradle-part-1-AAAA", ".cradle-emu-part-1-2-3",
	}
	dev := e.devDir()
	names := map[string]string{}
	for i, h := range hostile {
		k := fmt.Sprintf("h%02d.txt", i)
		names[k] = h
		if err := writeAt(filepath.Join(dev, k), []byte("hostile "+fmt.Sprint(i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// A hostile folder with a file inside, and one with a hostile name inside a good folder.
	names["hdir"] = ".."
	names["hsub"] = "/etc"
	for _, p := range []string{"hdir/inside.txt", "good/hsub/passwd", "good/fine.txt", "Café ünïcode.txt", "ok.txt"} {
		if err := writeAt(filepath.Join(dev, p), []byte("file "+p), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeAt(filepath.Join(e.desktop, "from the desktop.txt"), []byte("desktop"), time.Now()); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(e.root, "outside", "keep.txt")
	if err := writeAt(sentinel, []byte("outside the partnership"), time.Now()); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Dir(e.root)
	before := entries(t, parent)
	rootBefore := entries(t, e.root)
	outsideBefore := fingerprint(t, filepath.Join(e.root, "outside"))

	rec := record{ID: "R3", Count: len(hostile) + 2, What: fmt.Sprintf("%d hostile names reported by the device (and 2 hostile folders) through two full two-way syncs", len(hostile))}
	ip := openInproc(t, e, emulator.Options{Names: names}, nil)
	for round := range 2 {
		s := ip.sync(t, manager.SyncOptions{})
		t.Logf("session %d: %s", round+1, summary(s))
		if s.Outcome == manager.OutcomeFailed || s.Outcome == manager.OutcomeStopped {
			rec.Failed++
			t.Errorf("session %d with hostile names did not finish: %s\nlog:\n%s", round+1, summary(s), ip.log.String())
		}
	}
	ip.m.Close()

	// Nothing outside the desktop folder.
	for _, p := range abs {
		if _, err := os.Lstat(p); err == nil {
			rec.Failed++
			os.RemoveAll(p)
			t.Errorf("%s was written (an absolute name from the device)", p)
		}
	}
	if after := entries(t, parent); !slices.Equal(before, after) {
		rec.Failed++
		t.Errorf("the folder above the test's changed: %v, then %v", before, after)
	}
	rootAfter := slices.DeleteFunc(entries(t, e.root), func(n string) bool { return n == "config" }) // the manager's
	if !slices.Equal(rootBefore, rootAfter) {
		rec.Failed++
		t.Errorf("the folder holding the desktop folder changed: %v, then %v", rootBefore, rootAfter)
	}
	if after := fingerprint(t, filepath.Join(e.root, "outside")); fmt.Sprint(after) != fmt.Sprint(outsideBefore) {
		rec.Failed++
		t.Errorf("a folder beside the desktop folder changed: %v, then %v", outsideBefore, after)
	}
	// Inside it: no link, nothing whose real path leaves it, no name a device may not give.
	var got []string
	err := filepath.WalkDir(e.desktop, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.desktop, p)
		got = append(got, rel)
		if d.Type()&fs.ModeSymlink != 0 {
			rec.Failed++
			t.Errorf("%s is a symbolic link", rel)
		}
		if real, err := filepath.EvalSymlinks(p); err != nil || !strings.HasPrefix(real+"/", e.desktop+"/") && real != e.desktop {
			rec.Failed++
			t.Errorf("%s resolves to %s, outside the desktop folder (%v)", rel, real, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ok.txt", "Café ünïcode.txt", "good/fine.txt", "from the desktop.txt"} {
		if !slices.Contains(got, filepath.FromSlash(want)) {
			rec.Failed++
			t.Errorf("the well-named %s did not sync; the desktop holds %q", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dev, "from the desktop.txt")); err != nil {
		rec.Failed++
		t.Errorf("the desktop's file did not reach the device: %v", err)
	}
	var accepted []string
	for _, g := range got {
		if !slices.Contains([]string{".", "ok.txt", "Café ünïcode.txt", "good", "good/fine.txt", "from the desktop.txt"}, filepath.ToSlash(g)) {
			if len(g) > 40 {
				accepted = append(accepted, fmt.Sprintf("%q... (%d bytes)", g[:8], len(g)))
			} else {
				accepted = append(accepted, fmt.Sprintf("%q", g))
			}
		}
	}
	t.Logf("names from the device that reached the desktop (inside it): %s", strings.Join(accepted, ", "))
	rec.Notes = append(rec.Notes, fmt.Sprintf("%d of the %d hostile names were taken as they are (legal on Linux, inside the folder): %s; every other one was skipped with a warning, and its object left alone on the device",
		len(accepted), rec.Count, strings.Join(accepted, ", ")))
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}
