package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// DeviceCalendar is the device side: one .ics file on the device holding every event, as a
// phone's calendar app exports and imports it. Each event is an item named by its UID, with the
// same change units as on the desktop, so an event edited on the phone and another (or another
// field of the same one) edited on the computer merge.
//
// It reads the file when its size or time changed, and writes it whole: to a new file beside it,
// which then replaces it (see replace). It is safe for use from several goroutines.
type DeviceCalendar struct {
	dev  device.Device
	spec string // the device-path option, "Calendar/calendar.ics" or "SD card:Calendar/calendar.ics"

	mu      sync.Mutex
	storage device.StorageID
	path    string        // "" until resolved
	stat    device.Object // the file as last read
	cal     *calendar     // nil until read; empty when there is no file
	checked bool          // an interrupted replace was looked for
}

var (
	_ repl.UnitStore = (*DeviceCalendar)(nil)
	_ repl.Stater    = (*DeviceCalendar)(nil)
)

// OpenDevice returns the store of the calendar file at spec on dev.
func OpenDevice(dev device.Device, spec string) *DeviceCalendar {
	return &DeviceCalendar{dev: dev, spec: spec}
}

// load makes d.cal the file as the device has it now. Called with d.mu held.
func (d *DeviceCalendar) load(ctx context.Context) error {
	if d.path == "" {
		storage, p, err := providers.ParseDevicePath(ctx, d.dev, d.spec)
		if err != nil {
			return err
		}
		if p == "" {
			return fmt.Errorf("device path %q: give the calendar file's path, such as Calendar/calendar.ics: %w", d.spec, repl.ErrInvalidName)
		}
		d.storage, d.path = storage, p
	}
	if !d.checked {
		if err := d.recover(ctx); err != nil {
			return err
		}
		d.checked = true
	}
	obj, err := d.dev.Stat(ctx, d.storage, d.path)
	if errors.Is(err, device.ErrNotFound) {
		d.cal, d.stat = &calendar{}, device.Object{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("calendar file %s: %w", d.spec, providers.MapDeviceError(err))
	}
	if d.cal != nil && obj.Size == d.stat.Size && obj.ModTime.Equal(d.stat.ModTime) {
		return nil // as read before
	}
	rc, err := d.dev.Open(ctx, d.storage, d.path, 0)
	if err != nil {
		return fmt.Errorf("calendar file %s: %w", d.spec, providers.MapDeviceError(err))
	}
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return fmt.Errorf("calendar file %s: %w", d.spec, providers.MapDeviceError(err))
	}
	cal, err := parseCalendar(data)
	if err != nil {
		// Never rewrite what cannot be read: the file stays as it is.
		return fmt.Errorf("calendar file %s cannot be read (%v); fix it on the device, or move it away", d.spec, err)
	}
	d.cal, d.stat = cal, obj
	return nil
}

// find returns the event uid as the device has it now. Called with d.mu held.
func (d *DeviceCalendar) find(ctx context.Context, uid string) (*event, error) {
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	i := d.cal.find(uid)
	if i < 0 {
		return nil, fmt.Errorf("event %s: %w", uid, repl.ErrNotFound)
	}
	return d.cal.events[i], nil
}

// Enumerate lists the events of the file.
func (d *DeviceCalendar) Enumerate(ctx context.Context) (repl.Iterator, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	it := &entries{}
	for _, e := range d.cal.events {
		it.list = append(it.list, e.entry())
	}
	return it, nil
}

// Stat describes one event.
func (d *DeviceCalendar) Stat(ctx context.Context, uid string) (repl.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.find(ctx, uid)
	if err != nil {
		return repl.Entry{}, err
	}
	return e.entry(), nil
}

// IsItemChanged compares the content hashes.
func (d *DeviceCalendar) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated: every event takes part.
func (d *DeviceCalendar) IsItemReplicated(repl.Entry) bool { return true }

// NaturalKey matches an event with its counterpart by its UID.
func (d *DeviceCalendar) NaturalKey(_ context.Context, e repl.Entry) (string, error) {
	return e.Handle, nil
}

// Open returns the event as a VEVENT.
func (d *DeviceCalendar) Open(ctx context.Context, uid string) (io.ReadCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.find(ctx, uid)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(e.text())), nil
}

// ReadUnits returns the event's properties.
func (d *DeviceCalendar) ReadUnits(ctx context.Context, uid string) (repl.Units, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.find(ctx, uid)
	if err != nil {
		return nil, err
	}
	return e.units, nil
}

// Write creates or updates an event from its iCalendar text.
func (d *DeviceCalendar) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle != "" {
		if _, err := d.Stat(ctx, req.Handle); err != nil {
			return repl.Entry{}, err
		}
	}
	ev, err := readRequest(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	return d.WriteUnits(ctx, req, ev.units)
}

