package usb

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/gousb"

	"github.com/cradle-sync/cradle/device"
)

// accessHelperEnv makes the test binary, run again as another user, check access to the file it
// names and print the outcome.
const accessHelperEnv = "CRADLE_USB_ACCESS_HELPER"

func TestMain(m *testing.M) {
	if p := os.Getenv(accessHelperEnv); p != "" {
		if err := checkAccess(p); err != nil {
			fmt.Printf("denied %v\n", err)
		} else {
			fmt.Println("allowed")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHolders finds a real process that holds a file open, and leaves this process out.
func TestHolders(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hs, _, err := Holders(node)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 0 {
		t.Fatalf("Holders(%s) with only this process holding it = %+v, want none", node, hs)
	}
	cmd := exec.Command("sleep", "60")
	cmd.Stdin = f // the child inherits the open file as its stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	hs, _, err = Holders(node)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].PID != cmd.Process.Pid || hs[0].Name != "sleep" || hs[0].Cmdline != "sleep 60" {
		t.Fatalf("Holders(%s) = %+v, want sleep (pid %d)", node, hs, cmd.Process.Pid)
	}
	// Through another path to the same file (a symbolic link), the same process is found.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(node, link); err != nil {
		t.Fatal(err)
	}
	if hs2, _, err := Holders(link); err != nil || len(hs2) != 1 || hs2[0].PID != cmd.Process.Pid {
		t.Errorf("Holders(%s) = %+v, %v, want the same sleep", link, hs2, err)
	}
	if _, _, err := Holders(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Holders(missing node) = nil error, want one")
	}
}

func TestBusyError(t *testing.T) {
	node := "/dev/bus/usb/003/009"
	cause := errors.New("libusb: device or resource busy [code -6]")
	for _, c := range []struct {
		name   string
		hs     []Holder
		hidden bool
		want   []string
	}{
		{"gvfs", []Holder{{PID: 2211, Name: "gvfsd-mtp"}}, false, []string{"gvfsd-mtp (pid 2211) has " + node + " open", "gio mount -s mtp"}},
		{"gphoto2 backend", []Holder{{PID: 17, Name: "gvfsd-gphoto2"}}, false, []string{"gio mount -s gphoto2"}},
		{"KDE", []Holder{{PID: 900, Name: "kiod6"}}, false, []string{"kiod6 (pid 900)", "kquitapp6 kiod6"}},
		{"fuse", []Holder{{PID: 5, Name: "jmtpfs"}}, false, []string{"fusermount -u", "mount | grep jmtpfs"}},
		{"libmtp tool", []Holder{{PID: 77, Name: "mtp-files"}}, false, []string{"kill 77"}},
		{"unknown", []Holder{{PID: 4242, Name: "frobnicate"}}, false, []string{"frobnicate (pid 4242)", "kill 4242"}},
		{"two", []Holder{{PID: 1, Name: "gvfsd-mtp"}, {PID: 2, Name: "cradle"}}, false, []string{"gio mount -s mtp", "another Cradle"}},
		{"other user", nil, true, []string{"sudo fuser -v " + node}},
		{"nobody", nil, false, []string{"No program has " + node + " open"}},
	} {
		err := busyError("Google Pixel 7 (18d1:4ee2)", node, c.hs, c.hidden, cause)
		if !errors.Is(err, device.ErrBusy) {
			t.Errorf("busyError(%s) = %v, want it to wrap ErrBusy", c.name, err)
		}
		msg := err.Error()
		for _, w := range append(c.want, "Google Pixel 7 (18d1:4ee2) is in use", "connects by itself") {
			if !strings.Contains(msg, w) {
				t.Errorf("busyError(%s) = %q, want it to mention %q", c.name, msg, w)
			}
		}
	}
}

func TestLockedError(t *testing.T) {
	for _, charging := range []bool{false, true} {
		err := lockedError("Google Pixel 7 (18d1:4ee2)", charging)
		if !errors.Is(err, device.ErrLocked) {
			t.Errorf("lockedError(%v) = %v, want it to wrap ErrLocked", charging, err)
		}
		for _, w := range []string{"Google Pixel 7", "unlock the phone", `"File transfer"`} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("lockedError(%v) = %q, want it to mention %q", charging, err, w)
			}
		}
	}
}

