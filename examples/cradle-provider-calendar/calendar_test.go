package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// uid is the i-th event's UID in the tests.
func uid(i int) string { return fmt.Sprintf("event-%03d@example.org", i) }

// ics is event i at version v, as a calendar program writes it (versions differ in size).
func ics(i, v int) []byte {
	return []byte(fmt.Sprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\n"+
		"DTSTAMP:20260301T120000Z\r\nDTSTART:202603%02dT090000Z\r\nSUMMARY:Event %d\r\nDESCRIPTION:version %d%s\r\n"+
		"END:VEVENT\r\nEND:VCALENDAR\r\n", uid(i), i%28+1, i, v, strings.Repeat(".", v)))
}

// sameEvent compares events by what they say (UID and units), not by bytes.
func sameEvent(want, got []byte) bool {
	a, errA := parseCalendar(want)
	b, errB := parseCalendar(got)
	return errA == nil && errB == nil && len(a.events) == 1 && len(b.events) == 1 &&
		a.events[0].uid == b.events[0].uid && maps.EqualFunc(a.events[0].units, b.events[0].units, func(x, y []byte) bool { return string(x) == string(y) })
}

func harness() repltest.Harness {
	return repltest.Harness{
		Name:         uid,
		Content:      ics,
		SameContent:  sameEvent,
		LargeSize:    -1, // an event is small
		InvalidNames: []string{"", " padded", "nul\x00x", "ctl\x01x", "bad\xffx", "line\nbreak"},
		Units: func(i, v int) repl.Units {
			return repl.Units{
				"SUMMARY":  []byte(fmt.Sprintf("SUMMARY:Event %d", i)),
				"DTSTART":  []byte(fmt.Sprintf("DTSTART:202603%02dT090000Z", i%28+1)),
				"LOCATION": []byte(fmt.Sprintf("LOCATION:Room %d", v)),
			}
		},
	}
}

