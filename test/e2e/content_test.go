package e2e

// Issue 13: content identity. Each test drives the real binary over --emulate through a history
// a user meets and checks what every file holds on both sides afterwards: every content a user
// wrote last under a name must survive, and both sides must end equal.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// sameSecondStart makes the start of finding 1's history: the phone writes note.txt (v1) and a
// sync, which brings it to the computer, ends within the second the phone wrote it in. It returns
// the env and the moment the test got back from that sync (still in that second). A sync takes a
// few hundred milliseconds; on a loaded machine a try may miss the second, and is made again.
func sameSecondStart(t *testing.T, v1 string, partner ...string) (*env, time.Time) {
	t.Helper()
	for try := 1; ; try++ {
		e := newEnv(t)
		e.partner(partner...)
		e.syncOnce() // the partnership's first sync, of empty folders
		wrote := nextSecond()
		p := filepath.Join(e.devDir(), "note.txt")
		if err := os.WriteFile(p, []byte(v1), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, wrote, wrote); err != nil {
			t.Fatal(err)
		}
		s := e.syncOnce()
		synced := time.Now()
		if s.ToDesktop.Created != 1 || get(t, filepath.Join(e.desktop, "note.txt")) != v1 {
			t.Fatalf("the first sync did not bring note.txt to the computer: %+v", s)
		}
		if sameSecond(wrote, synced) {
			return e, synced
		}
		if try == 8 {
			t.Skipf("in 8 tries no sync ended within the second its file was written in (last: written %s, synced %s): the machine is too slow for this history",
				wrote.Format("15:04:05.000"), synced.Format("15:04:05.000"))
		}
		t.Logf("try %d: the sync ended in the next second (%s, %s); again", try, wrote.Format("15:04:05.000"), synced.Format("15:04:05.000"))
	}
}

// TestSameSecondSameSizeDeviceEdit (issue 13, finding 1): the phone rewrites a file with content
// of the same size within the second that the last sync recorded it in. MTP dates have whole
// seconds, so size and time are what they were; the edit must still reach the computer, and a
// later edit on the computer must not silently overwrite it.
func TestSameSecondSameSizeDeviceEdit(t *testing.T) {
	const v1, v2 = "phone note, first draft.", "phone note, FINAL DRAFT."
	if len(v1) != len(v2) {
		t.Fatal("the two versions must have one size")
	}
	// rewrite saves v2 on the phone within the second of the last sync: same size, and (to
	// MTP's whole seconds) the same time; its time is the moment the test got back from the sync.
	rewrite := func(e *env, synced time.Time) {
		p := filepath.Join(e.devDir(), "note.txt")
		if err := os.WriteFile(p, []byte(v2), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, synced, synced); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("phone edit", func(t *testing.T) {
		e, synced := sameSecondStart(t, v1)
		rewrite(e, synced)
		s := e.syncOnce()
		if got := get(t, filepath.Join(e.desktop, "note.txt")); got != v2 {
			t.Errorf("after the phone rewrote note.txt within the second of the last sync (same size), the computer's note.txt = %q, want the phone's %q (session %+v)", got, v2, s)
		}
		if got := get(t, filepath.Join(e.devDir(), "note.txt")); got != v2 {
			t.Errorf("the phone's note.txt = %q, want its own edit %q", got, v2)
		}
		// Nothing is left pending that a later sync would do.
		if s := e.syncOnce(); s.ToDesktop != (counts{}) || s.ToDevice != (counts{}) || s.Conflicts != 0 {
			t.Errorf("a second sync still did %+v", s)
		}
		sameTrees(t, e.desktop, e.devDir())
	})
	t.Run("then a computer edit", func(t *testing.T) {
		// The phone's same-second edit, then, before any sync, an edit on the computer: both
		// sides changed, so under "ask" the phone's edit must still exist after the sync (kept
		// on the phone as a pending conflict, or anywhere as a copy).
		e, synced := sameSecondStart(t, v1)
		rewrite(e, synced)
		const v3 = "the computer's edit of the note, made later"
		put(t, filepath.Join(e.desktop, "note.txt"), v3, synced.Add(5*time.Second))
		s := e.syncOnce()
		var where []string
		for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
			for _, p := range holding(t, dir, v2) {
				where = append(where, side+":"+p)
			}
		}
		if len(where) == 0 {
			t.Errorf("the phone's edit %q is gone from both sides (session %+v, pending conflicts %+v):\ncomputer:\n%sphone:\n%s",
				v2, s, e.conflicts(), describe(t, e.desktop), describe(t, e.devDir()))
		}
		if len(holding(t, e.desktop, v3))+len(holding(t, e.devDir(), v3)) == 0 {
			t.Errorf("the computer's edit %q is gone from both sides", v3)
		}
	})
}

