package versions

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/device/folder"
)

func TestStoredNames(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 15, 2, 0, time.UTC)
	for _, tc := range []struct {
		base string
		n    int
		r    Reason
		want string
	}{
		{"report.txt", 1, Update, "report~20261121-101502~update.txt"},
		{"report.txt", 3, Delete, "report~20261121-101502-3~delete.txt"},
		{"archive.tar.gz", 1, Policy, "archive.tar~20261121-101502~policy.gz"},
		{"Makefile", 1, Conflict, "Makefile~20261121-101502~conflict"},
		{".profile", 1, Restore, "~20261121-101502~restore.profile"},
		{"a~b~c.txt", 1, Update, "a~b~c~20261121-101502~update.txt"},
		{"café ~x.md", 2, Delete, "café ~x~20261121-101502-2~delete.md"},
	} {
		got := storedName(tc.base, at, tc.r, tc.n)
		if got != tc.want {
			t.Errorf("storedName(%q, %d, %s) = %q, want %q", tc.base, tc.n, tc.r, got, tc.want)
		}
		base, when, n, r, ok := parseStored(got)
		if !ok || base != tc.base || !when.Equal(at) || n != tc.n || r != tc.r {
			t.Errorf("parseStored(%q) = %q %v %d %s %v, want %q %v %d %s", got, base, when, n, r, ok, tc.base, at, tc.n, tc.r)
		}
	}
	for _, name := range []string{"report.txt", "report~2026-11-21~update.txt", "x~20261121-101502~eaten.txt", "x~20261121-101502-1~update"} {
		if _, _, _, _, ok := parseStored(name); ok {
			t.Errorf("parseStored(%q) took it for a version", name)
		}
	}
}

