package mtp

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DeviceInfo is the dataset GetDeviceInfo returns.
type DeviceInfo struct {
	StandardVersion           uint16
	VendorExtensionID         uint32
	VendorExtensionVersion    uint16
	VendorExtensionDesc       string
	FunctionalMode            uint16
	OperationsSupported       []OpCode
	EventsSupported           []EventCode
	DevicePropertiesSupported []uint16
	CaptureFormats            []FormatCode
	PlaybackFormats           []FormatCode
	Manufacturer              string
	Model                     string
	DeviceVersion             string
	SerialNumber              string
}

// Supports tells whether the device lists op among its operations.
func (d *DeviceInfo) Supports(op OpCode) bool { return slices.Contains(d.OperationsSupported, op) }

// Extension tells whether the vendor extension description names ext ("android.com"), as in
// "microsoft.com: 1.0; android.com: 1.0;".
func (d *DeviceInfo) Extension(ext string) bool {
	for part := range strings.SplitSeq(d.VendorExtensionDesc, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), ":")
		if strings.EqualFold(strings.TrimSpace(name), ext) {
			return true
		}
	}
	return false
}

// MarshalBinary encodes the dataset.
func (d *DeviceInfo) MarshalBinary() ([]byte, error) {
	var e encoder
	e.u16(d.StandardVersion)
	e.u32(d.VendorExtensionID)
	e.u16(d.VendorExtensionVersion)
	e.str(d.VendorExtensionDesc)
	e.u16(d.FunctionalMode)
	e.u16s(codes(d.OperationsSupported))
	e.u16s(codes(d.EventsSupported))
	e.u16s(d.DevicePropertiesSupported)
	e.u16s(codes(d.CaptureFormats))
	e.u16s(codes(d.PlaybackFormats))
	e.str(d.Manufacturer)
	e.str(d.Model)
	e.str(d.DeviceVersion)
	e.str(d.SerialNumber)
	return e.b, e.err
}

// UnmarshalBinary decodes the dataset.
func (d *DeviceInfo) UnmarshalBinary(b []byte) error {
	r := decoder{b: b}
	*d = DeviceInfo{
		StandardVersion:        r.u16(),
		VendorExtensionID:      r.u32(),
		VendorExtensionVersion: r.u16(),
		VendorExtensionDesc:    r.str(),
		FunctionalMode:         r.u16(),
	}
	d.OperationsSupported = fromCodes[OpCode](r.u16s())
	d.EventsSupported = fromCodes[EventCode](r.u16s())
	d.DevicePropertiesSupported = r.u16s()
	d.CaptureFormats = fromCodes[FormatCode](r.u16s())
	d.PlaybackFormats = fromCodes[FormatCode](r.u16s())
	d.Manufacturer = r.str()
	d.Model = r.str()
	d.DeviceVersion = r.str()
	d.SerialNumber = r.str()
	if r.err != nil {
		return fmt.Errorf("DeviceInfo: %w", r.err)
	}
	return nil
}

// StorageInfo is the dataset GetStorageInfo returns.
type StorageInfo struct {
	StorageType        uint16
	FilesystemType     uint16
	AccessCapability   uint16
	MaxCapacity        uint64
	FreeSpaceInBytes   uint64
	FreeSpaceInObjects uint32
	StorageDescription string
	VolumeLabel        string
}

// MarshalBinary encodes the dataset.
func (s *StorageInfo) MarshalBinary() ([]byte, error) {
	var e encoder
	e.u16(s.StorageType)
	e.u16(s.FilesystemType)
	e.u16(s.AccessCapability)
	e.u64(s.MaxCapacity)
	e.u64(s.FreeSpaceInBytes)
	e.u32(s.FreeSpaceInObjects)
	e.str(s.StorageDescription)
	e.str(s.VolumeLabel)
	return e.b, e.err
}

// UnmarshalBinary decodes the dataset.
func (s *StorageInfo) UnmarshalBinary(b []byte) error {
	r := decoder{b: b}
	*s = StorageInfo{
		StorageType:        r.u16(),
		FilesystemType:     r.u16(),
		AccessCapability:   r.u16(),
		MaxCapacity:        r.u64(),
		FreeSpaceInBytes:   r.u64(),
		FreeSpaceInObjects: r.u32(),
		StorageDescription: r.str(),
		VolumeLabel:        r.str(),
	}
	if r.err != nil {
		return fmt.Errorf("StorageInfo: %w", r.err)
	}
	return nil
}

