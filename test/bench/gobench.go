package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchPackages are the packages with Go benchmarks, and what their benchmarks measure.
var benchPackages = []struct{ pkg, what string }{
	{"./device/mtp/", "the MTP initiator against the emulated device: 100 MB get and send, listing 10k objects"},
	{"./repl/", "the engine over in-memory stores: enumeration (the baseline), detection of an unchanged store, one notified change in 1k and 100k items, a first sync with its peak heap"},
	{"./providers/fsstore/", "the desktop store's detection pass against a bare stat walk of a 100k-file tree (the store alone, without the handle file)"},
	{"./providers/contacts/", "vCard parsing and writing the device's contacts file"},
	{"./providers/plugin/", "each store operation directly and through a provider plugin process (gRPC)"},
}

// goBenchmark is one benchmark's results over the runs: each metric's values by unit.
type goBenchmark struct {
	pkg, name string
	units     []string // in order of appearance
	values    map[string][]float64
}

// packages runs the per-package Go benchmarks (-count runs each) and adds their medians.
func (b *bench) packages(ctx context.Context) error {
	s := &section{id: "Go benchmarks", title: "per package"}
	s.intro = fmt.Sprintf("`go test -run '^$' -bench . -count %d` in each package; the median of the %d runs of each\nmetric. They measure the parts in isolation, without processes or the command line.", b.c.pkgRuns, b.c.pkgRuns)
	b.rep.add(s)
	var raw strings.Builder
	raw.WriteString("| package | benchmark | time/op | other metrics (medians) |\n|---|---|---|---|\n")
	var descr []string
	for _, p := range benchPackages {
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-count", strconv.Itoa(b.c.pkgRuns), "-timeout", "30m", p.pkg)
		cmd.Dir = b.c.root
		cmd.Env = append(os.Environ(), "CRADLE_BENCH_TREE="+filepath.Join(b.c.work, "trees", "files-bench-100k"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench %s: %v\n%s", p.pkg, err, out)
		}
		b.c.logf("pkg: %s in %s", p.pkg, time.Since(t0).Round(time.Second))
		results := parseBench(string(out))
		if len(results) == 0 {
			return fmt.Errorf("go test -bench %s printed no benchmark:\n%s", p.pkg, out)
		}
		pkg := strings.Trim(p.pkg, "./")
		descr = append(descr, fmt.Sprintf("`%s`: %s.", pkg, p.what))
		for _, r := range results {
			var other []string
			timeOp := "-"
			for _, u := range r.units {
				v := medianFloat(r.values[u])
				if u == "ns/op" {
					if v > 0 {
						timeOp = fmtDur(time.Duration(v))
					}
					continue
				}
				other = append(other, fmtMetric(v, u))
			}
			fmt.Fprintf(&raw, "| %s | %s | %s | %s |\n", pkg, r.name, timeOp, orDash(strings.Join(other, ", ")))
		}
	}
	s.notes = descr
	s.raw = raw.String()
	s.command = fmt.Sprintf("go test -run '^$' -bench . -count %d ./device/mtp/ ./repl/ ./providers/...", b.c.pkgRuns)
	return nil
}

// parseBench reads `go test -bench` output: lines "BenchmarkX-2  N  v unit  v unit ...".
func parseBench(out string) []*goBenchmark {
	var (
		order []*goBenchmark
		by    = map[string]*goBenchmark{}
		pkg   string
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		r := by[name]
		if r == nil {
			r = &goBenchmark{pkg: pkg, name: name, values: map[string][]float64{}}
			by[name] = r
			order = append(order, r)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			u := f[i+1]
			if _, ok := r.values[u]; !ok {
				r.units = append(r.units, u)
			}
			r.values[u] = append(r.values[u], v)
		}
	}
	return order
}

// fmtMetric formats a benchmark metric: bytes per operation in KB or MB, the rest as they are.
func fmtMetric(v float64, unit string) string {
	switch unit {
	case "B/op":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.1f MB/op", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1f kB/op", v/1e3)
		}
		return fmt.Sprintf("%.0f B/op", v)
	case "allocs/op":
		return fmt.Sprintf("%.0f allocs/op", v)
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 1:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
