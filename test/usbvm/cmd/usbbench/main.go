// Command usbbench measures Cradle's USB transfers against libmtp's in the same QEMU guest
// (`make bench-usb`): get and send of a 100 MiB file through QEMU's usb-mtp, several runs each,
// behind qemu-xhci and usb-ehci. It prints a markdown table with the medians and the ratios.
//
// Cradle's figures are of its code path as a sync uses it (discovery, the gousb transport, the MTP
// initiator, device.Device Open and Create). libmtp's are mtp-getfile and mtp-sendfile, whose
// processes also find the device, open a session and enumerate the objects; their fixed cost,
// measured with a one-byte file, is subtracted for the transfer-only comparison, and the table also
// gives the whole-operation figures of both.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/test/usbvm"
)

type measurement struct {
	Tool     string  `json:"tool"`
	Op       string  `json:"op"`
	Run      int     `json:"run"`
	Bytes    int64   `json:"bytes"`
	Total    float64 `json:"total_seconds"`
	Transfer float64 `json:"transfer_seconds"`
}

type overhead struct {
	Op      string  `json:"op"`
	Seconds float64 `json:"seconds"`
}

func main() {
	runs := flag.Int("runs", 5, "runs per tool and operation")
	size := flag.Int64("size", 100<<20, "file size in bytes")
	hcds := flag.String("hcd", usbvm.XHCI+","+usbvm.EHCI+","+usbvm.UMTP, "device models (QEMU's usb-mtp behind a host controller, or umtp: uMTP-Responder as a gadget in the guest), comma-separated")
	out := flag.String("o", "", "also write the table to this file")
	verbose := flag.Bool("v", false, "show the guest consoles")
	trace := flag.String("trace", "", "QEMU trace events to enable, comma-separated (usb_mtp_*), written to qemu.log in the work folder, which is then kept")
	flag.Parse()
	if (*size+12)%64 == 0 {
		fmt.Fprintln(os.Stderr, "usbbench: QEMU's usb-mtp cannot take a data phase that is a multiple of 64 bytes; pick another size")
		os.Exit(2)
	}
	var events []string
	if *trace != "" {
		events = strings.Split(*trace, ",")
	}
	table, err := bench(*runs, *size, strings.Split(*hcds, ","), *verbose, events)
	if err != nil {
		fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
			os.Exit(1)
		}
	}
}

