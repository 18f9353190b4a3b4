package usb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// uploads remembers objects being created on devices until the device confirmed them, so that an
// upload cut off by an unplug (when the device no longer answers and nothing can be cleaned up)
// is removed at the device's next session instead of staying visible as a truncated file. The
// desktop still has the source: the next sync sends it again.
//
// With a path it is kept in a file (written with a rename, so a crash leaves the old or the new
// list), so an upload interrupted in one run of Cradle is cleaned up by the next one.
type uploads struct {
	mu      sync.Mutex
	path    string
	nextID  int64
	entries []upload
	loaded  bool
}

type upload struct {
	ID      int64            `json:"id"`
	Serial  string           `json:"serial"`
	Storage device.StorageID `json:"storage"`
	Path    string           `json:"path"`
	Size    int64            `json:"size"`
	Started time.Time        `json:"started"`
}

func (u *uploads) loadLocked() error {
	if u.loaded || u.path == "" {
		u.loaded = true
		return nil
	}
	b, err := os.ReadFile(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the upload journal: %w", err)
	}
	var es []upload
	if err := json.Unmarshal(b, &es); err != nil {
		// A damaged journal costs at most a truncated file left on a device: start afresh.
		es = nil
	}
	u.entries = es
	for _, e := range es {
		if e.ID >= u.nextID {
			u.nextID = e.ID + 1
		}
	}
	u.loaded = true
	return nil
}

func (u *uploads) saveLocked() error {
	if u.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(u.entries, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return fmt.Errorf("write the upload journal: %w", err)
	}
	tmp := u.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write the upload journal: %w", err)
	}
	if err := os.Rename(tmp, u.path); err != nil {
		return fmt.Errorf("write the upload journal: %w", err)
	}
	return nil
}

// begin records an upload about to start and returns its ID.
func (u *uploads) begin(e upload) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.loadLocked(); err != nil {
		return 0, err
	}
	e.ID = u.nextID
	u.nextID++
	e.Started = time.Now().UTC()
	u.entries = append(u.entries, e)
	return e.ID, u.saveLocked()
}

// done forgets an upload: it completed, or nothing of it can be on the device.
func (u *uploads) done(id int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, e := range u.entries {
		if e.ID == id {
			u.entries = append(u.entries[:i:i], u.entries[i+1:]...)
			return u.saveLocked()
		}
	}
	return nil
}

// pending returns the unconfirmed uploads to the device with serial.
func (u *uploads) pending(serial string) ([]upload, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.loadLocked(); err != nil {
		return nil, err
	}
	var out []upload
	for _, e := range u.entries {
		if e.Serial == serial {
			out = append(out, e)
		}
	}
	return out, nil
}

// clean removes from dev what unconfirmed uploads left: each object at such a path is deleted,
// unless it is larger than the upload was (then it is not the upload's). It returns the paths it
// deleted. Entries are forgotten once settled; one the device cannot settle now stays.
func (u *uploads) clean(ctx context.Context, dev device.Device) ([]string, error) {
	serial := dev.Info().Serial
	ps, err := u.pending(serial)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, e := range ps {
		o, err := dev.Stat(ctx, e.Storage, e.Path)
		switch {
		case errors.Is(err, device.ErrNotFound):
		case err != nil:
			errs = append(errs, fmt.Errorf("look for the interrupted upload %s: %w", e.Path, err))
			continue
		case !o.Dir && o.Size <= e.Size:
			if err := dev.Delete(ctx, e.Storage, e.Path); err != nil && !errors.Is(err, device.ErrNotFound) {
				errs = append(errs, fmt.Errorf("delete the interrupted upload %s: %w", e.Path, err))
				continue
			}
			deleted = append(deleted, e.Path)
		}
		if err := u.done(e.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

// attached is the device a Monitor reports: the MTP device, with its uploads recorded in the
// journal and its events passed on, so the Monitor learns when the device stopped answering while
// it is still plugged in. Unwrap returns the device underneath (an *mtp.Device) for abilities
// beyond device.Device.
type attached struct {
	device.Device
	uploads *uploads
	log     *slog.Logger

	events    chan device.Event
	closing   chan struct{}
	closeOnce sync.Once
}

// attach wraps dev and starts passing its events on; gone is called (once, from the forwarding
// goroutine) when the device reports DeviceGone. The goroutine ends when dev's events end, which
// Close brings about.
func attach(dev device.Device, u *uploads, log *slog.Logger, gone func()) *attached {
	a := &attached{Device: dev, uploads: u, log: log, events: make(chan device.Event, 64), closing: make(chan struct{})}
	go func() {
		defer close(a.events)
		for ev := range dev.Events() {
			if ev.Kind == device.DeviceGone {
				gone()
			}
			select {
			case a.events <- ev:
			case <-a.closing: // nobody reads any more: drain until the device closes its channel
			}
		}
	}()
	return a
}

// Unwrap returns the device underneath.
func (a *attached) Unwrap() device.Device { return a.Device }

// Events reports the device's events (see device.Device).
func (a *attached) Events() <-chan device.Event { return a.events }

// Close closes the device; it is safe to call more than once.
func (a *attached) Close() error {
	a.closeOnce.Do(func() { close(a.closing) })
	return a.Device.Close()
}

// Create records the upload before it starts and forgets it once the device confirmed it, or once
// it failed while the device still answered (the MTP layer then removed what it wrote).
func (a *attached) Create(ctx context.Context, s device.StorageID, path string, size int64, modTime time.Time, r io.Reader) (device.Object, error) {
	id, jerr := a.uploads.begin(upload{Serial: a.Info().Serial, Storage: s, Path: path, Size: size})
	o, err := a.Device.Create(ctx, s, path, size, modTime, r)
	if jerr != nil {
		// Without an entry an unplug may leave a truncated file behind; the upload itself is fine.
		a.log.Warn("usb: upload journal", "err", jerr)
		return o, err
	}
	if err != nil && errors.Is(err, device.ErrDisconnected) {
		return o, err // settled at the next session
	}
	if derr := a.uploads.done(id); derr != nil {
		a.log.Warn("usb: upload journal", "err", derr)
	}
	return o, err
}
