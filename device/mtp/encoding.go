package mtp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// ErrMalformed is wrapped by every decoding error: the bytes a device sent do not form the
// container or dataset they should.
var ErrMalformed = errors.New("malformed MTP data")

// ErrLongString is wrapped when a string is too long for a PTP string (254 UTF-16 code units).
// Devices sometimes send 255 units without a terminator; Cradle reads them but never writes one.
var ErrLongString = errors.New("string too long for MTP")

// maxStringUnits is the most UTF-16 code units a PTP string holds: its length byte counts the
// terminating NUL and cannot exceed 255.
const maxStringUnits = 254

// decoder reads little-endian PTP values from a byte slice. The first error sticks: later reads
// return zero values, so a dataset decoder checks err once at the end. No read allocates more
// than the bytes that remain, whatever a length field claims.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) need(n int, what string) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = fmt.Errorf("%w: %s needs %d bytes at offset %d, %d left", ErrMalformed, what, n, d.off, len(d.b)-d.off)
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1, "UINT8") {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16() uint16 {
	if !d.need(2, "UINT16") {
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4, "UINT32") {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8, "UINT64") {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) u128() (v [16]byte) {
	if !d.need(16, "UINT128") {
		return v
	}
	copy(v[:], d.b[d.off:])
	d.off += 16
	return v
}

// count reads an array's UINT32 element count and checks that the elements, elem bytes each,
// fit in what remains, so a hostile count never allocates.
func (d *decoder) count(elem int, what string) int {
	n := d.u32()
	if d.err != nil {
		return 0
	}
	left := uint64(len(d.b) - d.off)
	if uint64(n)*uint64(elem) > left {
		d.err = fmt.Errorf("%w: %s of %d elements needs %d bytes at offset %d, %d left",
			ErrMalformed, what, n, uint64(n)*uint64(elem), d.off, left)
		return 0
	}
	return int(n)
}

func (d *decoder) u16s() []uint16 {
	n := d.count(2, "UINT16 array")
	if n == 0 {
		return nil
	}
	v := make([]uint16, n)
	for i := range v {
		v[i] = d.u16()
	}
	return v
}

func (d *decoder) u32s() []uint32 {
	n := d.count(4, "UINT32 array")
	if n == 0 {
		return nil
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = d.u32()
	}
	return v
}

// str reads a PTP string: a UINT8 count of UTF-16 code units including the terminating NUL, then
// the units. Trailing NULs are dropped; a NUL inside the string is kept so that name checks see
// it. Unpaired surrogates become U+FFFD.
func (d *decoder) str() string {
	n := int(d.u8())
	if n == 0 || !d.need(2*n, "string") {
		return ""
	}
	units := make([]uint16, n)
	for i := range units {
		units[i] = binary.LittleEndian.Uint16(d.b[d.off:])
		d.off += 2
	}
	for len(units) > 0 && units[len(units)-1] == 0 {
		units = units[:len(units)-1]
	}
	return string(utf16.Decode(units))
}

// rest returns how many bytes are left.
func (d *decoder) rest() int { return len(d.b) - d.off }

// encoder appends little-endian PTP values to a byte slice; the first error sticks.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) u128(v [16]byte) {
	e.b = append(e.b, v[:]...)
}

func (e *encoder) u16s(v []uint16) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		e.u16(x)
	}
}

func (e *encoder) u32s(v []uint32) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		e.u32(x)
	}
}

// str appends a PTP string. A string longer than 254 UTF-16 code units cannot be encoded.
func (e *encoder) str(s string) {
	if s == "" {
		e.u8(0)
		return
	}
	units := utf16.Encode([]rune(s))
	if len(units) > maxStringUnits {
		if e.err == nil {
			e.err = fmt.Errorf("%w: %.40q... is %d UTF-16 units long; MTP allows %d", ErrLongString, s, len(units), maxStringUnits)
		}
		e.u8(0)
		return
	}
	e.u8(uint8(len(units) + 1))
	for _, u := range units {
		e.u16(u)
	}
	e.u16(0)
}

// dateLayout is the MTP date form without a zone: "YYYYMMDDThhmmss".
const dateLayout = "20060102T150405"

// FormatDate writes t as an MTP date string in UTC with a trailing 'Z' ("YYYYMMDDThhmmssZ"): the
// one zone Android and uMTP-Responder honour, so a device whose clock is in another zone than the
// computer's keeps the right instant. The zero time is "".
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(dateLayout) + "Z"
}

// FormatDateIn writes t as the wall clock of loc without a zone, as devices report dates in their
// own zone (a responder's form). The zero time is "".
func FormatDateIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(dateLayout)
}

// ParseDate reads an MTP date string leniently: "YYYYMMDDThhmmss" optionally followed by a
// fraction (".s", ".sss"), a zone ("Z", "+hhmm", "-hh:mm", "+hh") and stray trailing dots or
// spaces, as devices write them. A date without a zone is local time. "" is the zero time.
func ParseDate(s string) (time.Time, error) { return ParseDateIn(s, time.Local) }

// ParseDateIn is ParseDate with a date without a zone read as the wall clock of loc (the device's
// own zone).
func ParseDateIn(s string, loc *time.Location) (time.Time, error) {
	defLoc := loc // loc is reused below for the zone the string names
	orig := s
	s = strings.TrimRight(strings.TrimSpace(s), ".\x00")
	if s == "" {
		return time.Time{}, nil
	}
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: date %q %s", ErrMalformed, orig, why)
	}
	if len(s) < 15 || (s[8] != 'T' && s[8] != 't') {
		return bad("is not YYYYMMDDThhmmss")
	}
	num := func(p string) (int, bool) {
		n := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return 0, false
			}
			n = n*10 + int(p[i]-'0')
		}
		return n, true
	}
	var f [6]int
	for i, r := range [6][2]int{{0, 4}, {4, 6}, {6, 8}, {9, 11}, {11, 13}, {13, 15}} {
		v, ok := num(s[r[0]:r[1]])
		if !ok {
			return bad("has a non-digit in its date or time")
		}
		f[i] = v
	}
	if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 24 || f[4] > 59 || f[5] > 60 {
		return bad("is out of range")
	}
	rest := s[15:]
	nsec := 0
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		frac := rest[:i]
		rest = rest[i:]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		if frac != "" {
			v, _ := num(frac)
			for j := len(frac); j < 9; j++ {
				v *= 10
			}
			nsec = v
		}
	}
	rest = strings.TrimRight(strings.TrimSpace(rest), ".")
	loc = defLoc
	switch {
	case rest == "":
	case rest == "Z" || rest == "z":
		loc = time.UTC
	case rest[0] == '+' || rest[0] == '-':
		z := strings.ReplaceAll(rest[1:], ":", "")
		if len(z) != 2 && len(z) != 4 {
			return bad("has an unreadable zone")
		}
		hh, ok1 := num(z[:2])
		mm, ok2 := 0, true
		if len(z) == 4 {
			mm, ok2 = num(z[2:])
		}
		if !ok1 || !ok2 || hh > 14 || mm > 59 {
			return bad("has an unreadable zone")
		}
		off := hh*3600 + mm*60
		if rest[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return bad("has trailing text")
	}
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], nsec, loc), nil
}
