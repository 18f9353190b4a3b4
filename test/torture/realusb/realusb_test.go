//go:build usbvm

package realusb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/usbvm"
)

// TestUnplugOverUSB runs usbguest's TestTortureUnplug in a QEMU guest on qemu-xhci (QEMU 7.2's
// usb-ehci can crash when a device leaves in the middle of a transfer), then checks on the host
// that the device's folder holds only whole files.
func TestUnplugOverUSB(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	work := t.TempDir()
	logf, err := os.Create(filepath.Join(work, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	h, err := usbvm.NewHarness(ctx, filepath.Join(work, "build"), usbvm.HarnessOptions{
		GuestPackage: "./test/torture/usbguest",
		Programs:     map[string]string{"/usbvm/cradle": "."},
	}, logf)
	if err != nil {
		t.Fatalf("build the guest: %v", err)
	}
	root := t.TempDir()
	sc := usbvm.Scenario{Name: "TestTortureUnplug"}
	results, res, err := h.RunScenarios(ctx, usbvm.XHCI, root, []usbvm.Scenario{sc}, 20*time.Minute)
	if err != nil {
		t.Fatalf("the guest on %s: %v (console in %s)", usbvm.XHCI, err, logf.Name())
	}
	t.Logf("guest ran in %s, %d control calls", res.Elapsed.Round(time.Millisecond), res.Calls)
	r, ok := results[sc.Name]
	if !ok {
		t.Fatalf("guest test %s did not run", sc.Name)
	}
	t.Logf("guest output:\n%s", r.Output)
	if !r.Passed {
		t.Fatalf("guest test %s failed", sc.Name)
	}
	var trials, cut, files int
	for l := range strings.SplitSeq(r.Output, "\n") {
		if i := strings.Index(l, "TORTURE-USB: "); i >= 0 {
			line := l[i+len("TORTURE-USB: "):]
			t.Logf("R2 over real USB: %s", line)
			fmt.Sscanf(line, "%d trials, %d cut mid-upload, %d files", &trials, &cut, &files)
		}
	}
	if trials == 0 {
		t.Fatalf("the guest did not say how many trials it ran")
	}
	// Nothing but whole, named files on the device's side.
	err = filepath.WalkDir(filepath.Join(root, sc.Dir()), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".cradle-part-") || strings.HasPrefix(d.Name(), ".cradle-rename-") {
			t.Errorf("temporary file left on the device: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !t.Failed() {
		writeRecord(t, map[string]any{
			"id": "R2", "test": t.Name(), "full": true, "count": trials,
			"what":    "QEMU's usb-mtp device pulled out (QMP device_del) at a random moment of an upload by cradle sync in a QEMU guest over real USB (qemu-xhci), then put back (device_add)",
			"seconds": time.Since(start).Seconds(),
			"notes":   []string{fmt.Sprintf("%d of the %d syncs were cut mid-upload; after each re-plug the next sync completed and all %d files were checked by hash on the device's side, with nothing else in its folder", cut, trials, files)},
		})
	}
}

// writeRecord appends a campaign record to CRADLE_TORTURE_REPORT (see test/torture), if set.
func writeRecord(t *testing.T, rec map[string]any) {
	t.Helper()
	path := os.Getenv("CRADLE_TORTURE_REPORT")
	if path == "" {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}
