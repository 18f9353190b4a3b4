package contacts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/emersion/go-vcard"
	"golang.org/x/text/unicode/norm"
)

// Cards without a UID (Android's exports have none) still need an identity that survives an
// edit. Cradle gives such a card a derived ID, a hash of its normalised FN, N and first TEL
// ("cradle-…"), and keeps it stable two ways:
//
//   - an ID map in the partnership's state folder remembers, for each ID it handed out, the
//     card's name, phone numbers and e-mail addresses as last seen. A card without UID is first
//     matched exactly (same derived key), then by unchanged name (its phone was edited), then by a
//     shared phone number or e-mail address (its name was edited); only a card that matches
//     nothing gets a new ID.
//   - the next time Cradle rewrites the device file it writes each such card's ID into it as its
//     UID, so from then on the card carries its identity itself (until the phone exports a fresh
//     file without UIDs, when the map takes over again).

// idPrefix starts every derived ID.
const idPrefix = "cradle-"

// fingerprint is what identifies a card without UID: the pieces the derived key is made of.
type fingerprint struct {
	Key    string   `json:"key"`              // the derived key: hash of name and first phone
	Name   string   `json:"name,omitempty"`   // normalised FN and N
	Phones []string `json:"phones,omitempty"` // normalised phone numbers
	Emails []string `json:"emails,omitempty"` // normalised e-mail addresses
}

// fingerprintOf computes a card's fingerprint.
func fingerprintOf(c *card) fingerprint {
	name := normText(unescape(c.fields.Value(vcard.FieldFormattedName))) + "|" +
		normText(strings.ReplaceAll(unescape(c.fields.Value(vcard.FieldName)), ";", " "))
	var fp fingerprint
	fp.Name = name
	for _, f := range c.fields[vcard.FieldTelephone] {
		if p := normPhone(unescape(f.Value)); p != "" {
			fp.Phones = append(fp.Phones, p)
		}
	}
	for _, f := range c.fields[vcard.FieldEmail] {
		if e := normText(unescape(f.Value)); e != "" {
			fp.Emails = append(fp.Emails, e)
		}
	}
	first := ""
	if len(fp.Phones) > 0 {
		first = fp.Phones[0] // the first TEL as written
	}
	sort.Strings(fp.Phones)
	sort.Strings(fp.Emails)
	sum := sha256.Sum256([]byte(name + "|" + first))
	fp.Key = idPrefix + hex.EncodeToString(sum[:10])
	return fp
}

// normText folds case, Unicode forms and runs of blanks, so trivial differences between writers
// do not change an identity.
func normText(s string) string {
	s = norm.NFC.String(strings.ToLower(s))
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// normPhone keeps a phone number's digits (and a leading '+').
func normPhone(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// idMap remembers the derived IDs handed out to cards without UID. It is not safe for concurrent
// use; its store's lock guards it.
type idMap struct {
	path    string                 // the JSON file in the state folder; "" keeps it in memory only
	entries map[string]fingerprint // ID -> fingerprint as last seen
	dirty   bool
}

// loadIDMap reads the map at path (a missing file is an empty map). A corrupt file is an error
// that says where it is; the caller may delete it at the cost of new IDs for cards without UID.
func loadIDMap(path string) (*idMap, error) {
	m := &idMap{path: path, entries: map[string]fingerprint{}}
	if path == "" {
		return m, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read contact ID map: %w", err)
	}
	var file struct {
		Version int                    `json:"version"`
		IDs     map[string]fingerprint `json:"ids"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("contact ID map %s is corrupt (%v): delete it to start over; cards without UID then get new IDs", path, err)
	}
	if file.IDs != nil {
		m.entries = file.IDs
	}
	return m, nil
}

// assign gives each card without UID its ID, in file order. taken holds the IDs already in use
// in this file (the UIDs of the other cards); assign adds the IDs it hands out to it.
func (m *idMap) assign(cards []*card, taken map[string]bool) []string {
	ids := make([]string, len(cards))
	fps := make([]fingerprint, len(cards))
	for i, c := range cards {
		fps[i] = fingerprintOf(c)
	}
	claim := func(i int, id string) {
		ids[i] = id
		taken[id] = true
		if e, ok := m.entries[id]; !ok || !equalFingerprint(e, fps[i]) {
			m.entries[id] = fps[i]
			m.dirty = true
		}
	}
	// Pass 1: the same derived key under the ID that had it. Pass 2: the same name. Pass 3: a
	// shared phone number or e-mail address.
	matchers := []func(known, now fingerprint) bool{
		func(k, n fingerprint) bool { return k.Key == n.Key },
		func(k, n fingerprint) bool { return k.Name == n.Name && n.Name != "|" },
		func(k, n fingerprint) bool { return overlap(k.Phones, n.Phones) || overlap(k.Emails, n.Emails) },
	}
	known := make([]string, 0, len(m.entries))
	for id := range m.entries {
		known = append(known, id)
	}
	sort.Strings(known)
	for _, match := range matchers {
		for i := range cards {
			if ids[i] != "" {
				continue
			}
			for _, id := range known {
				if !taken[id] && match(m.entries[id], fps[i]) {
					claim(i, id)
					break
				}
			}
		}
	}
	for i := range cards {
		if ids[i] != "" {
			continue
		}
		id := fps[i].Key
		for n := 2; taken[id]; n++ {
			id = fmt.Sprintf("%s-%d", fps[i].Key, n) // two cards with the same name and phone
		}
		claim(i, id)
	}
	return ids
}

// forget drops IDs not in keep (cards deleted from the file), so the map does not grow forever
// and a deleted card's ID is not given to a newcomer by a weak match.
func (m *idMap) forget(keep map[string]bool) {
	for id := range m.entries {
		if !keep[id] {
			delete(m.entries, id)
			m.dirty = true
		}
	}
}

// save writes the map if it changed (atomically).
func (m *idMap) save() error {
	if !m.dirty || m.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(struct {
		Version int                    `json:"version"`
		IDs     map[string]fingerprint `json:"ids"`
	}{1, m.entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode contact ID map: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
		return fmt.Errorf("save contact ID map: %w", err)
	}
	if err := fsutil.WriteFileAtomic(m.path, data, atomically(m.path, time.Time{})); err != nil {
		return fmt.Errorf("save contact ID map: %w", err)
	}
	m.dirty = false
	return nil
}

func equalFingerprint(a, b fingerprint) bool {
	return a.Key == b.Key && a.Name == b.Name && strings.Join(a.Phones, ",") == strings.Join(b.Phones, ",") &&
		strings.Join(a.Emails, ",") == strings.Join(b.Emails, ",")
}

func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// lenientUID finds the UID of a card that cannot be parsed: the value of its first UID line, or
// "" when it has none.
func lenientUID(raw []byte) string {
	for _, l := range unfold(raw, 1) {
		h, v, ok := cutValue(l.text)
		if !ok {
			continue
		}
		name := strings.TrimSpace(splitOutsideQuotes(h, ';')[0])
		if i := strings.IndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		if strings.EqualFold(name, "UID") {
			if uid := strings.TrimSpace(unescape(v)); checkUID(uid) == nil {
				return uid
			}
		}
	}
	return ""
}
