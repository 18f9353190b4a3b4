package mtp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// The behaviours of real phones that Cradle met with uMTP-Responder and read in libmtp and
// Android's MTP server (issue 15), each through the emulator option that imitates it.

// openWith opens an emulated device with initiator options changed by tune.
func openWith(t *testing.T, opts emulator.Options, setup func(dir string), tune func(*mtp.Options)) *fixture {
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
	mo := emu.MTPOptions()
	if tune != nil {
		tune(&mo)
	}
	dev, err := mtp.Open(ctx, emu, mo)
	if err != nil {
		t.Fatalf("mtp.Open: %v", err)
	}
	f.dev = dev
	t.Cleanup(func() { dev.Close() })
	return f
}

// uMTP-Responder (before 1.6) answers GetDeviceInfo outside a session with SessionNotOpen:
// the session is opened first, as libmtp does.
func TestOpenSessionFirst(t *testing.T) {
	f := newFixture(t, emulator.Options{SessionFirst: true}, func(dir string) {
		write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{})
	})
	if info := f.dev.Info(); info.Manufacturer != emulator.Manufacturer || info.Serial == "" {
		t.Errorf("Info() = %+v", info)
	}
	if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
		t.Errorf("read %q, want abc", got)
	}
}

// A device that refuses to set DateModified (uMTP-Responder: InvalidObjectPropCode) and ignores
// the date sent with the object: the upload succeeds with the device's own date, every time.
func TestDateRefusedIsNoFailure(t *testing.T) {
	f := newFixture(t, emulator.Options{IgnoreDates: true, DatesReadOnly: true}, nil)
	mt := time.Date(2019, 9, 9, 9, 9, 9, 0, time.UTC)
	for _, name := range []string{"a.txt", "b.txt"} {
		o, err := f.dev.Create(f.ctx, f.sid, name, 2, mt, strings.NewReader("hi"))
		if err != nil {
			t.Fatalf("Create(%s) on a device that keeps its own dates: %v", name, err)
		}
		if o.ModTime.Equal(mt) {
			t.Errorf("Create(%s) reports the date sent, which the device did not keep", name)
		}
	}
	if err := f.dev.Rename(f.ctx, f.sid, "a.txt", "c.txt"); err != nil {
		t.Errorf("Rename after the refusals: %v", err)
	}
}

// uMTP-Responder's event write blocks, holding a lock its command thread needs, until the host
// reads the event. Events that arrive while Cradle holds its transaction lock must still be read:
// the transaction completes, and the events are delivered afterwards.
func TestEventsDuringATransaction(t *testing.T) {
	f := newFixture(t, emulator.Options{BlockingEvents: true}, func(dir string) {
		os.MkdirAll(filepath.Join(dir, "Watched"), 0o755)
	})
	if _, err := f.dev.List(f.ctx, f.sid, "Watched"); err != nil {
		t.Fatal(err)
	}
	data := random(t, 6<<20)
	var fired bool
	src := &midReader{r: bytes.NewReader(data), at: 1 << 20, hook: func() {
		fired = true
		// Two changes on the device while the upload runs: each raises an event.
		write(t, filepath.Join(f.dir, "Watched", "one.txt"), []byte("1"), time.Time{})
		write(t, filepath.Join(f.dir, "Watched", "two.txt"), []byte("22"), time.Time{})
		time.Sleep(300 * time.Millisecond) // the device raises them now
	}}
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	if _, err := f.dev.Create(ctx, f.sid, "Watched/big.bin", int64(len(data)), time.Time{}, src); err != nil {
		t.Fatalf("Create while the device raises events: %v", err)
	}
	if !fired {
		t.Fatal("the hook never ran")
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		ev := waitEvent(t, f.dev.Events(), func(ev device.Event) bool { return ev.Kind == device.ObjectAdded })
		seen[ev.Path] = true
	}
	if !seen["Watched/one.txt"] || !seen["Watched/two.txt"] {
		t.Errorf("events for %v, want Watched/one.txt and Watched/two.txt", seen)
	}
}

// midReader calls hook once, when at bytes have been read.
type midReader struct {
	r    io.Reader
	at   int64
	n    int64
	hook func()
}

