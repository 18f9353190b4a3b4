// Command bench runs Cradle's benchmarks against their baselines and writes docs/performance.md
// (issue 9). Every figure is the median of several runs with its baseline measured in the same
// run, alternately, so that the ratio holds on a loaded machine; the report describes the machine
// and the command that reproduces it.
//
//	go run ./test/bench                       # everything, about 15 minutes (make bench)
//	go run ./test/bench -only P1,P4 -out -    # some figures, printed instead of written
//	go run ./test/bench -profile DIR          # also CPU and heap profiles of the in-process parts
//
// The figures:
//
//   - P1: full change detection of an unchanged 100k-file folder (the engine's Detect over the
//     files provider's desktop store and a real handle file) against a bare stat walk of the same
//     tree; and a no-op `cradle sync` of that folder partnered with an emulated device.
//   - P2: one file edited while `cradle watch` runs: time from the write to the new content in the
//     emulated device's folder, in a 1k and a 100k-file partnership.
//   - P3: real USB (QEMU's usb-mtp against libmtp), from docs/performance-usb.md (make bench-usb),
//     or measured now with -usb.
//   - P4: a first `cradle sync` of 10k files of 4 KiB to an emulated device against `cp -r` of the
//     same tree.
//   - P5: a first `cradle sync` of 100k files against `cp -r`, its peak resident memory (getrusage
//     of the child) and the handle file's size per item; the no-op sync's peak; and the idle
//     window against a minimal Fyne window (test/gui's TestWindowMemory).
//   - P6: renaming a 1 GiB folder on the desktop: the bytes the next sync sends.
//   - P7: 1,000 new contacts reaching the phone (in process, the MTP emulator): uploads of the
//     contacts file, bytes and time, against the device's store writing every card through; and
//     listing 10k objects over real USB against libmtp's mtp-files, from docs/performance-usb.md
//     (make bench-usb), or measured now with -usb.
//   - The per-package Go benchmarks (device/mtp, repl, providers/...), medians of -count runs.
//
// Trees are built once per run in a temporary folder (-work to choose it, -keep to keep it), on
// /dev/shm when it is a tmpfs with room (so that the disk does not decide the copies' times).
// Every `cradle` run uses CRADLE_NO_HARDWARE=1, so only the emulated devices are seen.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is what the command line chose.
type config struct {
	root    string // module root
	work    string
	out     string
	runs    int
	pkgRuns int
	files   int
	only    map[string]bool
	profile string
	usb     bool
	keep    bool
	logf    func(format string, args ...any)
}

func (c *config) want(part string) bool { return len(c.only) == 0 || c.only[part] }

// parts are the figures in report order.
var parts = []string{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "pkg"}

func main() {
	var (
		c    config
		only string
	)
	flag.StringVar(&c.out, "out", "docs/performance.md", "where to write the report (relative to the module root); - prints it")
	flag.IntVar(&c.runs, "runs", 5, "runs per figure (the median is reported)")
	flag.IntVar(&c.pkgRuns, "count", 5, "runs of each per-package Go benchmark")
	flag.IntVar(&c.files, "files", 100_000, "files in the large tree (P1, P2, P5)")
	flag.StringVar(&only, "only", "", "comma-separated parts to run: "+strings.Join(parts, ","))
	flag.StringVar(&c.work, "work", "", "folder for the trees and config folders (default: a new temporary folder)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work folder")
	flag.StringVar(&c.profile, "profile", "", "write CPU and heap profiles of the in-process parts to `DIR`")
	flag.BoolVar(&c.usb, "usb", false, "measure P3 now with test/usbvm's usbbench (minutes, QEMU) instead of citing docs/performance-usb.md")
	flag.Parse()
	if only != "" {
		c.only = map[string]bool{}
		for p := range strings.SplitSeq(only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(parts, p) {
				fmt.Fprintf(os.Stderr, "bench: unknown part %q (want %s)\n", p, strings.Join(parts, ","))
				os.Exit(2)
			}
			c.only[p] = true
		}
	}
	if c.runs < 1 || c.pkgRuns < 1 || c.files < 1000 {
		fmt.Fprintln(os.Stderr, "bench: -runs and -count must be at least 1, -files at least 1000")
		os.Exit(2)
	}
	start := time.Now()
	c.logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, &c); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	c.logf("done in %s", time.Since(start).Round(time.Second))
}

func run(ctx context.Context, c *config) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	c.root = root
	if c.work == "" {
		if c.work, err = os.MkdirTemp(tmpfsDir(), "cradle-bench-"); err != nil {
			return err
		}
		if !c.keep {
			defer os.RemoveAll(c.work)
		}
	} else if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	if c.profile != "" {
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return err
		}
	}
	rep := &report{started: time.Now(), args: os.Args[1:]}
	rep.machineStart = describeMachine(ctx, c.work)
	c.logf("machine: %s", rep.machineStart.summary())

	b := &bench{c: c, rep: rep}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	steps := []struct {
		part string
		fn   func(context.Context) error
	}{
		{"P5", b.p5}, // its first sync also sets up P1's and P2's 100k partnership
		{"P1", b.p1},
		{"P2", b.p2},
		{"P4", b.p4},
		{"P6", b.p6},
		{"P3", b.p3},
		{"P7", b.p7}, // after P3, which may measure the USB listing (-usb)
		{"pkg", b.packages},
	}
	for _, s := range steps {
		if !c.want(s.part) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.logf("%s: start", s.part)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.part, err)
		}
	}
	rep.machineEnd = describeMachine(ctx, c.work)
	rep.finished = time.Now()
	text := rep.markdown(c)
	if c.out == "-" {
		_, err := os.Stdout.WriteString(text)
		return err
	}
	out := c.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(c.root, out)
	}
	if err := writeAtomic(out, []byte(text)); err != nil {
		return err
	}
	c.logf("wrote %s", out)
	return nil
}

// tmpfsDir returns /dev/shm when it is a tmpfs with at least 4 GB free (the trees, the device
// copies and the 1 GiB folder of P6 live there at once), else "" (the system's temporary folder).
func tmpfsDir() string {
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		return ""
	}
	if int64(st.Bavail)*st.Bsize < 4e9 {
		return ""
	}
	return "/dev/shm"
}

// writeAtomic writes a file through a temporary file renamed into place.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
