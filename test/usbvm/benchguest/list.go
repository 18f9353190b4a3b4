package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/mtp"
	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// OpStat is the time one MTP operation took in a profiled Cradle listing: from its command
// container to its response, summed over its calls.
type OpStat struct {
	Op      string  `json:"op"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
	// Transfers are the bulk transfers (command, data and response reads) of those calls.
	Transfers int `json:"transfers"`
	// InTransport is the part of Seconds spent inside the transport's BulkOut and BulkIn.
	InTransport float64 `json:"in_transport_seconds"`
	// Variant says how the profiled run differs from a sync's: "", "no events" (no interrupt
	// reads during the listing) or "GOMAXPROCS 2".
	Variant string `json:"variant,omitempty"`
}

// runList times a full listing of the device with Cradle and with libmtp's mtp-files,
// alternately. Every run of either tool is a fresh process or a fresh session: QEMU's usb-mtp
// forgets its object tree at CloseSession and reads each folder again the first time a session
// asks for its handles, so both pay for reading the host's folders.
func runList(runs, folders, files int, warmup, profile, variants bool) error {
	ctx := context.Background()
	wantFiles := folders * files
	// Both count files only (mtp-files prints no folders); the root holds nothing else.
	check := func(tool string, gotFiles int) error {
		if gotFiles < wantFiles {
			return fmt.Errorf("%s listed %d files, want at least %d", tool, gotFiles, wantFiles)
		}
		return nil
	}
	// One untimed run of each first (not in a diagnosis run): the host's page cache, the
	// guest's, libmtp's first load.
	if warmup {
		lt, n, err := cradleList(ctx, nil)
		if err == nil {
			err = check("cradle", n)
		}
		if err != nil {
			return fmt.Errorf("cradle list, warm-up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "benchguest: warm-up: cradle listed %d files in %s\n", n, lt.total.Round(time.Millisecond))
		d, n, err := libmtpList(ctx)
		if err == nil {
			err = check("mtp-files", n)
		}
		if err != nil {
			return fmt.Errorf("mtp-files, warm-up: %w", err)
		}
		fmt.Fprintf(os.Stderr, "benchguest: warm-up: mtp-files listed %d files in %s\n", n, d.Round(time.Millisecond))
	}
	for i := 1; i <= runs; i++ {
		// Alternate which tool goes first.
		order := []string{"cradle", "libmtp"}
		if i%2 == 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, tool := range order {
			var m Measurement
			var n int
			var err error
			if tool == "cradle" {
				var lt listTimes
				lt, n, err = cradleList(ctx, nil)
				m = Measurement{Tool: tool, Op: "list", Run: i, Total: lt.total.Seconds(), Transfer: lt.listing.Seconds()}
			} else {
				var d time.Duration
				d, n, err = libmtpList(ctx)
				m = Measurement{Tool: tool, Op: "list", Run: i, Total: d.Seconds()}
			}
			if err != nil {
				return fmt.Errorf("%s list, run %d: %w", tool, i, err)
			}
			if err := check(tool, n); err != nil {
				return fmt.Errorf("run %d: %w", i, err)
			}
			m.Objects = n
			emit("measure", m)
		}
	}
	if !profile {
		return nil
	}
	// One more Cradle run through a transport that times every transaction, as a sync runs; with
	// variants also without interrupt reads (what the event loop costs), and with two Ps for the
	// Go scheduler (gousb completes every transfer from a cgo callback on its event thread).
	vs := []string{""}
	if variants {
		vs = append(vs, "no events", "GOMAXPROCS 2")
	}
	for _, variant := range vs {
		prof := &profiler{ops: map[string]*OpStat{}, noEvents: variant == "no events"}
		if variant == "GOMAXPROCS 2" {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
		}
		lt, _, err := cradleList(ctx, prof)
		if err != nil {
			return fmt.Errorf("cradle list, profiled %q: %w", variant, err)
		}
		emit("profile", map[string]any{"variant": variant, "total_seconds": lt.total.Seconds(), "listing_seconds": lt.listing.Seconds()})
		var stats []OpStat
		for _, s := range prof.ops {
			s.Variant = variant
			stats = append(stats, *s)
		}
		slices.SortFunc(stats, func(a, b OpStat) int { return int(b.Seconds*1e6 - a.Seconds*1e6) })
		for _, s := range stats {
			emit("opstat", s)
		}
	}
	return nil
}

type listTimes struct {
	// total is the whole operation: finding the device, the session, the listing, closing.
	total time.Duration
	// listing is from the session's opening to the last entry.
	listing time.Duration
}

// cradleList lists every object of the device's first storage as a sync's full pass does: a
// fresh session, then device.Device's Walk (a List per folder, depth first, as the files
// provider's device store lists). It returns the files seen. prof, when set, times every
// transaction (a wrapped transport; the initiator opened directly, as usb.OpenMTP does).
func cradleList(ctx context.Context, prof *profiler) (listTimes, int, error) {
	start := time.Now()
	var d device.Device
	var err error
	var opened time.Time
	if prof == nil {
		d, opened, err = openCradleTimed(ctx)
	} else {
		d, opened, err = openProfiled(ctx, prof)
	}
	if err != nil {
		return listTimes{}, 0, err
	}
	defer d.Close()
	ss, err := d.Storages(ctx)
	if err != nil {
		return listTimes{}, 0, err
	}
	files := 0
	err = d.Walk(ctx, ss[0].ID, "", func(o device.Object) error {
		if !o.Dir {
			files++
		}
		return nil
	})
	if err != nil {
		return listTimes{}, 0, err
	}
	listing := time.Since(opened)
	if err := d.Close(); err != nil {
		return listTimes{}, 0, err
	}
	return listTimes{total: time.Since(start), listing: listing}, files, nil
}

// openCradleTimed is openCradle that also says when the transport was open, so the session's
// opening starts the listing time.
func openCradleTimed(ctx context.Context) (device.Device, time.Time, error) {
	f, err := findMTP(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	t, err := usb.OpenTransport(ctx, f, "")
	if err != nil {
		return nil, time.Time{}, err
	}
	opened := time.Now()
	d, err := usb.OpenMTP(ctx, t, f)
	return d, opened, err
}

func openProfiled(ctx context.Context, prof *profiler) (device.Device, time.Time, error) {
	f, err := findMTP(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	t, err := usb.OpenTransport(ctx, f, "")
	if err != nil {
		return nil, time.Time{}, err
	}
	prof.t = t
	opened := time.Now()
	d, err := mtp.Open(ctx, prof, mtp.Options{Serial: f.Serial, NoZeroLengthOut: f.Vendor == 0x46f4})
	if err != nil {
		t.Close()
	}
	return d, opened, err
}

func findMTP(ctx context.Context) (usb.Found, error) {
	fs, err := usb.Scan(ctx)
	if err != nil {
		return usb.Found{}, err
	}
	for _, f := range fs {
		if (f.Vendor == 0x46f4 || f.Vendor == usbvm.UMTPVendor) && f.MTP {
			return f, nil
		}
	}
	return usb.Found{}, errors.New("the MTP device (QEMU's or uMTP's) not found")
}

// profiler is an mtp.Transport that times each transaction of the initiator, from the command
// container it writes to the response container it reads.
type profiler struct {
	t        *usb.Transport
	noEvents bool

	mu      sync.Mutex
	ops     map[string]*OpStat
	cur     *OpStat
	started time.Time
}

var _ mtp.Transport = (*profiler)(nil)

func (p *profiler) BulkOut(ctx context.Context, b []byte) (int, error) {
	if len(b) >= mtp.HeaderSize && mtp.ContainerType(binary.LittleEndian.Uint16(b[4:])) == mtp.ContainerCommand {
		op := mtp.OpCode(binary.LittleEndian.Uint16(b[6:])).String()
		p.mu.Lock()
		s := p.ops[op]
		if s == nil {
			s = &OpStat{Op: op}
			p.ops[op] = s
		}
		s.Calls++
		p.cur, p.started = s, time.Now()
		p.mu.Unlock()
	}
	start := time.Now()
	n, err := p.t.BulkOut(ctx, b)
	p.count(start)
	return n, err
}

func (p *profiler) BulkIn(ctx context.Context, b []byte) (int, error) {
	start := time.Now()
	n, err := p.t.BulkIn(ctx, b)
	p.count(start)
	if err == nil && n >= mtp.HeaderSize && mtp.ContainerType(binary.LittleEndian.Uint16(b[4:])) == mtp.ContainerResponse {
		p.mu.Lock()
		if p.cur != nil {
			p.cur.Seconds += time.Since(p.started).Seconds()
			p.cur = nil
		}
		p.mu.Unlock()
	}
	return n, err
}

// count adds one transfer that started at start to the operation in progress.
func (p *profiler) count(start time.Time) {
	d := time.Since(start)
	p.mu.Lock()
	if p.cur != nil {
		p.cur.Transfers++
		p.cur.InTransport += d.Seconds()
	}
	p.mu.Unlock()
}

func (p *profiler) Interrupt(ctx context.Context, b []byte) (int, error) {
	if p.noEvents {
		<-ctx.Done()
		return 0, fmt.Errorf("interrupt in: %w", ctx.Err())
	}
	return p.t.Interrupt(ctx, b)
}
func (p *profiler) MaxPacket() int                  { return p.t.MaxPacket() }
func (p *profiler) Reset(ctx context.Context) error { return p.t.Reset(ctx) }
func (p *profiler) Close() error                    { return p.t.Close() }

var fileLineRE = regexp.MustCompile(`(?m)^File ID: \d+`)

// libmtpList times mtp-files, which finds the device, opens a session, reads every object's
// metadata (GetObjectHandles and GetObjectInfo per folder on a device without
// GetObjectPropList) and prints every file; it returns the files it printed.
func libmtpList(ctx context.Context) (time.Duration, int, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, "mtp-files").Output()
	d := time.Since(start)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, 0, fmt.Errorf("mtp-files: %w: %s", err, tail(ee.Stderr))
		}
		return 0, 0, fmt.Errorf("mtp-files: %w", err)
	}
	return d, len(fileLineRE.FindAllIndex(out, -1)), nil
}
