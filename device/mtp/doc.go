// Package mtp is the initiator side of the Media Transfer Protocol (MTP, over PTP's USB
// transport): the codec of containers and datasets, the transactions, and Device, which
// implements device.Device over any Transport (device/usb's gousb transport, or
// device/emulator's in-process responder).
//
// The codec (container.go, datasets.go, encoding.go) is apart from the transport: containers are a
// 12-byte little-endian header and up to five parameters; datasets (DeviceInfo, StorageInfo,
// ObjectInfo, ObjectPropDesc, object property lists) are decoded with bounded allocations, so a
// hostile length field never allocates more than the bytes that arrived; dates are read leniently
// (trailing dots, fractions, zones) and written "YYYYMMDDThhmmss". Name tables make errors
// readable: "GetObjectInfo: device answered InvalidObjectHandle (0x2009)".
//
// The quirks of real devices are handled where they arise: data phases are read in sizes that
// end exactly at the container's length, with or without a zero-length packet after them (QEMU
// sends none); data phases are written in 512 KiB chunks with the header inside the first one
// (QEMU aborts otherwise) and a zero-length packet when they end on a packet boundary (Android
// waits for it); sizes of 4 GiB and more come from the 64-bit ObjectSize property; a session
// left open by a crashed program is closed and reopened, and stale answers are drained or
// skipped by transaction ID; GetObjectPropList is used for listings where it is offered and works,
// with one GetObjectInfo per object as the fallback; DeviceBusy is retried briefly and then
// reported as device.ErrBusy; object handles are cached per session only, since devices renumber
// them at every OpenSession. Names the device reports pass device.CheckName before they become
// paths; objects with unsafe names are skipped, logged and counted (Device.Skipped).
package mtp
