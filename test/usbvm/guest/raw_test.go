//go:build usbvmguest

package guest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"

	"github.com/cradle-sync/cradle/device/mtp"
)

// raw speaks just enough MTP, byte by byte, to test the transport on its own: commands, data
// phases in both directions with 512 KiB transfers, responses. It counts bytes against the
// container length, accepts a missing zero-length packet and an empty read before the response,
// and keeps bytes of the next container that arrived in the same transfer.
type raw struct {
	t       mtp.Transport
	tid     uint32
	buf     []byte
	pending []byte
}

const (
	opGetDeviceInfo    = 0x1001
	opOpenSession      = 0x1002
	opCloseSession     = 0x1003
	opGetStorageIDs    = 0x1004
	opGetObjectHandles = 0x1007
	opGetObjectInfo    = 0x1008
	opGetObject        = 0x1009
	opDeleteObject     = 0x100B
	opSendObjectInfo   = 0x100C
	opSendObject       = 0x100D
	opGetPartialObject = 0x101B

	rcOK = 0x2001

	evObjectAdded = 0x4002

	containerCommand  = 1
	containerData     = 2
	containerResponse = 3
	containerEvent    = 4

	chunk = 512 << 10
)

func newRaw(t mtp.Transport) *raw {
	return &raw{t: t, buf: make([]byte, chunk)}
}

type response struct {
	Code   uint16
	TID    uint32
	Params []uint32
}

func (r *raw) command(ctx context.Context, code uint16, params ...uint32) error {
	r.tid++
	b := make([]byte, 12+4*len(params))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[4:], containerCommand)
	binary.LittleEndian.PutUint16(b[6:], code)
	binary.LittleEndian.PutUint32(b[8:], r.tid)
	for i, p := range params {
		binary.LittleEndian.PutUint32(b[12+4*i:], p)
	}
	n, err := r.t.BulkOut(ctx, b)
	if err != nil {
		return fmt.Errorf("command %#04x: %w", code, err)
	}
	if n != len(b) {
		return fmt.Errorf("command %#04x: wrote %d of %d bytes", code, n, len(b))
	}
	return nil
}

// read returns the next transfer's bytes (or bytes left over from the previous one).
func (r *raw) read(ctx context.Context) ([]byte, error) {
	if len(r.pending) > 0 {
		p := r.pending
		r.pending = nil
		return p, nil
	}
	n, err := r.t.BulkIn(ctx, r.buf)
	return r.buf[:n], err
}

// readContainer reads one container from bulk in: data goes to w (which may be nil for a
// response), and it returns the container's type, code and, for a response, its parameters.
func (r *raw) readContainer(ctx context.Context, w io.Writer) (typ uint16, resp response, n int64, err error) {
	var first []byte
	for {
		first, err = r.read(ctx)
		if err != nil {
			return 0, resp, 0, err
		}
		if len(first) > 0 {
			break // an empty read is the zero-length packet that ends an aligned data phase
		}
	}
	if len(first) < 12 {
		return 0, resp, 0, fmt.Errorf("short container: %d bytes", len(first))
	}
	length := int64(binary.LittleEndian.Uint32(first[0:]))
	typ = binary.LittleEndian.Uint16(first[4:])
	resp.Code = binary.LittleEndian.Uint16(first[6:])
	resp.TID = binary.LittleEndian.Uint32(first[8:])
	if resp.TID != r.tid {
		return typ, resp, 0, fmt.Errorf("container for transaction %d, want %d", resp.TID, r.tid)
	}
	body := first[12:]
	total := int64(len(first))
	for {
		if total > length {
			extra := total - length
			r.pending = append([]byte(nil), body[int64(len(body))-extra:]...)
			body = body[:int64(len(body))-extra]
			total = length
		}
		if typ == containerResponse {
			for i := 0; i+4 <= len(body); i += 4 {
				resp.Params = append(resp.Params, binary.LittleEndian.Uint32(body[i:]))
			}
		} else if w != nil {
			if _, err := w.Write(body); err != nil {
				return typ, resp, n, err
			}
		}
		n += int64(len(body))
		if total == length {
			return typ, resp, n, nil
		}
		next, err := r.read(ctx)
		if err != nil {
			return typ, resp, n, err
		}
		if len(next) == 0 {
			return typ, resp, n, fmt.Errorf("data phase ended after %d of %d bytes", total, length)
		}
		body = next
		total += int64(len(next))
	}
}

// transact runs an operation without a data-out phase; a data-in phase goes to w.
func (r *raw) transact(ctx context.Context, w io.Writer, code uint16, params ...uint32) (response, int64, error) {
	if err := r.command(ctx, code, params...); err != nil {
		return response{}, 0, err
	}
	var n int64
	for {
		typ, resp, m, err := r.readContainer(ctx, w)
		if err != nil {
			return resp, n, fmt.Errorf("operation %#04x: %w", code, err)
		}
		switch typ {
		case containerData:
			n += m
			continue
		case containerResponse:
			if resp.Code != rcOK {
				return resp, n, fmt.Errorf("operation %#04x: response %#04x", code, resp.Code)
			}
			return resp, n, nil
		default:
			return resp, n, fmt.Errorf("operation %#04x: unexpected container type %d", code, typ)
		}
	}
}

