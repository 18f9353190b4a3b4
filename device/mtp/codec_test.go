package mtp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// unhex turns a fixture written as spaced hex into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad fixture %q: %v", s, err)
	}
	return b
}

// Containers as they travel on the wire (little-endian length, type, code, transaction ID).
func TestContainerFixtures(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		c    Container
	}{
		{"OpenSession command", "10000000 0100 0210 00000000 01000000",
			Container{Type: ContainerCommand, Code: uint16(OpOpenSession), Params: []uint32{1}}},
		{"GetObjectHandles command", "18000000 0100 0710 03000000 01000100 00000000 ffffffff",
			Container{Type: ContainerCommand, Code: uint16(OpGetObjectHandles), TransactionID: 3, Params: []uint32{0x00010001, 0, 0xFFFFFFFF}}},
		{"OK response", "0c000000 0300 0120 05000000",
			Container{Type: ContainerResponse, Code: uint16(RespOK), TransactionID: 5}},
		{"SendObjectInfo response", "18000000 0300 0120 07000000 01000100 ffffffff 2a000000",
			Container{Type: ContainerResponse, Code: uint16(RespOK), TransactionID: 7, Params: []uint32{0x00010001, 0xFFFFFFFF, 42}}},
		{"DeviceBusy response", "0c000000 0300 1920 09000000",
			Container{Type: ContainerResponse, Code: uint16(RespDeviceBusy), TransactionID: 9}},
		{"ObjectAdded event", "10000000 0400 0240 00000000 2a000000",
			Container{Type: ContainerEvent, Code: uint16(EventObjectAdded), Params: []uint32{42}}},
	}
	for _, tt := range tests {
		wire := unhex(t, tt.hex)
		var got Container
		if err := got.UnmarshalBinary(wire); err != nil {
			t.Errorf("%s: UnmarshalBinary(%x) = %v", tt.name, wire, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.c) {
			t.Errorf("%s: UnmarshalBinary(%x) = %+v, want %+v", tt.name, wire, got, tt.c)
		}
		enc, err := tt.c.MarshalBinary()
		if err != nil || !bytes.Equal(enc, wire) {
			t.Errorf("%s: MarshalBinary() = %x, %v; want %x", tt.name, enc, err, wire)
		}
	}
}

func TestHeaderFixture(t *testing.T) {
	wire := unhex(t, "10000000 0200 0910 03000000 deadbeef")
	h, err := ParseHeader(wire)
	want := Header{Length: 16, Type: ContainerData, Code: uint16(OpGetObject), TransactionID: 3}
	if err != nil || h != want {
		t.Fatalf("ParseHeader(%x) = %+v, %v; want %+v", wire, h, err, want)
	}
	enc, _ := want.AppendBinary(nil)
	if !bytes.Equal(enc, wire[:12]) {
		t.Errorf("AppendBinary = %x, want %x", enc, wire[:12])
	}
	// A data phase over 4 GiB announces an unknown length.
	h, err = ParseHeader(unhex(t, "ffffffff 0200 0910 03000000"))
	if err != nil || h.Length != LengthUnknown {
		t.Errorf("ParseHeader(unknown length) = %+v, %v", h, err)
	}
}

