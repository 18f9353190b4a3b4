package emulator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cradle-sync/cradle/device/mtp"
)

// TestListingReadsFolderOnce: an initiator's listing of a folder (GetObjectHandles, then
// GetObjectPropList for its objects) reads the folder on the host once, as a phone answers from
// its object database; a later listing reads it again and sees what changed meanwhile.
func TestListingReadsFolderOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	d, err := mtp.Open(ctx, e, mtp.Options{Logger: quiet(Options{}).Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	before := e.Stats().FolderReads
	objs, err := d.List(ctx, 0x00010001, "")
	if err != nil || len(objs) != 20 {
		t.Fatalf("List = %d objects, %v; want 20", len(objs), err)
	}
	if n := e.Stats().FolderReads - before; n != 1 {
		t.Errorf("listing a folder read it %d times on the host, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	d2, err := mtp.Open(ctx, mustNew(t, dir), mtp.Options{Logger: quiet(Options{}).Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if objs, err := d2.List(ctx, 0x00010001, ""); err != nil || len(objs) != 21 {
		t.Errorf("a later listing = %d objects, %v; want 21 with the new file", len(objs), err)
	}
}

func mustNew(t *testing.T, dir string) *Emulator {
	t.Helper()
	e, err := New(dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}