func bench(runs int, size int64, hcds []string, verbose bool, trace []string) (string, error) {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "cradle-usbbench-*")
	if err != nil {
		return "", err
	}
	if len(trace) == 0 {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintf(os.Stderr, "usbbench: QEMU traces in %s\n", work)
	}
	var log io.Writer = io.Discard
	if verbose {
		log = os.Stderr
	}
	start := time.Now()
	h, err := usbvm.NewHarness(ctx, work, usbvm.HarnessOptions{
		Programs: map[string]string{"/usbvm/bench": "./test/usbvm/benchguest"},
		MTPTools: true,
		UMTP:     true,
	}, log)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "USB transfers through QEMU's usb-mtp (qemu-xhci, usb-ehci) and uMTP-Responder 1.3.10 as a gadget on dummy_hcd (umtp) in a TCG guest (kernel %s), %s file, median of %d runs; Cradle against libmtp %s in the same guest.\n\n",
		h.Kernel.Version, sizeLabel(size), runs, libmtpVersion())
	b.WriteString("| controller | operation | Cradle MB/s | libmtp MB/s | ratio (goal) | whole operation: Cradle s / libmtp s (ratio) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	footnote := false
	for _, hcd := range hcds {
		root := filepath.Join(work, "root-"+hcd)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", err
		}
		if err := usbvm.WriteContentFile(filepath.Join(root, "bench-get.bin"), "bench-get.bin", size); err != nil {
			return "", err
		}
		if err := usbvm.WriteContentFile(filepath.Join(root, "bench-tiny.bin"), "bench-tiny.bin", 1); err != nil {
			return "", err
		}
		fmt.Fprintf(os.Stderr, "usbbench: %s: %d runs of get and send, %s each...\n", hcd, runs, sizeLabel(size))
		res, err := h.Boot(ctx, "bench-"+hcd, usbvm.RunOptions{
			HCD:      hcd,
			RootDir:  root,
			Command:  fmt.Sprintf("/usbvm/bench -runs %d -size %d -libmtp-send=%v -umtp=%v", runs, size, hcd != usbvm.EHCI, hcd == usbvm.UMTP),
			Env:      map[string]string{"LANG": "C.UTF-8"},
			Timeout:  30 * time.Minute,
			MemoryMB: 1024,
			Trace:    trace,
		})
		if err != nil {
			if res != nil && errors.Is(err, usbvm.ErrGuestFailed) {
				return "", fmt.Errorf("%s: %w\n%s", hcd, err, lastLines(res.Console, 30))
			}
			return "", fmt.Errorf("%s: %w", hcd, err)
		}
		ms, ovs, err := parse(res.Console)
		if err != nil {
			return "", fmt.Errorf("%s: %w", hcd, err)
		}
		for _, op := range []string{"get", "send"} {
			goal := 1.5
			if op == "send" {
				goal = 1.0
			}
			ct, ctTotal := pick(ms, "cradle", op)
			_, lt := pick(ms, "libmtp", op)
			if len(ct) == 0 {
				return "", fmt.Errorf("%s: no %s measurements", hcd, op)
			}
			if len(lt) == 0 {
				fmt.Fprintf(&b, "| %s | %s %s | %.1f | n/a (1) | n/a | %.2f / n/a |\n",
					hcd, op, sizeLabel(size), float64(size)/1e6/median(ct), median(ctTotal))
				footnote = true
				continue
			}
			cradleMBs := float64(size) / 1e6 / median(ct)
			libTransfer := median(lt) - ovs[op]
			if libTransfer <= 0 {
				libTransfer = median(lt)
			}
			libMBs := float64(size) / 1e6 / libTransfer
			ratio := cradleMBs / libMBs
			verdict := "met"
			if ratio < goal {
				verdict = "missed"
			}
			fmt.Fprintf(&b, "| %s | %s %s | %.1f | %.1f | %.2fx (>= %.1fx, %s) | %.2f / %.2f (%.2fx) |\n",
				hcd, op, sizeLabel(size), cradleMBs, libMBs, ratio, goal, verdict,
				median(ctTotal), median(lt), median(lt)/median(ctTotal))
		}
	}
	if footnote {
		b.WriteString("\n(1) Not measured: QEMU's usb-mtp aborts (assertion in usb_mtp_get_data) on mtp-sendfile's uploads through usb-ehci, whose data-out transfers cross its 512 KiB buffer boundaries.\n")
	}
	fmt.Fprintf(&b, "\nlibmtp's fixed cost per tool run (device discovery, session, enumeration; a one-byte file) is subtracted from its times for the MB/s columns. Measured by `make bench-usb` in %s.\n", time.Since(start).Round(time.Second))
	return b.String(), nil
}

// parse reads the guest's BENCH lines.
func parse(console string) ([]measurement, map[string]float64, error) {
	var ms []measurement
	ovs := map[string]float64{}
	for _, line := range strings.Split(console, "\n") {
		i := strings.Index(line, "BENCH ")
		if i < 0 {
			continue
		}
		kind, payload, ok := strings.Cut(line[i+len("BENCH "):], " ")
		if !ok {
			continue
		}
		switch kind {
		case "measure":
			var m measurement
			if err := json.Unmarshal([]byte(payload), &m); err != nil {
				return nil, nil, fmt.Errorf("BENCH line %q: %w", line, err)
			}
			ms = append(ms, m)
		case "overhead":
			var o overhead
			if err := json.Unmarshal([]byte(payload), &o); err != nil {
				return nil, nil, fmt.Errorf("BENCH line %q: %w", line, err)
			}
			ovs[o.Op] = o.Seconds
		}
	}
	if len(ms) == 0 {
		return nil, nil, errors.New("the guest printed no measurements")
	}
	return ms, ovs, nil
}

// pick returns the transfer times (Cradle) or nothing (libmtp), and the whole-operation times.
func pick(ms []measurement, tool, op string) (transfer, total []float64) {
	for _, m := range ms {
		if m.Tool == tool && m.Op == op {
			transfer = append(transfer, m.Transfer)
			total = append(total, m.Total)
		}
	}
	if tool == "libmtp" {
		return total, total
	}
	return transfer, total
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sizeLabel(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func libmtpVersion() string {
	if v, err := readDpkgVersion("libmtp9"); err == nil {
		return v
	}
	return "(mtp-tools)"
}

func readDpkgVersion(pkg string) (string, error) {
	b, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		return "", err
	}
	for _, para := range strings.Split(string(b), "\n\n") {
		if !strings.Contains(para, "Package: "+pkg+"\n") {
			continue
		}
		for _, l := range strings.Split(para, "\n") {
			if v, ok := strings.CutPrefix(l, "Version: "); ok {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("%s not installed", pkg)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
