// Package torture is Cradle's reliability campaign (issue 9): it tries hard to lose, corrupt or
// duplicate a file, and checks after every trial that nothing was.
//
//   - R1 (TestKillDuringSync): the real `cradle sync` binary against an emulated device is killed
//     with SIGKILL at a random moment while it syncs a few thousand files; the next sync must
//     complete, both sides must hold exactly what the user made (by content hash), no temporary
//     file may be left visible, and every content the user ever wrote must be in place or in the
//     versions (what a sync replaced or deleted, on either side). The emulated device lives in the killed process; its
//     folder is a real folder that survives.
//   - R1 also (TestKillDuringContactsSync): the same with a contacts partnership: hundreds of new
//     cards go to the phone's one contacts file, which the device side writes once at the end of
//     the session from a journal on this computer; kills land shortly after that journal appears
//     (a batch committed, the file not written yet) or at a random moment. The next sync must
//     complete without deleting anything, and both sides must hold every card, once.
//   - R2 (TestDeviceGone): the device disappears in the middle of a transfer (the emulator's fault
//     injection: Unplug at a random moment, DisconnectAfter a random number of bytes either way),
//     with the manager, the files provider, the MTP initiator and a real handle file in process:
//     no partial file may be visible on either side, and the next session, with the device
//     plugged in again, completes.
//   - R3 (TestHostileNames): a device reporting hostile names (.., absolute paths, / and \ inside
//     names, NUL, control characters, reserved names, 1000-byte names) through a full two-way
//     sync: nothing is written outside the partnership's folder. The decoders' fuzzing is
//     scripts/fuzz, which `make torture` runs for a stated time.
//   - R4 (TestStateDamaged, TestSettingsDamaged): the partnership's state file damaged in several
//     ways, or deleted, between syncs: a clear message, the state rebuilt, no duplicate, no loss.
//     The settings file damaged: a clear message and nothing overwritten.
//   - R5 (TestDesktopDiskFull, TestDeviceFull): a desktop folder on a small tmpfs the test mounts
//     (it must run as root, as CI does), and a device with no free space: the session stops with a
//     clear message, nothing is half-written, and the next session after space is freed completes.
//   - R6 (TestMassDeleteAsks): a sync that would delete more than the threshold stops and asks,
//     however few the items; what a confirmed sync deletes is kept in the versions.
//
// `go test ./test/torture/` (and so `make test`) runs the short campaign: 10 R1 trials and 4 of
// R1 with contacts, 5 R2 trials, R3 to R6 once, in about three minutes. CRADLE_TORTURE=1 runs the
// full one (`make torture`: 200 R1 trials, 40 of R1 with contacts, 50 R2 trials);
// CRADLE_TORTURE_TRIALS=N sets the trial counts;
// CRADLE_TORTURE_SEED fixes the random seed (each test logs the one it used, so a failure can
// be replayed); CRADLE_TORTURE_REPORT=FILE appends one JSON record per campaign, from which
// scripts/torture writes docs/reliability.md.
package torture
