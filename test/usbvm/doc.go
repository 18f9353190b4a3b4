// Package usbvm is Cradle's real-USB harness: it proves the USB code against two MTP
// implementations the project did not write, over real USB descriptors, bulk and interrupt
// endpoints and hot-plug: QEMU's usb-mtp device (behind qemu-xhci and usb-ehci), and
// uMTP-Responder (Debian's umtp-responder, used on embedded Linux products) running in the guest as
// a USB gadget: a configfs gadget with a FunctionFS function served by umtprd, bound to dummy_hcd,
// which is both the gadget's controller and a host controller of the guest's own (the "umtp"
// device model; gadget.go). Its storage is a folder of the guest, so its scenario (TestUMTP)
// prepares and checks it itself.
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
// QEMU trace events; CRADLE_USBVM_SCENARIOS=TestNewFolders,TestCradle and
// CRADLE_USBVM_HCDS=usb-ehci run only those scenarios behind those controllers.
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
//   - The handle SendObjectInfo answers is QEMU's guess of the next one it will give out (or,
//     when the new name is a prefix of an existing object's name, that object's handle). It
//     registers the new object only when inotify reports it in a folder the session listed
//     (asynchronously, usually within milliseconds), or when the folder is first listed; until
//     then the handle is unknown, and another object may get it. A folder made inside a folder
//     the session never listed is therefore unknown until its parent is listed. SendObjectInfo
//     into an unknown parent answers InvalidObjectHandle and still waits for the data phase, of
//     which it takes only the header ("accepted 12 of 112 bytes" on xHCI, a stalled bulk-in on
//     EHCI) until a cancel request. device/mtp finds every new object by name in listings of
//     its folder and lists a new folder before it sends anything into it.
//   - Names starting with '.' never become objects, also those the initiator creates: a folder
//     .cradle is made on the host and never shown, and making it again answers StoreFull (the
//     host's mkdir fails with EEXIST). Cradle then keeps the device metadata on the computer.
//   - No zero-length packet ends a data-in phase that fills the initiator's read exactly.
//   - Events (ObjectAdded, ObjectRemoved, ObjectInfoChanged) come for folders listed in the
//     session, from inotify, the newest first; its DeviceInfo lists none. Uploads raise them too.
//   - On xHCI an interrupt transfer left pending for long never completes: the transport
//     re-submits its interrupt read every 250 ms.
//   - Objects created by SendObject are registered when inotify reports them, asynchronously: a
//     GetObjectInfo right after the transfer can still answer InvalidObjectHandle (libmtp's
//     mtp-sendfile then fails with "Could not retrieve updated metadata"). device/emulator's
//     Options.LateObjects (in emulator.QEMU()) reproduces this for fast tests.
//   - Behind usb-ehci, once the device left in the middle of a transfer (a download or an
//     upload) and was added back, QEMU crashes (SIGSEGV in a main-loop callback, about every
//     other run) during the next large upload. The scenarios that unplug mid-transfer run last;
//     behind usb-ehci only TestUnplug (a download cut) runs, and nothing is uploaded after it:
//     TestCradleUnplug and TestUnplugUpload run on xHCI only. libmtp's uploads through
//     usb-ehci abort QEMU on an assertion, so the benchmark times no libmtp upload on EHCI.
//   - Handles are renumbered at every session, files starting with '.' are hidden, sizes of files
//     changed on the host go stale until the next session, and GetObjectPropList and
//     SetObjectPropValue are not supported (no renames, no setting dates).
//
// What uMTP-Responder 1.3.10 does that the tests meet: it refuses GetDeviceInfo outside a session;
// it refuses to set DateModified; its GetObjectPropList ignores the depth and has no object 0 for
// the root; its inotify thread raises events (from writes in the guest) and blocks, holding a lock
// its command thread needs, until the host reads them; after a disconnection (an unbind of the
// UDC, a USB reset) it takes about 40 s before it serves again; a class cancel request can leave
// it answering nothing; its runtime control (`umtprd -cmd:...`) took the gadget off the bus in
// this set-up, so lock and unlock are left to the emulator's tests.
package usbvm
