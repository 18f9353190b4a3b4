// Command usbbench measures Cradle's USB transfers against libmtp's in the same QEMU guest
// (`make bench-usb`): get and send of a 100 MiB file through QEMU's usb-mtp, several runs each,
// behind qemu-xhci and usb-ehci. It prints a markdown table with the medians and the ratios.
//
// Cradle's figures are of its code path as a sync uses it (discovery, the gousb transport, the MTP
// initiator, device.Device Open and Create). libmtp's are mtp-getfile and mtp-sendfile, whose
// processes also find the device, open a session and enumerate the objects; their fixed cost,
// measured with a one-byte file, is subtracted for the transfer-only comparison, and the table also
// gives the whole-operation figures of both.
//
// It also lists a device folder of 10,000 small files (100 folders of 100, usbvm.WriteListTree)
// with Cradle's walk (a fresh session, then device.Device's Walk: what a sync's full pass over
// the device does) against libmtp's mtp-files, which lists every file with its metadata, in
// another boot of the same guest.
//
// With -doc it replaces the blocks it measured in that markdown file (docs/performance-usb.md),
// between the markers <!-- usbbench:transfer --> or <!-- usbbench:listing-MODEL --> (one per device
// model) and the matching <!-- /usbbench:... -->, and leaves the rest of the file as it is.
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
	"strconv"
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
	Objects  int     `json:"objects"`
}

type opStat struct {
	Op          string  `json:"op"`
	Calls       int     `json:"calls"`
	Seconds     float64 `json:"seconds"`
	Transfers   int     `json:"transfers"`
	InTransport float64 `json:"in_transport_seconds"`
	Variant     string  `json:"variant"`
}

type overhead struct {
	Op      string  `json:"op"`
	Seconds float64 `json:"seconds"`
}

