package usb

import (
	"strings"
	"testing"

	"github.com/google/gousb"
)

// Descriptor layouts of real devices (from `lsusb -v`), reduced to what discovery reads.

func bulkIn(addr uint8, mp int) usbEndpoint {
	return usbEndpoint{Address: gousb.EndpointAddress(addr), Type: gousb.TransferTypeBulk, MaxPacket: mp}
}
func bulkOut(addr uint8, mp int) usbEndpoint {
	return usbEndpoint{Address: gousb.EndpointAddress(addr), Type: gousb.TransferTypeBulk, MaxPacket: mp}
}
func intrIn(addr uint8, mp int) usbEndpoint {
	return usbEndpoint{Address: gousb.EndpointAddress(addr), Type: gousb.TransferTypeInterrupt, MaxPacket: mp}
}

// qemuMTP is QEMU's usb-mtp at high speed.
var qemuMTP = usbDevice{
	Bus: 1, Address: 2, Ports: []int{1}, Vendor: 0x46f4, Product: 0x0004,
	Manufacturer: "QEMU", ProductName: "QEMU filesharing", ActiveConfig: 1,
	Interfaces: []usbInterface{{
		Config: 1, Number: 0, Class: 6, SubClass: 1, Protocol: 1, Name: "MTP",
		Endpoints: []usbEndpoint{bulkIn(0x81, 512), bulkOut(0x02, 512), intrIn(0x83, 64)},
	}},
}

// pixelMTPADB is a Pixel in "File transfer" mode with USB debugging on (18d1:4ee2): MTP on a
// vendor-specific interface named "MTP", ADB next to it.
func pixelMTPADB(mtpName string) usbDevice {
	return usbDevice{
		Bus: 3, Address: 9, Ports: []int{2, 4}, Vendor: 0x18d1, Product: 0x4ee2,
		Manufacturer: "Google", ProductName: "Pixel 7", ActiveConfig: 1,
		Interfaces: []usbInterface{
			{Config: 1, Number: 0, Class: 0xff, SubClass: 0xff, Protocol: 0, Name: mtpName,
				Endpoints: []usbEndpoint{bulkIn(0x81, 512), bulkOut(0x01, 512), intrIn(0x82, 28)}},
			{Config: 1, Number: 1, Class: 0xff, SubClass: 0x42, Protocol: 1, Name: "ADB Interface",
				Endpoints: []usbEndpoint{bulkOut(0x02, 512), bulkIn(0x83, 512)}},
		},
	}
}

// pixelADBOnly is a Pixel charging with USB debugging on (18d1:4ee7).
var pixelADBOnly = usbDevice{
	Bus: 3, Address: 10, Ports: []int{2}, Vendor: 0x18d1, Product: 0x4ee7, ActiveConfig: 1,
	Interfaces: []usbInterface{{Config: 1, Number: 0, Class: 0xff, SubClass: 0x42, Protocol: 1, Name: "ADB Interface",
		Endpoints: []usbEndpoint{bulkOut(0x01, 512), bulkIn(0x81, 512)}}},
}

// canonCamera is a PTP camera (04a9:3218): still-image class without a name.
var canonCamera = usbDevice{
	Bus: 2, Address: 4, Ports: []int{1}, Vendor: 0x04a9, Product: 0x3218, ActiveConfig: 1,
	Interfaces: []usbInterface{{Config: 1, Number: 0, Class: 6, SubClass: 1, Protocol: 1,
		Endpoints: []usbEndpoint{bulkIn(0x81, 512), bulkOut(0x02, 512), intrIn(0x83, 8)}}},
}

// samsungT7 is a Samsung portable SSD (04e8:4001): mass storage, not a phone.
var samsungT7 = usbDevice{
	Bus: 4, Address: 2, Ports: []int{1}, Vendor: 0x04e8, Product: 0x4001, ActiveConfig: 1,
	Interfaces: []usbInterface{
		{Config: 1, Number: 0, Class: 8, SubClass: 6, Protocol: 0x50,
			Endpoints: []usbEndpoint{bulkIn(0x81, 1024), bulkOut(0x02, 1024)}},
		{Config: 1, Number: 0, Alt: 1, Class: 8, SubClass: 6, Protocol: 0x62,
			Endpoints: []usbEndpoint{bulkIn(0x81, 1024), bulkOut(0x02, 1024)}},
	},
}

// samsungCharging is a Galaxy phone set to "charging only" (04e8:6860 with its vendor-specific
// interfaces left, no MTP).
var samsungCharging = usbDevice{
	Bus: 1, Address: 12, Ports: []int{3}, Vendor: 0x04e8, Product: 0x6860, ActiveConfig: 1,
	Interfaces: []usbInterface{{Config: 1, Number: 0, Class: 0xff, SubClass: 0xff, Protocol: 0,
		Endpoints: []usbEndpoint{bulkIn(0x81, 512), bulkOut(0x01, 512)}}},
}

// ch340 is a USB serial adapter (1a86:7523): vendor-specific with bulk in, bulk out and
// interrupt in, the same shape as Android's MTP interface, but named otherwise.
var ch340 = usbDevice{
	Bus: 1, Address: 5, Ports: []int{4}, Vendor: 0x1a86, Product: 0x7523, ActiveConfig: 1,
	Interfaces: []usbInterface{{Config: 1, Number: 0, Class: 0xff, SubClass: 1, Protocol: 2, Name: "USB Serial",
		Endpoints: []usbEndpoint{bulkIn(0x82, 32), bulkOut(0x02, 32), intrIn(0x81, 8)}}},
}