// TestFolderConformance runs Cradle's conformance suite on the desktop side.
func TestFolderConformance(t *testing.T) {
	h := harness()
	h.New = func(t *testing.T) (repl.Store, repltest.Editor) {
		dir := t.TempDir()
		f, err := OpenFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		return f, folderEditor{dir}
	}
	h.Reopen = func(t *testing.T, s repl.Store) repl.Store {
		f, err := OpenFolder(s.(*Folder).dir)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	repltest.Run(t, h)
}

// folderEditor edits the calendar folder as khal does: one file per event.
type folderEditor struct{ dir string }

func (e folderEditor) Put(name string, data []byte, mod time.Time) (string, error) {
	p := filepath.Join(e.dir, fileName(name))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Chtimes(p, mod, mod)
}

func (e folderEditor) Remove(handle string) error {
	return os.Remove(filepath.Join(e.dir, fileName(handle)))
}

// openDeviceSide opens the device side as Cradle does: through the plugin protocol, on a device
// served over it (here a folder standing for a phone).
func openDeviceSide(t *testing.T, root string) repl.Store {
	t.Helper()
	dev, err := folder.Open(root, folder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return plugin.TestStore(t, func(_ context.Context, env plugin.Env) (repl.Store, error) {
		return OpenDevice(env.Device, env.Options[plugin.DevicePathOption]), nil
	}, providers.Env{Device: dev, Options: map[string]string{plugin.DevicePathOption: DefaultDevicePath}})
}

// TestDeviceConformance runs Cradle's conformance suite on the device side, through the plugin
// protocol as Cradle uses it.
func TestDeviceConformance(t *testing.T) {
	var mu sync.Mutex
	roots := map[repl.Store]string{}
	h := harness()
	h.NoModTime = true // the file has one time, not one per event
	h.New = func(t *testing.T) (repl.Store, repltest.Editor) {
		root := t.TempDir()
		s := openDeviceSide(t, root)
		mu.Lock()
		roots[s] = root
		mu.Unlock()
		return s, &phoneEditor{path: filepath.Join(root, filepath.FromSlash(DefaultDevicePath))}
	}
	h.Reopen = func(t *testing.T, s repl.Store) repl.Store {
		mu.Lock()
		defer mu.Unlock()
		return openDeviceSide(t, roots[s])
	}
	repltest.Run(t, h)
}

// phoneEditor edits the calendar file as a phone's calendar app does: it rewrites the whole file.
type phoneEditor struct {
	path string
	n    int
}

func (e *phoneEditor) edit(uid string, with *event) error {
	data, err := os.ReadFile(e.path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	cal, err := parseCalendar(data)
	if err != nil {
		return err
	}
	switch i := cal.find(uid); {
	case i >= 0 && with != nil:
		cal.events[i] = with
	case i >= 0:
		cal.events = append(cal.events[:i], cal.events[i+1:]...)
	case with != nil:
		cal.events = append(cal.events, with)
	default:
		return os.ErrNotExist
	}
	if err := os.MkdirAll(filepath.Dir(e.path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(e.path, cal.format("20260301T120000Z"), 0o644); err != nil {
		return err
	}
	e.n++ // the phone saves now; step the time so that every edit shows
	mt := time.Now().Add(time.Duration(e.n) * time.Second)
	return os.Chtimes(e.path, mt, mt)
}

func (e *phoneEditor) Put(name string, data []byte, _ time.Time) (string, error) {
	cal, err := parseCalendar(data)
	if err != nil || len(cal.events) != 1 {
		return "", fmt.Errorf("not one event: %v", err)
	}
	return name, e.edit(name, cal.events[0])
}

func (e *phoneEditor) Remove(handle string) error { return e.edit(handle, nil) }

// TestEditsOnBothSidesMerge: an event edited on the phone and another on the computer, and two
// fields of one event edited one on each side, all merge: no conflict, every edit on both sides.
func TestEditsOnBothSidesMerge(t *testing.T) {
	ctx := context.Background()
	deskDir, phoneRoot := t.TempDir(), t.TempDir()
	for i := range 3 {
		if _, err := (folderEditor{deskDir}).Put(uid(i), ics(i, 0), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	desk, err := OpenFolder(deskDir)
	if err != nil {
		t.Fatal(err)
	}
	phone := openDeviceSide(t, phoneRoot)
	hf, err := repl.Open(filepath.Join(t.TempDir(), "state.repl"), repl.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	sync := func() *repl.Report {
		t.Helper()
		rep, err := hf.Sync(ctx, repl.Side{Name: "desktop", Store: desk}, repl.Side{Name: "device", Store: phone}, repl.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	sync()
	edit := func(data []byte, from, to string) []byte {
		s := strings.Replace(string(data), from, to, 1)
		if s == string(data) {
			t.Fatalf("%q is not in the event", from)
		}
		return []byte(s)
	}
	// The computer: event 0's summary, event 2's description.
	folderEditor{deskDir}.Put(uid(0), edit(ics(0, 0), "SUMMARY:Event 0", "SUMMARY:Dentist"), time.Now())
	folderEditor{deskDir}.Put(uid(2), edit(ics(2, 0), "DESCRIPTION:version 0", "DESCRIPTION:bring the slides"), time.Now())
	// The phone: event 1's summary, event 2's start.
	pe := &phoneEditor{path: filepath.Join(phoneRoot, filepath.FromSlash(DefaultDevicePath))}
	pe.Put(uid(1), edit(ics(1, 0), "SUMMARY:Event 1", "SUMMARY:Lunch with Ada"), time.Time{})
	pe.Put(uid(2), edit(ics(2, 0), "DTSTART:20260303T090000Z", "DTSTART:20260303T140000Z"), time.Time{})
	rep := sync()
	if len(rep.Conflicts) != 0 {
		t.Errorf("the session recorded %d conflicts, want none: %+v", len(rep.Conflicts), rep.Conflicts)
	}
	want := map[int][]string{0: {"SUMMARY:Dentist"}, 1: {"SUMMARY:Lunch with Ada"}, 2: {"DESCRIPTION:bring the slides", "DTSTART:20260303T140000Z"}}
	for side, st := range map[string]repl.Store{"computer": desk, "phone": phone} {
		for i, lines := range want {
			u, err := st.(repl.UnitStore).ReadUnits(ctx, uid(i))
			if err != nil {
				t.Fatalf("%s: event %d: %v", side, i, err)
			}
			for _, l := range lines {
				if name := propName(l); string(u[name]) != l {
					t.Errorf("%s: event %d has %s, want %q", side, i, u[name], l)
				}
			}
		}
	}
}