func main() {
	runs := flag.Int("runs", 5, "runs per tool and operation")
	size := flag.Int64("size", 100<<20, "file size in bytes")
	hcds := flag.String("hcd", usbvm.XHCI+","+usbvm.EHCI+","+usbvm.UMTP, "device models (QEMU's usb-mtp behind a host controller, or umtp: uMTP-Responder as a gadget in the guest), comma-separated")
	transfers := flag.Bool("transfer", true, "time get and send")
	list := flag.Bool("list", true, "time the listing of "+usbvm.ListDir)
	folders := flag.Int("folders", 100, "folders of the listing fixture")
	files := flag.Int("files", 100, "files in each folder of the listing fixture")
	out := flag.String("o", "", "also write the tables to this file")
	doc := flag.String("doc", "", "replace the measured blocks of this markdown file (docs/performance-usb.md)")
	apply := flag.String("apply", "", "with -doc: measure nothing, take the blocks from this earlier -o output")
	verbose := flag.Bool("v", false, "show the guest consoles")
	guestArgs := flag.String("guest-args", "", "more arguments for the guest's listing program (-warmup=false: a diagnosis)")
	cpus := flag.Int("smp", 1, "virtual CPUs of the guest")
	gomaxprocs := flag.Int("gomaxprocs", 0, "GOMAXPROCS for the Go programs in the guest (0: Go's default, one per vCPU)")
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
	if *apply != "" {
		raw, err := os.ReadFile(*apply)
		if err == nil {
			err = replaceBlocks(*doc, parseBlocks(string(raw)))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{runs: *runs, size: *size, hcds: strings.Split(*hcds, ","), folders: *folders, files: *files, verbose: *verbose, trace: events, gomaxprocs: *gomaxprocs, guestArgs: *guestArgs, cpus: *cpus}
	blocks, err := bench(cfg, *transfers, *list)
	if err != nil {
		fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
		os.Exit(1)
	}
	var all strings.Builder
	for _, b := range blocks {
		all.WriteString(b.marked())
	}
	fmt.Print(all.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(all.String()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
			os.Exit(1)
		}
	}
	if *doc != "" {
		if err := replaceBlocks(*doc, blocks); err != nil {
			fmt.Fprintf(os.Stderr, "usbbench: %v\n", err)
			os.Exit(1)
		}
	}
}

type config struct {
	runs           int
	size           int64
	hcds           []string
	folders, files int
	verbose        bool
	trace          []string
	gomaxprocs     int
	guestArgs      string
	cpus           int
}

// block is one generated part of the report.
type block struct {
	name string // "transfer" or "listing"
	text string
}

// marked is the block between its markers.
func (b block) marked() string {
	return fmt.Sprintf("<!-- usbbench:%s -->\n\n%s\n<!-- /usbbench:%s -->\n", b.name, strings.TrimSpace(b.text)+"\n", b.name)
}

// parseBlocks finds the marked blocks of an earlier output.
func parseBlocks(s string) []block {
	var out []block
	for {
		i := strings.Index(s, "<!-- usbbench:")
		if i < 0 {
			return out
		}
		s = s[i+len("<!-- usbbench:"):]
		name, rest, ok := strings.Cut(s, " -->")
		if !ok {
			return out
		}
		text, after, ok := strings.Cut(rest, "<!-- /usbbench:"+name+" -->")
		if !ok {
			return out
		}
		out = append(out, block{name, text})
		s = after
	}
}

// replaceBlocks writes each block in place of the same block of the markdown file p; a block the
// file does not have yet is appended.
func replaceBlocks(p string, blocks []block) error {
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	s := string(raw)
	for _, b := range blocks {
		begin, end := "<!-- usbbench:"+b.name+" -->", "<!-- /usbbench:"+b.name+" -->\n"
		i, j := strings.Index(s, begin), strings.Index(s, end)
		if i < 0 || j < i {
			s = strings.TrimRight(s, "\n") + "\n\n" + b.marked()
			continue
		}
		s = s[:i] + b.marked() + s[j+len(end):]
	}
	return os.WriteFile(p, []byte(s), 0o644)
}

func bench(cfg config, transfers, list bool) ([]block, error) {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "cradle-usbbench-*")
	if err != nil {
		return nil, err
	}
	if len(cfg.trace) == 0 {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintf(os.Stderr, "usbbench: QEMU traces in %s\n", work)
	}
	var log io.Writer = io.Discard
	if cfg.verbose {
		log = os.Stderr
	}
	h, err := usbvm.NewHarness(ctx, work, usbvm.HarnessOptions{
		Programs: map[string]string{"/usbvm/bench": "./test/usbvm/benchguest"},
		MTPTools: true,
		UMTP:     true,
	}, log)
	if err != nil {
		return nil, err
	}
	var blocks []block
	if transfers {
		t, err := transferTable(ctx, h, work, cfg)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, block{"transfer", t})
	}
	if list {
		// One block per device model, so that a run on one model replaces only its own.
		for _, hcd := range cfg.hcds {
			one := cfg
			one.hcds = []string{hcd}
			t, err := listTable(ctx, h, work, one)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, block{"listing-" + hcd, t})
		}
	}
	return blocks, nil
}

// boot runs the bench program in a guest on hcd with root as the device's folder (QEMU's).
func boot(ctx context.Context, h *usbvm.Harness, name, hcd, root, args string, timeout time.Duration, cfg config) (string, error) {
	env := map[string]string{"LANG": "C.UTF-8"}
	if cfg.gomaxprocs > 0 {
		env["GOMAXPROCS"] = strconv.Itoa(cfg.gomaxprocs)
	}
	res, err := h.Boot(ctx, name, usbvm.RunOptions{
		HCD:      hcd,
		RootDir:  root,
		Command:  "/usbvm/bench " + args,
		Env:      env,
		Timeout:  timeout,
		MemoryMB: 1024,
		CPUs:     cfg.cpus,
		Trace:    cfg.trace,
	})
	if err != nil {
		if res != nil && errors.Is(err, usbvm.ErrGuestFailed) {
			return "", fmt.Errorf("%s: %w\n%s", hcd, err, lastLines(res.Console, 30))
		}
		return "", fmt.Errorf("%s: %w", hcd, err)
	}
	return res.Console, nil
}

