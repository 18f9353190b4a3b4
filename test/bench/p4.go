package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// goalCopy: a first sync of 10k small files at most 2 times `cp -r`; goalScale: the first sync
// of 100k files (P5) at most 11 times this one (10 times the items, a tenth for what grows).
const (
	goalCopy  = 2.0
	goalScale = 11.0
)

// p4 measures a first sync of 10k files of 4 KiB to an emulated device against `cp -r` of the
// same tree.
func (b *bench) p4(ctx context.Context) error {
	spec := treeSpec{files: 10_000, size: 4096}
	s := &section{id: "P4", title: "10k files of 4 KiB to the device"}
	s.intro = fmt.Sprintf(`The tree: %s files of 4 KiB of random bytes in %d folders. **Cradle**: a first %s
of the tree partnered with an empty emulated device (a new config folder and device folder each
run; the setup is not timed), as a process: detection on both sides, then every folder and file
created on the device over MTP (SendObjectInfo and SendObject, each file written to a temporary file
and renamed into place by the emulated device), the handle file committed per batch, the device's
sync metadata written at the end. **Baseline**: %s of the same tree to a new folder on the same
file system. Both run with the page cache warm.`, thousands(spec.files), spec.folders(), "`cradle sync`", "`cp -r`")
	b.rep.add(s)
	src := filepath.Join(b.c.work, "trees", "p4-10k-4k")
	if err := spec.build(src); err != nil {
		return err
	}
	var syncs, copies durations
	for i := range b.c.runs {
		dst := filepath.Join(b.c.work, "runs", fmt.Sprintf("p4-cp-%d", i))
		cp := func() error {
			r, err := b.exec(ctx, runOpts{}, "cp", "-r", src, dst)
			copies = append(copies, r.wall)
			if err != nil {
				return err
			}
			return os.RemoveAll(dst)
		}
		sync := func() error {
			p, err := b.partner(ctx, fmt.Sprintf("p4-%d", i), src)
			if err != nil {
				return err
			}
			r, err := p.sync(ctx, runOpts{}, spec.files+spec.folders())
			syncs = append(syncs, r.wall)
			if err != nil {
				return err
			}
			if i == 0 {
				if err := sameFiles(src, p.devDir(), spec); err != nil {
					return err
				}
			}
			return os.RemoveAll(filepath.Dir(p.config))
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
		b.c.logf("P4: run %d: sync %s, cp -r %s", i+1, fmtDur(syncs[len(syncs)-1]), fmtDur(copies[len(copies)-1]))
	}
	sm, cm := syncs.median(), copies.median()
	s.rows = append(s.rows, row{
		what:     "first sync of 10k files of 4 KiB",
		cradle:   fmtDur(sm),
		baseline: fmtDur(cm),
		ratio:    ratio(float64(sm), float64(cm)),
		goal:     fmt.Sprintf("<= %.1fx", goalCopy),
		verdict:  verdict(float64(sm) <= goalCopy*float64(cm)),
	})
	if b.first100k > 0 {
		s.rows = append(s.rows, row{
			what:     fmt.Sprintf("first sync of %s files of ~30 B (P5) against this one", thousands(b.bigSpec.files)),
			cradle:   fmtDur(b.first100k),
			baseline: fmtDur(sm),
			ratio:    ratio(float64(b.first100k), float64(sm)),
			goal:     fmt.Sprintf("<= %.0fx", goalScale),
			verdict:  verdict(float64(b.first100k) <= goalScale*float64(sm)),
		})
	}
	s.notes = append(s.notes,
		fmt.Sprintf("Sync %s; cp -r %s.", syncs.spread(), copies.spread()),
		fmt.Sprintf("Throughput of the sync: %.0f files/s, %.1f MB/s.", float64(spec.files)/sm.Seconds(), float64(spec.files*spec.size)/1e6/sm.Seconds()),
		"The first run's device folder was compared file by file with the tree (content and count).")
	s.command = fmt.Sprintf("go run ./test/bench -only P4 -runs %d -out -", b.c.runs)
	return nil
}

// sameFiles checks that every file of the tree is in dst with the same content, and nothing else.
func sameFiles(src, dst string, spec treeSpec) error {
	for i := range spec.files {
		rel := spec.rel(i)
		a, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		c, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil {
			return fmt.Errorf("the device lacks %s: %w", rel, err)
		}
		if !bytes.Equal(a, c) {
			return fmt.Errorf("%s differs on the device", rel)
		}
	}
	n, err := bareWalk(dst)
	if err != nil {
		return err
	}
	if want := spec.files + spec.folders() + 1; n != want {
		return fmt.Errorf("the device's folder has %d entries, want %d", n, want)
	}
	return nil
}
