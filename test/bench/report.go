package main

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"
)

// findings is the hand-written analysis of the profiles (where the time and the memory go, what
// was fixed), kept beside the program and printed after the figures.
//
//go:embed findings.md
var findings string

// report collects the figures of one run.
type report struct {
	started, finished        time.Time
	args                     []string
	machineStart, machineEnd machine
	sections                 []*section
}

// section is one part's figures.
type section struct {
	id, title string
	// intro says what is measured and how.
	intro string
	rows  []row
	// notes follow the table (spreads, checks, extra figures).
	notes []string
	// raw is markdown included as it is (P3's table, the per-package benchmarks).
	raw string
	// command reproduces the section alone.
	command string
}

// row is one figure: Cradle's median against its baseline's.
type row struct {
	what     string
	cradle   string
	baseline string
	ratio    string
	goal     string
	verdict  string // "met", "missed" or "" (no goal)
}

func (r *report) add(s *section) { r.sections = append(r.sections, s) }

// verdict says whether a figure met its goal.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *report) markdown(c *config) string {
	// Report order, whatever order the parts ran in.
	rank := map[string]int{"P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5}
	slices.SortStableFunc(r.sections, func(a, b *section) int {
		ra, rb := rank[a.id], rank[b.id]
		if ra == 0 {
			ra = 99
		}
		if rb == 0 {
			rb = 99
		}
		return ra - rb
	})
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Performance: Cradle against its baselines\n\n")
	w("Written by `make bench` (`go run ./test/bench`); do not edit by hand: the analysis comes from\n")
	w("`test/bench/findings.md`. Every figure is the median of several runs, with its baseline\n")
	w("measured in the same run, alternately with it, so that the ratio holds on a busy machine.\n\n")
	cmd := "make bench"
	if len(r.args) > 0 {
		cmd = "go run ./test/bench " + strings.Join(r.args, " ")
	}
	w("Measured %s to %s (%s) with `%s`.\n\n", r.started.UTC().Format("2006-01-02 15:04"), r.finished.UTC().Format("15:04 MST"),
		r.finished.Sub(r.started).Round(time.Second), cmd)
	m := r.machineStart
	w("| machine | |\n|---|---|\n")
	w("| CPU | %s, %d cores |\n", m.cpu, m.cores)
	w("| memory | %s |\n", m.memTotal)
	w("| system | %s |\n", m.kernel)
	w("| Go | %s |\n", m.goVer)
	w("| work folder | %s |\n", m.fs)
	w("| load average (1, 5, 15 min) | %s at the start, %s at the end |\n\n", m.load, r.machineEnd.load)
	w("The machine is shared: other work ran beside the benchmarks, which is why every ratio compares\n")
	w("runs made at the same time.\n\n")

	w("## Summary\n\n")
	w("| | figure | Cradle | baseline | ratio | goal | |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.sections {
		for _, row := range s.rows {
			if row.goal == "" {
				continue
			}
			w("| %s | %s | %s | %s | %s | %s | %s |\n", s.id, row.what, row.cradle, orDash(row.baseline), orDash(row.ratio), row.goal, row.verdict)
		}
	}
	w("\n")
	for _, s := range r.sections {
		w("## %s: %s\n\n", s.id, s.title)
		if s.intro != "" {
			w("%s\n\n", strings.TrimSpace(s.intro))
		}
		if len(s.rows) > 0 {
			w("| figure | Cradle | baseline | ratio | goal | |\n|---|---|---|---|---|---|\n")
			for _, row := range s.rows {
				w("| %s | %s | %s | %s | %s | %s |\n", row.what, row.cradle, orDash(row.baseline), orDash(row.ratio), orDash(row.goal), row.verdict)
			}
			w("\n")
		}
		for _, n := range s.notes {
			w("- %s\n", n)
		}
		if len(s.notes) > 0 {
			w("\n")
		}
		if s.raw != "" {
			w("%s\n\n", strings.TrimSpace(s.raw))
		}
		if s.command != "" {
			w("Reproduce: `%s`\n\n", s.command)
		}
	}
	w("%s\n", strings.TrimSpace(findings))
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// durations are the times of several runs.
type durations []time.Duration

func (d durations) median() time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is "min-max over N runs".
func (d durations) spread() string {
	if len(d) == 0 {
		return "no runs"
	}
	return fmt.Sprintf("%s-%s over %d runs", fmtDur(slices.Min(d)), fmtDur(slices.Max(d)), len(d))
}

// medianFloat returns the median of xs.
func medianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtDur formats a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

// fmtMB formats bytes in MB (10^6).
func fmtMB(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

// ratio formats a/b.
func ratio(a, b float64) string { return fmt.Sprintf("%.2fx", a/b) }
