package torture

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// user changes both sides between syncs, as a person would, and keeps the model of what the
// folders must hold once synced.
type user struct {
	r    *rand.Rand
	m    model
	made map[string]bool // the hash of every content the user ever wrote
	// gone holds the last content of each path the user deleted or renamed away.
	gone    map[string][]byte
	renamed map[string]bool // paths renamed away (in gone too)
	clk     *clock
	desktop string // the desktop folder
	device  string // the partnership's folder on the device
	batch   int
	// large is the percentage of large files (256 KiB to 2 MiB) among new and edited ones.
	large int
	// batchBytes counts the bytes written since the last edit began.
	batchBytes int64
}

func newUser(r *rand.Rand, desktop, device string) *user {
	return &user{r: r, m: model{}, made: map[string]bool{}, gone: map[string][]byte{}, renamed: map[string]bool{}, clk: newClock(), desktop: desktop, device: device, large: 3}
}

// dir returns the folder of side ("desktop" or "device").
func (u *user) dir(side string) string {
	if side == "desktop" {
		return u.desktop
	}
	return u.device
}

// create writes a new file on one side.
func (u *user) create(side, rel string) error {
	return u.put(side, rel, content(u.r, rel, u.large))
}

// sides says what an edit batch touches.
type sides int

const (
	bothSides sides = iota
	desktopOnly
	deviceOnly
)

// createSize writes a new file of n bytes of random content on one side.
func (u *user) createSize(side, rel string, n int) error {
	c := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := u.r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			c[i+k] = byte(v >> (8 * k))
		}
	}
	return u.put(side, rel, c)
}

// put writes content to rel on one side and records it.
func (u *user) put(side, rel string, c []byte) error {
	u.batchBytes += int64(len(c))
	if err := writeAt(filepath.Join(u.dir(side), filepath.FromSlash(rel)), c, u.clk.next()); err != nil {
		return err
	}
	u.m[rel] = c
	u.made[hash(c)] = true
	return nil
}

// populate makes the starting tree: files on the desktop and on the device, in folders two
// levels deep.
func (u *user) populate(desktopFiles, deviceFiles int) error {
	for i := range desktopFiles {
		if err := u.create("desktop", fmt.Sprintf("d%02d/s%d/file%04d.bin", i%40, i%3, i)); err != nil {
			return err
		}
	}
	for i := range deviceFiles {
		if err := u.create("device", fmt.Sprintf("p%02d/photo%04d.jpg", i%10, i)); err != nil {
			return err
		}
	}
	return nil
}

// edit makes one batch of changes on both sides: new files (sometimes in a new folder), edits,
// renames and deletions, each file touched on one side only (a file changed on both sides
// would be a conflict, which is another test's business). scale multiplies the counts.
func (u *user) edit(scale int) error { return u.editSides(scale, bothSides) }

// editSides is edit on the sides chosen.
func (u *user) editSides(scale int, which sides) error {
	u.batch++
	u.batchBytes = 0
	files := slices.Sorted(func(yield func(string) bool) {
		for k := range u.m {
			if !yield(k) {
				return
			}
		}
	})
	u.r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	take := func(n int) []string {
		n = min(n, len(files)/4)
		out := files[:n]
		files = files[n:]
		return out
	}
	for _, side := range []string{"desktop", "device"} {
		if which == desktopOnly && side != "desktop" || which == deviceOnly && side != "device" {
			continue
		}
		dir := u.dir(side)
		// New files, some in a new folder.
		for i := range scale * (5 + u.r.IntN(20)) {
			folder := fmt.Sprintf("d%02d", u.r.IntN(40))
			if side == "device" {
				folder = fmt.Sprintf("p%02d", u.r.IntN(10))
			}
			if u.r.IntN(4) == 0 {
				folder = fmt.Sprintf("new-%s-%d", side, u.batch)
			}
			if err := u.create(side, fmt.Sprintf("%s/b%d-%s-%d.dat", folder, u.batch, side, i)); err != nil {
				return err
			}
		}
		// Edits.
		for _, rel := range take(scale * (2 + u.r.IntN(10))) {
			if err := u.create(side, rel); err != nil {
				return err
			}
		}
		// Renames within the same folder.
		for _, rel := range take(scale * u.r.IntN(4)) {
			to := strings.TrimSuffix(rel, filepath.Ext(rel)) + fmt.Sprintf("-r%d%s", u.batch, filepath.Ext(rel))
			if _, taken := u.m[to]; taken {
				continue
			}
			if err := os.Rename(filepath.Join(dir, rel), filepath.Join(dir, to)); err != nil {
				return err
			}
			u.m[to] = u.m[rel]
			u.gone[rel] = u.m[rel]
			u.renamed[rel] = true
			delete(u.m, rel)
		}
		// Deletions.
		for _, rel := range take(scale * (1 + u.r.IntN(5))) {
			if err := os.Remove(filepath.Join(dir, rel)); err != nil {
				return err
			}
			u.gone[rel] = u.m[rel]
			delete(u.m, rel)
		}
	}
	return nil
}

