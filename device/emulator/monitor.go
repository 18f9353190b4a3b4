package emulator

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/mtp"
)

// controlPoll is how often a Monitor checks its control file.
const controlPoll = 250 * time.Millisecond

// Key is the Presence key of the emulated device serving dir.
func Key(dir string) string {
	if abs, err := absDir(dir); err == nil {
		dir = abs
	}
	return "emulated:" + dir
}

// Monitor reports emulated devices as they are attached and detached (device.Monitor): the
// folders of `--emulate DIR` from the start, and at run time those added with Attach or removed
// with Detach, as plugging and unplugging a phone would. With a control file, the folders listed
// in it (one per line; blank lines and lines starting with '#' ignored) are attached too, and the
// file is re-read when it changes, so another process can plug and unplug emulated devices (tests
// of `cradle watch`).
//
// Concurrency: Attach, Detach and UseControlFile may be called from any goroutine, before or
// during Run. Run is called once at a time; the Monitor owns the devices it opens and closes
// them when they are detached or Run returns. A detached device is unplugged first, so its
// users see it disconnect (device.DeviceGone).
type Monitor struct {
	opts Options

	mu      sync.Mutex
	want    map[string]bool // absolute folders attached with Attach or NewMonitor
	control string
	wake    chan struct{}
}

var _ device.Monitor = (*Monitor)(nil)

// NewMonitor returns a Monitor with the folders dirs attached. opts shape every device it opens
// (their serials come from their folders unless opts.Serial is set; leave it empty).
func NewMonitor(opts Options, dirs ...string) *Monitor {
	m := &Monitor{opts: opts, want: map[string]bool{}, wake: make(chan struct{}, 1)}
	for _, d := range dirs {
		m.want[absOrSame(d)] = true
	}
	return m
}

func absOrSame(dir string) string {
	if abs, err := absDir(dir); err == nil {
		return abs
	}
	return dir
}

// Attach plugs in an emulated device serving dir; a running Run reports it at once.
func (m *Monitor) Attach(dir string) error {
	abs, err := absDir(dir)
	if err != nil {
		return fmt.Errorf("attach an emulated device: %w", err)
	}
	m.mu.Lock()
	m.want[abs] = true
	m.mu.Unlock()
	signal(m.wake)
	return nil
}

// Detach unplugs the emulated device serving dir; a running Run reports it gone.
func (m *Monitor) Detach(dir string) {
	abs := absOrSame(dir)
	m.mu.Lock()
	delete(m.want, abs)
	m.mu.Unlock()
	signal(m.wake)
}

// UseControlFile makes the Monitor attach the folders listed in the file at path, and follow
// its changes. A missing file lists nothing.
func (m *Monitor) UseControlFile(path string) {
	m.mu.Lock()
	m.control = path
	m.mu.Unlock()
	signal(m.wake)
}

// attached is one plugged-in emulated device.
type attached struct {
	emu *Emulator
	dev *mtp.Device
}

// Run reports each attached device, then attachments and detachments, until ctx is done; then
// it closes its devices and returns nil. A folder that cannot be served is reported with Err.
func (m *Monitor) Run(ctx context.Context, report func(device.Presence)) error {
	open := map[string]*attached{}
	failed := map[string]bool{}
	defer func() {
		for _, a := range open {
			a.dev.Close()
		}
	}()
	var (
		controlStamp string
		controlDirs  []string
	)
	t := time.NewTicker(controlPoll)
	defer t.Stop()
	for {
		m.mu.Lock()
		control := m.control
		want := make(map[string]bool, len(m.want))
		for d := range m.want {
			want[d] = true
		}
		m.mu.Unlock()
		if control != "" {
			if stamp, dirs := readControl(control); stamp != controlStamp {
				controlStamp, controlDirs = stamp, dirs
			}
			for _, d := range controlDirs {
				want[absOrSame(d)] = true
			}
		}
		for _, dir := range slices.Sorted(maps.Keys(open)) {
			if want[dir] {
				continue
			}
			a := open[dir]
			delete(open, dir)
			a.unplug()
			report(device.Presence{Key: Key(dir), Connected: false, Label: Label(dir)})
		}
		for _, dir := range slices.Sorted(maps.Keys(failed)) {
			if !want[dir] {
				delete(failed, dir)
				report(device.Presence{Key: Key(dir), Connected: false, Label: Label(dir)})
			}
		}
		for _, dir := range slices.Sorted(maps.Keys(want)) {
			if open[dir] != nil || failed[dir] {
				continue
			}
			a, err := m.connect(ctx, dir)
			if err != nil {
				failed[dir] = true
				report(device.Presence{Key: Key(dir), Connected: true, Label: Label(dir),
					Err: fmt.Errorf("%w; check that the folder exists and is readable", err)})
				continue
			}
			open[dir] = a
			report(device.Presence{Key: Key(dir), Connected: true, Device: a.dev, Label: Label(dir)})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-t.C:
		}
	}
}

// unplug makes the device disappear, lets its user see it go (DeviceGone), and closes it.
func (a *attached) unplug() {
	a.emu.Unplug()
	select {
	case <-a.dev.Gone():
	case <-time.After(time.Second):
	}
	a.dev.Close()
}

func (m *Monitor) connect(ctx context.Context, dir string) (*attached, error) {
	e, err := New(dir, m.opts)
	if err != nil {
		return nil, err
	}
	d, err := mtp.Open(ctx, e, e.MTPOptions())
	if err != nil {
		return nil, fmt.Errorf("open the emulated device for %s: %w", dir, err)
	}
	return &attached{emu: e, dev: d}, nil
}

// readControl reads a control file: a stamp that changes with its content, and its folders.
func readControl(path string) (string, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "missing", nil
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dirs = append(dirs, line)
	}
	return string(b), dirs
}
