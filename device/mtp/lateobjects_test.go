package mtp_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// onceReader hands out size bytes and fails the test when it is asked for more: a data phase
// sent twice (after the reader was consumed) would ask.
type onceReader struct {
	t    *testing.T
	name string
	r    io.Reader
	size int64
	n    int64
}

func newOnceReader(t *testing.T, name string, data []byte) *onceReader {
	return &onceReader{t: t, name: name, r: bytes.NewReader(data), size: int64(len(data))}
}

func (o *onceReader) Read(p []byte) (int, error) {
	if o.n >= o.size && len(p) > 0 {
		o.t.Errorf("the data of %s was asked for again after all %d bytes were read: a data phase ran twice", o.name, o.size)
	}
	n, err := o.r.Read(p)
	o.n += int64(n)
	return n, err
}

// lateConfigs are devices that register new objects late, as QEMU's usb-mtp does.
var lateConfigs = []struct {
	name string
	opts emulator.Options
}{
	{"qemu", emulator.QEMU()},
	{"late-android", emulator.Options{LateObjects: 60 * time.Millisecond}},
	{"late-shuffled", emulator.Options{LateObjects: 60 * time.Millisecond, ShuffleHandles: true}},
}

// New folders and files in them on a device that registers new objects late: every Create and
// Mkdir returns the object, the host holds it, and it reads back and lists, as a sync of a
// desktop tree into new folders needs (the real-USB TestNewFolders, fast).
func TestCreateLateObjects(t *testing.T) {
	for _, cfg := range lateConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			f := newFixture(t, cfg.opts, func(dir string) {
				write(t, filepath.Join(dir, "Docs/old.txt"), []byte("old"), time.Time{})
			})
			mt := time.Date(2021, 3, 4, 5, 6, 7, 0, time.Local)
			if _, err := f.dev.List(f.ctx, f.sid, "Docs"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				p    string
				size int
			}{
				{"root.bin", 700<<10 + 3}, {"Docs/in-listed.txt", 5}, {"Docs/one/a.bin", 1<<20 + 3},
				{"Docs/two/levels/b.bin", 300<<10 + 1}, {"Docs/one/again/c.txt", 3}, {"Docs/one/again/d.txt", 0},
			} {
				data := random(t, c.size)
				o, err := f.dev.Create(f.ctx, f.sid, c.p, int64(c.size), mt, newOnceReader(t, c.p, data))
				if err != nil {
					t.Errorf("Create(%s): %v", c.p, err)
					continue
				}
				if o.Path != c.p || o.Size != int64(c.size) || o.Dir || !o.ModTime.Equal(mt) {
					t.Errorf("Create(%s) = %+v, want a %d-byte file modified %v", c.p, o, c.size, mt)
				}
				if b, err := os.ReadFile(filepath.Join(f.dir, c.p)); err != nil || !bytes.Equal(b, data) {
					t.Errorf("host has %s as %d bytes, %v; want the %d sent", c.p, len(b), err, c.size)
				}
				if got := readAll(t, f, c.p, 0); !bytes.Equal(got, data) {
					t.Errorf("reading back %s gave %d bytes that differ from the %d sent", c.p, len(got), c.size)
				}
			}
			for _, p := range []string{"Docs/made", "Docs/made/here/and/there"} {
				if o, err := f.dev.Mkdir(f.ctx, f.sid, p); err != nil || !o.Dir || o.Path != p {
					t.Errorf("Mkdir(%s) = %+v, %v; want the folder", p, o, err)
				}
				if o, err := f.dev.Stat(f.ctx, f.sid, p); err != nil || !o.Dir {
					t.Errorf("Stat(%s) after Mkdir = %+v, %v; want a folder", p, o, err)
				}
			}
			if fi, err := os.Stat(filepath.Join(f.dir, "Docs/made/here/and/there")); err != nil || !fi.IsDir() {
				t.Errorf("made/here/and/there on the host: %v", err)
			}
			objs, err := f.dev.List(f.ctx, f.sid, "Docs")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, o.Name)
			}
			if want := []string{"in-listed.txt", "made", "old.txt", "one", "two"}; !slices.Equal(names, want) {
				t.Errorf("List(Docs) = %q, want %q", names, want)
			}
			var walked []string
			if err := f.dev.Walk(f.ctx, f.sid, "Docs/one", func(o device.Object) error {
				walked = append(walked, o.Path)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := []string{"Docs/one/a.bin", "Docs/one/again", "Docs/one/again/c.txt", "Docs/one/again/d.txt"}; !slices.Equal(walked, want) {
				t.Errorf("Walk(Docs/one) = %q, want %q", walked, want)
			}
		})
	}
}

// The handle SendObjectInfo answered is only the device's guess: here another object (a file the
// host adds meanwhile) gets it first. Create must still return, cache and read back its own.
func TestCreateHandleTakenByAnother(t *testing.T) {
	f := newFixture(t, emulator.Options{LateObjects: 300 * time.Millisecond}, func(dir string) {
		os.MkdirAll(filepath.Join(dir, "W"), 0o755)
	})
	if _, err := f.dev.List(f.ctx, f.sid, "W"); err != nil {
		t.Fatal(err)
	}
	mine := random(t, 5000)
	// When the upload's data is all read, the host adds a file: the device registers it (after
	// its watcher settles) before the upload, which it holds back for 300 ms.
	r := &hookReader{r: bytes.NewReader(mine), atEOF: func() {
		write(t, filepath.Join(f.dir, "W/theirs.txt"), []byte("not mine"), time.Time{})
	}}
	o, err := f.dev.Create(f.ctx, f.sid, "W/mine.bin", int64(len(mine)), time.Time{}, r)
	if err != nil {
		t.Fatalf("Create(W/mine.bin): %v", err)
	}
	if o.Size != int64(len(mine)) || o.Name != "mine.bin" {
		t.Errorf("Create = %+v, want mine.bin of %d bytes", o, len(mine))
	}
	if got := readAll(t, f, "W/mine.bin", 0); !bytes.Equal(got, mine) {
		t.Errorf("reading back W/mine.bin gave %q..., want the upload", got[:min(len(got), 16)])
	}
	if got := readAll(t, f, "W/theirs.txt", 0); string(got) != "not mine" {
		t.Errorf("W/theirs.txt reads %q, want the host's content", got)
	}
}