// TestSubSecondRoundsBothSides (issue 13, finding 1, as it was seen): a dozen small files, rounds
// of edits on both sides faster than a second. Every edit has the same size as the content it
// replaces. After every round's sync both sides must be equal and every file must hold what was
// written to it last, on either side.
func TestSubSecondRoundsBothSides(t *testing.T) {
	e := newEnv(t)
	const files = 12
	name := func(i int) string { return fmt.Sprintf("f%02d.txt", i) }
	// Every content has one size: "fNN.txt round RR by desk" / "... by phon".
	content := func(i, round int, side string) string {
		return fmt.Sprintf("%s round %02d by %s", name(i), round, side)
	}
	want := map[string]string{}
	for i := range files {
		want[name(i)] = content(i, 0, "desk")
		put(t, filepath.Join(e.desktop, name(i)), want[name(i)], at(i))
	}
	e.partner("--on-conflict", "newest")
	e.syncOnce()
	sameTrees(t, e.desktop, e.devDir())

	// Round r edits three files on the computer, and on the phone the three the computer edited
	// in the round before (which that round's sync has just written to the phone, stamped with
	// the computer's time to the second). Every other round starts on a fresh second, so that
	// the next round's phone edits fall in the second of the sync before them.
	var lastDesk []int
	for round := 1; round <= 8; round++ {
		if round%2 == 1 {
			nextSecond()
		}
		var desk []int
		for k := range 3 {
			desk = append(desk, (round*3+k)%files)
		}
		for _, i := range desk {
			want[name(i)] = content(i, round, "desk")
			if err := os.WriteFile(filepath.Join(e.desktop, name(i)), []byte(want[name(i)]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range lastDesk {
			want[name(i)] = content(i, round, "phon")
			if err := os.WriteFile(filepath.Join(e.devDir(), name(i)), []byte(want[name(i)]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s := e.syncOnce()
		var lost []string
		for i := range files {
			n := name(i)
			d, p := get(t, filepath.Join(e.desktop, n)), get(t, filepath.Join(e.devDir(), n))
			if d != want[n] || p != want[n] {
				lost = append(lost, fmt.Sprintf("%s: want %q (last written), computer has %q, phone has %q", n, want[n], d, p))
			}
		}
		if len(lost) > 0 {
			t.Fatalf("round %d (session %+v): edits lost or left behind:\n%s", round, s, strings.Join(lost, "\n"))
		}
		sameTrees(t, e.desktop, e.devDir())
		lastDesk = desk
	}
}

// TestTouchDoesNotBeatEdit (issue 13, finding 2): a change of modification time alone is not an
// edit. The computer's copy is touched (its time changes, its bytes do not) while the phone
// edits the file: the phone's edit must survive on both sides, and it is no conflict.
func TestTouchDoesNotBeatEdit(t *testing.T) {
	const orig, edit = "the original text", "the phone's edit of the text, longer"
	for _, tc := range []struct{ policy, touched string }{
		{"newest", "computer"},
		{"ask", "computer"},
		{"newest", "phone"},
		{"ask", "phone"},
	} {
		t.Run(tc.policy+"/"+tc.touched+" touched", func(t *testing.T) {
			e := newEnv(t)
			put(t, filepath.Join(e.desktop, "notes.txt"), orig, at(0))
			e.partner("--on-conflict", tc.policy)
			e.syncOnce() // Cradle copies notes.txt to the phone: it has had its bytes
			toucher, editor := e.desktop, e.devDir()
			if tc.touched == "phone" {
				toucher, editor = e.devDir(), e.desktop
			}
			// The edit first, the touch later: the touched side is the newer by its time.
			put(t, filepath.Join(editor, "notes.txt"), edit, at(20))
			if err := os.Chtimes(filepath.Join(toucher, "notes.txt"), at(30), at(30)); err != nil {
				t.Fatal(err)
			}
			s := e.syncOnce()
			for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
				if got := get(t, filepath.Join(dir, "notes.txt")); got != edit {
					t.Errorf("the %s's notes.txt = %q, want the edit %q (the %s's copy was only touched; session %+v)", side, got, edit, tc.touched, s)
				}
			}
			if cs := e.conflicts(); s.Conflicts != 0 || len(cs) != 0 {
				t.Errorf("a touch against an edit made a conflict (session %d, pending %+v); a change of time alone is no edit", s.Conflicts, cs)
			}
			sameTrees(t, e.desktop, e.devDir())
		})
	}
}

// TestUnrelatedFileIsNoRename (issue 13, finding 3): the computer deletes old.txt and makes an
// unrelated other.txt of the same size and time, while the phone edits old.txt. Nothing proves a
// rename, so other.txt is a new file: its content must reach the phone and stay on the computer,
// and the phone's edit of old.txt must not be lost either.
func TestUnrelatedFileIsNoRename(t *testing.T) {
	const old, other, edit = "old.txt, as it was synced!", "other.txt, unrelated bytes", "the phone's edit of old.txt"
	if len(old) != len(other) {
		t.Fatal("old and other must have one size")
	}
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "old.txt"), old, at(0))
	e.partner() // ask
	e.syncOnce()
	if err := os.Remove(filepath.Join(e.desktop, "old.txt")); err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(e.desktop, "other.txt"), other, at(0)) // same size, same time
	put(t, filepath.Join(e.devDir(), "old.txt"), edit, at(20))
	s := e.syncOnce()
	state := func() string {
		return fmt.Sprintf("session %+v, pending conflicts %+v\ncomputer:\n%sphone:\n%s", s, e.conflicts(), describe(t, e.desktop), describe(t, e.devDir()))
	}
	for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
		if got := holding(t, dir, other); len(got) != 1 || got[0] != "other.txt" {
			t.Errorf("the %s: other.txt's content is in %v, want other.txt; %s", side, got, state())
		}
	}
	if got := holding(t, e.devDir(), edit); len(got) == 0 {
		t.Errorf("the phone's edit of old.txt is gone from the phone; %s", state())
	}
	// Whatever is pending, keeping both settles it, and then nothing is lost anywhere.
	if len(e.conflicts()) > 0 {
		e.ok("resolve", "--all", "--keep", "both")
	}
	e.syncOnce()
	for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
		for _, c := range []string{other, edit} {
			if len(holding(t, dir, c)) == 0 {
				t.Errorf("after keeping both, the %s has no file holding %q; %s", side, c, state())
			}
		}
	}
	sameTrees(t, e.desktop, e.devDir())
}

