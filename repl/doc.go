// Package repl is Cradle's replication engine: the stores providers implement, the handle file,
// change detection, versions and knowledge, change batches, save actions, tombstones and conflicts.
// It knows nothing of windows or USB; it imports only the standard library and bbolt.
//
// # Stores (store.go)
//
// A provider implements Store for each side of a partnership (the desktop folder, the device's
// objects, a contacts file). Optional abilities are small separate interfaces found by type
// assertion: Stater (describe one item; makes incremental detection possible), Notifier (report
// changes as they happen), Hasher (content hashes without reading), UnitStore (change units that
// merge field by field), Atomicity (a store whose writes are not atomic, like MTP without rename).
// CheckName validates portable item names. Every Store runs the conformance suite in
// repl/repltest; repl/memstore is an in-memory Store for tests.
//
// # The handle file
//
// Open opens the handle file (the Repl.dat of the seeds), one bbolt file per partnership. It holds
// named replicas (a partnership's file holds "desktop" and "device", created on first use): per
// replica its ID, tick counter and knowledge, and per item its handle, global ID, stamp, versions,
// per-unit versions and tombstone flag; plus the partnership's conflict records. Its format 3
// (index.go, record3.go) keeps an item in two keys per replica, about 280 bytes an item for both
// replicas of a partnership of small files; files of formats 1 and 2 are rewritten in it when
// opened (upgrade.go). A second process
// gets ErrInUse instead of hanging. A damaged file gives a *CorruptError (errors.Is ErrCorrupt)
// that names the file and says what will happen; the caller then moves it aside with MoveAside
// and opens a fresh one: the next session rebuilds by full enumeration and natural-key matching,
// without duplicates or loss (items that differ on the two sides become conflicts).
//
//	hf, err := repl.Open(path, repl.Options{})
//	if errors.Is(err, repl.ErrCorrupt) { aside, _ := repl.MoveAside(path); ...; hf, err = repl.Open(path, repl.Options{}) }
//	defer hf.Close()
//
// # Sessions
//
// Sync runs one session between two sides, each a replica name in the handle file with its Store:
//
//	rep, err := hf.Sync(ctx,
//		repl.Side{Name: "desktop", Store: desktop},
//		repl.Side{Name: "device", Store: dev, Changes: notified}, // nil Changes: a full pass
//		repl.Config{Direction: repl.BothWays, Policy: repl.Policy{Rule: repl.Ask}, Progress: show})
//
// A session first finishes what an interrupted one left (partial writes in stores that are not
// atomic, "keep both" resolutions waiting for both stores), then detects changes on both sides:
// a full mark and sweep (enumerate, merge with the stored handles in sorted order, deletions only
// after an enumeration that finished), or only the handles a ChangeSet collected from a Notifier.
// Then the passes: the source sends what the destination's knowledge lacks in batches (Config.
// BatchSize); the destination applies each change with a save action (create, update, rename,
// delete keeping a tombstone, update the version only) and commits the batch's metadata and
// knowledge in one transaction after the data is written. A two-way session runs b -> a, then
// a -> b, then b -> a again if settling conflicts gave b new versions: with b the device, the
// device's changes are saved first (it may be unplugged any moment) and conflicts are settled on
// the desktop. An interrupted session (ctx cancelled, a store error, the device gone) keeps what
// was committed; the next one resumes without sending again what was applied.
//
// Every item carries its made-with knowledge: the versions of that item its current version
// includes. Two versions conflict when neither includes the other. Identical content is never a
// conflict; an edit beats a concurrent delete (a delete whose author saw the content beats a
// change of versions only), and the surviving edit goes over the delete alone, not over what the
// deleter had seen, so it still conflicts with other concurrent edits; a rename on one side and an edit on the other merge; change units
// edited on different sides merge. The rest is settled by the Policy: Ask records a Conflict and
// changes nothing until Resolve (carried out at once when both stores are given, else by the next
// Sync); Wins (a named side), Newest and KeepBoth decide at once and say so in Report.Decisions.
// Items found on both sides without metadata (a first sync, a rebuild) are matched by natural key
// and merged into one item, never duplicated: the smaller global ID survives everywhere, the other
// becomes a tombstone that says so, and the two histories are never compared with each other.
//
// Forecast tells what a session would do without writing to either store. A session that would
// delete more than Config.MassDeleteThreshold of a replica's items (replicas under
// MassDeleteMinItems items are not guarded, unless the session would empty them) stops before
// changing anything with a
// *MassDeleteError (errors.Is ErrMassDelete), unless Config.AllowMassDelete. Progress reports
// items and bytes at a bounded rate. Detect runs detection alone; Conflicts lists what waits for
// the user.
//
// # Device metadata
//
// ExportReplica writes a replica's metadata as a compact, versioned, checksummed snapshot (the
// manager keeps it in .cradle/ on the device), ConfirmExport records that it was stored, and
// ImportReplica reads one back (defensively: it comes from a device), importing it only when it
// is newer than the local copy, so a device partnered with two computers keeps one identity and
// knowledge. Each handle file mints versions under author IDs of its own, so two computers never
// mint the same version. When the imported snapshot lacks versions minted here (this computer's
// last snapshot never reached the device, and the other computer has since written one), the
// local items built on those versions give up their claims on them and meet the device's items
// as concurrent versions in the next session.
//
// # Concurrency
//
// A HandleFile is safe for concurrent use, but sessions on one file run one at a time (Sync,
// Forecast, Detect, Resolve and the snapshot calls serialise). Stores are called from the
// session's goroutine only.
package repl
