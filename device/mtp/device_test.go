package mtp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// fixture is an emulated device serving a temporary folder, opened by the initiator.
type fixture struct {
	t   *testing.T
	ctx context.Context
	dir string
	emu *emulator.Emulator
	dev *mtp.Device
	sid device.StorageID
}

const internal = device.StorageID(0x00010001)

// newFixture starts an emulated device with opts over a folder that setup fills, and opens it.
func newFixture(t *testing.T, opts emulator.Options, setup func(dir string)) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, dir: t.TempDir(), sid: internal}
	if setup != nil {
		setup(f.dir)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	emu, err := emulator.New(f.dir, opts)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	f.emu = emu
	t.Cleanup(func() { emu.Close() })
	dev, err := mtp.Open(ctx, emu, emu.MTPOptions())
	if err != nil {
		t.Fatalf("mtp.Open: %v", err)
	}
	f.dev = dev
	t.Cleanup(func() { dev.Close() })
	return f
}

// reopen connects again to the same folder, as replugging the device does.
func (f *fixture) reopen(opts emulator.Options) *fixture {
	f.t.Helper()
	return newFixture(f.t, opts, func(dir string) {
		if err := os.Remove(dir); err != nil {
			f.t.Fatal(err)
		}
		if err := os.Symlink(f.dir, dir); err != nil {
			f.t.Fatal(err)
		}
	})
}

// testLogger discards the devices' logs, unless CRADLE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CRADLE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func write(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, f *fixture, p string, off int64) []byte {
	t.Helper()
	r, err := f.dev.Open(f.ctx, f.sid, p, off)
	if err != nil {
		t.Fatalf("Open(%q, %d): %v", p, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %q from %d: %v", p, off, err)
	}
	return b
}

// configs are the device behaviours every operation is checked against.
var configs = []struct {
	name string
	opts emulator.Options
}{
	{"android", emulator.Options{}},
	{"qemu", emulator.QEMU()},
	{"shuffled-handles", emulator.Options{ShuffleHandles: true}},
	{"proplist-broken", emulator.Options{PropList: emulator.PropListBroken}},
	{"no-partial", emulator.Options{NoPartial: true}},
	{"no-zlp", emulator.Options{NoZLP: true}},
}

// zlpSize is a payload whose data container (12-byte header included) ends on a packet boundary:
// the case where a zero-length packet is sent, or not.
const zlpSize = 3*512 - 12

func TestOperations(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) { testOperations(t, cfg.opts) })
	}
}

