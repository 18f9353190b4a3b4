package mtp

import (
	"encoding/binary"
	"fmt"
)

// ContainerType says what a container carries.
type ContainerType uint16

// Container types of the PTP/MTP USB transport.
const (
	ContainerCommand  ContainerType = 1
	ContainerData     ContainerType = 2
	ContainerResponse ContainerType = 3
	ContainerEvent    ContainerType = 4
)

// String returns the container type's name.
func (t ContainerType) String() string {
	switch t {
	case ContainerCommand:
		return "command"
	case ContainerData:
		return "data"
	case ContainerResponse:
		return "response"
	case ContainerEvent:
		return "event"
	}
	return fmt.Sprintf("unknown container type %d", uint16(t))
}

const (
	// HeaderSize is the length of every container's header.
	HeaderSize = 12
	// MaxParams is the most parameters a command or response carries (events carry 3).
	MaxParams = 5
	// LengthUnknown is the container length a device sends for a data phase longer than 4 GiB;
	// the data then ends with a short packet.
	LengthUnknown = 0xFFFFFFFF
)

// Header is the 12-byte header that starts every container (little-endian).
type Header struct {
	// Length is the whole container's length, header included; LengthUnknown for a data phase
	// over 4 GiB.
	Length        uint32
	Type          ContainerType
	Code          uint16
	TransactionID uint32
}

// AppendBinary appends the header's 12 bytes to b.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	b = binary.LittleEndian.AppendUint16(b, uint16(h.Type))
	b = binary.LittleEndian.AppendUint16(b, h.Code)
	b = binary.LittleEndian.AppendUint32(b, h.TransactionID)
	return b, nil
}

// ParseHeader reads a container header from the first 12 bytes of b. It checks the type and that
// the length covers at least the header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: container of %d bytes is shorter than its %d-byte header", ErrMalformed, len(b), HeaderSize)
	}
	h := Header{
		Length:        binary.LittleEndian.Uint32(b),
		Type:          ContainerType(binary.LittleEndian.Uint16(b[4:])),
		Code:          binary.LittleEndian.Uint16(b[6:]),
		TransactionID: binary.LittleEndian.Uint32(b[8:]),
	}
	if h.Type < ContainerCommand || h.Type > ContainerEvent {
		return h, fmt.Errorf("%w: %v", ErrMalformed, h.Type)
	}
	if h.Length < HeaderSize {
		return h, fmt.Errorf("%w: %v container claims %d bytes, less than its header", ErrMalformed, h.Type, h.Length)
	}
	return h, nil
}

// Container is a command, response or event container: a header and up to five UINT32
// parameters. Data containers carry a dataset instead and are read as a stream.
type Container struct {
	Type          ContainerType
	Code          uint16
	TransactionID uint32
	Params        []uint32
}

// MarshalBinary encodes the container.
func (c Container) MarshalBinary() ([]byte, error) {
	if len(c.Params) > MaxParams {
		return nil, fmt.Errorf("%v container with %d parameters; at most %d", c.Type, len(c.Params), MaxParams)
	}
	n := HeaderSize + 4*len(c.Params)
	b, _ := Header{Length: uint32(n), Type: c.Type, Code: c.Code, TransactionID: c.TransactionID}.AppendBinary(make([]byte, 0, n))
	for _, p := range c.Params {
		b = binary.LittleEndian.AppendUint32(b, p)
	}
	return b, nil
}

// UnmarshalBinary decodes a command, response or event container. Bytes after the length the
// header gives are ignored; a length beyond b, a data container, or more than five parameters are
// errors. A length that is not a whole number of parameters is tolerated (the partial one is
// dropped), as some devices pad.
func (c *Container) UnmarshalBinary(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Type == ContainerData {
		return fmt.Errorf("%w: data container where a command, response or event was expected", ErrMalformed)
	}
	if int64(h.Length) > int64(len(b)) {
		return fmt.Errorf("%w: %v container claims %d bytes, %d arrived", ErrMalformed, h.Type, h.Length, len(b))
	}
	n := (int(h.Length) - HeaderSize) / 4
	if n > MaxParams {
		return fmt.Errorf("%w: %v container with %d parameters; at most %d", ErrMalformed, h.Type, n, MaxParams)
	}
	*c = Container{Type: h.Type, Code: h.Code, TransactionID: h.TransactionID}
	if n > 0 {
		c.Params = make([]uint32, n)
		for i := range c.Params {
			c.Params[i] = binary.LittleEndian.Uint32(b[HeaderSize+4*i:])
		}
	}
	return nil
}

// Param returns parameter i, or 0 when the container has fewer.
func (c Container) Param(i int) uint32 {
	if i < len(c.Params) {
		return c.Params[i]
	}
	return 0
}
