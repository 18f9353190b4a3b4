package usbvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// USBModules are the kernel modules the guest loads, in this order: Debian's kernel builds its USB
// stack as modules.
var USBModules = []string{"usb-common", "usbcore", "xhci-hcd", "xhci-pci", "ehci-hcd", "ehci-pci"}

// GadgetModules are the kernel modules of a USB gadget on the guest's own dummy host controller
// (dummy_hcd is both the gadget's controller and the host controller Cradle sees), for
// uMTP-Responder: the guest loads them when it starts the gadget.
var GadgetModules = []string{"configfs", "udc-core", "libcomposite", "usb_f_fs", "dummy_hcd"}

// UMTPBinary is uMTP-Responder's daemon (Debian's umtp-responder).
const UMTPBinary = "/usr/bin/umtprd"

// MTPTools are libmtp's command-line tools the benchmark runs in the guest as the baseline.
var MTPTools = []string{"/usr/bin/mtp-getfile", "/usr/bin/mtp-sendfile", "/usr/bin/mtp-detect", "/usr/bin/mtp-files"}

// Kernel is the guest kernel: the host's installed Debian kernel package (linux-image-amd64),
// whatever kernel the host itself runs.
type Kernel struct {
	Version string // 6.1.0-56-amd64
	Image   string // /boot/vmlinuz-6.1.0-56-amd64
}

// FindKernel picks the newest /boot/vmlinuz-* that has a module tree under /lib/modules.
func FindKernel() (Kernel, error) {
	images, err := filepath.Glob("/boot/vmlinuz-*")
	if err != nil {
		return Kernel{}, err
	}
	var ks []Kernel
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		if fi, err := os.Stat(filepath.Join("/lib/modules", v, "kernel")); err == nil && fi.IsDir() {
			ks = append(ks, Kernel{Version: v, Image: img})
		}
	}
	if len(ks) == 0 {
		return Kernel{}, errors.New("no guest kernel: /boot/vmlinuz-* with /lib/modules/<version> is missing; run `make deps-usbvm` (installs linux-image-amd64)")
	}
	sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i].Version, ks[j].Version) })
	return ks[len(ks)-1], nil
}

var numRE = regexp.MustCompile(`\d+|\D+`)

// versionLess compares kernel versions piecewise, numbers as numbers.
func versionLess(a, b string) bool {
	pa, pb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := atoiOK(pa[i])
		nb, eb := atoiOK(pb[i])
		if ea && eb {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func atoiOK(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<40 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, s != ""
}

// ModulePath returns the .ko file of a module of the kernel (modinfo -k VER -n NAME).
func (k Kernel) ModulePath(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "modinfo", "-k", k.Version, "-n", name).Output()
	if err != nil {
		return "", fmt.Errorf("find kernel module %s for %s: %w (is kmod installed? `make deps-usbvm`)", name, k.Version, cmdErr(err))
	}
	p := strings.TrimSpace(string(out))
	if strings.HasSuffix(p, ".ko.xz") || strings.HasSuffix(p, ".ko.zst") || strings.HasSuffix(p, ".ko.gz") {
		return "", fmt.Errorf("kernel module %s is compressed (%s): busybox insmod loads plain .ko only", name, p)
	}
	return p, nil
}

func cmdErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// SharedLibraries returns the shared libraries a dynamically linked host binary needs, with the
// program interpreter, as ldd resolves them. A static binary needs none.
func SharedLibraries(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") || strings.Contains(string(out), "statically linked") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	return parseLdd(string(out))
}

// parseLdd reads ldd's output: "libx.so.1 => /lib/.../libx.so.1 (0x...)", "/lib64/ld-linux...
// (0x...)", "linux-vdso.so.1 (0x...)" (provided by the kernel, skipped).
func parseLdd(out string) ([]string, error) {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "statically linked") {
			continue
		}
		if strings.Contains(line, "=> not found") {
			return nil, fmt.Errorf("shared library missing on the host: %s", line)
		}
		var p string
		if _, after, ok := strings.Cut(line, "=> "); ok {
			p = after
		} else {
			p = line
		}
		if i := strings.Index(p, " ("); i >= 0 {
			p = p[:i]
		}
		if !strings.HasPrefix(p, "/") {
			continue // linux-vdso.so.1
		}
		libs = append(libs, p)
	}
	return libs, nil
}

// AddProgram adds the host program src as guest path dst with every shared library it needs.
func (a *Archive) AddProgram(ctx context.Context, dst, src string) error {
	if err := a.File(dst, src); err != nil {
		return err
	}
	libs, err := SharedLibraries(ctx, src)
	if err != nil {
		return err
	}
	for _, l := range libs {
		if a.Has(l) {
			continue
		}
		if err := a.File(l, l); err != nil {
			return err
		}
	}
	return nil
}

// addTree adds every regular file and link below the host folder dir at the same path.
func (a *Archive) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return a.Dir(p)
		case d.Type()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return a.Symlink(p, t)
		default:
			return a.File(p, p)
		}
	})
}

// BaseOptions says what goes into the guest's base image besides busybox and the USB modules.
type BaseOptions struct {
	// Programs maps guest paths to host programs (test binaries built from the project, the
	// cradle binary); their shared libraries come along.
	Programs map[string]string
	// MTPTools adds libmtp's tools with glibc's gconv modules and the C.UTF-8 locale they need.
	MTPTools bool
	// UMTP adds uMTP-Responder (umtprd, and libgcc_s, which glibc loads at run time for
	// pthread_cancel and ldd does not list) and the gadget modules.
	UMTP bool
}

