package torture

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// damage is one way of damaging a file between syncs.
type damage struct {
	name string
	fn   func(r *rand.Rand, path string) error
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// overwrite writes n random bytes at offset off of the file (negative: in its middle).
func overwrite(off int64, n int) func(r *rand.Rand, path string) error {
	return func(r *rand.Rand, path string) error {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		at := off
		if at < 0 {
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			at = fi.Size() / 2
		}
		_, err = f.WriteAt(randomBytes(r, n), at)
		return err
	}
}

var stateDamages = []damage{
	{"deleted", func(_ *rand.Rand, p string) error { return os.Remove(p) }},
	{"emptied", func(_ *rand.Rand, p string) error { return os.Truncate(p, 0) }},
	{"cut in half", func(_ *rand.Rand, p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		return os.Truncate(p, fi.Size()/2)
	}},
	{"cut to 20 KiB", func(_ *rand.Rand, p string) error { return os.Truncate(p, 20<<10) }},
	{"its first 8 KiB overwritten with random bytes (both meta pages)", overwrite(0, 8<<10)},
	{"its first 4 KiB overwritten with random bytes (one meta page)", overwrite(0, 4<<10)},
	{"64 KiB of random bytes in its middle", overwrite(-1, 64<<10)},
	{"replaced by text", func(_ *rand.Rand, p string) error {
		return os.WriteFile(p, []byte("this is not a handle file\n"), 0o600)
	}},
}

// TestStateDamaged (R4): the partnership's state file (its handle file) damaged or deleted
// between syncs, with changes waiting on both sides: the next sync says what happened, rebuilds
// the state, and leaves both sides with exactly what the user made: nothing lost, nothing
// duplicated, no conflict it made up. Then the same with the device's copy of the sync state
// (.cradle) damaged too, and alone.
func TestStateDamaged(t *testing.T) {
	r, seed := newRand(t)
	start := time.Now()
	rec := record{ID: "R4", Seed: seed, What: "the partnership's state file damaged or deleted between syncs, with changes waiting on both sides; the device's copy of the sync state damaged too, or alone"}
	type variant struct {
		name          string
		local, device func(r *rand.Rand, path string) error
	}
	var variants []variant
	for _, d := range stateDamages {
		variants = append(variants, variant{name: "state file " + d.name, local: d.fn})
	}
	variants = append(variants,
		variant{name: "state file deleted and the device's copy overwritten with random bytes", local: stateDamages[0].fn, device: overwrite(0, 1<<20)},
		variant{name: "the device's copy of the sync state cut in half", device: stateDamages[2].fn},
		variant{name: "the device's copy of the sync state deleted", device: func(_ *rand.Rand, p string) error { return os.Remove(p) }},
	)
	pendings := []struct {
		name  string
		which sides
		none  bool
	}{
		{"no change waiting", bothSides, true},
		{"changes waiting on the desktop", desktopOnly, false},
		{"changes waiting on the device", deviceOnly, false},
		{"changes waiting on both sides", bothSides, false},
	}
	if !full() {
		// The short campaign: every damage, with changes waiting on both sides.
		pendings = pendings[3:]
	}
	var lostState, conflicts, keptTwice, undone, renamedBack int
	for _, v := range variants {
		for _, pend := range pendings {
			t.Run(v.name+", "+pend.name, func(t *testing.T) {
				rec.Count++
				e := newEnv(t)
				u := newUser(r, e.desktop, e.devDir())
				if err := u.populate(150, 50); err != nil {
					t.Fatal(err)
				}
				e.partner()
				e.syncJSON()
				if !pend.none {
					if err := u.editSides(1, pend.which); err != nil {
						t.Fatal(err)
					}
				}
				statePath := filepath.Join(e.config, "state", "1.repl")
				if v.local != nil {
					if err := v.local(r, statePath); err != nil {
						t.Fatal(err)
					}
				}
				if v.device != nil {
					snaps, _ := filepath.Glob(filepath.Join(e.phone, ".cradle", "*"))
					if len(snaps) != 1 {
						t.Fatalf("the device holds %d sync-state snapshots, want 1: %v", len(snaps), snaps)
					}
					if err := v.device(r, snaps[0]); err != nil {
						t.Fatal(err)
					}
				}
				res := e.run("sync", "--json")
				var ss []session
				if res.code != 0 || json.Unmarshal([]byte(res.stdout), &ss) != nil || len(ss) != 1 {
					rec.Failed++
					t.Fatalf("the sync after the damage did not finish:\n%v", res)
				}
				if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
					rec.Failed++
					t.Errorf("a stack trace on stderr:\n%s", res.stderr)
				}
				o, err := u.outcome(e.desktop, e.devDir())
				if err != nil {
					t.Fatal(err)
				}
				kept := o.keptTwice(u, e.desktop, e.devDir())
				t.Logf("%s (and %d kept twice); the session: %s, %d conflicts; stderr: %s", o, len(kept), ss[0].Outcome, ss[0].Conflicts, strings.TrimSpace(res.stderr))
				// The state was lost when it was deleted or moved aside; then the user must be told.
				// Otherwise the damage hit nothing the handle file needed (bbolt keeps two meta
				// pages and free pages), and the sync must be exact.
				lost := strings.HasPrefix(v.name, "state file deleted") || movedAside(statePath)
				switch {
				case lost && !strings.Contains(res.stderr, "damaged") && !strings.Contains(res.stderr, "missing"):
					rec.Failed++
					t.Errorf("the state was lost and the sync said nothing clear about it; stderr:\n%s", res.stderr)
				case !lost && len(o.differ)+len(o.undone)+len(o.renamedBack) > 0:
					rec.Failed++
					t.Errorf("the state was kept but the sync was not exact: %s", o)
				}
				if lost {
					lostState++
				}
				// Never lost, never copied, never anything nobody made. Changes waiting when the state
				// was lost may come back as conflicts or both versions kept beside each other
				// (collisions), deletions undone and renames with the old name back: counted,
				// reported.
				if !lost && len(kept) > 0 {
					rec.Failed++
					t.Errorf("the state was kept but files were kept twice: %s", short(kept))
				}
				keptTwice += len(kept)
				if len(o.lost)+len(o.copies)+len(o.other) > 0 {
					rec.Failed++
					rec.Lost += len(o.lost)
					rec.Extra += len(o.copies) + len(o.other)
					t.Errorf("after the rebuild: %s\nlost: %s\ncopies: %s\nother: %s", o, short(o.lost), short(o.copies), short(o.other))
				}
				if pend.none && len(o.differ)+len(o.undone)+len(o.renamedBack)+ss[0].Conflicts > 0 {
					rec.Failed++
					t.Errorf("with nothing waiting, the rebuild was not exact: %s, %d conflicts", o, ss[0].Conflicts)
				}
				conflicts += ss[0].Conflicts
				undone += len(o.undone)
				renamedBack += len(o.renamedBack)
				// The rebuilt state works: new files sync as usual, nothing else moves.
				for i := range 3 {
					if err := u.create("desktop", fmt.Sprintf("after/new%d.txt", i)); err != nil {
						t.Fatal(err)
					}
				}
				if s := e.syncJSON(); s.ToDevice.Created < 3 || s.ToDevice.Updated+s.ToDevice.Deleted+s.ToDesktop.Created+s.ToDesktop.Updated+s.ToDesktop.Deleted > 0 {
					rec.Failed++
					t.Errorf("the sync after the rebuild did more than send 3 new files: %+v", s)
				}
				if _, err := os.Stat(filepath.Join(e.devDir(), "after", "new2.txt")); err != nil {
					rec.Failed++
					t.Errorf("a new file did not reach the device after the rebuild: %v", err)
				}
			})
		}
	}
	rec.Notes = append(rec.Notes,
		fmt.Sprintf("the state was lost (deleted, or damaged beyond what bbolt recovers, then moved aside and reported) in %d of the %d cases; in the others the damage hit pages the handle file did not need and the sync was exact", lostState, rec.Count),
		fmt.Sprintf("changes waiting when the state was lost: %d came back as conflicts and %d files as both versions kept beside each other, %d deletions were undone and %d renames left the old name too; never a file lost or copied", conflicts, keptTwice, undone, renamedBack))
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}

