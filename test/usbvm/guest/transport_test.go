//go:build usbvmguest

package guest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// Fixtures the host puts in the device's folder "Transport" (see the scenario in test/usbvm).
const (
	transportDir = "Transport"
	// bigSize makes a data phase that ends inside a packet.
	bigSize = 24<<20 + 100
	// alignedSize makes a data phase (12-byte header included) of exactly 2 MiB: it ends on a
	// packet boundary and on the end of a 512 KiB read, where QEMU sends no zero-length packet.
	alignedSize = 2<<20 - 12
	storageID   = 0x00010001
)

// TestTransport drives the gousb transport with raw MTP bytes: discovery, device info, a session,
// large reads (with and without a trailing zero-length packet), partial reads, uploads, events on
// the interrupt endpoint, Reset after a cancelled read and after a stall, and Close while a read is
// pending.
func TestTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	t.Run("Scan", func(t *testing.T) {
		f := findQEMU(t, 10*time.Second)
		if !f.MTP {
			t.Fatalf("Scan found %s without its MTP interface", f.Label)
		}
		if f.Manufacturer != "QEMU" || f.ProductName != "QEMU filesharing" {
			t.Errorf("Scan strings = %q %q, want QEMU / QEMU filesharing", f.Manufacturer, f.ProductName)
		}
		if f.Serial == "" {
			t.Errorf("Scan found no USB serial number")
		}
		for _, want := range []string{"interface 0", "class 6/1/1", "bulk in 0x81", "bulk out 0x02", "interrupt 0x83"} {
			if !strings.Contains(f.Interface, want) {
				t.Errorf("Scan interface = %q, want it to mention %q", f.Interface, want)
			}
		}
		if fi, err := os.Stat(f.Node); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("node %s: %v, %v; want a character device", f.Node, fi, err)
		}
		if !strings.HasPrefix(f.Key, "usb:") {
			t.Errorf("Key = %q, want usb:...", f.Key)
		}
	})

	tr, _ := openQEMU(t)
	r := newRaw(tr)
	if tr.MaxPacket() != 512 {
		t.Errorf("MaxPacket() = %d, want 512 (high speed)", tr.MaxPacket())
	}

	t.Run("DeviceInfo", func(t *testing.T) {
		var b bytes.Buffer
		if _, _, err := r.transact(ctx, &b, opGetDeviceInfo); err != nil {
			t.Fatal(err)
		}
		di, err := parseDeviceInfo(b.Bytes())
		if err != nil {
			t.Fatalf("parse DeviceInfo (%d bytes): %v", b.Len(), err)
		}
		if di.Manufacturer != "QEMU" || di.Model != "QEMU filesharing" || di.StandardVersion != 100 {
			t.Errorf("DeviceInfo = %+v, want QEMU / QEMU filesharing, version 100", di)
		}
	})

	if _, _, err := r.transact(ctx, nil, opOpenSession, 1); err != nil {
		t.Fatalf("OpenSession: %v", err)
	}

	var ids bytes.Buffer
	if _, _, err := r.transact(ctx, &ids, opGetStorageIDs); err != nil {
		t.Fatalf("GetStorageIDs: %v", err)
	}
	if got := (&dataset{b: ids.Bytes()}).u32s(); len(got) != 1 || got[0] != storageID {
		t.Fatalf("GetStorageIDs = %#x, want [0x00010001]", got)
	}
	dir := findHandle(t, r, ctx, 0xFFFFFFFF, transportDir)
	big := findHandle(t, r, ctx, dir, "big.bin")
	aligned := findHandle(t, r, ctx, dir, "aligned.bin")

	t.Run("Get", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			handle uint32
			size   int64
		}{{"big.bin", big, bigSize}, {"aligned.bin", aligned, alignedSize}} {
			start := time.Now()
			got, n, err := hashGet(ctx, r, c.handle)
			if err != nil {
				t.Fatalf("GetObject %s: %v", c.name, err)
			}
			t.Logf("GetObject %s: %d bytes in %s (%.1f MB/s)", c.name, n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds()/1e6)
			if want := usbvm.ContentHash(transportDir+"/"+c.name, c.size); got != want || n != c.size {
				t.Errorf("GetObject %s = %s (%d bytes), want %s (%d bytes)", c.name, got, n, want, c.size)
			}
		}
	})

	t.Run("PartialGet", func(t *testing.T) {
		whole, err := io.ReadAll(usbvm.Content(transportDir+"/big.bin", bigSize))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ off, count uint32 }{{0, 12}, {1000, 500}, {3 << 20, 1 << 20}, {bigSize - 10, 100}} {
			var b bytes.Buffer
			resp, _, err := r.transact(ctx, &b, opGetPartialObject, big, c.off, c.count)
			if err != nil {
				t.Fatalf("GetPartialObject(%d, %d): %v", c.off, c.count, err)
			}
			end := min(int(c.off)+int(c.count), len(whole))
			if !bytes.Equal(b.Bytes(), whole[c.off:end]) {
				t.Errorf("GetPartialObject(%d, %d) = %d bytes that differ from the file's %d", c.off, c.count, b.Len(), end-int(c.off))
			}
			if len(resp.Params) != 1 || int(resp.Params[0]) != b.Len() {
				t.Errorf("GetPartialObject(%d, %d) response params %v, want [%d]", c.off, c.count, resp.Params, b.Len())
			}
		}
	})

	t.Run("Send", func(t *testing.T) {
		// Sizes whose data phase (header included) is a multiple of 64 bytes cannot be sent to
		// QEMU: it ends a data-out phase only at a packet shorter than 64 bytes and stalls a
		// zero-length packet (see the package documentation of test/usbvm). 1 MiB + 1 ends on a
		// 512 KiB write boundary plus 13 bytes.
		for _, c := range []struct {
			name string
			size int64
		}{{"sent-chunk.bin", 1<<20 + 1}, {"sent-odd.bin", 5<<20 + 333}, {"sent-tiny.txt", 5}} {
			p := transportDir + "/" + c.name
			info := encodeObjectInfo(storageID, 0x3000, uint32(c.size), c.name)
			if _, err := r.transactOut(ctx, bytes.NewReader(info), int64(len(info)), opSendObjectInfo, storageID, dir); err != nil {
				t.Fatalf("SendObjectInfo %s: %v", c.name, err)
			}
			start := time.Now()
			if _, err := r.transactOut(ctx, usbvm.Content(p, c.size), c.size, opSendObject); err != nil {
				t.Fatalf("SendObject %s: %v", c.name, err)
			}
			t.Logf("SendObject %s: %d bytes in %s", c.name, c.size, time.Since(start).Round(time.Millisecond))
			want := usbvm.ContentHash(p, c.size) + " " + itoa(c.size)
			if got := hostHash(t, p); got != want {
				t.Errorf("host sees %s as %s, want %s", p, got, want)
			}
		}
	})

	t.Run("InterruptDeadline", func(t *testing.T) {
		buf := make([]byte, 64)
		// The uploads above raised events (QEMU watches listed folders): drain them first.
		drained := 0
		for {
			dctx, dcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err := tr.Interrupt(dctx, buf)
			dcancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Interrupt while draining events: %v", err)
				}
				break
			}
			if drained++; drained > 100 {
				t.Fatal("more than 100 events pending")
			}
		}
		t.Logf("drained %d pending events", drained)
		start := time.Now()
		ictx, icancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := tr.Interrupt(ictx, buf)
		icancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Interrupt with no event pending = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Interrupt returned %s after a 300ms deadline", d)
		}
	})

	t.Run("Event", func(t *testing.T) {
		// QEMU watches folders listed in the session: the Transport folder was.
		call(t, "write", transportDir+"/event.txt", "42")
		deadline := time.Now().Add(15 * time.Second)
		buf := make([]byte, 64)
		for {
			ictx, icancel := context.WithTimeout(ctx, 200*time.Millisecond)
			n, err := tr.Interrupt(ictx, buf)
			icancel()
			if err == nil {
				if n < 12 || binary.LittleEndian.Uint16(buf[4:]) != containerEvent {
					t.Fatalf("Interrupt = % x, want an event container", buf[:n])
				}
				if code := binary.LittleEndian.Uint16(buf[6:]); code == evObjectAdded {
					return
				}
				continue // ObjectInfoChanged and the like may come first
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Interrupt: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no ObjectAdded event within 15s of the host adding a file")
			}
		}
	})

	t.Run("ResetAfterCancelledRead", func(t *testing.T) {
		if err := r.command(ctx, opGetObject, big); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := tr.BulkIn(ctx, r.buf); err != nil {
				t.Fatalf("BulkIn: %v", err)
			}
		}
		// Abandon the rest: a read whose context is cancelled while data is flowing.
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		if _, err := tr.BulkIn(cctx, r.buf); !errors.Is(err, context.Canceled) {
			t.Errorf("BulkIn with a cancelled context = %v, want context.Canceled", err)
		}
		if err := tr.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		r.pending = nil
		var b bytes.Buffer
		if _, _, err := r.transact(ctx, &b, opGetDeviceInfo); err != nil {
			t.Fatalf("GetDeviceInfo after Reset: %v", err)
		}
	})

	t.Run("ResetAfterStall", func(t *testing.T) {
		// QEMU stalls bulk in while it waits for a data-out phase.
		if err := r.command(ctx, opSendObjectInfo, storageID, dir); err != nil {
			t.Fatal(err)
		}
		_, err := tr.BulkIn(ctx, r.buf)
		if !errors.Is(err, usb.ErrStall) {
			t.Fatalf("BulkIn while the device waits for data = %v, want ErrStall", err)
		}
		if err := tr.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		var b bytes.Buffer
		if _, _, err := r.transact(ctx, &b, opGetDeviceInfo); err != nil {
			t.Fatalf("GetDeviceInfo after Reset: %v", err)
		}
	})

	if _, _, err := r.transact(ctx, nil, opCloseSession); err != nil {
		t.Errorf("CloseSession: %v", err)
	}

	t.Run("CloseWhileReading", func(t *testing.T) {
		tr2, _ := openSecond(t, tr)
		done := make(chan error, 1)
		go func() {
			_, err := tr2.Interrupt(context.Background(), make([]byte, 64))
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		if err := tr2.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, mtp.ErrTransportClosed) {
				t.Errorf("Interrupt pending at Close = %v, want ErrTransportClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Interrupt still pending 5s after Close")
		}
		if _, err := tr2.BulkIn(ctx, r.buf); !errors.Is(err, mtp.ErrTransportClosed) {
			t.Errorf("BulkIn after Close = %v, want ErrTransportClosed", err)
		}
		if err := tr2.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	})
}