func TestContainerMalformed(t *testing.T) {
	tests := []struct{ name, hex string }{
		{"short header", "0c000000 0300 01"},
		{"length under header", "08000000 0300 0120 05000000"},
		{"unknown type", "0c000000 0900 0120 05000000"},
		{"length beyond bytes", "14000000 0300 0120 05000000 01000000"},
		{"six parameters", "24000000 0300 0120 05000000 01000000 02000000 03000000 04000000 05000000 06000000"},
		{"data container", "10000000 0200 0910 03000000 deadbeef"},
	}
	for _, tt := range tests {
		var c Container
		err := c.UnmarshalBinary(unhex(t, tt.hex))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: UnmarshalBinary = %v, want ErrMalformed", tt.name, err)
		}
	}
	if _, err := (Container{Type: ContainerCommand, Params: make([]uint32, 6)}).MarshalBinary(); err == nil {
		t.Errorf("MarshalBinary(6 params) = nil error, want one")
	}
	// Padding after the last whole parameter is tolerated.
	var c Container
	if err := c.UnmarshalBinary(unhex(t, "0e000000 0300 0120 05000000 0000")); err != nil || len(c.Params) != 0 {
		t.Errorf("UnmarshalBinary(padded) = %+v, %v", c, err)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		name, hex, s string
	}{
		{"empty", "00", ""},
		{"ascii", "04 6100 6200 6300 0000", "abc"},
		{"non-BMP", "04 3cd8 b5df 2e00 0000", "🎵."},
		{"no terminator", "02 6100 6200", "ab"},
		{"interior NUL kept", "04 6100 0000 6200 0000", "a\x00b"},
		{"lone surrogate", "02 00d8 0000", "\uFFFD"},
	}
	for _, tt := range tests {
		d := decoder{b: unhex(t, tt.hex)}
		got := d.str()
		if d.err != nil || got != tt.s {
			t.Errorf("%s: str(%s) = %q, %v; want %q", tt.name, tt.hex, got, d.err, tt.s)
		}
	}
	var e encoder
	e.str("abc")
	if want := unhex(t, "04 6100 6200 6300 0000"); !bytes.Equal(e.b, want) {
		t.Errorf(`str("abc") = %x, want %x`, e.b, want)
	}
	e = encoder{}
	e.str(strings.Repeat("x", 255))
	if e.err == nil {
		t.Errorf("str(255 units) = nil error, want one")
	}
	e = encoder{}
	e.str(strings.Repeat("x", 254))
	if e.err != nil || e.b[0] != 255 {
		t.Errorf("str(254 units) = %v, length byte %d; want 255", e.err, e.b[0])
	}
	// A length byte beyond the data is an error, not a panic.
	d := decoder{b: unhex(t, "ff 6100")}
	if d.str(); !errors.Is(d.err, ErrMalformed) {
		t.Errorf("str(truncated) error = %v, want ErrMalformed", d.err)
	}
}

func TestParseDate(t *testing.T) {
	loc := time.Local
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"20240102T030405", time.Date(2024, 1, 2, 3, 4, 5, 0, loc)},
		{"20240102T030405.", time.Date(2024, 1, 2, 3, 4, 5, 0, loc)},
		{"20240102T030405..", time.Date(2024, 1, 2, 3, 4, 5, 0, loc)},
		{"20240102T030405.7", time.Date(2024, 1, 2, 3, 4, 5, 700e6, loc)},
		{"20240102T030405.123456", time.Date(2024, 1, 2, 3, 4, 5, 123456e3, loc)},
		{"20240102T030405Z", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"20240102T030405.5Z", time.Date(2024, 1, 2, 3, 4, 5, 500e6, time.UTC)},
		{"20240102T030405+0130", time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("", 5400))},
		{"20240102T030405-08:00", time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("", -8*3600))},
		{"20240102T030405+02", time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("", 7200))},
		{" 20240102t030405 \x00", time.Date(2024, 1, 2, 3, 4, 5, 0, loc)},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"2024", "20240102 030405", "2024010xT030405", "20241302T030405", "20240102T030405+9", "20240102T030405junk", "20240102T030405+25:00"} {
		if _, err := ParseDate(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseDate(%q) error = %v, want ErrMalformed", bad, err)
		}
	}
	// Dates go to devices in UTC with 'Z', the one zone Android and uMTP-Responder honour.
	when := time.Date(2023, 7, 8, 9, 10, 11, 999, time.FixedZone("", 2*3600))
	if got := FormatDate(when); got != "20230708T071011Z" {
		t.Errorf("FormatDate(%v) = %q, want 20230708T071011Z", when, got)
	}
	// A device reports its own wall clock without a zone; it is read in the device's zone.
	tokyo := time.FixedZone("JST", 9*3600)
	if got := FormatDateIn(when, tokyo); got != "20230708T161011" {
		t.Errorf("FormatDateIn(%v, JST) = %q, want 20230708T161011", when, got)
	}
	if got, err := ParseDateIn("20230708T161011", tokyo); err != nil || !got.Equal(when.Truncate(time.Second)) {
		t.Errorf("ParseDateIn(20230708T161011, JST) = %v, %v; want %v", got, err, when.Truncate(time.Second))
	}
	if got, err := ParseDateIn("20230708T071011Z", tokyo); err != nil || !got.Equal(when.Truncate(time.Second)) {
		t.Errorf("ParseDateIn(20230708T071011Z, JST) = %v, %v; want %v", got, err, when.Truncate(time.Second))
	}
	if got := FormatDate(time.Time{}); got != "" {
		t.Errorf("FormatDate(zero) = %q, want empty", got)
	}
}

