package usb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// Monitor notices USB MTP devices arriving and leaving, opens them, and reports each with its
// device or its diagnosis. It implements device.Monitor.
//
// It enumerates every Interval with a fresh libusb context (libusb learns of hot-plugged devices
// only through udevd, which may not run), so a device is seen within about Interval plus the time
// to open it. A device that is present but cannot be used (no permission on its node, held by
// another program, a locked phone) is reported with Err set and tried again every Retry; when
// the problem is solved (rule installed and device re-plugged, program quit, phone unlocked), a
// new Presence with the same Key replaces the earlier one. A phone set to charging only is
// reported once: choosing "File transfer" makes it plug in anew.
//
// The zero Monitor is ready to use. Fields must not change while Run runs.
type Monitor struct {
	// Interval between scans; 0 means 500 ms.
	Interval time.Duration
	// Retry is how often a device with a diagnosis is tried again; 0 means 2 s.
	Retry time.Duration
	// OpenTimeout bounds opening one device (session, storages); 0 means 30 s.
	OpenTimeout time.Duration
	// RulePath is the path of Cradle's copy of the udev rule, quoted in the permission diagnosis
	// ("" names assets/69-cradle-mtp.rules).
	RulePath string
	// Journal is the file that remembers uploads until the device confirmed them, so one cut off
	// by an unplug is removed from the device at its next session, even in a later run of
	// Cradle. "" keeps it in memory only.
	Journal string
	// Open turns an open transport into a device; nil means OpenMTP. It owns t: it closes it when
	// it fails.
	Open func(ctx context.Context, t *Transport, f Found) (device.Device, error)
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger

	once    sync.Once
	uploads *uploads
}

var _ device.Monitor = (*Monitor)(nil)

func (m *Monitor) init() {
	m.once.Do(func() {
		m.uploads = &uploads{path: m.Journal}
	})
}

func (m *Monitor) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// slot is what Run knows of one attachment.
type slot struct {
	found    Found
	gen      int  // tells probe results for an earlier attachment with the same key apart
	reported bool // a connected Presence was sent
	dev      device.Device
	diag     string // message of the last diagnosis reported
	probing  bool
	retry    bool // a diagnosis that may go away without a re-plug
	lastTry  time.Time
}

type probeResult struct {
	key string
	gen int
	dev device.Device
	err error
}

// goneSignal says the device of an attachment reported DeviceGone.
type goneSignal struct {
	key string
	gen int
}

