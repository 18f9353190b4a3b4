// Package usbguest holds the reliability campaign's trials over real USB (R2, the device gone in
// the middle of a transfer): they run inside the QEMU guest of the real-USB harness (test/usbvm),
// where the cradle command syncs with QEMU's usb-mtp device and the host pulls the device out
// with QMP device_del at a random moment of an upload. They are built with the usbvmguest tag by
// test/torture/usb, which `make torture` runs with TORTURE_USB=1; never on the host.
package usbguest
