package mtp

import (
	"context"
	"errors"
)

// Transport carries MTP's three pipes: bulk out (commands and data to the device), bulk in (data
// and responses from it) and interrupt in (events). device/usb implements it over gousb;
// device/emulator implements it in-process with a responder behind it. The initiator in this
// package is the only user.
//
// Packet semantics follow USB bulk transfers: a read returns at most len(p) bytes of one
// transfer; a transfer ends with a short packet (less than MaxPacket bytes) or, when it ends on a
// packet boundary, with a zero-length packet that some devices never send (QEMU's usb-mtp). The
// initiator therefore counts bytes against the container length and also accepts an empty read.
//
// Concurrency: the initiator uses BulkOut/BulkIn from one goroutine at a time (it holds its
// transaction lock) and Interrupt from its event goroutine, concurrently with bulk transfers.
type Transport interface {
	// BulkOut writes p as one transfer (the transport may split it into packets).
	BulkOut(ctx context.Context, p []byte) (int, error)
	// BulkIn reads up to len(p) bytes; a short count ends the current transfer.
	BulkIn(ctx context.Context, p []byte) (int, error)
	// Interrupt reads one event packet. It returns an error wrapping context.DeadlineExceeded
	// when ctx's deadline passes first; the event loop reads with short deadlines in a loop.
	Interrupt(ctx context.Context, p []byte) (int, error)
	// MaxPacket is the bulk endpoints' packet size (512 for high speed).
	MaxPacket() int
	// Reset asks the device to abandon the current transaction (MTP class request "cancel" or a
	// clear-halt) after an error or a cancelled transfer; ErrUnsupported when it cannot.
	Reset(ctx context.Context) error
	// Close releases the transport. Pending calls return ErrTransportClosed.
	Close() error
}

// ErrTransportClosed is returned by a Transport after Close or after the device went away.
var ErrTransportClosed = errors.New("mtp transport closed")

// ErrStall is wrapped by a Transport's error when the device refused a transfer with a stall
// (USB STALL, LIBUSB_ERROR_PIPE); Reset clears it.
var ErrStall = errors.New("endpoint stalled")
