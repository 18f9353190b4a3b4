package usb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/google/gousb"

	"github.com/cradle-sync/cradle/device"
)

// Found is a USB device that offers an MTP interface, or looks like a phone that does not offer
// one now (locked to charging only), as Scan saw it.
type Found struct {
	// Key identifies the attachment: port path and address ("usb:1-2.4:7"). A device plugged in
	// again gets a new address and so a new key.
	Key string
	// Label names the device for messages: "Google Pixel 7 (18d1:4ee1)".
	Label        string
	Node         string // /dev/bus/usb/BBB/DDD
	Bus, Address int
	Vendor       uint16
	Product      uint16
	Manufacturer string
	ProductName  string
	Serial       string // the USB serial number; "" when unknown
	// MTP is true when an MTP interface was found; Interface describes it.
	MTP       bool
	Interface string

	dev usbDevice
	mtp mtpInterface
}

// newContext returns a fresh libusb context. A new context enumerates afresh: libusb learns of
// hot-plugged devices only through udevd, which may not run (containers, minimal systems), so
// every scan uses its own. gousb panics when libusb cannot start; that becomes an error.
func newContext() (c *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("USB is not available on this computer: libusb failed to start: %v", r)
		}
	}()
	return gousb.NewContext(), nil
}

// Scan enumerates the USB devices attached now and returns those that offer an MTP interface
// (class 6/1/1, or vendor-specific and named "MTP") or look like a phone without one. It reads
// names from sysfs and opens a device only when sysfs cannot tell whether a vendor-specific
// interface is MTP.
func Scan(ctx context.Context) ([]Found, error) {
	devs, err := enumerate()
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f, ok := classify(ctx, d); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// enumerate lists the attached devices, hubs left out, from a fresh context.
func enumerate() ([]usbDevice, error) {
	c, err := newContext()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var devs []usbDevice
	_, err = c.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		if desc.Class != gousb.ClassHub {
			devs = append(devs, fromDesc(desc))
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("list USB devices: %w", err)
	}
	return devs, nil
}

// classify decides whether d is of interest and fills in a Found.
func classify(ctx context.Context, d usbDevice) (Found, bool) {
	readSysfs(&d)
	m, ok, needName := findMTP(d)
	if !ok && needName {
		// Ask the device for its interface names (Android's MTP interface is vendor-specific and
		// recognised by its name). Without permission to open it, the interface stays unknown.
		if readNames(ctx, &d) {
			m, ok, _ = findMTP(d)
		}
	}
	if !ok && !looksLikePhone(d) {
		return Found{}, false
	}
	f := Found{
		Key: d.key(), Label: d.label(), Node: d.node(),
		Bus: d.Bus, Address: d.Address, Vendor: d.Vendor, Product: d.Product,
		Manufacturer: d.Manufacturer, ProductName: d.ProductName, Serial: d.Serial,
		MTP: ok, dev: d, mtp: m,
	}
	if ok {
		f.Interface = m.String()
	}
	return f, true
}

// readNames opens d briefly to read its strings and interface names. It reports whether it could.
func readNames(ctx context.Context, d *usbDevice) bool {
	c, dev, err := openDevice(d)
	if err != nil {
		return false
	}
	defer c.Close()
	defer dev.Close()
	fillStrings(dev, d)
	return true
}

// fillStrings reads the strings sysfs did not provide from the open device.
func fillStrings(dev *gousb.Device, d *usbDevice) {
	if d.Manufacturer == "" {
		d.Manufacturer, _ = dev.Manufacturer()
	}
	if d.ProductName == "" {
		d.ProductName, _ = dev.Product()
	}
	if d.Serial == "" {
		d.Serial, _ = dev.SerialNumber()
	}
	if d.ActiveConfig == 0 {
		if n, err := dev.ActiveConfigNum(); err == nil {
			d.ActiveConfig = n
		}
	}
	for i := range d.Interfaces {
		it := &d.Interfaces[i]
		if it.Name == "" && it.Class == classVendor {
			it.Name, _ = dev.InterfaceDescription(it.Config, it.Number, it.Alt)
		}
	}
}

// openDevice opens the device at d's bus and address in a fresh context. The caller closes both.
func openDevice(d *usbDevice) (*gousb.Context, *gousb.Device, error) {
	c, err := newContext()
	if err != nil {
		return nil, nil, err
	}
	devs, err := c.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		return desc.Bus == d.Bus && desc.Address == d.Address &&
			uint16(desc.Vendor) == d.Vendor && uint16(desc.Product) == d.Product
	})
	if len(devs) == 0 {
		c.Close()
		if err == nil {
			err = fmt.Errorf("%s: %w", d.node(), device.ErrDisconnected)
		}
		return nil, nil, err
	}
	for _, extra := range devs[1:] {
		extra.Close()
	}
	return c, devs[0], nil
}

// OpenTransport opens the MTP interface of a device Scan found. Its errors are diagnoses a user
// can act on: device.ErrPermission (with the node and how to install Cradle's udev rule; rule is
// the path of Cradle's copy of it, "" for the name alone), device.ErrBusy (with the program that
// holds the device and how to release it), device.ErrLocked (a phone without an MTP interface),
// device.ErrDisconnected (the device left).
func OpenTransport(ctx context.Context, f Found, rule string) (*Transport, error) {
	if !f.MTP {
		return nil, lockedError(f.Label, true)
	}
	if err := checkAccess(f.Node); errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS) {
		return nil, permissionError(f.Label, f.Node, rule, err)
	}
	c, dev, err := openDevice(&f.dev)
	if err != nil {
		switch {
		case errors.Is(err, gousb.ErrorAccess):
			return nil, permissionError(f.Label, f.Node, rule, err)
		case errors.Is(err, gousb.ErrorBusy):
			return nil, holdersError(f, err)
		case errors.Is(err, device.ErrDisconnected), errors.Is(err, gousb.ErrorNoDevice):
			return nil, fmt.Errorf("open %s: %w", f.Label, device.ErrDisconnected)
		}
		return nil, fmt.Errorf("open %s at %s: %w", f.Label, f.Node, err)
	}
	t, err := newTransport(c, dev, f.mtp)
	if err != nil {
		dev.Close()
		c.Close()
		switch {
		case errors.Is(err, gousb.ErrorBusy):
			return nil, holdersError(f, err)
		case errors.Is(err, gousb.ErrorAccess):
			return nil, permissionError(f.Label, f.Node, rule, err)
		case errors.Is(err, gousb.ErrorNoDevice):
			return nil, fmt.Errorf("open %s: %w", f.Label, device.ErrDisconnected)
		}
		return nil, fmt.Errorf("open %s: %w", f.Label, err)
	}
	return t, nil
}

func holdersError(f Found, cause error) error {
	hs, hidden, err := Holders(f.Node)
	if err != nil {
		return busyError(f.Label, f.Node, nil, false, fmt.Errorf("%v; %v", cause, err))
	}
	return busyError(f.Label, f.Node, hs, hidden, cause)
}

// libusbErr recovers libusb's error from gousb's formatted ones: gousb reports a failed claim with
// %v, which drops the error's identity but keeps its text.
func libusbErr(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []gousb.Error{gousb.ErrorAccess, gousb.ErrorBusy, gousb.ErrorNoDevice, gousb.ErrorNotFound, gousb.ErrorIO} {
		if errors.Is(err, e) {
			return err
		}
		if strings.Contains(err.Error(), e.Error()) {
			return fmt.Errorf("%w: %s", e, err.Error())
		}
	}
	return err
}
