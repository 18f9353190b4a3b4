package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
)

// Versions: what a sync replaced or deleted, kept by the provider's stores (providers/versions)
// for Settings.VersionsDays, listed, previewed and restored here, cleaned at the end of each
// session. A partnership whose device is connected is served by the device's worker, with its
// stores opened as for a sync (versions kept on the device are read there); one whose device is
// away is opened without the device (those are listed from the cached listing).

// Version is a file's content a sync replaced or deleted, kept for a while.
type Version struct {
	// ID names the version for Restore: "<partnership ID>.<hash>".
	ID              string `json:"id"`
	Partnership     string `json:"partnership"`
	PartnershipName string `json:"partnership_name"`
	// Path is the item's path in the partnership when it was replaced.
	Path string `json:"path"`
	// Label names the item where its path does not (a contact's name).
	Label string `json:"label,omitempty"`
	// Time is when it was replaced or deleted.
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
	// Modified is the content's own modification time.
	Modified time.Time `json:"modified"`
	// Reason says why it was kept: "update" (the other side's newer version replaced it),
	// "delete" (deleted on the other side), "conflict" (a conflict was resolved for the other
	// side), "policy" (the partnership's conflict rule chose the other side), "restore" (a
	// restore put an older version in its place).
	Reason string `json:"reason"`
	// Side is whose content it was: "desktop" or "device".
	Side string `json:"side"`
	// OnDevice is set when it is kept on the device: reading or restoring it needs the device.
	OnDevice bool `json:"on_device,omitempty"`
	// File is where it is on this computer ("" when it is kept on the device).
	File string `json:"file,omitempty"`
}

// ErrNoVersion means no kept version has the ID given.
var ErrNoVersion = errors.New("no such version")

// versionRule is how long the settings keep versions.
func (s Settings) versionRule() versions.Rule {
	return versions.Rule{MaxAge: time.Duration(s.VersionsDays) * 24 * time.Hour, MaxBytes: s.VersionsMaxSize}
}

func splitVersionID(id string) (string, string, bool) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

