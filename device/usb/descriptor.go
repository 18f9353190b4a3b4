package usb

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/gousb"
)

// usbDevice is what discovery knows of one attached USB device: its descriptors, and the strings
// that could be read (from sysfs without opening the device, or from the device once opened).
type usbDevice struct {
	Bus, Address int
	Ports        []int
	Vendor       uint16
	Product      uint16
	Class        uint8
	Speed        gousb.Speed

	Manufacturer string
	ProductName  string
	Serial       string

	// ActiveConfig is the configuration the device runs (0 when unknown).
	ActiveConfig int
	Interfaces   []usbInterface
}

// usbInterface is one alternate setting of one interface.
type usbInterface struct {
	Config, Number, Alt int
	Class, SubClass     uint8
	Protocol            uint8
	// Name is the interface's string descriptor; "" when it has none or it could not be read.
	Name      string
	Endpoints []usbEndpoint
}

type usbEndpoint struct {
	Address   gousb.EndpointAddress
	Type      gousb.TransferType
	MaxPacket int
}

// Interface classes and codes that matter here.
const (
	classStillImage   = 0x06
	classHub          = 0x09
	classVendor       = 0xff
	subclassStillCap  = 0x01
	protocolPTPBulkIn = 0x01
	subclassADB       = 0x42
	protocolADB       = 0x01
)

// mtpInterface locates an MTP (or PTP) interface and its endpoints.
type mtpInterface struct {
	Config, Number, Alt int
	BulkIn, BulkOut     gousb.EndpointAddress
	Interrupt           gousb.EndpointAddress // 0 when the interface has none
	MaxPacket           int
	InterruptPacket     int
	// Vendor is true for a vendor-specific interface recognised by its "MTP" name (Android).
	Vendor bool
}

func (m mtpInterface) String() string {
	kind := "still-image class 6/1/1"
	if m.Vendor {
		kind = `vendor-specific, named "MTP"`
	}
	return fmt.Sprintf("configuration %d interface %d alt %d (%s): bulk in %s, bulk out %s, interrupt %s",
		m.Config, m.Number, m.Alt, kind, m.BulkIn, m.BulkOut, m.Interrupt)
}

// endpoints picks bulk in, bulk out and interrupt in; ok is false without both bulk endpoints.
func (it usbInterface) endpoints() (m mtpInterface, ok bool) {
	m = mtpInterface{Config: it.Config, Number: it.Number, Alt: it.Alt}
	for _, ep := range it.Endpoints {
		in := ep.Address&0x80 != 0
		switch {
		case ep.Type == gousb.TransferTypeBulk && in && m.BulkIn == 0:
			m.BulkIn, m.MaxPacket = ep.Address, ep.MaxPacket
		case ep.Type == gousb.TransferTypeBulk && !in && m.BulkOut == 0:
			m.BulkOut = ep.Address
		case ep.Type == gousb.TransferTypeInterrupt && in && m.Interrupt == 0:
			m.Interrupt, m.InterruptPacket = ep.Address, ep.MaxPacket
		}
	}
	return m, m.BulkIn != 0 && m.BulkOut != 0
}

// isStillImage reports a class 6/1/1 interface: PTP, which MTP extends.
func (it usbInterface) isStillImage() bool {
	return it.Class == classStillImage && it.SubClass == subclassStillCap && it.Protocol == protocolPTPBulkIn
}

// isVendorMTPCandidate reports a vendor-specific interface shaped like Android's MTP interface
// (bulk in, bulk out, interrupt in), whose name decides.
func (it usbInterface) isVendorMTPCandidate() bool {
	if it.Class != classVendor || it.isADB() {
		return false
	}
	m, ok := it.endpoints()
	return ok && m.Interrupt != 0
}

// isADB reports Android's debug bridge interface.
func (it usbInterface) isADB() bool {
	return it.Class == classVendor && it.SubClass == subclassADB && it.Protocol == protocolADB
}

// namedMTP reports an interface string that names MTP ("MTP" on Android; libmtp accepts the word
// anywhere in it).
func namedMTP(name string) bool {
	return strings.Contains(name, "MTP")
}

// findMTP returns the device's MTP interface: a class 6/1/1 interface, or else a vendor-specific
// one named "MTP", looked for in the active configuration first (using another one means
// switching configurations, which disturbs the device's other functions). needName is true when
// a vendor-specific candidate exists whose name is unknown (it must be read from the device).
func findMTP(d usbDevice) (m mtpInterface, found, needName bool) {
	configs := []int{}
	seen := map[int]bool{}
	if d.ActiveConfig != 0 {
		configs, seen[d.ActiveConfig] = append(configs, d.ActiveConfig), true
	}
	for _, it := range d.Interfaces {
		if !seen[it.Config] {
			configs, seen[it.Config] = append(configs, it.Config), true
		}
	}
	for _, c := range configs {
		for _, it := range d.Interfaces {
			if it.Config == c && it.isStillImage() {
				if m, ok := it.endpoints(); ok {
					return m, true, false
				}
			}
		}
		for _, it := range d.Interfaces {
			if it.Config != c || !it.isVendorMTPCandidate() {
				continue
			}
			if it.Name == "" {
				needName = true
				continue
			}
			if namedMTP(it.Name) {
				m, _ := it.endpoints()
				m.Vendor = true
				return m, true, false
			}
		}
		if needName {
			// The name decides before another configuration is considered.
			return mtpInterface{}, false, true
		}
	}
	return mtpInterface{}, false, false
}

