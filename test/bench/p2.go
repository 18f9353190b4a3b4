package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/manager"
)

// P2 goals: one saved file on the device within half a second (issue 16), at 100k files within
// 1.2 times the latency at 1k; a burst of 1,000 files copied in at once syncs as one session.
const (
	goalLatencyRatio = 1.2
	goalLatency      = 500 * time.Millisecond
	burstFiles       = 1000
)

// p2 measures the time from editing one file to its new content on the emulated device while
// `cradle watch` runs, in a small and in the large partnership.
func (b *bench) p2(ctx context.Context) error {
	debounce := manager.DefaultDebounce
	s := &section{id: "P2", title: "one file edited while `cradle watch` runs"}
	s.intro = fmt.Sprintf(`%s runs with the partnership's emulated device attached, after its first
session (on plug-in) has finished and gone quiet. One file of the tree is rewritten in place
(os.WriteFile); the latency is the time from just before the write to the moment the new content
can be read in the emulated device's folder (polled every 2 ms). In between: the desktop folder's
watcher (fsnotify) reports the change, the manager waits for the debounce delay (%s of quiet, at
most %s under a stream of changes), and an incremental session (only the notified handle is
checked) sends the file over MTP. Each trial waits for its session to end and for the echo of its
own writes to go quiet before the next. **Burst**: a folder of %s files copied into the 1,000-file
partnership's folder at once (%s), counting the sessions that carried changes until all of them
are on the device and the watcher is quiet.`,
		"`cradle watch`", fmtDur(debounce), fmtDur(manager.DefaultDebounceMax), thousands(burstFiles), "`cp -r`")
	b.rep.add(s)

	small := treeSpec{files: 1000}
	smallDir := filepath.Join(b.c.work, "trees", "small-1000")
	if err := small.build(smallDir); err != nil {
		return err
	}
	sp, err := b.partner(ctx, "p2-small", smallDir)
	if err != nil {
		return err
	}
	if _, err := sp.sync(ctx, runOpts{}, small.files+small.folders()); err != nil {
		return err
	}
	bp, err := b.ensureBig(ctx)
	if err != nil {
		return err
	}
	lat := map[int]durations{}
	for _, c := range []struct {
		p    *partnership
		spec treeSpec
	}{{sp, small}, {bp, b.bigSpec}} {
		d, err := b.watchLatency(ctx, c.p, c.spec)
		if err != nil {
			return fmt.Errorf("%d files: %w", c.spec.files, err)
		}
		lat[c.spec.files] = d
	}
	ls, lb := lat[small.files].median(), lat[b.bigSpec.files].median()
	for _, n := range []int{small.files, b.bigSpec.files} {
		d := lat[n].median()
		s.rows = append(s.rows, row{
			what:    fmt.Sprintf("one file saved, until on the device, %s files", thousands(n)),
			cradle:  fmtDur(d),
			goal:    "<= " + fmtDur(goalLatency),
			verdict: verdict(d <= goalLatency),
		})
	}
	s.rows = append(s.rows, row{
		what:     fmt.Sprintf("%s files against %s files", thousands(b.bigSpec.files), thousands(small.files)),
		cradle:   fmtDur(lb),
		baseline: fmtDur(ls),
		ratio:    ratio(float64(lb), float64(ls)),
		goal:     fmt.Sprintf("<= %.1fx", goalLatencyRatio),
		verdict:  verdict(float64(lb) <= goalLatencyRatio*float64(ls)),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("%s files: %s; %s files: %s. The debounce delay alone is %s of it.",
			thousands(small.files), lat[small.files].spread(), thousands(b.bigSpec.files), lat[b.bigSpec.files].spread(), fmtDur(debounce)))
	bs, bw, err := b.burst(ctx, sp)
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	s.rows = append(s.rows, row{
		what:    fmt.Sprintf("sessions carrying a burst of %s files copied in at once", thousands(burstFiles)),
		cradle:  fmt.Sprint(medianInt(bs)),
		goal:    "1",
		verdict: verdict(medianInt(bs) == 1),
	})
	s.notes = append(s.notes, fmt.Sprintf("Burst: sessions carrying changes %v over %d runs; from the copy's start to the last file on the device %s.",
		bs, len(bs), bw.spread()))
	s.command = fmt.Sprintf("go run ./test/bench -only P2 -runs %d -files %d -out -", b.c.runs, b.bigSpec.files)
	return nil
}

// watchLatency runs `cradle watch` on p and times c.runs edits.
func (b *bench) watchLatency(ctx context.Context, p *partnership, spec treeSpec) (durations, error) {
	w, err := startWatch(ctx, p)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	// The session on plug-in, then quiet.
	if err := w.waitFinished(1, 10*time.Minute); err != nil {
		return nil, err
	}
	if err := w.waitQuiet(manager.DefaultDebounce+time.Second, 2*time.Minute); err != nil {
		return nil, err
	}
	var out durations
	for i := range b.c.runs {
		k := (i*7919 + 13) % spec.files
		rel := spec.rel(k)
		content := fmt.Appendf(nil, "edit %d of file %d at %d\n", i, k, time.Now().UnixNano())
		before := w.finished()
		t0 := time.Now()
		if err := os.WriteFile(filepath.Join(p.desktop, rel), content, 0o644); err != nil {
			return nil, err
		}
		target := filepath.Join(p.devDir(), rel)
		deadline := t0.Add(2 * time.Minute)
		for {
			got, err := os.ReadFile(target)
			if err == nil && bytes.Equal(got, content) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s did not reach the device within 2 minutes; watch printed:\n%s", rel, w.output())
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(t0)
		out = append(out, d)
		b.c.logf("P2: %d files, edit %d: %s", spec.files, i+1, fmtDur(d))
		if err := w.waitFinished(before+1, 2*time.Minute); err != nil {
			return nil, err
		}
		if err := w.waitQuiet(manager.DefaultDebounce+time.Second, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	if err := w.failed(); err != nil {
		return nil, err
	}
	return out, nil
}

// watchProc is a running `cradle watch`, its output followed line by line.
type watchProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its output ended

	mu         sync.Mutex
	lines      []string
	started    int
	ended      int
	lastChange time.Time // the last session start or end
	fails      []string
	wake       chan struct{}
}

func startWatch(ctx context.Context, p *partnership) (*watchProc, error) {
	cmd := exec.CommandContext(ctx, p.b.bin, "--config", p.config, "--emulate", p.phone, "watch")
	cmd.Env = append(os.Environ(), "CRADLE_NO_HARDWARE=1", "LANG=C.UTF-8")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start cradle watch: %w", err)
	}
	w := &watchProc{cmd: cmd, done: make(chan struct{}), wake: make(chan struct{}), lastChange: time.Now()}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.line(sc.Text())
		}
	}()
	return w, nil
}