func testOperations(t *testing.T, opts emulator.Options) {
	old := time.Date(2021, 5, 6, 7, 8, 9, 0, time.Local)
	jpg, mp3 := random(t, 1000), random(t, zlpSize)
	f := newFixture(t, opts, func(dir string) {
		write(t, filepath.Join(dir, "DCIM/Camera/IMG_0001.jpg"), jpg, old)
		write(t, filepath.Join(dir, "Music/a.mp3"), mp3, old)
		write(t, filepath.Join(dir, "notes.txt"), nil, old)
		write(t, filepath.Join(dir, ".hidden"), []byte("x"), old)
		os.Mkdir(filepath.Join(dir, "Empty"), 0o755)
	})
	ctx, dev, sid := f.ctx, f.dev, f.sid
	qemu := opts.ReadOnlyProps

	info := dev.Info()
	if info.Manufacturer != "Cradle" || info.Model != "Emulated phone" || info.Kind != device.KindPhone ||
		info.Serial != emulator.Serial(f.dir) || info.Transport != "mtp-emulated" {
		t.Errorf("Info() = %+v", info)
	}

	storages, err := dev.Storages(ctx)
	if err != nil || len(storages) != 1 {
		t.Fatalf("Storages() = %+v, %v; want one", storages, err)
	}
	if s := storages[0]; s.ID != sid || s.Description != "Internal shared storage" || s.Capacity == 0 || s.Free > s.Capacity || s.ReadOnly {
		t.Errorf("Storages()[0] = %+v", s)
	}

	objs, err := dev.List(ctx, sid, "")
	if err != nil {
		t.Fatalf("List(root): %v", err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	want := []string{".hidden", "DCIM", "Empty", "Music", "notes.txt"}
	if opts.HideDotFiles {
		want = want[1:]
	}
	if !slices.Equal(names, want) {
		t.Errorf("List(root) names = %q, want %q", names, want)
	}
	for _, o := range objs {
		if o.Name == "notes.txt" && (o.Dir || o.Size != 0 || !o.ModTime.Equal(old) || o.Path != "notes.txt" || o.Storage != sid) {
			t.Errorf("List(root) notes.txt = %+v, want a 0-byte file modified %v", o, old)
		}
		if o.Name == "DCIM" && !o.Dir {
			t.Errorf("List(root) DCIM = %+v, want a folder", o)
		}
	}

	o, err := dev.Stat(ctx, sid, "/Music/a.mp3")
	if err != nil || o.Size != zlpSize || o.Path != "Music/a.mp3" || o.Name != "a.mp3" || o.Dir || !o.ModTime.Equal(old) {
		t.Errorf("Stat(Music/a.mp3) = %+v, %v", o, err)
	}
	if _, err := dev.Stat(ctx, sid, "Music/missing.mp3"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	if _, err := dev.Stat(ctx, sid, "notes.txt/x"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat(below a file) = %v, want ErrNotFound", err)
	}
	if o, err := dev.Stat(ctx, sid, ""); err != nil || !o.Dir {
		t.Errorf("Stat(root) = %+v, %v; want a folder", o, err)
	}
	if _, err := dev.Stat(ctx, sid, "../etc"); !errors.Is(err, device.ErrUnsafeName) {
		t.Errorf("Stat(../etc) = %v, want ErrUnsafeName", err)
	}
	if _, err := dev.List(ctx, device.StorageID(0x00090001), ""); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("List(no such storage) = %v, want ErrNotFound", err)
	}

	var walked []string
	err = dev.Walk(ctx, sid, "", func(o device.Object) error {
		walked = append(walked, o.Path)
		if o.Path == "Empty" {
			return fs.SkipDir
		}
		return nil
	})
	wantWalk := []string{".hidden", "DCIM", "DCIM/Camera", "DCIM/Camera/IMG_0001.jpg", "Empty", "Music", "Music/a.mp3", "notes.txt"}
	if opts.HideDotFiles {
		wantWalk = wantWalk[1:]
	}
	if err != nil || !slices.Equal(walked, wantWalk) {
		t.Errorf("Walk = %q, %v; want %q", walked, err, wantWalk)
	}
	walked = nil
	dev.Walk(ctx, sid, "", func(o device.Object) error {
		walked = append(walked, o.Path)
		return fs.SkipAll
	})
	if len(walked) != 1 {
		t.Errorf("Walk with SkipAll visited %q, want one object", walked)
	}

	if got := readAll(t, f, "Music/a.mp3", 0); !bytes.Equal(got, mp3) {
		t.Errorf("Open(Music/a.mp3) read %d bytes, want the %d written", len(got), len(mp3))
	}
	if got := readAll(t, f, "DCIM/Camera/IMG_0001.jpg", 700); !bytes.Equal(got, jpg[700:]) {
		t.Errorf("Open(IMG_0001.jpg, 700) read %d bytes, want the last %d", len(got), len(jpg)-700)
	}
	if got := readAll(t, f, "notes.txt", 0); len(got) != 0 {
		t.Errorf("Open(notes.txt) read %d bytes, want 0", len(got))
	}
	if _, err := dev.Open(ctx, sid, "DCIM", 0); err == nil {
		t.Errorf("Open(folder) = nil error, want one")
	}
	if _, err := dev.Open(ctx, sid, "notes.txt", 1); err == nil {
		t.Errorf("Open(notes.txt, offset past the end) = nil error, want one")
	}

	upload := random(t, 1<<20+12345)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.Local)
	o, err = dev.Create(ctx, sid, "Upload/sub/new.bin", int64(len(upload)), mt, bytes.NewReader(upload))
	if err != nil {
		t.Fatalf("Create(Upload/sub/new.bin): %v", err)
	}
	if o.Path != "Upload/sub/new.bin" || o.Size != int64(len(upload)) || !o.ModTime.Equal(mt) {
		t.Errorf("Create returned %+v", o)
	}
	host := filepath.Join(f.dir, "Upload/sub/new.bin")
	if b, err := os.ReadFile(host); err != nil || !bytes.Equal(b, upload) {
		t.Errorf("the uploaded file on the host: %d bytes, %v; want the %d sent", len(b), err, len(upload))
	}
	if fi, err := os.Stat(host); err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("the uploaded file's time on the host = %v, want %v", fi.ModTime(), mt)
	}
	if got := readAll(t, f, "Upload/sub/new.bin", 0); !bytes.Equal(got, upload) {
		t.Errorf("reading the upload back gave %d bytes, want the %d sent", len(got), len(upload))
	}
	if _, err := dev.Create(ctx, sid, "Upload/sub/new.bin", 1, time.Time{}, strings.NewReader("x")); !errors.Is(err, device.ErrExists) {
		t.Errorf("Create(existing) = %v, want ErrExists", err)
	}
	if _, err := dev.Create(ctx, sid, "notes.txt/inside", 1, time.Time{}, strings.NewReader("x")); !errors.Is(err, device.ErrExists) {
		t.Errorf("Create(below a file) = %v, want ErrExists", err)
	}
	small := random(t, zlpSize)
	if _, err := dev.Create(ctx, sid, "zlp.bin", zlpSize, time.Time{}, bytes.NewReader(small)); err != nil {
		t.Errorf("Create(zlp.bin): %v", err)
	} else if b, _ := os.ReadFile(filepath.Join(f.dir, "zlp.bin")); !bytes.Equal(b, small) {
		t.Errorf("zlp.bin on the host has %d bytes, want the %d sent", len(b), len(small))
	}
	if _, err := dev.Create(ctx, sid, "empty.bin", 0, time.Time{}, bytes.NewReader(nil)); err != nil {
		t.Errorf("Create(empty.bin): %v", err)
	}
	if _, err := dev.Create(ctx, sid, "short.bin", 100, time.Time{}, strings.NewReader("only this")); err == nil {
		t.Errorf("Create with a reader shorter than size = nil error, want one")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "short.bin")); !os.IsNotExist(err) {
		t.Errorf("a failed Create left short.bin on the device (%v)", err)
	}

	if o, err := dev.Mkdir(ctx, sid, "Empty"); err != nil || !o.Dir {
		t.Errorf("Mkdir(existing) = %+v, %v", o, err)
	}
	if o, err := dev.Mkdir(ctx, sid, "A/B"); err != nil || !o.Dir || o.Path != "A/B" {
		t.Errorf("Mkdir(A/B) = %+v, %v", o, err)
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "A/B")); err != nil || !fi.IsDir() {
		t.Errorf("A/B on the host: %v", err)
	}
	if _, err := dev.Mkdir(ctx, sid, "notes.txt"); !errors.Is(err, device.ErrExists) {
		t.Errorf("Mkdir(over a file) = %v, want ErrExists", err)
	}

	if err := dev.Delete(ctx, sid, "DCIM"); !errors.Is(err, device.ErrNotEmpty) {
		t.Errorf("Delete(DCIM) = %v, want ErrNotEmpty", err)
	}
	if err := dev.Delete(ctx, sid, "A/B"); err != nil {
		t.Errorf("Delete(A/B): %v", err)
	}
	if err := dev.Delete(ctx, sid, "notes.txt"); err != nil {
		t.Errorf("Delete(notes.txt): %v", err)
	}
	for _, p := range []string{"A/B", "notes.txt"} {
		if _, err := os.Stat(filepath.Join(f.dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s still on the host after Delete (%v)", p, err)
		}
	}
	if err := dev.Delete(ctx, sid, "notes.txt"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Delete(deleted) = %v, want ErrNotFound", err)
	}

	err = dev.Rename(ctx, sid, "Music/a.mp3", "Music/b.mp3")
	if qemu {
		if !errors.Is(err, device.ErrUnsupported) {
			t.Errorf("Rename on a device without SetObjectPropValue = %v, want ErrUnsupported", err)
		}
	} else {
		if err != nil {
			t.Fatalf("Rename(a.mp3, b.mp3): %v", err)
		}
		if err := dev.Rename(ctx, sid, "Music/b.mp3", "A/c.mp3"); err != nil {
			t.Fatalf("Rename(Music/b.mp3, A/c.mp3): %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(f.dir, "A/c.mp3")); err != nil || !bytes.Equal(b, mp3) {
			t.Errorf("A/c.mp3 after the move: %d bytes, %v", len(b), err)
		}
		if got := readAll(t, f, "A/c.mp3", 0); !bytes.Equal(got, mp3) {
			t.Errorf("reading the moved file gave %d bytes", len(got))
		}
		if _, err := dev.Stat(ctx, sid, "Music/a.mp3"); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Stat(old name) = %v, want ErrNotFound", err)
		}
		if err := dev.Rename(ctx, sid, "A/c.mp3", "zlp.bin"); !errors.Is(err, device.ErrExists) {
			t.Errorf("Rename onto an existing name = %v, want ErrExists", err)
		}
		if err := dev.Rename(ctx, sid, "A", "A/inside"); err == nil {
			t.Errorf("Rename of a folder into itself = nil error, want one")
		}
		testRenameOrders(t, f)
	}

	st := f.emu.Stats()
	if opts.StallZLP {
		if st.ZLPOut != 0 {
			t.Errorf("%d zero-length packets sent to a device that stalls them", st.ZLPOut)
		}
	} else if st.MissingZLP != 0 || st.ZLPOut == 0 {
		t.Errorf("zero-length packets after data phases on a packet boundary: sent %d, missing %d", st.ZLPOut, st.MissingZLP)
	}
	if st.LargestOut < 512<<10 || st.LargestIn < 512<<10 {
		t.Errorf("largest bulk transfers: in %d, out %d; want at least 512 KiB each", st.LargestIn, st.LargestOut)
	}
}

