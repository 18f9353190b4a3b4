package contacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/quotedprintable"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-vcard"

	"github.com/cradle-sync/cradle/repl"
)

// card is one contact in Cradle's neutral form: go-vcard fields with vCard 3.0 meaning, whatever
// version the card was written in. A field's Value keeps the 3.0 escapes "\\" and "\;" (and "\,"
// in lists) and holds line breaks and text commas as themselves; TYPE parameter values are lower
// case, sorted and unique. VERSION is kept apart.
type card struct {
	version string // as read: "2.1", "3.0", "4.0"; "" when the card named none
	fields  vcard.Card
}

// Versions Cradle writes.
const (
	v21 = "2.1"
	v30 = "3.0"
	v40 = "4.0"
)

// Properties that are not change units: the card's identity and bookkeeping that every writer
// changes (a REV or PRODID that differs must not look like an edit).
var notUnits = map[string]bool{"VERSION": true, "UID": true, "REV": true, "PRODID": true}

// parseCard reads one card (BEGIN:VCARD to END:VCARD) of any version into neutral form. first is
// the file line of raw's first line, for error messages.
func parseCard(raw []byte, first int) (*card, error) {
	lines := unfold(raw, first)
	if len(lines) == 0 || marker([]byte(lines[0].text)) != "BEGIN" {
		return nil, &ParseError{Line: first, Msg: "card does not start with BEGIN:VCARD"}
	}
	begin := lines[0].line
	if marker([]byte(lines[len(lines)-1].text)) != "END" {
		return nil, &ParseError{Line: begin, Msg: "card has no END:VCARD (the file may be cut short)"}
	}
	content := lines[1 : len(lines)-1]
	version := ""
	for _, l := range content {
		if h, v, ok := cutValue(l.text); ok && strings.EqualFold(strings.TrimSpace(h), "VERSION") {
			version = strings.TrimSpace(v)
			break
		}
	}
	is21 := strings.HasPrefix(version, "2")
	var b strings.Builder
	b.WriteString("BEGIN:VCARD\r\n")
	norm := make([]string, 0, len(content))
	for _, l := range content {
		if marker([]byte(l.text)) != "" {
			return nil, &ParseError{Line: l.line, Msg: "BEGIN:VCARD or END:VCARD inside a card"}
		}
		s, err := normalizeLine(l, is21)
		if err != nil {
			return nil, err
		}
		norm = append(norm, s)
		b.WriteString(s + "\r\n")
	}
	b.WriteString("END:VCARD\r\n")
	fields, err := vcard.NewDecoder(strings.NewReader(b.String())).Decode()
	if err != nil {
		return nil, &ParseError{Line: begin, Msg: fmt.Sprintf("cannot parse card: %v", err)}
	}
	n := 0
	for _, fs := range fields {
		n += len(fs)
	}
	if n != len(norm) {
		// go-vcard skips lines it cannot parse; find which, so nothing is dropped silently.
		for i, s := range norm {
			one, err := vcard.NewDecoder(strings.NewReader("BEGIN:VCARD\r\n" + s + "\r\nEND:VCARD\r\n")).Decode()
			if err != nil || len(one) != 1 {
				return nil, &ParseError{Line: content[i].line, Msg: fmt.Sprintf("malformed content line %q", short(content[i].text))}
			}
		}
		return nil, &ParseError{Line: begin, Msg: "card has content lines that cannot be parsed"}
	}
	delete(fields, vcard.FieldVersion)
	c := &card{version: version, fields: fields}
	c.normalize()
	return c, nil
}

