package usbvm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// uMTP-Responder (Debian's umtp-responder) as a real USB gadget in the guest: a configfs gadget
// with a FunctionFS function that umtprd serves, bound to dummy_hcd, whose host side is the
// guest's own USB bus, where Cradle and libmtp open it through libusb like any phone. Guest code
// only (it loads kernel modules and mounts file systems).

// UMTPStore is the folder umtprd serves as its storage "Storage".
const UMTPStore = "/store"

// UMTP's USB identity (umtprd's defaults: Linux Foundation, PTP gadget).
const (
	UMTPVendor  = 0x1d6b
	UMTPProduct = 0x0100
	UMTPSerial  = "UMTP0001"
)

const (
	umtpFFS   = "/dev/ffs-mtp"
	gadgetDir = "/sys/kernel/config/usb_gadget/g1"
	umtpLog   = "/tmp/umtprd.log"
)

// umtpConf is umtprd's configuration: one storage.
const umtpConf = `loop_on_disconnect 1
storage "/store" "Storage" "rw"
manufacturer "Viveris Technologies"
product "uMTP gadget"
serial "UMTP0001"
firmware_version "1.3.10"
interface "MTP"
usb_vendor_id 0x1D6B
usb_product_id 0x0100
usb_class 0x6
usb_subclass 0x1
usb_protocol 0x1
usb_dev_version 0x3008
usb_functionfs_mode 0x1
usb_dev_path "/dev/ffs-mtp/ep0"
usb_epin_path "/dev/ffs-mtp/ep1"
usb_epout_path "/dev/ffs-mtp/ep2"
usb_epint_path "/dev/ffs-mtp/ep3"
usb_max_packet_size 0x200
`

// Gadget is uMTP-Responder running behind dummy_hcd.
type Gadget struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when this umtprd process has exited
	udc    string
}

func sh(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartUMTP loads the gadget modules, builds the gadget, starts umtprd and plugs the gadget in:
// it enumerates on the guest's bus about half a second later.
func StartUMTP() (*Gadget, error) {
	for _, m := range GadgetModules {
		if out, err := exec.Command("insmod", "/lib/modules/"+m+".ko").CombinedOutput(); err != nil && !strings.Contains(string(out), "exists") {
			return nil, fmt.Errorf("insmod %s: %w: %s", m, err, out)
		}
	}
	for _, d := range []string{UMTPStore, "/etc/umtprd", umtpFFS} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile("/etc/umtprd/umtprd.conf", []byte(umtpConf), 0o644); err != nil {
		return nil, err
	}
	if _, err := sh(`mount -t configfs none /sys/kernel/config 2>/dev/null || true
		set -e
		mkdir -p ` + gadgetDir + ` && cd ` + gadgetDir + `
		echo 0x1d6b > idVendor && echo 0x0100 > idProduct && echo 0x0200 > bcdUSB
		mkdir -p strings/0x409 && echo ` + UMTPSerial + ` > strings/0x409/serialnumber
		echo "Viveris Technologies" > strings/0x409/manufacturer && echo "uMTP gadget" > strings/0x409/product
		mkdir -p configs/c.1/strings/0x409 && echo MTP > configs/c.1/strings/0x409/configuration
		echo 120 > configs/c.1/MaxPower
		mkdir -p functions/ffs.mtp && ln -s functions/ffs.mtp configs/c.1/
		mount -t functionfs mtp ` + umtpFFS); err != nil {
		return nil, err
	}
	g := &Gadget{}
	if err := g.start(); err != nil {
		return nil, err
	}
	udc, err := sh("ls /sys/class/udc | head -n1")
	if err != nil || udc == "" {
		g.Stop()
		return nil, fmt.Errorf("no UDC (dummy_hcd): %v", err)
	}
	g.udc = udc
	if err := g.Plug(); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

// start runs umtprd (its output in /tmp/umtprd.log) and waits for its endpoints.
func (g *Gadget) start() error {
	log, err := os.Create(umtpLog)
	if err != nil {
		return err
	}
	g.cmd = exec.Command(UMTPBinary)
	g.cmd.Stdout, g.cmd.Stderr = log, log
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("start umtprd: %w", err)
	}
	exited := make(chan struct{})
	g.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(g.cmd)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(umtpFFS + "/ep3"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("umtprd did not open its endpoints within 20s")
		}
	}
}

// Restart stops umtprd and starts it again, as a phone restarts its MTP service when it is
// plugged in again (umtprd 1.3.10 does not answer again after an unbind in the middle of a
// transfer). Unplug the gadget first.
func (g *Gadget) Restart() error {
	g.cmd.Process.Kill()
	<-g.exited
	// FunctionFS removes the endpoint files once the old daemon's ep0 is closed.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(umtpFFS + "/ep3"); err != nil {
			break
		}
	}
	if err := g.start(); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // the new daemon has written its descriptors
	return nil
}

// Plug binds the gadget to the UDC; Unplug unbinds it (the device leaves the bus).
func (g *Gadget) Plug() error {
	_, err := sh("echo " + g.udc + " > " + gadgetDir + "/UDC")
	return err
}

// Unplug unbinds the gadget from the UDC: the device leaves the bus.
func (g *Gadget) Unplug() { sh("echo > " + gadgetDir + "/UDC") }

// Exited tells whether umtprd has exited (it does when it cannot set its gadget up again).
func (g *Gadget) Exited() bool {
	select {
	case <-g.exited:
		return true
	default:
		return false
	}
}

// Signal sends umtprd a signal (SIGSTOP: it stops answering; SIGCONT: it goes on).
func (g *Gadget) Signal(s syscall.Signal) error { return g.cmd.Process.Signal(s) }

// Log returns what umtprd printed.
func (g *Gadget) Log() string {
	b, _ := os.ReadFile(umtpLog)
	return string(b)
}

// Stop unplugs the gadget and stops umtprd.
func (g *Gadget) Stop() {
	g.Unplug()
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Kill()
		<-g.exited
	}
}
