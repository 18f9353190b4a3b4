// Package demo sets up what `cradle --demo` shows: a config folder, an emulated phone whose
// storage is filled from the sample content in assets/demo, desktop folders, three ready
// partnerships (files: Documents, photos: the camera roll into Pictures, contacts) and one
// conflict waiting for the user (a document that differs on both sides, policy ask). The window's
// tests call it too:
//
//	d, err := demo.Setup(ctx, t.TempDir())
//	m, err := manager.New(ctx, d.Config())
//	err = m.WaitDevices(ctx, d.DeviceKey())
//
// Automatic sync on plug-in is off in the demo, so the window opens with work to do: Sync Now
// imports the pictures. The watchers, which report what changed just before they started, send
// the new document and the contacts within seconds of the window opening, as they would a user's
// edits.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	assets "github.com/cradle-sync/cradle/assets/demo"
	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
	_ "github.com/cradle-sync/cradle/providers/all" // files, photos, contacts
)

// Names of the demo's partnerships.
const (
	Documents = "Documents"
	Photos    = "Camera roll"
	Contacts  = "Contacts"
)

// ConflictFile is the document that differs on the phone and the computer.
const ConflictFile = "Meeting notes.txt"

// Demo is a demo set-up on disk.
type Demo struct {
	// Root holds everything below.
	Root string
	// ConfigDir is the manager's config folder.
	ConfigDir string
	// DeviceDir is the emulated phone's storage.
	DeviceDir string
	// DesktopDir holds the computer's side: Documents, Pictures and Contacts.
	DesktopDir string
	// Monitor attaches the emulated phone (serving DeviceDir).
	Monitor *emulator.Monitor
}

// Config returns the manager configuration of the demo: its config folder, the emulated phone,
// the scheduler on (as the window runs it), no plugins.
func (d *Demo) Config() manager.Config {
	return manager.Config{Dir: d.ConfigDir, Monitors: []device.Monitor{d.Monitor}, Service: true, NoPlugins: true}
}

// DeviceKey is the emulated phone's presence key (for Manager.WaitDevices).
func (d *Demo) DeviceKey() string { return emulator.Key(d.DeviceDir) }

// Serial is the emulated phone's serial number.
func (d *Demo) Serial() string { return emulator.Serial(d.DeviceDir) }