func TestDeviceInfoFixture(t *testing.T) {
	wire := unhex(t, `6400 06000000 6400 03 6100 6200 0000 0000
		02000000 0110 0210
		01000000 0240
		00000000
		00000000
		01000000 0930
		02 5800 0000
		02 5900 0000
		00
		02 3100 0000`)
	want := DeviceInfo{
		StandardVersion: 100, VendorExtensionID: 6, VendorExtensionVersion: 100, VendorExtensionDesc: "ab",
		OperationsSupported: []OpCode{OpGetDeviceInfo, OpOpenSession},
		EventsSupported:     []EventCode{EventObjectAdded},
		PlaybackFormats:     []FormatCode{FormatMP3},
		Manufacturer:        "X", Model: "Y", SerialNumber: "1",
	}
	var got DeviceInfo
	if err := got.UnmarshalBinary(wire); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnmarshalBinary = %+v, want %+v", got, want)
	}
	enc, err := want.MarshalBinary()
	if err != nil || !bytes.Equal(enc, wire) {
		t.Errorf("MarshalBinary = %x, %v; want %x", enc, err, wire)
	}
	if !got.Supports(OpOpenSession) || got.Supports(OpGetObjectPropList) {
		t.Errorf("Supports wrong on %v", got.OperationsSupported)
	}
	di := DeviceInfo{VendorExtensionDesc: "microsoft.com: 1.0; android.com: 1.0;"}
	if !di.Extension("android.com") || di.Extension("android") {
		t.Errorf("Extension on %q wrong", di.VendorExtensionDesc)
	}
	truncatedEverywhere(t, "DeviceInfo", wire, func(b []byte) error { return new(DeviceInfo).UnmarshalBinary(b) })
}

func TestStorageInfoFixture(t *testing.T) {
	wire := unhex(t, "0300 0200 0000 0000000004000000 0000000001000000 ffffffff 03 5300 4400 0000 00")
	want := StorageInfo{StorageType: StorageFixedRAM, FilesystemType: FilesystemGenericHierarchical,
		MaxCapacity: 16 << 30, FreeSpaceInBytes: 4 << 30, FreeSpaceInObjects: 0xFFFFFFFF, StorageDescription: "SD"}
	var got StorageInfo
	if err := got.UnmarshalBinary(wire); err != nil || got != want {
		t.Fatalf("UnmarshalBinary = %+v, %v; want %+v", got, err, want)
	}
	enc, err := want.MarshalBinary()
	if err != nil || !bytes.Equal(enc, wire) {
		t.Errorf("MarshalBinary = %x, %v; want %x", enc, err, wire)
	}
	truncatedEverywhere(t, "StorageInfo", wire, func(b []byte) error { return new(StorageInfo).UnmarshalBinary(b) })
}

func TestObjectInfoFixture(t *testing.T) {
	wire := unhex(t, `01000100 0138 0000 05000000 0000 00000000 00000000 00000000
		00000000 00000000 00000000 00000000 0000 00000000 00000000
		06 6100 2e00 6a00 7000 6700 0000
		00
		10 3200 3000 3200 3400 3000 3100 3000 3200 5400 3000 3300 3000 3400 3000 3500 0000
		00`)
	want := ObjectInfo{StorageID: 0x00010001, ObjectFormat: FormatEXIFJPEG, CompressedSize: 5, Filename: "a.jpg",
		ModificationDate: time.Date(2024, 1, 2, 3, 4, 5, 0, time.Local)}
	var got ObjectInfo
	if err := got.UnmarshalBinary(wire); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnmarshalBinary = %+v, want %+v", got, want)
	}
	// A device writes its dates as its wall clock (Zone); Cradle writes them in UTC with 'Z'.
	dev := want
	dev.Zone = time.Local
	enc, err := dev.MarshalBinary()
	if err != nil || !bytes.Equal(enc, wire) {
		t.Errorf("MarshalBinary in the device's zone = %x, %v; want %x", enc, err, wire)
	}
	enc, err = want.MarshalBinary()
	if err != nil || !bytes.Contains(enc, unhex(t, "5a00 0000")) {
		t.Errorf("MarshalBinary = %x, %v; want its dates ending in 'Z'", enc, err)
	}
	// Devices that stop after the file name are accepted.
	short := wire[:bytes.Index(wire, unhex(t, "06 6100"))+13]
	if err := got.UnmarshalBinary(short); err != nil || got.Filename != "a.jpg" || !got.ModificationDate.IsZero() {
		t.Errorf("UnmarshalBinary(no dates) = %+v, %v", got, err)
	}
	// An unreadable date is no date, not an error.
	odd := ObjectInfo{Filename: "x"}
	b, _ := odd.MarshalBinary()
	b = append(b[:len(b)-3], unhex(t, "04 3f00 3f00 3f00 0000 00")...)
	if err := got.UnmarshalBinary(b); err != nil || !got.ModificationDate.IsZero() {
		t.Errorf("UnmarshalBinary(date ???) = %+v, %v", got, err)
	}
	truncatedEverywhere(t, "ObjectInfo", wire[:len(short)], func(b []byte) error { return new(ObjectInfo).UnmarshalBinary(b) })
}