// WriteUnits creates or updates the event req.Name and writes the file.
func (d *DeviceCalendar) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	if err := checkUID(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.load(ctx); err != nil {
		return repl.Entry{}, err
	}
	next := &calendar{head: d.cal.head, events: append([]*event(nil), d.cal.events...)}
	ev := &event{uid: req.Name, units: units}
	if req.Handle == "" {
		if next.find(req.Name) >= 0 {
			return repl.Entry{}, fmt.Errorf("event %s: %w", req.Name, repl.ErrExists)
		}
		next.events = append(next.events, ev)
	} else {
		i := next.find(req.Handle)
		if i < 0 {
			return repl.Entry{}, fmt.Errorf("event %s: %w", req.Handle, repl.ErrNotFound)
		}
		if req.Expected != nil && repl.StampChanged(*req.Expected, next.events[i].entry()) {
			return repl.Entry{}, fmt.Errorf("event %s was edited on the device since it was last seen: %w", req.Handle, repl.ErrChanged)
		}
		if req.Name != req.Handle {
			return repl.Entry{}, fmt.Errorf("event %s: an event's UID does not change: %w", req.Handle, repl.ErrInvalidName)
		}
		next.events[i] = ev
	}
	if err := d.replace(ctx, next); err != nil {
		return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, err)
	}
	return ev.entry(), nil
}

// Delete removes the event from the file.
func (d *DeviceCalendar) Delete(ctx context.Context, uid string, expected repl.Stamp) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.find(ctx, uid)
	if err != nil {
		return err
	}
	if repl.StampChanged(expected, e.entry()) {
		return fmt.Errorf("event %s was edited on the device since it was last seen: %w", uid, repl.ErrChanged)
	}
	next := &calendar{head: d.cal.head}
	for _, x := range d.cal.events {
		if x.uid != uid {
			next.events = append(next.events, x)
		}
	}
	if err := d.replace(ctx, next); err != nil {
		return fmt.Errorf("delete %s: %w", uid, err)
	}
	return nil
}

// newName is where the new file is written before it replaces the old one.
func (d *DeviceCalendar) newName() string { return d.path + ".cradle-new" }

// replace writes cal as the calendar file: first whole under newName, then the old file goes
// and the new one takes its name. A device that cannot rename gets the file written again under
// its name. Whenever it stops (an unplug, a crash), one whole file is on the device: the old one,
// or the new one under newName, which recover puts in place. Called with d.mu held.
func (d *DeviceCalendar) replace(ctx context.Context, cal *calendar) error {
	data := cal.format(time.Now().UTC().Format("20060102T150405Z"))
	create := func(p string) error {
		_, err := d.dev.Create(ctx, d.storage, p, int64(len(data)), time.Now(), bytes.NewReader(data))
		return err
	}
	if err := d.remove(ctx, d.newName()); err != nil {
		return err
	}
	if err := create(d.newName()); err != nil {
		return providers.MapDeviceError(err)
	}
	if err := d.remove(ctx, d.path); err != nil {
		return err
	}
	err := d.dev.Rename(ctx, d.storage, d.newName(), d.path)
	if errors.Is(err, device.ErrUnsupported) {
		if err = create(d.path); err == nil {
			err = d.remove(ctx, d.newName())
		}
	}
	if err != nil {
		return providers.MapDeviceError(err)
	}
	d.cal, d.stat = nil, device.Object{} // read it again as the device keeps it
	return d.load(ctx)
}

// remove deletes the file at p on the device, if it is there.
func (d *DeviceCalendar) remove(ctx context.Context, p string) error {
	if err := d.dev.Delete(ctx, d.storage, p); err != nil && !errors.Is(err, device.ErrNotFound) {
		return providers.MapDeviceError(err)
	}
	return nil
}

// recover finishes a replace that stopped half-way: a new file without the old one takes its
// name; a new file beside the old one was not finished, and goes. Called with d.mu held.
func (d *DeviceCalendar) recover(ctx context.Context) error {
	if _, err := d.dev.Stat(ctx, d.storage, d.newName()); errors.Is(err, device.ErrNotFound) {
		return nil
	} else if err != nil {
		return providers.MapDeviceError(err)
	}
	if _, err := d.dev.Stat(ctx, d.storage, d.path); err == nil {
		return d.remove(ctx, d.newName())
	} else if !errors.Is(err, device.ErrNotFound) {
		return providers.MapDeviceError(err)
	}
	err := d.dev.Rename(ctx, d.storage, d.newName(), d.path)
	if errors.Is(err, device.ErrUnsupported) { // copy it, then
		var rc io.ReadCloser
		if rc, err = d.dev.Open(ctx, d.storage, d.newName(), 0); err == nil {
			var data []byte
			data, err = io.ReadAll(rc)
			rc.Close()
			if err == nil {
				_, err = d.dev.Create(ctx, d.storage, d.path, int64(len(data)), time.Now(), bytes.NewReader(data))
			}
			if err == nil {
				err = d.remove(ctx, d.newName())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("calendar file %s: put the new file in place: %w", d.spec, providers.MapDeviceError(err))
	}
	return nil
}