func (m *midReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if m.n < m.at && m.n+int64(n) >= m.at {
		m.hook()
	}
	m.n += int64(n)
	return n, err
}

// uMTP-Responder answers GetObjectPropList for the root with InvalidObjectHandle and ignores the
// depth elsewhere: listings fall back to GetObjectInfo and are complete.
func TestPropListIgnoringDepth(t *testing.T) {
	f := newFixture(t, emulator.Options{PropList: emulator.PropListIgnoresDepth}, func(dir string) {
		write(t, filepath.Join(dir, "a.txt"), []byte("a"), time.Time{})
		write(t, filepath.Join(dir, "b.txt"), []byte("bb"), time.Time{})
		write(t, filepath.Join(dir, "Sub/c.txt"), []byte("ccc"), time.Time{})
		write(t, filepath.Join(dir, "Sub/d.txt"), []byte("dddd"), time.Time{})
	})
	for dir, want := range map[string]string{"": "Sub/ a.txt b.txt", "Sub": "Sub/c.txt Sub/d.txt"} {
		objs, err := f.dev.List(f.ctx, f.sid, dir)
		if err != nil {
			t.Fatalf("List(%q): %v", dir, err)
		}
		var got []string
		for _, o := range objs {
			if o.Dir {
				got = append(got, o.Path+"/")
			} else {
				got = append(got, o.Path)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("List(%q) = %q, want %q", dir, got, want)
		}
	}
}

// A device that stops answering in the middle of a transaction: the call ends within the deadline
// with ErrNotAnswering, and the device answers the next one.
func TestStopsAnswering(t *testing.T) {
	f := openWith(t, emulator.Options{}, func(dir string) {
		write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{})
	}, func(o *mtp.Options) { o.Timeout = 300 * time.Millisecond })
	f.emu.Stall(mtp.OpGetObjectInfo)
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := f.dev.Stat(ctx, f.sid, "a.txt")
	if !errors.Is(err, device.ErrNotAnswering) || !strings.Contains(err.Error(), "the phone stopped answering") {
		t.Fatalf("Stat on a device that stopped answering = %v, want ErrNotAnswering", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stat gave up after %s, want about the 300 ms deadline", d)
	}
	if got := readAll(t, f, "a.txt", 0); string(got) != "abc" {
		t.Errorf("read after the device answered again = %q", got)
	}
}

// Recent Samsungs answer nothing after a cancelled read until a USB reset: Cradle resets the
// device, opens a new session and goes on.
func TestWedgedAfterCancel(t *testing.T) {
	big := random(t, 8<<20)
	f := openWith(t, emulator.Options{CancelWedge: true, NoPartial: true}, func(dir string) {
		write(t, filepath.Join(dir, "big.bin"), big, time.Time{})
		write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{})
	}, func(o *mtp.Options) { o.Timeout = 300 * time.Millisecond })
	r, err := f.dev.Open(f.ctx, f.sid, "big.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	r.Close() // abandons the GetObject: the device wedges
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	var got []byte
	for try := 0; try < 2; try++ { // the first call may meet the wedge and end with ErrNotAnswering
		var rc io.ReadCloser
		if rc, err = f.dev.Open(ctx, f.sid, "a.txt", 0); err == nil {
			got, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil || !errors.Is(err, device.ErrNotAnswering) {
			break
		}
	}
	if err != nil || string(got) != "abc" {
		t.Fatalf("reading after the wedge = %q, %v; want abc", got, err)
	}
}

// Samsung Galaxy devices hang on a GetPartialObject of a file's last bytes whose last packet is
// a whole one: such files are read whole anyway.
func TestPacketBoundaryRead(t *testing.T) {
	sizes := []int{512 - 12, 2*512 - 12, 4<<20 + 512 - 12, 4<<20 + 3}
	files := map[string][]byte{}
	f := openWith(t, emulator.Options{BoundaryStall: true}, func(dir string) {
		for _, n := range sizes {
			name := filepath.Join(dir, strings.Repeat("x", n%7+1)+".bin")
			files[filepath.Base(name)] = random(t, n)
			write(t, name, files[filepath.Base(name)], time.Time{})
		}
	}, func(o *mtp.Options) { o.Timeout = 2 * time.Second })
	for name, want := range files {
		r, err := f.dev.Open(f.ctx, f.sid, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("reading %s (%d bytes): %d bytes, %v", name, len(want), len(got), err)
		}
	}
}

// Android needs the zero-length packet after an upload ending on a packet boundary. One refused
// zero-length packet must not turn them off for good: the next aligned uploads still work.
func TestZeroLengthPacketNotOffForGood(t *testing.T) {
	f := newFixture(t, emulator.Options{StrictZLP: true}, nil)
	data := random(t, zlpSize)
	f.emu.RefuseZLPOnce()
	if _, err := f.dev.Create(f.ctx, f.sid, "first.bin", zlpSize, time.Time{}, bytes.NewReader(data)); err == nil {
		t.Errorf("the upload whose zero-length packet was refused = nil error")
	}
	for _, name := range []string{"second.bin", "third.bin"} {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		_, err := f.dev.Create(ctx, f.sid, name, zlpSize, time.Time{}, bytes.NewReader(data))
		cancel()
		if err != nil {
			t.Fatalf("aligned upload %s after one refused zero-length packet: %v", name, err)
		}
		if b, err := os.ReadFile(filepath.Join(f.dir, name)); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s on the device: %d bytes, %v", name, len(b), err)
		}
	}
	if _, err := f.dev.Storages(f.ctx); err != nil {
		t.Errorf("the device afterwards: %v", err)
	}
}

// Older Samsungs put a 64-bit size inside ObjectInfo: names and sizes still read right.
func TestObjectInfoWithWideSize(t *testing.T) {
	f := newFixture(t, emulator.Options{ObjectInfo64: true, PropList: emulator.PropListAbsent}, func(dir string) {
		write(t, filepath.Join(dir, "photo.jpg"), random(t, 1234), time.Time{})
	})
	o, err := f.dev.Stat(f.ctx, f.sid, "photo.jpg")
	if err != nil || o.Name != "photo.jpg" || o.Size != 1234 {
		t.Errorf("Stat(photo.jpg) = %+v, %v; want 1234 bytes", o, err)
	}
}

// Android says "????????" when it has no serial number: two such phones are two devices, each
// known by the same serial every time.
func TestUnknownSerial(t *testing.T) {
	a := newFixture(t, emulator.Options{UnknownSerial: true}, nil)
	b := newFixture(t, emulator.Options{UnknownSerial: true}, nil)
	sa, sb := a.dev.Info().Serial, b.dev.Info().Serial
	if sa == sb || strings.Contains(sa, "?") || strings.Contains(sb, "?") {
		t.Errorf("serials %q and %q: want two usable, different ones", sa, sb)
	}
	if again := a.reopen(emulator.Options{UnknownSerial: true}); again.dev.Info().Serial != sa {
		t.Errorf("serial after reconnecting = %q, want %q", again.dev.Info().Serial, sa)
	}
}

// A phone in another time zone than the computer reports its wall clock without a zone and
// honours only 'Z' on what it is sent: files keep their instant both ways.
func TestDeviceTimeZone(t *testing.T) {
	zone := time.FixedZone("UTC+9", 9*3600)
	if _, off := time.Now().Zone(); off == 9*3600 {
		zone = time.FixedZone("UTC-5", -5*3600)
	}
	f := newFixture(t, emulator.Options{Zone: zone}, func(dir string) {
		write(t, filepath.Join(dir, "old.txt"), []byte("old"), time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	})
	mt := time.Date(2022, 6, 7, 8, 9, 10, 0, time.UTC)
	o, err := f.dev.Create(f.ctx, f.sid, "new.txt", 3, mt, strings.NewReader("new"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(f.dir, "new.txt"))
	if err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("new.txt on the phone was modified at %v, want %v", fi.ModTime(), mt)
	}
	if !o.ModTime.Equal(mt) {
		t.Errorf("Create returned time %v, want %v", o.ModTime, mt)
	}
	// Once the phone's zone is known, its other dates read right too.
	old, err := f.dev.Stat(f.ctx, f.sid, "old.txt")
	if want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC); err != nil || !old.ModTime.Equal(want) {
		t.Errorf("Stat(old.txt) time = %v, %v; want %v", old.ModTime, err, want)
	}
}

// On a case-insensitive storage (Android's shared storage), a new file whose name differs only in
// case from another is refused, never sent over it; a case-only rename works.
func TestCaseInsensitiveStorage(t *testing.T) {
	opts, err := emulator.Profile("android", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, opts, func(dir string) {
		write(t, filepath.Join(dir, "Docs/Foo.txt"), []byte("the only copy"), time.Time{})
	})
	ss, err := f.dev.Storages(f.ctx)
	if err != nil || len(ss) == 0 || !ss[0].Names.FoldCase {
		t.Fatalf("Storages() = %+v, %v; want a storage that folds case", ss, err)
	}
	if _, err := f.dev.Create(f.ctx, f.sid, "Docs/foo.txt", 3, time.Time{}, strings.NewReader("new")); !errors.Is(err, device.ErrExists) {
		t.Errorf("Create(Docs/foo.txt) next to Docs/Foo.txt = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "Docs/Foo.txt")); string(b) != "the only copy" {
		t.Fatalf("Docs/Foo.txt now holds %q", b)
	}
	if err := f.dev.Rename(f.ctx, f.sid, "Docs/Foo.txt", "Docs/foo.txt"); err != nil {
		t.Fatalf("case-only rename: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(f.dir, "Docs/foo.txt")); err != nil || string(b) != "the only copy" {
		t.Errorf("after the case-only rename Docs/foo.txt = %q, %v", b, err)
	}
}

// A memory card (FAT) cannot hold some names: they are refused by name at once, nothing is sent.
func TestFATNames(t *testing.T) {
	opts, err := emulator.Profile("sdcard", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, opts, nil)
	for _, name := range []string{"a:b.txt", "what?.txt", "trailing."} {
		start := time.Now()
		_, err := f.dev.Create(f.ctx, f.sid, name, 1, time.Time{}, strings.NewReader("x"))
		if !errors.Is(err, device.ErrNameNotAllowed) || !strings.Contains(err.Error(), name) {
			t.Errorf("Create(%q) on a memory card = %v, want ErrNameNotAllowed naming it", name, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("Create(%q) took %s to refuse", name, time.Since(start))
		}
	}
	if ents, _ := os.ReadDir(f.dir); len(ents) != 0 {
		t.Errorf("the card holds %d entries, want none", len(ents))
	}
	mt := time.Date(2022, 6, 7, 8, 9, 11, 0, time.UTC)
	if o, err := f.dev.Create(f.ctx, f.sid, "ok.txt", 1, mt, strings.NewReader("x")); err != nil || !o.ModTime.Equal(mt.Add(-time.Second)) {
		t.Errorf("Create(ok.txt) = %+v, %v; want its time to 2 seconds", o, err)
	}
}

// A phone in "Transfer photos (PTP)" mode shows only DCIM and Pictures: everything else is an
// error, never an empty folder that would read as deletions.
func TestPTPMode(t *testing.T) {
	f := newFixture(t, emulator.Options{PTP: true}, func(dir string) {
		write(t, filepath.Join(dir, "DCIM/Camera/a.jpg"), []byte("jpg"), time.Time{})
		write(t, filepath.Join(dir, "Documents/letter.txt"), []byte("dear"), time.Time{})
	})
	if objs, err := f.dev.List(f.ctx, f.sid, "DCIM/Camera"); err != nil || len(objs) != 1 {
		t.Errorf("List(DCIM/Camera) = %+v, %v", objs, err)
	}
	for _, p := range []string{"", "Documents"} {
		if objs, err := f.dev.List(f.ctx, f.sid, p); !errors.Is(err, device.ErrPTPMode) || !errors.Is(err, device.ErrLocked) {
			t.Errorf("List(%q) in PTP mode = %+v, %v; want ErrPTPMode", p, objs, err)
		}
	}
	if _, err := f.dev.Stat(f.ctx, f.sid, "Documents/letter.txt"); !errors.Is(err, device.ErrPTPMode) {
		t.Errorf("Stat(Documents/letter.txt) in PTP mode = %v, want ErrPTPMode", err)
	}
}

// A locked phone shows no storage until it is unlocked, and then says so.
func TestLockedPhone(t *testing.T) {
	f := newFixture(t, emulator.Options{Locked: true}, nil)
	if ss, err := f.dev.Storages(f.ctx); err != nil || len(ss) != 0 {
		t.Fatalf("Storages() of a locked phone = %+v, %v; want none", ss, err)
	}
	f.emu.Unlock()
	waitEvent(t, f.dev.Events(), func(ev device.Event) bool { return ev.Kind == device.StorageAdded })
	if ss, err := f.dev.Storages(f.ctx); err != nil || len(ss) != 1 {
		t.Errorf("Storages() after unlocking = %+v, %v; want one", ss, err)
	}
}

// Every profile syncs the basics: create, list, read, rename, delete, with handles kept or not.
func TestProfiles(t *testing.T) {
	for _, name := range emulator.Profiles {
		t.Run(name, func(t *testing.T) {
			opts, err := emulator.Profile(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, opts, func(dir string) {
				write(t, filepath.Join(dir, "Music/a.mp3"), random(t, 3000), time.Time{})
			})
			data := random(t, zlpSize)
			mt := time.Date(2021, 1, 1, 10, 0, 0, 0, time.UTC)
			if _, err := f.dev.Create(f.ctx, f.sid, "Docs/x.bin", zlpSize, mt, bytes.NewReader(data)); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got := readAll(t, f, "Docs/x.bin", 0); !bytes.Equal(got, data) {
				t.Errorf("read back %d bytes", len(got))
			}
			final := "y.bin"
			if err := f.dev.Rename(f.ctx, f.sid, "Docs/x.bin", "Docs/y.bin"); opts.ReadOnlyProps && errors.Is(err, device.ErrUnsupported) {
				final = "x.bin" // a card device cannot rename
			} else if err != nil {
				t.Errorf("Rename: %v", err)
			}
			if err := f.dev.Delete(f.ctx, f.sid, "Music/a.mp3"); err != nil {
				t.Errorf("Delete: %v", err)
			}
			g := f.reopen(opts)
			objs, err := g.dev.List(g.ctx, g.sid, "Docs")
			if err != nil || len(objs) != 1 || objs[0].Name != final || !objs[0].ModTime.Equal(mt) {
				t.Errorf("List(Docs) in a new session = %+v, %v", objs, err)
			}
		})
	}
}

// A caller that gives up while the device is about to answer: the answer is read to its end and
// no cancel request is sent (uMTP-Responder 1.3 stops answering for good after one); the device
// answers the next call.
func TestAbandonedAnswerNeedsNoCancel(t *testing.T) {
	f := newFixture(t, emulator.Options{}, func(dir string) {
		write(t, filepath.Join(dir, "a.txt"), []byte("abc"), time.Time{})
	})
	if _, err := f.dev.Stat(f.ctx, f.sid, "a.txt"); err != nil {
		t.Fatal(err)
	}
	f.emu.Slow(mtp.OpGetObjectInfo, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(f.ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := f.dev.Stat(ctx, f.sid, "a.txt"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat given up = %v, want DeadlineExceeded", err)
	}
	if n := f.emu.Stats().Cancels; n != 0 {
		t.Errorf("%d cancel requests for an answer that came, want none", n)
	}
	if o, err := f.dev.Stat(f.ctx, f.sid, "a.txt"); err != nil || o.Size != 3 {
		t.Errorf("Stat afterwards = %+v, %v", o, err)
	}
}

// Events still waiting to be resolved when the device is closed are dropped: Close returns at
// once, however many there are (each used to cost a cancelled transaction and its recovery,
// and `cradle sync` hung for minutes at exit after a large upload raised many events).
func TestCloseWithEventsQueued(t *testing.T) {
	f := newFixture(t, emulator.Options{}, func(dir string) { os.MkdirAll(filepath.Join(dir, "W"), 0o755) })
	if _, err := f.dev.List(f.ctx, f.sid, "W"); err != nil {
		t.Fatal(err)
	}
	// The device answers every GetObjectInfo busy: each event takes seconds to resolve, and the
	// others queue up behind it.
	f.emu.Busy(mtp.OpGetObjectInfo, -1)
	for i := range 50 {
		write(t, filepath.Join(f.dir, "W", fmt.Sprintf("f%03d.txt", i)), []byte("x"), time.Time{})
	}
	time.Sleep(time.Second) // the device raises its events
	start := time.Now()
	if err := f.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close with events queued took %s", d)
	}
}