// ObjectInfo is the dataset GetObjectInfo returns and SendObjectInfo sends.
type ObjectInfo struct {
	StorageID        uint32
	ObjectFormat     FormatCode
	ProtectionStatus uint16
	// CompressedSize is the size in bytes; 0xFFFFFFFF for objects of 4 GiB and more (ask the
	// ObjectSize property then).
	CompressedSize      uint32
	ThumbFormat         FormatCode
	ThumbCompressedSize uint32
	ThumbPixWidth       uint32
	ThumbPixHeight      uint32
	ImagePixWidth       uint32
	ImagePixHeight      uint32
	ImageBitDepth       uint32
	// ParentObject is the handle of the folder holding the object; 0 at a storage's root.
	ParentObject    uint32
	AssociationType uint16
	AssociationDesc uint32
	SequenceNumber  uint32
	Filename        string
	// CaptureDate and ModificationDate are the zero time when the device sent none or an
	// unreadable one.
	CaptureDate      time.Time
	ModificationDate time.Time
	Keywords         string

	// Zone, when set, is the device's own zone: MarshalBinary writes dates as its wall clock
	// without a zone (as a device reports them), and UnmarshalBinary reads dates without a zone
	// in it. When nil, dates are written in UTC with 'Z' and read in the computer's zone.
	Zone *time.Location
	// Size64 says the dataset carries the size as 64 bits where ObjectInfo has 32, as older
	// Samsungs send it (libmtp's DEVICE_FLAG_PROPLIST_OVERRIDES_OI); Size is that size.
	// UnmarshalBinary recognises such a dataset (the standard reading does not end where the
	// dataset does, the 64-bit one does); MarshalBinary writes one (a responder's quirk).
	Size64 bool
	Size   uint64
}

// MarshalBinary encodes the dataset; dates are written in UTC with 'Z' (see Zone).
func (o *ObjectInfo) MarshalBinary() ([]byte, error) {
	date := FormatDate
	if o.Zone != nil {
		date = func(t time.Time) string { return FormatDateIn(t, o.Zone) }
	}
	var e encoder
	e.u32(o.StorageID)
	e.u16(uint16(o.ObjectFormat))
	e.u16(o.ProtectionStatus)
	if o.Size64 {
		e.u64(o.Size)
	} else {
		e.u32(o.CompressedSize)
	}
	e.u16(uint16(o.ThumbFormat))
	e.u32(o.ThumbCompressedSize)
	e.u32(o.ThumbPixWidth)
	e.u32(o.ThumbPixHeight)
	e.u32(o.ImagePixWidth)
	e.u32(o.ImagePixHeight)
	e.u32(o.ImageBitDepth)
	e.u32(o.ParentObject)
	e.u16(o.AssociationType)
	e.u32(o.AssociationDesc)
	e.u32(o.SequenceNumber)
	e.str(o.Filename)
	e.str(date(o.CaptureDate))
	e.str(date(o.ModificationDate))
	e.str(o.Keywords)
	return e.b, e.err
}

// UnmarshalBinary decodes the dataset. Dates are read leniently (ParseDate, in Zone when set);
// an unreadable date becomes the zero time rather than an error, and a dataset cut short after the
// file name (some devices omit the trailing strings) is accepted. A dataset with a 64-bit size
// (see Size64) is recognised and read as such.
func (o *ObjectInfo) UnmarshalBinary(b []byte) error {
	zone := o.Zone
	rest, err := o.unmarshal(b, false, zone)
	if err != nil || rest != 0 {
		var wide ObjectInfo
		if wrest, werr := wide.unmarshal(b, true, zone); werr == nil && wrest == 0 && wide.Filename != "" {
			*o = wide
			return nil
		}
	}
	return err
}

// unmarshal decodes the dataset with a 32 or 64-bit size and reports the bytes left over.
func (o *ObjectInfo) unmarshal(b []byte, wide bool, zone *time.Location) (int, error) {
	r := decoder{b: b}
	*o = ObjectInfo{StorageID: r.u32(), ObjectFormat: FormatCode(r.u16()), ProtectionStatus: r.u16(), Zone: zone}
	if wide {
		o.Size64, o.Size = true, r.u64()
		o.CompressedSize = uint32(min(o.Size, 0xFFFFFFFF))
	} else {
		o.CompressedSize = r.u32()
	}
	o.ThumbFormat = FormatCode(r.u16())
	o.ThumbCompressedSize = r.u32()
	o.ThumbPixWidth = r.u32()
	o.ThumbPixHeight = r.u32()
	o.ImagePixWidth = r.u32()
	o.ImagePixHeight = r.u32()
	o.ImageBitDepth = r.u32()
	o.ParentObject = r.u32()
	o.AssociationType = r.u16()
	o.AssociationDesc = r.u32()
	o.SequenceNumber = r.u32()
	o.Filename = r.str()
	if r.err != nil {
		return r.rest(), fmt.Errorf("ObjectInfo: %w", r.err)
	}
	var dates [2]string
	for i := range dates {
		if r.rest() == 0 {
			break
		}
		dates[i] = r.str()
	}
	if r.rest() > 0 {
		o.Keywords = r.str()
	}
	if r.err != nil {
		return r.rest(), fmt.Errorf("ObjectInfo: %w", r.err)
	}
	loc := time.Local
	if zone != nil {
		loc = zone
	}
	o.CaptureDate, _ = ParseDateIn(dates[0], loc)
	o.ModificationDate, _ = ParseDateIn(dates[1], loc)
	return r.rest(), nil
}

