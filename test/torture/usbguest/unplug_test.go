//go:build usbvmguest

package usbguest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// cradleBinary is where the harness puts the cradle command in the guest.
const cradleBinary = "/usbvm/cradle"

// trials is how many times the device is pulled out (each trial boots nothing: one guest runs
// them all).
const trials = 6

var ctl *usbvm.Ctl

func TestMain(m *testing.M) {
	f, err := os.OpenFile(usbvm.GuestCtlDevice, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest: open control channel: %v\n", err)
		os.Exit(2)
	}
	ctl = usbvm.NewCtl(f)
	os.Exit(m.Run())
}

// call asks the host to do something and fails the test if it cannot.
func call(t *testing.T, verb string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := ctl.Call(ctx, verb, args...)
	if err != nil {
		t.Fatalf("host %s %q: %v", verb, args, err)
	}
	return out
}

// want is what the host's hash of the content named name of size bytes is.
func want(name string, size int64) string {
	return usbvm.ContentHash(name, size) + " " + strconv.FormatInt(size, 10)
}

// waitQEMU scans until QEMU's MTP device shows up again.
func waitQEMU(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fs, err := usb.Scan(context.Background())
		if err == nil {
			for _, f := range fs {
				if f.Vendor == 0x46f4 && f.Product == 0x0004 {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("QEMU's MTP device did not come back within 30 s")
}

// cradle runs the cradle command with the test's config folder.
func cradle(t *testing.T, config string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cradleBinary, append([]string{"--config", config}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("cradle %s: %v; stderr: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	return stdout.String(), err
}

// TestTortureUnplug pulls QEMU's device out (device_del) at a random moment while `cradle sync`
// uploads a new file, several times: the desktop is never touched, and with the device plugged
// in again (device_add) the next sync completes every file, with nothing partial or temporary
// left on the device.
func TestTortureUnplug(t *testing.T) {
	const dir = "TortureUnplug/Docs"
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed))
	config, desk := filepath.Join(t.TempDir(), "config"), filepath.Join(t.TempDir(), "desk")
	if err := os.MkdirAll(desk, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := cradle(t, config, time.Minute, "partner", "add", "--name", "t", "--provider", "files",
		"--desktop", desk, "--device-path", dir); err != nil {
		t.Fatalf("cradle partner add: %v", err)
	}
	files := map[string]int64{}
	cut := 0
	for i := range trials {
		// Sizes whose data phase (12-byte header included) is not a multiple of 64 bytes: QEMU
		// cannot receive those (see test/usbvm). 40 to 88 MB: long enough to be cut in the middle,
		// and all of them fit the guest's /tmp (768 MB) with room to spare.
		size := int64(40<<20+r.IntN(48<<20))/64*64 + 13
		name := fmt.Sprintf("trial%d.bin", i)
		f, err := os.Create(filepath.Join(desk, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadFrom(usbvm.Content("desk/"+name, size)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		files[name] = size

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, cradleBinary, "--config", config, "sync")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		// Pull the device out at a random moment: half the trials somewhere in the first seconds of
		// the sync (opening the device, detection, the upload's start), half a random part of the
		// way into the upload once it shows on the host.
		if i%2 == 0 {
			time.Sleep(time.Duration(300+r.IntN(2500)) * time.Millisecond)
		} else {
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(call(t, "list", dir), name) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
		}
		call(t, "unplug")
		err = cmd.Wait()
		cancel()
		t.Logf("trial %d: %s of %d bytes; cradle sync across the unplug: %v\n%s", i+1, name, size, err, out.String())
		if err != nil {
			cut++
		}
		for n, s := range files {
			if got := deskHash(t, filepath.Join(desk, n)); got != want("desk/"+n, s) {
				t.Errorf("trial %d: the desktop's %s changed: %s", i+1, n, got)
			}
		}
		call(t, "plug")
		waitQEMU(t)
		out2, err := cradle(t, config, 5*time.Minute, "sync", "--json")
		var ss []struct {
			Outcome string   `json:"outcome"`
			Errors  []string `json:"errors"`
		}
		if err != nil || json.Unmarshal([]byte(out2), &ss) != nil || len(ss) != 1 || ss[0].Outcome != "ok" {
			t.Fatalf("trial %d: the sync after the re-plug did not complete: %v %s", i+1, err, out2)
		}
		for n, s := range files {
			if got := call(t, "hash", dir+"/"+n); got != want("desk/"+n, s) {
				t.Errorf("trial %d: the device has %s as %s, want %s", i+1, n, got, want("desk/"+n, s))
			}
		}
		for _, n := range strings.Fields(call(t, "list", dir)) {
			if _, ok := files[n]; !ok {
				t.Errorf("trial %d: the device holds %s, which nobody made", i+1, n)
			}
		}
	}
	t.Logf("TORTURE-USB: %d trials, %d cut mid-upload, %d files checked by hash on the device", trials, cut, len(files))
}

func deskHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		return "absent"
	}
	defer f.Close()
	h, n, err := usbvm.HashReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %d", h, n)
}