// TestSameNameNewFilesBothKept (issue 13, finding 4): between two syncs the computer and the
// phone each make a new file with one name and unrelated content. They are two items, not one
// item's concurrent edits: under every policy both contents survive on both sides, one under the
// name and the other as a conflict copy "new (conflict DATE side).txt"; the policy only decides
// which keeps the name.
func TestSameNameNewFilesBothKept(t *testing.T) {
	const desk, phone = "made on the computer", "made on the phone, unrelated"
	for _, tc := range []struct{ policy, keepsName string }{
		{"newest", phone}, // the phone's is the later
		{"desktop", desk},
		{"device", phone},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e := newEnv(t)
			put(t, filepath.Join(e.desktop, "seed.txt"), "so that the next sync is not the first", at(0))
			e.partner("--on-conflict", tc.policy)
			e.syncOnce()
			put(t, filepath.Join(e.desktop, "new.txt"), desk, at(10))
			put(t, filepath.Join(e.devDir(), "new.txt"), phone, at(20))
			s := e.syncOnce()
			for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
				for _, c := range []string{desk, phone} {
					got := holding(t, dir, c)
					if len(got) != 1 {
						t.Errorf("the %s holds %q in %v, want it in one file (session %+v)\n%s", side, c, got, s, describe(t, dir))
					}
				}
				if got := get(t, filepath.Join(dir, "new.txt")); got != tc.keepsName {
					t.Errorf("the %s's new.txt = %q, want %q under %s", side, got, tc.keepsName, tc.policy)
				}
				if cp := copies(t, dir); len(cp) != 1 || !strings.HasPrefix(cp[0], "new (conflict ") || !strings.HasSuffix(cp[0], ").txt") {
					t.Errorf("the %s's conflict copies = %v, want one \"new (conflict DATE side).txt\"", side, cp)
				}
			}
			sameTrees(t, e.desktop, e.devDir())
		})
	}
}

