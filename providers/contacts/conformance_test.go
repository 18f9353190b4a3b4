package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// testUID is the i-th item name of the conformance runs: UIDs as khard (a URN) and as other
// programs (plain) write them.
func testUID(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("urn:uuid:6f1c2a4e-0000-4000-8000-%012d", i)
	}
	return fmt.Sprintf("contact-%03d@cradle.test", i)
}

// testCard is a vCard 3.0 for item i at version v; versions differ in size.
func testCard(i, v int) []byte {
	return []byte(fmt.Sprintf("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nN:Person;Number %d;;;\r\nFN:Number %d Person\r\n"+
		"TEL;TYPE=cell:+44 20 7946 %04d\r\nNOTE:version %d%s\r\nEND:VCARD\r\n", testUID(i), i, i, v, v, bytes.Repeat([]byte("."), v)))
}

func testUnits(i, v int) repl.Units {
	return repl.Units{
		"FN":         []byte(fmt.Sprintf("FN:Number %d Person", i)),
		"TEL;CELL":   []byte(fmt.Sprintf("TEL;TYPE=cell:+44 20 7946 %04d", v)),
		"TEL;HOME":   []byte(fmt.Sprintf("TEL;TYPE=home:+44 20 7946 9%03d", i)),
		"EMAIL;HOME": []byte(fmt.Sprintf("EMAIL;TYPE=home:p%d@example.org", i)),
		"X-FOO":      []byte(fmt.Sprintf("X-FOO;X-BAR=baz:unknown\\, kept %d", v)),
	}
}

// sameCard compares cards by what they say (units and UID), not by bytes.
func sameCard(want, got []byte) bool {
	a, errA := parseSingle(want)
	b, errB := parseSingle(got)
	return errA == nil && errB == nil && a.uid() == b.uid() && reflect.DeepEqual(a.units(), b.units())
}

var invalidUIDs = []string{"", " padded", "nul\x00x", "ctl\x01x", "bad\xffx", "line\nbreak"}

func harness(newStore func(t *testing.T) (repl.Store, repltest.Editor), reopen func(t *testing.T, s repl.Store) repl.Store) repltest.Harness {
	return repltest.Harness{
		New:          newStore,
		Reopen:       reopen,
		Name:         testUID,
		Content:      testCard,
		SameContent:  sameCard,
		LargeSize:    -1,
		InvalidNames: invalidUIDs,
		Units:        testUnits,
	}
}

func TestDesktopConformance(t *testing.T) {
	h := harness(func(t *testing.T) (repl.Store, repltest.Editor) {
		dir := t.TempDir()
		s, err := NewDesktop(dir, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s, vdirEditor{dir}
	}, func(t *testing.T, s repl.Store) repl.Store {
		s2, err := NewDesktop(s.(*Desktop).Dir(), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s2
	})
	repltest.Run(t, h)
}

// vdirEditor edits the address book folder as khard would: one file per card, written in place.
type vdirEditor struct{ dir string }

func (e vdirEditor) find(uid string) (string, error) {
	des, err := os.ReadDir(e.dir)
	if err != nil {
		return "", err
	}
	for _, de := range des {
		if !isCardFile(de.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(e.dir, de.Name()))
		if err != nil {
			return "", err
		}
		if c, err := parseSingle(data); err == nil && c.uid() == uid {
			return filepath.Join(e.dir, de.Name()), nil
		}
	}
	return "", os.ErrNotExist
}

func (e vdirEditor) Put(name string, data []byte, modTime time.Time) (string, error) {
	path, err := e.find(name)
	if errors.Is(err, os.ErrNotExist) {
		path = filepath.Join(e.dir, fmt.Sprintf("khard-%x.vcf", name))
	} else if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Chtimes(path, modTime, modTime)
}

func (e vdirEditor) Remove(handle string) error {
	path, err := e.find(handle)
	if err != nil {
		return err
	}
	return os.Remove(path)
}

func TestDeviceConformance(t *testing.T) {
	h := harness(func(t *testing.T) (repl.Store, repltest.Editor) {
		root := t.TempDir()
		dev, err := folder.Open(root, folder.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		s, err := NewDeviceFile(dev, DefaultDevicePath, t.TempDir(), t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s, &phoneEditor{path: filepath.Join(root, filepath.FromSlash(DefaultDevicePath))}
	}, func(t *testing.T, s repl.Store) repl.Store {
		old := s.(*DeviceFile)
		s2, err := NewDeviceFile(old.dev, old.spec, old.stateDir, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s2
	})
	h.NoModTime = true // the file keeps one modification time, not one per card
	repltest.Run(t, h)
}

// phoneEditor edits the contacts file as a phone's contacts app does: it rewrites the whole
// file, cards in place, new ones at the end.
type phoneEditor struct {
	path string
	n    int
}

func (e *phoneEditor) edit(uid string, replace []byte) error {
	data, err := os.ReadFile(e.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out []byte
	found := false
	for _, seg := range splitFile(data) {
		if seg.card {
			if c, err := parseCard(seg.raw, seg.line); err == nil && c.uid() == uid {
				found = true
				out = append(out, replace...)
				continue
			}
		}
		out = append(out, seg.raw...)
	}
	if !found {
		if replace == nil {
			return os.ErrNotExist
		}
		out = append(out, replace...)
	}
	if err := os.MkdirAll(filepath.Dir(e.path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(e.path, out, 0o644); err != nil {
		return err
	}
	// A phone writes the file now; step the time so every edit shows even on coarse clocks.
	e.n++
	mt := time.Now().Add(time.Duration(e.n) * time.Second)
	return os.Chtimes(e.path, mt, mt)
}

func (e *phoneEditor) Put(name string, data []byte, modTime time.Time) (string, error) {
	return name, e.edit(name, data)
}

func (e *phoneEditor) Remove(handle string) error { return e.edit(handle, nil) }

// TestDeviceConformanceThroughAPlugin runs the device side's conformance suite as a provider
// plugin's device side runs: the store in the plugin, the device served by Cradle over the plugin
// connection (plugin.DeviceSide). What a built-in provider's device side can do, a plugin's can.
// The store defers its uploads (a repl.Flusher): the plugin's server makes each change reach the
// device before it answers, as the host's engine does not flush across the boundary.
func TestDeviceConformanceThroughAPlugin(t *testing.T) {
	open := func(ctx context.Context, env plugin.Env) (repl.Store, error) {
		s, err := NewDeviceFile(env.Device, env.Options[OptDevicePath], env.StateDir, t.Logf)
		if err == nil {
			s.DeferUploads()
		}
		return s, err
	}
	stores := map[repl.Store]providers.Env{}
	var mu sync.Mutex
	h := harness(func(t *testing.T) (repl.Store, repltest.Editor) {
		root := t.TempDir()
		dev, err := folder.Open(root, folder.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		env := providers.Env{Device: dev, StateDir: t.TempDir(), Options: map[string]string{OptDevicePath: DefaultDevicePath}}
		s := plugin.TestStore(t, open, env)
		mu.Lock()
		stores[s] = env
		mu.Unlock()
		return s, &phoneEditor{path: filepath.Join(root, filepath.FromSlash(DefaultDevicePath))}
	}, func(t *testing.T, s repl.Store) repl.Store {
		mu.Lock()
		env := stores[s]
		mu.Unlock()
		return plugin.TestStore(t, open, env)
	})
	h.NoModTime = true
	repltest.Run(t, h)
}