// transactOut runs an operation with a data-out phase of size bytes from src: the 12-byte header
// inside the first 512 KiB write, then 512 KiB writes, then a zero-length packet when the phase
// ends on a packet boundary.
func (r *raw) transactOut(ctx context.Context, src io.Reader, size int64, code uint16, params ...uint32) (response, error) {
	if err := r.command(ctx, code, params...); err != nil {
		return response{}, err
	}
	total := 12 + size
	if total > 0xFFFFFFFF {
		total = 0xFFFFFFFF
	}
	buf := r.buf
	binary.LittleEndian.PutUint32(buf[0:], uint32(total))
	binary.LittleEndian.PutUint16(buf[4:], containerData)
	binary.LittleEndian.PutUint16(buf[6:], code)
	binary.LittleEndian.PutUint32(buf[8:], r.tid)
	fill := 12
	var sent int64
	left := size
	for {
		want := len(buf) - fill
		if int64(want) > left {
			want = int(left)
		}
		if _, err := io.ReadFull(src, buf[fill:fill+want]); err != nil {
			return response{}, fmt.Errorf("operation %#04x: read source: %w", code, err)
		}
		left -= int64(want)
		n, err := r.t.BulkOut(ctx, buf[:fill+want])
		sent += int64(n)
		if err != nil {
			return response{}, fmt.Errorf("operation %#04x: data out after %d bytes: %w", code, sent, err)
		}
		fill = 0
		if left == 0 {
			break
		}
	}
	if (12+size)%int64(r.t.MaxPacket()) == 0 {
		if _, err := r.t.BulkOut(ctx, nil); err != nil {
			return response{}, fmt.Errorf("operation %#04x: zero-length packet: %w", code, err)
		}
	}
	typ, resp, _, err := r.readContainer(ctx, nil)
	if err != nil {
		return resp, fmt.Errorf("operation %#04x: %w", code, err)
	}
	if typ != containerResponse || resp.Code != rcOK {
		return resp, fmt.Errorf("operation %#04x: response type %d code %#04x", code, typ, resp.Code)
	}
	return resp, nil
}

// Dataset decoding, only what the tests look at.

type dataset struct {
	b   []byte
	off int
	err error
}

func (d *dataset) u8() uint8 {
	if d.err != nil || d.off+1 > len(d.b) {
		d.err = errors.New("dataset too short")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *dataset) u16() uint16 {
	if d.err != nil || d.off+2 > len(d.b) {
		d.err = errors.New("dataset too short")
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *dataset) u32() uint32 {
	if d.err != nil || d.off+4 > len(d.b) {
		d.err = errors.New("dataset too short")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *dataset) u16s() []uint16 {
	n := d.u32()
	var out []uint16
	for i := uint32(0); i < n && d.err == nil; i++ {
		out = append(out, d.u16())
	}
	return out
}

func (d *dataset) u32s() []uint32 {
	n := d.u32()
	var out []uint32
	for i := uint32(0); i < n && d.err == nil; i++ {
		out = append(out, d.u32())
	}
	return out
}

func (d *dataset) str() string {
	n := int(d.u8())
	var u []uint16
	for i := 0; i < n && d.err == nil; i++ {
		u = append(u, d.u16())
	}
	if len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

func encodeStr(s string) []byte {
	if s == "" {
		return []byte{0}
	}
	u := append(utf16.Encode([]rune(s)), 0)
	b := []byte{byte(len(u))}
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

type deviceInfo struct {
	StandardVersion uint16
	Operations      []uint16
	Manufacturer    string
	Model           string
	Serial          string
}

func parseDeviceInfo(b []byte) (deviceInfo, error) {
	d := &dataset{b: b}
	var di deviceInfo
	di.StandardVersion = d.u16()
	d.u32() // vendor extension id
	d.u16() // vendor extension version
	d.str() // vendor extension description
	d.u16() // functional mode
	di.Operations = d.u16s()
	d.u16s() // events
	d.u16s() // device properties
	d.u16s() // capture formats
	d.u16s() // playback formats
	di.Manufacturer = d.str()
	di.Model = d.str()
	d.str() // device version
	di.Serial = d.str()
	return di, d.err
}

type objectInfo struct {
	Storage  uint32
	Format   uint16
	Size     uint32
	Parent   uint32
	Name     string
	Modified string
}

func parseObjectInfo(b []byte) (objectInfo, error) {
	d := &dataset{b: b}
	var oi objectInfo
	oi.Storage = d.u32()
	oi.Format = d.u16()
	d.u16() // protection
	oi.Size = d.u32()
	d.u16() // thumb format
	for i := 0; i < 6; i++ {
		d.u32() // thumb size, width, height, image width, height, depth
	}
	oi.Parent = d.u32()
	d.u16() // association type
	d.u32() // association description
	d.u32() // sequence number
	oi.Name = d.str()
	d.str() // created
	oi.Modified = d.str()
	return oi, d.err
}

// encodeObjectInfo builds the ObjectInfo dataset SendObjectInfo sends.
func encodeObjectInfo(storage uint32, format uint16, size uint32, name string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, storage)
	b = binary.LittleEndian.AppendUint16(b, format)
	b = binary.LittleEndian.AppendUint16(b, 0) // protection
	b = binary.LittleEndian.AppendUint32(b, size)
	b = binary.LittleEndian.AppendUint16(b, 0) // thumb format
	for i := 0; i < 6; i++ {
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, 0) // parent (given as a parameter)
	b = binary.LittleEndian.AppendUint16(b, 0) // association type
	b = binary.LittleEndian.AppendUint32(b, 0) // association description
	b = binary.LittleEndian.AppendUint32(b, 0) // sequence number
	b = append(b, encodeStr(name)...)
	b = append(b, encodeStr("")...) // created
	b = append(b, encodeStr("")...) // modified
	b = append(b, encodeStr("")...) // keywords
	return b
}