// outcome sorts what both sides hold against what the user made, for a sync that could not tell
// every change (its state was lost): files lost (their latest content on neither side), files
// whose two sides differ (a conflict keeps both versions), deletions undone (a file the user
// deleted back with the content it had), renames that left the old name back too, copies (a
// file the user made, again under a name nobody made) and anything else.
type outcome struct {
	lost, differ, undone, renamedBack, copies, other []string
}

func (o outcome) String() string {
	return fmt.Sprintf("%d lost, %d differ between the sides, %d deletions undone, %d renames with the old name back, %d copies, %d other files",
		len(o.lost), len(o.differ), len(o.undone), len(o.renamedBack), len(o.copies), len(o.other))
}

func (u *user) outcome(desktop, device string) (outcome, error) {
	var o outcome
	var snaps [2]snapshot
	for i, dir := range []string{desktop, device} {
		s, err := scan(dir)
		if err != nil {
			return o, err
		}
		snaps[i] = s
		o.other = append(o.other, s.temps...)
	}
	byContent := map[string]string{}
	for rel, c := range u.m {
		byContent[hash(c)] = rel
	}
	for rel, c := range u.m {
		h := hash(c)
		a, b := snaps[0].items[rel], snaps[1].items[rel]
		switch {
		case a != h && b != h:
			o.lost = append(o.lost, rel)
		case a != b:
			o.differ = append(o.differ, rel)
		}
	}
	extra := map[string]string{}
	for _, s := range snaps {
		for rel, h := range s.items {
			if _, ok := u.m[rel]; ok || strings.HasSuffix(rel, "/") {
				continue
			}
			extra[rel] = h
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(extra)) {
		h := extra[rel]
		switch old, ok := u.gone[rel]; {
		case ok && hash(old) == h && u.renamed[rel]:
			o.renamedBack = append(o.renamedBack, rel)
		case ok && hash(old) == h:
			o.undone = append(o.undone, rel)
		case byContent[h] != "":
			o.copies = append(o.copies, rel)
		default:
			o.other = append(o.other, rel)
		}
	}
	return o, nil
}

// unkept lists the contents the user ever wrote (by hash) that are neither in place on either
// side nor in the versions: the desktop folder's .cradle/versions and .cradle/device-versions,
// and the device folder's .cradle/versions. Every batch of edits is synced before the next, so
// every content was on both sides before a user replaced it on one, and a sync replacing or
// deleting the other copy must have kept it.
func (u *user) unkept() ([]string, error) {
	have := map[string]bool{}
	for _, dir := range []string{u.desktop, u.device} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() || isTemp(d.Name()) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			have[hash(b)] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []string
	for h := range u.made {
		if !have[h] {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out, nil
}

// keptTwice takes out of o.other the conflict copies that hold a version the user made: after a
// sync state was lost, a file changed on one side since the last sync has no history left to tell
// which version is the newer one's edit, and both are kept (a collision: the newer under the
// name, the other beside it). It returns them.
func (o *outcome) keptTwice(u *user, desktop, device string) []string {
	contents := map[string]string{}
	for _, dir := range []string{desktop, device} {
		s, err := scan(dir)
		if err != nil {
			continue
		}
		maps.Copy(contents, s.items)
	}
	var kept, other []string
	for _, rel := range o.other {
		if strings.Contains(rel, " (conflict ") && u.made[contents[rel]] {
			kept = append(kept, rel)
		} else {
			other = append(other, rel)
		}
	}
	o.other = other
	return kept
}

// count returns how many files the model holds.
func (u *user) count() int { return len(u.m) }