func transferTable(ctx context.Context, h *usbvm.Harness, work string, cfg config) (string, error) {
	runs, size := cfg.runs, cfg.size
	start := time.Now()
	var b strings.Builder
	fmt.Fprintf(&b, "USB transfers through QEMU's usb-mtp (qemu-xhci, usb-ehci) and uMTP-Responder 1.3.10 as a gadget on dummy_hcd (umtp) in a TCG guest (kernel %s), %s file, median of %d runs; Cradle against libmtp %s in the same guest.\n\n",
		h.Kernel.Version, sizeLabel(size), runs, libmtpVersion())
	b.WriteString("| controller | operation | Cradle MB/s | libmtp MB/s | ratio (goal) | whole operation: Cradle s / libmtp s (ratio) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	footnote := false
	for _, hcd := range cfg.hcds {
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
		console, err := boot(ctx, h, "bench-"+hcd, hcd, root,
			fmt.Sprintf("-runs %d -size %d -libmtp-send=%v -umtp=%v", runs, size, hcd != usbvm.EHCI, hcd == usbvm.UMTP), 40*time.Minute, cfg)
		if err != nil {
			return "", err
		}
		ms, ovs, _, err := parse(console)
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
	b.WriteString("\nlibmtp's fixed cost per tool run (device discovery, session, enumeration; a one-byte file) is subtracted from its times for the MB/s columns.\n")
	fmt.Fprintf(&b, "\nMeasured by `make bench-usb` on %s in %s.\n", start.UTC().Format("2006-01-02"), time.Since(start).Round(time.Second))
	return b.String(), nil
}

// listTimeout bounds a listing boot: on a loaded host a round of both tools on uMTP-Responder
// took up to 9 minutes (2026-12-07), and a boot runs a warm-up, the rounds and a profiled run.
const listTimeout = 90 * time.Minute

// listGoal is issue 16's goal for the listing: Cradle at least this many times faster than
// mtp-files.
const listGoal = 2.0

func listTable(ctx context.Context, h *usbvm.Harness, work string, cfg config) (string, error) {
	start := time.Now()
	var b strings.Builder
	var profiles strings.Builder
	fmt.Fprintf(&b, "Listing %s files in %d folders of %d (small files, %s objects with the folders) through %s in a TCG guest (kernel %s, %d vCPU), median of %d runs; Cradle against libmtp %s's `mtp-files` in the same guest, alternately, every run a fresh process or a fresh MTP session.\n\n",
		thousands(cfg.folders*cfg.files), cfg.folders, cfg.files, thousands(cfg.folders*cfg.files+cfg.folders+1), modelName(cfg.hcds), h.Kernel.Version, max(cfg.cpus, 1), cfg.runs, libmtpVersion())
	b.WriteString("| device | Cradle s | mtp-files s | ratio (goal) | Cradle, session to last entry s | runs: Cradle / mtp-files s |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, hcd := range cfg.hcds {
		root := filepath.Join(work, "listroot-"+hcd)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", err
		}
		if hcd != usbvm.UMTP {
			if err := usbvm.WriteListTree(root, cfg.folders, cfg.files); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(os.Stderr, "usbbench: %s: %d runs of a listing of %d files...\n", hcd, cfg.runs, cfg.folders*cfg.files)
		console, err := boot(ctx, h, "list-"+hcd, hcd, root,
			fmt.Sprintf("-list -runs %d -folders %d -files %d -umtp=%v %s", cfg.runs, cfg.folders, cfg.files, hcd == usbvm.UMTP, cfg.guestArgs), listTimeout, cfg)
		if err != nil {
			return "", err
		}
		ms, _, stats, err := parse(console)
		if err != nil {
			return "", fmt.Errorf("%s: %w", hcd, err)
		}
		_, ct := pick(ms, "cradle", "list")
		_, lt := pick(ms, "libmtp", "list")
		var cl []float64
		for _, m := range ms {
			if m.Tool == "cradle" && m.Op == "list" {
				cl = append(cl, m.Transfer)
			}
		}
		if len(ct) == 0 || len(lt) == 0 {
			return "", fmt.Errorf("%s: no listing measurements", hcd)
		}
		ratio := median(lt) / median(ct)
		verdict := "met"
		if ratio < listGoal {
			verdict = "missed"
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2fx (>= %.1fx, %s) | %.2f | %s / %s |\n",
			hcd, median(ct), median(lt), ratio, listGoal, verdict, median(cl), seconds(ct), seconds(lt))
		for _, variant := range []string{"", "no events", "GOMAXPROCS 2"} {
			label := hcd
			if variant != "" {
				label += ", " + variant
			}
			first := true
			for _, s := range stats {
				if s.Variant != variant || s.Calls < 10 {
					continue // the session's few fixed calls
				}
				if first {
					fmt.Fprintf(&profiles, "- %s:", label)
				} else {
					profiles.WriteString(";")
				}
				first = false
				fmt.Fprintf(&profiles, " %s %d calls, %.2f s (%.2f ms each: %.1f transfers of %.2f ms inside the transport)",
					s.Op, s.Calls, s.Seconds, s.Seconds*1e3/float64(s.Calls), float64(s.Transfers)/float64(s.Calls), s.InTransport*1e3/float64(max(s.Transfers, 1)))
			}
			if !first {
				profiles.WriteString("\n")
			}
		}
	}
	b.WriteString("\nThe ratio is mtp-files' time over Cradle's, each the whole operation: finding the device, opening the session, listing every object with its name, kind, size and date, closing (for mtp-files, its process from start to exit, printing included). Cradle lists as a sync's full pass does: device.Device's Walk, one List per folder.\n")
	if profiles.Len() > 0 {
		b.WriteString("\nWhere Cradle's time goes: one more listing through a transport that times every transaction (command to response) and every transfer, as a sync lists (with -guest-args=-variants, also without the event loop's interrupt reads and with GOMAXPROCS 2); operations called 10 times or more:\n\n")
		b.WriteString(profiles.String())
	}
	fmt.Fprintf(&b, "\nMeasured by `make bench-usb` on %s in %s.\n", start.UTC().Format("2006-01-02"), time.Since(start).Round(time.Second))
	return b.String(), nil
}

// modelName describes the device models of hcds for the table's introduction.
func modelName(hcds []string) string {
	var names []string
	for _, hcd := range hcds {
		if hcd == usbvm.UMTP {
			names = append(names, "uMTP-Responder 1.3.10 as a gadget on the guest's dummy_hcd")
		} else {
			names = append(names, "QEMU's usb-mtp behind "+hcd)
		}
	}
	return strings.Join(names, ", ")
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// seconds lists the runs' times in the order they ran.
func seconds(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, ", ")
}

// parse reads the guest's BENCH lines.
func parse(console string) ([]measurement, map[string]float64, []opStat, error) {
	var ms []measurement
	var stats []opStat
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
				return nil, nil, nil, fmt.Errorf("BENCH line %q: %w", line, err)
			}
			ms = append(ms, m)
		case "overhead":
			var o overhead
			if err := json.Unmarshal([]byte(payload), &o); err != nil {
				return nil, nil, nil, fmt.Errorf("BENCH line %q: %w", line, err)
			}
			ovs[o.Op] = o.Seconds
		case "opstat":
			var s opStat
			if err := json.Unmarshal([]byte(payload), &s); err != nil {
				return nil, nil, nil, fmt.Errorf("BENCH line %q: %w", line, err)
			}
			stats = append(stats, s)
		}
	}
	if len(ms) == 0 {
		return nil, nil, nil, errors.New("the guest printed no measurements")
	}
	return ms, ovs, stats, nil
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