// withVersions runs fn with the partnership's versions: on the device's worker with the stores
// opened as for a sync when the device is connected, else with the provider opened without it.
// A provider that keeps no versions gives fn a nil set.
func (m *Manager) withVersions(ctx context.Context, p Partnership, fn func(ctx context.Context, s *versions.Set) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	ds, ps := m.devices[p.Device], m.parts[p.ID]
	if ds != nil && ps != nil {
		done := make(chan jobResult, 1)
		m.enqueueLocked(ds, &job{kind: jobDo, part: p.ID, waiters: []chan jobResult{done}, do: func(jctx context.Context) error {
			_, inst, _, err := m.prepare(jctx, ds, p, ps)
			if err != nil {
				return err
			}
			return fn(jctx, inst.Versions)
		}})
		m.mu.Unlock()
		select {
		case r := <-done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Unlock()
	prov, err := providers.Lookup(p.Provider)
	if err != nil {
		return err
	}
	opts, err := prov.Validate(p.Options)
	if err != nil {
		return fmt.Errorf("the partnership's options: %w", err)
	}
	inst, err := prov.Open(ctx, providers.Env{Options: opts, StateDir: m.stateDir(p.ID)})
	if err != nil {
		return err
	}
	defer func() {
		if inst.Close != nil {
			inst.Close()
		}
	}()
	return fn(ctx, inst.Versions)
}

func (m *Manager) version(p Partnership, s *versions.Set, v versions.Version) Version {
	out := Version{ID: p.ID + "." + v.ID, Partnership: p.ID, PartnershipName: p.Name, Path: v.Path, Label: v.Label,
		Time: v.Time.UTC(), Size: v.Size, Reason: string(v.Reason), Side: v.Side, OnDevice: v.OnDevice, File: s.Where(v)}
	if !v.Modified.IsZero() {
		out.Modified = v.Modified.UTC()
	}
	return out
}

// Versions lists the kept versions of the partnership ref (ID or name; every partnership when
// ref is ""), newest first, of the file or folder at p in it ("" for all).
func (m *Manager) Versions(ctx context.Context, ref, p string) ([]Version, error) {
	parts, err := m.partnershipsOf(ref)
	if err != nil {
		return nil, err
	}
	var out []Version
	var errs []error
	for _, pt := range parts {
		err := m.withVersions(ctx, pt, func(ctx context.Context, s *versions.Set) error {
			if s == nil {
				return nil
			}
			vs, err := s.List(ctx)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if versions.Under(v, p) {
					out = append(out, m.version(pt, s, v))
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("partnership %s (%s): %w", pt.ID, pt.Name, err))
		}
	}
	slices.SortStableFunc(out, func(a, b Version) int { return b.Time.Compare(a.Time) })
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(errs) > 0 {
		m.log.Warn("manager: list versions", "err", errors.Join(errs...))
	}
	return out, nil
}

// partnershipsOf returns the partnership ref names, or every one when ref is "".
func (m *Manager) partnershipsOf(ref string) ([]Partnership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ref == "" {
		out := make([]Partnership, len(m.conf.Partnerships))
		for i, p := range m.conf.Partnerships {
			out[i] = p.clone()
		}
		return out, nil
	}
	p, err := m.lookupLocked(ref)
	if err != nil {
		return nil, err
	}
	return []Partnership{p.clone()}, nil
}

// findVersion runs fn with the version id names and its partnership's versions.
func (m *Manager) findVersion(ctx context.Context, id string, fn func(ctx context.Context, p Partnership, s *versions.Set, v versions.Version) error) error {
	pid, vid, ok := splitVersionID(id)
	if !ok {
		return kindf(ErrNoVersion, "no version %q: version IDs look like \"1.3fa9c2d10b\" (see \"cradle versions\")", id)
	}
	m.mu.Lock()
	var p Partnership
	found := false
	for _, q := range m.conf.Partnerships {
		if q.ID == pid {
			p, found = q.clone(), true
		}
	}
	m.mu.Unlock()
	if !found {
		return kindf(ErrNoVersion, "no version %q: there is no partnership %s (see \"cradle versions\")", id, pid)
	}
	return m.withVersions(ctx, p, func(ctx context.Context, s *versions.Set) error {
		if s == nil {
			return kindf(ErrNoVersion, "no version %q: partnership %s keeps no versions", id, pid)
		}
		v, err := s.Find(ctx, vid)
		if errors.Is(err, versions.ErrNotFound) {
			return kindf(ErrNoVersion, "no version %q is kept; it may have expired (see \"cradle versions\")", id)
		}
		if err != nil {
			return err
		}
		return fn(ctx, p, s, v)
	})
}

// Restore puts the version id back: at its path in the partnership's desktop folder (what is
// there now is kept as a version first), or at to, a file on this computer that must not exist.
// The next sync carries a restore into the partnership to the device, as any change of the
// user's. It returns the version and the file written. A version kept on the device needs the
// device (ErrNotConnected otherwise).
func (m *Manager) Restore(ctx context.Context, id, to string) (Version, string, error) {
	var out Version
	var file string
	err := m.findVersion(ctx, id, func(ctx context.Context, p Partnership, s *versions.Set, v versions.Version) error {
		out = m.version(p, s, v)
		var err error
		file, err = s.Restore(ctx, v, to)
		return m.versionErr(p, err)
	})
	if err != nil {
		return Version{}, "", err
	}
	m.bus.publish(VersionRestored, "", out.Partnership, out)
	return out, file, nil
}

// RestoreFolder restores, in the partnership ref, the newest version of every file kept under
// the folder dir ("" for all): each goes back to its path (what is there now is kept as a
// version first). It returns how many it restored.
func (m *Manager) RestoreFolder(ctx context.Context, ref, dir string) (int, error) {
	parts, err := m.partnershipsOf(ref)
	if err != nil {
		return 0, err
	}
	if ref == "" || len(parts) != 1 {
		return 0, kindf(ErrUnknownPartnership, "name the partnership whose folder to restore")
	}
	p := parts[0]
	n := 0
	err = m.withVersions(ctx, p, func(ctx context.Context, s *versions.Set) error {
		if s == nil {
			return nil
		}
		vs, err := s.List(ctx)
		if err != nil {
			return err
		}
		done := map[string]bool{}
		for _, v := range vs { // newest first
			if !versions.Under(v, dir) || done[v.Path] {
				continue
			}
			done[v.Path] = true
			if _, err := s.Restore(ctx, v, ""); err != nil {
				return m.versionErr(p, err)
			}
			n++
			m.bus.publish(VersionRestored, "", p.ID, m.version(p, s, v))
		}
		return nil
	})
	return n, err
}

// versionErr says what to do about a version that could not be read.
func (m *Manager) versionErr(p Partnership, err error) error {
	if errors.Is(err, versions.ErrDeviceAway) {
		m.mu.Lock()
		label := m.deviceLabelLocked(p.Device)
		m.mu.Unlock()
		return kindf(ErrNotConnected, "this version is kept on %s: plug it in and try again", label)
	}
	if errors.Is(err, versions.ErrExists) {
		return kindf(ErrInvalid, "%v", err)
	}
	return err
}

// VersionPreview reads what the versions view shows of a version: the start of a text, a
// thumbnail of a picture, a contact's fields (as the conflict dialog shows them).
func (m *Manager) VersionPreview(ctx context.Context, id string) (*Preview, error) {
	var pv *Preview
	err := m.findVersion(ctx, id, func(ctx context.Context, p Partnership, s *versions.Set, v versions.Version) error {
		rc, err := s.Open(ctx, v)
		if err != nil {
			return m.versionErr(p, err)
		}
		defer rc.Close()
		if s.Units == nil {
			pv = streamPreview(rc, path.Base(v.Path))
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		if err != nil {
			return err
		}
		if units, err := s.Units(b); err == nil {
			pv = unitsPreview(units)
		}
		return nil
	})
	return pv, err
}

// cleanVersions removes what the settings no longer keep, at the end of a session.
func (m *Manager) cleanVersions(ctx context.Context, p Partnership, inst *providers.Instance) {
	if inst == nil || inst.Versions == nil {
		return
	}
	n, err := inst.Versions.Clean(ctx, m.Settings().versionRule(), time.Now())
	if err != nil {
		m.log.Warn("manager: remove expired versions", "partnership", p.ID, "err", err)
	}
	if n > 0 {
		m.log.Debug("manager: removed expired versions", "partnership", p.ID, "count", n)
	}
}