// Hostile names decode as they are: it is device.CheckName, applied by the Device to every name,
// that refuses them (see TestHostileNamesOverTheWire).
func TestObjectInfoHostileNames(t *testing.T) {
	for _, name := range []string{"..", "../../etc/passwd", `..\..\boot.ini`, "a/b", "x\x00y", "CON", strings.Repeat("長", 200)} {
		in := ObjectInfo{Filename: name}
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%q): %v", name, err)
		}
		var out ObjectInfo
		if err := out.UnmarshalBinary(b); err != nil || out.Filename != name {
			t.Errorf("round trip of %q = %q, %v", name, out.Filename, err)
		}
	}
}

func TestPropListFixture(t *testing.T) {
	wire := unhex(t, `02000000
		01000000 07dc ffff 02 6100 0000
		01000000 04dc 0800 0500000000000000`)
	want := PropList{
		{Handle: 1, Code: PropObjectFileName, Value: StringValue("a")},
		{Handle: 1, Code: PropObjectSize, Value: UintValue(TypeUint64, 5)},
	}
	var got PropList
	if err := got.UnmarshalBinary(wire); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("UnmarshalBinary = %+v, %v; want %+v", got, err, want)
	}
	enc, err := want.MarshalBinary()
	if err != nil || !bytes.Equal(enc, wire) {
		t.Errorf("MarshalBinary = %x, %v; want %x", enc, err, wire)
	}
	truncatedEverywhere(t, "PropList", wire, func(b []byte) error { return new(PropList).UnmarshalBinary(b) })
	// A count of four billion elements in a few bytes fails before allocating anything.
	hostile := unhex(t, "ffffffff 01000000 07dc")
	if n := bytesAllocated(func() {
		var l PropList
		if err := l.UnmarshalBinary(hostile); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnmarshalBinary(hostile count) = %v, want ErrMalformed", err)
		}
	}); n > 64<<10 {
		t.Errorf("UnmarshalBinary(hostile count) allocated %d bytes", n)
	}
}

// bytesAllocated returns how many bytes fn allocates.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestPropDescFixtures(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want PropDesc
	}{
		{"date time form", "09dc ffff 01 00 00000000 03",
			PropDesc{Code: PropDateModified, Type: TypeString, Writable: true, Default: StringValue(""), Form: FormDateTime}},
		{"range form", "8adc 0400 00 0000 00000000 01 0000 6400 0100",
			PropDesc{Code: PropRating, Type: TypeUint16, Default: UintValue(TypeUint16, 0), Form: FormRange,
				Min: UintValue(TypeUint16, 0), Max: UintValue(TypeUint16, 100), Step: UintValue(TypeUint16, 1)}},
		{"enumeration form", "03dc 0400 00 0000 00000000 02 0200 0000 0100",
			PropDesc{Code: PropProtectionStatus, Type: TypeUint16, Default: UintValue(TypeUint16, 0), Form: FormEnum,
				Enum: []Value{UintValue(TypeUint16, 0), UintValue(TypeUint16, 1)}}},
		{"long string form", "07dc ffff 01 00 00000000 ff ff000000",
			PropDesc{Code: PropObjectFileName, Type: TypeString, Writable: true, Default: StringValue(""), Form: FormLongString, MaxLength: 255}},
		{"regexp form", "07dc ffff 01 00 02000000 05 02 2e00 0000",
			PropDesc{Code: PropObjectFileName, Type: TypeString, Writable: true, Default: StringValue(""), Group: 2, Form: FormRegexp, Regexp: "."}},
		{"fixed array form", "0cdc 0440 00 00000000 00000000 04 0800",
			PropDesc{Code: PropAllowedFolderContents, Type: TypeArray | TypeUint16, Default: Value{Type: TypeArray | TypeUint16}, Form: FormFixedArray, ArrayLength: 8}},
		{"signed default", "8bdc 0300 00 feff 00000000 00",
			PropDesc{Code: PropTrack, Type: TypeInt16, Default: Value{Type: TypeInt16, Int: 0xFFFFFFFFFFFFFFFE}, Form: FormNone}},
	}
	for _, tt := range tests {
		wire := unhex(t, tt.hex)
		var got PropDesc
		if err := got.UnmarshalBinary(wire); err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: UnmarshalBinary = %+v, %v; want %+v", tt.name, got, err, tt.want)
			continue
		}
		enc, err := tt.want.MarshalBinary()
		if err != nil || !bytes.Equal(enc, wire) {
			t.Errorf("%s: MarshalBinary = %x, %v; want %x", tt.name, enc, err, wire)
		}
		truncatedEverywhere(t, tt.name, wire, func(b []byte) error { return new(PropDesc).UnmarshalBinary(b) })
	}
	if got := (PropDesc{Type: TypeInt16, Default: Value{Type: TypeInt16, Int: 0xFFFFFFFFFFFFFFFE}}).Default.Signed(); got != -2 {
		t.Errorf("Signed() = %d, want -2", got)
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		v   Value
		hex string
	}{
		{UintValue(TypeUint8, 7), "07"},
		{UintValue(TypeUint32, 0x01020304), "04030201"},
		{Value{Type: TypeUint128, Wide: [16]byte{1, 2, 3}}, "01020300000000000000000000000000"},
		{Value{Type: TypeArray | TypeUint16, Array: []uint64{1, 2}}, "02000000 0100 0200"},
		{Value{Type: TypeArray | TypeUint128, WideArray: [][16]byte{{9}}}, "01000000 09000000000000000000000000000000"},
		{StringValue("é"), "02 e900 0000"},
	}
	for _, tt := range tests {
		wire := unhex(t, tt.hex)
		got, err := UnmarshalValue(wire, tt.v.Type)
		if err != nil || !reflect.DeepEqual(got, tt.v) {
			t.Errorf("UnmarshalValue(%x, %v) = %+v, %v; want %+v", wire, tt.v.Type, got, err, tt.v)
		}
		enc, err := MarshalValue(tt.v)
		if err != nil || !bytes.Equal(enc, wire) {
			t.Errorf("MarshalValue(%+v) = %x, %v; want %x", tt.v, enc, err, wire)
		}
	}
	if _, err := UnmarshalValue([]byte{1}, DataType(0x0077)); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalValue(unknown type) = %v, want ErrMalformed", err)
	}
	if _, err := UnmarshalValue(unhex(t, "ffffff7f 0100"), TypeArray|TypeUint64); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalValue(hostile array count) = %v, want ErrMalformed", err)
	}
}