// tornVersion is version v of the torn-upload test's file i: its size grows with v, and every
// byte depends on (i, v), so a prefix of one version or a mix of two is none of the versions.
func tornVersion(i, v int) []byte {
	size := 1<<20 + v*4096 + i*512
	line := fmt.Sprintf("file %d version %06d\n", i, v)
	b := make([]byte, 0, size+len(line))
	for len(b) < size {
		b = append(b, line...)
	}
	return b[:size]
}

// TestNoTornUploads (issue 13, finding 5): files on the computer are saved again and again (as
// editors save: a new file renamed over the old) while `cradle sync` runs. Whatever lands on the
// phone must be one of the complete versions that were saved, never the start of a later one
// cut at an earlier one's size; once the saving stops, a sync makes both sides equal.
func TestNoTornUploads(t *testing.T) {
	e := newEnv(t)
	const files = 8
	name := func(i int) string { return fmt.Sprintf("big%d.bin", i) }
	var mu sync.Mutex
	saved := map[string]map[[32]byte]int{} // name -> hash -> version
	last := map[string]int{}
	save := func(i, v int) {
		b := tornVersion(i, v)
		// What GNOME's editors do: write a new file beside it (a name Cradle ignores), then
		// rename it over the old one. The file under its name is always a complete version.
		tmp := filepath.Join(e.desktop, fmt.Sprintf(".goutputstream-%d", i))
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		if saved[name(i)] == nil {
			saved[name(i)] = map[[32]byte]int{}
		}
		saved[name(i)][sha256.Sum256(b)] = v
		last[name(i)] = v
		mu.Unlock()
		if err := os.Rename(tmp, filepath.Join(e.desktop, name(i))); err != nil {
			t.Error(err)
		}
	}
	for i := range files {
		save(i, 0)
	}
	e.partner()
	e.syncOnce()
	sameTrees(t, e.desktop, e.devDir())

	// check fails for every phone file that is none of the saved versions.
	check := func(when string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for i := range files {
			b, err := os.ReadFile(filepath.Join(e.devDir(), name(i)))
			if err != nil {
				t.Errorf("%s: the phone's %s: %v", when, name(i), err)
				continue
			}
			if _, ok := saved[name(i)][sha256.Sum256(b)]; ok {
				continue
			}
			what := "a mix of versions"
			for v := last[name(i)]; v >= 0; v-- {
				if bytes.HasPrefix(tornVersion(i, v), b) {
					what = fmt.Sprintf("the first %d bytes of version %d (%d bytes)", len(b), v, len(tornVersion(i, v)))
					break
				}
			}
			t.Errorf("%s: the phone's %s (%d bytes) is none of the %d complete versions saved on the computer: it is %s",
				when, name(i), len(b), len(saved[name(i)]), what)
		}
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := 1; ; v++ {
			for i := range files {
				select {
				case <-stop:
					return
				default:
				}
				save(i, v)
			}
		}
	}()
	for round := 1; round <= 3; round++ {
		r := e.run("sync", "--json") // it may report the files that changed while copied
		t.Logf("sync %d while saving: exit %d", round, r.code)
		check(fmt.Sprintf("after sync %d while the files were being saved", round))
	}
	close(stop)
	<-done
	// Once the saving stopped, a sync must make both sides equal.
	s := e.syncOnce()
	check("after the saving stopped and one more sync")
	sameTrees(t, e.desktop, e.devDir())
	for i := range files {
		b := get(t, filepath.Join(e.devDir(), name(i)))
		if b != string(tornVersion(i, last[name(i)])) {
			t.Errorf("after the saving stopped and one more sync (%+v), the phone's %s is not the last version saved (%d)", s, name(i), last[name(i)])
		}
	}
}