// TestCheckAccess checks access to a real file of mode 000 as a user other than root: directly
// when the test runs as such a user, else by running the test binary again as nobody.
func TestCheckAccess(t *testing.T) {
	dir, err := os.MkdirTemp("", "cradle-usb-access-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	open := filepath.Join(dir, "open")
	for p, mode := range map[string]os.FileMode{locked: 0, open: 0o666} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	check := func(p string) string {
		if os.Geteuid() != 0 {
			if err := checkAccess(p); err != nil {
				return "denied " + err.Error()
			}
			return "allowed"
		}
		// As root every access is allowed: ask as nobody, with a copy of this binary nobody may run.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "usb.test")
		if _, err := os.Stat(bin); err != nil {
			if err := copyFile(bin, self); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), accessHelperEnv+"="+p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run the access check as nobody: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := check(locked); !strings.HasPrefix(got, "denied ") || !strings.Contains(got, "permission denied") {
		t.Errorf("checkAccess(mode 000) = %q, want denied: permission denied", got)
	}
	if got := check(open); got != "allowed" {
		t.Errorf("checkAccess(mode 666) = %q, want allowed", got)
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestPermissionError(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "002")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(node, 0o640); err != nil {
		t.Fatal(err)
	}
	old := ruleDir
	ruleDir = filepath.Join(dir, "rules.d")
	defer func() { ruleDir = old }()
	cause := syscall.EACCES
	label := "QEMU QEMU filesharing (46f4:0004)"

	err := permissionError(label, node, "/home/ann/.config/cradle/69-cradle-mtp.rules", cause)
	if !errors.Is(err, device.ErrPermission) {
		t.Fatalf("permissionError = %v, want it to wrap ErrPermission", err)
	}
	for _, w := range []string{
		label, "cannot open " + node, "with mode -rw-r-----", "permission denied",
		"sudo install -m 644 /home/ann/.config/cradle/69-cradle-mtp.rules " + filepath.Join(ruleDir, RuleName),
		"sudo udevadm control --reload-rules", "sudo udevadm trigger --subsystem-match=usb", "plug it in again",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("permissionError = %q, want it to mention %q", err, w)
		}
	}
	if got := permissionError(label, node, "", cause).Error(); !strings.Contains(got, "sudo install -m 644 assets/"+RuleName) {
		t.Errorf("permissionError without a rule path = %q, want it to name assets/%s", got, RuleName)
	}

	// Once the rule is installed, the advice changes: re-plug, local session.
	if err := os.MkdirAll(ruleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ruleDir, RuleName), []byte("# rule\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := permissionError(label, node, "", cause).Error()
	for _, w := range []string{"is installed", "plug it in again", "logged in at this computer's screen"} {
		if !strings.Contains(got, w) {
			t.Errorf("permissionError with the rule installed = %q, want it to mention %q", got, w)
		}
	}
	if strings.Contains(got, "sudo install") {
		t.Errorf("permissionError with the rule installed = %q, want no install command", got)
	}
}

func TestLibusbErr(t *testing.T) {
	// gousb formats a failed claim with %v; the libusb error must still be recognised.
	err := fmt.Errorf("failed to claim interface 0 on vid=18d1: %v", gousb.ErrorBusy)
	if got := libusbErr(err); !errors.Is(got, gousb.ErrorBusy) {
		t.Errorf("libusbErr(%q) = %v, want it to wrap the busy error", err, got)
	}
	if got := libusbErr(errors.New("something else")); errors.Is(got, gousb.ErrorBusy) {
		t.Errorf("libusbErr(something else) = %v, want no busy error", got)
	}
	if libusbErr(nil) != nil {
		t.Errorf("libusbErr(nil) != nil")
	}
}