func write(t *testing.T, p, content string, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func content(t *testing.T, s *Set, v Version) string {
	t.Helper()
	rc, err := s.Open(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clock hands out times one minute apart.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Minute); return c.t }

// TestLongNamesKept: a version of a file whose name is near the 255 bytes a name may have is
// kept under a shortened name (a conflict over such a file, resolved, could not be carried out:
// every name tried was too long, and the sync stopped at "a thousand versions in one second").
func TestLongNamesKept(t *testing.T) {
	dir := NewDir(t.TempDir(), "desktop")
	for _, base := range []string{strings.Repeat("n", 250) + ".txt", strings.Repeat("é", 126) + ".md", strings.Repeat("x", 200) + "." + strings.Repeat("e", 100)} {
		if err := dir.Save(context.Background(), strings.NewReader("old"), "d/"+base, Conflict, time.Now()); err != nil {
			t.Errorf("Save(%d-byte name) = %v", len(base), err)
			continue
		}
		name := storedName(base, time.Now(), Conflict, 999)
		if len(name) > 255 || !utf8.ValidString(name) {
			t.Errorf("storedName of a %d-byte name = %d bytes (valid UTF-8 %v)", len(base), len(name), utf8.ValidString(name))
		}
	}
	vs, err := dir.List()
	if err != nil || len(vs) != 3 {
		t.Fatalf("List = %d versions, %v; want 3", len(vs), err)
	}
}

func TestKeepListRestore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	clk := &clock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	s := &Set{Root: root, Desktop: NewDir(filepath.Join(root, ".cradle", "versions"), Desktop),
		DeviceHere: NewDir(filepath.Join(root, ".cradle", "device-versions"), Device)}
	s.Desktop.SetClock(clk.now)
	s.DeviceHere.SetClock(clk.now)
	mod := time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC)
	doc := filepath.Join(root, "Docs", "report.txt")

	// Replaced: the file stays in its place (a hard link), its content in the area.
	write(t, doc, "first", mod)
	if err := s.Desktop.KeepReplaced(doc, "Docs/report.txt", Update); err != nil {
		t.Fatal(err)
	}
	if got := read(t, doc); got != "first" {
		t.Errorf("after KeepReplaced the file holds %q, want it in place", got)
	}
	write(t, doc+".new", "second", mod.Add(time.Hour))
	if err := os.Rename(doc+".new", doc); err != nil {
		t.Fatal(err)
	}
	// Deleted: moved into the area.
	if err := s.Desktop.Take(doc, "Docs/report.txt", Delete); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(doc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Take the file is still there (%v)", err)
	}
	// The device's content kept here.
	if err := s.DeviceHere.Save(ctx, strings.NewReader("device's"), "Docs/report.txt", Policy, mod); err != nil {
		t.Fatal(err)
	}

	vs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("List = %+v, want 3 versions", vs)
	}
	want := []struct {
		side    string
		reason  Reason
		content string
	}{{Device, Policy, "device's"}, {Desktop, Delete, "second"}, {Desktop, Update, "first"}}
	for i, w := range want {
		v := vs[i]
		if v.Path != "Docs/report.txt" || v.Side != w.side || v.Reason != w.reason || content(t, s, v) != w.content || v.Size != int64(len(w.content)) {
			t.Errorf("version %d = %+v (%q), want %s %s %q", i, v, content(t, s, v), w.side, w.reason, w.content)
		}
	}
	if !vs[2].Modified.Equal(mod) {
		t.Errorf("the kept version's modification time is %v, want the content's own %v", vs[2].Modified, mod)
	}
	if vs[0].ID == vs[1].ID || vs[1].ID == vs[2].ID {
		t.Errorf("two versions share an ID: %s %s %s", vs[0].ID, vs[1].ID, vs[2].ID)
	}

	// Restored where it was: the file is back with its content and time; the restore replaces
	// nothing (the file is gone), so nothing more is kept.
	got, err := s.Restore(ctx, vs[2], "")
	if err != nil {
		t.Fatal(err)
	}
	if got != doc || read(t, doc) != "first" {
		t.Errorf("Restore wrote %s holding %q, want %s holding %q", got, read(t, got), doc, "first")
	}
	if fi, _ := os.Stat(doc); !fi.ModTime().Equal(mod) {
		t.Errorf("restored file dated %v, want %v", fi.ModTime(), mod)
	}
	// Restored again over it: what is there now is kept first.
	if _, err := s.Restore(ctx, vs[1], ""); err != nil {
		t.Fatal(err)
	}
	if read(t, doc) != "second" {
		t.Errorf("after the second restore the file holds %q", read(t, doc))
	}
	vs2, _ := s.List(ctx)
	if len(vs2) != 4 || vs2[0].Reason != Restore || content(t, s, vs2[0]) != "first" {
		t.Errorf("after a restore over a file, List = %+v, want the replaced content kept as a restore", vs2)
	}
	// Elsewhere: never over an existing file.
	other := filepath.Join(t.TempDir(), "old report.txt")
	if _, err := s.Restore(ctx, vs[0], other); err != nil || read(t, other) != "device's" {
		t.Errorf("Restore to %s: %v", other, err)
	}
	if _, err := s.Restore(ctx, vs[2], other); !errors.Is(err, ErrExists) {
		t.Errorf("Restore over an existing file = %v, want ErrExists", err)
	}
	// No temporary file is left anywhere.
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".cradle-part-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestCleanOldestFirst(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	start := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	d := NewDir(filepath.Join(root, "area"), Desktop)
	d.SetClock(func() time.Time { clk.t = clk.t.Add(24 * time.Hour); return clk.t })
	s := &Set{Root: root, Desktop: d}
	for i, c := range []string{"aaaa", "bbbbbbbb", "cc", "dddddd"} { // kept on days 1, 2, 3, 4
		p := filepath.Join(root, "f.txt")
		write(t, p, c, start)
		if err := d.Take(p, "f.txt", Update); err != nil {
			t.Fatal(i, err)
		}
	}
	sizes := func() []int64 {
		vs, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, v := range vs {
			out = append(out, v.Size)
		}
		return out
	}
	// On day 5: nothing is older than 30 days; a cap of 10 bytes removes the oldest first.
	now := start.Add(5 * 24 * time.Hour)
	if n, err := s.Clean(ctx, Rule{MaxAge: DefaultMaxAge}, now); err != nil || n != 0 {
		t.Fatalf("Clean without a cap = %d, %v; want nothing removed", n, err)
	}
	if n, err := s.Clean(ctx, Rule{MaxAge: DefaultMaxAge, MaxBytes: 10}, now); err != nil || n != 2 {
		t.Fatalf("Clean with a 10-byte cap = %d, %v; want the 2 oldest removed", n, err)
	}
	if got := sizes(); len(got) != 2 || got[0] != 6 || got[1] != 2 {
		t.Errorf("after the cap, the sizes kept are %v, want [6 2] (the newest two)", got)
	}
	// On day 5.5, the version of day 3 is 60 hours old, the one of day 4 36 hours.
	if n, err := s.Clean(ctx, Rule{MaxAge: 50 * time.Hour}, start.Add(5*24*time.Hour+12*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Clean of what is older than 50 hours = %d, %v; want 1", n, err)
	}
	if got := sizes(); len(got) != 1 || got[0] != 6 {
		t.Errorf("after expiry the sizes kept are %v, want [6]", got)
	}
	// The area's emptied folders go too.
	if n, err := s.Clean(ctx, Rule{}, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Clean keeping nothing = %d, %v", n, err)
	}
	if entries, _ := os.ReadDir(d.Root()); len(entries) != 0 {
		t.Errorf("the area still holds %v", entries)
	}
}

