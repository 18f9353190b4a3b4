// Command syncprof runs what `cradle sync` runs, in process, under the profiler: it opens a
// config folder with the manager, attaches an emulated device serving a folder, syncs every
// partnership once and writes a CPU profile and the heap profile taken at the highest heap seen.
// The bench's findings (test/bench/findings.md) come from it:
//
//	go run ./test/bench/syncprof -config CFG -emulate PHONE -cpu sync.cpu -heap sync.heap
//	go tool pprof -top -cum sync.cpu
//
// Set the partnership up with the cradle command first (cradle --config CFG --emulate PHONE
// partner add ...).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
	_ "github.com/cradle-sync/cradle/providers/all"
)

func main() {
	config := flag.String("config", "", "the config folder (required)")
	phone := flag.String("emulate", "", "the emulated device's folder (required)")
	cpu := flag.String("cpu", "", "write a CPU profile to `FILE`")
	heap := flag.String("heap", "", "write the heap profile taken at the highest heap to `FILE`")
	flag.Parse()
	if *config == "" || *phone == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*config, *phone, *cpu, *heap); err != nil {
		fmt.Fprintln(os.Stderr, "syncprof:", err)
		os.Exit(1)
	}
}

func run(config, phone, cpu, heap string) error {
	ctx := context.Background()
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mon := emulator.NewMonitor(emulator.Options{Logger: log}, phone)
	m, err := manager.New(ctx, manager.Config{Dir: config, Monitors: []device.Monitor{mon}, NoPlugins: true, Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.WaitDevices(ctx, emulator.Key(phone)); err != nil {
		return err
	}
	t1 := time.Now()
	stop := make(chan struct{})
	peaked := make(chan uint64)
	go func() { peaked <- watchHeap(heap, stop) }()
	ss, err := m.Sync(ctx, manager.SyncOptions{})
	close(stop)
	peak := <-peaked
	if err != nil {
		return err
	}
	for _, s := range ss {
		fmt.Printf("%s: %s, to the device %+v, to the desktop %+v, errors %v\n", s.Name, s.Outcome, s.ToDevice, s.ToDesktop, s.Errors)
	}
	fmt.Printf("start and device %s, sync %s, highest heap in use %d MB\n", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), peak>>20)
	return nil
}

// watchHeap reads the heap size every 100 ms until stop and, when it grew by 5 % over the
// highest so far, writes a heap profile to path (if not empty). It returns the highest
// HeapInuse seen.
func watchHeap(path string, stop <-chan struct{}) uint64 {
	var peak uint64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak+peak/20 {
			continue
		}
		peak = ms.HeapInuse
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "syncprof:", err)
			continue
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			fmt.Fprintln(os.Stderr, "syncprof:", err)
		}
		f.Close()
	}
}
