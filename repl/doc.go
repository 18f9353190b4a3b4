// Package repl is Cradle's replication engine: the stores providers implement, the handle file,
// change detection, versions and knowledge, change batches, save actions, tombstones and conflicts.
// It knows nothing of windows or USB; it imports only the standard library and bbolt.
//
// # Stores (store.go)
//
// A provider implements Store for each side of a partnership (the desktop folder, the device's
// objects, a contacts file). Optional abilities are separate small interfaces found by type
// assertion: Stater (describe one item; makes incremental detection possible), Notifier (report
// changes as they happen), Hasher (content hashes without reading), UnitStore (change units that
// merge field by field), Atomicity (a store whose writes are not atomic, like MTP without rename).
// CheckName validates portable item names. Every Store runs the conformance suite in
// repl/repltest; repl/memstore is an in-memory Store for tests.
//
// # The handle file
//
// Open opens the handle file (the Repl.dat of the seeds), one bbolt file per partnership. It holds
// named replicas (a partnership's file holds "desktop" and "device"): per replica its ID, tick
// counter and knowledge, and per item its handle, global ID, stamp, versions, per-unit versions
// and tombstone flag; plus the partnership's conflict records. A second process gets ErrInUse
// instead of hanging; a damaged file gives a *CorruptError (errors.Is ErrCorrupt) that names the
// file and says what will happen, after which the caller moves it aside with MoveAside and opens
// a fresh one: the next session rebuilds by full enumeration and natural-key matching, without
// duplicates or loss.
//
//	hf, err := repl.Open(path, repl.Options{})
//	defer hf.Close()
//
// # Sessions
//
// Sync runs one session between two sides, each a replica name in the handle file with its Store:
//
//	rep, err := hf.Sync(ctx,
//		repl.Side{Name: "desktop", Store: desktop},
//		repl.Side{Name: "device", Store: dev, Changes: notified}, // Changes: nil means a full pass
//		repl.Config{Direction: repl.BothWays, Policy: repl.Policy{Rule: repl.Ask}, Progress: show})
//
// It first detects changes on both sides (full mark and sweep, or only the handles a ChangeSet
// collected from a Notifier), then runs the passes: the source sends change batches of what the
// destination's knowledge lacks; the destination applies each change with a save action (create,
// update, rename, delete keeping a tombstone, update the version only) and commits the batch's
// metadata and knowledge in one transaction after the data is written. A two-way session runs
// b -> a first, then a -> b (device to desktop first when b is the device: the device may vanish
// at any moment, so its changes are saved first). An interrupted session (ctx cancelled, a store
// error, the device gone) keeps what was committed and the next one resumes from there.
//
// Conflicts (neither side had seen the other's change) are settled by the Policy: Ask records a
// Conflict and changes nothing until Resolve; Wins (a named side), Newest and KeepBoth decide at
// once and say so in the Report. Identical content is never a conflict, an edit beats a concurrent
// delete, and change units edited on different sides merge.
//
// Forecast tells what a session would do without touching either store. A session that would
// delete more than the mass-delete threshold of a replica stops before changing anything and
// returns an error matching ErrMassDelete, unless Config allows it. Progress reports items and
// bytes at a bounded rate.
//
// # Device metadata
//
// ExportReplica writes a replica's metadata as a compact, versioned, checksummed snapshot (the
// manager keeps it in .cradle/ on the device), ConfirmExport records that it was stored, and
// ImportReplica reads one back, importing it only when it is newer than the local copy, so a
// device partnered with two computers keeps one identity and knowledge.
//
// # Concurrency
//
// A HandleFile is safe for concurrent use, but sessions on one file run one at a time (Sync,
// Forecast, Resolve and the snapshot calls serialise). Stores are called from the session's
// goroutine only.
package repl
