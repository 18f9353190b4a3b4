package memstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cradle-sync/cradle/repl"
)

// UnitStore is a Store whose items are sets of change units (like contact cards made of fields).
// An item's content is its units encoded one per line, sorted by name, as "NAME:base64(value)",
// so a hook can write units as plain content (see EncodeUnits).
type UnitStore struct {
	*Store
}

var _ repl.UnitStore = (*UnitStore)(nil)

// NewUnits returns an empty UnitStore.
func NewUnits(opts Options) *UnitStore {
	return &UnitStore{New(opts)}
}

// ReadUnits returns the units of the item at handle.
func (s *UnitStore) ReadUnits(ctx context.Context, handle string) (repl.Units, error) {
	rc, err := s.Open(ctx, handle)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read units of %q: %w", handle, err)
	}
	u, err := DecodeUnits(b)
	if err != nil {
		return nil, fmt.Errorf("read units of %q: %w", handle, err)
	}
	return u, nil
}

// WriteUnits writes the item whose content is units (Write with the encoded units as data).
func (s *UnitStore) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	b, err := EncodeUnits(units)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write units of %q: %w", req.Name, err)
	}
	req.Kind = repl.KindFile
	req.Data = strings.NewReader(string(b))
	req.Size = int64(len(b))
	return s.Write(ctx, req)
}

// PutUnits sets the units of the item name, as a user editing it would (Put with EncodeUnits).
func (s *UnitStore) PutUnits(name string, units repl.Units) error {
	b, err := EncodeUnits(units)
	if err != nil {
		return err
	}
	return s.Put(name, b, s.now())
}

// EncodeUnits encodes units the way UnitStore keeps them. A unit name must be non-empty and hold
// neither ':' nor a line break.
func EncodeUnits(units repl.Units) ([]byte, error) {
	names := make([]string, 0, len(units))
	for n := range units {
		if n == "" || strings.ContainsAny(n, ":\r\n") {
			return nil, fmt.Errorf("unit name %q: %w", n, repl.ErrInvalidName)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(units[n]))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// DecodeUnits parses what EncodeUnits produced.
func DecodeUnits(b []byte) (repl.Units, error) {
	u := repl.Units{}
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d is not NAME:VALUE", i+1)
		}
		v, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		u[name] = v
	}
	return u, nil
}