// phoneVendors are USB vendor IDs of phone makers: a device of theirs without an MTP interface is
// most likely a phone set to "charging only". Makers of USB modems and storage (Huawei, ZTE,
// Samsung's SSDs) are told apart by the interface classes below.
var phoneVendors = map[uint16]string{
	0x18d1: "Google",
	0x04e8: "Samsung",
	0x22b8: "Motorola",
	0x1004: "LG",
	0x0fce: "Sony",
	0x0bb4: "HTC",
	0x2717: "Xiaomi",
	0x2a70: "OnePlus",
	0x22d9: "OPPO",
	0x2d95: "vivo",
	0x2e04: "HMD (Nokia)",
	0x2ae5: "Fairphone",
	0x05c6: "Qualcomm",
	0x0e8d: "MediaTek",
	0x1949: "Amazon",
	0x2a45: "Meizu",
	0x29a9: "Nothing",
}

// looksLikePhone reports a device without a usable MTP interface that is still most likely a
// phone or tablet: one that offers Android's debug bridge (USB debugging on, file transfer off),
// or a phone maker's device whose interfaces are all vendor-specific (or none at all), which is
// what "charging only" looks like. Keyboards, drives, hubs, webcams and modems are not phones.
func looksLikePhone(d usbDevice) bool {
	if d.Class == classHub {
		return false
	}
	for _, it := range d.Interfaces {
		if it.isADB() {
			return true
		}
	}
	if _, ok := phoneVendors[d.Vendor]; !ok {
		return false
	}
	for _, it := range d.Interfaces {
		if it.Config != d.ActiveConfig && d.ActiveConfig != 0 {
			continue
		}
		if it.Class != classVendor {
			return false
		}
	}
	return true
}

// label names the device for messages: "Google Pixel 7 (18d1:4ee1)".
func (d usbDevice) label() string {
	name := strings.TrimSpace(strings.TrimSpace(d.Manufacturer) + " " + strings.TrimSpace(d.ProductName))
	if name == "" {
		if v, ok := phoneVendors[d.Vendor]; ok {
			name = v + " device"
		} else {
			name = "USB device"
		}
	}
	return fmt.Sprintf("%s (%04x:%04x)", name, d.Vendor, d.Product)
}

// portPath is the sysfs name of the device's port: "1-2.4" (bus 1, port 2, then port 4 of the hub
// there); "usb1" for a root hub.
func (d usbDevice) portPath() string {
	if len(d.Ports) == 0 {
		return fmt.Sprintf("usb%d", d.Bus)
	}
	ps := make([]string, len(d.Ports))
	for i, p := range d.Ports {
		ps[i] = fmt.Sprint(p)
	}
	return fmt.Sprintf("%d-%s", d.Bus, strings.Join(ps, "."))
}

// key identifies the attachment: the port and the address, which changes at every plug-in, so a
// device unplugged and plugged back between two scans is seen as gone and back.
func (d usbDevice) key() string {
	return fmt.Sprintf("usb:%s:%d", d.portPath(), d.Address)
}

// node is the device's usbfs node.
func (d usbDevice) node() string {
	return Node(d.Bus, d.Address)
}

// Node returns the usbfs device node of the device at bus and address: /dev/bus/usb/BBB/DDD.
func Node(bus, address int) string {
	return fmt.Sprintf("/dev/bus/usb/%03d/%03d", bus, address)
}

// fromDesc converts gousb's descriptor.
func fromDesc(desc *gousb.DeviceDesc) usbDevice {
	d := usbDevice{
		Bus: desc.Bus, Address: desc.Address,
		Ports:   append([]int(nil), desc.Path...),
		Vendor:  uint16(desc.Vendor),
		Product: uint16(desc.Product),
		Class:   uint8(desc.Class),
		Speed:   desc.Speed,
	}
	cfgs := make([]int, 0, len(desc.Configs))
	for n := range desc.Configs {
		cfgs = append(cfgs, n)
	}
	sort.Ints(cfgs)
	for _, n := range cfgs {
		c := desc.Configs[n]
		for _, in := range c.Interfaces {
			for _, alt := range in.AltSettings {
				it := usbInterface{
					Config: n, Number: in.Number, Alt: alt.Alternate,
					Class: uint8(alt.Class), SubClass: uint8(alt.SubClass), Protocol: uint8(alt.Protocol),
				}
				addrs := make([]int, 0, len(alt.Endpoints))
				for a := range alt.Endpoints {
					addrs = append(addrs, int(a))
				}
				sort.Ints(addrs)
				for _, a := range addrs {
					ep := alt.Endpoints[gousb.EndpointAddress(a)]
					it.Endpoints = append(it.Endpoints, usbEndpoint{Address: ep.Address, Type: ep.TransferType, MaxPacket: ep.MaxPacketSize})
				}
				d.Interfaces = append(d.Interfaces, it)
			}
		}
	}
	if len(cfgs) == 1 {
		d.ActiveConfig = cfgs[0]
	}
	return d
}
