// Package manager is Cradle's service manager: it notices devices coming and going, keeps the
// partnerships set up for each, decides when to sync (on plug-in, on a provider's change
// notifications after a quiet period, on a schedule, after a failure, or when asked), runs the
// sessions with the replication engine (repl), keeps the conflict queue and the history, and tells
// the window and the command line what happens through an event stream.
//
// The window (ui/) and the command line (internal/cli) hold no sync logic: everything they show
// comes from a Manager's methods and events.
//
//	m, err := manager.New(ctx, manager.Config{Dir: configDir, Monitors: monitors, Service: true})
//	defer m.Close()
//	sub := m.Subscribe(manager.EventAll)
//	defer sub.Close()
//	for ev := range sub.C() { ... }
//
// # The config folder
//
// Config.Dir holds everything a Manager keeps on this computer:
//
//	settings.toml      the settings and partnerships, human-readable, written atomically
//	cradle.db          history, devices seen, conflict previews (bbolt)
//	cradle.pid         the process that holds the folder (one Cradle at a time)
//	state/<ID>.repl    one handle file per partnership (repl)
//	state/<ID>/        the partnership's provider state (journals, import logs)
//	plugins/           provider plugins (cradle-provider-NAME executables)
//
// A settings file that cannot be read is never repaired or overwritten: New fails with a
// *SettingsError naming the file and the line. A second process using the same folder gets
// ErrRunning ("Cradle is already running (pid N)") instead of waiting.
//
// # Device metadata
//
// At the end of every session the device replica's snapshot (repl.HandleFile.ExportReplica) is
// written to the hidden folder .cradle/ at the top of the partnership's device storage, the new
// object first and the old one removed after, under a name derived from the provider and the
// device path; at the start of a session the newest one is read back (ImportReplica), so a
// device partnered with two computers syncs with each without false conflicts. A missing or
// damaged snapshot leaves the local copy in use, or, on a first sync, a careful matching by
// natural key: never duplicates.
//
// # Scheduling
//
// One session runs at a time per device; several devices sync at once. Sessions start from
// SyncNow/Sync (TriggerManual), a plug-in (TriggerConnect, when Settings.SyncOnConnect), change
// notifications from either store after DebounceDelay of quiet, or DebounceMax after the first of
// a stream of them (TriggerChange), the partnership's
// interval (TriggerSchedule) and, after a failed session, Settings.RetryInterval (TriggerRetry).
// A store implementing repl.Monitoring can ask for no more automatic sessions.
//
// # Concurrency
//
// Every exported method of Manager is safe for concurrent use. Methods that take a ctx may block
// (they read devices or files); the others return at once from memory. Events are delivered on
// buffered channels; a subscriber that does not keep up loses events (counted by Dropped) and
// never slows a session down.
//
// # Files
//
// manager.go (New, Close, settings), devices.go (devices coming and going, each device's
// worker), jobs.go (the per-device job queue), watchers.go (store notifications, debounce),
// schedule.go (the timers that queue syncs), syncjob.go (one sync job: open, import the device
// metadata, sync with repl, export it, record), meta.go (the device metadata in .cradle/),
// handlefile.go (each partnership's handle file), partner.go and settings.go (partnerships and
// settings.toml), conflicts.go, state.go (status), events.go, db.go (cradle.db). "Session" in
// this package's exported names (Session, SessionStarted) is a sync job's record; the words are
// explained in docs/design.md, with the package map.
package manager
