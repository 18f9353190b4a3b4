// Package realusb runs the reliability campaign's trials over real USB (R2 with QEMU's
// device_del): it builds test/usbvm's guest with test/torture/usbguest's tests and the cradle
// command, boots it with QEMU's usb-mtp device on qemu-xhci, and checks the device's folder on the
// host afterwards. It needs the QEMU packages (`make deps-usbvm`) and takes a few minutes under
// TCG, so it is built only with the usbvm tag:
//
//	go test -tags usbvm -v ./test/torture/realusb/     # TORTURE_USB=1 make torture runs it
package realusb
