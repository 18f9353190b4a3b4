package manager

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/repl"
)

// logBuffer collects a manager's log lines; safe for the manager's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// TestDeviceMetadataHidden: a device that hides names starting with a dot (QEMU's usb-mtp) cannot
// keep .cradle. Sessions then keep the device replica's metadata on this computer only, without
// an error in any session and with one warning in the log, also in a later run; the device is
// asked again a day later, quietly.
func TestDeviceMetadataHidden(t *testing.T) {
	w := newWorld(t)
	logs := &logBuffer{}
	open := func() *Manager {
		t.Helper()
		mon := emulator.NewMonitor(emulator.QEMU(), w.phone)
		m, err := New(ctxT(t), Config{Dir: w.config, Monitors: []device.Monitor{mon}, NoPlugins: true,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		w.waitDevice(m)
		return m
	}
	const warning = "the device cannot keep Cradle's sync state"
	n := 0
	step := func(m *Manager, p Partnership) {
		t.Helper()
		n++
		writeFile(t, filepath.Join(w.desktop, "file"+string(rune('0'+n))+".txt"), "change")
		ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
		if err != nil || len(ss) != 1 {
			t.Fatalf("sync %d = %+v, %v", n, ss, err)
		}
		if s := ss[0]; s.Outcome != OutcomeOK || len(s.Errors) > 0 || s.ToDevice.Created != 1 {
			t.Errorf("sync %d = outcome %v, errors %q, %d created on the device; want OK without errors, the new file sent",
				n, s.Outcome, s.Errors, s.ToDevice.Created)
		}
	}

	m := open()
	p := w.addDocs(m)
	step(m, p)
	step(m, p)
	m.Close()
	m = open() // a later run of Cradle
	step(m, p)
	if got := logs.count(warning); got != 1 {
		t.Errorf("the log says %d times that the device cannot keep the sync state, want once:\n%s", got, logs.buf.String())
	}
	if mark, ok := m.db.exportMark(p.ID); !ok || !mark.Local {
		t.Errorf("export mark = %+v, %v; want the metadata kept locally", mark, ok)
	}

	// A day later the device is asked again; it still cannot, and nobody is told again.
	if err := m.db.putExportMark(p.ID, exportMark{Local: true, Checked: time.Now().Add(-metaLocalRecheck - time.Minute)}); err != nil {
		t.Fatal(err)
	}
	step(m, p)
	if mark, _ := m.db.exportMark(p.ID); !mark.Local || time.Since(mark.Checked) > time.Minute {
		t.Errorf("export mark after the recheck = %+v, want checked again now", mark)
	}
	if got := logs.count(warning); got != 1 {
		t.Errorf("after the recheck the log says %d times that the device cannot keep the sync state, want once", got)
	}
	m.Close()

	for _, f := range []string{"file1.txt", "file4.txt"} {
		if b, err := os.ReadFile(filepath.Join(w.phone, "Documents", f)); err != nil || string(b) != "change" {
			t.Errorf("%s on the device = %q, %v; want it synced", f, b, err)
		}
	}
	snaps, _ := filepath.Glob(filepath.Join(w.phone, ".cradle", "*"))
	probes, _ := filepath.Glob(filepath.Join(w.phone, "Documents", ".cradle-*"))
	if len(snaps)+len(probes) > 0 {
		t.Errorf("the device holds %q %q, objects it does not show; want none", snaps, probes)
	}
}

// TestDeviceMetadataShared: two computers (config folders) syncing one phone share the device
// replica through .cradle/, and a damaged snapshot is replaced without duplicating anything.
func TestDeviceMetadataShared(t *testing.T) {
	a := newWorld(t)
	writeFile(t, filepath.Join(a.desktop, "x.txt"), "x")
	ma := a.open(false)
	a.waitDevice(ma)
	pa := a.addDocs(ma)
	if _, err := ma.Sync(ctxT(t), SyncOptions{}, pa.ID); err != nil {
		t.Fatal(err)
	}
	ma.Close()

	b := &world{t: t, config: filepath.Join(t.TempDir(), "config-b"), desktop: filepath.Join(t.TempDir(), "desktop-b"), phone: a.phone,
		mon: emulator.NewMonitor(emulator.Options{}, a.phone)}
	os.MkdirAll(b.desktop, 0o755)
	mb := b.open(false)
	b.waitDevice(mb)
	pb := b.addDocs(mb)
	ss, err := mb.Sync(ctxT(t), SyncOptions{}, pb.ID)
	if err != nil || ss[0].Outcome != OutcomeOK || ss[0].ToDesktop.Created != 1 {
		t.Fatalf("B's first sync = %+v, %v", ss, err)
	}
	mb.Close()

	deviceReplica := func(config, id string) repl.ReplicaID {
		hf, err := repl.Open(filepath.Join(config, "state", id+".repl"), repl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer hf.Close()
		rs, err := hf.Replicas()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Name == sideDevice {
				return r.ID
			}
		}
		t.Fatalf("no device replica in %s", config)
		return repl.ReplicaID{}
	}
	if ra, rb := deviceReplica(a.config, pa.ID), deviceReplica(b.config, pb.ID); ra != rb {
		t.Errorf("the device replica is %v on A and %v on B; want one identity", ra, rb)
	}
	snaps, _ := filepath.Glob(filepath.Join(a.phone, ".cradle", "*.snapshot"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots on the phone = %v, want one (the older removed)", snaps)
	}
	// Damage it: A falls back on its own copy, says so, and writes a good one.
	if err := os.WriteFile(snaps[0], []byte("CRADLE-SNAPSHOT\ngarbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.mon = emulator.NewMonitor(emulator.Options{}, a.phone)
	ma = a.open(false)
	a.waitDevice(ma)
	ss, err = ma.Sync(ctxT(t), SyncOptions{}, pa.ID)
	if err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync with a damaged snapshot = %+v, %v", ss, err)
	}
	if !strings.Contains(strings.Join(ss[0].Errors, " "), "could not be read") {
		t.Errorf("session errors = %v, want a word about the unreadable device metadata", ss[0].Errors)
	}
	if c := ss[0]; c.ToDesktop.Created+c.ToDevice.Created != 0 {
		t.Errorf("sync with a damaged snapshot created items: %+v", c)
	}
	after, _ := filepath.Glob(filepath.Join(a.phone, ".cradle", "*.snapshot"))
	if len(after) != 1 || after[0] == snaps[0] {
		t.Errorf("snapshots after = %v, want a new one in place of %s", after, snaps[0])
	}
	ents, _ := os.ReadDir(a.desktop)
	if len(ents) != 1 {
		t.Errorf("desktop holds %d entries, want x.txt alone", len(ents))
	}
}