// normalize puts parameters in neutral form and turns vCard 4.0 ways of saying things (PREF=1,
// data: URIs) into their 3.0 equivalents, whatever VERSION the card claims (writers mix them).
func (c *card) normalize() {
	for key, fs := range c.fields {
		for _, f := range fs {
			if f.Params == nil {
				f.Params = vcard.Params{}
			}
			if p := f.Params[vcard.ParamPreferred]; len(p) == 1 && p[0] == "1" {
				delete(f.Params, vcard.ParamPreferred)
				f.Params.Add(vcard.ParamType, "pref")
			}
			if binaryProps[key] && strings.HasPrefix(f.Value, "data:") && f.Params.Get("ENCODING") == "" {
				if meta, data, ok := strings.Cut(f.Value[len("data:"):], ";base64,"); ok && !strings.ContainsAny(meta, ",;") {
					sub := meta
					if _, s, ok := strings.Cut(meta, "/"); ok {
						sub = s
					}
					f.Value = stripBlanks(data)
					f.Params.Set("ENCODING", "b")
					delete(f.Params, vcard.ParamValue)
					if sub != "" {
						f.Params.Add(vcard.ParamType, sub)
					}
				}
			}
			if textProps[key] {
				f.Value = escapeSemicolons(f.Value)
			}
			for k, vs := range f.Params {
				if len(vs) == 0 {
					delete(f.Params, k)
				}
			}
			if ts := f.Params[vcard.ParamType]; len(ts) > 0 {
				f.Params[vcard.ParamType] = canonicalTypes(ts)
			}
			if len(f.Params[vcard.ParamType]) == 0 {
				delete(f.Params, vcard.ParamType)
			}
		}
	}
}

// textProps hold one text (or a list of texts), so a bare ';' in them is text: written "\;" in
// neutral form, whichever way the card had it, so that escaping differences are not edits.
var textProps = map[string]bool{
	"FN": true, "NOTE": true, "TITLE": true, "ROLE": true, "EMAIL": true, "TEL": true,
	"LABEL": true, "MAILER": true, "SORT-STRING": true, "NICKNAME": true, "CATEGORIES": true,
}

