package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	// Picture formats a conflict preview can show.
	_ "image/gif"
	_ "image/jpeg"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// conflictID joins a partnership ID and a handle file's conflict ID.
func conflictID(partnership, id string) string { return partnership + "." + id }

func splitConflictID(id string) (string, string, bool) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

func conflictIDs(hf *repl.HandleFile) map[string]bool {
	out := map[string]bool{}
	cs, err := hf.Conflicts()
	if err != nil {
		return out
	}
	for _, c := range cs {
		out[c.ID] = true
	}
	return out
}

// Conflicts returns the pending conflicts of every partnership, oldest first, with both sides'
// size, time, existence and (when it could be read while the device was connected) a preview.
func (m *Manager) Conflicts() ([]Conflict, error) {
	m.mu.Lock()
	type src struct {
		p  Partnership
		hf *repl.HandleFile
	}
	var srcs []src
	for _, p := range m.conf.Partnerships {
		ps := m.parts[p.ID]
		if ps == nil {
			continue
		}
		m.openHandleFile(ps)
		if ps.hf != nil {
			srcs = append(srcs, src{p, ps.hf})
		}
	}
	m.mu.Unlock()
	var out []Conflict
	var errs []error
	for _, s := range srcs {
		cs, err := s.hf.Conflicts()
		if err != nil {
			errs = append(errs, fmt.Errorf("partnership %s: %w", s.p.ID, err))
			continue
		}
		for _, c := range cs {
			x := m.conflict(s.p, c)
			x.ResolutionError = m.db.resolutionError(s.p.ID, c.ID)
			out = append(out, x)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Detected.Before(out[j].Detected) })
	return out, errors.Join(errs...)
}

func (m *Manager) conflict(p Partnership, c repl.Conflict) Conflict {
	out := Conflict{
		ID: conflictID(p.ID, c.ID), Partnership: p.ID, PartnershipName: p.Name, DeviceSerial: p.Device,
		Path: c.Name, Detected: c.Detected.UTC(), Updated: c.Updated.UTC(),
	}
	out.Choices = choices(p.Provider)
	switch c.Pending {
	case repl.ResolveBoth:
		out.Resolution = KeepBoth
	case sideDesktop:
		out.Resolution = KeepDesktop
	case sideDevice:
		out.Resolution = KeepDevice
	}
	for _, name := range []string{sideDesktop, sideDevice} {
		s, ok := c.Side(name)
		if !ok {
			continue
		}
		cs := ConflictSide{Exists: s.Exists, Kind: s.Kind.String(), Name: s.Name, Size: s.Size}
		if !s.ModTime.IsZero() {
			cs.Modified = s.ModTime.UTC()
		}
		if sp, ok := m.db.preview(p.ID, c.ID, name); ok && sp.Size == s.Size && sp.Modified.Equal(cs.Modified) {
			cs.Preview = sp.Preview
		}
		if name == sideDesktop {
			out.Desktop = cs
		} else {
			out.Device = cs
		}
	}
	return out
}

// refreshConflicts runs after a session, with the stores open: it reads previews of new or
// changed conflicts, drops those of resolved ones, and returns the number pending and those that
// are new.
func (m *Manager) refreshConflicts(ctx context.Context, p Partnership, hf *repl.HandleFile, inst *providers.Instance, before map[string]bool) (int, []Conflict) {
	cs, err := hf.Conflicts()
	if err != nil {
		m.log.Warn("manager: list conflicts", "partnership", p.ID, "err", err)
		return 0, nil
	}
	keep := map[string]bool{}
	var added []Conflict
	for _, c := range cs {
		keep[c.ID] = true
		for _, name := range []string{sideDesktop, sideDevice} {
			s, ok := c.Side(name)
			if !ok || !s.Exists || s.Kind != repl.KindFile || s.Handle == "" {
				continue
			}
			var mod = s.ModTime
			if !mod.IsZero() {
				mod = mod.UTC()
			}
			if sp, ok := m.db.preview(p.ID, c.ID, name); ok && sp.Size == s.Size && sp.Modified.Equal(mod) {
				continue
			}
			st := inst.Desktop
			if name == sideDevice {
				st = inst.Device
			}
			pv := makePreview(ctx, st, s.Handle, s.Name)
			if err := m.db.putPreview(p.ID, c.ID, name, storedPreview{Size: s.Size, Modified: mod, Preview: pv}); err != nil {
				m.log.Warn("manager: keep a conflict preview", "err", err)
			}
		}
		if !before[c.ID] {
			added = append(added, m.conflict(p, c))
		}
	}
	if err := m.db.prunePreviews(p.ID, keep); err != nil {
		m.log.Warn("manager: drop old conflict previews", "err", err)
	}
	return len(cs), added
}

// makePreview reads what the conflict dialog shows of one version: a contact's fields, the start
// of a text, a thumbnail of a picture. nil when there is nothing to show.
func makePreview(ctx context.Context, st repl.Store, handle, name string) *Preview {
	if us, ok := st.(repl.UnitStore); ok {
		units, err := us.ReadUnits(ctx, handle)
		if err != nil {
			return nil
		}
		return unitsPreview(units)
	}
	rc, err := st.Open(ctx, handle)
	if err != nil {
		return nil
	}
	defer rc.Close()
	return streamPreview(rc, name)
}

