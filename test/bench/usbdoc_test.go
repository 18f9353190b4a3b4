package main

import (
	"strings"
	"testing"
)

const sampleUSBDoc = `# USB

<!-- usbbench:transfer -->

USB transfers through QEMU's usb-mtp.

| controller | operation | Cradle MB/s | libmtp MB/s | ratio (goal) | whole operation: Cradle s / libmtp s (ratio) |
|---|---|---|---|---|---|
| qemu-xhci | get 100 MiB | 112.6 | 42.1 | 2.67x (>= 1.5x, met) | 1.25 / 2.59 (2.07x) |

<!-- /usbbench:transfer -->

Prose.

<!-- usbbench:listing-qemu-xhci -->

Listing 10,000 files.

| device | Cradle s | mtp-files s | ratio (goal) | Cradle, session to last entry s | runs: Cradle / mtp-files s |
|---|---|---|---|---|---|
| qemu-xhci | 10.00 | 15.00 | 1.50x (>= 2.0x, missed) | 9.50 | 10.0 / 15.0 |

<!-- /usbbench:listing-qemu-xhci -->

<!-- usbbench:listing-usb-ehci -->

(not measured yet)

<!-- /usbbench:listing-usb-ehci -->

<!-- usbbench:listing-umtp -->

| device | Cradle s | mtp-files s | ratio (goal) | Cradle, session to last entry s | runs: Cradle / mtp-files s |
|---|---|---|---|---|---|
| umtp | 5.00 | 12.00 | 2.40x (>= 2.0x, met) | 4.50 | 5.0 / 12.0 |

<!-- /usbbench:listing-umtp -->
`

func TestUSBBlocks(t *testing.T) {
	tr, ok := usbBlock(sampleUSBDoc, "transfer")
	if !ok {
		t.Fatal("usbBlock(transfer): not found")
	}
	if rows := usbRows(tr); len(rows) != 1 || rows[0].ratio != "2.67x" {
		t.Errorf("usbRows(transfer block) = %+v, want one row of 2.67x", rows)
	}
	if rows := usbRows(sampleUSBDoc); len(rows) != 1 {
		t.Errorf("usbRows(whole file) = %+v, want the transfer row alone", rows)
	}
	blocks := usbBlocks(sampleUSBDoc, "listing")
	if len(blocks) != 3 {
		t.Fatalf("usbBlocks(listing) = %d blocks, want 3", len(blocks))
	}
	rows := listRows(strings.Join(blocks, "\n\n"))
	if len(rows) != 2 {
		t.Fatalf("listRows = %+v, want 2 rows", rows)
	}
	if r := rows[0]; r.ratio != "1.50x" || r.verdict != "**missed**" || r.cradle != "10.00 s" || r.goal != ">= 2.0x faster" {
		t.Errorf("listRows[0] = %+v", r)
	}
	if r := rows[1]; r.ratio != "2.40x" || r.verdict != "met" {
		t.Errorf("listRows[1] = %+v", r)
	}
	if _, ok := usbBlock("no markers", "listing"); ok {
		t.Error("usbBlock(no markers) found a block")
	}
}
