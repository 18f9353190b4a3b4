package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// p3 reports the real-USB figures: from docs/performance-usb.md (written by `make bench-usb`), or
// measured now with -usb.
func (b *bench) p3(ctx context.Context) error {
	s := &section{id: "P3", title: "throughput over real USB (QEMU's usb-mtp) against libmtp"}
	b.rep.add(s)
	var text string
	if b.c.usb {
		out := filepath.Join(b.c.work, "usb.md")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "go", "run", "./test/usbvm/cmd/usbbench", "-runs", strconv.Itoa(b.c.runs), "-o", out)
		cmd.Dir = b.c.root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("usbbench: %v\n%s", err, msg)
		}
		b.c.logf("P3: usbbench in %s", time.Since(t0).Round(time.Second))
		raw, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		text = string(raw)
		b.usbText = text
		if t, ok := usbBlock(text, "transfer"); ok {
			text = t
		}
		s.intro = "Measured in this run by test/usbvm's usbbench (`make bench-usb`): Cradle's transfers through its gousb transport and MTP initiator against libmtp's `mtp-getfile` and `mtp-sendfile`, in the same QEMU guest, on both host controllers. docs/performance-usb.md explains the method and why the ratios are what they are."
		s.command = fmt.Sprintf("go run ./test/bench -only P3 -usb -runs %d -out -", b.c.runs)
	} else {
		raw, err := os.ReadFile(filepath.Join(b.c.root, "docs", "performance-usb.md"))
		if err != nil {
			return fmt.Errorf("docs/performance-usb.md: %w (run make bench-usb, or go run ./test/bench -usb)", err)
		}
		doc := string(raw)
		if t, ok := usbBlock(doc, "transfer"); ok {
			doc = t
		}
		var keep []string
		for _, para := range strings.Split(doc, "\n\n") {
			t := strings.TrimSpace(para)
			if strings.HasPrefix(t, "Measured") || strings.HasPrefix(t, "USB transfers") || strings.HasPrefix(t, "|") || strings.HasPrefix(t, "(") {
				keep = append(keep, t)
			}
		}
		if len(keep) == 0 {
			return fmt.Errorf("docs/performance-usb.md holds no table")
		}
		text = strings.Join(keep, "\n\n")
		s.intro = "Not measured by `make bench` (the QEMU guest takes minutes): the figures of [docs/performance-usb.md](performance-usb.md), written by `make bench-usb`, which explains the method. Cradle's transfers through its gousb transport and MTP initiator against libmtp's `mtp-getfile` and `mtp-sendfile`, in the same guest; `go run ./test/bench -usb` measures them again and includes them here."
		s.command = "make bench-usb"
	}
	s.raw = text
	s.rows = usbRows(text)
	if len(s.rows) == 0 {
		return fmt.Errorf("no figures found in the USB table:\n%s", text)
	}
	return nil
}

// usbRows turns usbbench's transfer table (| controller | operation | Cradle MB/s | libmtp MB/s |
// ratio (goal) | ...) into summary rows.
func usbRows(table string) []row {
	return tableRows(table, 4, func(cells []string, ratio, goal, verdict string) row {
		return row{
			what:     fmt.Sprintf("%s over USB, %s", cells[1], cells[0]),
			cradle:   cells[2] + " MB/s",
			baseline: cells[3] + " MB/s (libmtp)",
			ratio:    ratio,
			goal:     goal,
			verdict:  verdict,
		}
	})
}
