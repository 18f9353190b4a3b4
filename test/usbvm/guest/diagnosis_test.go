//go:build usbvmguest

package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/usb"
)

// runHelper is the second process of the diagnosis tests.
//
//	hold: open QEMU's device, print "held", keep it until stdin closes.
//	open: try to open it, print the outcome on one line: "ok", or "err <kind> <message>".
func runHelper(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var found *usb.Found
	fs, err := usb.Scan(ctx)
	if err != nil {
		fmt.Printf("err scan %v\n", err)
		return 1
	}
	for i := range fs {
		if fs[i].Vendor == 0x46f4 {
			found = &fs[i]
		}
	}
	if found == nil {
		fmt.Println("err scan QEMU's device not found")
		return 1
	}
	tr, err := usb.OpenTransport(ctx, *found, "")
	switch mode {
	case "hold":
		if err != nil {
			fmt.Printf("err open %v\n", err)
			return 1
		}
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin)
		tr.Close()
		return 0
	case "open":
		if err != nil {
			kind := "other"
			switch {
			case errors.Is(err, device.ErrPermission):
				kind = "permission"
			case errors.Is(err, device.ErrBusy):
				kind = "busy"
			}
			fmt.Printf("err %s %s\n", kind, strings.ReplaceAll(err.Error(), "\n", "\\n"))
			return 0
		}
		tr.Close()
		fmt.Println("ok")
		return 0
	}
	fmt.Printf("err unknown helper mode %q\n", mode)
	return 2
}

// TestDiagnosis checks the messages a user gets when another program holds the device and when
// they lack permission on its node, with a real second process each time.
func TestDiagnosis(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	found := findQEMU(t, 10*time.Second)

	t.Run("Busy", func(t *testing.T) {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), helperEnv+"=hold")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer stdin.Close()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) != "held" {
			t.Fatalf("helper says %q (%v), want held", line, err)
		}
		_, err = usb.OpenTransport(context.Background(), found, "")
		if !errors.Is(err, device.ErrBusy) {
			t.Fatalf("OpenTransport while another process holds the device = %v, want ErrBusy", err)
		}
		comm := filepath.Base(self)
		if len(comm) > 15 {
			comm = comm[:15] // the kernel's command name is 15 bytes at most
		}
		for _, want := range []string{found.Node, comm, fmt.Sprintf("pid %d", cmd.Process.Pid), "kill"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("busy message %q does not mention %q", err, want)
			}
		}
		t.Logf("busy: %v", err)
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
		tr, err := usb.OpenTransport(context.Background(), found, "")
		if err != nil {
			t.Fatalf("OpenTransport after the other process let go: %v", err)
		}
		tr.Close()
	})

	t.Run("Permission", func(t *testing.T) {
		// The node is root's, mode 0664 (devtmpfs): another user may read but not write it.
		run := func() string {
			t.Helper()
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), helperEnv+"=open")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper as uid 65534: %v (%s)", err, out)
			}
			return strings.TrimSpace(string(out))
		}
		out := run()
		if !strings.HasPrefix(out, "err permission ") {
			t.Fatalf("OpenTransport as uid 65534 = %q, want a permission diagnosis", out)
		}
		for _, want := range []string{found.Node, "owned by root:root", "sudo install -m 644 assets/69-cradle-mtp.rules /etc/udev/rules.d/69-cradle-mtp.rules", "udevadm control --reload-rules", "plug it in again"} {
			if !strings.Contains(out, want) {
				t.Errorf("permission message %q does not mention %q", out, want)
			}
		}
		t.Logf("permission: %s", out)
		// The cradle command names a copy of the rule in its config folder, which exists: the
		// printed command works as is.
		cradlePermission(t)
		// Granting access the way the udev rule's uaccess would (here: the mode) makes it work.
		if err := os.Chmod(found.Node, 0o666); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(found.Node, 0o664)
		if out := run(); out != "ok" {
			t.Errorf("OpenTransport as uid 65534 with access = %q, want ok", out)
		}
	})
}

// cradlePermission runs `cradle devices --json` as a user who may not open the device: the device
// is listed with a problem whose `sudo install` names the udev rule in the user's config folder,
// which holds the rule Cradle ships.
func cradlePermission(t *testing.T) {
	t.Helper()
	// (Not t.TempDir: its parent folder is root's alone.)
	home, err := os.MkdirTemp("", "cradle-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(home, "config")
	cmd := exec.Command(CradleBinary, "--config", config, "devices", "--json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cradle devices as uid 65534: %v; stderr:\n%s", err, stderr.String())
	}
	var ds []deviceJSON
	if err := json.Unmarshal(out, &ds); err != nil || len(ds) != 1 {
		t.Fatalf("cradle devices --json as uid 65534 printed %s (%v), want QEMU's device with a problem", out, err)
	}
	rule := filepath.Join(config, usb.RuleName)
	want := "sudo install -m 644 " + rule + " /etc/udev/rules.d/" + usb.RuleName
	if !strings.Contains(ds[0].Problem, want) {
		t.Errorf("cradle's permission problem %q does not say %q", ds[0].Problem, want)
	}
	if b, err := os.ReadFile(rule); err != nil || string(b) != assets.UdevRule {
		t.Errorf("%s, which the message installs, holds %q, %v; want the rule Cradle ships", rule, b, err)
	}
	t.Logf("cradle devices as uid 65534: %s", ds[0].Problem)
}
