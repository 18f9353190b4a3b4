package folder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// MonitorOptions tune a Monitor. The zero value watches /media and /run/media every second.
type MonitorOptions struct {
	// Roots are the folders under which a new mount point is taken for a removable drive
	// (default /media and /run/media, where udisks and desktop environments mount them).
	Roots []string
	// Interval is how often the mount table and the added folders are checked (default 1 s).
	Interval time.Duration
	// MountInfo is the mount table to read (default /proc/self/mountinfo).
	MountInfo string
	// Device tunes the devices the Monitor opens.
	Device Options
}

// Monitor notices removable drives mounted under /media and /run/media (from the mount table)
// and folders the user adds, and reports each as a folder device (device.Monitor).
//
// Concurrency: Add and Remove may be called from any goroutine, before or during Run. Run is
// called once at a time; the Monitor owns the devices it opens and closes them when they leave
// or when Run returns.
type Monitor struct {
	opts MonitorOptions

	mu    sync.Mutex
	added map[string]bool // absolute folders the user added
	wake  chan struct{}
}

var _ device.Monitor = (*Monitor)(nil)

// NewMonitor returns a Monitor.
func NewMonitor(opts MonitorOptions) *Monitor {
	if len(opts.Roots) == 0 {
		opts.Roots = []string{"/media", "/run/media"}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MountInfo == "" {
		opts.MountInfo = mountsFile
	}
	return &Monitor{opts: opts, added: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Add makes a folder a device: it is reported at once by a running Run (or by the next Run) and
// for as long as it exists.
func (m *Monitor) Add(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("add folder device %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("add folder device %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("add folder device %s: not a folder", abs)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	m.mu.Lock()
	m.added[abs] = true
	m.mu.Unlock()
	m.poke()
	return nil
}

// Remove stops treating a folder added with Add as a device; a running Run reports it gone.
func (m *Monitor) Remove(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	m.mu.Lock()
	delete(m.added, abs)
	m.mu.Unlock()
	m.poke()
}

func (m *Monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Key is the Presence key of the folder device at the absolute path dir.
func Key(dir string) string { return "folder:" + dir }

// Run reports each drive and added folder present now, then arrivals and departures, until ctx
// is done. A folder that is present but cannot be opened is reported with Err set.
func (m *Monitor) Run(ctx context.Context, report func(device.Presence)) error {
	open := map[string]*Device{} // by folder
	failed := map[string]bool{}  // folders reported with Err, not retried until they leave
	defer func() {
		for _, d := range open {
			d.Close()
		}
	}()
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		want := m.scan()
		// Departures first, so a drive re-mounted elsewhere is seen leaving, then arriving.
		for _, dir := range sortedKeys(open) {
			if want[dir] {
				continue
			}
			d := open[dir]
			delete(open, dir)
			d.Gone(fmt.Errorf("%s was unmounted or removed", dir))
			d.Close()
			report(device.Presence{Key: Key(dir), Connected: false, Label: label(dir)})
		}
		for dir := range failed {
			if !want[dir] {
				delete(failed, dir)
				report(device.Presence{Key: Key(dir), Connected: false, Label: label(dir)})
			}
		}
		for _, dir := range sortedKeys(want) {
			if open[dir] != nil || failed[dir] {
				continue
			}
			d, err := Open(dir, m.opts.Device)
			if err != nil {
				failed[dir] = true
				report(device.Presence{Key: Key(dir), Connected: true, Label: label(dir),
					Err: fmt.Errorf("%w; check that the drive is mounted and readable by you", err)})
				continue
			}
			open[dir] = d
			report(device.Presence{Key: Key(dir), Connected: true, Device: d, Label: label(dir)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.wake:
		}
	}
}

// scan returns the folders that are devices now: drives mounted under the roots, and added
// folders that still exist.
func (m *Monitor) scan() map[string]bool {
	want := map[string]bool{}
	if f, err := os.Open(m.opts.MountInfo); err == nil {
		mounts, err := ReadMounts(f)
		f.Close()
		if err == nil {
			for _, mt := range mounts {
				if m.underRoot(mt.Point) {
					want[mt.Point] = true
				}
			}
		}
	}
	m.mu.Lock()
	for dir := range m.added {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			want[dir] = true
		}
	}
	m.mu.Unlock()
	return want
}

// underRoot tells whether a mount point lies below one of the roots (not at a root itself).
func (m *Monitor) underRoot(point string) bool {
	for _, r := range m.opts.Roots {
		r = strings.TrimRight(r, "/")
		if strings.HasPrefix(point, r+"/") && len(point) > len(r)+1 {
			return true
		}
	}
	return false
}

func label(dir string) string { return filepath.Base(dir) + " (" + dir + ")" }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
