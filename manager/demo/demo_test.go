package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/manager"
)

// TestDemo sets the demo up, then does what the window's Sync Now does, and checks that the
// pictures, contacts and documents arrive and the conflict waits with both versions.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Setup(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	cfg := d.Config()
	cfg.Service = false
	m, err := manager.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	if err := m.WaitDevices(ctx, d.DeviceKey()); err != nil {
		t.Fatal(err)
	}
	if got := len(m.Partnerships()); got != 3 {
		t.Fatalf("partnerships = %d, want 3", got)
	}
	cs, err := m.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("Conflicts() = %v, %v; want one", cs, err)
	}
	c := cs[0]
	if c.Path != ConflictFile || !c.Desktop.Exists || !c.Device.Exists {
		t.Errorf("conflict = %+v, want %s on both sides", c, ConflictFile)
	}
	if c.Desktop.Preview == nil || c.Device.Preview == nil || c.Desktop.Preview.Text == c.Device.Preview.Text {
		t.Errorf("conflict previews = %+v / %+v, want the two texts", c.Desktop.Preview, c.Device.Preview)
	}
	if m.Settings().SyncOnConnect {
		t.Errorf("the demo syncs on plug-in; want the window to open with work to do")
	}
	sessions, err := m.Sync(ctx, manager.SyncOptions{})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for _, s := range sessions {
		if s.Outcome != manager.OutcomeOK && s.Outcome != manager.OutcomeConflicts {
			t.Errorf("session %s: %s %v", s.Name, s.Outcome, s.Errors)
		}
	}
	var pictures int
	filepath.WalkDir(filepath.Join(d.DesktopDir, "Pictures"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Ext(p) == ".jpg" {
			pictures++
		}
		return nil
	})
	if pictures != 4 {
		t.Errorf("pictures imported = %d, want 4", pictures)
	}
	if _, err := os.Stat(filepath.Join(d.DesktopDir, "Pictures", "2026", "2026-08-03")); err != nil {
		t.Errorf("pictures not filed by their EXIF date: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.DeviceDir, "Documents", "Packing list.txt")); err != nil {
		t.Errorf("the new document did not reach the phone: %v", err)
	}
	vcfs, _ := filepath.Glob(filepath.Join(d.DesktopDir, "Contacts", "*.vcf"))
	if len(vcfs) != 4 {
		t.Errorf("address book holds %d cards, want 4 (3 from the phone, 1 of its own)", len(vcfs))
	}
}

// TestDemoKeepBoth does what the conflict dialog's Keep both does: both versions of the notes
// end on both sides.
func TestDemoKeepBoth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Setup(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	cfg := d.Config()
	cfg.Service = false
	m, err := manager.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	if err := m.WaitDevices(ctx, d.DeviceKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctx, manager.SyncOptions{}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	cs, err := m.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("Conflicts() = %v, %v; want one", cs, err)
	}
	if err := m.Resolve(ctx, cs[0].ID, manager.KeepBoth); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	sessions, err := m.Sync(ctx, manager.SyncOptions{})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	for _, s := range sessions {
		t.Logf("session %s: %s %+v", s.Name, s.Outcome, s)
	}
	for _, dir := range []string{filepath.Join(d.DesktopDir, "Documents"), filepath.Join(d.DeviceDir, "Documents")} {
		names, _ := filepath.Glob(filepath.Join(dir, "Meeting notes*.txt"))
		if len(names) != 2 {
			t.Errorf("%s holds %v, want both versions of the notes", dir, names)
		}
	}
}
