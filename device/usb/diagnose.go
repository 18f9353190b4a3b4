package usb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/cradle-sync/cradle/device"
)

// RuleName is the file name of Cradle's udev rule (assets/69-cradle-mtp.rules), which tags MTP
// devices with uaccess so the user at the seat may open them.
const RuleName = "69-cradle-mtp.rules"

// ruleDir is where udev reads local rules (a variable for tests).
var ruleDir = "/etc/udev/rules.d"

// permissionError is the diagnosis for a device node this user may not open. rule is the path of
// Cradle's copy of the udev rule to quote in the commands.
func permissionError(label, node, rule string, cause error) error {
	owner := ""
	if fi, err := os.Stat(node); err == nil {
		owner = "; it is " + describeOwner(fi)
	}
	if rule == "" {
		rule = "assets/" + RuleName
	}
	installed := filepath.Join(ruleDir, RuleName)
	var what string
	if _, err := os.Stat(installed); err == nil {
		what = fmt.Sprintf("Cradle's udev rule is installed (%s) but did not apply to this device: unplug it and plug it in again. "+
			"If that does not help, make sure you are logged in at this computer's screen (the rule gives access to the user of the local session), "+
			"or reload the rules: sudo udevadm control --reload-rules && sudo udevadm trigger --subsystem-match=usb", installed)
	} else {
		what = fmt.Sprintf("Install Cradle's udev rule, which gives the user at the screen access to phones and cameras, then unplug the device and plug it in again:\n"+
			"    sudo install -m 644 %s %s\n"+
			"    sudo udevadm control --reload-rules\n"+
			"    sudo udevadm trigger --subsystem-match=usb", rule, installed)
	}
	msg := fmt.Sprintf("%s: cannot open %s%s (%v). %s", label, node, owner, cause, what)
	return &diagnosis{kind: device.ErrPermission, msg: msg}
}

// describeOwner says who owns a node and its mode: "owned by root:root with mode crw-rw-r--".
func describeOwner(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "mode " + lsMode(fi.Mode())
	}
	return fmt.Sprintf("owned by %s:%s with mode %s", userName(st.Uid), groupName(st.Gid), lsMode(fi.Mode()))
}

// lsMode formats a mode the way ls does: "crw-rw-r--".
func lsMode(m fs.FileMode) string {
	kind := "-"
	switch {
	case m&fs.ModeCharDevice != 0:
		kind = "c"
	case m&fs.ModeDevice != 0:
		kind = "b"
	case m.IsDir():
		kind = "d"
	}
	return kind + m.Perm().String()[1:]
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return strconv.Itoa(int(uid))
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(gid))
}

// checkAccess asks the kernel whether this process may open node for reading and writing
// (access(2), which honours the ACL udev's uaccess tag sets). It returns the system error, nil when
// allowed.
func checkAccess(node string) error {
	return syscall.Access(node, 0x4|0x2) // R_OK|W_OK
}

// diagnosis is an error a user can act on: Is matches its kind (device.ErrPermission, ErrBusy or
// ErrLocked); Error is the full message.
type diagnosis struct {
	kind error
	msg  string
}

func (d *diagnosis) Error() string { return d.kind.Error() + ": " + d.msg }
func (d *diagnosis) Unwrap() error { return d.kind }

// Holder is a process that has a USB device node open.
type Holder struct {
	PID int
	// Name is the process's command name (/proc/PID/comm): gvfsd-mtp, kiod6, ...
	Name string
	// Cmdline is its command line, space-separated.
	Cmdline string
}

// Holders lists the processes other than this one that have node open, by scanning
// /proc/*/fd. Processes of other users whose file descriptors this user may not read are not
// listed; hidden reports whether there were any.
func Holders(node string) (hs []Holder, hidden bool, err error) {
	return holders("/proc", node)
}

