package usb

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysfsRoot is where Linux lists USB devices and interfaces. Their string descriptors are there
// too, readable by every user: discovery learns names without opening the device (which may not
// be allowed yet).
const sysfsRoot = "/sys/bus/usb/devices"

// readSysfs fills in what sysfs knows of d: its strings, its active configuration and the names of
// the active configuration's interfaces. It is best effort: a missing attribute leaves a field as
// it was. It reports whether the sysfs entry matched the device (same bus and address).
func readSysfs(d *usbDevice) bool {
	dir := filepath.Join(sysfsRoot, d.portPath())
	if attrInt(dir, "busnum") != d.Bus || attrInt(dir, "devnum") != d.Address {
		return false // gone, or replaced by another device since the scan
	}
	if s := attr(dir, "manufacturer"); s != "" {
		d.Manufacturer = s
	}
	if s := attr(dir, "product"); s != "" {
		d.ProductName = s
	}
	if s := attr(dir, "serial"); s != "" {
		d.Serial = s
	}
	if c := attrInt(dir, "bConfigurationValue"); c > 0 {
		d.ActiveConfig = c
	}
	for i := range d.Interfaces {
		it := &d.Interfaces[i]
		if it.Config != d.ActiveConfig || it.Name != "" {
			continue
		}
		idir := filepath.Join(sysfsRoot, fmt.Sprintf("%s:%d.%d", d.portPath(), it.Config, it.Number))
		// sysfs shows the interface's current alternate setting only.
		if attrInt(idir, "bAlternateSetting") != it.Alt {
			continue
		}
		it.Name = attr(idir, "interface")
	}
	return true
}

func attr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// attrInt reads a decimal attribute; -1 when it is missing or malformed.
func attrInt(dir, name string) int {
	n, err := strconv.Atoi(attr(dir, name))
	if err != nil {
		return -1
	}
	return n
}