// testRenameOrders checks renames that move and rename at once where a name on the way is
// taken, and that a renamed folder's contents stay reachable.
func testRenameOrders(t *testing.T, f *fixture) {
	ctx, dev, sid := f.ctx, f.dev, f.sid
	for _, p := range []string{"X/p", "X/q", "Y/p", "Z/q"} {
		if _, err := dev.Create(ctx, sid, "R/"+p, int64(len(p)), time.Time{}, strings.NewReader(p)); err != nil {
			t.Fatalf("Create(R/%s): %v", p, err)
		}
	}
	// X has q: the move must come before the new name. Then Y has p and X has q: through a
	// temporary name.
	for _, mv := range [][2]string{{"R/X/p", "R/Z/p2"}, {"R/Z/q", "R/X/p"}, {"R/X/p", "R/Y/q"}} {
		if err := dev.Rename(ctx, sid, mv[0], mv[1]); err != nil {
			t.Errorf("Rename(%s, %s): %v", mv[0], mv[1], err)
		}
	}
	want := map[string]string{"R/X/q": "X/q", "R/Y/p": "Y/p", "R/Y/q": "Z/q", "R/Z/p2": "X/p"}
	for p, content := range want {
		if b, err := os.ReadFile(filepath.Join(f.dir, p)); err != nil || string(b) != content {
			t.Errorf("%s after the renames = %q, %v; want %q", p, b, err, content)
		}
	}
	var got []string
	dev.Walk(ctx, sid, "R", func(o device.Object) error {
		if !o.Dir {
			got = append(got, o.Path)
		}
		return nil
	})
	if !slices.Equal(got, []string{"R/X/q", "R/Y/p", "R/Y/q", "R/Z/p2"}) {
		t.Errorf("Walk(R) after the renames = %q", got)
	}
	if err := dev.Rename(ctx, sid, "R/Y", "R/Z/Y2"); err != nil {
		t.Fatalf("Rename(R/Y, R/Z/Y2): %v", err)
	}
	if b := readAll(t, f, "R/Z/Y2/q", 0); string(b) != "Z/q" {
		t.Errorf("R/Z/Y2/q after moving its folder = %q", b)
	}
}