// unitsPreview shows an item's change units as fields: one field per property, units of one
// property's values ("TEL;CELL", "TEL;HOME 2", as the contacts provider names them) together.
func unitsPreview(units repl.Units) *Preview {
	keys := make([]string, 0, len(units))
	for k := range units {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pv := &Preview{}
	for _, k := range keys {
		prop := k
		if i := strings.IndexAny(k, "; "); i > 0 {
			prop = k[:i]
		}
		v := strings.TrimSpace(string(units[k]))
		if !utf8.ValidString(v) || strings.EqualFold(prop, "PHOTO") {
			v = fmt.Sprintf("(%d bytes)", len(units[k]))
		}
		if len(v) > 512 {
			v = v[:512] + "…"
		}
		if n := len(pv.Fields); n > 0 && pv.Fields[n-1].Name == prop {
			pv.Fields[n-1].Value += "\n" + v
			continue
		}
		pv.Fields = append(pv.Fields, Field{Name: prop, Value: v})
	}
	return pv
}

// streamPreview shows content read from rc: a thumbnail of a picture (by name), the start of a
// text; nil for anything else.
func streamPreview(rc io.Reader, name string) *Preview {
	if isPicture(name) {
		img, _, err := image.Decode(io.LimitReader(rc, 64<<20))
		if err != nil {
			return nil
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, thumbnail(img, ThumbnailSize)); err != nil {
			return nil
		}
		return &Preview{Image: buf.Bytes()}
	}
	head := make([]byte, PreviewBytes+1)
	n, err := io.ReadFull(rc, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil
	}
	head = head[:n]
	truncated := n > PreviewBytes
	if truncated {
		head = head[:PreviewBytes]
		// Do not cut a character in two.
		for i := 0; i < utf8.UTFMax && len(head) > 0 && !utf8.Valid(head); i++ {
			head = head[:len(head)-1]
		}
	}
	if !looksLikeText(head) {
		return nil
	}
	return &Preview{Text: string(head), Truncated: truncated}
}

func isPicture(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png", ".gif":
		return true
	}
	return false
}

// looksLikeText says whether b is UTF-8 text without NULs or many control characters.
func looksLikeText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	ctl := 0
	for _, c := range b {
		if c == 0 {
			return false
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			ctl++
		}
	}
	return ctl*50 <= len(b)
}