// TestKilledRenameFinishedWithoutCopy (issue 13, finding 6): a sync that carries renames to the
// phone writes each file under its new name, then removes the old name. Killed (SIGKILL) between
// the two, it leaves both names on the phone with equal content. The next sync must finish the
// rename: no "(conflict ...)" copy, no duplicate, the old name gone from both sides.
func TestKilledRenameFinishedWithoutCopy(t *testing.T) {
	const files = 40
	oldName := func(i int) string { return fmt.Sprintf("a-%02d.bin", i) }
	newName := func(i int) string { return fmt.Sprintf("b-%02d.bin", i) }
	data := func(i int) string { return strings.Repeat(fmt.Sprintf("renamed file %02d\n", i), 16<<10) } // 272 KB
	// Each try is a new partnership: the computer renames every a-NN.bin to b-NN.bin, a sync
	// carries the renames, and the test kills it the moment it sees both names of one file on
	// the phone. The kill may come too late (the old name already removed); then it tries again.
	for try := 1; try <= 20; try++ {
		e := newEnv(t)
		for i := range files {
			put(t, filepath.Join(e.desktop, oldName(i)), data(i), at(i))
		}
		e.partner()
		e.syncOnce()
		for i := range files {
			if err := os.Rename(filepath.Join(e.desktop, oldName(i)), filepath.Join(e.desktop, newName(i))); err != nil {
				t.Fatal(err)
			}
		}
		both := func() []int {
			names := map[string]bool{}
			ents, _ := os.ReadDir(e.devDir())
			for _, d := range ents {
				names[d.Name()] = true
			}
			var out []int
			for i := range files {
				if names[oldName(i)] && names[newName(i)] {
					out = append(out, i)
				}
			}
			return out
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := clitest.Command(ctx, bin, "--config", e.config, "--emulate", e.phone, "sync")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		killed := false
	watch:
		for {
			select {
			case <-exited:
				break watch
			default:
			}
			if len(both()) > 0 {
				cmd.Process.Kill()
				killed = true
				<-exited
				break
			}
		}
		cancel()
		pairs := both()
		reached := killed && len(pairs) > 0
		if reached {
			t.Logf("try %d: killed with both names on the phone for %d file(s): %v", try, len(pairs), pairs)
		} else {
			t.Logf("try %d: the kill missed the moment between a file's two names (killed: %v)", try, killed)
		}
		// Whatever the kill left, the next sync ends the renames.
		s := e.syncOnce()
		for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
			if cp := copies(t, dir); len(cp) > 0 {
				t.Errorf("the %s has conflict copies %v after the sync that followed the kill (session %+v); the two names held equal content", side, cp, s)
			}
			for i := range files {
				if exists(filepath.Join(dir, oldName(i))) {
					t.Errorf("the %s still has the old name %s", side, oldName(i))
				}
				if got := holding(t, dir, data(i)); len(got) != 1 || got[0] != newName(i) {
					t.Errorf("the %s holds file %d's content in %v, want only %s", side, i, got, newName(i))
				}
			}
		}
		if cs := e.conflicts(); len(cs) != 0 {
			t.Errorf("conflicts after the sync that followed the kill: %+v", cs)
		}
		sameTrees(t, e.desktop, e.devDir())
		if reached || t.Failed() {
			return
		}
	}
	// Renames carried atomically (MTP's own rename) leave no such moment: nothing to test.
	t.Skipf("in 20 tries the phone never held both names of a file while the sync ran: renames reach the phone without a moment between two names, so no kill can land there")
}

