package emulator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// allocatedPer returns the bytes the whole process allocated per call of fn, over n calls.
func allocatedPer(n int, fn func(i int)) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		fn(i)
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// TestSmallTransfersAllocateLittle: syncing many small files must not cost a large buffer per
// file on the device side (it lives in Cradle's process with --emulate). Uploading, reading and
// describing a 100-byte file each allocate far less than one transfer chunk.
func TestSmallTransfersAllocateLittle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%02d.txt", i)), bytes.Repeat([]byte{'r'}, 100), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenDevice(ctx, dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const sid = device.StorageID(0x00010001)
	content := bytes.Repeat([]byte{'x'}, 100)
	mod := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// A first round warms the initiator's caches.
	if _, err := d.Create(ctx, sid, "warm.txt", int64(len(content)), mod, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10 // a transfer chunk is 256 KiB, a receive buffer 1 MiB
	tests := []struct {
		name string
		fn   func(i int) error
	}{
		{"Create", func(i int) error {
			_, err := d.Create(ctx, sid, fmt.Sprintf("w%02d.txt", i), int64(len(content)), mod, bytes.NewReader(content))
			return err
		}},
		{"Open and read", func(i int) error {
			rc, err := d.Open(ctx, sid, fmt.Sprintf("r%02d.txt", i), 0)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && len(b) != 100 {
				err = fmt.Errorf("read %d bytes, want 100", len(b))
			}
			return err
		}},
		{"Stat", func(i int) error {
			_, err := d.Stat(ctx, sid, fmt.Sprintf("w%02d.txt", i))
			return err
		}},
	}
	for _, tt := range tests {
		var ferr error
		per := allocatedPer(50, func(i int) {
			if err := tt.fn(i); err != nil && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			t.Fatalf("%s: %v", tt.name, ferr)
		}
		if per > limit {
			t.Errorf("%s of a 100-byte file allocated %d KiB per file, want at most %d KiB", tt.name, per>>10, limit>>10)
		}
	}
}