// IsFolder tells whether the object is a folder (an association of the generic-folder type, or
// any association: devices differ in the type they report).
func (o *ObjectInfo) IsFolder() bool { return o.ObjectFormat == FormatAssociation }

// Value is a property value of any data type.
type Value struct {
	Type DataType
	// Int holds every integer type up to 64 bits; signed types are sign-extended (read them
	// with Signed).
	Int uint64
	// Wide holds INT128 and UINT128 values, little-endian.
	Wide [16]byte
	// Str holds STR values.
	Str string
	// Array holds the elements of array types up to 64 bits, and WideArray those of 128-bit
	// arrays.
	Array     []uint64
	WideArray [][16]byte
}

// UintValue is a value of an integer type.
func UintValue(t DataType, v uint64) Value { return Value{Type: t, Int: v} }

// StringValue is a STR value.
func StringValue(s string) Value { return Value{Type: TypeString, Str: s} }

// Signed returns an integer value as a signed number.
func (v Value) Signed() int64 { return int64(v.Int) }

// scalarSize is the encoded size of a scalar type, 0 for strings and unknown types.
func scalarSize(t DataType) int {
	switch t {
	case TypeInt8, TypeUint8:
		return 1
	case TypeInt16, TypeUint16:
		return 2
	case TypeInt32, TypeUint32:
		return 4
	case TypeInt64, TypeUint64:
		return 8
	case TypeInt128, TypeUint128:
		return 16
	}
	return 0
}

// signExtend widens a signed value read as n bytes.
func signExtend(v uint64, t DataType) uint64 {
	switch t {
	case TypeInt8:
		return uint64(int64(int8(v)))
	case TypeInt16:
		return uint64(int64(int16(v)))
	case TypeInt32:
		return uint64(int64(int32(v)))
	}
	return v
}

func (d *decoder) scalar(t DataType) (uint64, [16]byte) {
	var w [16]byte
	switch scalarSize(t) {
	case 1:
		return signExtend(uint64(d.u8()), t), w
	case 2:
		return signExtend(uint64(d.u16()), t), w
	case 4:
		return signExtend(uint64(d.u32()), t), w
	case 8:
		return d.u64(), w
	case 16:
		return 0, d.u128()
	}
	return 0, w
}

// value reads a value of type t.
func (d *decoder) value(t DataType) Value {
	v := Value{Type: t}
	switch {
	case t == TypeString:
		v.Str = d.str()
	case t&TypeArray != 0 && scalarSize(t&^TypeArray) > 0:
		et := t &^ TypeArray
		size := scalarSize(et)
		n := d.count(size, "array value")
		if n == 0 {
			return v
		}
		if size == 16 {
			v.WideArray = make([][16]byte, n)
			for i := range v.WideArray {
				v.WideArray[i] = d.u128()
			}
		} else {
			v.Array = make([]uint64, n)
			for i := range v.Array {
				v.Array[i], _ = d.scalar(et)
			}
		}
	case scalarSize(t) > 0:
		v.Int, v.Wide = d.scalar(t)
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: value of unknown %v", ErrMalformed, t)
		}
	}
	return v
}

func (e *encoder) scalar(t DataType, v uint64, w [16]byte) {
	switch scalarSize(t) {
	case 1:
		e.u8(uint8(v))
	case 2:
		e.u16(uint16(v))
	case 4:
		e.u32(uint32(v))
	case 8:
		e.u64(v)
	case 16:
		e.u128(w)
	}
}

// value appends v as type t (v.Type is ignored, so a zero Value encodes as t's zero).
func (e *encoder) value(t DataType, v Value) {
	switch {
	case t == TypeString:
		e.str(v.Str)
	case t&TypeArray != 0 && scalarSize(t&^TypeArray) > 0:
		et := t &^ TypeArray
		if scalarSize(et) == 16 {
			e.u32(uint32(len(v.WideArray)))
			for _, x := range v.WideArray {
				e.u128(x)
			}
			return
		}
		e.u32(uint32(len(v.Array)))
		for _, x := range v.Array {
			e.scalar(et, x, [16]byte{})
		}
	case scalarSize(t) > 0:
		e.scalar(t, v.Int, v.Wide)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("cannot encode a value of %v", t)
		}
	}
}