// thumbnail scales img down to fit in size x size pixels (box filter), never up.
func thumbnail(img image.Image, size int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= size && h <= size || w == 0 || h == 0 {
		return img
	}
	tw, th := size, h*size/w
	if h > w {
		tw, th = w*size/h, size
	}
	if tw < 1 {
		tw = 1
	}
	if th < 1 {
		th = 1
	}
	out := image.NewNRGBA(image.Rect(0, 0, tw, th))
	for y := 0; y < th; y++ {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+(y+1)*h/th
		for x := 0; x < tw; x++ {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+(x+1)*w/tw
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy += max(1, (y1-y0)/4) {
				for sx := x0; sx < x1; sx += max(1, (x1-x0)/4) {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			if n == 0 {
				continue
			}
			i := out.PixOffset(x, y)
			// Average of premultiplied values; NRGBA wants them un-premultiplied.
			aa := a / n
			if aa == 0 {
				continue
			}
			out.Pix[i+0] = uint8(r / n * 0xffff / aa >> 8)
			out.Pix[i+1] = uint8(g / n * 0xffff / aa >> 8)
			out.Pix[i+2] = uint8(bl / n * 0xffff / aa >> 8)
			out.Pix[i+3] = uint8(aa >> 8)
		}
	}
	return out
}

// Resolve settles one conflict (ID as Conflicts gives it): keep the desktop's version, the
// device's, or both. The choice is recorded at once (after a session of that partnership that is
// running now ends); when the device is connected a session applies it right away, else the next
// session does.
func (m *Manager) Resolve(ctx context.Context, id string, keep Keep) error {
	return m.resolve(ctx, id, keep, true)
}

// RecordChoice records the choice as Resolve does but queues no session: for a caller that
// syncs the partnership itself right after and reports that session (cradle resolve). A queued
// session could start first, on an idle worker, and leave the caller's own "up to date".
func (m *Manager) RecordChoice(ctx context.Context, id string, keep Keep) error {
	return m.resolve(ctx, id, keep, false)
}

func (m *Manager) resolve(ctx context.Context, id string, keep Keep, queue bool) error {
	pid, cid, ok := splitConflictID(id)
	if !ok {
		return kindf(ErrNoConflict, "no conflict %q: conflict IDs look like \"1.4\" (see \"cradle conflicts\")", id)
	}
	side, err := keepSide(keep)
	if err != nil {
		return err
	}
	m.mu.Lock()
	ps := m.parts[pid]
	var p Partnership
	found := false
	for _, q := range m.conf.Partnerships {
		if q.ID == pid {
			p, found = q, true
		}
	}
	if ps == nil || !found {
		m.mu.Unlock()
		return kindf(ErrNoConflict, "no conflict %q: there is no partnership %s (see \"cradle conflicts\")", id, pid)
	}
	m.openHandleFile(ps)
	hf, hfErr := ps.hf, ps.hfErr
	m.mu.Unlock()
	if hfErr != nil {
		return hfErr
	}
	var before repl.Conflict
	cs, _ := hf.Conflicts()
	for _, c := range cs {
		if c.ID == cid {
			before = c
		}
	}
	if err := checkChoice(p, id, keep); err != nil {
		return err
	}
	if err := hf.Resolve(ctx, cid, side); err != nil {
		if errors.Is(err, repl.ErrNoConflict) {
			return kindf(ErrNoConflict, "no conflict %q is pending; it may be resolved already (see \"cradle conflicts\")", id)
		}
		return fmt.Errorf("resolve conflict %s: %w", id, err)
	}
	resolved := m.conflict(p, before)
	resolved.ID = id
	resolved.Resolution = keep
	if err := m.db.putResolutionError(p.ID, cid, ""); err != nil { // a new choice: the last one's failure is history
		m.log.Warn("manager: forget why a resolution failed", "err", err)
	}
	m.mu.Lock()
	if n, err := hf.Conflicts(); err == nil {
		ps.conflicts = len(n)
	}
	m.bus.publish(ConflictResolved, p.Device, p.ID, resolved)
	if ds := m.devices[p.Device]; ds != nil && queue {
		m.enqueueLocked(ds, &job{kind: jobSync, part: p.ID, trigger: TriggerResolve})
	}
	m.publishStatusLocked(p.ID)
	m.mu.Unlock()
	return nil
}

// choices returns the resolutions a conflict in a partnership of provider can have: a provider
// whose stores cannot hold a copy beside an item (NoKeepBoth) cannot keep both.
func choices(provider string) []Keep {
	if prov, err := providers.Lookup(provider); err == nil && prov.NoKeepBoth {
		return []Keep{KeepDesktop, KeepDevice}
	}
	return []Keep{KeepDesktop, KeepDevice, KeepBoth}
}

// checkChoice refuses up front a resolution the partnership's stores cannot carry out, naming the
// choices left.
func checkChoice(p Partnership, id string, keep Keep) error {
	cs := choices(p.Provider)
	if slices.Contains(cs, keep) {
		return nil
	}
	var names []string
	for _, c := range cs {
		names = append(names, string(c))
	}
	return kindf(ErrInvalid, "conflict %s: provider %s cannot keep both versions (its stores have no room for a copy beside the item); choose %s: cradle resolve %s --keep %s", id, p.Provider, strings.Join(names, " or "), id, strings.Join(names, "|"))
}

// keepName is the Keep of a repl resolution choice.
func keepName(side string) Keep {
	switch side {
	case repl.ResolveBoth:
		return KeepBoth
	case sideDesktop:
		return KeepDesktop
	case sideDevice:
		return KeepDevice
	}
	return Keep(side)
}

func keepSide(k Keep) (string, error) {
	switch k {
	case KeepDesktop:
		return sideDesktop, nil
	case KeepDevice:
		return sideDevice, nil
	case KeepBoth:
		return repl.ResolveBoth, nil
	}
	return "", kindf(ErrInvalid, "keep %q: choose desktop, device or both", k)
}

// ResolveAll settles every pending conflict (of the partnerships given by ID or name, or of all
// when none are given) with the same choice, and returns how many it resolved. Conflicts that
// cannot take the choice (see Conflict.Choices) are left pending, and the error names them.
func (m *Manager) ResolveAll(ctx context.Context, keep Keep, partnerships ...string) (int, error) {
	return m.resolveAll(ctx, keep, true, partnerships...)
}

// RecordChoiceAll is ResolveAll without the sessions (see RecordChoice).
func (m *Manager) RecordChoiceAll(ctx context.Context, keep Keep, partnerships ...string) (int, error) {
	return m.resolveAll(ctx, keep, false, partnerships...)
}

func (m *Manager) resolveAll(ctx context.Context, keep Keep, queue bool, partnerships ...string) (int, error) {
	if _, err := keepSide(keep); err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, ref := range partnerships {
		p, err := m.Partnership(ref)
		if err != nil {
			return 0, err
		}
		want[p.ID] = true
	}
	cs, err := m.Conflicts()
	if err != nil {
		return 0, err
	}
	n := 0
	var refused []error
	for _, c := range cs {
		if len(want) > 0 && !want[c.Partnership] || c.Resolution != "" {
			continue
		}
		if err := m.resolve(ctx, c.ID, keep, queue); err != nil {
			switch {
			case errors.Is(err, ErrNoConflict):
				continue
			case !slices.Contains(c.Choices, keep):
				refused = append(refused, err)
				continue
			}
			return n, err
		}
		n++
	}
	return n, errors.Join(refused...)
}
