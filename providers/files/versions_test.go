package files

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// spaceDevice is a device whose storage reports the free space the test sets, and that cannot
// rename when the test says so.
type spaceDevice struct {
	device.Device
	free     *uint64 // nil: as the device says
	noRename bool
}

func (d spaceDevice) Storages(ctx context.Context) ([]device.Storage, error) {
	sts, err := d.Device.Storages(ctx)
	if d.free != nil {
		for i := range sts {
			sts[i].Capacity, sts[i].Free = 1000<<20, *d.free
		}
	}
	return sts, err
}

func (d spaceDevice) Info() device.Info {
	i := d.Device.Info()
	if d.noRename {
		i.Transport = "mtp-emulated" // a folder device is taken to rename without asking
	}
	return i
}

func (d spaceDevice) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	if d.noRename {
		return device.ErrUnsupported
	}
	return d.Device.Rename(ctx, s, from, to)
}

// find returns the one version of path kept for reason, failing the test otherwise.
func find(t *testing.T, p *partnership, path string, r versions.Reason) versions.Version {
	t.Helper()
	vs, err := p.Inst.Versions.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []versions.Version
	for _, v := range vs {
		if v.Path == path && v.Reason == r {
			out = append(out, v)
		}
	}
	if len(out) != 1 {
		t.Fatalf("versions of %s for %s: %+v (all: %+v), want one", path, r, out, vs)
	}
	return out[0]
}

func versionContent(t *testing.T, p *partnership, v versions.Version) string {
	t.Helper()
	rc, err := p.Inst.Versions.Open(context.Background(), v)
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

// everything is every content in a folder and in the partnership's versions.
func everything(t *testing.T, p *partnership, dirs ...string) map[string]bool {
	t.Helper()
	all := map[string]bool{}
	for _, d := range dirs {
		filepath.WalkDir(d, func(path string, de os.DirEntry, err error) error {
			if err == nil && de.Type().IsRegular() && !strings.Contains(path, "/.cradle/") {
				all[readOr(path)] = true
			}
			return nil
		})
	}
	vs, err := p.Inst.Versions.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		all[versionContent(t, p, v)] = true
	}
	return all
}