// A device that stalls zero-length packets (QEMU), opened without the quirk set: the first
// upload that needs one fails cleanly, later ones go without.
func TestZeroLengthPacketRefused(t *testing.T) {
	opts := emulator.QEMU()
	opts.Logger = testLogger()
	emu, err := emulator.New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := mtp.Open(ctx, emu, mtp.Options{Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	data := random(t, zlpSize)
	if _, err := dev.Create(ctx, internal, "first.bin", zlpSize, time.Time{}, bytes.NewReader(data)); err == nil {
		t.Errorf("the first aligned upload to a device that stalls its zero-length packet = nil error")
	}
	assertNoFile(t, emu.Dir(), "first.bin")
	if _, err := dev.Create(ctx, internal, "second.bin", zlpSize, time.Time{}, bytes.NewReader(data)); err != nil {
		t.Fatalf("the second aligned upload: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(emu.Dir(), "second.bin")); err != nil || !bytes.Equal(b, data) {
		t.Errorf("second.bin on the host: %d bytes, %v", len(b), err)
	}
	if _, err := dev.Storages(ctx); err != nil {
		t.Errorf("the device after a refused ZLP: %v", err)
	}
}

// A device that ignores the date sent with SendObjectInfo gets it with SetObjectPropValue; one
// that cannot set it either keeps its own.
func TestModificationDateKept(t *testing.T) {
	mt := time.Date(2019, 9, 9, 9, 9, 9, 0, time.Local)
	for _, tt := range []struct {
		name string
		opts emulator.Options
		kept bool
	}{
		{"set afterwards", emulator.Options{IgnoreDates: true}, true},
		{"cannot be set", emulator.Options{IgnoreDates: true, ReadOnlyProps: true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts, nil)
			for _, name := range []string{"a.txt", "b.txt"} {
				o, err := f.dev.Create(f.ctx, f.sid, name, 2, mt, strings.NewReader("hi"))
				if err != nil {
					t.Fatalf("Create(%s): %v", name, err)
				}
				fi, err := os.Stat(filepath.Join(f.dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.ModTime().Equal(mt); got != tt.kept {
					t.Errorf("%s's time on the host = %v; kept = %v, want %v", name, fi.ModTime(), got, tt.kept)
				}
				if !o.ModTime.Equal(fi.ModTime().Truncate(time.Second)) {
					t.Errorf("Create(%s) returned time %v, the device has %v", name, o.ModTime, fi.ModTime())
				}
			}
		})
	}
}

func TestSecondStorage(t *testing.T) {
	sd := t.TempDir()
	write(t, filepath.Join(sd, "card.txt"), []byte("on the card"), time.Time{})
	f := newFixture(t, emulator.Options{SDCard: sd}, nil)
	storages, err := f.dev.Storages(f.ctx)
	if err != nil || len(storages) != 2 || storages[1].Description != "SD card" {
		t.Fatalf("Storages() = %+v, %v; want the internal storage and the SD card", storages, err)
	}
	f.sid = storages[1].ID
	if got := readAll(t, f, "card.txt", 0); string(got) != "on the card" {
		t.Errorf("card.txt = %q", got)
	}
	if _, err := f.dev.Create(f.ctx, f.sid, "x/y.txt", 2, time.Time{}, strings.NewReader("hi")); err != nil {
		t.Fatalf("Create on the card: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(sd, "x/y.txt")); err != nil || string(b) != "hi" {
		t.Errorf("x/y.txt on the card: %q, %v", b, err)
	}
	if objs, err := f.dev.List(f.ctx, internal, ""); err != nil || len(objs) != 0 {
		t.Errorf("List(internal) = %+v, %v; want nothing", objs, err)
	}
}

func TestStorageEvents(t *testing.T) {
	sd := t.TempDir()
	write(t, filepath.Join(sd, "card.txt"), []byte("x"), time.Time{})
	f := newFixture(t, emulator.Options{SDCard: sd}, nil)
	card := device.StorageID(0x00020001)
	if _, err := f.dev.List(f.ctx, card, ""); err != nil {
		t.Fatal(err)
	}
	f.emu.EjectSDCard()
	if ev := waitEvent(t, f.dev.Events(), func(device.Event) bool { return true }); ev.Kind != device.StorageRemoved || ev.Storage != card {
		t.Errorf("event after ejecting the card = %+v, want StorageRemoved", ev)
	}
	if storages, err := f.dev.Storages(f.ctx); err != nil || len(storages) != 1 {
		t.Errorf("Storages without the card = %+v, %v", storages, err)
	}
	if _, err := f.dev.Stat(f.ctx, card, "card.txt"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat on the ejected card = %v, want ErrNotFound", err)
	}
	f.emu.InsertSDCard()
	if ev := waitEvent(t, f.dev.Events(), func(device.Event) bool { return true }); ev.Kind != device.StorageAdded || ev.Storage != card {
		t.Errorf("event after inserting the card = %+v, want StorageAdded", ev)
	}
	f.sid = card
	if got := readAll(t, f, "card.txt", 0); string(got) != "x" {
		t.Errorf("card.txt after reinserting = %q", got)
	}
}

func TestDiskFull(t *testing.T) {
	f := newFixture(t, emulator.Options{FreeSpaceZero: true}, nil)
	storages, err := f.dev.Storages(f.ctx)
	if err != nil || storages[0].Free != 0 {
		t.Fatalf("Storages() = %+v, %v; want no free space", storages, err)
	}
	_, err = f.dev.Create(f.ctx, f.sid, "big.bin", 10, time.Time{}, bytes.NewReader(make([]byte, 10)))
	if !errors.Is(err, device.ErrNoSpace) || !strings.Contains(err.Error(), "free space") {
		t.Errorf("Create on a full device = %v, want ErrNoSpace saying to free space", err)
	}
}

// A sparse file over 4 GiB: ObjectInfo says 0xFFFFFFFF, the size comes from the 64-bit
// ObjectSize property, reads at offsets past 4 GiB use GetPartialObject64, and where that is
// missing GetObject streams a data phase of unknown length.
func TestOver4GiB(t *testing.T) {
	const size = 4<<30 + 3<<20 + 123
	head, tail := random(t, 1<<20), random(t, 1<<20)
	setup := func(dir string) {
		fh, err := os.Create(filepath.Join(dir, "big.img"))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.Write(head); err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteAt(tail, size-int64(len(tail))); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{
		{"partial64", emulator.Options{}},
		{"getobject", emulator.Options{NoPartial64: true}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			f := newFixture(t, cfg.opts, setup)
			o, err := f.dev.Stat(f.ctx, f.sid, "big.img")
			if err != nil || o.Size != size {
				t.Fatalf("Stat(big.img) = %+v, %v; want %d bytes", o, err, int64(size))
			}
			objs, err := f.dev.List(f.ctx, f.sid, "")
			if err != nil || len(objs) != 1 || objs[0].Size != size {
				t.Fatalf("List = %+v, %v; want big.img of %d bytes", objs, err, int64(size))
			}
			if got := readAll(t, f, "big.img", size-int64(len(tail))); !bytes.Equal(got, tail) {
				t.Errorf("the last MiB read from offset %d differs", size-len(tail))
			}
			r, err := f.dev.Open(f.ctx, f.sid, "big.img", 0)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(head))
			_, err = io.ReadFull(r, got)
			r.Close()
			if err != nil || !bytes.Equal(got, head) {
				t.Errorf("the first MiB: %v", err)
			}
		})
	}
	t.Run("send", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, nil)
		src := io.MultiReader(bytes.NewReader(head), io.LimitReader(zeroReader{}, size-2<<20), bytes.NewReader(tail))
		o, err := f.dev.Create(f.ctx, f.sid, "sent.img", size, time.Time{}, src)
		if err != nil || o.Size != size {
			t.Fatalf("Create(sent.img) = %+v, %v", o, err)
		}
		fh, err := os.Open(filepath.Join(f.dir, "sent.img"))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		fi, _ := fh.Stat()
		got := make([]byte, len(tail))
		if _, err := fh.ReadAt(got, size-int64(len(tail))); err != nil || fi.Size() != size || !bytes.Equal(got, tail) {
			t.Errorf("sent.img on the host: %d bytes, tail equal %v, %v", fi.Size(), bytes.Equal(got, tail), err)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Resume: read 1 MiB, the device disconnects, reconnect, read the rest from where it stopped.
func TestResumeAfterDisconnect(t *testing.T) {
	data := random(t, 9<<20+77)
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{
		{"partial", emulator.Options{}},
		{"getobject", emulator.Options{NoPartial: true}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			f := newFixture(t, cfg.opts, func(dir string) { write(t, filepath.Join(dir, "movie.mp4"), data, time.Time{}) })
			r, err := f.dev.Open(f.ctx, f.sid, "movie.mp4", 0)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1<<20)
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("reading the first MiB: %v", err)
			}
			f.emu.DisconnectAfter(300<<10, -1)
			rest, err := io.ReadAll(r)
			r.Close()
			if !errors.Is(err, device.ErrDisconnected) {
				t.Fatalf("reading on after the disconnection: %d bytes, %v; want ErrDisconnected", len(rest), err)
			}
			got = append(got, rest...)
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("the %d bytes read before the disconnection differ", len(got))
			}
			if _, err := f.dev.Stat(f.ctx, f.sid, "movie.mp4"); !errors.Is(err, device.ErrDisconnected) {
				t.Errorf("Stat after the disconnection = %v, want ErrDisconnected", err)
			}
			if kinds := drain(f.dev.Events(), 2*time.Second); !slices.Contains(kinds, device.DeviceGone) {
				t.Errorf("events after the disconnection = %v, want DeviceGone and the channel closed", kinds)
			}

			g := f.reopen(cfg.opts)
			got = append(got, readAll(t, g, "movie.mp4", int64(len(got)))...)
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("resumed content (%d bytes) differs from the file (%d bytes)", len(got), len(data))
			}
		})
	}
}

// drain collects event kinds until the channel closes or the time is up.
func drain(ch <-chan device.Event, d time.Duration) []device.EventKind {
	var kinds []device.EventKind
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return kinds
			}
			kinds = append(kinds, ev.Kind)
		case <-timeout:
			return append(kinds, 0)
		}
	}
}

