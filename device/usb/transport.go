package usb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gousb"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/mtp"
)

// Transport carries MTP over one claimed USB interface: bulk out, bulk in and interrupt in, with
// gousb (libusb). It implements mtp.Transport. An interface without an interrupt endpoint (some
// cameras) gives a transport whose Interrupt reports no events.
//
// Each BulkIn and BulkOut is one libusb transfer of the caller's whole buffer: libusb and the
// kernel split it into packets, and a 512 KiB read costs one round trip through libusb instead of
// thirty-two. Reads whose length is not a multiple of the endpoint's packet size go through a
// rounded-up buffer, so a device that sends a full packet never overflows them.
//
// Concurrency: BulkIn, BulkOut and Reset from one goroutine at a time (the initiator's transaction
// lock), Interrupt concurrently with them from another, Close from any goroutine at any time.
// After Close, or once the device is gone, every call returns an error wrapping
// mtp.ErrTransportClosed (and device.ErrDisconnected when the device went away).
type Transport struct {
	usb  *gousb.Context // owned: one context per opened device
	dev  *gousb.Device
	cfg  *gousb.Config
	intf *gousb.Interface
	in   *gousb.InEndpoint
	out  *gousb.OutEndpoint
	evt  *gousb.InEndpoint

	iface     int
	m         mtpInterface
	maxPacket int // bulk packet size
	// epMu is held for reading by every transfer and request, and for writing by ResetDevice
	// while it replaces the configuration, the interface and the endpoints.
	epMu      sync.RWMutex
	evtPacket int // interrupt packet size

	// closeCtx is cancelled by Close: every transfer in flight is cancelled with it.
	closeCtx context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	closeErr error

	gone atomic.Bool // the device went away

	// lastTID is the transaction ID of the last command container written, for the PTP cancel
	// request in Reset.
	lastTID atomic.Uint32
	// halted records endpoints that answered with a stall since the last Reset.
	halted sync.Map // gousb.EndpointAddress -> struct{}

	// leftover holds bytes of a bulk-in transfer that did not fit the caller's short buffer.
	leftover []byte
}

var _ mtp.Transport = (*Transport)(nil)

// interruptSlice bounds one interrupt read: QEMU's xHCI never completes an interrupt transfer that
// stays pending for long, so Interrupt re-submits its read this often (real devices do not mind).
const interruptSlice = 250 * time.Millisecond

// controlTimeout bounds one control request when the caller's context has no earlier deadline.
const controlTimeout = 5 * time.Second

// PTP still-image class requests (USB Still Image Capture Device Definition, 5.2).
const (
	reqCancel          = 0x64
	reqGetDeviceStatus = 0x67
	cancelCode         = 0x4001 // PTP "cancel transaction" event code
	respOK             = 0x2001
	respDeviceBusy     = 0x2019
	respTxCancelled    = 0x201F
)

