package contacts

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// The pre-pass turns the content lines of one card, as Android and other vCard 2.1 writers
// produce them, into plain UTF-8 vCard 3.0 lines that go-vcard parses: it joins quoted-printable
// soft line breaks and 2.1 base64 blocks, decodes QUOTED-PRINTABLE and CHARSET values into UTF-8,
// names the parameters 2.1 leaves nameless (TEL;CELL -> TEL;TYPE=CELL) and rewrites 2.1 escaping
// into 3.0 escaping. It tokenises only what it must (the property name and its parameters, to
// find encodings and charsets); go-vcard does the parsing proper.

// ParseError is a card that cannot be read. Line is the 1-based line in the file (or in the card
// when the card is read on its own).
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// logical is one content line after unfolding, with the file line it started on.
type logical struct {
	text string
	line int
}

// unfold joins folded lines (RFC 6350 folding, quoted-printable soft line breaks, 2.1 base64
// blocks) into logical content lines and drops empty lines. first is the file line of raw's first
// line.
func unfold(raw []byte, first int) []logical {
	raw = bytes.TrimPrefix(raw, []byte("\uFEFF"))
	var out []logical
	const (
		plain = iota
		qpSoft
		base64Block
	)
	mode := plain
	// The line being built, appended to in place: a photo folded over thousands of lines must
	// not be copied over and over. header is its start, enough to read its parameters.
	var cur []byte
	curLine, open, header := 0, false, ""
	flush := func() {
		if open {
			out = append(out, logical{text: string(cur), line: curLine})
			cur, open = cur[:0], false
		}
	}
	lines := strings.Split(string(raw), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1] // the newline that ends the last line
	}
	for i, p := range lines {
		p = strings.TrimSuffix(p, "\r")
		switch {
		case mode == qpSoft && open && marker([]byte(p)) == "":
			cur = append(cur[:len(cur)-1], p...) // drop the '=' of the soft line break
		case mode == base64Block && open && isBase64Text(p):
			cur = append(cur, strings.TrimSpace(p)...)
		case (strings.HasPrefix(p, " ") || strings.HasPrefix(p, "\t")) && open:
			cur = append(cur, p[1:]...)
		case strings.TrimSpace(p) == "":
			mode = plain
			continue
		default:
			flush()
			cur = append(cur, p...)
			curLine, open, header = first+i, true, ""
		}
		if !strings.Contains(header, ":") && len(cur) <= 4096 {
			header = string(cur)
		}
		switch {
		case strings.HasSuffix(p, "=") && headerHas(header, "QUOTED-PRINTABLE"):
			mode = qpSoft
		case headerHas(header, "BASE64"):
			mode = base64Block
		default:
			mode = plain
		}
	}
	flush()
	return out
}

// isBase64Text tells whether a physical line can only be the continuation of a 2.1 base64 value.
func isBase64Text(p string) bool {
	p = strings.TrimSpace(p)
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// headerHas tells whether the parameters of content line t name the encoding enc, bare
// (TEL;QUOTED-PRINTABLE:) or as ENCODING=enc.
func headerHas(t, enc string) bool {
	h, _, ok := cutValue(t)
	if !ok {
		return false
	}
	parts := splitOutsideQuotes(h, ';')
	for _, p := range parts[1:] {
		k, v, named := strings.Cut(p, "=")
		if !named {
			v = k
		} else if !strings.EqualFold(strings.TrimSpace(k), "ENCODING") {
			continue
		}
		if strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"`), enc) {
			return true
		}
	}
	return false
}

// cutValue splits a content line at the first colon outside double quotes.
func cutValue(t string) (header, value string, ok bool) {
	quoted := false
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '"':
			quoted = !quoted
		case ':':
			if !quoted {
				return t[:i], t[i+1:], true
			}
		}
	}
	return t, "", false
}

// splitOutsideQuotes splits s at every sep outside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// listProps hold comma-separated lists: their commas are separators, not text.
var listProps = map[string]bool{"CATEGORIES": true, "NICKNAME": true}

// rawProps hold URIs, binary data or other non-text values whose commas are never escaped.
var rawProps = map[string]bool{
	"URL": true, "PHOTO": true, "LOGO": true, "SOUND": true, "KEY": true, "GEO": true,
	"UID": true, "SOURCE": true, "MEMBER": true, "IMPP": true, "FBURL": true, "CALURI": true,
	"CALADRURI": true, "REV": true, "BDAY": true, "ANNIVERSARY": true,
}

// commaIsText tells whether commas in the property's value are plain text (escaped as "\,").
func commaIsText(name string) bool { return !listProps[name] && !rawProps[name] }