func TestUploadFailureCleansUp(t *testing.T) {
	payload := random(t, 3<<20)
	failing := func() io.Reader {
		return io.MultiReader(bytes.NewReader(payload[:1<<20]), iotestErrReader{errors.New("the desktop file vanished")})
	}
	t.Run("reader fails, device keeps partial objects", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, nil)
		f.emu.KeepPartial(true)
		_, err := f.dev.Create(f.ctx, f.sid, "Movies/partial.mp4", int64(len(payload)), time.Time{}, failing())
		if err == nil || !strings.Contains(err.Error(), "vanished") {
			t.Fatalf("Create with a failing reader = %v, want the reader's error", err)
		}
		assertNoFile(t, f.dir, "Movies/partial.mp4")
		if _, err := f.dev.Stat(f.ctx, f.sid, "Movies/partial.mp4"); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Stat(partial) = %v, want ErrNotFound", err)
		}
		// The device still works, and the same name can be written.
		if _, err := f.dev.Create(f.ctx, f.sid, "Movies/partial.mp4", int64(len(payload)), time.Time{}, bytes.NewReader(payload)); err != nil {
			t.Errorf("Create after the failure: %v", err)
		}
	})
	t.Run("reader fails", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, nil)
		if _, err := f.dev.Create(f.ctx, f.sid, "partial.mp4", int64(len(payload)), time.Time{}, failing()); err == nil {
			t.Fatal("Create with a failing reader = nil error")
		}
		assertNoFile(t, f.dir, "partial.mp4")
		assertNoTemp(t, f.dir)
	})
	t.Run("context cancelled", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, nil)
		f.emu.KeepPartial(true)
		ctx, cancel := context.WithCancel(f.ctx)
		r := &cancelAfter{r: bytes.NewReader(payload), n: 2 << 20, cancel: cancel}
		if _, err := f.dev.Create(ctx, f.sid, "cancelled.mp4", int64(len(payload)), time.Time{}, r); !errors.Is(err, context.Canceled) {
			t.Fatalf("Create cancelled midway = %v, want context.Canceled", err)
		}
		assertNoFile(t, f.dir, "cancelled.mp4")
	})
	t.Run("device disconnects", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, nil)
		f.emu.DisconnectAfter(-1, 1<<20)
		_, err := f.dev.Create(f.ctx, f.sid, "gone.mp4", int64(len(payload)), time.Time{}, bytes.NewReader(payload))
		if !errors.Is(err, device.ErrDisconnected) {
			t.Fatalf("Create while the device disconnects = %v, want ErrDisconnected", err)
		}
		f.emu.Close()
		assertNoFile(t, f.dir, "gone.mp4")
		assertNoTemp(t, f.dir)
	})
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// cancelAfter cancels a context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func assertNoFile(t *testing.T, dir, p string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
		t.Errorf("%s is on the device after a failed upload (%v)", p, err)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".cradle-emu-part-") {
			t.Errorf("a partial upload is left on the device: %s", p)
		}
		return nil
	})
}

