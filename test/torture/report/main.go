// Command report writes docs/reliability.md from a run of the reliability campaign: the records
// test/torture appends to CRADLE_TORTURE_REPORT (one JSON object per campaign), the output of
// scripts/fuzz, and the hand-written account of what the campaign found (found.md, beside this
// program). scripts/torture runs it; run alone:
//
//	go run ./test/torture/report -records records.jsonl -fuzz fuzz.log -fuzztime 30s -out docs/reliability.md
package main

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// found is the account of what the campaign found and what was fixed.
//
//go:embed found.md
var found string

// record is what test/torture writes per campaign (see its harness).
type record struct {
	ID      string   `json:"id"`
	Test    string   `json:"test"`
	What    string   `json:"what"`
	Full    bool     `json:"full"`
	Seed    uint64   `json:"seed"`
	Count   int      `json:"count"`
	Failed  int      `json:"failed"`
	Lost    int      `json:"lost"`
	Corrupt int      `json:"corrupt"`
	Extra   int      `json:"extra"`
	Seconds float64  `json:"seconds"`
	Notes   []string `json:"notes"`
}

// titles name each part of the campaign.
var titles = map[string]string{
	"R1": "killed in the middle of a sync",
	"R2": "device gone in the middle of a transfer",
	"R3": "hostile input: fuzzed decoders, hostile names",
	"R4": "damaged state and settings",
	"R5": "no space left",
	"R6": "mass deletion",
	"R7": "the replication engine's random histories",
}

func main() {
	records := flag.String("records", "", "the campaign's JSON records (required)")
	fuzzLog := flag.String("fuzz", "", "the output of scripts/fuzz")
	fuzzTime := flag.String("fuzztime", "", "FUZZTIME of that run")
	started := flag.String("started", "", "when the campaign started (RFC 3339)")
	command := flag.String("command", "make torture", "the command that ran the campaign")
	out := flag.String("out", "docs/reliability.md", "where to write the report; - prints it")
	flag.Parse()
	if *records == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*records, *fuzzLog, *fuzzTime, *started, *command, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(recordsPath, fuzzLog, fuzzTime, started, command, out string) error {
	recs, err := readRecords(recordsPath)
	if err != nil {
		return err
	}
	var fz *fuzzRun
	if fuzzLog != "" {
		if fz, err = readFuzz(fuzzLog); err != nil {
			return err
		}
	}
	text := render(recs, fz, fuzzTime, started, command)
	if out == "-" {
		_, err := os.Stdout.WriteString(text)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".report-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), out)
}

func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("records: %q: %w", sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("records: %s holds no campaign", path)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// fuzzRun is what scripts/fuzz printed.
type fuzzRun struct {
	targets []fuzzTarget
	summary string // its last line
}

type fuzzTarget struct {
	ok          bool
	pkg, target string
	execs       string
	failure     string
}

// readFuzz parses scripts/fuzz's lines: "ok    PKG TARGET N execs", "FAIL  PKG TARGET" followed by
// the output, and "fuzz: N targets, ...".
func readFuzz(path string) (*fuzzRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fuzz log: %w", err)
	}
	fz := &fuzzRun{}
	var cur *fuzzTarget
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "ok" && f[len(f)-1] == "execs":
			fz.targets = append(fz.targets, fuzzTarget{ok: true, pkg: f[1], target: f[2], execs: f[3]})
			cur = nil
		case len(f) >= 3 && f[0] == "FAIL" && strings.HasPrefix(f[2], "Fuzz"):
			fz.targets = append(fz.targets, fuzzTarget{pkg: f[1], target: f[2]})
			cur = &fz.targets[len(fz.targets)-1]
		case strings.HasPrefix(l, "fuzz: "):
			fz.summary = strings.TrimPrefix(l, "fuzz: ")
			cur = nil
		case cur != nil && strings.TrimSpace(l) != "" && len(cur.failure) < 2000:
			cur.failure += l + "\n"
		}
	}
	if len(fz.targets) == 0 {
		return nil, fmt.Errorf("fuzz log %s lists no target", path)
	}
	return fz, nil
}

// result says a campaign's outcome in a few words.
func result(r record) string {
	trials := fmt.Sprintf("%d trials", r.Count)
	if r.Count == 1 {
		trials = "1 trial"
	}
	if r.Failed == 0 && r.Lost == 0 && r.Corrupt == 0 && r.Extra == 0 {
		return trials + ", 0 lost, 0 corrupt, 0 left over"
	}
	return fmt.Sprintf("**%s, %d failed: %d lost, %d corrupt, %d left over**", trials, r.Failed, r.Lost, r.Corrupt, r.Extra)
}