// normalizeLine rewrites one logical content line into a vCard 3.0 line for go-vcard, in UTF-8,
// with named parameters and 3.0 escaping. v21 says the card is vCard 2.1.
func normalizeLine(l logical, v21 bool) (string, error) {
	header, value, ok := cutValue(l.text)
	if !ok {
		return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("no ':' in content line %q", short(l.text))}
	}
	parts := splitOutsideQuotes(header, ';')
	group, name := "", strings.TrimSpace(parts[0])
	if i := strings.IndexByte(name, '.'); i >= 0 {
		group, name = name[:i], name[i+1:]
	}
	name = strings.ToUpper(name)
	if !validName(name) || (group != "" && !validName(strings.ToUpper(group))) {
		return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("bad property name %q", short(parts[0]))}
	}
	var b strings.Builder
	if group != "" {
		b.WriteString(group + ".")
	}
	b.WriteString(name)
	enc, charset := "", ""
	for _, p := range parts[1:] {
		k, v, named := strings.Cut(p, "=")
		k = strings.ToUpper(strings.TrimSpace(k))
		if !named {
			v, k = k, ""
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		switch {
		case k == "" && v == "":
			continue // an empty parameter ("TEL;;CELL:")
		case k == "" && isEncoding(v), k == "ENCODING":
			enc = strings.ToUpper(v)
			continue
		case k == "CHARSET":
			charset = v
			continue
		case k == "":
			k = "TYPE"
		case !validName(k):
			return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("bad parameter %q in %s", short(p), name)}
		}
		b.WriteString(";" + k + "=" + quoteParam(v))
	}
	qp := false
	switch enc {
	case "":
	case "QUOTED-PRINTABLE":
		dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(value)))
		if err != nil {
			return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("bad quoted-printable value in %s: %v", name, err)}
		}
		value, qp = string(dec), true
	case "BASE64", "B":
		b.WriteString(";ENCODING=b")
	case "8BIT", "7BIT":
	default:
		return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("unknown encoding %q in %s", enc, name)}
	}
	value, err := toUTF8(value, charset)
	if err != nil {
		return "", &ParseError{Line: l.line, Msg: fmt.Sprintf("%s: %v", name, err)}
	}
	if enc == "BASE64" || enc == "B" {
		value = stripBlanks(value) // folding and 2.1 block layout
	}
	b.WriteString(":")
	b.WriteString(protect(escape30(value, v21, qp, commaIsText(name)), commaIsText(name)))
	return b.String(), nil
}

// stripBlanks removes ASCII blanks (the layout of base64 data).
func stripBlanks(v string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
}

// validName tells whether s is a property, group or parameter name: letters, digits, '-', '_'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func isEncoding(v string) bool {
	switch strings.ToUpper(v) {
	case "QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT":
		return true
	}
	return false
}

// quoteParam writes a parameter value so that go-vcard reads it back unchanged (commas aside:
// go-vcard splits every parameter value at commas, which is how lists are read anyway).
func quoteParam(v string) string {
	v = strings.ReplaceAll(v, `"`, "'")
	if strings.ContainsAny(v, ";:\\") {
		// go-vcard unquotes a quoted value (a backslash escapes the next character) and then
		// unescapes it as a value (backslash-n is a line break): a backslash is escaped for both.
		return `"` + strings.ReplaceAll(v, `\`, `\\\\`) + `"`
	}
	return v
}

// toUTF8 decodes a value in the named charset; without a charset, a value that is not UTF-8 is
// taken as Windows-1252 (what old desktop exports without CHARSET are written in).
func toUTF8(v, charset string) (string, error) {
	var enc encoding.Encoding
	switch {
	case charset == "" || strings.EqualFold(charset, "UTF-8") || strings.EqualFold(charset, "UTF8"):
		if utf8.ValidString(v) {
			return v, nil
		}
		if charset != "" {
			return "", fmt.Errorf("value is not valid UTF-8 although CHARSET=%s says so", charset)
		}
		enc = charmap.Windows1252
	default:
		var err error
		if enc, err = htmlindex.Get(charset); err != nil {
			if enc, err = ianaindex.IANA.Encoding(charset); err != nil || enc == nil {
				return "", fmt.Errorf("unknown charset %q", charset)
			}
		}
	}
	s, err := enc.NewDecoder().String(v)
	if err != nil {
		return "", fmt.Errorf("cannot decode value from %s: %v", charset, err)
	}
	return s, nil
}

// escape30 rewrites a value into vCard 3.0 escaping. Line breaks become "\n" and "\N" becomes
// "\n". In vCard 2.1 a backslash escapes only ';' (and Android writes "\\" and "\n" too), so any
// other backslash is a literal one, and commas are text.
func escape30(v string, v21, qp, textComma bool) string {
	if !qp {
		v = strings.ReplaceAll(v, "\r", "") // a stray CR in a line is no line break
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '\\':
			if i+1 == len(v) {
				b.WriteString(`\\`)
				continue
			}
			n := v[i+1]
			switch n {
			case '\\', ';', ',':
				b.WriteByte('\\')
				b.WriteByte(n)
				i++
			case 'n', 'N':
				b.WriteString(`\n`)
				i++
			default:
				if v21 {
					b.WriteString(`\\`) // a literal backslash
				} else {
					// an escape 3.0 does not define ("\:"): the character itself
					b.WriteByte(n)
					i++
				}
			}
		case '\r', '\n':
			if !qp && !v21 {
				continue // cannot occur in a 3.0 line; drop stray CRs
			}
			if c == '\r' && i+1 < len(v) && v[i+1] == '\n' {
				i++
			}
			b.WriteString(`\n`)
		case ',':
			if v21 && textComma {
				b.WriteString(`\,`)
			} else {
				b.WriteByte(',')
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// protect makes go-vcard's value decoding (which turns "\\" into "\", "\n" into a line break and
// "\," into ",") yield a field Value in Cradle's neutral form: the 3.0-escaped value with line
// breaks as text, and commas as text in text properties; "\\" and "\;" stay escaped (and "\,"
// too in lists, where a bare comma separates items). The encoder writes such a Value back
// byte for byte, so no escape is ever lost or doubled.
func protect(v string, textComma bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 == len(v) {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := v[i]; {
		case n == 'n' || (n == ',' && textComma):
			b.WriteByte('\\') // go-vcard decodes "\n" and "\,"
			b.WriteByte(n)
		case n == '\\':
			b.WriteString(`\\\\`) // go-vcard reads "\\\\" as "\\"
		default:
			b.WriteString(`\\`) // go-vcard reads "\\" as "\"
			b.WriteByte(n)
		}
	}
	return b.String()
}

// short trims s for an error message.
func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
