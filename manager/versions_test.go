package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// TestVersionsListRestoreClean: a file a sync replaced is listed with its partnership, path,
// reason and size, previewed, restored where it was (and the next sync carries the restore to
// the device), listed while the device is away, and removed at the end of a session once the
// settings no longer keep it.
func TestVersionsListRestoreClean(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	writeFile(t, filepath.Join(w.desktop, "notes/todo.txt"), "buy milk")
	writeFile(t, filepath.Join(w.desktop, "notes/keep.txt"), "keep")
	writeFile(t, filepath.Join(w.desktop, "other.txt"), "other")
	if _, err := m.Sync(ctxT(t), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the device keeps seconds
	writeFile(t, filepath.Join(w.phone, "Documents/notes/todo.txt"), "buy milk and eggs")
	ss, err := m.Sync(ctxT(t), SyncOptions{})
	if err != nil || ss[0].ToDesktop.Updated != 1 {
		t.Fatalf("sync of an edit on the device: %+v, %v", ss, err)
	}
	vs, err := m.Versions(ctxT(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("Versions = %+v, want one", vs)
	}
	v := vs[0]
	if v.Partnership != p.ID || v.Path != "notes/todo.txt" || v.Reason != "update" || v.Side != "desktop" || v.Size != 8 ||
		!strings.HasPrefix(v.ID, p.ID+".") || v.File == "" || time.Since(v.Time) > time.Minute {
		t.Errorf("version = %+v", v)
	}
	for _, q := range []struct{ ref, path string }{{"Docs", ""}, {"", "notes"}, {p.ID, "notes/todo.txt"}} {
		if got, err := m.Versions(ctxT(t), q.ref, q.path); err != nil || len(got) != 1 {
			t.Errorf("Versions(%q, %q) = %+v, %v; want the version", q.ref, q.path, got, err)
		}
	}
	if got, _ := m.Versions(ctxT(t), "", "other.txt"); len(got) != 0 {
		t.Errorf("Versions of other.txt = %+v, want none", got)
	}
	if pv, err := m.VersionPreview(ctxT(t), v.ID); err != nil || pv == nil || pv.Text != "buy milk" {
		t.Errorf("VersionPreview = %+v, %v", pv, err)
	}

	// Restored where it was: a change of the desktop's that the next sync carries.
	got, file, err := m.Restore(ctxT(t), v.ID, "")
	if err != nil || got.ID != v.ID || file != filepath.Join(w.desktop, "notes/todo.txt") {
		t.Fatalf("Restore = %+v, %s, %v", got, file, err)
	}
	if readFile(t, file) != "buy milk" {
		t.Errorf("restored file holds %q", readFile(t, file))
	}
	ss, err = m.Sync(ctxT(t), SyncOptions{})
	if err != nil || ss[0].ToDevice.Updated != 1 || readFile(t, filepath.Join(w.phone, "Documents/notes/todo.txt")) != "buy milk" {
		t.Fatalf("the sync after a restore: %+v, %v; the device holds %q", ss, err, readFile(t, filepath.Join(w.phone, "Documents/notes/todo.txt")))
	}
	// The device's "buy milk and eggs" it replaced is kept on the device; the desktop's, which the
	// restore replaced, on the computer.
	vs, _ = m.Versions(ctxT(t), "", "notes/todo.txt")
	var reasons []string
	for _, v := range vs {
		reasons = append(reasons, fmt.Sprintf("%s/%s/%v", v.Side, v.Reason, v.OnDevice))
	}
	slices.Sort(reasons)
	if want := []string{"desktop/restore/false", "desktop/update/false", "device/update/true"}; !slices.Equal(reasons, want) {
		t.Errorf("versions after a restore and a sync: %q, want %q", reasons, want)
	}
	// Elsewhere, and never over a file.
	out := filepath.Join(t.TempDir(), "todo-old.txt")
	if _, file, err := m.Restore(ctxT(t), v.ID, out); err != nil || file != out || readFile(t, out) != "buy milk" {
		t.Errorf("Restore --to: %s, %v", file, err)
	}
	if _, _, err := m.Restore(ctxT(t), v.ID, out); !errors.Is(err, ErrInvalid) {
		t.Errorf("Restore over an existing file = %v, want ErrInvalid", err)
	}
	if _, _, err := m.Restore(ctxT(t), p.ID+".0000000000", ""); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Restore of an unknown version = %v, want ErrNoVersion", err)
	}

	// With the device away: listed (those on the device from the cached listing), and one kept
	// on the device cannot be restored.
	m.Close()
	away := w.open(false, nopMonitor{})
	vs, err = away.Versions(ctxT(t), "", "")
	if err != nil || len(vs) != 3 {
		t.Fatalf("Versions with the device away = %+v, %v; want 3", vs, err)
	}
	for _, v := range vs {
		if v.OnDevice {
			if _, _, err := away.Restore(ctxT(t), v.ID, ""); !errors.Is(err, ErrNotConnected) {
				t.Errorf("Restore of a version on the device while it is away = %v, want ErrNotConnected", err)
			}
		}
	}
	away.Close()

	// Kept 0 days: the next session removes them all, on the device too.
	m = w.open(false)
	w.waitDevice(m)
	s := m.Settings()
	s.VersionsDays = 0
	if err := m.SetSettings(s); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctxT(t), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if vs, err := m.Versions(ctxT(t), "", ""); err != nil || len(vs) != 0 {
		t.Errorf("after a session that keeps nothing: %+v, %v", vs, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.phone, "Documents/.cradle/versions")); len(entries) != 0 {
		t.Errorf("the device's versions are still there: %v", entries)
	}
}

// nopMonitor reports no device.
type nopMonitor struct{}

func (nopMonitor) Run(ctx context.Context, _ func(device.Presence)) error { <-ctx.Done(); return nil }
