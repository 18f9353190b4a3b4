package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// P5 goals: a sync of 100k items under 200 MB resident; the idle window at most 1.2 times a
// minimal Fyne window.
const (
	goalSyncMemory = 200e6
	goalWindow     = 1.2
)

// p5 measures the peak resident memory of first and no-op syncs of the large tree, and the idle
// window against a minimal Fyne window (test/gui's TestWindowMemory).
func (b *bench) p5(ctx context.Context) error {
	n := b.bigSpec.files
	items := n + b.bigSpec.folders()
	s := &section{id: "P5", title: "memory"}
	s.intro = fmt.Sprintf(`**Sync**: the peak resident memory (getrusage's ru_maxrss of the child) of %s: a first
sync of the %s-file tree (%s items with the folders) to an emulated device, each run with a new config
folder and an empty device folder, and no-op syncs of it afterwards. The emulated device (the MTP
responder and its object table) lives in the same process, so its memory counts too. While each
first sync runs, /proc/PID/smaps_rollup is read every 20 ms to split the peak into anonymous memory
(the Go heap, stacks) and file-backed pages (the executable, the memory-mapped handle file).
**Window**: test/gui's TestWindowMemory, which starts %s and a minimal Fyne window
(test/gui/minimal) one after the other in the same Xvfb server, lets each idle for 18 s and takes
the median of five readings of VmRSS.`, "`cradle sync`", thousands(n), thousands(items), "`cradle --demo`")
	b.rep.add(s)

	runs := min(b.c.runs, 3) // a first sync of 100k files takes about a minute
	var (
		rss, anon, file []int64
		walls           durations
	)
	for i := range runs {
		p, err := b.partner(ctx, fmt.Sprintf("p5-%d", i), b.big)
		if err != nil {
			return err
		}
		r, err := p.sync(ctx, runOpts{sample: true}, items)
		if err != nil {
			return fmt.Errorf("first sync of the %d-file tree: %w", n, err)
		}
		b.c.logf("P5: first sync %d of %d: %s, peak %s", i+1, runs, fmtDur(r.wall), fmtMB(r.maxRSS))
		rss, anon, file = append(rss, r.maxRSS), append(anon, r.peakAnon), append(file, r.peakFile)
		walls = append(walls, r.wall)
		if b.bigPart == nil {
			b.bigPart = p
		} else if err := os.RemoveAll(p.phone); err != nil {
			return err
		}
	}
	s.rows = append(s.rows, row{
		what:    fmt.Sprintf("peak memory, first sync of %s items", thousands(items)),
		cradle:  fmtMB(medianInt(rss)),
		goal:    "< 200 MB",
		verdict: verdict(float64(medianInt(rss)) < goalSyncMemory),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("First sync: peak %s to %s over %d runs; at the sampled peak %s anonymous and %s file-backed (medians); each took %s (median, %s).",
			fmtMB(minInt(rss)), fmtMB(maxInt(rss)), runs, fmtMB(medianInt(anon)), fmtMB(medianInt(file)), fmtDur(walls.median()), walls.spread()))

	p := b.bigPart
	var noop, noopAnon, noopFile []int64
	for range b.c.runs {
		r, err := p.sync(ctx, runOpts{sample: true}, 0)
		if err != nil {
			return err
		}
		noop, noopAnon, noopFile = append(noop, r.maxRSS), append(noopAnon, r.peakAnon), append(noopFile, r.peakFile)
	}
	s.rows = append(s.rows, row{
		what:    fmt.Sprintf("peak memory, no-op sync of %s items", thousands(items)),
		cradle:  fmtMB(medianInt(noop)),
		goal:    "< 200 MB",
		verdict: verdict(float64(medianInt(noop)) < goalSyncMemory),
	})
	s.notes = append(s.notes, fmt.Sprintf("No-op sync: peak %s to %s over %d runs; at the sampled peak %s anonymous and %s file-backed (medians).",
		fmtMB(minInt(noop)), fmtMB(maxInt(noop)), len(noop), fmtMB(medianInt(noopAnon)), fmtMB(medianInt(noopFile))))
	if fi, err := os.Stat(p.config + "/state/1.repl"); err == nil {
		s.notes = append(s.notes, fmt.Sprintf("The partnership's handle file (state/1.repl, memory-mapped by bbolt) is %s.", fmtMB(fi.Size())))
	}

	if err := b.window(ctx, s); err != nil {
		return err
	}
	s.command = fmt.Sprintf("go run ./test/bench -only P5 -runs %d -files %d -out -", b.c.runs, n)
	return nil
}

// windowLine is what TestWindowMemory logs.
var windowLine = regexp.MustCompile(`idle resident memory: minimal Fyne window ([0-9.]+) MB, cradle --demo ([0-9.]+) MB, ratio ([0-9.]+)`)

// window runs test/gui's TestWindowMemory (runs times, at most 3: each takes about 45 s) and
// adds its medians to s.
func (b *bench) window(ctx context.Context, s *section) error {
	runs := min(b.c.runs, 3)
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "go", "test", "-count", strconv.Itoa(runs), "-run", "^TestWindowMemory$", "-v", "-timeout", "20m", "./test/gui/")
	cmd.Dir = b.c.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("test/gui TestWindowMemory: %v\n%s", err, out)
	}
	var base, app, ratios []float64
	for _, m := range windowLine.FindAllStringSubmatch(string(out), -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		base, app = append(base, x), append(app, y)
		ratios = append(ratios, y/x)
	}
	if len(ratios) != runs {
		return fmt.Errorf("test/gui TestWindowMemory printed %d measures, want %d:\n%s", len(ratios), runs, out)
	}
	b.c.logf("P5: window memory measured %d times in %s", runs, time.Since(t0).Round(time.Second))
	r := medianFloat(ratios)
	s.rows = append(s.rows, row{
		what:     "idle window (`cradle --demo`) vs a minimal Fyne window",
		cradle:   fmt.Sprintf("%.0f MB", medianFloat(app)),
		baseline: fmt.Sprintf("%.0f MB", medianFloat(base)),
		ratio:    fmt.Sprintf("%.2fx", r),
		goal:     fmt.Sprintf("<= %.1fx", goalWindow),
		verdict:  verdict(r <= goalWindow),
	})
	s.notes = append(s.notes, fmt.Sprintf("Window: ratios %s over %d runs of TestWindowMemory (each in its own Xvfb; the demo window holds an emulated phone, sample content and three partnerships).",
		floatsList(ratios), runs))
	return nil
}

func floatsList(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s
}

func minInt(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxInt(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