// Setup creates the demo below root (an empty or missing folder): the folders and their content,
// the partnerships, and the waiting conflict (a first session of the Documents partnership
// records it). It takes a few hundred milliseconds.
func Setup(ctx context.Context, root string) (*Demo, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &Demo{
		Root:       root,
		ConfigDir:  filepath.Join(root, "config"),
		DeviceDir:  filepath.Join(root, "phone"),
		DesktopDir: filepath.Join(root, "computer"),
	}
	if err := copyTree(assets.Device(), d.DeviceDir); err != nil {
		return nil, fmt.Errorf("demo: fill the phone: %w", err)
	}
	if err := copyTree(assets.Desktop(), d.DesktopDir); err != nil {
		return nil, fmt.Errorf("demo: fill the computer's folders: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(d.DesktopDir, "Pictures"), 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// The conflicting document: both sides start with what the two versions have in common
	// (synced once), then the computer's edit comes, and the phone's an hour later.
	base := time.Now().Add(-26 * time.Hour).Truncate(time.Second)
	deskNotes := filepath.Join(d.DesktopDir, "Documents", ConflictFile)
	phoneNotes := filepath.Join(d.DeviceDir, "Documents", ConflictFile)
	deskEdit, err := os.ReadFile(deskNotes)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	phoneEdit, err := os.ReadFile(phoneNotes)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	original := commonLines(deskEdit, phoneEdit)
	for _, p := range []string{deskNotes, phoneNotes} {
		if err := os.WriteFile(p, original, 0o644); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		os.Chtimes(p, base.Add(-time.Hour), base.Add(-time.Hour))
	}
	d.Monitor = emulator.NewMonitor(emulator.Options{}, d.DeviceDir)
	if err := d.prepare(ctx, func() error {
		for _, e := range []struct {
			path string
			data []byte
			when time.Time
		}{{deskNotes, deskEdit, base}, {phoneNotes, phoneEdit, base.Add(time.Hour)}} {
			if err := os.WriteFile(e.path, e.data, 0o644); err != nil {
				return err
			}
			if err := os.Chtimes(e.path, e.when, e.when); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// commonLines returns the lines a and b start with alike.
func commonLines(a, b []byte) []byte {
	la, lb := bytes.SplitAfter(a, []byte("\n")), bytes.SplitAfter(b, []byte("\n"))
	var out []byte
	for i := 0; i < len(la) && i < len(lb) && bytes.Equal(la[i], lb[i]); i++ {
		out = append(out, la[i]...)
	}
	return out
}

// prepare adds the partnerships and runs the first Documents session, then edits both sides' copies
// of the notes (edit) and runs a second, which records the conflict, with a manager that runs no scheduler,
// then closes it.
func (d *Demo) prepare(ctx context.Context, edit func() error) (err error) {
	cfg := d.Config()
	cfg.Service = false
	m, err := manager.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if cerr := m.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("demo: %w", cerr)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.WaitDevices(wctx, d.DeviceKey()); err != nil {
		return fmt.Errorf("demo: the emulated phone did not start: %w", err)
	}
	s := m.Settings()
	s.SyncOnConnect = false
	if err := m.SetSettings(s); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	serial := d.Serial()
	docs, err := m.AddPartnership(ctx, manager.Partnership{
		Name: Documents, Provider: "files", Device: serial,
		Options:   map[string]string{"desktop": filepath.Join(d.DesktopDir, "Documents"), "device-path": "Documents"},
		Direction: manager.TwoWay, OnConflict: manager.PolicyAsk,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := m.AddPartnership(ctx, manager.Partnership{
		Name: Photos, Provider: "photos", Device: serial,
		Options:   map[string]string{"desktop": filepath.Join(d.DesktopDir, "Pictures"), "device-path": "DCIM"},
		Direction: manager.ToDesktop, OnConflict: manager.PolicyAsk,
	}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := m.AddPartnership(ctx, manager.Partnership{
		Name: Contacts, Provider: "contacts", Device: serial,
		Options:   map[string]string{"desktop": filepath.Join(d.DesktopDir, "Contacts"), "device-path": "Contacts/contacts.vcf"},
		Direction: manager.TwoWay, OnConflict: manager.PolicyAsk,
	}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := m.Sync(ctx, manager.SyncOptions{}, docs.ID); err != nil {
		return fmt.Errorf("demo: first sync of the documents: %w", err)
	}
	if err := edit(); err != nil {
		return fmt.Errorf("demo: the edits on both sides: %w", err)
	}
	sessions, err := m.Sync(ctx, manager.SyncOptions{}, docs.ID)
	if err != nil {
		return fmt.Errorf("demo: second sync of the documents: %w", err)
	}
	if len(sessions) != 1 || sessions[0].Conflicts != 1 {
		return fmt.Errorf("demo: the second sync of the documents left %v, want one conflict", sessions)
	}
	// Something new on the computer, for the watcher (or Sync Now) to send.
	note := "Packing list\n\n- passport\n- charger\n- the book for Ana\n"
	if err := os.WriteFile(filepath.Join(d.DesktopDir, "Documents", "Packing list.txt"), []byte(note), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// copyTree copies the files of src into the folder dst (created), keeping a fixed, plausible
// modification time (embedded files have none).
func copyTree(src fs.FS, dst string) error {
	when := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	return fs.WalkDir(src, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := src.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s exists already: the demo needs an empty folder", target)
			}
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chtimes(target, when, when)
	})
}
