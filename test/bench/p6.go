package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// P6 goal (issue 16): renaming a 1 GiB folder on one side sends at most 1 MB.
const goalRenameBytes = 1e6

// p6 measures what the sync after renaming a 1 GiB folder on the desktop sends to the device.
func (b *bench) p6(ctx context.Context) error {
	const files, size = 16, 64 << 20
	s := &section{id: "P6", title: "renaming a 1 GiB folder"}
	s.intro = fmt.Sprintf(`A folder of %d files of %d MiB of random bytes (1 GiB) is synced to an emulated
device once; then, each run, the folder is renamed on the desktop (os.Rename) and %s runs. The
figure is the bytes the session reports sent (Session.Bytes: content transferred in either
direction); **baseline**: the bytes the first sync sent, which is what sending the folder again
costs (a rename taken for a delete and a create). The device's folder is checked after each run:
the new name holds every file whole, the old one is gone.`, files, size>>20, "`cradle sync`")
	b.rep.add(s)
	desk := filepath.Join(b.c.work, "trees", "p6-desktop")
	if err := os.RemoveAll(desk); err != nil {
		return err
	}
	name := "album-0"
	if err := os.MkdirAll(filepath.Join(desk, name), 0o755); err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(6, 6))
	buf := make([]byte, size)
	for i := range files {
		for j := 0; j < len(buf); j += 8 {
			v := rnd.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(desk, name, fmt.Sprintf("take%02d.raw", i)), buf, 0o644); err != nil {
			return err
		}
	}
	buf = nil
	p, err := b.partner(ctx, "p6", desk)
	if err != nil {
		return err
	}
	first, ss, err := p.syncJSON(ctx, runOpts{})
	if err != nil {
		return err
	}
	base := ss[0].Bytes
	b.c.logf("P6: first sync of 1 GiB: %s, %d bytes", fmtDur(first.wall), base)
	var sent []int64
	var walls durations
	var renamed []int
	for i := range b.c.runs {
		next := fmt.Sprintf("album-%d", i+1)
		if err := os.Rename(filepath.Join(desk, name), filepath.Join(desk, next)); err != nil {
			return err
		}
		r, ss, err := p.syncJSON(ctx, runOpts{})
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(p.devDir(), name)); !os.IsNotExist(err) {
			return fmt.Errorf("the device still holds %s after its rename (%v)", name, err)
		}
		for j := range files {
			fi, err := os.Stat(filepath.Join(p.devDir(), next, fmt.Sprintf("take%02d.raw", j)))
			if err != nil || fi.Size() != size {
				return fmt.Errorf("the device's %s lacks take%02d.raw whole after the rename: %v", next, j, err)
			}
		}
		name = next
		sent = append(sent, ss[0].Bytes)
		walls = append(walls, r.wall)
		renamed = append(renamed, ss[0].ToDevice.Renamed)
		b.c.logf("P6: rename %d: %d bytes sent, %d renamed, %+v created/updated/deleted, %s", i+1, ss[0].Bytes, ss[0].ToDevice.Renamed, ss[0].ToDevice, fmtDur(r.wall))
	}
	m := medianInt(sent)
	s.rows = append(s.rows, row{
		what:     "renaming a 1 GiB folder on the desktop: bytes the next sync sends",
		cradle:   fmtBytes(m),
		baseline: fmtBytes(base) + " (sending it)",
		goal:     "<= 1 MB",
		verdict:  verdict(float64(m) <= goalRenameBytes),
	})
	s.notes = append(s.notes,
		fmt.Sprintf("Bytes sent %v over %d runs; items renamed on the device %v; the sync took %s.", sent, len(sent), renamed, walls.spread()),
		fmt.Sprintf("The first sync of the folder took %s.", fmtDur(first.wall)))
	s.command = fmt.Sprintf("go run ./test/bench -only P6 -runs %d -out -", b.c.runs)
	return os.RemoveAll(filepath.Dir(p.config))
}

// fmtBytes formats a byte count: bytes below 10 kB, else MB.
func fmtBytes(n int64) string {
	if n < 10_000 {
		return fmt.Sprintf("%d B", n)
	}
	return fmtMB(n)
}
