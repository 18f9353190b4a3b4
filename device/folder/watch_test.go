package folder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// expect reads events until one matching kind and path arrives, or fails after a timeout.
func expect(t *testing.T, ch <-chan device.Event, kind device.EventKind, path string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("events closed while waiting for %v %q (seen: %s)", kind, path, strings.Join(seen, ", "))
			}
			if ev.Kind == kind && ev.Path == path {
				return
			}
			seen = append(seen, fmt.Sprintf("%v %q", ev.Kind, ev.Path))
		case <-deadline:
			t.Fatalf("no %v event for %q within 5 s (seen: %s)", kind, path, strings.Join(seen, ", "))
		}
	}
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "old/deep/file.txt"), "x")
	d := openTest(t, dir, Options{})
	ev := d.Events()

	writeFile(t, filepath.Join(dir, "new.txt"), "hello")
	expect(t, ev, device.ObjectAdded, "new.txt")

	writeFile(t, filepath.Join(dir, "old/deep/file.txt"), "changed")
	expect(t, ev, device.ObjectChanged, "old/deep/file.txt")

	// A new subfolder: its own later contents are reported too.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, ev, device.ObjectAdded, "sub")
	time.Sleep(50 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "sub/inner.txt"), "y")
	expect(t, ev, device.ObjectAdded, "sub/inner.txt")

	if err := os.Rename(filepath.Join(dir, "new.txt"), filepath.Join(dir, "sub/moved.txt")); err != nil {
		t.Fatal(err)
	}
	expect(t, ev, device.ObjectRemoved, "new.txt")
	expect(t, ev, device.ObjectAdded, "sub/moved.txt")

	if err := os.Remove(filepath.Join(dir, "sub/moved.txt")); err != nil {
		t.Fatal(err)
	}
	expect(t, ev, device.ObjectRemoved, "sub/moved.txt")

	// A folder moved in with contents reports what it holds.
	staging := t.TempDir()
	writeFile(t, filepath.Join(staging, "album/p1.jpg"), "p1")
	if err := os.Rename(filepath.Join(staging, "album"), filepath.Join(dir, "album")); err != nil {
		t.Fatal(err)
	}
	expect(t, ev, device.ObjectAdded, "album")
	expect(t, ev, device.ObjectAdded, "album/p1.jpg")

	// Create's own temporary file is never reported: only the final name appears.
	if _, err := d.Create(ctx, Storage, "made.bin", 3, time.Now(), strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case e := <-ev:
			if strings.Contains(e.Path, tempPrefix) {
				t.Fatalf("event for a temporary file: %+v", e)
			}
			done = e.Kind == device.ObjectAdded && e.Path == "made.bin"
		case <-deadline:
			t.Fatal("no event for made.bin")
		}
	}
}

func TestEventsOverflowForSlowReader(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, dir, Options{EventBuffer: 2})
	for i := range 20 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), "x")
	}
	// Give the watcher time to meet the full channel.
	deadline := time.Now().Add(5 * time.Second)
	for d.Dropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d.Dropped() == 0 {
		t.Fatal("no event was dropped with a 2-event buffer and 20 new files")
	}
	expect(t, d.Events(), device.EventOverflow, "")
}

func TestFolderGone(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "drive")
	writeFile(t, filepath.Join(dir, "a.txt"), "x")
	d := openTest(t, dir, Options{})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect(t, d.Events(), device.DeviceGone, "")
	select {
	case _, ok := <-d.Events():
		if ok {
			t.Error("events still open after DeviceGone")
		}
	case <-time.After(5 * time.Second):
		t.Error("events not closed after DeviceGone")
	}
	if _, err := d.List(context.Background(), Storage, ""); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("List after the folder went away = %v, want ErrDisconnected", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close after gone = %v", err)
	}
}

