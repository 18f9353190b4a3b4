package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// Devices coming and going: a device.Monitor reports presences (presence), a connected device
// gets a devState and a worker goroutine (runDevice) that reads its storages, queues the syncs
// due on plug-in and runs its jobs (jobs.go) until the device leaves (teardownDevice).

// devState is a connected device and its session worker.
type devState struct {
	key    string
	dev    device.Device
	info   DeviceInfo
	ready  bool // storages read, DeviceConnected published
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has torn down

	qmu   sync.Mutex
	queue []*job
	qwake chan struct{}
}

func (m *Manager) presence(p device.Presence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.seenKeys[p.Key] = true
	close(m.wake)
	m.wake = make(chan struct{})
	if !p.Connected {
		if info, ok := m.problems[p.Key]; ok {
			delete(m.problems, p.Key)
			info.State = DeviceStateDisconnected
			m.bus.publish(DeviceDisconnected, info.Serial, "", info)
		}
		if serial, ok := m.byKey[p.Key]; ok {
			m.detachLocked(serial)
		}
		return
	}
	if p.Err != nil || p.Device == nil {
		if serial, ok := m.byKey[p.Key]; ok {
			m.detachLocked(serial)
		}
		err := p.Err
		if err == nil {
			err = errors.New("the device could not be opened")
		}
		info := DeviceInfo{Key: p.Key, Label: p.Label, Model: p.Label, State: diagnosisState(err), Problem: err.Error(),
			Kind: device.KindUnknown, LastSeen: time.Now(), Storages: []StorageInfo{}}
		m.problems[p.Key] = info
		m.bus.publish(DeviceProblem, "", "", info)
		return
	}
	delete(m.problems, p.Key)
	di := p.Device.Info()
	serial := di.Serial
	if serial == "" {
		serial = p.Key
	}
	if _, ok := m.devices[serial]; ok {
		m.detachLocked(serial)
	}
	prev := m.leaving[serial]
	label := p.Label
	if di.Model != "" {
		label = strings.TrimSpace(di.Manufacturer + " " + di.Model)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	ds := &devState{
		key: p.Key, dev: p.Device, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		qwake: make(chan struct{}, 1),
		info: DeviceInfo{
			Key: p.Key, Serial: serial, Manufacturer: di.Manufacturer, Model: di.Model, Version: di.Version,
			Kind: di.Kind, Transport: di.Transport, Label: label, State: DeviceStateConnected,
			LastSeen: time.Now(), Storages: []StorageInfo{},
		},
	}
	m.devices[serial] = ds
	m.byKey[p.Key] = serial
	m.wg.Add(1)
	go m.runDevice(ds, prev)
}

// detachLocked forgets a connected device: its worker stops (cancelling a running session) and
// tears its partnerships' providers down.
func (m *Manager) detachLocked(serial string) {
	ds, ok := m.devices[serial]
	if !ok {
		return
	}
	delete(m.devices, serial)
	delete(m.byKey, ds.key)
	m.leaving[serial] = ds.done
	ds.cancel()
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			if ps := m.parts[p.ID]; ps != nil {
				ps.stopTimers()
				ps.nextSync = time.Time{}
			}
		}
	}
	info := ds.info
	info.State = DeviceStateDisconnected
	info.Key = ""
	info.Syncing = false
	m.bus.publish(DeviceDisconnected, serial, "", info)
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			m.publishStatusLocked(p.ID)
		}
	}
}

func diagnosisState(err error) DeviceState {
	switch {
	case errors.Is(err, device.ErrBusy):
		return DeviceStateBusy
	case errors.Is(err, device.ErrPermission):
		return DeviceStateNoPermission
	case errors.Is(err, device.ErrLocked):
		return DeviceStateLocked
	}
	return DeviceStateError
}

