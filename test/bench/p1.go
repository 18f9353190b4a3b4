package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/repl"
)

// P1 goals: a full change detection at most 1.5 times the stat walk; a no-op sync at most 3
// times.
const (
	goalDetect = 1.5
	goalNoop   = 3.0
)

// ensureBig returns the large tree's partnership, set up and synced once.
func (b *bench) ensureBig(ctx context.Context) (*partnership, error) {
	if b.bigPart != nil {
		return b.bigPart, nil
	}
	p, err := b.partner(ctx, "big", b.big)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if _, err := p.sync(ctx, runOpts{}, b.bigSpec.files+b.bigSpec.folders()); err != nil {
		return nil, fmt.Errorf("first sync of the %d-file tree: %w", b.bigSpec.files, err)
	}
	b.c.logf("first sync of the %d-file tree in %s", b.bigSpec.files, time.Since(t0).Round(time.Millisecond))
	b.bigPart = p
	return p, nil
}

// p1 measures change detection (in process) and a no-op sync (the command line) of the large
// tree against the bare stat walk.
func (b *bench) p1(ctx context.Context) error {
	n := b.bigSpec.files
	entries := n + b.bigSpec.folders() + 1 // the walk sees the root too
	s := &section{id: "P1", title: fmt.Sprintf("change detection and a no-op sync of %s unchanged files", thousands(n))}
	s.intro = fmt.Sprintf(`The tree: %s files of about 30 bytes in %s folders (100 files a folder), all dated
alike. **Baseline**: a bare stat walk of it (filepath.WalkDir and an os.Lstat of every entry, in the
benchmark's process, page cache warm). **Detection**: what a full pass of a session does on the
desktop side, in process: repl.HandleFile.Detect over the files provider's DesktopStore, with a
real handle file on disk that already records the tree (mark, enumerate, ask IsItemChanged of
every item against its stamp, sweep). **No-op sync**: the whole command a user runs, %s, as a
process: start, open the config folder and the handle file, attach the emulated device (an MTP
responder in the same process, serving a real folder that holds the same %s files), read the
device's sync metadata, full detection on both sides (the device side enumerated over MTP), find
nothing to do, exit.`, thousands(n), thousands(b.bigSpec.folders()), "`cradle sync`", thousands(n))
	b.rep.add(s)

	// Detection, in process.
	ds, err := fsstore.NewDesktopStore(b.big, fsstore.DesktopOptions{Logf: func(string, ...any) {}})
	if err != nil {
		return err
	}
	hfPath := filepath.Join(b.c.work, "p1.repl")
	os.Remove(hfPath)
	hf, err := repl.Open(hfPath, repl.Options{})
	if err != nil {
		return err
	}
	defer hf.Close()
	side := repl.Side{Name: "desktop", Store: ds}
	t0 := time.Now()
	first, err := hf.Detect(ctx, side)
	if err != nil {
		return fmt.Errorf("first detection: %w", err)
	}
	firstDur := time.Since(t0)
	if first.Created != n+b.bigSpec.folders() {
		return fmt.Errorf("first detection created %d items, want %d", first.Created, n+b.bigSpec.folders())
	}
	if _, err := timedWalk(b.big, entries); err != nil { // warm the cache alike for both
		return err
	}
	stopProfile := b.startCPUProfile("p1-detect")
	var walks, detects durations
	for i := range b.c.runs {
		walk := func() error {
			d, err := timedWalk(b.big, entries)
			walks = append(walks, d)
			return err
		}
		detect := func() error {
			t0 := time.Now()
			rep, err := hf.Detect(ctx, side)
			detects = append(detects, time.Since(t0))
			if err == nil && (rep.Changes() != 0 || !rep.Full || rep.Seen < n) {
				err = fmt.Errorf("detection of the unchanged tree: %+v, want a full pass that changes nothing", rep)
			}
			return err
		}
		// Alternate which goes first, so that neither always runs on a warmer machine.
		order := []func() error{walk, detect}
		if i%2 == 1 {
			order[0], order[1] = detect, walk
		}
		for _, f := range order {
			if err := f(); err != nil {
				stopProfile()
				return err
			}
		}
	}
	stopProfile()
	b.heapProfile("p1-detect")
	walk := walks.median()
	s.rows = append(s.rows, row{
		what:     "full change detection (Detect, in process)",
		cradle:   fmtDur(detects.median()),
		baseline: fmtDur(walk),
		ratio:    ratio(float64(detects.median()), float64(walk)),
		goal:     fmt.Sprintf("<= %.1fx", goalDetect),
		verdict:  verdict(float64(detects.median()) <= goalDetect*float64(walk)),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("Detection %s, stat walk %s.", detects.spread(), walks.spread()),
		fmt.Sprintf("The first detection, which records all %s items in the handle file, took %s (once).", thousands(first.Created), fmtDur(firstDur)))

	// The no-op sync, through the command line.
	p, err := b.ensureBig(ctx)
	if err != nil {
		return err
	}
	if _, err := p.sync(ctx, runOpts{}, 0); err != nil { // settles the device metadata, warms the cache
		return err
	}
	var syncs, walks2 durations
	for i := range b.c.runs {
		walk := func() error {
			d, err := timedWalk(b.big, entries)
			walks2 = append(walks2, d)
			return err
		}
		noop := func() error {
			r, err := p.sync(ctx, runOpts{}, 0) // fails unless it did nothing
			syncs = append(syncs, r.wall)
			return err
		}
		order := []func() error{walk, noop}
		if i%2 == 1 {
			order[0], order[1] = noop, walk
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
	}
	// The floor of any no-op sync: the device's folder must be read too.
	var devWalks durations
	for range b.c.runs {
		d, err := timedWalk(p.devDir(), entries)
		if err != nil {
			return err
		}
		devWalks = append(devWalks, d)
	}
	walk2 := walks2.median()
	s.rows = append(s.rows, row{
		what:     "no-op `cradle sync` (process, emulated device)",
		cradle:   fmtDur(syncs.median()),
		baseline: fmtDur(walk2),
		ratio:    ratio(float64(syncs.median()), float64(walk2)),
		goal:     fmt.Sprintf("<= %.1fx", goalNoop),
		verdict:  verdict(float64(syncs.median()) <= goalNoop*float64(walk2)),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("No-op sync %s, stat walk %s.", syncs.spread(), walks2.spread()),
		fmt.Sprintf("The device's folder must be read too, by the emulated device, in the same process and on the same cores: a stat walk of the device's copy takes %s, so the floor of any no-op sync here, both walks, is %s; the no-op sync is %s that.",
			fmtDur(devWalks.median()), fmtDur(walk2+devWalks.median()), ratio(float64(syncs.median()), float64(walk2+devWalks.median()))))
	s.command = fmt.Sprintf("go run ./test/bench -only P1 -runs %d -files %d -out -", b.c.runs, n)
	return nil
}

// startCPUProfile starts a CPU profile named name in the profile folder (when one was asked
// for); the returned function stops it.
func (b *bench) startCPUProfile(name string) func() {
	if b.c.profile == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(b.c.profile, name+".cpu.pprof"))
	if err != nil {
		b.c.logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.c.logf("profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// heapProfile writes a heap profile named name in the profile folder (when one was asked for).
func (b *bench) heapProfile(name string) {
	if b.c.profile == "" {
		return
	}
	f, err := os.Create(filepath.Join(b.c.profile, name+".heap.pprof"))
	if err != nil {
		b.c.logf("profile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.c.logf("profile: %v", err)
	}
}

func medianInt(xs []int64) int64 {
	fs := make([]float64, len(xs))
	for i, x := range xs {
		fs[i] = float64(x)
	}
	return int64(medianFloat(fs))
}

// thousands formats n with thin separators: 100,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
