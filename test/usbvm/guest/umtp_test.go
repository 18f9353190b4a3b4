//go:build usbvmguest

package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// uMTP-Responder (Debian's umtp-responder) runs in the guest as a real USB gadget: a configfs
// gadget with a FunctionFS function that umtprd serves, bound to dummy_hcd, whose host side is
// the guest's own USB bus, where Cradle opens it through libusb like any phone. Its storages are
// folders of the guest: the test prepares and checks them itself.

const (
	umtpStore = usbvm.UMTPStore
	// umtpTimeout is the transaction deadline the test gives cradle (CRADLE_MTP_TIMEOUT).
	umtpTimeout = 8 * time.Second
)

// gadget is uMTP-Responder running behind dummy_hcd, for a test.
type gadget struct {
	t *testing.T
	*usbvm.Gadget
}

func startUMTP(t *testing.T) *gadget {
	g, err := usbvm.StartUMTP()
	if err != nil {
		t.Fatalf("start uMTP-Responder: %v", err)
	}
	t.Cleanup(g.Stop)
	return &gadget{t: t, Gadget: g}
}

func (g *gadget) restart() {
	if err := g.Restart(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gadget) plug() {
	if err := g.Plug(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gadget) unplug() { g.Unplug() }

func (g *gadget) signal(s syscall.Signal) {
	if err := g.Signal(s); err != nil {
		g.t.Fatalf("signal umtprd: %v", err)
	}
}

// waitAnswering waits until cradle opens the gadget with its storage. umtprd 1.3.10 takes about
// 40 s after a disconnection (an unbind, a USB reset) before it serves again; it is asked every
// few seconds, not hammered.
func (c cradleEnv) waitAnswering(t *testing.T, g *gadget) time.Duration {
	t.Helper()
	start := time.Now()
	restarted := false
	for {
		out, err := c.run(t, time.Minute, "devices", "--json")
		var ds []deviceJSON
		if err == nil && json.Unmarshal([]byte(out), &ds) == nil && len(ds) == 1 && len(ds[0].Storages) == 1 && ds[0].Problem == "" {
			return time.Since(start)
		}
		if g != nil && !restarted && (g.Exited() || time.Since(start) > time.Minute) {
			// umtprd 1.3.10 can fail to set its FunctionFS function up again after the reset
			// ("FunctionFS USB Config write error") and then exit, or hang: it is started again,
			// as its service manager would.
			t.Logf("umtprd does not serve (exited: %v); starting it again", g.Exited())
			g.unplug()
			g.restart()
			g.plug()
			restarted = true
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("the gadget does not answer 3 minutes after it came back")
		}
		time.Sleep(5 * time.Second)
	}
}

// storeHash is the hash and size of a file in a storage folder of the guest, or "absent".
func storeHash(t *testing.T, p string) string {
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

// umtpDevices runs `cradle devices --json`.
func (c cradleEnv) umtpDevices(t *testing.T) []deviceJSON {
	t.Helper()
	out, err := c.run(t, time.Minute, "devices", "--json")
	if err != nil {
		t.Fatalf("cradle devices: %v", err)
	}
	var ds []deviceJSON
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("cradle devices --json printed %q: %v", out, err)
	}
	t.Logf("cradle devices --json: %s", strings.TrimSpace(out))
	return ds
}

// TestUMTP runs Cradle against uMTP-Responder: discovery, both ways with hash checks, events,
// 20 MB each way, the device unplugged in the middle of an upload, and the device that stops
// answering (umtprd stopped) in the middle of one. (umtprd's runtime control, `umtprd
// -cmd:unmount:NAME` and the like, took this 1.3.10 gadget off the bus for good in this set-up:
// lock, unlock and storages coming and going are checked against the emulator.)
func TestUMTP(t *testing.T) {
	const docs = umtpStore + "/Docs"
	os.Setenv("CRADLE_MTP_TIMEOUT", umtpTimeout.String())
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int64{"d.bin": 2<<20 + 3, "old.txt": 10} {
		if err := writeLocal(filepath.Join(docs, name), "umtp/"+name, size); err != nil {
			t.Fatal(err)
		}
	}
	g := startUMTP(t)
	c := newCradleEnv(t)
	for name, size := range map[string]int64{"a.txt": 5, "sub/b.bin": 700<<10 + 1} {
		p := filepath.Join(c.desk, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := writeLocal(p, "desk/"+name, size); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the uMTP gadget on the bus", func() bool {
		fs, _ := usb.Scan(context.Background())
		for _, f := range fs {
			if f.Vendor == usbvm.UMTPVendor && f.Product == usbvm.UMTPProduct {
				return true
			}
		}
		return false
	})

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("umtprd said:\n%s", g.Log())
		}
	})
	var serial string
	t.Run("Discovery", func(t *testing.T) {
		ds := c.umtpDevices(t)
		if len(ds) != 1 || ds[0].Serial != "UMTP0001" || len(ds[0].Storages) != 1 || ds[0].Storages[0].Description != "Storage" {
			t.Fatalf("cradle devices = %+v, want uMTP's device with its storage", ds)
		}
		serial = ds[0].Serial
	})
	if serial == "" {
		t.Fatal("no device")
	}
	t.Run("SyncBothWays", func(t *testing.T) {
		if _, err := c.run(t, time.Minute, "partner", "add", "--name", "docs", "--provider", "files", "--device", serial,
			"--desktop", c.desk, "--device-path", "Docs"); err != nil {
			t.Fatalf("cradle partner add: %v", err)
		}
		c.syncJSON(t)
		for name, size := range map[string]int64{"a.txt": 5, "sub/b.bin": 700<<10 + 1} {
			if got, w := storeHash(t, filepath.Join(docs, name)), want("desk/"+name, size); got != w {
				t.Errorf("the device has %s as %s, want %s", name, got, w)
			}
		}
		for name, size := range map[string]int64{"d.bin": 2<<20 + 3, "old.txt": 10} {
			if got, w := c.deskHash(t, name), want("umtp/"+name, size); got != w {
				t.Errorf("the desktop has %s as %s, want %s", name, got, w)
			}
		}
		// Edits and deletes both ways.
		if err := writeLocal(filepath.Join(c.desk, "a.txt"), "desk/a2.txt", 9); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(docs, "old.txt"))
		c.syncJSON(t)
		if got, w := storeHash(t, filepath.Join(docs, "a.txt")), want("desk/a2.txt", 9); got != w {
			t.Errorf("the edited a.txt on the device = %s, want %s", got, w)
		}
		if got := c.deskHash(t, "old.txt"); got != "absent" {
			t.Errorf("old.txt, deleted on the device, is on the desktop: %s", got)
		}
	})

	t.Run("Events", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, CradleBinary, "--config", c.config, "watch")
		logf, _ := os.Create("/tmp/watch-umtp.log")
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			b, _ := os.ReadFile("/tmp/watch-umtp.log")
			t.Logf("cradle watch said:\n%s", b)
		}()
		time.Sleep(3 * time.Second)
		// A file written on the device raises uMTP's inotify events: watch brings it over.
		if err := writeLocal(filepath.Join(docs, "from-device.bin"), "umtp/from-device.bin", 12345); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, time.Minute, "from-device.bin on the desktop", func() bool {
			return c.deskHash(t, "from-device.bin") == want("umtp/from-device.bin", 12345)
		})
		t.Logf("a file written on the device reached the desktop after %s", d.Round(time.Millisecond))
		time.Sleep(3 * time.Second) // the sync it started is over
	})

	t.Run("Transfer20MB", func(t *testing.T) {
		const size = 20 << 20
		if err := writeLocal(filepath.Join(c.desk, "up20.bin"), "desk/up20.bin", size); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.syncJSON(t)
		t.Logf("20 MB desktop to device: %s (the whole sync)", time.Since(start).Round(time.Millisecond))
		if got, w := storeHash(t, filepath.Join(docs, "up20.bin")), want("desk/up20.bin", size); got != w {
			t.Errorf("up20.bin on the device = %s, want %s", got, w)
		}
		if err := writeLocal(filepath.Join(docs, "down20.bin"), "umtp/down20.bin", size); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		c.syncJSON(t)
		t.Logf("20 MB device to desktop: %s (the whole sync)", time.Since(start).Round(time.Millisecond))
		if got, w := c.deskHash(t, "down20.bin"), want("umtp/down20.bin", size); got != w {
			t.Errorf("down20.bin on the desktop = %s, want %s", got, w)
		}
	})

	// The device leaves in the middle of an upload: the sync fails with a message, and once
	// back, the next sync completes the file.
	t.Run("UnplugMidTransfer", func(t *testing.T) {
		const size = 30<<20 + 7
		if err := writeLocal(filepath.Join(c.desk, "cut.bin"), "desk/cut.bin", size); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := c.run(t, 3*time.Minute, "sync"); done <- err }()
		waitFor(t, time.Minute, "the upload under way", func() bool { return partialUpload(docs, "cut.bin") })
		g.unplug()
		if err := <-done; err == nil {
			t.Errorf("cradle sync with the device pulled out = success, want an error")
		}
		if b, _ := os.ReadFile(filepath.Join(c.desk, "cut.bin")); int64(len(b)) != size {
			t.Errorf("the desktop's cut.bin has %d bytes after the unplug, want %d", len(b), size)
		}
		g.plug()
		d := c.waitAnswering(t, g)
		t.Logf("plugged back in, the gadget answered after %s", d.Round(time.Millisecond))
		c.syncJSON(t)
		if got, w := storeHash(t, filepath.Join(docs, "cut.bin")), want("desk/cut.bin", size); got != w {
			t.Errorf("cut.bin on the device after the re-plug = %s, want %s", got, w)
		}
		if got, w := c.deskHash(t, "cut.bin"), want("desk/cut.bin", size); got != w {
			t.Errorf("cut.bin on the desktop = %s, want %s", got, w)
		}
	})

	// umtprd stops (SIGSTOP) in the middle of an upload: the sync ends within the deadline with
	// "the phone stopped answering"; after SIGCONT the next sync completes, every file checked.
	t.Run("StopsAnswering", func(t *testing.T) {
		const size = 30<<20 + 11
		if err := writeLocal(filepath.Join(c.desk, "stall.bin"), "desk/stall.bin", size); err != nil {
			t.Fatal(err)
		}
		type result struct {
			err error
			d   time.Duration
		}
		done := make(chan result, 1)
		start := time.Now()
		said := c.said.Len()
		go func() {
			_, err := c.run(t, 3*time.Minute, "sync")
			done <- result{err, time.Since(start)}
		}()
		waitFor(t, time.Minute, "the upload under way", func() bool { return partialUpload(docs, "stall.bin") })
		stopped := time.Now()
		g.signal(syscall.SIGSTOP)
		r := <-done
		g.signal(syscall.SIGCONT)
		ended := time.Since(stopped)
		if r.err == nil {
			t.Errorf("cradle sync with umtprd stopped = success, want an error")
		}
		if msg := c.said.String()[said:]; !strings.Contains(msg, "the phone stopped answering") {
			t.Errorf("cradle sync with umtprd stopped said:\n%s\nwant \"the phone stopped answering\"", msg)
		}
		// The deadline, a cancel request (5 s), a USB reset and a new session (15 s).
		if limit := umtpTimeout + 25*time.Second; ended > limit {
			t.Errorf("the sync ended %s after umtprd stopped, want within %s", ended.Round(time.Millisecond), limit)
		}
		t.Logf("the sync ended %s after umtprd stopped", ended.Round(time.Millisecond))
		d := c.waitAnswering(t, g)
		t.Logf("after SIGCONT the gadget answered after %s", d.Round(time.Millisecond))
		c.syncJSON(t)
		for name, size := range map[string]int64{"stall.bin": 30<<20 + 11, "cut.bin": 30<<20 + 7, "up20.bin": 20 << 20,
			"a.txt": 9, "sub/b.bin": 700<<10 + 1} {
			w := want("desk/"+name, size)
			if name == "a.txt" {
				w = want("desk/a2.txt", size)
			}
			if got := storeHash(t, filepath.Join(docs, name)); got != w {
				t.Errorf("%s on the device = %s, want %s", name, got, w)
			}
			if got := c.deskHash(t, name); got != w {
				t.Errorf("%s on the desktop = %s, want %s", name, got, w)
			}
		}
		for name, size := range map[string]int64{"d.bin": 2<<20 + 3, "from-device.bin": 12345, "down20.bin": 20 << 20} {
			if got, w := c.deskHash(t, name), want("umtp/"+name, size); got != w {
				t.Errorf("%s on the desktop = %s, want %s", name, got, w)
			}
		}
		leftovers(t, docs)
	})
}

// partialUpload tells whether an upload of name has begun in dir: umtprd writes into the file
// under its own name (or Cradle's temporary name) as data arrives.
func partialUpload(dir, name string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), strings.TrimSuffix(name, ".bin")) {
			if fi, err := e.Info(); err == nil && fi.Size() > 1<<20 {
				return true
			}
		}
	}
	return false
}

// leftovers fails the test when a partial upload stays in dir under any name.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), ".cradle-") || strings.Contains(e.Name(), "partial") {
			t.Errorf("a partial upload stays on the device: %s", e.Name())
		}
	}
	t.Logf("the device's Docs folder: %s", strings.Join(names, " "))
}
