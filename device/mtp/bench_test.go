package mtp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// Benchmarks of the initiator against the emulator: every byte goes through the MTP codec and
// the emulated USB pipes. `go test -run XXX -bench . -count 5 ./device/mtp/` (make bench).

const benchSize = 100 << 20

func benchDevice(b *testing.B, opts emulator.Options, setup func(dir string)) (*mtp.Device, string) {
	b.Helper()
	dir := b.TempDir()
	if setup != nil {
		setup(dir)
	}
	opts.Logger = testLogger()
	emu, err := emulator.New(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	dev, err := mtp.Open(context.Background(), emu, mtp.Options{Logger: opts.Logger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	return dev, dir
}

// BenchmarkGet100MB reads a 100 MB file from the device (GetPartialObject64 chunks, or one
// GetObject where partial reads are not offered).
func BenchmarkGet100MB(b *testing.B) {
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{
		{"partial", emulator.Options{}},
		{"getobject", emulator.Options{NoPartial: true}},
	} {
		b.Run(cfg.name, func(b *testing.B) {
			data := random(b, benchSize)
			dev, _ := benchDevice(b, cfg.opts, func(dir string) {
				if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
					b.Fatal(err)
				}
			})
			ctx := context.Background()
			b.SetBytes(benchSize)
			b.ResetTimer()
			for b.Loop() {
				r, err := dev.Open(ctx, internal, "big.bin", 0)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				if err != nil || n != benchSize {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkSend100MB writes a 100 MB file to the device (SendObjectInfo + SendObject) and
// deletes it.
func BenchmarkSend100MB(b *testing.B) {
	data := random(b, benchSize)
	dev, _ := benchDevice(b, emulator.Options{}, nil)
	ctx := context.Background()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := dev.Create(ctx, internal, "sent.bin", benchSize, time.Time{}, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := dev.Delete(ctx, internal, "sent.bin"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkList10k lists a folder of 10,000 files with one GetObjectPropList, and object by
// object (GetObjectInfo each) on a device without property lists.
func BenchmarkList10k(b *testing.B) {
	for _, cfg := range []struct {
		name string
		opts emulator.Options
	}{
		{"proplist", emulator.Options{}},
		{"objectinfo", emulator.Options{PropList: emulator.PropListAbsent}},
	} {
		b.Run(cfg.name, func(b *testing.B) {
			dev, _ := benchDevice(b, cfg.opts, func(dir string) {
				d := filepath.Join(dir, "many")
				os.Mkdir(d, 0o755)
				for i := range 10000 {
					if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("IMG_%05d.jpg", i)), []byte("x"), 0o644); err != nil {
						b.Fatal(err)
					}
				}
			})
			ctx := context.Background()
			var objs []device.Object
			b.ResetTimer()
			for b.Loop() {
				var err error
				if objs, err = dev.List(ctx, internal, "many"); err != nil || len(objs) != 10000 {
					b.Fatalf("List = %d objects, %v", len(objs), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10000, "µs/object")
		})
	}
}

// BenchmarkCreateSmall creates small files on the device, a hundred to a folder, as a first sync
// of many small files does (SendObjectInfo, SendObject and GetObjectInfo of the new object, the
// folder created and listed every hundred files). It reports the process's CPU time per file
// too, steadier than the wall time on a shared machine.
func BenchmarkCreateSmall(b *testing.B) {
	dev, _ := benchDevice(b, emulator.Options{}, nil)
	ctx := context.Background()
	data := []byte("file of the benchmark tree\n")
	mod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		p := fmt.Sprintf("f%04d/file%03d.txt", i/100, i%100)
		if _, err := dev.Create(ctx, internal, p, int64(len(data)), mod, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
