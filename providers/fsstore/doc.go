// Package fsstore is the folder-store toolkit the providers share: a folder on this computer and
// a folder on a device, each as a repl.Store, and what both need to agree on.
//
//   - DesktopStore (desktop.go, desktopwrite.go, watch.go): a desktop folder, enumerated with one
//     fstatat per item, written atomically (temporary file, fsync, rename), watched recursively
//     with fsnotify.
//   - DeviceStore (devicestore.go, devicewrite.go, journal.go): a folder on any device.Device (MTP,
//     the emulator, a mounted drive). Updates swap an upload into place where the device can
//     rename, with a journal that finishes an interrupted swap; where it cannot, the store says
//     so (repl.Atomicity) and the engine keeps an intent for each write.
//   - Versions (desktopwrite.go, devicekeep.go): with a versions area (providers/versions), what
//     either store replaces or deletes for the engine is kept first: on the desktop a hard link
//     or a rename into the folder's .cradle/versions; on the device a rename into its
//     .cradle/versions where it can rename and has room, else a copy on the computer.
//   - The ignore rules (ignore.go): BuiltinIgnored (Cradle's temporary files and MetaDir,
//     editors' and operating systems' litter) and the user's patterns (Ignorer, .gitignore-like).
//   - Cradle's names on disk and on the device: TempPrefix, TempName and StaleTemp for temporary
//     files, MetaDir for the device's .cradle folder.
//   - SeenSet (seen.go): what a device store has seen, so that a deletion on the device can be
//     kept from the engine (the files provider's ignore-device-deletes, the photos provider's
//     pictures freed after import).
//   - How finely each store keeps modification times (clock.go, repl.Clock): two seconds on FAT
//     and on devices.
//
// The files provider is the two stores side by side; the photos provider builds its library on
// DesktopStore and its import log on SeenSet; a plugin's device side is a DeviceStore. The
// device-path syntax ("STORAGE:PATH") and the mapping of file-system and device errors to the
// engine's sentinel errors live beside the registry, in package providers. The package map is in
// docs/design.md.
package fsstore
