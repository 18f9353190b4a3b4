// Package guest holds the tests that run inside the QEMU guest of the real-USB harness
// (test/usbvm), against QEMU's usb-mtp device over real USB: discovery, the gousb transport, the
// MTP initiator, hot-plug and unplug mid-transfer. They are built with the usbvmguest tag
// (`go test -c -tags usbvmguest`) by the harness, never run on the host: `make test-usb` runs
// them.
//
// Every test works in a folder of the device named after it, which the host prepares before the
// guest boots (see the scenarios in test/usbvm), and talks to the host over the control channel
// (usbvm.Ctl) to plug and unplug the device or check files on the host side.
package guest
