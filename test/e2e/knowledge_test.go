package e2e

// Issue 14: the knowledge model over months of use: a restored config folder, a file replaced by
// a folder while the other side edits it, and tombstones that must be forgotten.

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the folder src to dst (which must not exist), keeping modes and times: what a
// backup of the config folder, restored, gives back.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, fi.Mode().Perm()|0o700)
		}
		if !fi.Mode().IsRegular() {
			return nil // sockets and the like are not part of a backup
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// TestRestoredConfigWithSecondComputer (issue 14, finding 1): computer A's config folder is
// restored from a backup while the phone is also partnered with computer B. Everything made
// after the restore must reach the phone and B, and nothing anyone made may be deleted.
func TestRestoredConfigWithSecondComputer(t *testing.T) {
	a := newEnv(t)
	b := &env{t: t, config: filepath.Join(t.TempDir(), "config-b"), desktop: filepath.Join(t.TempDir(), "desktop-b"), phone: a.phone}
	mkdir(t, b.desktop)
	put(t, filepath.Join(a.desktop, "start.txt"), "made on A before the backup", at(0))
	a.partner()
	a.syncOnce()
	b.partner()
	b.syncOnce()

	backup := filepath.Join(t.TempDir(), "backup of A's config")
	copyTree(t, a.config, backup)

	// After the backup, A makes files and edits them twice, syncing each time (A's replica
	// counts on past the backup's tick); B syncs them too.
	for v, what := range []string{"made", "edited", "edited again"} {
		for i := 1; i <= 3; i++ {
			put(t, filepath.Join(a.desktop, fmt.Sprintf("x%d.txt", i)), fmt.Sprintf("%s on A after the backup, %d", what, i), at(10*v+i))
		}
		a.syncOnce()
	}
	b.syncOnce()

	// A's config folder is restored from the backup (its desktop folder is as it was).
	if err := os.RemoveAll(a.config); err != nil {
		t.Fatal(err)
	}
	copyTree(t, backup, a.config)

	want := map[string]string{"start.txt": "made on A before the backup"}
	for i := 1; i <= 3; i++ {
		want[fmt.Sprintf("x%d.txt", i)] = fmt.Sprintf("edited again on A after the backup, %d", i)
	}
	check := func(when string) {
		t.Helper()
		for who, dir := range map[string]string{"A": a.desktop, "the phone": a.devDir(), "B": b.desktop} {
			got := contents(t, dir)
			var bad []string
			for name, c := range want {
				if got[name] != c {
					bad = append(bad, fmt.Sprintf("%s = %q, want %q", name, got[name], c))
				}
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					bad = append(bad, fmt.Sprintf("%s should not be there", name))
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s, %s:\n  %s", when, who, strings.Join(bad, "\n  "))
			}
		}
	}

	// After the restore A makes new files; both computers sync (twice, to settle).
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("new%d.txt", i)
		want[n] = fmt.Sprintf("made on A after the restore, %d", i)
		put(t, filepath.Join(a.desktop, n), want[n], at(30+i))
	}
	for range 2 {
		a.syncOnce()
		b.syncOnce()
	}
	check("after A made files after the restore and both synced")

	// Later edits on A reach everyone and delete nothing.
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("x%d.txt", i)
		want[n] = fmt.Sprintf("edited on A after the restore, %d", i)
		put(t, filepath.Join(a.desktop, n), want[n], at(40+i))
	}
	want["start.txt"] = "edited on B after the restore"
	put(t, filepath.Join(b.desktop, "start.txt"), want["start.txt"], at(50))
	for range 2 {
		a.syncOnce()
		b.syncOnce()
	}
	check("after later edits on A and B, and both synced")
	for who, e := range map[string]*env{"A": a, "B": b} {
		if cs := e.conflicts(); len(cs) != 0 {
			t.Errorf("%s has conflicts: %+v", who, cs)
		}
	}
}

// TestKindSwapWhileEdited (issue 14, finding 2): on one side a file is replaced by a folder of
// the same name (or the reverse) while the other side edits it. Whatever the engine makes of it
// (a conflict to resolve, a copy), no session skips it or fails on it, and after the user keeps
// both, the sides end equal with every content on both (a file/folder clash keeps both under
// every policy, as a name collision does), and a further sync has nothing left to do or skip.
func TestKindSwapWhileEdited(t *testing.T) {
	for _, swapper := range []string{"computer", "phone"} {
		for _, toFolder := range []bool{true, false} {
			for _, policy := range []string{"ask", "newest"} {
				what := "file becomes a folder"
				if !toFolder {
					what = "folder becomes a file"
				}
				t.Run(fmt.Sprintf("%s on the %s/%s", what, swapper, policy), func(t *testing.T) {
					kindSwap(t, swapper, toFolder, policy)
				})
			}
		}
	}
}

