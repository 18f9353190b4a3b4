package manager

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/cradle-sync/cradle/providers"
)

// Two partnerships of one device that sync the same desktop folder with the same folder on the
// device (or one inside the other on both sides) undo each other: each has its own state, and
// the device's sync state of that folder is shared, so what one deletes the other brings back as
// new. Such a partnership is refused.

// checkOverlap returns an error when q's desktop folder and device path both overlap those of
// another partnership of its device (one with q's own ID is q, updated).
func (m *Manager) checkOverlap(q Partnership) error {
	qd, qp, ok := places(q)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.conf.Partnerships {
		if o.ID == q.ID || o.Device != q.Device {
			continue
		}
		od, op, ok := places(o)
		if !ok || !nested(qd, od, filepath.Separator) || !nested(qp, op, '/') {
			continue
		}
		return fieldf("option:"+providers.OptDevicePath, "partnership %s (%s) already syncs %s with %s on this device; "+
			"two partnerships of one folder undo each other's changes: change that one, or remove it first",
			o.ID, o.Name, od, o.Options[providers.OptDevicePath])
	}
	return nil
}

// places returns a partnership's desktop folder and its device path (storage prefix kept,
// cleaned), when its provider has both.
func places(p Partnership) (desk, dev string, ok bool) {
	prov, err := providers.Lookup(p.Provider)
	if err != nil {
		return "", "", false
	}
	for _, o := range prov.Options {
		v := p.Options[o.Name]
		switch {
		case v == "":
		case o.Kind == providers.KindFolder && desk == "":
			desk = filepath.Clean(v)
		case o.Kind == providers.KindDevicePath:
			dev = v
		}
	}
	if desk == "" || dev == "" {
		return "", "", false
	}
	storage, rest, found := strings.Cut(dev, ":")
	if !found {
		storage, rest = "", dev
	}
	rest = strings.Trim(path.Clean("/"+rest), "/")
	return desk, fmt.Sprintf("%s:%s", strings.ToLower(strings.TrimSpace(storage)), rest), true
}

// nested tells whether a and b are one folder or one holds the other.
func nested(a, b string, sep byte) bool {
	if a == b {
		return true
	}
	under := func(x, y string) bool {
		return strings.HasPrefix(x, y) && (strings.HasSuffix(y, string(sep)) || strings.HasSuffix(y, ":") || len(x) > len(y) && x[len(y)] == sep)
	}
	return under(a, b) || under(b, a)
}