// logitechKeyboard is a HID keyboard (046d:c31c).
var logitechKeyboard = usbDevice{
	Bus: 1, Address: 3, Ports: []int{2}, Vendor: 0x046d, Product: 0xc31c, ActiveConfig: 1,
	Interfaces: []usbInterface{{Config: 1, Number: 0, Class: 3, SubClass: 1, Protocol: 1,
		Endpoints: []usbEndpoint{intrIn(0x81, 8)}}},
}

// twoConfigs has MTP only in its second configuration while the first runs.
var twoConfigs = usbDevice{
	Bus: 1, Address: 6, Ports: []int{1}, Vendor: 0x1234, Product: 0x5678, ActiveConfig: 1,
	Interfaces: []usbInterface{
		{Config: 2, Number: 0, Class: 6, SubClass: 1, Protocol: 1,
			Endpoints: []usbEndpoint{bulkIn(0x81, 512), bulkOut(0x02, 512), intrIn(0x83, 64)}},
		{Config: 1, Number: 0, Class: 0xff, SubClass: 0xff, Protocol: 0, Name: "MTP",
			Endpoints: []usbEndpoint{bulkIn(0x84, 512), bulkOut(0x05, 512), intrIn(0x86, 64)}},
	},
}

func TestFindMTP(t *testing.T) {
	for _, c := range []struct {
		name              string
		dev               usbDevice
		found, needName   bool
		number            int
		vendor            bool
		in, out, intr     gousb.EndpointAddress
		config, maxPacket int
	}{
		{name: "QEMU usb-mtp", dev: qemuMTP, found: true, in: 0x81, out: 0x02, intr: 0x83, config: 1, maxPacket: 512},
		{name: "Pixel MTP+ADB", dev: pixelMTPADB("MTP"), found: true, vendor: true, in: 0x81, out: 0x01, intr: 0x82, config: 1, maxPacket: 512},
		{name: "Pixel, name not read yet", dev: pixelMTPADB(""), needName: true},
		{name: "Pixel, interface named otherwise", dev: pixelMTPADB("Vendor")},
		{name: "Pixel ADB only", dev: pixelADBOnly},
		{name: "PTP camera", dev: canonCamera, found: true, in: 0x81, out: 0x02, intr: 0x83, config: 1, maxPacket: 512},
		{name: "Samsung SSD", dev: samsungT7},
		{name: "Samsung charging only", dev: samsungCharging},
		{name: "CH340 serial", dev: ch340},
		{name: "keyboard", dev: logitechKeyboard},
		{name: "active configuration first", dev: twoConfigs, found: true, vendor: true, in: 0x84, out: 0x05, intr: 0x86, config: 1, maxPacket: 512},
	} {
		m, found, needName := findMTP(c.dev)
		if found != c.found || needName != c.needName {
			t.Errorf("findMTP(%s) found, needName = %v, %v, want %v, %v", c.name, found, needName, c.found, c.needName)
			continue
		}
		if !found {
			continue
		}
		if m.Number != c.number || m.Vendor != c.vendor || m.BulkIn != c.in || m.BulkOut != c.out || m.Interrupt != c.intr || m.Config != c.config || m.MaxPacket != c.maxPacket {
			t.Errorf("findMTP(%s) = %+v, want interface %d vendor %v in %s out %s interrupt %s config %d packet %d",
				c.name, m, c.number, c.vendor, c.in, c.out, c.intr, c.config, c.maxPacket)
		}
	}
}

func TestLooksLikePhone(t *testing.T) {
	hub := usbDevice{Vendor: 0x18d1, Class: classHub}
	noInterfaces := usbDevice{Vendor: 0x2717, Product: 0xff48, ActiveConfig: 1}
	for _, c := range []struct {
		name string
		dev  usbDevice
		want bool
	}{
		{"Pixel ADB only", pixelADBOnly, true},
		{"Samsung charging only", samsungCharging, true},
		{"Xiaomi without interfaces", noInterfaces, true},
		{"Samsung SSD", samsungT7, false},
		{"CH340 serial", ch340, false},
		{"keyboard", logitechKeyboard, false},
		{"hub from a phone maker", hub, false},
		{"PTP camera", canonCamera, false},
	} {
		if got := looksLikePhone(c.dev); got != c.want {
			t.Errorf("looksLikePhone(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		dev              usbDevice
		label, key, node string
	}{
		{qemuMTP, "QEMU QEMU filesharing (46f4:0004)", "usb:1-1:2", "/dev/bus/usb/001/002"},
		{pixelMTPADB("MTP"), "Google Pixel 7 (18d1:4ee2)", "usb:3-2.4:9", "/dev/bus/usb/003/009"},
		{samsungCharging, "Samsung device (04e8:6860)", "usb:1-3:12", "/dev/bus/usb/001/012"},
		{ch340, "USB device (1a86:7523)", "usb:1-4:5", "/dev/bus/usb/001/005"},
	} {
		if got := c.dev.label(); got != c.label {
			t.Errorf("label(%04x:%04x) = %q, want %q", c.dev.Vendor, c.dev.Product, got, c.label)
		}
		if got := c.dev.key(); got != c.key {
			t.Errorf("key(%04x:%04x) = %q, want %q", c.dev.Vendor, c.dev.Product, got, c.key)
		}
		if got := c.dev.node(); got != c.node {
			t.Errorf("node(%04x:%04x) = %q, want %q", c.dev.Vendor, c.dev.Product, got, c.node)
		}
	}
}

func TestMTPInterfaceString(t *testing.T) {
	m, _, _ := findMTP(pixelMTPADB("MTP"))
	s := m.String()
	for _, want := range []string{"interface 0", `vendor-specific, named "MTP"`, "bulk in 0x81", "bulk out 0x01", "interrupt 0x82"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to mention %q", s, want)
		}
	}
}
