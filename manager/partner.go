package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/providers"
)

// Partnerships returns every partnership, in the order they were added.
func (m *Manager) Partnerships() []Partnership {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Partnership, len(m.conf.Partnerships))
	for i, p := range m.conf.Partnerships {
		out[i] = p.clone()
	}
	return out
}

// Partnership returns the partnership whose ID, or else whose name, is ref.
func (m *Manager) Partnership(ref string) (Partnership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.lookupLocked(ref)
	if err != nil {
		return Partnership{}, err
	}
	return p.clone(), nil
}

func (m *Manager) lookupLocked(ref string) (Partnership, error) {
	for _, p := range m.conf.Partnerships {
		if p.ID == ref {
			return p, nil
		}
	}
	var found []Partnership
	for _, p := range m.conf.Partnerships {
		if strings.EqualFold(p.Name, ref) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if len(m.conf.Partnerships) == 0 {
			return Partnership{}, kindf(ErrUnknownPartnership, "no partnership %q: there are none yet; add one with \"cradle partner add\"", ref)
		}
		ids := make([]string, len(m.conf.Partnerships))
		for i, p := range m.conf.Partnerships {
			ids[i] = p.ID + " (" + p.Name + ")"
		}
		return Partnership{}, kindf(ErrUnknownPartnership, "no such partnership %q; the partnerships are: %s", ref, strings.Join(ids, ", "))
	}
	return Partnership{}, kindf(ErrUnknownPartnership, "%d partnerships are named %q; use the ID", len(found), ref)
}

// Validate checks a partnership as AddPartnership would, without adding it, and returns it with
// defaults filled in (direction two-way or the provider's only one, policy ask, the provider's
// option defaults). Errors wrap ErrInvalid (or ErrUnknownDevice) and say which field is wrong and
// what is valid. The window
// calls it to show messages inline.
func (m *Manager) Validate(ctx context.Context, p Partnership) (Partnership, error) {
	m.mu.Lock()
	ds := m.devices[p.Device]
	known := ds != nil
	m.mu.Unlock()
	if !known && p.Device != "" {
		devs, _ := m.db.knownDevices()
		for _, k := range devs {
			if k.Serial == p.Device {
				known = true
			}
		}
	}
	q := p.clone()
	q.Name = strings.TrimSpace(q.Name)
	if q.OnConflict == "" {
		q.OnConflict = PolicyAsk
	}
	invalid := func(field, format string, args ...any) (Partnership, error) {
		return Partnership{}, fieldf(field, "%s", fmt.Sprintf(format, args...))
	}
	if q.Name == "" {
		return invalid("name", "a partnership needs a name")
	}
	if q.Provider == "" {
		return invalid("provider", "a partnership needs a provider; the providers are: %s", strings.Join(providers.Names(), ", "))
	}
	prov, err := providers.Lookup(q.Provider)
	if err != nil {
		return Partnership{}, fieldf("provider", "%v", err)
	}
	if q.Direction == "" {
		q.Direction = TwoWay
		if len(prov.Directions) == 1 {
			q.Direction = prov.Directions[0]
		}
	}
	if q.Device == "" {
		return invalid("device", "a partnership needs a device serial (see \"cradle devices\")")
	}
	if !known {
		return Partnership{}, kindf(ErrUnknownDevice, "no device with serial %q is connected or known; connect it and check the serial with \"cradle devices\"", q.Device)
	}
	if !slices.Contains(providersDirections(), q.Direction) {
		return invalid("direction", "direction %q is not one of: two-way, to-device, to-desktop", q.Direction)
	}
	if !prov.SupportsDirection(q.Direction) {
		var ds []string
		for _, d := range prov.Directions {
			ds = append(ds, string(d))
		}
		return invalid("direction", "provider %s syncs only %s, not %s", prov.Name, strings.Join(ds, ", "), q.Direction)
	}
	if !slices.Contains(ConflictPolicies, q.OnConflict) {
		return invalid("on-conflict", "conflict policy %q is not one of: ask, desktop, device, newest, keep-both", q.OnConflict)
	}
	if q.OnConflict == PolicyKeepBoth && prov.NoKeepBoth {
		return invalid("on-conflict", "provider %s cannot keep both versions of a conflict (its stores have no room for a copy beside an item); choose ask, desktop, device or newest", prov.Name)
	}
	if q.Interval > 0 && q.Interval < time.Minute {
		return invalid("interval", "the sync interval must be at least a minute")
	}
	opts, err := prov.Validate(q.Options)
	if err != nil {
		return Partnership{}, kindf(ErrInvalid, "%v", err)
	}
	for _, o := range prov.Options {
		v, ok := opts[o.Name]
		if !ok {
			continue
		}
		if !utf8.ValidString(v) {
			return invalid("option:"+o.Name, "option %s: the value is not valid UTF-8 text", o.Name)
		}
		if o.Kind != providers.KindFolder || v == "" {
			continue
		}
		abs, err := checkFolder(o, v)
		if err != nil {
			return Partnership{}, err
		}
		opts[o.Name] = abs
	}
	q.Options = opts
	if ds != nil {
		if err := m.checkDevicePath(ctx, ds, prov, opts); err != nil {
			return Partnership{}, err
		}
	}
	return q, nil
}

