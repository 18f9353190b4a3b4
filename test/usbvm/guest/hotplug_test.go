//go:build usbvmguest

package guest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// monitor runs a usb.Monitor for the test and hands its reports over a channel.
type monitor struct {
	ch   chan device.Presence
	stop func()
}

func startMonitor(t *testing.T, m *usb.Monitor) *monitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mon := &monitor{ch: make(chan device.Presence, 16)}
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, func(p device.Presence) { mon.ch <- p })
	}()
	var once sync.Once
	mon.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Monitor.Run: %v", err)
			}
		})
	}
	t.Cleanup(mon.stop)
	return mon
}

// next waits for the next report.
func (m *monitor) next(t *testing.T, within time.Duration, what string) device.Presence {
	t.Helper()
	select {
	case p := <-m.ch:
		return p
	case <-time.After(within):
		t.Fatalf("no report within %s while waiting for %s", within, what)
		return device.Presence{}
	}
}

// arrival waits for QEMU's device to be reported connected and usable.
func (m *monitor) arrival(t *testing.T, within time.Duration) device.Presence {
	t.Helper()
	p := m.next(t, within, "the device to arrive")
	if !p.Connected || p.Err != nil || p.Device == nil {
		t.Fatalf("report %+v, want QEMU's device connected and opened", p)
	}
	if i := p.Device.Info(); i.Manufacturer != "QEMU" {
		t.Fatalf("arrived %+v, want QEMU's device", i)
	}
	return p
}

// TestHotplug: the Monitor reports the attached device, notices the host unplugging it (QMP
// device_del) and plugging it back (device_add) within about a second each, and the device object
// of the unplugged attachment reports the disconnection.
func TestHotplug(t *testing.T) {
	mon := startMonitor(t, &usb.Monitor{})
	first := mon.arrival(t, 15*time.Second)
	if first.Label != "QEMU QEMU filesharing (46f4:0004)" {
		t.Errorf("Label = %q", first.Label)
	}
	dev := first.Device
	s := storage(t, dev)
	if _, err := dev.List(context.Background(), s, ""); err != nil {
		t.Fatalf("List on the reported device: %v", err)
	}

	start := time.Now()
	call(t, "unplug")
	unplugged := time.Now()
	gone := mon.next(t, 10*time.Second, "the device to leave")
	leave := time.Since(unplugged)
	if gone.Connected || gone.Key != first.Key {
		t.Fatalf("report %+v, want %s gone", gone, first.Key)
	}
	t.Logf("unplug noticed %s after QEMU removed the device (%s after asking)", leave.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if leave > 2500*time.Millisecond {
		t.Errorf("unplug noticed after %s, want about a second", leave)
	}
	if _, err := dev.Storages(context.Background()); !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("Storages on the unplugged device = %v, want ErrDisconnected", err)
	}
	sawGone := false
	for ev := range dev.Events() { // closed after DeviceGone
		sawGone = sawGone || ev.Kind == device.DeviceGone
	}
	if !sawGone {
		t.Errorf("the unplugged device's events closed without DeviceGone")
	}

	call(t, "plug")
	plugged := time.Now()
	back := mon.arrival(t, 10*time.Second)
	arrive := time.Since(plugged)
	t.Logf("plug noticed and device opened %s after QEMU added it", arrive.Round(time.Millisecond))
	if back.Key == first.Key {
		t.Errorf("the re-plugged device has the old key %s, want a new attachment", back.Key)
	}
	if arrive > 3*time.Second {
		t.Errorf("plug noticed after %s, want about a second", arrive)
	}
	if _, err := back.Device.Storages(context.Background()); err != nil {
		t.Errorf("Storages on the re-plugged device: %v", err)
	}
	mon.stop()
	if _, err := back.Device.Storages(context.Background()); err == nil {
		t.Errorf("the device still works after Run returned, want the Monitor to have closed it")
	}
}

// unplugAfter passes r through and, once n bytes went by, asks the host to unplug the device
// (without waiting: the transfer goes on until the device is gone).
type unplugAfter struct {
	r     io.Reader
	n     int64
	seen  int64
	fired atomic.Bool
	done  chan error
}

