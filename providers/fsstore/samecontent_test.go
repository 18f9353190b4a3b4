package fsstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// unreadable is content that must not be read: a rename of the same content moves the file.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the content of a rename was read: the file should have moved")
	return 0, errors.New("not to be read")
}

// TestRenameSameContentMoves: a write with SameContent moves the file in both stores without
// reading Data (a 1 GB folder renamed must not be sent again), refuses a taken name, and a device
// that cannot rename copies it.
func TestRenameSameContentMoves(t *testing.T) {
	ctx := context.Background()
	type store interface {
		repl.Store
		Stat(context.Context, string) (repl.Entry, error)
	}
	check := func(t *testing.T, s store, root string) {
		e, err := s.Stat(ctx, "album/take.raw")
		if err != nil {
			t.Fatal(err)
		}
		st := e.Stamp()
		if _, err := s.Write(ctx, repl.WriteRequest{Handle: "album/take.raw", Expected: &st, Name: "album2/take.raw", Kind: repl.KindFile,
			Size: e.Size, ModTime: e.ModTime, Data: unreadable{t}, SameContent: true}); err != nil {
			t.Fatalf("rename of the same content: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "album2/take.raw")); err != nil || string(b) != "the take" {
			t.Errorf("album2/take.raw = %q, %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(root, "album/take.raw")); !os.IsNotExist(err) {
			t.Errorf("the old name is still there: %v", err)
		}
		e, err = s.Stat(ctx, "album2/take.raw")
		if err != nil {
			t.Fatal(err)
		}
		st = e.Stamp()
		_, err = s.Write(ctx, repl.WriteRequest{Handle: "album2/take.raw", Expected: &st, Name: "album/other.raw", Kind: repl.KindFile,
			Size: e.Size, ModTime: e.ModTime, Data: unreadable{t}, SameContent: true})
		if !errors.Is(err, repl.ErrExists) {
			t.Errorf("rename over a taken name = %v, want ErrExists", err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "album/other.raw")); string(b) != "someone else's" {
			t.Errorf("the file at the taken name holds %q", b)
		}
	}
	setup := func(t *testing.T) string {
		root := t.TempDir()
		storetest.WriteFile(t, filepath.Join(root, "album/take.raw"), "the take")
		storetest.WriteFile(t, filepath.Join(root, "album/other.raw"), "someone else's")
		if err := os.Mkdir(filepath.Join(root, "album2"), 0o755); err != nil {
			t.Fatal(err)
		}
		return root
	}
	t.Run("desktop", func(t *testing.T) {
		root := setup(t)
		check(t, newDesktop(t, root, DesktopOptions{}), root)
	})
	t.Run("device", func(t *testing.T) {
		root := setup(t)
		check(t, newDeviceStore(t, storetest.OpenFolderDevice(t, root), "", DeviceOptions{}), root)
	})
	t.Run("device without rename", func(t *testing.T) {
		root := setup(t)
		dev := &noRename{Device: storetest.OpenFolderDevice(t, root)}
		s := newDeviceStore(t, dev.Device, "", DeviceOptions{})
		s.dev = dev
		e, err := s.Stat(ctx, "album/take.raw")
		if err != nil {
			t.Fatal(err)
		}
		st := e.Stamp()
		if _, err := s.Write(ctx, repl.WriteRequest{Handle: "album/take.raw", Expected: &st, Name: "album2/take.raw", Kind: repl.KindFile,
			Size: e.Size, ModTime: e.ModTime, Data: strings.NewReader("the take"), SameContent: true}); err != nil {
			t.Fatalf("rename of the same content without rename: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "album2/take.raw")); err != nil || string(b) != "the take" {
			t.Errorf("album2/take.raw = %q, %v", b, err)
		}
	})
}