func (w *watchProc) line(l string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, l)
	switch {
	case strings.Contains(l, " sync started: "):
		w.started++
		w.lastChange = time.Now()
	case strings.Contains(l, " sync finished: "):
		w.ended++
		w.lastChange = time.Now()
	case strings.Contains(l, " sync failed: "), strings.Contains(l, " sync stopped: "):
		w.ended++
		w.lastChange = time.Now()
		w.fails = append(w.fails, l)
	}
	close(w.wake)
	w.wake = make(chan struct{})
}

func (w *watchProc) finished() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

func (w *watchProc) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func (w *watchProc) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.fails) > 0 {
		return fmt.Errorf("cradle watch reported failed sessions:\n%s", strings.Join(w.fails, "\n"))
	}
	return nil
}

// waitFinished waits until n sessions have ended.
func (w *watchProc) waitFinished(n int, limit time.Duration) error {
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		ended, wake := w.ended, w.wake
		w.mu.Unlock()
		if ended >= n {
			return nil
		}
		select {
		case <-wake:
		case <-w.done:
			return fmt.Errorf("cradle watch ended; it printed:\n%s", w.output())
		case <-deadline:
			return fmt.Errorf("waited %s for session %d to end; cradle watch printed:\n%s", limit, n, w.output())
		}
	}
}

// waitQuiet waits until no session runs and none started or ended for quiet.
func (w *watchProc) waitQuiet(quiet, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		idle := w.started == w.ended
		since := time.Since(w.lastChange)
		w.mu.Unlock()
		if idle && since >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cradle watch did not go quiet within %s; it printed:\n%s", limit, w.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends `cradle watch` with SIGTERM, as Ctrl+C would.
func (w *watchProc) stop() {
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
	}
	w.cmd.Wait()
}

// burst copies a folder of burstFiles files into p's desktop folder at once, c.runs times (a new
// folder each time), while `cradle watch` runs, and counts the sessions that carried changes.
func (b *bench) burst(ctx context.Context, p *partnership) ([]int64, durations, error) {
	spec := treeSpec{files: burstFiles}
	src := filepath.Join(b.c.work, "trees", "burst")
	if _, err := os.Stat(src); err != nil {
		if err := spec.build(src); err != nil {
			return nil, nil, err
		}
	}
	w, err := startWatch(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	defer w.stop()
	if err := w.waitFinished(1, 10*time.Minute); err != nil {
		return nil, nil, err
	}
	if err := w.waitQuiet(manager.DefaultDebounce+time.Second, 2*time.Minute); err != nil {
		return nil, nil, err
	}
	var counts []int64
	var walls durations
	for i := range b.c.runs {
		name := fmt.Sprintf("burst-%d", i)
		lines := len(w.snapshot())
		t0 := time.Now()
		if _, err := b.exec(ctx, runOpts{}, "cp", "-r", src, filepath.Join(p.desktop, name)); err != nil {
			return nil, nil, err
		}
		last := filepath.Join(p.devDir(), name, spec.rel(burstFiles-1))
		deadline := t0.Add(2 * time.Minute)
		for {
			if n, err := countFiles(filepath.Join(p.devDir(), name)); err == nil && n == burstFiles {
				break
			}
			if time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("%s did not reach the device within 2 minutes; watch printed:\n%s", last, w.output())
			}
			time.Sleep(5 * time.Millisecond)
		}
		walls = append(walls, time.Since(t0))
		if err := w.waitQuiet(manager.DefaultDebounce+time.Second, 2*time.Minute); err != nil {
			return nil, nil, err
		}
		n := int64(0)
		for _, l := range w.snapshot()[lines:] {
			if strings.Contains(l, " sync finished: ") && !strings.HasSuffix(l, "up to date") {
				n++
			}
		}
		counts = append(counts, n)
		b.c.logf("P2: burst %d: %d sessions with changes, %s", i+1, n, fmtDur(walls[i]))
	}
	if err := w.failed(); err != nil {
		return nil, nil, err
	}
	return counts, walls, nil
}

// countFiles counts the regular files below dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), "file") && strings.HasSuffix(d.Name(), ".txt") {
			n++ // not the emulated device's temporary files
		}
		return nil
	})
	return n, err
}

// snapshot returns the lines printed so far.
func (w *watchProc) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.lines)
}