// newTransport claims the interface described by m on dev (which belongs to usbctx) and opens its
// endpoints. On error the caller still owns dev and usbctx.
func newTransport(usbctx *gousb.Context, dev *gousb.Device, m mtpInterface) (*Transport, error) {
	cfg, err := dev.Config(m.Config)
	if err != nil {
		return nil, fmt.Errorf("select configuration %d: %w", m.Config, libusbErr(err))
	}
	intf, err := cfg.Interface(m.Number, m.Alt)
	if err != nil {
		cfg.Close()
		return nil, fmt.Errorf("claim interface %d: %w", m.Number, libusbErr(err))
	}
	t, err := openEndpoints(intf, m)
	if err != nil {
		intf.Close()
		cfg.Close()
		return nil, fmt.Errorf("open endpoints of interface %d: %w", m.Number, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.usb, t.dev, t.cfg, t.intf = usbctx, dev, cfg, intf
	t.iface, t.m, t.maxPacket, t.evtPacket = m.Number, m, m.MaxPacket, m.InterruptPacket
	t.closeCtx, t.cancel = ctx, cancel
	if t.maxPacket <= 0 {
		t.maxPacket = 512
	}
	if t.evtPacket <= 0 {
		t.evtPacket = 64
	}
	return t, nil
}

// openEndpoints opens the interface's bulk endpoints and its interrupt endpoint, if it has one.
func openEndpoints(intf *gousb.Interface, m mtpInterface) (*Transport, error) {
	in, err := intf.InEndpoint(int(m.BulkIn & 0x0f))
	if err != nil {
		return nil, err
	}
	out, err := intf.OutEndpoint(int(m.BulkOut & 0x0f))
	if err != nil {
		return nil, err
	}
	t := &Transport{in: in, out: out}
	if m.Interrupt != 0 {
		if t.evt, err = intf.InEndpoint(int(m.Interrupt & 0x0f)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// MaxPacket is the bulk endpoints' packet size (512 at high speed).
func (t *Transport) MaxPacket() int { return t.maxPacket }

// begin registers a call in flight and returns its context, cancelled by ctx or by Close.
func (t *Transport) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err // a transfer submitted now could complete before the cancel
	}
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return nil, nil, t.closedErr()
	}
	t.inflight.Add(1)
	t.closeMu.Unlock()
	t.epMu.RLock()
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.closeCtx, cancel)
	return cctx, func() {
		stop()
		cancel()
		t.epMu.RUnlock()
		t.inflight.Done()
	}, nil
}

func (t *Transport) closedErr() error {
	if t.gone.Load() {
		return fmt.Errorf("%w: %w", device.ErrDisconnected, mtp.ErrTransportClosed)
	}
	return mtp.ErrTransportClosed
}

// transferErr turns a gousb transfer error into the transport's contract: the caller's context
// error, ErrTransportClosed after Close, ErrDisconnected when the device left.
func (t *Transport) transferErr(ctx context.Context, op string, ep gousb.EndpointAddress, err error) error {
	if err == nil {
		return nil
	}
	if isNoDevice(err) {
		t.gone.Store(true)
		return fmt.Errorf("%s: %w: %w", op, device.ErrDisconnected, mtp.ErrTransportClosed)
	}
	if errors.Is(err, gousb.TransferCancelled) || ctx.Err() != nil {
		if t.closeCtx.Err() != nil {
			return fmt.Errorf("%s: %w", op, t.closedErr())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
	}
	if errors.Is(err, gousb.TransferStall) || errors.Is(err, gousb.ErrorPipe) {
		t.halted.Store(ep, struct{}{})
		return fmt.Errorf("%s: endpoint %s stalled: %w", op, ep, ErrStall)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ErrStall says an endpoint answered with a stall (the device refused the transfer); Reset
// clears it.
var ErrStall = mtp.ErrStall

func isNoDevice(err error) bool {
	return errors.Is(err, gousb.TransferNoDevice) || errors.Is(err, gousb.ErrorNoDevice)
}

// BulkOut writes p as one transfer. An empty p sends a zero-length packet (ends a data phase
// whose length is a multiple of MaxPacket, for devices that need it).
func (t *Transport) BulkOut(ctx context.Context, p []byte) (int, error) {
	cctx, done, err := t.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("bulk out: %w", err)
	}
	defer done()
	// Remember the transaction of a command container (type 1) for Reset's cancel request.
	if len(p) >= 12 && binary.LittleEndian.Uint16(p[4:]) == 1 {
		t.lastTID.Store(binary.LittleEndian.Uint32(p[8:]))
	}
	n, err := t.out.WriteContext(cctx, p)
	return n, t.transferErr(cctx, "bulk out", t.out.Desc.Address, err)
}

// BulkIn reads up to len(p) bytes of one transfer; a short count ends the transfer. An empty
// read is a zero-length packet.
func (t *Transport) BulkIn(ctx context.Context, p []byte) (int, error) {
	if len(t.leftover) > 0 {
		n := copy(p, t.leftover)
		t.leftover = t.leftover[n:]
		return n, nil
	}
	cctx, done, err := t.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("bulk in: %w", err)
	}
	defer done()
	buf := p
	if r := len(p) % t.maxPacket; r != 0 || len(p) == 0 {
		// A device may send a whole packet; give libusb room for it.
		buf = make([]byte, len(p)+t.maxPacket-r)
	}
	n, err := t.in.ReadContext(cctx, buf)
	if len(buf) != len(p) {
		if n > len(p) {
			t.leftover = append([]byte(nil), buf[len(p):n]...)
			n = copy(p, buf[:n])
		} else {
			copy(p, buf[:n])
		}
	}
	return n, t.transferErr(cctx, "bulk in", t.in.Desc.Address, err)
}

// Interrupt reads one event packet. It re-submits its read every 250 ms until one completes or ctx
// is done, and then returns an error wrapping ctx's error (context.DeadlineExceeded for the event
// loop's short deadlines).
func (t *Transport) Interrupt(ctx context.Context, p []byte) (int, error) {
	cctx, done, err := t.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("interrupt in: %w", err)
	}
	defer done()
	if t.evt == nil {
		// An interface without an interrupt endpoint reports no events.
		<-cctx.Done()
		if t.closeCtx.Err() != nil {
			return 0, fmt.Errorf("interrupt in: %w", t.closedErr())
		}
		return 0, fmt.Errorf("interrupt in: %w", cctx.Err())
	}
	buf := p
	if len(p) < t.evtPacket {
		buf = make([]byte, t.evtPacket)
	}
	for {
		sctx, cancel := context.WithTimeout(cctx, interruptSlice)
		n, err := t.evt.ReadContext(sctx, buf)
		sliceOver := sctx.Err() != nil
		cancel()
		if err == nil {
			if len(buf) != len(p) {
				if n > len(p) {
					return copy(p, buf[:n]), fmt.Errorf("interrupt in: event of %d bytes does not fit a %d-byte buffer", n, len(p))
				}
				copy(p, buf[:n])
			}
			return n, nil
		}
		if errors.Is(err, gousb.TransferCancelled) && n > 0 {
			// The packet arrived as the read was cancelled: deliver it.
			if len(buf) != len(p) {
				n = copy(p, buf[:n])
			}
			return n, nil
		}
		if errors.Is(err, gousb.TransferCancelled) && sliceOver && cctx.Err() == nil {
			continue // our own slice ended: re-submit
		}
		return n, t.transferErr(cctx, "interrupt in", t.evt.Desc.Address, err)
	}
}

// Reset asks the device to abandon the current transaction: the PTP class "cancel request" for the
// last command's transaction, then "get device status" until the device is ready, then a clear
// of any endpoint that stalled. A device that refuses the cancel request (stall) gets the
// clear-halts alone.
func (t *Transport) Reset(ctx context.Context) error {
	cctx, done, err := t.begin(ctx)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	defer done()
	t.leftover = nil
	var cancelErr error
	req := make([]byte, 6)
	binary.LittleEndian.PutUint16(req[0:], cancelCode)
	binary.LittleEndian.PutUint32(req[2:], t.lastTID.Load())
	if _, err := t.control(cctx, 0x21, reqCancel, 0, uint16(t.iface), req); err != nil {
		if isNoDevice(err) {
			t.gone.Store(true)
			return fmt.Errorf("reset: %w: %w", device.ErrDisconnected, mtp.ErrTransportClosed)
		}
		cancelErr = err
	}
	if cancelErr == nil {
		if err := t.waitReady(cctx); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	cleared := 0
	var clearErr error
	t.halted.Range(func(k, _ any) bool {
		ep := k.(gousb.EndpointAddress)
		// CLEAR_FEATURE(ENDPOINT_HALT) to the endpoint.
		if _, err := t.control(cctx, 0x02, 0x01, 0, uint16(ep), nil); err != nil {
			clearErr = fmt.Errorf("clear halt of endpoint %s: %w", ep, err)
			return false
		}
		t.halted.Delete(ep)
		cleared++
		return true
	})
	if clearErr != nil {
		return fmt.Errorf("reset: %w", clearErr)
	}
	if cancelErr != nil && cleared == 0 {
		return fmt.Errorf("reset: the device refused the cancel request (%v) and no endpoint is halted: %w", cancelErr, device.ErrUnsupported)
	}
	return nil
}

// ResetDevice resets the USB device (a port reset), the last resort for a device that stopped
// answering even after a cancel request: the device drops its session and what it was doing.
// libusb resets only a device without a claimed configuration: the interface and the
// configuration are released, the device reset, and both claimed again with fresh endpoints
// (transfers wait meanwhile). A device that does not come back as the same one is gone: it is
// opened anew when the next scan sees it.
func (t *Transport) ResetDevice(ctx context.Context) error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return fmt.Errorf("reset the USB device: %w", t.closedErr())
	}
	t.inflight.Add(1)
	t.closeMu.Unlock()
	defer t.inflight.Done()
	t.epMu.Lock()
	defer t.epMu.Unlock()
	t.leftover = nil
	gone := func(err error) error {
		t.gone.Store(true)
		t.intf, t.cfg = nil, nil
		return fmt.Errorf("reset the USB device: %v: %w: %w", err, device.ErrDisconnected, mtp.ErrTransportClosed)
	}
	t.intf.Close()
	if err := t.cfg.Close(); err != nil {
		return gone(err)
	}
	t.intf, t.cfg = nil, nil
	if err := t.dev.Reset(); err != nil {
		return gone(err)
	}
	cfg, err := t.dev.Config(t.m.Config)
	if err != nil {
		return gone(err)
	}
	intf, err := cfg.Interface(t.m.Number, t.m.Alt)
	if err != nil {
		cfg.Close()
		return gone(err)
	}
	eps, err := openEndpoints(intf, t.m)
	if err != nil {
		intf.Close()
		cfg.Close()
		return gone(err)
	}
	t.cfg, t.intf, t.in, t.out, t.evt = cfg, intf, eps.in, eps.out, eps.evt
	t.halted.Clear()
	return nil
}