// Devices returns the devices connected now, those present with a problem (busy, no
// permission, locked), and those known from earlier that have partnerships, connected ones
// first.
func (m *Manager) Devices() []DeviceInfo {
	known, err := m.db.knownDevices()
	if err != nil {
		m.log.Warn("manager: read known devices", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DeviceInfo
	have := map[string]bool{}
	for serial, ds := range m.devices {
		info := m.deviceInfoLocked(ds)
		out = append(out, info)
		have[serial] = true
	}
	for _, info := range m.problems {
		out = append(out, info)
	}
	for _, k := range known {
		if have[k.Serial] {
			continue
		}
		n := m.partnershipCountLocked(k.Serial)
		if n == 0 {
			continue
		}
		out = append(out, DeviceInfo{
			Serial: k.Serial, Manufacturer: k.Manufacturer, Model: k.Model, Kind: k.Kind, Label: k.Label,
			State: DeviceStateDisconnected, Storages: []StorageInfo{}, Partnerships: n, LastSeen: k.LastSeen,
		})
	}
	rank := func(s DeviceState) int {
		switch s {
		case DeviceStateConnected:
			return 0
		case DeviceStateDisconnected:
			return 2
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := rank(out[i].State), rank(out[j].State); ri != rj {
			return ri < rj
		}
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].Serial+out[i].Key < out[j].Serial+out[j].Key
	})
	return out
}

func (m *Manager) deviceInfoLocked(ds *devState) DeviceInfo {
	info := ds.info
	info.Storages = slices.Clone(ds.info.Storages)
	info.Partnerships = m.partnershipCountLocked(info.Serial)
	if info.Partnerships > 0 {
		info.New = false
	}
	for _, p := range m.conf.Partnerships {
		if p.Device == info.Serial {
			if ps := m.parts[p.ID]; ps != nil && ps.running {
				info.Syncing = true
			}
		}
	}
	return info
}

func (m *Manager) partnershipCountLocked(serial string) int {
	n := 0
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			n++
		}
	}
	return n
}

