package contacts

import (
	"bytes"
	"strings"
)

// segment is one stretch of a contacts file: a card (BEGIN:VCARD to END:VCARD, possibly
// malformed) or the text between cards. Segments keep their bytes verbatim, so a file can be
// rewritten with the cards that did not change, the cards that could not be parsed and any text
// between them exactly as they were.
type segment struct {
	raw  []byte // verbatim, line endings included
	line int    // 1-based number of the segment's first line in the file
	card bool   // a card (BEGIN:VCARD ... END:VCARD); false for text between cards
}

// splitFile cuts a contacts file into segments. It only looks at BEGIN:VCARD and END:VCARD lines,
// so a broken card never takes its neighbours down with it: a card without END ends where the next
// BEGIN:VCARD starts (or at the end of the file) and is then reported as malformed by parseCard.
func splitFile(data []byte) []segment {
	var segs []segment
	var cur []byte
	curLine, curCard := 1, false
	flush := func(next int, card bool) {
		if len(cur) > 0 {
			segs = append(segs, segment{raw: cur, line: curLine, card: curCard})
		}
		cur, curLine, curCard = nil, next, card
	}
	line := 1
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n')
		var l []byte
		if n < 0 {
			l, data = data, nil
		} else {
			l, data = data[:n+1], data[n+1:]
		}
		switch marker(l) {
		case "BEGIN":
			flush(line, true)
			cur = append(cur, l...)
		case "END":
			cur = append(cur, l...)
			if curCard {
				flush(line+1, false)
			}
		default:
			cur = append(cur, l...)
		}
		line++
	}
	flush(line, false)
	return segs
}

// marker tells whether a physical line is BEGIN:VCARD or END:VCARD (any case, surrounding
// blanks and a byte-order mark ignored).
func marker(l []byte) string {
	s := strings.TrimSpace(strings.TrimPrefix(string(l), "\uFEFF"))
	switch {
	case strings.EqualFold(s, "BEGIN:VCARD"):
		return "BEGIN"
	case strings.EqualFold(s, "END:VCARD"):
		return "END"
	}
	return ""
}

// blank tells whether b holds only white space (text between cards that is mere formatting).
func blank(b []byte) bool {
	return len(bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\uFEFF")))) == 0
}