func holders(proc, node string) (hs []Holder, hidden bool, err error) {
	want, err := os.Stat(node)
	if err != nil {
		return nil, false, fmt.Errorf("find who holds %s: %w", node, err)
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, false, fmt.Errorf("find who holds %s: %w", node, err)
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				hidden = true
			}
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			p := filepath.Join(fdDir, fd.Name())
			target, err := os.Readlink(p)
			if err != nil {
				continue
			}
			if target != node {
				if !strings.HasPrefix(target, "/") {
					continue // a pipe, a socket
				}
				fi, err := os.Stat(p)
				if err != nil || !os.SameFile(fi, want) {
					continue
				}
			}
			hs = append(hs, Holder{
				PID:     pid,
				Name:    strings.TrimSpace(readSmall(filepath.Join(proc, e.Name(), "comm"))),
				Cmdline: strings.TrimSpace(strings.ReplaceAll(readSmall(filepath.Join(proc, e.Name(), "cmdline")), "\x00", " ")),
			})
			break
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].PID < hs[j].PID })
	return hs, hidden, nil
}

func readSmall(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// releaseHint says how to make a program let go of an MTP device.
func releaseHint(h Holder) string {
	name := h.Name
	switch {
	case name == "gvfsd-mtp":
		return "GNOME's file manager has the device mounted: unmount it in Files, or run `gio mount -s mtp`"
	case name == "gvfsd-gphoto2" || name == "gvfs-gphoto2-vo":
		return "GNOME's file manager has the device mounted as a camera: unmount it in Files, or run `gio mount -s gphoto2`"
	case strings.HasPrefix(name, "kiod") || strings.Contains(name, "kio_mtp") || strings.Contains(name, "kio-mtp") || strings.Contains(h.Cmdline, "kio_mtp"):
		return "KDE's MTP service has the device open: close Dolphin windows that show it, or run `kquitapp6 kiod6` (`kquitapp5 kiod5` on Plasma 5)"
	case name == "jmtpfs" || name == "simple-mtpfs" || name == "go-mtpfs" || name == "aft-mtp-mount" || name == "mtpfs":
		return fmt.Sprintf("%s has the device mounted as a folder: unmount it with `fusermount -u MOUNTPOINT` (see `mount | grep %s`)", name, name)
	case name == "cradle":
		return "another Cradle is using the device: quit it"
	case strings.HasPrefix(name, "mtp-"):
		return fmt.Sprintf("libmtp's %s is running: wait for it to finish or stop it with `kill %d`", name, h.PID)
	case name == "gphoto2" || name == "shotwell" || name == "gthumb" || name == "digikam" || name == "rhythmbox" || name == "clementine" || name == "strawberry" || name == "gnome-photos":
		return fmt.Sprintf("quit %s", name)
	}
	return fmt.Sprintf("quit that program, or stop it with `kill %d`", h.PID)
}

// busyError is the diagnosis for a device another program holds: it names the programs found
// holding node and says how to release each.
func busyError(label, node string, hs []Holder, hidden bool, cause error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is in use by another program (%v). ", label, cause)
	switch {
	case len(hs) > 0:
		for i, h := range hs {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s (pid %d) has %s open: %s.", h.Name, h.PID, node, releaseHint(h))
		}
	case hidden:
		fmt.Fprintf(&b, "A program of another user holds %s; find it with `sudo fuser -v %s` and quit it.", node, node)
	default:
		fmt.Fprintf(&b, "No program has %s open now, so a driver may hold the interface, or the program just let go.", node)
	}
	b.WriteString(" Cradle connects by itself once the device is free.")
	return &diagnosis{kind: device.ErrBusy, msg: b.String()}
}

// lockedError is the diagnosis for a phone that offers no storage (locked) or no MTP interface
// (charging only, or USB debugging only).
func lockedError(label string, chargingOnly bool) error {
	if chargingOnly {
		return &diagnosis{kind: device.ErrLocked, msg: label + " is connected for charging only: unlock the phone, " +
			`tap the "USB" notification and choose "File transfer"`}
	}
	return &diagnosis{kind: device.ErrLocked, msg: label + " shows no storage: unlock the phone " +
		`(and, if it asks, allow access to phone data or tap "Trust"); if it stays empty, tap the "USB" notification and choose "File transfer"`}
}
