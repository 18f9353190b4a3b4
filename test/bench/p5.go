package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// P5 goals (issue 16): a first sync of 100k small files at most 2 times `cp -r` of them (both on
// a tmpfs), under 150 MB resident; a no-op sync under 120 MB; the handle file at most 300 bytes a
// live item; the idle window at most 1.2 times a minimal Fyne window.
const (
	goalFirstCopy   = 2.0
	goalFirstMemory = 150e6
	goalNoopMemory  = 120e6
	goalFileItem    = 300
	goalWindow      = 1.2
)

// p5 measures first syncs of the large tree against `cp -r` of it, their peak resident memory
// and the handle file they leave, the peak of no-op syncs, and the idle window against a minimal
// Fyne window (test/gui's TestWindowMemory).
func (b *bench) p5(ctx context.Context) error {
	n := b.bigSpec.files
	items := n + b.bigSpec.folders()
	s := &section{id: "P5", title: "a first sync of 100k small files: time and memory"}
	s.intro = fmt.Sprintf(`**First sync**: %s of the %s-file tree (%s items with the folders, files of about 30
bytes) to an emulated device, each run with a new config folder and an empty device folder, as a
process; **baseline**: %s of the same tree to a new folder, alternately with it, both in the work
folder (%s). **Memory**: the peak resident memory (getrusage's ru_maxrss of the child) of those
first syncs and of no-op syncs of the tree afterwards. The emulated device (the MTP responder and
its object table) lives in the same process, so its memory counts too. While each sync runs,
/proc/PID/smaps_rollup is read every 20 ms to split the peak into anonymous memory (the Go heap,
stacks) and file-backed pages (the executable, the memory-mapped handle file). **Handle file**: the
partnership's handle file after the first sync, divided by the items it holds (each is in both
replicas, the desktop's and the device's). **Window**: test/gui's TestWindowMemory, which starts
%s and a minimal Fyne window (test/gui/minimal) one after the other in the same Xvfb server, lets
each idle for 18 s and takes the median of five readings of VmRSS.`,
		"`cradle sync`", thousands(n), thousands(items), "`cp -r`", fsType(b.c.work), "`cradle --demo`")
	b.rep.add(s)

	var (
		rss, anon, file []int64
		walls, copies   durations
		fileSize        int64
	)
	for i := range b.c.runs {
		sync := func() error {
			p, err := b.partner(ctx, fmt.Sprintf("p5-%d", i), b.big)
			if err != nil {
				return err
			}
			r, err := p.sync(ctx, runOpts{sample: true}, items)
			if err != nil {
				return fmt.Errorf("first sync of the %d-file tree: %w", n, err)
			}
			rss, anon, file = append(rss, r.maxRSS), append(anon, r.peakAnon), append(file, r.peakFile)
			walls = append(walls, r.wall)
			if i == 0 {
				if fi, err := os.Stat(filepath.Join(p.config, "state", "1.repl")); err == nil {
					fileSize = fi.Size()
				}
			}
			if b.bigPart == nil {
				b.bigPart = p
				return nil
			}
			return os.RemoveAll(filepath.Dir(p.config))
		}
		cp := func() error {
			dst := filepath.Join(b.c.work, "runs", fmt.Sprintf("p5-cp-%d", i))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			r, err := b.exec(ctx, runOpts{}, "cp", "-r", b.big, dst)
			copies = append(copies, r.wall)
			if err != nil {
				return err
			}
			return os.RemoveAll(dst)
		}
		order := []func() error{cp, sync}
		if i%2 == 1 {
			order[0], order[1] = sync, cp
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
		b.c.logf("P5: first sync %d of %d: %s (cp -r %s), peak %s", i+1, b.c.runs, fmtDur(walls[i]), fmtDur(copies[i]), fmtMB(rss[i]))
	}
	wm, cm := walls.median(), copies.median()
	b.first100k = wm
	s.rows = append(s.rows, row{
		what:     fmt.Sprintf("first sync of %s files of ~30 B, on %s", thousands(n), shortFS(b.c.work)),
		cradle:   fmtDur(wm),
		baseline: fmtDur(cm) + " (`cp -r`)",
		ratio:    ratio(float64(wm), float64(cm)),
		goal:     fmt.Sprintf("<= %.1fx", goalFirstCopy),
		verdict:  verdict(float64(wm) <= goalFirstCopy*float64(cm)),
	})
	s.rows = append(s.rows, row{
		what:    fmt.Sprintf("peak memory, first sync of %s items", thousands(items)),
		cradle:  fmtMB(medianInt(rss)),
		goal:    "<= 150 MB",
		verdict: verdict(float64(medianInt(rss)) <= goalFirstMemory),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("First sync %s; cp -r %s.", walls.spread(), copies.spread()),
		fmt.Sprintf("First sync: peak %s to %s over %d runs; at the sampled peak %s anonymous and %s file-backed (medians).",
			fmtMB(minInt(rss)), fmtMB(maxInt(rss)), len(rss), fmtMB(medianInt(anon)), fmtMB(medianInt(file))))

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
		goal:    "<= 120 MB",
		verdict: verdict(float64(medianInt(noop)) <= goalNoopMemory),
	})
	s.notes = append(s.notes, fmt.Sprintf("No-op sync: peak %s to %s over %d runs; at the sampled peak %s anonymous and %s file-backed (medians).",
		fmtMB(minInt(noop)), fmtMB(maxInt(noop)), len(noop), fmtMB(medianInt(noopAnon)), fmtMB(medianInt(noopFile))))
	if fileSize > 0 {
		per := float64(fileSize) / float64(items)
		s.rows = append(s.rows, row{
			what:    fmt.Sprintf("handle file per live item (%s items, both replicas)", thousands(items)),
			cradle:  fmt.Sprintf("%.0f B", per),
			goal:    fmt.Sprintf("<= %d B", goalFileItem),
			verdict: verdict(per <= goalFileItem),
		})
		s.notes = append(s.notes, fmt.Sprintf("The partnership's handle file (state/1.repl, memory-mapped by bbolt) is %s after the first sync (its size on disk: bbolt grows it ahead of its needs, and its free pages count).", fmtMB(fileSize)))
	}

	if err := b.window(ctx, s); err != nil {
		return err
	}
	s.command = fmt.Sprintf("go run ./test/bench -only P5 -runs %d -files %d -out -", b.c.runs, n)
	return nil
}

// shortFS names the kind of file system dir is on: "a tmpfs" or its type.
func shortFS(dir string) string {
	t, _, _ := strings.Cut(fsType(dir), " ")
	if t == "tmpfs" {
		return "a tmpfs"
	}
	return t
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
