package manager

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestInvalidField: each validation error names the field it concerns, so that a form can put
// the message beside it.
func TestInvalidField(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	good := func() Partnership {
		return Partnership{Name: "Docs", Provider: "files", Device: w.serial(),
			Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}}
	}
	for _, c := range []struct {
		field string
		spoil func(p *Partnership)
	}{
		{"name", func(p *Partnership) { p.Name = " " }},
		{"provider", func(p *Partnership) { p.Provider = "no-such-provider" }},
		{"direction", func(p *Partnership) { p.Direction = "sideways" }},
		{"on-conflict", func(p *Partnership) { p.OnConflict = "coin-toss" }},
		{"option:desktop", func(p *Partnership) { p.Options["desktop"] = filepath.Join(w.desktop, "missing") }},
		{"option:device-path", func(p *Partnership) { p.Options["device-path"] = "Documents/../../etc" }},
	} {
		p := good()
		c.spoil(&p)
		_, err := m.AddPartnership(ctxT(t), p)
		if !errors.Is(err, ErrInvalid) || InvalidField(err) != c.field {
			t.Errorf("%s spoiled: err %v, field %q; want ErrInvalid for %q", c.field, err, InvalidField(err), c.field)
		}
	}
	if _, err := m.AddPartnership(ctxT(t), good()); err != nil {
		t.Errorf("the good partnership: %v", err)
	}
}
