// Package usb reaches MTP devices over USB with gousb (libusb): discovery of their MTP interface,
// the transport the MTP initiator (device/mtp) runs over, hot-plug, and the diagnoses a user
// needs when a device is present but cannot be used.
//
// Discovery (Scan) enumerates with a fresh libusb context each time, so it sees hot-plugged
// devices without udevd. An MTP interface is a still-image interface (class 6, subclass 1,
// protocol 1), or a vendor-specific one whose name is "MTP" (Android); names come from sysfs,
// which every user may read, or from the device when sysfs lacks them.
//
// OpenTransport claims the interface and opens its bulk in, bulk out and interrupt in endpoints.
// What can go wrong is said in words a user can act on, as errors wrapping device.ErrPermission
// (which node, and the commands that install Cradle's udev rule), device.ErrBusy (which program
// holds the device, found in /proc, and how to make it let go) or device.ErrLocked (a phone that
// is locked or set to charging only).
//
// Monitor (a device.Monitor) polls for devices coming and going, opens each MTP device, and
// reports it, or its diagnosis, to the manager.
package usb
