package mtp

import (
	"bytes"
	"encoding"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Fuzz targets for every decoder of bytes a device sends. Each checks that decoding never
// panics nor allocates beyond its input, and that what decodes re-encodes to a fixed point.
// `go test` runs their seed corpus; `go test -fuzz FuzzX` explores.

func addHex(f *testing.F, fixtures ...string) {
	for _, s := range fixtures {
		f.Add(unhex(f, s))
	}
}

func FuzzContainer(f *testing.F) {
	addHex(f, "10000000 0100 0210 00000000 01000000", "0c000000 0300 0120 05000000",
		"18000000 0300 0120 07000000 01000100 ffffffff 2a000000", "10000000 0400 0240 00000000 2a000000",
		"0e000000 0300 0120 05000000 0000", "08000000 0300 0120 05000000")
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Container
		if c.UnmarshalBinary(b) != nil {
			return
		}
		enc, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", c, err)
		}
		var c2 Container
		if err := c2.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip of %+v = %+v, %v", c, c2, err)
		}
	})
}

func FuzzHeader(f *testing.F) {
	addHex(f, "10000000 0200 0910 03000000 deadbeef", "ffffffff 0200 0910 03000000", "0c000000 0500 0120 05000000")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		enc, _ := h.AppendBinary(nil)
		if !bytes.Equal(enc, b[:HeaderSize]) {
			t.Fatalf("AppendBinary(%+v) = %x, want %x", h, enc, b[:HeaderSize])
		}
	})
}

// fixpoint checks that a decoded dataset re-encodes, and that decoding that encoding and
// encoding again gives the same bytes.
func fixpoint[T any, P interface {
	*T
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}](t *testing.T, b []byte) {
	var v T
	if P(&v).UnmarshalBinary(b) != nil {
		return
	}
	enc, err := P(&v).MarshalBinary()
	if errors.Is(err, ErrLongString) {
		return // read leniently, never written
	}
	if err != nil {
		t.Fatalf("MarshalBinary(%+v): %v", v, err)
	}
	var v2 T
	if err := P(&v2).UnmarshalBinary(enc); err != nil {
		t.Fatalf("UnmarshalBinary(MarshalBinary(%+v)) = %v", v, err)
	}
	enc2, err := P(&v2).MarshalBinary()
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not a fixed point: %x then %x (%v)", enc, enc2, err)
	}
}

func FuzzDeviceInfo(f *testing.F) {
	addHex(f, `6400 06000000 6400 03 6100 6200 0000 0000 02000000 0110 0210 01000000 0240 00000000
		00000000 01000000 0930 02 5800 0000 02 5900 0000 00 02 3100 0000`)
	f.Fuzz(func(t *testing.T, b []byte) { fixpoint[DeviceInfo](t, b) })
}

func FuzzStorageInfo(f *testing.F) {
	addHex(f, "0300 0200 0000 0000000004000000 0000000001000000 ffffffff 03 5300 4400 0000 00")
	f.Fuzz(func(t *testing.T, b []byte) { fixpoint[StorageInfo](t, b) })
}

func FuzzObjectInfo(f *testing.F) {
	addHex(f, `01000100 0138 0000 05000000 0000 00000000 00000000 00000000 00000000 00000000 00000000
		00000000 0000 00000000 00000000 06 6100 2e00 6a00 7000 6700 0000 00
		10 3200 3000 3200 3400 3000 3100 3000 3200 5400 3000 3300 3000 3400 3000 3500 0000 00`)
	f.Fuzz(func(t *testing.T, b []byte) { fixpoint[ObjectInfo](t, b) })
}

func FuzzPropDesc(f *testing.F) {
	addHex(f, "09dc ffff 01 00 00000000 03", "8adc 0400 00 0000 00000000 01 0000 6400 0100",
		"03dc 0400 00 0000 00000000 02 0200 0000 0100", "07dc ffff 01 00 00000000 ff ff000000",
		"07dc ffff 01 00 02000000 05 02 2e00 0000", "0cdc 0440 00 00000000 00000000 04 0800")
	f.Fuzz(func(t *testing.T, b []byte) { fixpoint[PropDesc](t, b) })
}