func TestReadMounts(t *testing.T) {
	table := `22 1 0:21 / /proc rw,nosuid - proc proc rw
36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
91 29 8:17 / /run/media/ann/My\040Stick ro,nosuid shared:45 - vfat /dev/sdb1 ro,fmask=0022
garbage line
`
	ms, err := ReadMounts(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("ReadMounts read %d mounts, want 3: %+v", len(ms), ms)
	}
	want := Mount{Major: 8, Minor: 17, Point: "/run/media/ann/My Stick", FSType: "vfat", Source: "/dev/sdb1", ReadOnly: true}
	if ms[2] != want {
		t.Errorf("ReadMounts line 3 = %+v, want %+v", ms[2], want)
	}
	if ms[1].Point != "/mnt/parent" || ms[1].FSType != "ext3" || ms[1].Major != 98 || ms[1].ReadOnly {
		t.Errorf("ReadMounts line 2 = %+v", ms[1])
	}
}

// presences collects what a Monitor reports.
type presences chan device.Presence

func (p presences) next(t *testing.T) device.Presence {
	t.Helper()
	select {
	case pr := <-p:
		return pr
	case <-time.After(5 * time.Second):
		t.Fatal("no presence report within 5 s")
	}
	return device.Presence{}
}

func TestMonitorMountTableAndAddedFolders(t *testing.T) {
	media := t.TempDir()
	stick := filepath.Join(media, "ann", "STICK")
	if err := os.MkdirAll(stick, 0o755); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "mountinfo")
	line := fmt.Sprintf("91 29 8:17 / %s rw - vfat /dev/sdb1 rw\n", stick)
	if err := os.WriteFile(table, []byte("22 1 0:21 / /proc rw - proc proc rw\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewMonitor(MonitorOptions{Roots: []string{media}, Interval: 20 * time.Millisecond, MountInfo: table,
		Device: Options{NoEvents: true, Logf: quiet}})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(presences, 16)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, func(p device.Presence) { got <- p }) }()

	p := got.next(t)
	if !p.Connected || p.Device == nil || p.Key != Key(stick) {
		t.Fatalf("first report = %+v, want the mounted stick connected", p)
	}
	stickDev := p.Device

	added := t.TempDir()
	if err := m.Add(added); err != nil {
		t.Fatal(err)
	}
	p = got.next(t)
	if !p.Connected || p.Device == nil || p.Device.(*Device).Dir() != added {
		t.Fatalf("after Add: %+v, want the added folder connected", p)
	}

	// Unmount: the mount line goes away.
	if err := os.WriteFile(table, []byte("22 1 0:21 / /proc rw - proc proc rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = got.next(t)
	if p.Connected || p.Key != Key(stick) {
		t.Fatalf("after unmount: %+v, want the stick disconnected", p)
	}
	if _, err := stickDev.List(context.Background(), Storage, ""); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("List on an unmounted stick = %v, want ErrDisconnected", err)
	}

	m.Remove(added)
	p = got.next(t)
	if p.Connected || p.Key != Key(added) {
		t.Fatalf("after Remove: %+v, want the added folder disconnected", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestMonitorRealMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs; TestMonitorMountTableAndAddedFolders covers the logic")
	}
	media := t.TempDir()
	point := filepath.Join(media, "CARD")
	if err := os.Mkdir(point, 0o755); err != nil {
		t.Fatal(err)
	}
	m := NewMonitor(MonitorOptions{Roots: []string{media}, Interval: 20 * time.Millisecond, Device: Options{Logf: quiet}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(presences, 16)
	go m.Run(ctx, func(p device.Presence) { got <- p })

	if err := syscall.Mount("tmpfs", point, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	mounted := true
	defer func() {
		if mounted {
			syscall.Unmount(point, syscall.MNT_DETACH)
		}
	}()
	p := got.next(t)
	if !p.Connected || p.Device == nil {
		t.Fatalf("after mount: %+v, want the card connected", p)
	}
	if err := syscall.Unmount(point, 0); err != nil {
		// The device's watcher holds no reference that blocks unmounting, but be lenient.
		if err := syscall.Unmount(point, syscall.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
	mounted = false
	p = got.next(t)
	if p.Connected {
		t.Fatalf("after unmount: %+v, want disconnected", p)
	}
}