// BaseImage builds the part of the initramfs that does not change between runs: busybox-static
// with its applet links, the kernel's USB modules under /lib/modules, the programs and their
// libraries. Run adds /init and per-run files in a second archive.
func BaseImage(ctx context.Context, k Kernel, opt BaseOptions) (*Archive, error) {
	a := NewArchive()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, errors.New("busybox is missing: run `make deps-usbvm` (installs busybox-static)")
	}
	if libs, err := SharedLibraries(ctx, busybox); err != nil || len(libs) > 0 {
		return nil, fmt.Errorf("%s is not static (libs %v, %v): install busybox-static", busybox, libs, err)
	}
	if err := a.File("/bin/busybox", busybox); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		p := "/" + applet
		if p == "/bin/busybox" || a.Has(p) {
			continue
		}
		if err := a.Symlink(p, "/bin/busybox"); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/mnt", "/etc", "/root"} {
		if err := a.Dir(d); err != nil {
			return nil, err
		}
	}
	if err := a.Bytes("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return nil, err
	}
	if err := a.Bytes("/etc/group", []byte("root:x:0:\n"), 0o644); err != nil {
		return nil, err
	}
	for _, m := range USBModules {
		p, err := k.ModulePath(ctx, m)
		if err != nil {
			return nil, err
		}
		if err := a.File("/lib/modules/"+m+".ko", p); err != nil {
			return nil, err
		}
	}
	progs := make([]string, 0, len(opt.Programs))
	for dst := range opt.Programs {
		progs = append(progs, dst)
	}
	sort.Strings(progs)
	for _, dst := range progs {
		if err := a.AddProgram(ctx, dst, opt.Programs[dst]); err != nil {
			return nil, err
		}
	}
	if opt.UMTP {
		if err := addUMTP(ctx, a, k); err != nil {
			return nil, err
		}
	}
	if opt.MTPTools {
		for _, t := range MTPTools {
			if _, err := os.Stat(t); err != nil {
				return nil, fmt.Errorf("libmtp tool %s is missing: run `make deps-usbvm` (installs mtp-tools)", t)
			}
			if err := a.AddProgram(ctx, t, t); err != nil {
				return nil, err
			}
		}
		if err := addGconvAndLocale(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// addUMTP adds uMTP-Responder, the library it loads at run time and the gadget modules.
func addUMTP(ctx context.Context, a *Archive, k Kernel) error {
	if _, err := os.Stat(UMTPBinary); err != nil {
		return fmt.Errorf("uMTP-Responder (%s) is missing: run `make deps-usbvm` (installs umtp-responder)", UMTPBinary)
	}
	if err := a.AddProgram(ctx, UMTPBinary, UMTPBinary); err != nil {
		return err
	}
	gcc, _ := filepath.Glob("/lib/*-linux-gnu/libgcc_s.so.1")
	if len(gcc) == 0 {
		gcc, _ = filepath.Glob("/usr/lib/*-linux-gnu/libgcc_s.so.1")
	}
	if len(gcc) == 0 {
		return errors.New("libgcc_s.so.1 is missing (umtprd aborts without it on a cancel request)")
	}
	if !a.Has(gcc[0]) {
		if err := a.File(gcc[0], gcc[0]); err != nil {
			return err
		}
	}
	for _, m := range GadgetModules {
		p, err := k.ModulePath(ctx, m)
		if err != nil {
			return err
		}
		if err := a.File("/lib/modules/"+m+".ko", p); err != nil {
			return err
		}
	}
	return nil
}

// addGconvAndLocale adds what libmtp's iconv calls and LANG=C.UTF-8 need from glibc.
func addGconvAndLocale(a *Archive) error {
	gconv, err := filepath.Glob("/usr/lib/*-linux-gnu/gconv")
	if err != nil || len(gconv) == 0 {
		return errors.New("glibc's gconv folder (/usr/lib/<triplet>/gconv) is missing")
	}
	dir := gconv[0]
	var files []string
	for _, pat := range []string{"gconv-modules*", "UNICODE.so", "UTF-16.so", "UTF-32.so", "UTF-7.so"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	if len(files) < 4 {
		return fmt.Errorf("glibc's gconv modules are incomplete in %s: found %v", dir, files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if err := a.addTree(f); err != nil {
				return err
			}
			continue
		}
		if err := a.File(f, f); err != nil {
			return err
		}
	}
	loc := "/usr/lib/locale/C.utf8"
	if _, err := os.Stat(loc); err != nil {
		return fmt.Errorf("the C.UTF-8 locale is missing (%s): install libc-bin", loc)
	}
	return a.addTree(loc)
}

// InitScript is the guest's /init: it mounts the kernel file systems, loads the USB modules,
// prepares the control port, runs command with env, prints the exit marker and powers off.
func InitScript(command string, env map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n")
	b.WriteString("mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n")
	// /tmp holds the tests' desktop folders: three quarters of the guest's memory, not the
	// default half (TestTortureUnplug keeps up to about 530 MB of uploads there).
	b.WriteString("mount -t tmpfs -o size=75% tmpfs /tmp\nmount -t tmpfs tmpfs /run\n")
	b.WriteString("echo 1 > /proc/sys/kernel/printk\n") // keep kernel chatter off the console
	for _, m := range USBModules {
		fmt.Fprintf(&b, "insmod /lib/modules/%s.ko || echo 'usbvm: insmod %s failed'\n", m, m)
	}
	fmt.Fprintf(&b, "stty -F %s raw -echo -icrnl -opost\n", GuestCtlDevice)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	b.WriteString("cd /tmp\n")
	fmt.Fprintf(&b, "echo %s\n", BeginMarker)
	fmt.Fprintf(&b, "%s\nrc=$?\n", command)
	fmt.Fprintf(&b, "echo \"%s$rc\"\n", ExitMarker)
	b.WriteString("sync\npoweroff -f\n")
	return b.Bytes()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
