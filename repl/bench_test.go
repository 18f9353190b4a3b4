package repl_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// Benchmarks (run with `go test -run XXX -bench . -benchtime 10x ./repl/`):
//
//   - BenchmarkEnumerate: the memory store's bare enumeration, the baseline, in random order
//     (matched by a hash join) and in handle order like a folder walk (merged with a cursor).
//   - BenchmarkDetectUnchanged: full change detection of the same unchanged store (goal: little
//     over the baseline).
//   - BenchmarkNotifiedChange: one notified change detected and synced, in a 1k and a 100k store
//     (goal: the same time).
//   - BenchmarkSync: a first sync of n items between two memory stores, with allocations and the
//     peak heap (goal for 100k: under 200 MB).

// fill puts n small files in s, in 100 folders.
func fill(b *testing.B, s *memstore.Store, n int) {
	b.Helper()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("dir%02d/file%06d.txt", i%100, i)
		if err := s.Put(name, []byte(fmt.Sprintf("content of file %d, a line of text", i)), t0.Add(time.Duration(i)*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFile(b *testing.B) *repl.HandleFile {
	b.Helper()
	hf, err := repl.Open(filepath.Join(b.TempDir(), "Repl.dat"), repl.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hf.Close() })
	return hf
}

var sizes = []int{1_000, 100_000}

// orders are the two enumeration orders benchmarked.
var orders = []struct {
	name   string
	sorted bool
}{{"random", false}, {"sorted", true}}

func BenchmarkEnumerate(b *testing.B) {
	for _, o := range orders {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", o.name, n), func(b *testing.B) { benchEnumerate(b, n, o.sorted) })
		}
	}
}

func benchEnumerate(b *testing.B, n int, sorted bool) {
	s := memstore.New(memstore.Options{Sorted: sorted})
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it, err := s.Enumerate(ctx)
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for {
			e, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if s.IsItemReplicated(e) {
				count++
			}
		}
		it.Close()
		if count != n+100 {
			b.Fatalf("enumerated %d items, want %d", count, n+100)
		}
	}
}

func BenchmarkDetectUnchanged(b *testing.B) {
	for _, o := range orders {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", o.name, n), func(b *testing.B) { benchDetect(b, n, o.sorted) })
		}
	}
}

func benchDetect(b *testing.B, n int, sorted bool) {
	s := memstore.New(memstore.Options{Sorted: sorted})
	fill(b, s, n)
	hf := benchFile(b)
	side := repl.Side{Name: "desktop", Store: s}
	if _, err := hf.Detect(context.Background(), side); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := hf.Detect(context.Background(), side)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Changes() != 0 || rep.Seen != n+100 {
			b.Fatalf("detection of an unchanged store: %+v", rep)
		}
	}
}

func BenchmarkNotifiedChange(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			a, d := memstore.New(memstore.Options{}), memstore.New(memstore.Options{})
			fill(b, a, n)
			hf := benchFile(b)
			ca, cd := repl.NewChangeSet(), repl.NewChangeSet()
			sa := repl.Side{Name: "desktop", Store: a, Changes: ca}
			sd := repl.Side{Name: "device", Store: d, Changes: cd}
			if _, err := hf.Sync(ctx, sa, sd, repl.Config{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := (i * 7919) % n
				name := fmt.Sprintf("dir%02d/file%06d.txt", k%100, k)
				b.StopTimer()
				if err := a.Put(name, []byte(fmt.Sprint("edit ", i)), time.Now()); err != nil {
					b.Fatal(err)
				}
				ca.Notify(repl.Notification{Kind: repl.ItemModified, Handle: name})
				b.StartTimer()
				rep, err := hf.Sync(ctx, sa, sd, repl.Config{})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Detected[0].Full || rep.Applied["device"].Updated != 1 {
					b.Fatalf("one notified change: detected %+v, applied %+v", rep.Detected, rep.Applied["device"])
				}
			}
		})
	}
}

// peakHeap samples the heap while fn runs and returns the highest value seen.
func peakHeap(fn func()) uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

func BenchmarkSync(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var peak, base uint64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				a, d := memstore.New(memstore.Options{}), memstore.New(memstore.Options{})
				fill(b, a, n)
				hf := benchFile(b)
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base = ms.HeapAlloc
				b.StartTimer()
				p := peakHeap(func() {
					rep, err := hf.Sync(context.Background(), repl.Side{Name: "desktop", Store: a}, repl.Side{Name: "device", Store: d}, repl.Config{})
					if err != nil {
						b.Fatal(err)
					}
					if rep.Applied["device"].Created != n+100 {
						b.Fatalf("sync created %d items, want %d", rep.Applied["device"].Created, n+100)
					}
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "engine-heap-MB")
		})
	}
}