func (u *unplugAfter) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.seen += int64(n)
	if u.seen >= u.n && u.fired.CompareAndSwap(false, true) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := ctl.Call(ctx, "unplug")
			u.done <- err
		}()
	}
	return n, err
}

// TestUnplug pulls the device in the middle of a download: the read fails with ErrDisconnected,
// the Monitor reports the device gone, and plugged back in it is reported again and works.
func TestUnplug(t *testing.T) {
	const dir = "Unplug"
	mon := startMonitor(t, &usb.Monitor{Journal: filepath.Join(t.TempDir(), "uploads.json")})
	dev := mon.arrival(t, 15*time.Second).Device
	s := storage(t, dev)
	ctx := context.Background()
	r, err := dev.Open(ctx, s, dir+"/source.bin", 0)
	if err != nil {
		t.Fatal(err)
	}
	u := &unplugAfter{r: r, n: 8 << 20, done: make(chan error, 1)}
	n, err := io.Copy(io.Discard, u)
	r.Close()
	if !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("reading while the device left = %d bytes, %v; want ErrDisconnected", n, err)
	}
	t.Logf("download cut after %d of %d bytes: %v", n, 48<<20, err)
	if err := <-u.done; err != nil {
		t.Fatalf("unplug: %v", err)
	}
	if gone := mon.next(t, 10*time.Second, "the device to leave"); gone.Connected {
		t.Fatalf("report %+v, want the device gone", gone)
	}
	call(t, "plug")
	dev = mon.arrival(t, 15*time.Second).Device
	if got := readAll(t, dev, s, dir+"/source.bin", 48<<20-5); !bytes.Equal(got, contentOf(t, dir+"/source.bin", 48<<20)[48<<20-5:]) {
		t.Errorf("the end of source.bin reads differently after the re-plug")
	}
}

// TestUnplugUpload pulls the device in the middle of an upload: Create fails with
// ErrDisconnected, nothing is left half-written on the device once it is back (the Monitor cleans
// the cut-off upload at the next session), and sending again completes the file. (xHCI only:
// QEMU 7.2's usb-ehci crashes in a large upload after a device left in the middle of a transfer.)
func TestUnplugUpload(t *testing.T) {
	const dir = "UnplugUpload"
	journal := filepath.Join(t.TempDir(), "uploads.json")
	mon := startMonitor(t, &usb.Monitor{Journal: journal})
	dev := mon.arrival(t, 15*time.Second).Device
	s := storage(t, dev)
	ctx := context.Background()
	const up = dir + "/upload.bin"
	const size = 64<<20 + 5
	u := &unplugAfter{r: usbvm.Content(up, size), n: 8 << 20, done: make(chan error, 1)}
	_, err := dev.Create(ctx, s, up, size, fixtureTime, u)
	if !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("Create while the device left = %v, want ErrDisconnected", err)
	}
	if err := <-u.done; err != nil {
		t.Fatalf("unplug: %v", err)
	}
	t.Logf("upload cut: %v; the host has %s", err, hostHash(t, up))
	if gone := mon.next(t, 10*time.Second, "the device to leave"); gone.Connected {
		t.Fatalf("report %+v, want the device gone", gone)
	}
	call(t, "plug")
	dev = mon.arrival(t, 15*time.Second).Device
	// The Monitor removed the truncated upload before it reported the device.
	if got := hostHash(t, up); got != "absent" {
		t.Errorf("host has the cut-off upload after the device came back: %s, want it removed", got)
	}
	if _, err := dev.Stat(ctx, s, up); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat(cut-off upload) = %v, want ErrNotFound", err)
	}
	// Sending again completes it.
	if _, err := dev.Create(ctx, s, up, size, fixtureTime, usbvm.Content(up, size)); err != nil {
		t.Fatalf("Create again: %v", err)
	}
	if got, want := hostHash(t, up), usbvm.ContentHash(up, size)+" "+itoa(size); got != want {
		t.Errorf("host has %s after sending again, want %s", got, want)
	}
}