// checkFolder checks a desktop folder option: it must exist and be a folder; it is made absolute.
func checkFolder(o providers.Option, v string) (string, error) {
	if strings.HasPrefix(v, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			v = filepath.Join(home, v[2:])
		}
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return "", fieldf("option:"+o.Name, "%s %q: %v", strings.ToLower(o.Label), v, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fieldf("option:"+o.Name, "%s %s does not exist; create it or choose another folder", strings.ToLower(o.Label), abs)
	case err != nil:
		return "", fieldf("option:"+o.Name, "%s %s cannot be used: %v", strings.ToLower(o.Label), abs, unwrapPathError(err))
	case !st.IsDir():
		return "", fieldf("option:"+o.Name, "%s %s is a file, not a folder", strings.ToLower(o.Label), abs)
	}
	return abs, nil
}

// checkDevicePath checks the provider's device-path option against the connected device.
func (m *Manager) checkDevicePath(ctx context.Context, ds *devState, prov Provider, opts map[string]string) error {
	for _, o := range prov.Options {
		if o.Kind != providers.KindDevicePath {
			continue
		}
		v := opts[o.Name]
		if v == "" {
			continue
		}
		if _, _, err := providers.ParseDevicePath(ctx, ds.dev, v); err != nil {
			return fieldf("option:"+o.Name, "%s %q: %v", strings.ToLower(o.Label), v, err)
		}
	}
	return nil
}

