//go:build usbvmguest

package guest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// ctl is the control channel to the host.
var ctl *usbvm.Ctl

// helperEnv selects a helper mode: the test binary runs itself as a second process (another
// program holding the device, a user without permission) with this variable set.
const helperEnv = "CRADLE_GUEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	f, err := os.OpenFile(usbvm.GuestCtlDevice, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest: open control channel: %v\n", err)
		os.Exit(2)
	}
	ctl = usbvm.NewCtl(f)
	os.Exit(m.Run())
}

// call asks the host to do something and fails the test if it cannot.
func call(t testing.TB, verb string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := ctl.Call(ctx, verb, args...)
	if err != nil {
		t.Fatalf("host %s %q: %v", verb, args, err)
	}
	return out
}

// hostHash returns what the host sees at path in the device's folder: "absent" or "HASH SIZE".
func hostHash(t testing.TB, path string) string {
	t.Helper()
	return call(t, "hash", path)
}

// findQEMU scans until QEMU's MTP device shows up (it may be re-plugging) and returns it.
func findQEMU(t testing.TB, within time.Duration) usb.Found {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		fs, err := usb.Scan(context.Background())
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for _, f := range fs {
			if f.Vendor == 0x46f4 && f.Product == 0x0004 {
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's MTP device (46f4:0004) not found within %s; Scan found %+v", within, fs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openQEMU opens the transport of QEMU's device and closes it when the test ends.
func openQEMU(t testing.TB) (*usb.Transport, usb.Found) {
	t.Helper()
	f := findQEMU(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := usb.OpenTransport(ctx, f, "")
	if err != nil {
		t.Fatalf("OpenTransport(%s): %v", f.Label, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr, f
}
