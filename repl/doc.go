// Package repl is Cradle's replication engine: the stores providers implement, the handle file,
// change detection, versions and knowledge, change batches, save actions, tombstones and conflicts.
// It knows nothing of windows or USB; it imports only the standard library and bbolt. The model
// follows ActiveSync's service manager (handles compared against a persistent file, change
// notifications) and Microsoft Sync Framework (replicas, versions, knowledge, change batches,
// tombstones, forgotten knowledge, conflicts); docs/design.md has the glossary.
//
// # Stores (store.go)
//
// A provider implements Store for each side of a partnership (the desktop folder, the device's
// objects, a contacts file). Optional abilities are small separate interfaces found by type
// assertion: Stater (describe one item; makes incremental detection possible), Notifier (report
// changes as they happen), Hasher (content hashes without reading), UnitStore (change units that
// merge field by field), Atomicity (a store whose writes are not atomic, like MTP without rename),
// Clock (how finely the store keeps modification times), Monitoring, CauseDeleter (told why an
// item is deleted), Flusher (writes that reach the replica later: made durable before each batch
// is committed, flushed at the end of the session; flush.go). CheckName validates portable item names. Every Store runs the conformance
// suite in repl/repltest; repl/memstore is an in-memory Store for tests.
//
// # Content identity (content.go, detect_content.go)
//
// A stamp (size, modification time) says whether to look at an item; its content says what
// changed. A record keeps the SHA-256 of its item's content whenever the engine has the bytes (a
// transfer, a comparison, a check), and every decision that could lose data asks the content: a
// stamp that changed over the same content (a touch) only refreshes the record; a record taken
// within the store's time granularity of the item's time is racily clean, and the next detection
// checks its content (a same-size rewrite in the same second keeps the stamp); a new item is a
// renamed one only when its content is a deleted one's; a source is copied through a reader that
// fails before the destination has the last byte if the source is no longer what detection saw.
//
// # The handle file (handlefile.go, record.go, record3.go, index.go, upgrade.go)
//
// Open opens the handle file, one bbolt file per partnership. It holds named replicas (a
// partnership's file holds "desktop" and "device", created on first use): per replica its ID,
// author ID, tick counter, knowledge, forgotten knowledge and its partners' knowledge, and per
// item its handle, global ID, stamp, content hash, versions, per-unit versions and tombstone
// flag; plus the partnership's conflict records and the intents of writes in progress. A second
// process gets ErrInUse instead of hanging. A damaged file gives a *CorruptError (errors.Is
// ErrCorrupt) that names the file and says what will happen; the caller then moves it aside with
// MoveAside and opens a fresh one: the next session rebuilds by full enumeration and natural-key
// matching, without loss (of an item that differs on the two sides both versions are kept).
//
// Its format 3 (index.go, record3.go) keeps an item in two keys per replica, about 280 bytes an
// item for both replicas of a partnership of small files: versions name their author by a number
// from the replica's author list, a live record leaves out its handle (its key) and what equals
// its usual value, and one index finds an item by its ID and by its current version. Files of
// formats 1 and 2 are rewritten in format 3 when opened (upgrade.go).
//
//	hf, err := repl.Open(path, repl.Options{})
//	if errors.Is(err, repl.ErrCorrupt) { aside, _ := repl.MoveAside(path); ...; hf, err = repl.Open(path, repl.Options{}) }
//	defer hf.Close()
//
// # Sessions (session.go, pass.go, apply.go)
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
// a full mark and sweep (enumerate.go: the store's listing merged with the stored handles as it
// comes, nothing held but what changed, deletions only after an enumeration that finished), or
// only the handles a ChangeSet collected from a Notifier.
// Then the passes: the source sends what the destination's knowledge lacks in batches (Config.
// BatchSize); the destination applies each change with a save action (create, update, rename,
// delete keeping a tombstone, update the version only) and commits the batch's metadata and
// knowledge in one transaction after the data is written. A two-way session runs b -> a, then
// a -> b, then b -> a again if settling conflicts gave b new versions: with b the device, the
// device's changes are saved first (it may be unplugged any moment) and conflicts are settled on
// the desktop. An interrupted session (ctx cancelled, a store error, the device gone) keeps what
// was committed; the next one resumes without sending again what was applied. At its end, the
// tombstones every partner has learned (or older than Config.TombstoneAge) are forgotten
// (forget.go): a partner that comes back after that gets a full comparison, never a wrong delete.
//
// # Conflicts (concurrent.go, collision.go, constraint.go, conflict.go)
//
// Every item carries its made-with knowledge: the versions of that item its current version
// includes. Two versions conflict when neither includes the other. Identical content is never a
// conflict; an edit beats a concurrent delete (a delete whose author saw the content beats a
// change of versions only, or the very content), and the surviving edit goes over the delete
// alone, not over what the deleter had seen, so it still conflicts with other concurrent edits;
// a rename on one side and an edit on the other merge; change units edited on different sides
// merge. The rest is settled by the Policy: Ask records a Conflict and changes nothing until
// Resolve (carried out at once when both stores are given, else by the next Sync); Wins (a named
// side), Newest and KeepBoth decide at once and say so in Report.Decisions. A conflict left to
// the user is a hole in the destination's knowledge, so the rest of a source's knowledge is still
// learned.
//
// Two different items that took one name with no history joining them (made on both sides between
// two syncs, or found after the metadata was lost) are a collision, and a file and a folder of one
// name, or an item whose folder is a file on the other side, a constraint conflict: under every
// policy both are kept, the one that loses the name moves aside under a conflict name
// ("plan (conflict 2026-11-21 device).txt"), and Report.Decisions says so (ReasonCollision,
// ReasonKindClash). Items found on both sides with the same content are one item: the smaller
// global ID survives everywhere, the other becomes a tombstone that says so.
//
// Forecast tells exactly what a session would do, without changing either store or the handle
// file: the session itself runs on a Scratch copy of the handle file, against stores that record
// writes and deletes instead of making them. A session that would delete more than
// Config.MassDeleteThreshold of a replica's items (half by default, at any count: 2 of 3 stops, 1
// of 2 goes through) stops before changing anything with a *MassDeleteError (errors.Is
// ErrMassDelete), unless Config.AllowMassDelete. Progress reports items and bytes at a bounded
// rate. Detect runs detection alone; Conflicts lists what waits for the user.
//
// Every write over an item and every delete tells the store why (WriteRequest.Cause, and
// CauseDeleter for deletes): an update from the other side, a delete there, a conflict the user
// resolved, the policy's decision. A store that keeps what it replaces (a versions area) records
// it with the cause.
//
// # Device metadata (snapshot.go)
//
// ExportReplica writes a replica's metadata as a compact, versioned, checksummed snapshot (the
// manager keeps it in .cradle/ on the device), ConfirmExport records that it was stored, and
// ImportReplica reads one back (defensively: it comes from a device), importing it only when it
// is newer than the local copy, so a device partnered with two computers keeps one identity and
// knowledge. Each handle file mints versions under author IDs of its own, so two computers never
// mint the same version; a handle file restored from a backup (older than what the device knows
// of it) takes new author IDs. When the imported snapshot lacks versions minted here (this
// computer's last snapshot never reached the device, and the other computer has since written
// one), the local items built on those versions give up their claims on them and meet the
// device's items as concurrent versions in the next session.
//
// # Concurrency
//
// A HandleFile is safe for concurrent use, but sessions on one file run one at a time (Sync,
// Forecast, Detect, Resolve and the snapshot calls serialise). Stores are called from the
// session's goroutine only.
package repl
