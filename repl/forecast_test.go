package repl_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
	"pgregory.net/rapid"
)

// recStore is a memory store that records each write and delete the engine makes, in the terms
// a Forecast lists them.
type recStore struct {
	*memstore.Store
	side string
	log  *[]string
}

func (r recStore) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	e, err := r.Store.Write(ctx, req)
	if err == nil {
		act := repl.ActUpdate
		switch {
		case req.Handle == "":
			act = repl.ActCreate
		case req.Cause == repl.CauseNone && req.Name != req.Handle:
			act = repl.ActRename
		}
		*r.log = append(*r.log, fmt.Sprintf("%s %s %q %v", r.side, act, req.Name, req.Cause))
	}
	return e, err
}

func (r recStore) Delete(ctx context.Context, h string, expected repl.Stamp) error {
	return r.DeleteFor(ctx, h, expected, repl.CauseNone)
}

func (r recStore) DeleteFor(ctx context.Context, h string, expected repl.Stamp, cause repl.Cause) error {
	err := r.Store.Delete(ctx, h, expected)
	if err == nil {
		*r.log = append(*r.log, fmt.Sprintf("%s %s %q %v", r.side, repl.ActDelete, h, cause))
	}
	return err
}

// forecastLines writes a forecast's store actions as recStore records them, and its conflicts.
func forecastLines(fc *repl.Forecast) (actions, conflicts []string) {
	for _, pa := range fc.Actions {
		if pa.Action == repl.ActConflict {
			conflicts = append(conflicts, pa.Name)
			continue
		}
		actions = append(actions, fmt.Sprintf("%s %s %q %v", pa.To, pa.Action, pa.Name, pa.Cause))
	}
	slices.Sort(actions)
	slices.Sort(conflicts)
	return actions, conflicts
}

// TestPropertyForecastIsExact: random histories of edits on both sides (creates, edits of one
// item on both sides, deletes of files and folders, renames) under every policy and direction;
// before each session a Forecast, then the session itself: the forecast changed neither store
// nor the handle file, and the session made exactly the writes and deletes the forecast listed
// (with the same causes), and recorded exactly the conflicts it listed.
func TestPropertyForecastIsExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "forecast-prop-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "a.dat")
		hf := openProp(t, path)
		defer hf.Close()
		policy := rapid.SampledFrom(propPolicies).Draw(t, "policy")
		a := memstore.New(memstore.Options{Sorted: true, Hashes: rapid.Bool().Draw(t, "desktop hashes")})
		b := memstore.New(memstore.Options{Sorted: true,
			NonAtomic:       rapid.Bool().Draw(t, "device non-atomic"),
			TimeGranularity: rapid.SampledFrom([]time.Duration{0, time.Second}).Draw(t, "device time granularity"),
		})
		clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		tick := func() time.Time { clock = clock.Add(1100 * time.Millisecond); return clock }
		n := 0
		for step := range rapid.IntRange(1, 40).Draw(t, "steps") {
			s := []*memstore.Store{a, b}[rapid.IntRange(0, 1).Draw(t, "side (0 desktop, 1 device)")]
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 0, 1, 2:
				n++
				name := rapid.SampledFrom(propNames).Draw(t, "name")
				_ = s.Put(name, []byte(fmt.Sprintf("v%d%s", n, string(make([]byte, n%5)))), tick())
			case 3:
				if names := s.Names(); len(names) > 0 {
					_ = s.Remove(rapid.SampledFrom(names).Draw(t, "victim"))
				}
			case 4:
				if files := slices.Sorted(maps.Keys(s.Files())); len(files) > 0 {
					_ = s.Rename(rapid.SampledFrom(files).Draw(t, "from"), rapid.SampledFrom(propNames).Draw(t, "to"))
				}
			default:
				now := tick()
				cfg := repl.Config{
					Direction:           rapid.SampledFrom([]repl.Direction{repl.BothWays, repl.BothWays, repl.AToB, repl.BToA}).Draw(t, "direction"),
					Policy:              policy,
					MassDeleteThreshold: rapid.SampledFrom([]float64{0, -1}).Draw(t, "threshold"),
					Now:                 func() time.Time { return now },
				}
				var log []string
				sa := repl.Side{Name: "desktop", Store: recStore{a, "desktop", &log}}
				sb := repl.Side{Name: "device", Store: recStore{b, "device", &log}}
				filesA, filesB := a.Files(), b.Files()
				fileBefore, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if propDebug {
					fmt.Printf("step %d: desktop %v device %v\n-- forecast\n", step, a.Files(), b.Files())
					repl.SetTrace(func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) })
				}
				fc, err := hf.Forecast(context.Background(), sa, sb, cfg)
				if propDebug {
					fmt.Printf("-- sync\n")
				}
				if err != nil {
					t.Fatalf("step %d: Forecast: %v", step, err)
				}
				if len(log) > 0 || !maps.Equal(filesA, a.Files()) || !maps.Equal(filesB, b.Files()) {
					t.Fatalf("step %d: Forecast changed a store: %v", step, log)
				}
				if fileAfter, _ := os.ReadFile(path); string(fileAfter) != string(fileBefore) {
					t.Fatalf("step %d: Forecast changed the handle file", step)
				}
				rep, err := hf.Sync(context.Background(), sa, sb, cfg)
				repl.SetTrace(nil)
				var md *repl.MassDeleteError
				if errors.As(err, &md) {
					if fc.MassDelete == nil || *fc.MassDelete != *md {
						t.Fatalf("step %d: Sync stopped at the guard (%v), the forecast said %+v", step, md, fc.MassDelete)
					}
					if len(log) > 0 {
						t.Fatalf("step %d: the guard stopped the sync after %v", step, log)
					}
					cfg.AllowMassDelete = true
					rep, err = hf.Sync(context.Background(), sa, sb, cfg)
				} else if fc.MassDelete != nil {
					t.Fatalf("step %d: the forecast said the guard stops the sync (%+v); Sync = %v", step, fc.MassDelete, err)
				}
				if err != nil {
					t.Fatalf("step %d: Sync: %v", step, err)
				}
				var conflicts []string
				for _, c := range rep.Conflicts {
					if c.Updated.Equal(now) {
						conflicts = append(conflicts, c.Name)
					}
				}
				slices.Sort(conflicts)
				slices.Sort(log)
				wantActs, wantConfs := forecastLines(fc)
				if !slices.Equal(log, wantActs) {
					t.Fatalf("step %d (%v, %v): the session did\n  %q\nthe forecast said\n  %q\nskipped %v, forecast skipped %v", step, cfg.Direction, policy, log, wantActs, rep.Skipped, fc.Skipped)
				}
				if !slices.Equal(conflicts, wantConfs) {
					t.Fatalf("step %d: the session left conflicts %q, the forecast said %q", step, conflicts, wantConfs)
				}
				if len(rep.Skipped) != len(fc.Skipped) {
					t.Fatalf("step %d: the session skipped %v, the forecast said %v", step, rep.Skipped, fc.Skipped)
				}
			}
		}
	})
}