func TestBusy(t *testing.T) {
	dir := t.TempDir()
	emu, err := emulator.New(dir, emulator.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	emu.Busy(mtp.OpOpenSession, -1)
	_, err = mtp.Open(context.Background(), emu, mtp.Options{Logger: testLogger()})
	if !errors.Is(err, device.ErrBusy) {
		t.Fatalf("Open of a busy device = %v, want ErrBusy", err)
	}
	for _, want := range []string{"DeviceBusy (0x2019)", "another program", "try again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a busy device: %q does not say %q", err, want)
		}
	}

	f := newFixture(t, emulator.Options{}, func(dir string) { write(t, filepath.Join(dir, "a"), []byte("a"), time.Time{}) })
	f.emu.Busy(mtp.OpGetObjectHandles, 2)
	if objs, err := f.dev.List(f.ctx, f.sid, ""); err != nil || len(objs) != 1 {
		t.Errorf("List while the device is busy twice = %+v, %v; want it retried", objs, err)
	}
	f.emu.Busy(0, -1)
	if _, err := f.dev.List(f.ctx, f.sid, ""); !errors.Is(err, device.ErrBusy) {
		t.Errorf("List while the device stays busy = %v, want ErrBusy", err)
	}
	f.emu.Busy(0, 0)
	if _, err := f.dev.Storages(f.ctx); err != nil {
		t.Errorf("Storages once the device is free: %v", err)
	}
}

// A device that stops answering: the call times out, the transaction is cancelled, and the
// device works again.
func TestStall(t *testing.T) {
	f := newFixture(t, emulator.Options{}, func(dir string) { write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{}) })
	f.emu.Stall(mtp.OpGetObjectInfo)
	ctx, cancel := context.WithTimeout(f.ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := f.dev.Stat(ctx, f.sid, "a.txt"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat on a stalled device = %v, want DeadlineExceeded", err)
	}
	if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
		t.Errorf("reading after the stall = %q, want abc", got)
	}
	// A read that stalls fails with the reader's context, and leaves the device usable.
	f.emu.Stall(mtp.OpGetPartialObject64)
	ctx, cancel = context.WithCancel(f.ctx)
	defer cancel()
	r, err := f.dev.Open(ctx, f.sid, "a.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("a stalled read = %v, want Canceled", err)
	}
	r.Close()
	if got := readAll(t, f, "a.txt", 1); string(got) != "bc" {
		t.Errorf("reading after the stalled read = %q, want bc", got)
	}
}

func TestSessionRecovery(t *testing.T) {
	setup := func(dir string) { write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{}) }
	t.Run("session left open", func(t *testing.T) {
		f := newFixture(t, emulator.Options{SessionOpen: true}, setup)
		if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
			t.Errorf("read %q", got)
		}
	})
	t.Run("stale data in the pipe", func(t *testing.T) {
		f := newFixture(t, emulator.Options{Leftover: true}, setup)
		if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
			t.Errorf("read %q", got)
		}
	})
	t.Run("stale response", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, setup)
		f.emu.StaleResponse()
		if objs, err := f.dev.List(f.ctx, f.sid, ""); err != nil || len(objs) != 1 {
			t.Errorf("List after a stale response = %+v, %v", objs, err)
		}
	})
	t.Run("handles renumbered", func(t *testing.T) {
		f := newFixture(t, emulator.Options{}, setup)
		if _, err := f.dev.List(f.ctx, f.sid, ""); err != nil {
			t.Fatal(err)
		}
		f.emu.Renumber()
		if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
			t.Errorf("read after renumbering = %q", got)
		}
		if err := f.dev.Delete(f.ctx, f.sid, "a.txt"); err != nil {
			t.Errorf("Delete after renumbering: %v", err)
		}
	})
}