// Run reports presence changes until ctx is done: first one Presence for each MTP device (or
// phone without MTP) already attached, then changes as they happen. report is called from Run's
// goroutine, one call at a time, and should return quickly. A device's Connected Presence carries
// an opened device.Device, which the Monitor owns: it closes it when the device leaves or Run
// returns. Run returns nil when ctx ends, or an error when USB cannot be used on this computer at
// all.
func (m *Monitor) Run(ctx context.Context, report func(device.Presence)) error {
	m.init()
	log := m.logger()
	interval := durationOr(m.Interval, 500*time.Millisecond)
	retry := durationOr(m.Retry, 2*time.Second)

	pctx, stopProbes := context.WithCancel(ctx)
	results := make(chan probeResult)
	// goneCh carries DeviceGone from reported devices. A signal that does not fit is dropped:
	// the device then stays reported until it is unplugged, as without the signal.
	goneCh := make(chan goneSignal, 16)
	var probes sync.WaitGroup
	known := map[string]*slot{}
	gen := 0
	defer func() {
		stopProbes()
		go func() { probes.Wait(); close(results) }()
		for r := range results {
			if r.dev != nil {
				r.dev.Close()
			}
		}
		for _, s := range known {
			if s.dev != nil {
				s.dev.Close()
			}
		}
	}()

	startProbe := func(s *slot) {
		s.probing = true
		s.lastTry = time.Now()
		probes.Add(1)
		go func(f Found, g int) {
			defer probes.Done()
			dev, err := m.probe(pctx, f, func() {
				select {
				case goneCh <- goneSignal{key: f.Key, gen: g}:
				default:
				}
			})
			select {
			case results <- probeResult{key: f.Key, gen: g, dev: dev, err: err}:
			case <-pctx.Done():
				if dev != nil {
					dev.Close()
				}
			}
		}(s.found, s.gen)
	}

	// ignored holds the attachments classified as of no interest (keyboards, drives...): they are
	// not looked at again (which may mean opening them) while they stay attached.
	ignored := map[string]bool{}
	scan := func() error {
		devs, err := enumerate()
		if err != nil {
			return err
		}
		current := make(map[string]Found, len(devs))
		present := make(map[string]bool, len(devs))
		for _, d := range devs {
			key := d.key()
			present[key] = true
			if s, ok := known[key]; ok {
				current[key] = s.found
				continue
			}
			if ignored[key] {
				continue
			}
			if f, ok := classify(ctx, d); ok {
				current[key] = f
			} else {
				ignored[key] = true
			}
		}
		for key := range ignored {
			if !present[key] {
				delete(ignored, key)
			}
		}
		for key, s := range known {
			if _, ok := current[key]; ok {
				continue
			}
			delete(known, key)
			if s.dev != nil {
				if u, ok := s.dev.(interface{ Unplugged() }); ok {
					u.Unplugged() // its listeners learn it left (DeviceGone), not only that it closed
				}
				if err := s.dev.Close(); err != nil {
					log.Debug("usb: close a device that left", "device", s.found.Label, "err", err)
				}
			}
			if s.reported {
				report(device.Presence{Key: key, Connected: false, Label: s.found.Label})
			}
		}
		for key, f := range current {
			if _, ok := known[key]; ok {
				continue
			}
			gen++
			s := &slot{found: f, gen: gen}
			known[key] = s
			startProbe(s)
		}
		for _, s := range known {
			if !s.probing && s.retry && time.Since(s.lastTry) >= retry {
				startProbe(s)
			}
		}
		return nil
	}

	handle := func(r probeResult) {
		s, ok := known[r.key]
		if !ok || s.gen != r.gen {
			if r.dev != nil {
				r.dev.Close() // the device left while it was being opened
			}
			return
		}
		s.probing = false
		if r.err == nil {
			s.dev, s.reported, s.retry, s.diag = r.dev, true, false, ""
			report(device.Presence{Key: r.key, Connected: true, Device: r.dev, Label: s.found.Label})
			return
		}
		if errors.Is(r.err, device.ErrDisconnected) || errors.Is(r.err, context.Canceled) {
			s.retry = true // gone, and the next scan says so; or it came back, and is tried again
			return
		}
		s.retry = !(errors.Is(r.err, device.ErrLocked) && !s.found.MTP)
		if s.reported && s.diag == r.err.Error() {
			return // same diagnosis as before
		}
		s.reported, s.diag = true, r.err.Error()
		report(device.Presence{Key: r.key, Connected: true, Err: r.err, Label: s.found.Label})
	}

	if err := scan(); err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			handle(r)
		case g := <-goneCh:
			// The device stopped answering while still plugged in (its MTP service failed, or it
			// reset itself): report it gone, and let the next scan open it afresh.
			// An unplug also ends here, a moment before the device leaves the bus: the slot is
			// tried again only after Retry, by which time a scan has seen it go.
			if s, ok := known[g.key]; ok && s.gen == g.gen && s.dev != nil {
				if err := s.dev.Close(); err != nil {
					log.Debug("usb: close a device that stopped answering", "device", s.found.Label, "err", err)
				}
				s.dev, s.reported, s.diag = nil, false, ""
				s.retry, s.lastTry = true, time.Now()
				report(device.Presence{Key: g.key, Connected: false, Label: s.found.Label})
			}
		case <-tick.C:
			if err := scan(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("usb: list devices", "err", err)
			}
		}
	}
}

// probe opens f and checks it is usable; errors are diagnoses where one applies. gone is called
// when the opened device later reports DeviceGone.
func (m *Monitor) probe(ctx context.Context, f Found, gone func()) (device.Device, error) {
	ctx, cancel := context.WithTimeout(ctx, durationOr(m.OpenTimeout, 30*time.Second))
	defer cancel()
	t, err := OpenTransport(ctx, f, m.RulePath)
	if err != nil {
		return nil, err
	}
	open := m.Open
	if open == nil {
		open = func(ctx context.Context, t *Transport, f Found) (device.Device, error) {
			return openMTP(ctx, t, f, m.Logger)
		}
	}
	dev, err := open(ctx, t, f)
	if err != nil {
		if isDiagnosis(err) || errors.Is(err, device.ErrDisconnected) {
			return nil, err
		}
		return nil, fmt.Errorf("%s does not answer as an MTP device (%w): unplug it and plug it in again", f.Label, err)
	}
	ss, err := dev.Storages(ctx)
	if err == nil && len(ss) == 0 {
		err = lockedError(f.Label, false)
	}
	if err != nil {
		if cerr := dev.Close(); cerr != nil {
			m.logger().Debug("usb: close", "device", f.Label, "err", cerr)
		}
		if isDiagnosis(err) || errors.Is(err, device.ErrDisconnected) {
			return nil, err
		}
		return nil, fmt.Errorf("%s does not list its storage (%w): unplug it and plug it in again", f.Label, err)
	}
	if deleted, err := m.uploads.clean(ctx, dev); err != nil {
		m.logger().Warn("usb: clean up interrupted uploads", "device", f.Label, "err", err)
	} else if len(deleted) > 0 {
		m.logger().Info("usb: removed uploads an unplug cut off", "device", f.Label, "paths", deleted)
	}
	return attach(dev, m.uploads, m.logger(), gone), nil
}

func isDiagnosis(err error) bool {
	return errors.Is(err, device.ErrPermission) || errors.Is(err, device.ErrBusy) || errors.Is(err, device.ErrLocked)
}