// movedAside tells whether the manager moved a damaged state file aside.
func movedAside(path string) bool {
	m, _ := filepath.Glob(path + ".corrupt-*")
	return len(m) > 0
}

// fingerprint hashes every file below dir, so that a test can tell that nothing was written.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%x %s", sum[:8], fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSettingsDamaged (R4): a settings file that cannot be read stops every command with one
// clear line naming the file (and the line), and nothing in the config folder is written: the
// settings file stays as the user left it, to be fixed by hand.
func TestSettingsDamaged(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	if err := writeAt(filepath.Join(e.desktop, "a.txt"), []byte("a"), newClock().next()); err != nil {
		t.Fatal(err)
	}
	e.partner()
	e.syncJSON()
	settings := filepath.Join(e.config, "settings.toml")
	good, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	rec := record{ID: "R4", What: "the settings file damaged: every command stops with one clear line, nothing in the config folder is written"}
	cases := []struct {
		name string
		data []byte
	}{
		{"random bytes", randomBytes(rand.New(rand.NewPCG(1, 2)), 3000)},
		// In the middle of a value (a cut through a comment, where the settings' comments now
		// take two thirds of the file, is a file that still parses).
		{"cut in the middle of a line", good[:bytes.Index(good, []byte(`name = "`))+len(`name = "`)+1]},
		{"a value of the wrong kind", []byte(strings.Replace(string(good), `interval = "1h"`, `interval = "soon"`, 1))},
		{"an unknown setting", []byte(strings.Replace(string(good), "[settings]\n", "[settings]\ncolour = \"blue\"\n", 1))},
		{"NUL bytes", append(append([]byte{}, good[:100]...), make([]byte, 64)...)},
		{"a newer format", []byte(strings.Replace(string(good), "version = 1", "version = 99", 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.Count++
			if err := os.WriteFile(settings, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, e.config)
			for _, args := range [][]string{{"sync"}, {"status"}, {"partner", "list"}, {"conflicts"}} {
				res := e.run(args...)
				lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
				switch {
				case res.code == 0:
					rec.Failed++
					t.Errorf("cradle %s exited 0 with a damaged settings file", args[0])
				case len(lines) != 1 || !strings.Contains(lines[0], settings):
					rec.Failed++
					t.Errorf("cradle %s: want one line naming %s, got:\n%s", args[0], settings, res.stderr)
				case strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine "):
					rec.Failed++
					t.Errorf("cradle %s: a stack trace:\n%s", args[0], res.stderr)
				}
				if args[0] == "sync" {
					t.Logf("%s", strings.TrimSpace(res.stderr))
				}
			}
			after := fingerprint(t, e.config)
			for k, v := range before {
				if after[k] != v {
					rec.Failed++
					t.Errorf("%s was written while the settings file was damaged", k)
				}
			}
			for k := range after {
				if _, ok := before[k]; !ok {
					rec.Failed++
					t.Errorf("%s was created while the settings file was damaged", k)
				}
			}
		})
	}
	// Put back by hand, everything works again.
	if err := os.WriteFile(settings, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if s := e.syncJSON(); s.Outcome != "ok" {
		rec.Failed++
		t.Errorf("the sync after the settings file was fixed: %+v", s)
	}
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}