// MarshalValue encodes a property value, as GetObjectPropValue returns it and
// SetObjectPropValue sends it.
func MarshalValue(v Value) ([]byte, error) {
	var e encoder
	e.value(v.Type, v)
	return e.b, e.err
}

// UnmarshalValue decodes a property value of type t.
func UnmarshalValue(b []byte, t DataType) (Value, error) {
	r := decoder{b: b}
	v := r.value(t)
	if r.err != nil {
		return Value{}, fmt.Errorf("%v value: %w", t, r.err)
	}
	return v, nil
}

// Property description forms (the FormFlag of ObjectPropDesc).
const (
	FormNone       uint8 = 0x00
	FormRange      uint8 = 0x01
	FormEnum       uint8 = 0x02
	FormDateTime   uint8 = 0x03
	FormFixedArray uint8 = 0x04
	FormRegexp     uint8 = 0x05
	FormByteArray  uint8 = 0x06
	FormLongString uint8 = 0xFF
)

// PropDesc is the ObjectPropDesc dataset GetObjectPropDesc returns.
type PropDesc struct {
	Code     PropCode
	Type     DataType
	Writable bool // GetSet: 0x01 get/set, 0x00 get only
	Default  Value
	Group    uint32
	Form     uint8
	// Range form.
	Min, Max, Step Value
	// Enumeration form.
	Enum []Value
	// Fixed-length array form.
	ArrayLength uint16
	// Regular expression form.
	Regexp string
	// Byte array and long string forms.
	MaxLength uint32
}

// MarshalBinary encodes the dataset.
func (p *PropDesc) MarshalBinary() ([]byte, error) {
	var e encoder
	e.u16(uint16(p.Code))
	e.u16(uint16(p.Type))
	if p.Writable {
		e.u8(1)
	} else {
		e.u8(0)
	}
	e.value(p.Type, p.Default)
	e.u32(p.Group)
	e.u8(p.Form)
	switch p.Form {
	case FormNone, FormDateTime:
	case FormRange:
		e.value(p.Type, p.Min)
		e.value(p.Type, p.Max)
		e.value(p.Type, p.Step)
	case FormEnum:
		if len(p.Enum) > 0xFFFF {
			return nil, fmt.Errorf("ObjectPropDesc %v: %d enumerated values; at most 65535", p.Code, len(p.Enum))
		}
		e.u16(uint16(len(p.Enum)))
		for _, v := range p.Enum {
			e.value(p.Type, v)
		}
	case FormFixedArray:
		e.u16(p.ArrayLength)
	case FormRegexp:
		e.str(p.Regexp)
	case FormByteArray, FormLongString:
		e.u32(p.MaxLength)
	default:
		return nil, fmt.Errorf("ObjectPropDesc %v: unknown form 0x%02X", p.Code, p.Form)
	}
	return e.b, e.err
}

// UnmarshalBinary decodes the dataset.
func (p *PropDesc) UnmarshalBinary(b []byte) error {
	r := decoder{b: b}
	*p = PropDesc{Code: PropCode(r.u16()), Type: DataType(r.u16())}
	p.Writable = r.u8() != 0
	p.Default = r.value(p.Type)
	p.Group = r.u32()
	p.Form = r.u8()
	switch p.Form {
	case FormNone, FormDateTime:
	case FormRange:
		p.Min, p.Max, p.Step = r.value(p.Type), r.value(p.Type), r.value(p.Type)
	case FormEnum:
		n := int(r.u16())
		// Each value takes at least one byte: never allocate beyond what arrived.
		if n > r.rest() {
			if r.err == nil {
				r.err = fmt.Errorf("%w: %d enumerated values in %d bytes", ErrMalformed, n, r.rest())
			}
			break
		}
		p.Enum = make([]Value, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			p.Enum = append(p.Enum, r.value(p.Type))
		}
	case FormFixedArray:
		p.ArrayLength = r.u16()
	case FormRegexp:
		p.Regexp = r.str()
	case FormByteArray, FormLongString:
		p.MaxLength = r.u32()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("%w: unknown form 0x%02X", ErrMalformed, p.Form)
		}
	}
	if r.err != nil {
		return fmt.Errorf("ObjectPropDesc: %w", r.err)
	}
	return nil
}