func kindSwap(t *testing.T, swapper string, toFolder bool, policy string) {
	e := newEnv(t)
	swapDir, editDir := e.desktop, e.devDir()
	if swapper == "phone" {
		swapDir, editDir = e.devDir(), e.desktop
	}
	var want []string
	if toFolder {
		put(t, filepath.Join(e.desktop, "thing"), "thing, a file", at(0))
	} else {
		put(t, filepath.Join(e.desktop, "thing", "inside.txt"), "inside the folder", at(0))
	}
	e.partner("--on-conflict", policy)
	e.syncOnce()
	sameTrees(t, e.desktop, e.devDir())
	if toFolder {
		if err := os.Remove(filepath.Join(swapDir, "thing")); err != nil {
			t.Fatal(err)
		}
		put(t, filepath.Join(swapDir, "thing", "inside.txt"), "in the folder that replaced the file", at(10))
		put(t, filepath.Join(editDir, "thing"), "thing, a file, edited", at(20))
		want = []string{"in the folder that replaced the file", "thing, a file, edited"}
	} else {
		if err := os.RemoveAll(filepath.Join(swapDir, "thing")); err != nil {
			t.Fatal(err)
		}
		put(t, filepath.Join(swapDir, "thing"), "the file that replaced the folder", at(10))
		put(t, filepath.Join(editDir, "thing", "inside.txt"), "inside the folder, edited", at(20))
		want = []string{"the file that replaced the folder", "inside the folder, edited"}
	}
	var log []string
	troubled := 0 // sessions that skipped an item or reported an error
	for i := 1; i <= 3; i++ {
		s := e.syncOnce()
		cs := e.conflicts()
		log = append(log, fmt.Sprintf("sync %d: %+v; pending %d", i, s, len(cs)))
		if s.Skipped > 0 || len(s.Errors) > 0 {
			troubled++
		}
		if len(cs) > 0 {
			r := e.run("resolve", "--all", "--keep", "both")
			log = append(log, fmt.Sprintf("resolve --all --keep both: exit %d %s", r.code, strings.TrimSpace(r.stderr)))
		}
	}
	s := e.syncOnce()
	log = append(log, fmt.Sprintf("last sync: %+v", s))
	history := strings.Join(log, "\n  ")
	if troubled > 0 {
		t.Errorf("%d of 3 sessions skipped items or reported errors: a file/folder clash is a conflict to show and resolve, not a failure:\n  %s", troubled, history)
	}
	if s.Skipped != 0 || s.Conflicts != 0 || len(e.conflicts()) != 0 || s.ToDesktop != (counts{}) || s.ToDevice != (counts{}) {
		t.Errorf("after three syncs and keeping both, a sync still has work, skips or conflicts:\n  %s", history)
	}
	for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
		for _, c := range want {
			if len(holding(t, dir, c)) == 0 {
				t.Errorf("the %s has no file holding %q:\n%s  %s", side, c, describe(t, dir), history)
			}
		}
	}
	sameTrees(t, e.desktop, e.devDir())
}

// sizeOf is the total size of the files matching glob.
func sizeOf(t *testing.T, glob string) int64 {
	t.Helper()
	ms, err := filepath.Glob(glob)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no file matches %s (%v)", glob, err)
	}
	var n int64
	for _, m := range ms {
		fi, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestTombstonesForgotten (issue 14, finding 3): the live count stays constant through rounds of
// churn (every round deletes the files of the round before and makes as many new ones, half on
// each side). Tombstones that both sides have seen are forgotten, so after 10 rounds the handle
// file and the device's snapshot in .cradle stay within 1.5x of their size after the first.
func TestTombstonesForgotten(t *testing.T) {
	const live, rounds = 300, 10
	e := newEnv(t)
	name := func(round, i int) string { return fmt.Sprintf("r%02d/file %03d.txt", round, i) }
	side := func(i int) string {
		if i%2 == 0 {
			return e.desktop
		}
		return e.devDir()
	}
	for i := range live {
		put(t, filepath.Join(side(i), filepath.FromSlash(name(0, i))), fmt.Sprintf("round 0, file %d", i), at(i))
	}
	e.partner()
	e.syncOnce()
	handles := filepath.Join(e.config, "state", "*.repl")
	snapshot := filepath.Join(e.phone, ".cradle", "*.snapshot")
	var firstHandles, firstSnap int64
	for round := 1; round <= rounds; round++ {
		for i := range live {
			if err := os.RemoveAll(filepath.Join(side(i), fmt.Sprintf("r%02d", round-1))); err != nil {
				t.Fatal(err)
			}
			put(t, filepath.Join(side(i), filepath.FromSlash(name(round, i))), fmt.Sprintf("round %d, file %d", round, i), at(round*live+i))
		}
		s := e.syncOnce("--allow-mass-delete")
		if s.Outcome != "ok" {
			t.Fatalf("round %d: %+v", round, s)
		}
		if n := len(contents(t, e.desktop)); n != live {
			t.Fatalf("round %d: the computer holds %d files, want %d", round, n, live)
		}
		h, sn := sizeOf(t, handles), sizeOf(t, snapshot)
		t.Logf("round %2d: handle file %7d bytes, device snapshot %7d bytes", round, h, sn)
		if round == 1 {
			firstHandles, firstSnap = h, sn
		}
	}
	sameTrees(t, e.desktop, e.devDir())
	h, sn := sizeOf(t, handles), sizeOf(t, snapshot)
	if float64(h) > 1.5*float64(firstHandles) {
		t.Errorf("the handle file grew from %d bytes after round 1 to %d after round %d (%.1fx) with %d live files: tombstones are not forgotten",
			firstHandles, h, rounds, float64(h)/float64(firstHandles), live)
	}
	if float64(sn) > 1.5*float64(firstSnap) {
		t.Errorf("the device snapshot grew from %d bytes after round 1 to %d after round %d (%.1fx) with %d live files: tombstones are not forgotten",
			firstSnap, sn, rounds, float64(sn)/float64(firstSnap), live)
	}
}