// escapeSemicolons escapes the bare semicolons of a neutral value.
func escapeSemicolons(v string) string {
	if !strings.Contains(v, ";") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			b.WriteByte(v[i])
			b.WriteByte(v[i+1])
			i++
		case v[i] == ';':
			b.WriteString(`\;`)
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// binaryProps may hold inline binary data (ENCODING=b in 3.0, a data: URI in 4.0).
var binaryProps = map[string]bool{"PHOTO": true, "LOGO": true, "SOUND": true, "KEY": true}

func canonicalTypes(ts []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// uid returns the card's UID, unescaped, or "".
func (c *card) uid() string { return strings.TrimSpace(unescape(c.fields.Value(vcard.FieldUID))) }

// setUID replaces the card's UID ("" removes it).
func (c *card) setUID(uid string) {
	if uid == "" {
		delete(c.fields, vcard.FieldUID)
		return
	}
	c.fields.SetValue(vcard.FieldUID, strings.NewReplacer(`\`, `\\`, ";", `\;`).Replace(uid))
}

// unescape turns a neutral value into plain text.
func unescape(v string) string {
	return strings.NewReplacer(`\\`, `\`, `\;`, ";", `\,`, ",").Replace(v)
}

// encode writes the card in the given vCard version ("2.1", "3.0" or "4.0").
func (c *card) encode(version string) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCARD\r\n")
	b.WriteString("VERSION:" + version + "\r\n")
	for _, key := range orderedKeys(c.fields) {
		for _, f := range c.fields[key] {
			switch version {
			case v21:
				b.WriteString(line21(key, f))
			default:
				b.WriteString(fold(formatLine(key, f, version)))
			}
		}
	}
	b.WriteString("END:VCARD\r\n")
	return b.Bytes()
}

// orderedKeys lists a card's properties in the order Cradle writes them: N and FN first (as most
// writers do), then the rest alphabetically.
func orderedKeys(fields vcard.Card) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != vcard.FieldVersion && k != vcard.FieldName && k != vcard.FieldFormattedName {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var head []string
	for _, k := range []string{vcard.FieldName, vcard.FieldFormattedName} {
		if len(fields[k]) > 0 {
			head = append(head, k)
		}
	}
	return append(head, keys...)
}

// formatLine writes one field as an unfolded vCard 3.0 or 4.0 content line, without CRLF.
func formatLine(key string, f *vcard.Field, version string) string {
	params, value := f.Params, f.Value
	if version == v40 {
		params, value = to40(key, f)
	}
	var b strings.Builder
	if f.Group != "" {
		b.WriteString(f.Group + ".")
	}
	b.WriteString(key)
	for _, k := range sortedParams(params) {
		b.WriteString(";" + k + "=" + formatParam(params[k]))
	}
	b.WriteString(":")
	b.WriteString(escapeValue(value, commaIsText(key)))
	return b.String()
}

// to40 turns a neutral field into its vCard 4.0 form: TYPE=pref becomes PREF=1 and inline binary
// data a data: URI.
func to40(key string, f *vcard.Field) (vcard.Params, string) {
	params := vcard.Params{}
	for k, vs := range f.Params {
		params[k] = append([]string(nil), vs...)
	}
	value := f.Value
	if ts := params[vcard.ParamType]; len(ts) > 0 {
		var keep []string
		for _, t := range ts {
			if t == "pref" {
				params.Set(vcard.ParamPreferred, "1")
			} else {
				keep = append(keep, t)
			}
		}
		params[vcard.ParamType] = keep
	}
	if binaryProps[key] && params.Get("ENCODING") == "b" && len(params["ENCODING"]) == 1 &&
		len(params[vcard.ParamType]) <= 1 && !strings.ContainsAny(params.Get(vcard.ParamType), ",;/") && params.Get(vcard.ParamValue) == "" {
		media := "" // no media type: "data:;base64,..." (RFC 2397)
		if sub := params.Get(vcard.ParamType); sub != "" {
			kind := "image"
			if key == "SOUND" {
				kind = "audio"
			} else if key == "KEY" {
				kind = "application"
			}
			media = kind + "/" + sub
		}
		value = "data:" + media + ";base64," + value
		delete(params, "ENCODING")
		delete(params, vcard.ParamType)
	}
	for k, vs := range params {
		if len(vs) == 0 {
			delete(params, k)
		}
	}
	return params, value
}

func sortedParams(p vcard.Params) []string {
	keys := make([]string, 0, len(p))
	for k, vs := range p {
		if len(vs) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// formatParam writes a parameter's values as one comma-separated list, quoted when needed.
func formatParam(vs []string) string {
	v := strings.ReplaceAll(strings.Join(vs, ","), `"`, "'")
	if strings.ContainsAny(v, ";:") || strings.TrimSpace(v) != v {
		return `"` + v + `"`
	}
	return v
}

// escapeValue writes a neutral value in 3.0/4.0 escaping: line breaks become "\n", text commas
// "\,"; the escapes a neutral value keeps ("\\", "\;", "\," in lists) are written as they are.
func escapeValue(v string, textComma bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '\\':
			if i+1 < len(v) && (v[i+1] == '\\' || v[i+1] == ';' || (v[i+1] == ',' && !textComma)) {
				b.WriteByte(c)
				b.WriteByte(v[i+1])
				i++
			} else {
				b.WriteString(`\\`)
			}
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		case ',':
			if textComma {
				b.WriteString(`\,`)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fold cuts a content line into lines of at most 75 octets (RFC 6350 3.2), never inside a UTF-8
// sequence, and ends it with CRLF.
func fold(l string) string {
	const max = 75
	if len(l) <= max {
		return l + "\r\n"
	}
	var b strings.Builder
	limit := max
	for len(l) > limit {
		cut := limit
		for cut > 1 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		b.WriteString(l[:cut] + "\r\n ")
		l = l[cut:]
		limit = max - 1
	}
	b.WriteString(l + "\r\n")
	return b.String()
}

// line21 writes one field the way vCard 2.1 (and Android) does: nameless TYPE parameters,
// QUOTED-PRINTABLE in UTF-8 for anything beyond printable ASCII, base64 blocks for binary data.
func line21(key string, f *vcard.Field) string {
	var b strings.Builder
	if f.Group != "" {
		b.WriteString(f.Group + ".")
	}
	b.WriteString(key)
	binary := false
	for _, k := range sortedParams(f.Params) {
		switch {
		case k == vcard.ParamType:
			for _, t := range f.Params[k] {
				if validName(t) && !isEncoding(t) {
					b.WriteString(";" + strings.ToUpper(t))
				} else {
					b.WriteString(";TYPE=" + formatParam([]string{t}))
				}
			}
		case k == "ENCODING" && strings.EqualFold(f.Params.Get(k), "b"):
			binary = true
			b.WriteString(";ENCODING=BASE64")
		default:
			b.WriteString(";" + k + "=" + formatParam(f.Params[k]))
		}
	}
	v := f.Value
	switch {
	case binary:
		// Android's layout: folded with a leading space, then an empty line.
		return strings.TrimSuffix(fold(b.String()+":"+v), "\r\n") + "\r\n\r\n"
	case needsQP(v):
		var q bytes.Buffer
		w := quotedprintable.NewWriter(&q)
		w.Binary = true // line breaks in the value become =0D=0A
		_, _ = w.Write([]byte(strings.ReplaceAll(v, "\n", "\r\n")))
		_ = w.Close()
		return b.String() + ";CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:" + guardQPLines(q.String()) + "\r\n"
	}
	return b.String() + ":" + v + "\r\n"
}

// guardQPLines encodes the first character of a soft-broken quoted-printable line that would
// read as a card boundary ("BEGIN:VCARD" in a note, broken just before it): readers, ours
// included, take such a line for the start or end of a card.
func guardQPLines(q string) string {
	parts := strings.Split(q, "=\r\n")
	for i := 1; i < len(parts); i++ {
		up := strings.ToUpper(parts[i])
		if strings.HasPrefix(up, "BEGIN:") || strings.HasPrefix(up, "END:") {
			parts[i] = fmt.Sprintf("=%02X", parts[i][0]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "=\r\n")
}

// needsQP tells whether a 2.1 value must be quoted-printable: anything but printable ASCII.
func needsQP(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return true
		}
	}
	return strings.HasSuffix(v, " ") || strings.HasSuffix(v, "\t")
}

// units returns the card's change units: one unit per property value (identity and bookkeeping
// properties excluded), so that different values of one property edited on two sides (the mobile
// number on the phone, the home number on the computer) merge. A value's unit is named by its
// property, its types (but "pref", which marks a choice rather than a kind) and its position
// among the values of that property and types: "FN", "TEL;CELL", "TEL;CELL 2", "EMAIL;HOME".
// It holds the value as a canonical 3.0 content line, so the same values compare equal whatever
// version they were written in and however the properties were ordered.
func (c *card) units() repl.Units {
	u := repl.Units{}
	for key, fs := range c.fields {
		if notUnits[key] || len(fs) == 0 {
			continue
		}
		seen := map[string]int{}
		for _, f := range fs {
			name := unitName(key, f)
			seen[name]++
			if n := seen[name]; n > 1 {
				name = fmt.Sprintf("%s %d", name, n)
			}
			u[name] = []byte(formatLine(key, f, v30))
		}
	}
	return u
}

// unitName is the name of a value's unit, without its position.
func unitName(key string, f *vcard.Field) string {
	var types []string
	for _, t := range f.Params[vcard.ParamType] {
		if t != "pref" {
			types = append(types, strings.ToUpper(t))
		}
	}
	if len(types) == 0 {
		return key
	}
	sort.Strings(types)
	return key + ";" + strings.Join(types, ",")
}

// unitProperty is the property a unit's name names.
func unitProperty(name string) string {
	if i := strings.IndexAny(name, "; "); i >= 0 {
		return name[:i]
	}
	return name
}

// cardFromUnits builds a card from a complete set of units. A unit whose lines do not parse or
// name another property is an error; units for identity properties (UID, VERSION) are ignored.
func cardFromUnits(units repl.Units) (*card, error) {
	names := make([]string, 0, len(units))
	for name := range units {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("BEGIN:VCARD\r\nVERSION:3.0\r\n")
	for _, name := range names {
		if notUnits[strings.ToUpper(unitProperty(name))] {
			continue
		}
		for _, l := range strings.Split(string(units[name]), "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			h, _, ok := cutValue(l)
			if ok {
				h = splitOutsideQuotes(h, ';')[0]
				if i := strings.IndexByte(h, '.'); i >= 0 {
					h = h[i+1:]
				}
			}
			if !ok || !strings.EqualFold(h, unitProperty(name)) {
				return nil, fmt.Errorf("unit %s holds a line for another property: %q", name, short(l))
			}
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("END:VCARD\r\n")
	c, err := parseCard([]byte(b.String()), 1)
	if err != nil {
		return nil, fmt.Errorf("units do not make a valid card: %w", err)
	}
	return c, nil
}

// unitsHash is a hash of a set of units: two cards with equal units have equal hashes, whatever
// their version, UID, REV or PRODID. It is what both stores report as Entry.Hash. "u2-" hashes
// have a unit per value ("u1-" ones, of Cradle before, had one per property: a card's hash changes
// once, on both sides alike, and the identical content merges quietly).
func unitsHash(u repl.Units) string {
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(u[n]))
		h.Write(u[n])
	}
	return "u2-" + hex.EncodeToString(h.Sum(nil)[:16])
}