// PropListEntry is one element of an object property list: one property of one object.
type PropListEntry struct {
	Handle uint32
	Code   PropCode
	Value  Value // Value.Type is the element's data type
}

// PropList is the dataset GetObjectPropList returns.
type PropList []PropListEntry

// minPropListEntry is the smallest encoded element: handle, code, type and a one-byte value.
const minPropListEntry = 4 + 2 + 2 + 1

// MarshalBinary encodes the list.
func (l PropList) MarshalBinary() ([]byte, error) {
	var w PropListWriter
	for _, x := range l {
		w.Add(x.Handle, x.Code, x.Value)
	}
	return w.Bytes()
}

// PropListWriter encodes an ObjectPropList element by element, so that a responder answering
// for a whole folder never holds the list itself (a folder of a thousand objects is ten thousand
// elements). The zero value is ready to use.
type PropListWriter struct {
	e encoder
	n uint32
}

// Grow makes room for about n more elements.
func (w *PropListWriter) Grow(n int) {
	const typical = 24 // handle, code and type, then a number or a short string
	w.start()
	w.e.b = slices.Grow(w.e.b, n*typical)
}

func (w *PropListWriter) start() {
	if w.e.b == nil {
		w.e.u32(0) // the count, written by Bytes
	}
}

// Add appends one element: property code of object handle, with its value (v.Type is the
// element's data type).
func (w *PropListWriter) Add(handle uint32, code PropCode, v Value) {
	w.start()
	w.e.u32(handle)
	w.e.u16(uint16(code))
	w.e.u16(uint16(v.Type))
	w.e.value(v.Type, v)
	w.n++
}

// Bytes returns the encoded list.
func (w *PropListWriter) Bytes() ([]byte, error) {
	w.start()
	binary.LittleEndian.PutUint32(w.e.b, w.n)
	return w.e.b, w.e.err
}

// UnmarshalBinary decodes the list.
func (l *PropList) UnmarshalBinary(b []byte) error {
	var list PropList
	err := decodePropList(b, func(n int) { list = make(PropList, 0, n) }, func(x PropListEntry) {
		list = append(list, x)
	})
	if err != nil {
		return err
	}
	*l = list
	return nil
}

// EachPropListEntry decodes an ObjectPropList and calls fn with each element in order, without
// holding the list: a reader that keeps a few properties of each object keeps only those. fn
// may have been called for the elements before a malformed one.
func EachPropListEntry(b []byte, fn func(PropListEntry)) error {
	return decodePropList(b, func(int) {}, fn)
}

// decodePropList calls count with the number of elements (bounded by what b can hold), then
// elem with each.
func decodePropList(b []byte, count func(int), elem func(PropListEntry)) error {
	r := decoder{b: b}
	n := r.count(minPropListEntry, "ObjectPropList")
	count(n)
	for i := 0; i < n && r.err == nil; i++ {
		x := PropListEntry{Handle: r.u32(), Code: PropCode(r.u16())}
		x.Value = r.value(DataType(r.u16()))
		if r.err == nil {
			elem(x)
		}
	}
	if r.err != nil {
		return fmt.Errorf("ObjectPropList: %w", r.err)
	}
	return nil
}

// UnmarshalHandles decodes an array of object or storage handles, as GetObjectHandles and
// GetStorageIDs return.
func UnmarshalHandles(b []byte) ([]uint32, error) {
	r := decoder{b: b}
	v := r.u32s()
	if r.err != nil {
		return nil, fmt.Errorf("handle array: %w", r.err)
	}
	return v, nil
}

// MarshalHandles encodes an array of handles.
func MarshalHandles(v []uint32) []byte {
	var e encoder
	e.u32s(v)
	return e.b
}

// UnmarshalCodes decodes an array of UINT16 codes (GetObjectPropsSupported).
func UnmarshalCodes(b []byte) ([]uint16, error) {
	r := decoder{b: b}
	v := r.u16s()
	if r.err != nil {
		return nil, fmt.Errorf("code array: %w", r.err)
	}
	return v, nil
}

// MarshalCodes encodes an array of UINT16 codes.
func MarshalCodes[C ~uint16](v []C) []byte {
	var e encoder
	e.u16s(codes(v))
	return e.b
}

func codes[C ~uint16](v []C) []uint16 {
	if v == nil {
		return nil
	}
	out := make([]uint16, len(v))
	for i, c := range v {
		out[i] = uint16(c)
	}
	return out
}

func fromCodes[C ~uint16](v []uint16) []C {
	if v == nil {
		return nil
	}
	out := make([]C, len(v))
	for i, c := range v {
		out[i] = C(c)
	}
	return out
}