// TestNoRenameCardPartialUploadIsNoEdit (issue 13, finding 7): a device that cannot rename and
// keeps 2-second times (a FAT card, `--emulate-profile sdcard`) receives a file under its own
// name, so a sync killed mid-upload leaves a piece of the file there. That piece is Cradle's own
// unfinished write, not an edit on the device: the next sync must finish the upload, and under
// "device" it must never overwrite the computer's complete file with the piece.
//
// The emulator of today has no profiles (issue 15 adds --emulate-profile); the test is skipped,
// saying so, while the binary rejects the flag.
func TestNoRenameCardPartialUploadIsNoEdit(t *testing.T) {
	profile := []string{"--emulate-profile", "sdcard"}
	probe := newEnv(t)
	if r := cradle(t, append(append([]string{"--config", probe.config, "--emulate", probe.phone}, profile...), "devices", "--json")...); r.code != 0 {
		if strings.Contains(r.stderr, "emulate-profile") {
			t.Skipf("the binary rejects --emulate-profile (issue 15 adds it), so a no-rename card with 2-second times cannot be emulated: %s",
				strings.SplitN(r.stderr, "\n", 2)[0])
		}
		t.Fatalf("devices with %v: %v", profile, r)
	}
	const size = 4 << 20
	content := func(what string) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%-31s\n", what)), size/32)
	}
	for _, story := range []string{"new file", "edited file"} {
		t.Run(story, func(t *testing.T) {
			for try := 1; try <= 10; try++ {
				e := newEnv(t)
				run := func(args ...string) result {
					t.Helper()
					return cradle(t, append(append([]string{"--config", e.config, "--emulate", e.phone}, profile...), args...)...)
				}
				ok := func(args ...string) result {
					t.Helper()
					r := run(args...)
					if r.code != 0 {
						t.Fatalf("cradle %v: %v", args, r)
					}
					return r
				}
				var devs []struct{ Serial string }
				if err := json.Unmarshal([]byte(ok("devices", "--json").stdout), &devs); err != nil || len(devs) != 1 {
					t.Fatalf("devices --json: %v %+v", err, devs)
				}
				serial := devs[0].Serial
				ok("partner", "add", "--name", "card", "--provider", "files", "--device", serial,
					"--desktop", e.desktop, "--device-path", "Documents", "--on-conflict", "device")
				p := filepath.Join(e.desktop, "movie.bin")
				want := content("the computer's movie, version 1")
				if story == "edited file" {
					if err := os.WriteFile(p, want, 0o644); err != nil {
						t.Fatal(err)
					}
					ok("sync")
					want = content("the computer's movie, version 2")
				} else {
					ok("sync")
				}
				if err := os.WriteFile(p, want, 0o644); err != nil {
					t.Fatal(err)
				}
				// Sync, and kill Cradle the moment the phone holds a piece of movie.bin under its
				// name.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				cmd := clitest.Command(ctx, bin, append(append([]string{"--config", e.config, "--emulate", e.phone}, profile...), "sync")...)
				if err := cmd.Start(); err != nil {
					cancel()
					t.Fatal(err)
				}
				exited := make(chan struct{})
				go func() { cmd.Wait(); close(exited) }()
				var piece int64 = -1
			watch:
				for {
					select {
					case <-exited:
						break watch
					default:
					}
					if fi, err := os.Stat(filepath.Join(e.devDir(), "movie.bin")); err == nil && fi.Size() > 0 && fi.Size() < size {
						cmd.Process.Kill()
						<-exited
						piece = fi.Size()
						break
					}
				}
				cancel()
				if piece < 0 {
					t.Logf("try %d: the sync ended before a piece of movie.bin was seen on the card", try)
					continue
				}
				t.Logf("try %d: killed with %d of %d bytes of movie.bin on the card", try, piece, size)
				r := run("sync", "--json")
				if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("the computer's movie.bin after the sync that followed the kill: %d bytes (%v), want its complete %d bytes; the piece Cradle left on the card was taken for an edit (%v)", len(got), err, size, r)
				}
				if r.code != 0 {
					t.Fatalf("the sync after the kill: %v", r)
				}
				if got, _ := os.ReadFile(filepath.Join(e.devDir(), "movie.bin")); !bytes.Equal(got, want) {
					t.Errorf("the card's movie.bin after the sync that followed the kill: %d bytes, want the computer's complete %d", len(got), size)
				}
				for side, dir := range map[string]string{"computer": e.desktop, "phone": e.devDir()} {
					if cp := copies(t, dir); len(cp) > 0 {
						t.Errorf("the %s has conflict copies %v: the piece was taken for an edit", side, cp)
					}
				}
				sameTrees(t, e.desktop, e.devDir())
				return
			}
			t.Fatalf("in 10 tries the card never held a piece of movie.bin under its name while the sync ran; a FAT card keeps what was written so far there")
		})
	}
}