// AddPartnership validates p (see Validate), gives it a new ID and saves it. Its Created time is
// set; its ID field is ignored. When its device is connected and the manager runs as a service
// with sync on plug-in, a first session is queued.
func (m *Manager) AddPartnership(ctx context.Context, p Partnership) (Partnership, error) {
	q, err := m.Validate(ctx, p)
	if err != nil {
		return Partnership{}, err
	}
	q.ID = ""
	if err := m.checkOverlap(q); err != nil {
		return Partnership{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Partnership{}, ErrClosed
	}
	next := m.conf.clone()
	if next.NextID < 1 {
		next.NextID = 1
	}
	q.ID = strconv.Itoa(next.NextID)
	next.NextID++
	q.Created = time.Now().UTC().Truncate(time.Second)
	// Leftovers of an earlier partnership with this ID (a settings file edited by hand) must not
	// be taken for this one's state.
	os.Remove(m.handlePath(q.ID))
	os.RemoveAll(m.stateDir(q.ID))
	next.Partnerships = append(next.Partnerships, q)
	if err := m.saveLocked(next); err != nil {
		return Partnership{}, err
	}
	ps := newPartState(q.ID)
	m.parts[q.ID] = ps
	m.openHandleFile(ps)
	m.bus.publish(PartnershipChanged, q.Device, q.ID, q.clone())
	if ds := m.devices[q.Device]; ds != nil {
		ds.info.New = false
		if m.cfg.Service {
			m.scheduleLocked(q, ps, ds)
			if m.conf.Settings.SyncOnConnect {
				m.enqueueLocked(ds, &job{kind: jobSync, part: q.ID, trigger: TriggerConnect})
			}
		}
	}
	m.publishStatusLocked(q.ID)
	return q.clone(), nil
}

// UpdatePartnership changes a partnership's name, options, direction, conflict policy or
// interval (p.ID names it; its device and provider cannot change: remove and add it instead).
// A session of it that runs now finishes with the old values.
func (m *Manager) UpdatePartnership(ctx context.Context, p Partnership) error {
	m.mu.Lock()
	old, err := m.lookupLocked(p.ID)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if p.Device != "" && p.Device != old.Device || p.Provider != "" && p.Provider != old.Provider {
		return kindf(ErrInvalid, "a partnership's device and provider cannot change; remove it and add a new one")
	}
	p.Device, p.Provider = old.Device, old.Provider
	q, err := m.Validate(ctx, p)
	if err != nil {
		return err
	}
	q.ID, q.Created = old.ID, old.Created
	if err := m.checkOverlap(q); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	next := m.conf.clone()
	for i := range next.Partnerships {
		if next.Partnerships[i].ID == q.ID {
			next.Partnerships[i] = q
		}
	}
	if err := m.saveLocked(next); err != nil {
		return err
	}
	ps := m.parts[q.ID]
	if ps != nil && !maps2Equal(old.Options, q.Options) {
		// The stores must be reopened with the new options at the next session.
		ps.reopen = true
	}
	if ds := m.devices[q.Device]; ds != nil && ps != nil && m.cfg.Service {
		m.scheduleLocked(q, ps, ds)
	}
	m.bus.publish(PartnershipChanged, q.Device, q.ID, q.clone())
	m.publishStatusLocked(q.ID)
	return nil
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// RemovePartnership stops and removes a partnership (by ID or name) and deletes its sync state on
// this computer. The files on both sides stay as they are.
func (m *Manager) RemovePartnership(ctx context.Context, ref string) error {
	m.mu.Lock()
	p, err := m.lookupLocked(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	ps := m.parts[p.ID]
	var ds *devState
	if ps != nil {
		ps.removed = true
		ps.stopTimers()
		if ps.cancel != nil {
			ps.cancel()
		}
		ds = m.devices[p.Device]
	}
	m.mu.Unlock()
	if ps != nil && ds != nil {
		// Let the device's worker finish with it: a running session is cancelled and the
		// provider closed from the worker, never under its feet.
		done := make(chan jobResult, 1)
		m.mu.Lock()
		m.enqueueLocked(ds, &job{kind: jobRelease, part: p.ID, waiters: []chan jobResult{done}})
		m.mu.Unlock()
		select {
		case <-done:
		case <-ds.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.conf.clone()
	next.Partnerships = slices.DeleteFunc(next.Partnerships, func(q Partnership) bool { return q.ID == p.ID })
	if err := m.saveLocked(next); err != nil {
		if ps != nil {
			ps.removed = false
		}
		return err
	}
	if ps != nil {
		ps.closeInstance()
		if ps.hf != nil {
			ps.hf.Close()
			ps.hf = nil
		}
	}
	delete(m.parts, p.ID)
	var errs []error
	if err := os.Remove(m.handlePath(p.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(m.stateDir(p.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := m.db.forget(p.ID); err != nil {
		errs = append(errs, err)
	}
	m.bus.publish(PartnershipChanged, p.Device, p.ID, Partnership{ID: p.ID})
	if len(errs) > 0 {
		return fmt.Errorf("partnership %s was removed, but its state could not all be deleted: %w", p.ID, errors.Join(errs...))
	}
	return nil
}