func FuzzPropList(f *testing.F) {
	addHex(f, "02000000 01000000 07dc ffff 02 6100 0000 01000000 04dc 0800 0500000000000000",
		"01000000 02000000 41dc 0a00 000102030405060708090a0b0c0d0e0f", "ffffffff 01000000 07dc")
	f.Fuzz(func(t *testing.T, b []byte) {
		var l PropList
		if l.UnmarshalBinary(b) != nil {
			return
		}
		// The streaming reader sees the very elements the list holds.
		var each PropList
		if err := EachPropListEntry(b, func(x PropListEntry) { each = append(each, x) }); err != nil || len(each) != len(l) {
			t.Fatalf("EachPropListEntry saw %d elements (%v), UnmarshalBinary %d", len(each), err, len(l))
		}
		for i := range each {
			if !reflect.DeepEqual(each[i], l[i]) {
				t.Fatalf("element %d: %+v streamed, %+v listed", i, each[i], l[i])
			}
		}
		enc, err := l.MarshalBinary()
		if errors.Is(err, ErrLongString) {
			return
		}
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", l, err)
		}
		var l2 PropList
		if err := l2.UnmarshalBinary(enc); err != nil {
			t.Fatalf("UnmarshalBinary(MarshalBinary(%+v)) = %v", l, err)
		}
		if enc2, _ := l2.MarshalBinary(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %x then %x", enc, enc2)
		}
	})
}

func FuzzValue(f *testing.F) {
	f.Add([]byte{7}, uint16(TypeUint8))
	f.Add(unhex(f, "02000000 0100 0200"), uint16(TypeArray|TypeUint16))
	f.Add(unhex(f, "02 e900 0000"), uint16(TypeString))
	f.Add(unhex(f, "feff"), uint16(TypeInt16))
	f.Fuzz(func(t *testing.T, b []byte, typ uint16) {
		v, err := UnmarshalValue(b, DataType(typ))
		if err != nil {
			return
		}
		enc, err := MarshalValue(v)
		if errors.Is(err, ErrLongString) {
			return
		}
		if err != nil {
			t.Fatalf("MarshalValue(%+v): %v", v, err)
		}
		v2, err := UnmarshalValue(enc, DataType(typ))
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %+v = %+v, %v", v, v2, err)
		}
	})
}

func FuzzString(f *testing.F) {
	addHex(f, "00", "04 6100 6200 6300 0000", "04 3cd8 b5df 2e00 0000", "02 00d8 0000", "04 6100 0000 6200 0000", "ff 6100")
	f.Fuzz(func(t *testing.T, b []byte) {
		d := decoder{b: b}
		s := d.str()
		if d.err != nil {
			return
		}
		var e encoder
		e.str(s)
		if errors.Is(e.err, ErrLongString) {
			return
		}
		if e.err != nil {
			t.Fatalf("str(%q) does not encode: %v", s, e.err)
		}
		d2 := decoder{b: e.b}
		if s2 := d2.str(); d2.err != nil || s2 != s {
			t.Fatalf("round trip of %q = %q, %v", s, s2, d2.err)
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"20240102T030405", "20240102T030405.", "20240102T030405.7Z", "20240102T030405+0130",
		"20240102T030405-08:00", "", "2024", "99991231T235959-14"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseDate(s)
		if err != nil || tm.IsZero() {
			return
		}
		if y := tm.Local().Year(); y < 1 || y > 9999 {
			return
		}
		back, err := ParseDate(FormatDate(tm))
		if err != nil || !back.Equal(tm.Truncate(time.Second)) {
			t.Fatalf("ParseDate(FormatDate(%v)) = %v, %v", tm, back, err)
		}
	})
}

func FuzzHandles(f *testing.F) {
	addHex(f, "03000000 01000000 02000000 ffffff7f", "ffffffff 01000000", "00000000")
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := UnmarshalHandles(b)
		if err != nil {
			return
		}
		if enc := MarshalHandles(hs); !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("MarshalHandles(%v) = %x, want %x", hs, enc, b[:len(enc)])
		}
	})
}