// hookReader calls atEOF once, when its data is used up.
type hookReader struct {
	r     io.Reader
	atEOF func()
	done  bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if !h.done && (err == io.EOF || h.r.(*bytes.Reader).Len() == 0) {
		h.done = true
		h.atEOF()
	}
	return n, err
}

// A device that never shows what was created (QEMU hides names starting with a dot): Create and
// Mkdir end with ErrNotShown, without sending the data twice, and the device still works.
func TestCreateNotShown(t *testing.T) {
	defer mtp.SetCreatedWait(300 * time.Millisecond)()
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{{"qemu", emulator.QEMU()}, {"hidden-at-once", emulator.Options{HideDotFiles: true}}} {
		t.Run(cfg.name, func(t *testing.T) {
			f := newFixture(t, cfg.opts, nil)
			data := []byte("metadata")
			_, err := f.dev.Create(f.ctx, f.sid, ".cradle-probe", int64(len(data)), time.Time{}, newOnceReader(t, ".cradle-probe", data))
			if !errors.Is(err, mtp.ErrNotShown) || !strings.Contains(err.Error(), "does not show") {
				t.Errorf("Create(.cradle-probe) = %v, want ErrNotShown", err)
			}
			if _, err := f.dev.Mkdir(f.ctx, f.sid, ".cradle"); !errors.Is(err, mtp.ErrNotShown) {
				t.Errorf("Mkdir(.cradle) = %v, want ErrNotShown", err)
			}
			if _, err := f.dev.Create(f.ctx, f.sid, "visible.txt", 2, time.Time{}, strings.NewReader("ok")); err != nil {
				t.Errorf("Create(visible.txt) after: %v", err)
			}
		})
	}
}

// An upload that fails on a device that registers objects late and keeps partial files: the
// partial object, registered only after the failure, is found and deleted.
func TestLateUploadFailureCleansUp(t *testing.T) {
	f := newFixture(t, emulator.Options{LateObjects: 100 * time.Millisecond}, nil)
	f.emu.KeepPartial(true)
	// A first upload teaches the initiator that this device registers objects late.
	if _, err := f.dev.Create(f.ctx, f.sid, "Movies/first.txt", 2, time.Time{}, strings.NewReader("ok")); err != nil {
		t.Fatal(err)
	}
	payload := random(t, 3<<20)
	failing := io.MultiReader(bytes.NewReader(payload[:1<<20]), iotestErrReader{errors.New("the desktop file vanished")})
	if _, err := f.dev.Create(f.ctx, f.sid, "Movies/partial.mp4", int64(len(payload)), time.Time{}, failing); err == nil {
		t.Fatal("Create with a failing reader = nil error")
	}
	assertNoFile(t, f.dir, "Movies/partial.mp4")
	if _, err := f.dev.Create(f.ctx, f.sid, "Movies/partial.mp4", int64(len(payload)), time.Time{}, bytes.NewReader(payload)); err != nil {
		t.Errorf("Create after the failure: %v", err)
	}
}

// QEMU's usb-mtp takes a new name for a repeat of an existing name it starts ("pre" next to
// "pre-existing.txt") and does not register the new object in the session: Create renews the
// session, where the device reads its folders afresh, and finds it. A reader in progress finds
// its object again in the new session.
func TestCreateNameStartingAnother(t *testing.T) {
	big := random(t, 9<<20+5)
	opts := emulator.QEMU()
	opts.ShuffleHandles = true // so that handles of the first session mean nothing in the next
	f := newFixture(t, opts, func(dir string) {
		write(t, filepath.Join(dir, "Docs/pre-existing.txt"), []byte("older one"), time.Time{})
		write(t, filepath.Join(dir, "Docs/Old-stuff/keep.txt"), []byte("keep"), time.Time{})
		write(t, filepath.Join(dir, "big.bin"), big, time.Time{})
	})
	r, err := f.dev.Open(f.ctx, f.sid, "big.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("reading the start of big.bin: %v", err)
	}
	if _, err := f.dev.List(f.ctx, f.sid, "Docs"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    string
		data []byte
	}{{"Docs/pre", []byte("new one")}, {"Docs/Old/x.txt", []byte("inside")}} {
		o, err := f.dev.Create(f.ctx, f.sid, c.p, int64(len(c.data)), time.Time{}, newOnceReader(t, c.p, c.data))
		if err != nil || o.Size != int64(len(c.data)) || o.Path != c.p {
			t.Errorf("Create(%s) = %+v, %v; want a %d-byte file", c.p, o, err, len(c.data))
			continue
		}
		if got := readAll(t, f, c.p, 0); !bytes.Equal(got, c.data) {
			t.Errorf("reading back %s = %q, want %q", c.p, got, c.data)
		}
	}
	if got := readAll(t, f, "Docs/pre-existing.txt", 0); string(got) != "older one" {
		t.Errorf("Docs/pre-existing.txt = %q after pre was created, want it unchanged", got)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the rest of big.bin across the new session: %v", err)
	}
	if !bytes.Equal(append(head, rest...), big) {
		t.Errorf("big.bin read across the new session differs (%d bytes, want %d)", len(head)+len(rest), len(big))
	}
}
