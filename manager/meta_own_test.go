package manager

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
)

// readCounter is an emulated device that counts the reads of Cradle's metadata folder.
type readCounter struct {
	device.Device
	metaReads atomic.Int64
}

func (d *readCounter) Open(ctx context.Context, s device.StorageID, p string, offset int64) (io.ReadCloser, error) {
	if strings.HasPrefix(p, metaDir+"/") {
		d.metaReads.Add(1)
	}
	return d.Device.Open(ctx, s, p, offset)
}

// countingMonitor attaches one emulated device wrapped in a readCounter.
type countingMonitor struct {
	dir string
	dev chan *readCounter
}

func (c *countingMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	d, err := emulator.OpenDevice(ctx, c.dir, emulator.Options{})
	if err != nil {
		return err
	}
	rc := &readCounter{Device: d}
	c.dev <- rc
	report(device.Presence{Key: emulator.Key(c.dir), Connected: true, Device: rc, Label: emulator.Label(c.dir)})
	<-ctx.Done()
	return d.Close()
}

// TestOwnSnapshotNotRead: the device's sync state written by this computer's last session is not
// read back at the next one (the local copy is as new, and reading it costs a transfer of its
// whole size, megabytes for a large partnership); one another computer wrote is.
func TestOwnSnapshotNotRead(t *testing.T) {
	w := newWorld(t)
	for i := range 20 {
		writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("f%02d.txt", i)), "x")
	}
	mon := &countingMonitor{dir: w.phone, dev: make(chan *readCounter, 1)}
	m := w.open(false, mon)
	w.waitDevice(m)
	p := w.addDocs(m)
	dev := <-mon.dev
	for i := range 2 {
		if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			dev.metaReads.Store(0)
		}
	}
	if n := dev.metaReads.Load(); n != 0 {
		t.Errorf("the second session read the device's sync state %d times, though this computer wrote it", n)
	}
}
