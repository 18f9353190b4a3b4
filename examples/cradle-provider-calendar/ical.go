package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/repl"
)

// Just enough iCalendar (RFC 5545) for events: a calendar is lines (folded lines unfolded), its
// events are the VEVENT components, and an event's change units are its properties, one unit per
// property name (all ATTENDEE lines are one unit), a nested component (an alarm) one unit too.
// UID names the event and is no unit; DTSTAMP, LAST-MODIFIED and SEQUENCE say when and how often
// a program saved it, so they are no units either: a unit edited on each side would clash over
// them and every edit would be a conflict.

// event is one VEVENT: its UID and its units, each unit's value the property's lines as written.
type event struct {
	uid   string
	units repl.Units
}

// volatile properties are written afresh, not synced.
var volatile = map[string]bool{"DTSTAMP": true, "LAST-MODIFIED": true, "SEQUENCE": true}

// unitOrder puts an event's usual properties first, in the order calendar programs write them;
// the others follow by name.
var unitOrder = []string{"DTSTART", "DTEND", "DURATION", "RRULE", "SUMMARY", "LOCATION", "DESCRIPTION", "STATUS"}

// unfold splits iCalendar text into logical lines: a line that starts with a space or a tab
// continues the one before.
func unfold(data []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1] += l[1:]
			continue
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// propName returns the name of a property line ("DTSTART" of "DTSTART;TZID=Europe/Paris:...").
func propName(line string) string {
	end := strings.IndexAny(line, ";:")
	if end < 0 {
		end = len(line)
	}
	return strings.ToUpper(line[:end])
}

// propValue returns the value of a property line.
func propValue(line string) string {
	// The first colon that is not inside a quoted parameter value ends the parameters.
	quoted := false
	for i, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ':' && !quoted:
			return line[i+1:]
		}
	}
	return ""
}

// calendar is a parsed calendar file: what surrounds the events (the header lines, time zones),
// kept as it is, and the events in file order.
type calendar struct {
	head   []string // lines after BEGIN:VCALENDAR that are not events
	events []*event
}

// parseCalendar reads a calendar (a file of many events, or of one). A file without
// BEGIN:VCALENDAR is read as bare events.
func parseCalendar(data []byte) (*calendar, error) {
	c := &calendar{}
	var cur *event
	var nested []string // the lines of a component inside the current event
	depth := 0          // nesting inside the current event
	for i, l := range unfold(data) {
		name := propName(l)
		val := strings.ToUpper(strings.TrimSpace(propValue(l)))
		switch {
		case cur == nil && name == "BEGIN" && val == "VEVENT":
			cur = &event{units: repl.Units{}}
		case cur == nil && (name == "BEGIN" || name == "END") && val == "VCALENDAR":
		case cur == nil:
			c.head = append(c.head, l)
		case depth > 0 || name == "BEGIN":
			nested = append(nested, l)
			if name == "BEGIN" {
				depth++
			} else if name == "END" {
				depth--
			}
			if depth == 0 {
				key := strings.ToUpper(strings.TrimSpace(propValue(nested[0])))
				cur.add(key, strings.Join(nested, "\r\n"))
				nested = nil
			}
		case name == "END" && val == "VEVENT":
			if cur.uid == "" {
				return nil, fmt.Errorf("line %d: an event without UID", i+1)
			}
			c.events = append(c.events, cur)
			cur = nil
		case name == "UID":
			cur.uid = strings.TrimSpace(propValue(l))
		case volatile[name]:
		default:
			cur.add(name, l)
		}
	}
	if cur != nil {
		return nil, errors.New("the last event has no END:VEVENT")
	}
	return c, nil
}

// add appends a line to the unit name.
func (e *event) add(name, line string) {
	if old, ok := e.units[name]; ok {
		e.units[name] = append(append(old, "\r\n"...), line...)
		return
	}
	e.units[name] = []byte(line)
}

// unitNames returns the event's unit names in writing order.
func unitNames(u repl.Units) []string {
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(unitOrder, a), slices.Index(unitOrder, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// text is the event as a VEVENT component: what Open returns and its hash is taken of.
func (e *event) text() []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VEVENT\r\n" + fold("UID:"+e.uid))
	for _, n := range unitNames(e.units) {
		for _, l := range strings.Split(string(e.units[n]), "\r\n") {
			b.WriteString(fold(l))
		}
	}
	b.WriteString("END:VEVENT\r\n")
	return b.Bytes()
}

// fold writes a line as RFC 5545 wants it: at most 75 bytes a line, continued after a space,
// never cutting a character in two.
func fold(line string) string {
	var b strings.Builder
	for limit := 75; len(line) > limit; limit = 74 { // a continuation's space counts
		n := limit
		for n > 0 && !utf8.RuneStart(line[n]) {
			n--
		}
		b.WriteString(line[:n] + "\r\n ")
		line = line[n:]
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// hash identifies the event's content.
func (e *event) hash() string {
	sum := sha256.Sum256(e.text())
	return hex.EncodeToString(sum[:])
}

// entry is the event as an item, without a modification time of its own.
func (e *event) entry() repl.Entry {
	return repl.Entry{Handle: e.uid, Kind: repl.KindFile, Size: int64(len(e.text())), Hash: e.hash()}
}

// format writes the calendar: its header, then each event with a fresh DTSTAMP (stamp).
func (c *calendar) format(stamp string) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\n")
	head := c.head
	if len(head) == 0 {
		head = []string{"VERSION:2.0", "PRODID:-//Cradle//calendar example//EN"}
	}
	for _, l := range head {
		b.WriteString(l + "\r\n")
	}
	for _, e := range c.events {
		t := e.text()
		i := bytes.Index(t, []byte("\r\n")) + 2 // after BEGIN:VEVENT
		b.Write(t[:i])
		b.WriteString("DTSTAMP:" + stamp + "\r\n")
		b.Write(t[i:])
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

// find returns the index of the event uid, or -1.
func (c *calendar) find(uid string) int {
	return slices.IndexFunc(c.events, func(e *event) bool { return e.uid == uid })
}

// checkUID refuses what cannot name an event.
func checkUID(uid string) error {
	if uid == "" || strings.TrimSpace(uid) != uid || !utf8.ValidString(uid) ||
		strings.IndexFunc(uid, unicode.IsControl) >= 0 || len(uid) > 255 {
		return fmt.Errorf("%q cannot be an event's UID: %w", uid, repl.ErrInvalidName)
	}
	return nil
}