func render(recs []record, fz *fuzzRun, fuzzTime, started, command string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	full := true
	for _, r := range recs {
		full = full && r.Full
	}
	w("# Reliability: the campaign and what it found\n\n")
	w("Written by `make torture` (scripts/torture, which runs test/torture with CRADLE_TORTURE=1, repl's\n")
	w("property tests and scripts/fuzz, then this report's program test/torture/report); do not edit by\n")
	w("hand: the account of what was found comes from `test/torture/report/found.md`.\n\n")
	when := time.Now().UTC()
	if t, err := time.Parse(time.RFC3339, started); err == nil {
		when = t.UTC()
	}
	form := "the full campaign"
	if !full {
		form = "the short campaign (the one `make test` runs)"
	}
	w("Run %s with `%s`: %s, on %s (%d cores, %s, Go %s).\n\n", when.Format("2006-01-02 15:04 MST"), command, form, cpuModel(), runtime.NumCPU(), kernel(), strings.TrimPrefix(runtime.Version(), "go"))
	w("Every campaign checks, by content hash, that both sides hold exactly what the simulated user\n")
	w("made; a trial that finds a file lost, corrupt or left over (a temporary file, a copy) fails.\n")
	w("`go test ./test/torture/` (part of `make test`) runs the short form in about a minute: 10 R1\n")
	w("trials, 5 R2 trials, R3 to R6 once. Each test logs its random seed; CRADLE_TORTURE_SEED replays it.\n\n")

	w("## Summary\n\n| | campaign | result | time |\n|---|---|---|---|\n")
	for _, r := range recs {
		w("| %s | %s | %s | %.0f s |\n", r.ID, r.What, result(r), r.Seconds)
	}
	if fz != nil {
		failed := 0
		for _, t := range fz.targets {
			if !t.ok {
				failed++
			}
		}
		res := fmt.Sprintf("%d targets, no crash", len(fz.targets))
		if failed > 0 {
			res = fmt.Sprintf("**%d targets, %d crashed**", len(fz.targets), failed)
		}
		w("| R3 | every Fuzz target (decoders of MTP containers and datasets, vCards, state records and snapshots, plugin messages, names) for %s each | %s | %s |\n", orDash(fuzzTime), res, fuzzWall(fz.summary))
	}
	w("\n")

	ids := []string{"R1", "R2", "R3", "R4", "R5", "R6", "R7"}
	for _, id := range ids {
		w("## %s: %s\n\n", id, titles[id])
		for _, r := range recs {
			if r.ID != id {
				continue
			}
			w("**%s** (`%s`): %s.", r.What, r.Test, result(r))
			if r.Seed != 0 {
				w(" Seed %d.", r.Seed)
			}
			w("\n\n")
			for _, n := range r.Notes {
				w("- %s\n", n)
			}
			if len(r.Notes) > 0 {
				w("\n")
			}
		}
		if id == "R2" {
			w("Over real USB, `TORTURE_USB=1 make torture` adds test/torture/realusb: `cradle sync` in a QEMU\n")
			w("guest against QEMU's usb-mtp device, pulled out over QMP (device_del) at a random moment of an\n")
			w("upload, several times, each followed by device_add and a sync that must complete (checked by hash on\n")
			w("the host). test/usbvm's scenario TestCradleUnplug (`make test-usb`) does the same once with a\n")
			w("160 MB upload.\n\n")
		}
		if id == "R7" {
			w("The property tests of repl (`repl/prop_test.go`), with CRADLE_TORTURE=1 and a large\n")
			w("-rapid.checks: random histories run against the engine with in-memory stores, each checked\n")
			w("for lost updates after every session and for convergence and duplicates at the end.\n\n")
		}
		if id == "R3" && fz != nil {
			w("Fuzzing: `FUZZTIME=%s scripts/fuzz`, every Fuzz target of the module one after another, each\n", orDash(fuzzTime))
			w("with `go test -fuzz` on all %d cores (%s). A crash would leave its input in the package's\n", runtime.NumCPU(), fuzzWall(fz.summary))
			w("testdata/fuzz folder, where it stays as a regression case.\n\n")
			w("| package | target | executions | result |\n|---|---|---|---|\n")
			for _, t := range fz.targets {
				res := "no crash"
				if !t.ok {
					res = "**crashed**"
				}
				w("| %s | %s | %s | %s |\n", strings.TrimPrefix(t.pkg, "github.com/cradle-sync/cradle/"), t.target, orDash(t.execs), res)
			}
			w("\n")
			for _, t := range fz.targets {
				if !t.ok {
					w("%s %s:\n\n```\n%s```\n\n", t.pkg, t.target, t.failure)
				}
			}
		}
	}
	w("%s\n\n", strings.TrimSpace(found))
	w("## Reproduce\n\n")
	w("    make torture                                   # the full campaign and the fuzzing, then this file\n")
	w("    FUZZTIME=5m make torture                       # longer fuzzing\n")
	w("    go test ./test/torture/                        # the short campaign (part of make test)\n")
	w("    CRADLE_TORTURE=1 go test -run TestKillDuringSync -v ./test/torture/   # one campaign, full\n")
	w("    CRADLE_TORTURE_TRIALS=500 CRADLE_TORTURE_SEED=42 go test -run TestDeviceGone ./test/torture/\n")
	w("    CRADLE_TORTURE=1 go test ./repl/ -run Property -count=1 -rapid.checks=30000   # R7\n")
	return b.String()
}

// fuzzWall turns "18 targets, 30s each, 560 s wall" into "560 s wall, about N CPU-minutes".
func fuzzWall(summary string) string {
	var n int
	var each string
	var wall int
	if _, err := fmt.Sscanf(summary, "%d targets, %s each, %d s wall", &n, &each, &wall); err != nil {
		return summary
	}
	return fmt.Sprintf("%d s wall, about %.0f CPU-minutes", wall, float64(wall*runtime.NumCPU())/60)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "an unknown CPU"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "an unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}