// Names a device reports are untrusted: objects with unsafe names never reach a path.
func TestHostileNamesOverTheWire(t *testing.T) {
	hostile := map[string]string{
		"dotdot":    "..",
		"dot":       ".",
		"traversal": "../../etc/passwd",
		"slash":     "a/b",
		"backslash": `..\..\boot.ini`,
		"nul":       "x\x00y",
		"control":   "bell\a",
		"reserved":  "CON",
		"long":      strings.Repeat("長", 100),
		"empty":     "",
		"late-evil": "../late",
	}
	f := newFixture(t, emulator.Options{Names: hostile}, func(dir string) {
		for name := range hostile {
			if name != "late-evil" {
				write(t, filepath.Join(dir, "inbox", name), []byte(name), time.Time{})
			}
		}
		write(t, filepath.Join(dir, "inbox", "fine.txt"), []byte("ok"), time.Time{})
		// Names Linux allows that a desktop must refuse.
		for _, name := range []string{"nul.txt", "LPT1", "tab\tname", "esc\x1b[31m", `back\slash`} {
			write(t, filepath.Join(dir, "inbox", name), []byte("x"), time.Time{})
		}
	})
	var paths []string
	err := f.dev.Walk(f.ctx, f.sid, "", func(o device.Object) error {
		paths = append(paths, o.Path)
		return nil
	})
	if err != nil || !slices.Equal(paths, []string{"inbox", "inbox/fine.txt"}) {
		t.Errorf("Walk = %q, %v; want only inbox and inbox/fine.txt", paths, err)
	}
	f.dev.List(f.ctx, f.sid, "inbox")
	if n := f.dev.Skipped(); n != int64(len(hostile)-1+5) {
		t.Errorf("Skipped() after listing twice = %d, want %d", n, len(hostile)-1+5)
	}
	// A hostile object appearing later is not reported either.
	write(t, filepath.Join(f.dir, "inbox", "late-evil"), nil, time.Time{})
	write(t, filepath.Join(f.dir, "inbox", "late.txt"), nil, time.Time{})
	ev := waitEvent(t, f.dev.Events(), func(e device.Event) bool { return e.Kind == device.ObjectAdded })
	if ev.Path != "inbox/late.txt" {
		t.Errorf("event = %+v, want late.txt added", ev)
	}
}

func waitEvent(t *testing.T, ch <-chan device.Event, match func(device.Event) bool) device.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("Events closed")
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("no matching event within 5 s")
		}
	}
}

func TestEvents(t *testing.T) {
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{
		{"inotify", emulator.Options{}},
		{"poll", emulator.Options{PollEvents: true, PollInterval: 50 * time.Millisecond}},
		{"qemu", emulator.QEMU()},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			f := newFixture(t, cfg.opts, func(dir string) {
				write(t, filepath.Join(dir, "DCIM/Camera/old.jpg"), []byte("old"), time.Time{})
			})
			if _, err := f.dev.List(f.ctx, f.sid, "DCIM/Camera"); err != nil {
				t.Fatal(err)
			}
			cam := filepath.Join(f.dir, "DCIM/Camera")
			type want struct {
				kind device.EventKind
				path string
			}
			expect := func(w want) {
				t.Helper()
				ev := waitEvent(t, f.dev.Events(), func(device.Event) bool { return true })
				if ev.Kind != w.kind || ev.Path != w.path || ev.Storage != f.sid {
					t.Errorf("event = %+v, want %v %q", ev, w.kind, w.path)
				}
			}
			write(t, filepath.Join(cam, ".new.jpg.tmp"), []byte("new photo"), time.Time{})
			if err := os.Rename(filepath.Join(cam, ".new.jpg.tmp"), filepath.Join(cam, "new.jpg")); err != nil {
				t.Fatal(err)
			}
			if !cfg.opts.HideDotFiles && cfg.name != "poll" {
				// inotify may see the temporary file before the rename.
				ev := waitEvent(t, f.dev.Events(), func(device.Event) bool { return true })
				if ev.Path != "DCIM/Camera/new.jpg" {
					if ev.Kind != device.ObjectAdded || ev.Path != "DCIM/Camera/.new.jpg.tmp" {
						t.Errorf("event = %+v", ev)
					}
					expectAny(t, f.dev.Events(), want2{device.ObjectRemoved, "DCIM/Camera/.new.jpg.tmp"}, want2{device.ObjectAdded, "DCIM/Camera/new.jpg"})
				}
			} else {
				expect(want{device.ObjectAdded, "DCIM/Camera/new.jpg"})
			}
			// Listing sees it, with the new size.
			if o, err := f.dev.Stat(f.ctx, f.sid, "DCIM/Camera/new.jpg"); err != nil || o.Size != 9 {
				t.Errorf("Stat(new.jpg) = %+v, %v", o, err)
			}
			write(t, filepath.Join(cam, "old.jpg"), []byte("rewritten"), time.Now().Add(time.Hour))
			expect(want{device.ObjectChanged, "DCIM/Camera/old.jpg"})
			if err := os.Remove(filepath.Join(cam, "old.jpg")); err != nil {
				t.Fatal(err)
			}
			expect(want{device.ObjectRemoved, "DCIM/Camera/old.jpg"})
			// The initiator's own changes raise no event.
			if _, err := f.dev.Create(f.ctx, f.sid, "DCIM/Camera/mine.jpg", 4, time.Time{}, strings.NewReader("mine")); err != nil {
				t.Fatal(err)
			}
			if err := f.dev.Delete(f.ctx, f.sid, "DCIM/Camera/new.jpg"); err != nil {
				t.Fatal(err)
			}
			select {
			case ev := <-f.dev.Events():
				t.Errorf("event %+v for the initiator's own changes", ev)
			case <-time.After(400 * time.Millisecond):
			}
		})
	}
}