func TestDeviceDir(t *testing.T) {
	ctx := context.Background()
	phone := t.TempDir()
	dev, err := folder.Open(phone, folder.Options{NoEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cache := filepath.Join(t.TempDir(), "device-versions.json")
	clk := &clock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	dd := NewDeviceDir(dev, 1, "Documents/.cradle/versions", cache)
	dd.SetClock(clk.now)
	mod := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, filepath.Join(phone, "Documents", "notes", "a.txt"), "on the phone", mod)
	if err := dd.Keep(ctx, "Documents/notes/a.txt", "notes/a.txt", Delete, 12, mod); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(phone, "Documents", "notes", "a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the kept object is still in its place (%v)", err)
	}
	s := &Set{Root: t.TempDir(), Device: dd}
	vs, err := s.List(ctx)
	if err != nil || len(vs) != 1 || !vs[0].OnDevice || vs[0].Path != "notes/a.txt" || vs[0].Side != Device || content(t, s, vs[0]) != "on the phone" {
		t.Fatalf("List = %+v, %v; want the kept object", vs, err)
	}
	// Away: the cache lists it, reading it says why not.
	away := &Set{Device: NewDeviceDir(nil, 1, "Documents/.cradle/versions", cache)}
	cached, err := away.List(ctx)
	if err != nil || len(cached) != 1 || cached[0].ID != vs[0].ID {
		t.Errorf("List with the device away = %+v, %v; want the cached version", cached, err)
	}
	if _, err := away.Open(ctx, cached[0]); !errors.Is(err, ErrDeviceAway) {
		t.Errorf("Open with the device away = %v, want ErrDeviceAway", err)
	}
	// Restored into the desktop folder from the device.
	got, err := s.Restore(ctx, vs[0], "")
	if err != nil || read(t, got) != "on the phone" {
		t.Fatalf("Restore = %s, %v", got, err)
	}
	// Cleaned: gone from the device and from the cache.
	if n, err := s.Clean(ctx, Rule{}, clk.now()); err != nil || n != 1 {
		t.Fatalf("Clean = %d, %v", n, err)
	}
	if vs, _ := away.List(ctx); len(vs) != 0 {
		t.Errorf("the cache still lists %+v", vs)
	}
	if _, err := os.Stat(filepath.Join(phone, "Documents", ".cradle", "versions", "notes")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the emptied folder of the area is still on the device (%v)", err)
	}
}