// openSecond closes the test's transport and opens a fresh one, so a subtest can close it on its
// own terms; the test's cleanup closes the first one again (a no-op).
func openSecond(t *testing.T, first *usb.Transport) (*usb.Transport, usb.Found) {
	t.Helper()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f := findQEMU(t, 10*time.Second)
	tr, err := usb.OpenTransport(context.Background(), f, "")
	if err != nil {
		t.Fatalf("OpenTransport: %v", err)
	}
	return tr, f
}

// findHandle lists parent (0xFFFFFFFF: the root) and returns the handle of the child called name.
func findHandle(t *testing.T, r *raw, ctx context.Context, parent uint32, name string) uint32 {
	t.Helper()
	var b bytes.Buffer
	if _, _, err := r.transact(ctx, &b, opGetObjectHandles, storageID, 0, parent); err != nil {
		t.Fatalf("GetObjectHandles(%#x): %v", parent, err)
	}
	for _, h := range (&dataset{b: b.Bytes()}).u32s() {
		var ib bytes.Buffer
		if _, _, err := r.transact(ctx, &ib, opGetObjectInfo, h); err != nil {
			t.Fatalf("GetObjectInfo(%d): %v", h, err)
		}
		oi, err := parseObjectInfo(ib.Bytes())
		if err != nil {
			t.Fatalf("parse ObjectInfo(%d): %v", h, err)
		}
		if oi.Name == name {
			return h
		}
	}
	t.Fatalf("no object %q under handle %#x", name, parent)
	return 0
}

func hashGet(ctx context.Context, r *raw, handle uint32) (string, int64, error) {
	pr, pw := io.Pipe()
	type res struct {
		h   string
		n   int64
		err error
	}
	ch := make(chan res, 1)
	go func() {
		h, n, err := usbvm.HashReader(pr)
		ch <- res{h, n, err}
	}()
	_, _, err := r.transact(ctx, pw, opGetObject, handle)
	pw.CloseWithError(err)
	got := <-ch
	if err != nil {
		return "", 0, err
	}
	return got.h, got.n, got.err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