var _ mtp.DeviceResetter = (*Transport)(nil)

// waitReady polls the PTP "get device status" request until the device answers OK, as the class
// specification asks after a cancel. Devices without the request (QEMU's stalls it) are taken to be
// ready. Endpoints the device reports halted are marked for clearing.
func (t *Transport) waitReady(ctx context.Context) error {
	buf := make([]byte, 64)
	for {
		n, err := t.control(ctx, 0xA1, reqGetDeviceStatus, 0, uint16(t.iface), buf)
		if err != nil {
			if isNoDevice(err) {
				t.gone.Store(true)
				return fmt.Errorf("%w: %w", device.ErrDisconnected, mtp.ErrTransportClosed)
			}
			return nil // not supported: nothing to wait for
		}
		if n < 4 {
			return nil
		}
		length := int(binary.LittleEndian.Uint16(buf[0:]))
		code := binary.LittleEndian.Uint16(buf[2:])
		if length > n {
			length = n
		}
		for off := 4; off+4 <= length; off += 4 {
			ep := gousb.EndpointAddress(binary.LittleEndian.Uint32(buf[off:]))
			if ep == t.in.Desc.Address || ep == t.out.Desc.Address || (t.evt != nil && ep == t.evt.Desc.Address) {
				t.halted.Store(ep, struct{}{})
			}
		}
		switch code {
		case respDeviceBusy, respTxCancelled:
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for the device after cancel: %w", ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		default:
			return nil // OK, or a code we cannot wait on
		}
	}
}

// control runs one control request, bounded by ctx's deadline (gousb's control requests take a
// timeout, not a context).
func (t *Transport) control(ctx context.Context, rType, req uint8, val, idx uint16, data []byte) (int, error) {
	timeout := controlTimeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return 0, ctx.Err()
	}
	if timeout < time.Millisecond {
		timeout = time.Millisecond
	}
	t.dev.ControlTimeout = timeout
	return t.dev.Control(rType, req, val, idx, data)
}

// Close cancels transfers in flight, waits for them, and releases the interface, the
// configuration, the device and its libusb context. It is safe to call more than once.
func (t *Transport) Close() error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return t.closeErr
	}
	t.closed = true
	t.closeMu.Unlock()
	t.cancel()
	t.inflight.Wait()
	var errs []error
	if t.intf != nil {
		t.intf.Close()
		if err := t.cfg.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := t.dev.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := t.usb.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.closeErr = fmt.Errorf("close usb device: %w", err)
	}
	return t.closeErr
}
