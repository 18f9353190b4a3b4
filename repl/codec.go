package repl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The handle file and snapshots share one small binary vocabulary: uvarints, length-prefixed
// strings, 16-byte replica IDs. The decoder never panics and never allocates more than the input
// could justify: every count is checked against the bytes left.

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed data")

func appendUvarint(b []byte, x uint64) []byte { return binary.AppendUvarint(b, x) }

func appendVarint(b []byte, x int64) []byte { return binary.AppendVarint(b, x) }

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVersion(b []byte, v Version) []byte {
	b = append(b, v.Replica[:]...)
	return appendUvarint(b, v.Tick)
}

func appendVector(b []byte, vv Vector) []byte {
	b = appendUvarint(b, uint64(len(vv)))
	for _, v := range vv {
		b = appendVersion(b, v)
	}
	return b
}

// decoder reads from b; after the first error every read returns zero values and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errMalformed)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytesN(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail("truncated: want %d bytes, have %d", n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// count reads a count of items that take at least minSize bytes each, refusing counts the
// remaining input cannot hold (so a hostile count cannot make us allocate).
func (d *decoder) count(minSize int) int {
	x := d.uvarint()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if x > uint64(len(d.b)/minSize) || x > math.MaxInt32 {
		d.fail("count %d exceeds the %d bytes left", x, len(d.b))
		return 0
	}
	return int(x)
}

func (d *decoder) string() string {
	n := d.count(1)
	return string(d.bytesN(n))
}

func (d *decoder) replica() ReplicaID {
	var r ReplicaID
	copy(r[:], d.bytesN(16))
	return r
}

func (d *decoder) version() Version {
	return Version{Replica: d.replica(), Tick: d.uvarint()}
}

func (d *decoder) vector() Vector {
	n := d.count(17)
	if n == 0 {
		return nil
	}
	vv := make(Vector, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		v := d.version()
		if v.Tick == 0 {
			d.fail("zero tick in a vector")
		}
		if i > 0 && bytes.Compare(vv[i-1].Replica[:], v.Replica[:]) >= 0 {
			d.fail("vector not sorted")
		}
		vv = append(vv, v)
	}
	if d.err != nil {
		return nil
	}
	return vv
}
