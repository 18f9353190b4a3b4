package manager

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
)

// folderPrint hashes every file below dir with its modification time and size, so that a test
// can tell that nothing was written.
func folderPrint(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%x %d %d", sha256.Sum256(b), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSettingsErrorWritesNothing: New with a settings file it cannot read writes nothing in the
// config folder: not the settings file, not the history database, not the lock.
func TestSettingsErrorWritesNothing(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	w.addDocs(m)
	m.Close()
	path := filepath.Join(w.config, SettingsFile)
	if err := os.WriteFile(path, []byte("version = 1\n[settings\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := folderPrint(t, w.config)
	_, err := New(ctxT(t), Config{Dir: w.config, NoPlugins: true})
	var se *SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("New with a damaged settings file = %v, want a *SettingsError", err)
	}
	after := folderPrint(t, w.config)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s was written by New with a damaged settings file", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s was created by New with a damaged settings file", k)
		}
	}
}

// damageLog collects a manager's log.
type damageLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *damageLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *damageLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmptyStateFile: a partnership's state file found empty (a disk that filled up, a file
// system that lost it) is damage like any other: it is moved aside and the user is told, not
// silently taken for a new partnership.
func TestEmptyStateFile(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "a.txt"), "a")
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	m.Close()
	state := filepath.Join(w.config, "state", p.ID+".repl")
	if err := os.Truncate(state, 0); err != nil {
		t.Fatal(err)
	}
	var log damageLog
	w.mon = emulator.NewMonitor(emulator.Options{}, w.phone)
	m2, err := New(ctxT(t), Config{Dir: w.config, Monitors: nil, NoPlugins: true,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	aside, _ := filepath.Glob(state + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("the empty state file was not moved aside (found %v)", aside)
	}
	if !strings.Contains(log.String(), "damaged") {
		t.Errorf("nothing said about the empty state file; log:\n%s", log.String())
	}
}

// TestMissingStateFile: a partnership's state file found missing after the partnership has
// synced (someone deleted it) is rebuilt, and the user is told.
func TestMissingStateFile(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "a.txt"), "a")
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := os.Remove(filepath.Join(w.config, "state", p.ID+".repl")); err != nil {
		t.Fatal(err)
	}
	var log damageLog
	m2, err := New(ctxT(t), Config{Dir: w.config, NoPlugins: true,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !strings.Contains(log.String(), "missing") {
		t.Errorf("nothing said about the missing state file; log:\n%s", log.String())
	}
}

// TestStateDamagedMidSession: damage the handle file cannot see when it opens (a page of the
// desktop replica's records) is found in the middle of a session; the session moves the file
// aside, says so, and syncs again with a rebuilt state, instead of failing at every sync.
func TestStateDamagedMidSession(t *testing.T) {
	w := newWorld(t)
	for i := range 60 {
		writeFile(t, filepath.Join(w.desktop, fmt.Sprintf("f%02d.txt", i)), strings.Repeat("x", i))
	}
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	if _, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil {
		t.Fatal(err)
	}
	m.Close()
	state := filepath.Join(w.config, "state", p.ID+".repl")
	damagePage(t, state, "replicas", "desktop")
	var log damageLog
	w.mon = emulator.NewMonitor(emulator.Options{}, w.phone)
	m2, err := New(ctxT(t), Config{Dir: w.config, Monitors: []device.Monitor{w.mon}, NoPlugins: true,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	w.waitDevice(m2)
	ss, err := m2.Sync(ctxT(t), SyncOptions{}, p.ID)
	if err != nil || len(ss) != 1 || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync with a handle file damaged inside = %+v, %v; want it rebuilt and the session ok", ss, err)
	}
	if aside, _ := filepath.Glob(state + ".corrupt-*"); len(aside) != 1 {
		t.Errorf("the damaged state file was not moved aside (found %v)", aside)
	}
	if !strings.Contains(log.String(), "damaged") || strings.Contains(log.String(), "missing") {
		t.Errorf("the log should say once that the state file was damaged (and not that it went missing):\n%s", log.String())
	}
	if got := readFile(t, filepath.Join(w.phone, "Documents", "f59.txt")); got != strings.Repeat("x", 59) {
		t.Errorf("f59.txt on the device = %q after the rebuild", got)
	}
}

// damagePage overwrites the root page of the bucket at path (bucket names, outermost first)
// with garbage, leaving the pages bbolt reads when it opens the file intact.
func damagePage(t *testing.T, file string, buckets ...string) {
	t.Helper()
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var pgid uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(buckets[0]))
		for _, name := range buckets[1:] {
			if b == nil {
				break
			}
			b = b.Bucket([]byte(name))
		}
		if b == nil {
			return fmt.Errorf("no bucket %v", buckets)
		}
		pgid = uint64(b.Root())
		return nil
	})
	size := db.Info().PageSize
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if pgid == 0 {
		t.Fatalf("bucket %v is inline: no page of its own to damage", buckets)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xa5", size)), int64(pgid)*int64(size)); err != nil {
		t.Fatal(err)
	}
}