// TestVersionsEveryReason: each reason a sync replaces or deletes a file keeps its old content,
// with that reason, on the side it was replaced: an update and a delete from the device on the
// desktop, an update and a delete from the desktop on the device (in its .cradle/versions), a
// conflict the user resolved, the policy's decision; a restore brings a version back and the
// next sync carries it to the device; a device without room keeps its old content on the
// computer. After every step, every content ever written is in a folder or in the versions.
func TestVersionsEveryReason(t *testing.T) {
	ctx := context.Background()
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	var free uint64 = 900 << 20
	dev := spaceDevice{Device: storetest.OpenFolderDevice(t, root), free: &free}
	phone := filepath.Join(root, "Sync")
	written := map[string]bool{}
	put := func(path, content string) {
		storetest.WriteFile(t, path, content)
		written[content] = true
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		put(filepath.Join(desk, "docs", n+".txt"), n+"1")
	}
	p := openPartnership(t, dev, desk, state, nil)
	check := func(when string) {
		t.Helper()
		all := everything(t, p, desk, phone)
		for c := range written {
			if !all[c] {
				t.Errorf("%s: %q is neither in a folder nor in the versions", when, c)
			}
		}
	}
	p.sync()
	check("first sync")

	// From the device: an update and a delete.
	put(filepath.Join(phone, "docs/a.txt"), "a2")
	if err := os.Remove(filepath.Join(phone, "docs/b.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	check("device's changes")
	if v := find(t, p, "docs/a.txt", versions.Update); v.Side != versions.Desktop || v.OnDevice || versionContent(t, p, v) != "a1" {
		t.Errorf("update from the device kept %+v (%q), want the desktop's a1", v, versionContent(t, p, v))
	}
	if v := find(t, p, "docs/b.txt", versions.Delete); v.Side != versions.Desktop || versionContent(t, p, v) != "b1" {
		t.Errorf("delete from the device kept %+v, want the desktop's b1", v)
	}
	if !exists(filepath.Join(desk, ".cradle/versions/docs")) {
		t.Error("the desktop's versions are not in the folder's .cradle/versions")
	}

	// From the desktop: kept on the device, which has room and renames.
	time.Sleep(10 * time.Millisecond)
	put(filepath.Join(desk, "docs/c.txt"), "c2")
	if err := os.Remove(filepath.Join(desk, "docs/d.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	check("desktop's changes")
	if v := find(t, p, "docs/c.txt", versions.Update); v.Side != versions.Device || !v.OnDevice || versionContent(t, p, v) != "c1" {
		t.Errorf("update from the desktop kept %+v, want the device's c1 on the device", v)
	}
	if v := find(t, p, "docs/d.txt", versions.Delete); !v.OnDevice || versionContent(t, p, v) != "d1" {
		t.Errorf("delete from the desktop kept %+v, want the device's d1 on the device", v)
	}
	if entries, _ := os.ReadDir(filepath.Join(phone, ".cradle/versions/docs")); len(entries) != 2 {
		t.Errorf("the device's .cradle/versions/docs holds %v, want the two kept files", entries)
	}

	// A conflict the user resolves for the device (the user replaced e1 on both sides).
	delete(written, "e1")
	put(filepath.Join(desk, "docs/e.txt"), "e-desk")
	put(filepath.Join(phone, "docs/e.txt"), "e-dev")
	p.sync()
	cs, err := p.HF.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("conflicts = %v, %v; want one", cs, err)
	}
	if err := p.HF.Resolve(ctx, cs[0].ID, "device", repl.Side{Name: "desktop", Store: p.Inst.Desktop}, repl.Side{Name: "device", Store: p.Inst.Device}); err != nil {
		t.Fatal(err)
	}
	check("conflict resolved")
	if v := find(t, p, "docs/e.txt", versions.Conflict); versionContent(t, p, v) != "e-desk" {
		t.Errorf("resolving for the device kept %q, want the desktop's e-desk", versionContent(t, p, v))
	}

	// The policy decides: the device wins.
	delete(written, "a2")
	put(filepath.Join(desk, "docs/a.txt"), "a-desk")
	put(filepath.Join(phone, "docs/a.txt"), "a-dev")
	p.Sync(repl.Config{Policy: repl.Policy{Rule: repl.Wins, Winner: "device"}})
	check("policy")
	if v := find(t, p, "docs/a.txt", versions.Policy); versionContent(t, p, v) != "a-desk" {
		t.Errorf("the device winning kept %q, want the desktop's a-desk", versionContent(t, p, v))
	}

	// A restore is a change of the desktop's: the next sync carries it to the device.
	bv := find(t, p, "docs/b.txt", versions.Delete)
	if got, err := p.Inst.Versions.Restore(ctx, bv, ""); err != nil || got != filepath.Join(desk, "docs/b.txt") {
		t.Fatalf("Restore = %s, %v", got, err)
	}
	rep := p.sync()
	if c := rep.Applied["device"]; c == nil || c.Created != 1 {
		t.Errorf("the sync after a restore applied %+v to the device, want the file created", rep.Applied["device"])
	}
	if got := readOr(filepath.Join(phone, "docs/b.txt")); got != "b1" {
		t.Errorf("after a restore and a sync the device's b.txt holds %q, want b1", got)
	}

	// No room on the device: the device's old content is copied to the computer.
	free = 50 << 20
	time.Sleep(10 * time.Millisecond)
	put(filepath.Join(desk, "docs/c.txt"), "c3")
	p.sync()
	check("device without room")
	var here []versions.Version
	vs, _ := p.Inst.Versions.List(ctx)
	for _, v := range vs {
		if v.Path == "docs/c.txt" && !v.OnDevice {
			here = append(here, v)
		}
	}
	if len(here) != 1 || here[0].Side != versions.Device || versionContent(t, p, here[0]) != "c2" {
		t.Errorf("the device's c2 replaced without room: kept on the computer as %+v", here)
	}
	if !exists(filepath.Join(desk, ".cradle/device-versions/docs")) {
		t.Error("the device's content kept on the computer is not in .cradle/device-versions")
	}
	storetest.NoTempFiles(t, desk, ".cradle-part-")
	storetest.NoTempFiles(t, root, ".cradle-part-")

	// The versions are never synced.
	if exists(filepath.Join(phone, ".cradle/device-versions")) || exists(filepath.Join(desk, ".cradle/versions/docs/c.txt")) {
		t.Error("a versions area was synced")
	}
}

// TestVersionsDeviceCannotRename: a device without rename keeps its replaced and deleted content
// on the computer (copied before it goes), and the versions are listed while it is away.
func TestVersionsDeviceCannotRename(t *testing.T) {
	ctx := context.Background()
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	dev := spaceDevice{Device: storetest.OpenFolderDevice(t, root), noRename: true}
	storetest.WriteFile(t, filepath.Join(desk, "one.txt"), "one")
	storetest.WriteFile(t, filepath.Join(desk, "two.txt"), "two")
	storetest.WriteFile(t, filepath.Join(desk, "three.txt"), "three")
	p := openPartnership(t, dev, desk, state, nil)
	p.sync()
	time.Sleep(10 * time.Millisecond)
	storetest.WriteFile(t, filepath.Join(desk, "one.txt"), "one, edited")
	if err := os.Remove(filepath.Join(desk, "two.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	for path, want := range map[string]string{"one.txt": "one", "two.txt": "two"} {
		r := versions.Update
		if path == "two.txt" {
			r = versions.Delete
		}
		v := find(t, p, path, r)
		if v.OnDevice || v.Side != versions.Device || versionContent(t, p, v) != want {
			t.Errorf("%s: kept %+v (%q), want the device's %q on the computer", path, v, versionContent(t, p, v), want)
		}
	}
	if exists(filepath.Join(root, "Sync/.cradle/versions")) {
		t.Error("a device that cannot rename got a versions area")
	}
	// Opened without the device: the versions on the computer are listed.
	p.Close()
	away := openPartnership(t, nil, desk, state, nil)
	vs, err := away.Inst.Versions.List(ctx)
	if err != nil || len(vs) != 2 {
		t.Errorf("versions with the device away = %+v, %v; want 2", vs, err)
	}
	if _, err := away.Inst.Versions.Find(ctx, "nope"); !errors.Is(err, versions.ErrNotFound) {
		t.Errorf("Find of an unknown ID = %v", err)
	}
}
