package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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

// p7 states the figures of issue 16 that the benchmark does not measure itself: the contacts
// figure (no benchmark yet) and the USB listing (from docs/performance-usb.md, written by
// `make bench-usb`, or from usbbench's output when P3 ran it with -usb).
func (b *bench) p7(context.Context) error {
	s := &section{id: "P7", title: "figures from elsewhere, or not measured yet"}
	s.intro = "The contacts row of issue 16's table has no benchmark yet; it is listed so that the table is whole. The USB listing takes minutes in a QEMU guest: its figures come from test/usbvm's usbbench (`make bench-usb`), which lists a device folder of 10,000 small files (100 folders of 100) with Cradle's walk and with libmtp's `mtp-files` in the same guest, alternately."
	s.rows = append(s.rows, row{
		what:    "1,000 new contacts reaching the phone: uploads of the contacts file",
		cradle:  "not measured",
		goal:    "<= 2 uploads",
		verdict: "**missed** (by design today)",
	})
	s.notes = append(s.notes,
		"Contacts: the device's contacts file (providers/contacts, DeviceFile) is rewritten whole at every card the engine writes (write, then rewrite): 1,000 new cards are 1,000 uploads of a growing file. Meeting the goal needs an engine hook that lets a store flush once per session (or per batch), with the rewrite's journal covering the cards written since the last flush; it is not written.")
	text, from := b.usbText, "measured in this run by usbbench (-usb)"
	if text == "" {
		raw, err := os.ReadFile(filepath.Join(b.c.root, "docs", "performance-usb.md"))
		if err != nil {
			return fmt.Errorf("docs/performance-usb.md: %w (run make bench-usb)", err)
		}
		text, from = string(raw), "from [docs/performance-usb.md](performance-usb.md)"
	}
	listing := strings.Join(usbBlocks(text, "listing"), "\n\n")
	rows := listRows(listing)
	if len(rows) == 0 {
		s.rows = append(s.rows, row{
			what:    "listing 10k objects over real USB against libmtp's `mtp-files`",
			cradle:  "not measured",
			goal:    ">= 2x faster",
			verdict: "not measured",
		})
		s.notes = append(s.notes, "USB listing: docs/performance-usb.md has no listing table yet; `make bench-usb` writes it.")
	} else {
		s.rows = append(s.rows, rows...)
		s.notes = append(s.notes, "USB listing, "+from+": whole operations (finding the device, the session, every object's metadata, closing); the ratio is `mtp-files`' time over Cradle's.")
		s.raw = listing
	}
	s.command = "make bench-usb"
	b.rep.add(s)
	return nil
}