// WaitDevices waits until every presence key in keys (emulator.Key(dir), a USB port key) has been
// reported by a monitor, connected or with a problem, or until ctx is done. One-shot commands
// call it so that devices attached at start are known before they act.
func (m *Manager) WaitDevices(ctx context.Context, keys ...string) error {
	for {
		m.mu.Lock()
		missing := ""
		for _, k := range keys {
			if !m.seenKeys[k] {
				missing = k
				break
			}
		}
		wake := m.wake
		ready := true
		if missing == "" {
			// A connected device counts once its worker has read its storages.
			for _, k := range keys {
				if serial, ok := m.byKey[k]; ok && !m.devices[serial].ready {
					ready = false
				}
			}
		}
		m.mu.Unlock()
		if missing == "" && ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if missing != "" {
				return fmt.Errorf("device %s did not appear: %w", missing, ctx.Err())
			}
			return ctx.Err()
		case <-wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BrowseDevice lists a folder on a connected device (for the window's device folder chooser).
// storage 0 means the device's first storage.
func (m *Manager) BrowseDevice(ctx context.Context, serial string, storage uint32, dir string) ([]DeviceObject, error) {
	m.mu.Lock()
	ds, ok := m.devices[serial]
	m.mu.Unlock()
	if !ok {
		return nil, kindf(ErrNotConnected, "device %s is not connected; plug it in and unlock it", serial)
	}
	sid := device.StorageID(storage)
	if sid == 0 {
		st, err := ds.dev.Storages(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the device's storages: %w", err)
		}
		if len(st) == 0 {
			return nil, fmt.Errorf("the device reports no storage; unlock it and choose \"File transfer\"")
		}
		sid = st[0].ID
	}
	objs, err := ds.dev.List(ctx, sid, dir)
	if err != nil {
		return nil, fmt.Errorf("list %q on the device: %w", dir, err)
	}
	return objs, nil
}

// runDevice is the worker of one connected device: it reads the device's storages, announces
// it, queues the sessions due on plug-in, then runs jobs one at a time until the device leaves.
func (m *Manager) runDevice(ds *devState, prev <-chan struct{}) {
	defer m.wg.Done()
	defer close(ds.done)
	defer m.teardownDevice(ds)
	if prev != nil {
		// The same device's previous connection must be torn down before this one starts.
		select {
		case <-prev:
		case <-ds.ctx.Done():
			return
		}
	}
	ctx := ds.ctx
	storages := readStorages(ctx, ds.dev, m)
	known, err := m.db.seeDevice(knownDevice{
		Serial: ds.info.Serial, Manufacturer: ds.info.Manufacturer, Model: ds.info.Model,
		Kind: ds.info.Kind, Label: ds.info.Label, LastSeen: time.Now().UTC(),
	})
	if err != nil {
		m.log.Warn("manager: remember a device", "serial", ds.info.Serial, "err", err)
	}
	m.mu.Lock()
	if m.devices[ds.info.Serial] != ds {
		m.mu.Unlock()
		return
	}
	ds.info.Storages = storages
	ds.ready = true
	n := m.partnershipCountLocked(ds.info.Serial)
	ds.info.New = !known && n == 0
	info := m.deviceInfoLocked(ds)
	m.bus.publish(DeviceConnected, info.Serial, "", info)
	if info.New {
		m.bus.publish(DeviceNew, info.Serial, "", info)
	}
	for _, p := range m.conf.Partnerships {
		if p.Device != ds.info.Serial {
			continue
		}
		ps := m.parts[p.ID]
		if ps == nil {
			continue
		}
		ps.paused = false
		if m.cfg.Service {
			m.scheduleLocked(p, ps, ds)
			if m.conf.Settings.SyncOnConnect {
				m.enqueueLocked(ds, &job{kind: jobSync, part: p.ID, trigger: TriggerConnect})
			}
		}
		m.publishStatusLocked(p.ID)
	}
	var watch []Partnership
	if m.cfg.Service && !m.conf.Settings.SyncOnConnect {
		// No session on plug-in: open the providers now, so that their change notifications
		// start sessions while the device stays connected.
		for _, p := range m.conf.Partnerships {
			if p.Device == ds.info.Serial {
				watch = append(watch, p)
			}
		}
	}
	m.mu.Unlock()
	for _, p := range watch {
		m.mu.Lock()
		ps := m.parts[p.ID]
		m.mu.Unlock()
		if ps == nil {
			continue
		}
		if _, _, _, err := m.prepare(ctx, ds, p, ps); err != nil && ctx.Err() == nil {
			m.mu.Lock()
			ps.errMsg, ps.fix = err.Error(), errorFix(err, p, ds.info.Label)
			m.publishStatusLocked(p.ID)
			m.mu.Unlock()
		}
	}
	for {
		j := ds.next()
		if j == nil {
			return
		}
		m.runJob(ctx, ds, j)
	}
}

func readStorages(ctx context.Context, dev device.Device, m *Manager) []StorageInfo {
	st, err := dev.Storages(ctx)
	if err != nil {
		m.log.Warn("manager: read a device's storages", "err", err)
		return []StorageInfo{}
	}
	out := make([]StorageInfo, 0, len(st))
	for _, s := range st {
		out = append(out, StorageInfo{ID: uint32(s.ID), Description: s.Description, Free: s.Free, Capacity: s.Capacity, ReadOnly: s.ReadOnly})
	}
	return out
}

// teardownDevice runs when a device's worker ends: queued jobs fail, the providers opened for
// the device are closed.
func (m *Manager) teardownDevice(ds *devState) {
	for _, j := range ds.drop("") {
		j.reply(jobResult{err: kindf(ErrNotConnected, "%s is not connected", ds.info.Label)})
	}
	var insts []*partState
	m.mu.Lock()
	for _, ps := range m.parts {
		if ps.instDevice == ds.dev {
			insts = append(insts, ps)
		}
		if ps.instDevice == ds.dev || ps.queued {
			ps.queued = false
		}
	}
	// Detach the instances under the lock, close them outside it.
	var closers []*providers.Instance
	for _, ps := range insts {
		if ps.watchCancel != nil {
			ps.watchCancel()
			ps.watchCancel = nil
		}
		ps.changes = [2]*repl.ChangeSet{}
		ps.watching = [2]bool{}
		closers = append(closers, ps.inst)
		ps.inst, ps.instDevice = nil, nil
	}
	m.mu.Unlock()
	for _, inst := range closers {
		if inst != nil && inst.Close != nil {
			if err := inst.Close(); err != nil {
				m.log.Debug("manager: close a provider", "err", err)
			}
		}
	}
	// Release jobs still queued (a partnership removed while the device left) are answered.
	ds.qmu.Lock()
	rest := ds.queue
	ds.queue = nil
	ds.qmu.Unlock()
	for _, j := range rest {
		j.reply(jobResult{})
	}
}
