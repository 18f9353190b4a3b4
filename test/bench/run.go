package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bench holds what the parts share: the built binary, the trees, the report.
type bench struct {
	c   *config
	rep *report
	bin string // the cradle binary
	// usbText is usbbench's output when P3 measured it in this run (-usb): P7 reads its listing
	// table from it instead of docs/performance-usb.md.
	usbText string

	big     string // the large tree (c.files files)
	bigSpec treeSpec
	// bigPart is the large tree partnered with an emulated device and synced once (by P5's
	// first run, or prepared by P1 or P2 when P5 does not run).
	bigPart *partnership
	// first100k is the median first sync of the large tree (P5), which P4 compares with its 10k.
	first100k time.Duration
}

// prepare builds the cradle binary and the large tree.
func (b *bench) prepare(ctx context.Context) error {
	b.bin = filepath.Join(b.c.work, "bin", "cradle")
	t0 := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
	build.Dir = b.c.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build cradle: %v\n%s", err, out)
	}
	b.c.logf("built %s in %s", b.bin, time.Since(t0).Round(time.Millisecond))
	if b.c.want("P1") || b.c.want("P2") || b.c.want("P5") {
		b.bigSpec = treeSpec{files: b.c.files}
		b.big = filepath.Join(b.c.work, "trees", fmt.Sprintf("big-%d", b.c.files))
		t0 := time.Now()
		if err := b.bigSpec.build(b.big); err != nil {
			return fmt.Errorf("build the %d-file tree: %w", b.c.files, err)
		}
		b.c.logf("built a %d-file tree in %s", b.c.files, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// proc is one finished run of a program.
type proc struct {
	wall   time.Duration
	maxRSS int64 // bytes, from getrusage
	// peakAnon and peakFile split the highest resident size seen while sampling (sample runs
	// only) into anonymous memory (the Go heap, stacks) and file-backed pages (the binary, the
	// memory-mapped handle file).
	peakRSS, peakAnon, peakFile int64
	stdout, stderr              string
}

// runOpts tune one run.
type runOpts struct {
	// sample reads /proc/PID/smaps_rollup every 20 ms to split the peak resident memory.
	sample bool
}

// exec runs a program to the end and measures it.
func (b *bench) exec(ctx context.Context, o runOpts, name string, args ...string) (proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "CRADLE_NO_HARDWARE=1", "LANG=C.UTF-8")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return proc{}, fmt.Errorf("start %s: %w", name, err)
	}
	var (
		wg   sync.WaitGroup
		peak memSample
		done = make(chan struct{})
	)
	if o.sample {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peak = samplePeak(cmd.Process.Pid, done)
		}()
	}
	err := cmd.Wait()
	p := proc{wall: time.Since(t0), stdout: out.String(), stderr: errb.String()}
	close(done)
	wg.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		p.maxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	p.peakRSS, p.peakAnon, p.peakFile = peak.rss, peak.anon, peak.rss-peak.anon
	if err != nil {
		return p, fmt.Errorf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, p.stdout, p.stderr)
	}
	return p, nil
}

// memSample is one reading of a process's resident memory, in bytes.
type memSample struct{ rss, anon int64 }

// samplePeak reads the process's smaps_rollup until done and returns the reading with the
// highest resident size.
func samplePeak(pid int, done <-chan struct{}) memSample {
	var best memSample
	path := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			s := parseRollup(b)
			if s.rss > best.rss {
				best = s
			}
		}
		select {
		case <-done:
			return best
		case <-t.C:
		}
	}
}

func parseRollup(b []byte) memSample {
	var s memSample
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			s.rss = kb << 10
		case "Anonymous:":
			s.anon = kb << 10
		}
	}
	return s
}

// partnership is a config folder, an emulated device's folder and a files partnership between
// a desktop folder and the device's Documents folder.
type partnership struct {
	b       *bench
	config  string
	phone   string
	desktop string
	serial  string
}

// partner sets up a new partnership of desktop in the work folder's subfolder name.
func (b *bench) partner(ctx context.Context, name, desktop string) (*partnership, error) {
	dir := filepath.Join(b.c.work, "runs", name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	p := &partnership{b: b, config: filepath.Join(dir, "config"), phone: filepath.Join(dir, "phone"), desktop: desktop}
	if err := os.MkdirAll(p.phone, 0o755); err != nil {
		return nil, err
	}
	r, err := p.cradle(ctx, runOpts{}, "devices", "--json")
	if err != nil {
		return nil, err
	}
	var devs []struct {
		Serial string `json:"serial"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 {
		return nil, fmt.Errorf("cradle devices --json printed %q (%v), want one device", r.stdout, err)
	}
	p.serial = devs[0].Serial
	if _, err := p.cradle(ctx, runOpts{}, "partner", "add", "--name", "bench", "--provider", "files",
		"--device", p.serial, "--desktop", desktop, "--device-path", "Documents"); err != nil {
		return nil, err
	}
	return p, nil
}

// cradle runs the binary with the partnership's config folder and device.
func (p *partnership) cradle(ctx context.Context, o runOpts, args ...string) (proc, error) {
	return p.b.exec(ctx, o, p.b.bin, append([]string{"--config", p.config, "--emulate", p.phone}, args...)...)
}

// devDir is the partnership's folder on the device.
func (p *partnership) devDir() string { return filepath.Join(p.phone, "Documents") }

// sessions is what `cradle sync --json` printed.
type sessions []struct {
	Outcome   string `json:"outcome"`
	Bytes     int64  `json:"bytes"`
	ToDevice  counts `json:"to_device"`
	ToDesktop counts `json:"to_desktop"`
	Errors    []string
}

type counts struct{ Created, Updated, Renamed, Deleted int }

func (c counts) total() int { return c.Created + c.Updated + c.Renamed + c.Deleted }

// syncJSON runs `cradle sync --json` and returns its one session, which must have ended well.
func (p *partnership) syncJSON(ctx context.Context, o runOpts) (proc, sessions, error) {
	r, err := p.cradle(ctx, o, "sync", "--json")
	if err != nil {
		return r, nil, err
	}
	var ss sessions
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil || len(ss) != 1 {
		return r, nil, fmt.Errorf("cradle sync --json printed %q (%v), want one session", r.stdout, err)
	}
	if ss[0].Outcome != "ok" {
		return r, nil, fmt.Errorf("sync outcome %q (%v), want ok", ss[0].Outcome, ss[0].Errors)
	}
	return r, ss, nil
}

// sync runs `cradle sync --json` and checks that it finished with the given counts of items
// created on the device (-1: any) and nothing else changed when created is 0.
func (p *partnership) sync(ctx context.Context, o runOpts, created int) (proc, error) {
	r, err := p.cradle(ctx, o, "sync", "--json")
	if err != nil {
		return r, err
	}
	var ss sessions
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil || len(ss) != 1 {
		return r, fmt.Errorf("cradle sync --json printed %q (%v), want one session", r.stdout, err)
	}
	s := ss[0]
	if s.Outcome != "ok" {
		return r, fmt.Errorf("sync outcome %q (%v), want ok", s.Outcome, s.Errors)
	}
	if created >= 0 && (s.ToDevice.Created != created || s.ToDevice.total() != created || s.ToDesktop.total() != 0) {
		return r, fmt.Errorf("sync did %+v to the device and %+v to the desktop, want %d created on the device only", s.ToDevice, s.ToDesktop, created)
	}
	return r, nil
}