type want2 struct {
	kind device.EventKind
	path string
}

// expectAny waits for every one of ws, in any order.
func expectAny(t *testing.T, ch <-chan device.Event, ws ...want2) {
	t.Helper()
	left := slices.Clone(ws)
	for len(left) > 0 {
		ev := waitEvent(t, ch, func(device.Event) bool { return true })
		i := slices.Index(left, want2{ev.Kind, ev.Path})
		if i < 0 {
			t.Errorf("unexpected event %+v while waiting for %v", ev, left)
			return
		}
		left = slices.Delete(left, i, i+1)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t, emulator.Options{NoPartial: true}, func(dir string) {
		write(t, filepath.Join(dir, "big"), make([]byte, 8<<20), time.Time{})
	})
	// A GetObject stream left open, unread, does not keep Close from closing.
	r, err := f.dev.Open(f.ctx, f.sid, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := f.dev.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := f.dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.dev.Storages(f.ctx); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("Storages after Close = %v, want ErrDisconnected", err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("reading an open stream after Close = %v, want ErrDisconnected", err)
	}
	if kinds := drain(f.dev.Events(), time.Second); len(kinds) != 0 {
		t.Errorf("events after Close = %v, want the channel closed without DeviceGone", kinds)
	}
}

// Several goroutines share a device (run with -race).
func TestConcurrentUse(t *testing.T) {
	files := map[string][]byte{}
	f := newFixture(t, emulator.Options{}, func(dir string) {
		for i := range 8 {
			name := "f" + string(rune('a'+i)) + ".bin"
			files[name] = random(t, 300<<10+i)
			write(t, filepath.Join(dir, "shared", name), files[name], time.Time{})
		}
	})
	errs := make(chan error, len(files)*2)
	for name, data := range files {
		go func() {
			r, err := f.dev.Open(f.ctx, f.sid, "shared/"+name, 0)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(r)
				r.Close()
				if err == nil && !bytes.Equal(b, data) {
					err = errors.New(name + " differs")
				}
			}
			errs <- err
		}()
		go func() {
			_, err := f.dev.List(f.ctx, f.sid, "shared")
			errs <- err
		}()
	}
	for range len(files) * 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestGuessKind(t *testing.T) {
	tests := []struct {
		di   mtp.DeviceInfo
		want device.Kind
	}{
		{mtp.DeviceInfo{VendorExtensionDesc: "microsoft.com: 1.0; android.com: 1.0;", Manufacturer: "Google", Model: "Pixel 7"}, device.KindPhone},
		{mtp.DeviceInfo{Manufacturer: "Amazon", Model: "Kindle Paperwhite"}, device.KindEReader},
		{mtp.DeviceInfo{Manufacturer: "Canon Inc.", Model: "Canon EOS R6", OperationsSupported: []mtp.OpCode{mtp.OpInitiateCapture}}, device.KindCamera},
		{mtp.DeviceInfo{Manufacturer: "Nikon", Model: "Z 6", CaptureFormats: []mtp.FormatCode{mtp.FormatEXIFJPEG}}, device.KindCamera},
		{mtp.DeviceInfo{Manufacturer: "SanDisk", Model: "Sansa Clip+", PlaybackFormats: []mtp.FormatCode{mtp.FormatMP3}}, device.KindMediaPlayer},
		{mtp.DeviceInfo{Manufacturer: "QEMU", Model: "QEMU filesharing"}, device.KindUnknown},
	}
	for _, tt := range tests {
		if got := mtp.GuessKind(&tt.di); got != tt.want {
			t.Errorf("GuessKind(%s %s) = %v, want %v", tt.di.Manufacturer, tt.di.Model, got, tt.want)
		}
	}
}

func TestResponseErrorUnwraps(t *testing.T) {
	tests := map[mtp.ResponseCode]error{
		mtp.RespDeviceBusy:            device.ErrBusy,
		mtp.RespStoreFull:             device.ErrNoSpace,
		mtp.RespStoreReadOnly:         device.ErrReadOnly,
		mtp.RespInvalidObjectHandle:   device.ErrNotFound,
		mtp.RespOperationNotSupported: device.ErrUnsupported,
		mtp.RespStoreNotAvailable:     device.ErrLocked,
	}
	for code, want := range tests {
		err := error(&mtp.ResponseError{Op: mtp.OpSendObject, Code: code})
		if !errors.Is(err, want) {
			t.Errorf("ResponseError(%v) does not unwrap to %v", code, want)
		}
		var re *mtp.ResponseError
		if !errors.As(err, &re) || !reflect.DeepEqual(re.Code, code) {
			t.Errorf("errors.As(ResponseError(%v)) failed", code)
		}
	}
}

// TestUnpluggedEndsEventsWithDeviceGone: a device its owner saw leave the bus (the USB monitor's
// scan, before any transfer failed) and then closed still tells its listeners it went
// (hotplug over real USB: the events closed without DeviceGone when the scan came first).
func TestUnpluggedEndsEventsWithDeviceGone(t *testing.T) {
	f := newFixture(t, emulator.Options{}, nil)
	f.dev.Unplugged()
	f.dev.Close()
	sawGone := false
	for ev := range f.dev.Events() {
		sawGone = sawGone || ev.Kind == device.DeviceGone
	}
	if !sawGone {
		t.Error("the events of an unplugged device closed without DeviceGone")
	}
	if _, err := f.dev.Storages(f.ctx); !errors.Is(err, device.ErrDisconnected) || !strings.Contains(err.Error(), "left the USB bus") {
		t.Errorf("Storages after Unplugged = %v, want ErrDisconnected saying it left the bus", err)
	}
}
