package contacts

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-vcard"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// Versions of cards: a card the engine replaces or deletes is kept as a one-card .vcf file, the
// same way files are (providers/versions). A card of the address book folder keeps its file name;
// a card of the device's file is kept on this computer, named as the address book would name it,
// so that restoring it puts it back into the folder as a card (which the next sync carries to the
// device).

var (
	_ repl.CauseDeleter = (*Desktop)(nil)
	_ repl.CauseDeleter = (*DeviceFile)(nil)
)

// KeepVersions makes the store keep the cards it replaces or deletes for the engine in d.
func (s *Desktop) KeepVersions(d *versions.Dir) { s.versions = d }

// FileFor returns the name of the file that holds the card with uid in the folder, or the one it
// would get.
func (s *Desktop) FileFor(uid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, ok := s.byHandle[uid]; ok {
		return name
	}
	return s.fileNameFor(uid)
}

// KeepVersions makes the store keep the cards it replaces or deletes for the engine in d, each
// in a file named nameFor(its UID).
func (s *DeviceFile) KeepVersions(d *versions.Dir, nameFor func(uid string) string) {
	s.versions, s.nameFor = d, nameFor
}

// keep keeps the device's card d before it is replaced or deleted for cause. Called with s.mu
// held.
func (s *DeviceFile) keep(ctx context.Context, d *devSeg, cause repl.Cause) error {
	r := versions.ReasonOf(cause)
	if r == "" || s.versions == nil || d.raw == nil {
		return nil
	}
	raw := d.raw
	if d.needUID {
		raw = insertUID(raw, d.handle) // the card restored is the same card
	}
	name := d.handle + ".vcf"
	if s.nameFor != nil {
		name = s.nameFor(d.handle)
	}
	if err := s.versions.Save(ctx, bytes.NewReader(raw), name, r, d.modTime); err != nil {
		return fmt.Errorf("keep the old version of contact %q: %w", d.handle, providers.MapFSError(err))
	}
	return nil
}

// Units reads a kept card's change units (its fields), for previews.
func Units(content []byte) (repl.Units, error) {
	c, err := parseSingle(content)
	if err != nil {
		return nil, err
	}
	return c.units(), nil
}

// Label names a kept card for people: its formatted name (FN), else its structured name.
func Label(content []byte) string {
	c, err := parseSingle(content)
	if err != nil {
		return ""
	}
	if fn := strings.TrimSpace(c.fields.Value(vcard.FieldFormattedName)); fn != "" {
		return unescape(fn)
	}
	return strings.TrimSpace(strings.ReplaceAll(unescape(c.fields.Value(vcard.FieldName)), ";", " "))
}
