// Package usbvm is Cradle's real-USB harness: it proves the USB code against an MTP implementation
// the project did not write, QEMU's usb-mtp device, over real USB descriptors, bulk and interrupt
// endpoints and hot-plug.
//
// The harness builds a small initramfs in Go (cpio newc + gzip): busybox-static with its applet
// links, the Debian kernel's USB modules (usb-common usbcore xhci-hcd xhci-pci ehci-hcd ehci-pci,
// found with modinfo), the guest test binary (`go test -c -tags usbvmguest` of
// test/usbvm/guest) and any other program built from the project, every shared library they need
// (ldd), and for the benchmark libmtp's tools with glibc's gconv modules and the C.UTF-8 locale.
// Its /init mounts the kernel file systems, loads the modules, runs the test program and powers
// off. QEMU boots it with TCG (KVM does not work on the CI machines), with qemu-xhci or usb-ehci
// and usb-mtp on a host folder.
//
// The guest's console (first serial port) carries the test output between the BEGIN and EXIT
// markers; the exit marker holds the test program's status. A second serial port, a unix socket
// on the host, is the control channel: the guest asks, the host acts and answers (Ctl, Call):
// unplug and plug the device over QMP (device_del, device_add), write or hash a file in the
// device's host folder, list it. QEMU dying (an assertion in the device model), hanging past the
// timeout, or a guest that never prints its exit marker fails the run; nothing is skipped.
//
// A Scenario is a guest test plus host-side setup and checks of its folder; `make test-usb`
// (go test -tags usbvm) runs every scenario on both host controllers, and `make bench-usb`
// (cmd/usbbench) compares Cradle's transfers with libmtp's in the same guest.
//
// Adding a scenario: a TestXxx in test/usbvm/guest (build tag usbvmguest) that works in the
// device folder Xxx and asks the host for what it needs (call(t, "unplug"), hostHash), and a
// Scenario{Name: "TestXxx", Setup: ..., Check: ...} in usbvm_test.go. A scenario that runs the
// cradle binary in the guest adds it to the image with HarnessOptions.Programs
// ({"/usbvm/cradle": "."}) and runs it with os/exec from its guest test.
//
// Environment of `make test-usb`: CRADLE_USBVM_WORK keeps the build and each run's files
// (initrd, qemu.log) in a folder of your choice; console.log there holds every guest console and
// host action, also on stderr with CRADLE_USBVM_VERBOSE=1; CRADLE_USBVM_TRACE=usb_mtp_* enables
// QEMU trace events.
//
// What QEMU 7.2's usb-mtp does that a real device does not (the tests work with it, not around
// the code under test):
//   - It ends a data-out phase only at a transfer whose size is not a multiple of 64 bytes, and it
//     stalls a zero-length packet. An object whose data phase (12-byte header included) is a
//     multiple of 64 bytes therefore cannot be sent to it at all, by any initiator: the data
//     phase never ends, and the next command aborts QEMU on an assertion in usb_mtp_get_data.
//     The tests use other sizes.
//   - A data-out transfer that crosses one of its 512 KiB buffer boundaries loses the bytes past
//     it: initiators must write in pieces that divide 512 KiB, the header inside the first.
//   - SendObjectInfo for a folder made inside a folder the session never listed answers with a
//     handle QEMU never registers: the new folder's handle is only learnt by listing its parent
//     (QEMU registers objects when it reads a folder or when inotify reports them in a folder it
//     read). Sending into that handle leaves QEMU waiting for a data phase it will never take,
//     until a cancel request.
//   - No zero-length packet ends a data-in phase that fills the initiator's read exactly.
//   - Events (ObjectAdded, ObjectRemoved, ObjectInfoChanged) come for folders listed in the
//     session, from inotify, the newest first; its DeviceInfo lists none. Uploads raise them too.
//   - On xHCI an interrupt transfer left pending for long never completes: the transport
//     re-submits its interrupt read every 250 ms.
//   - Objects created by SendObject are registered when inotify reports them, asynchronously: a
//     GetObjectInfo right after the transfer can still answer InvalidObjectHandle (libmtp's
//     mtp-sendfile then fails with "Could not retrieve updated metadata").
//   - Behind usb-ehci, QEMU has crashed (SIGSEGV) when the device left in the middle of a large
//     upload and was added back; libmtp's uploads through usb-ehci abort it on an assertion.
//     TestCradleUnplug runs on xHCI only, and the benchmark times no libmtp upload on EHCI.
//   - Handles are renumbered at every session, files starting with '.' are hidden, sizes of files
//     changed on the host go stale until the next session, and GetObjectPropList and
//     SetObjectPropValue are not supported (no renames, no setting dates).
package usbvm