func TestHandlesArray(t *testing.T) {
	wire := unhex(t, "03000000 01000000 02000000 ffffff7f")
	got, err := UnmarshalHandles(wire)
	if err != nil || !reflect.DeepEqual(got, []uint32{1, 2, 0x7FFFFFFF}) {
		t.Errorf("UnmarshalHandles = %v, %v", got, err)
	}
	if enc := MarshalHandles(got); !bytes.Equal(enc, wire) {
		t.Errorf("MarshalHandles = %x, want %x", enc, wire)
	}
	if _, err := UnmarshalHandles(unhex(t, "ffffffff 01000000")); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalHandles(hostile count) = %v, want ErrMalformed", err)
	}
	codes, err := UnmarshalCodes(unhex(t, "02000000 07dc 04dc"))
	if err != nil || !reflect.DeepEqual(codes, []uint16{0xDC07, 0xDC04}) {
		t.Errorf("UnmarshalCodes = %v, %v", codes, err)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{OpGetPartialObject64.String(), "GetPartialObject64"},
		{OpCode(0x9999).String(), "unknown operation 0x9999"},
		{RespDeviceBusy.String(), "DeviceBusy"},
		{EventObjectInfoChanged.String(), "ObjectInfoChanged"},
		{PropObjectFileName.String(), "ObjectFileName"},
		{FormatAssociation.String(), "Association"},
		{(TypeArray | TypeUint16).String(), "AUINT16"},
		{TypeString.String(), "STR"},
		{ContainerData.String(), "data"},
		{(&ResponseError{Op: OpGetObjectInfo, Code: RespInvalidObjectHandle}).Error(), "GetObjectInfo: device answered InvalidObjectHandle (0x2009)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestFormatForName(t *testing.T) {
	tests := map[string]FormatCode{"a.JPG": FormatEXIFJPEG, "b.mp3": FormatMP3, "c": FormatUndefined, "d.tar.gz": FormatUndefined, ".vcf": FormatVCard3}
	for name, want := range tests {
		if got := FormatForName(name); got != want {
			t.Errorf("FormatForName(%q) = %v, want %v", name, got, want)
		}
	}
}

// truncatedEverywhere checks that every strict prefix of a valid encoding fails to decode with
// ErrMalformed (and never panics).
func truncatedEverywhere(t *testing.T, what string, wire []byte, decode func([]byte) error) {
	t.Helper()
	for i := range wire {
		if err := decode(wire[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s cut to %d of %d bytes: error %v, want ErrMalformed", what, i, len(wire), err)
			return
		}
	}
}