// TestSameStampEditOnComputer: a different content saved on the computer with the very size and
// modification time the synced one had, long after the sync (a backup restored with its times,
// `cp -p`, `rsync -t`, an editor that keeps the time). Size and time cannot tell; the file's
// inode change time, which no writer can set, does, and the content decides: the new content
// must reach the phone. A change of the inode alone (chmod) with the same content is no edit.
func TestSameStampEditOnComputer(t *testing.T) {
	const v1, v2 = "the synced text, version one", "a restored text, version two"
	if len(v1) != len(v2) {
		t.Fatal("the two versions must have one size")
	}
	for _, how := range []string{"rewritten in place", "moved in from elsewhere"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			p := filepath.Join(e.desktop, "notes.txt")
			put(t, p, v1, at(0))
			e.partner()
			e.syncOnce()
			if got := get(t, filepath.Join(e.devDir(), "notes.txt")); got != v1 {
				t.Fatalf("the first sync left %q on the phone", got)
			}
			if how == "rewritten in place" {
				put(t, p, v2, at(0))
			} else {
				restored := filepath.Join(t.TempDir(), "notes.txt")
				put(t, restored, v2, at(0))
				if err := os.Rename(restored, p); err != nil {
					// Another file system: copy it beside and rename it over, as a restore does.
					put(t, p+".restore", v2, at(0))
					if err := os.Rename(p+".restore", p); err != nil {
						t.Fatal(err)
					}
				}
			}
			ss := e.syncJSON()
			if got := get(t, filepath.Join(e.devDir(), "notes.txt")); got != v2 {
				t.Errorf("the phone's notes.txt = %q after the sync, want the computer's new content %q (sessions %+v)", got, v2, ss)
			}
			sameTrees(t, e.desktop, e.devDir())

			// Only the inode changes now: no transfer, no conflict.
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
			ss = e.syncJSON()
			if len(ss) != 1 || ss[0].ToDevice != (counts{}) || ss[0].ToDesktop != (counts{}) || ss[0].Conflicts != 0 {
				t.Errorf("a chmod alone made the sync do something: %+v", ss)
			}
		})
	}
}
