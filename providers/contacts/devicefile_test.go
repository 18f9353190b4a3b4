package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/device/mtp"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// phoneFolder is a phone's storage, a folder holding data as its contacts file at path (no file
// when data is nil).
func phoneFolder(t *testing.T, data []byte) (root, path string) {
	t.Helper()
	root = t.TempDir()
	path = filepath.Join(root, filepath.FromSlash(DefaultDevicePath))
	if data != nil {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, path
}

// androidCards is a contacts file as an Android phone exports it (vCard 2.1, quoted-printable).
func androidCards(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// folderPhone is a folder device holding data as its contacts file.
func folderPhone(t *testing.T, data []byte) (root string, dev *folder.Device) {
	t.Helper()
	root, _ = phoneFolder(t, data)
	dev, err := folder.Open(root, folder.Options{NoEvents: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return root, dev
}

// emulatedPhone serves root over MTP (the real protocol, in-process).
func emulatedPhone(t *testing.T, root string, opts emulator.Options) (*emulator.Emulator, *mtp.Device) {
	t.Helper()
	opts.Logger = quietLogger()
	e, err := emulator.New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mtp.Open(ctxT(t), e, mtp.Options{Logger: opts.Logger, Transport: "mtp-emulated"})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); e.Close() })
	return e, d
}

func handles(t *testing.T, s repl.Store) []string {
	t.Helper()
	it, err := s.Enumerate(ctxT(t))
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	defer it.Close()
	var hs []string
	for {
		e, err := it.Next(ctxT(t))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, e.Handle)
	}
	sort.Strings(hs)
	return hs
}

// replicated lists the handles the engine syncs (held, unreadable cards left out).
func replicated(t *testing.T, s repl.Store) []string {
	t.Helper()
	var out []string
	for _, h := range handles(t, s) {
		e, err := s.(repl.Stater).Stat(ctxT(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if s.IsItemReplicated(e) {
			out = append(out, h)
		}
	}
	return out
}

func handleOf(t *testing.T, s *DeviceFile, fn string) string {
	t.Helper()
	for _, h := range handles(t, s) {
		u, err := s.ReadUnits(ctxT(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if string(u["FN"]) == "FN:"+fn {
			return h
		}
	}
	t.Fatalf("no card %q on the device", fn)
	return ""
}

// A malformed card in the middle of the device file is reported with its line, left out of the
// sync, and kept byte for byte when Cradle rewrites the file.
func TestDeviceMalformedCardsKept(t *testing.T) {
	data, err := os.ReadFile("testdata/malformed.vcf")
	if err != nil {
		t.Fatal(err)
	}
	root, dev := folderPhone(t, data)
	var logged []string
	s, err := NewDeviceFile(dev, "", t.TempDir(), func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatal(err)
	}
	if got := replicated(t, s); strings.Join(got, " ") != "good-1 good-2" {
		t.Fatalf("replicated handles = %v, want [good-1 good-2]", got)
	}
	// The broken cards are listed under the UIDs found in them, held: not synced, not deleted.
	if got := handles(t, s); strings.Join(got, " ") != "bad-1 cut-1 good-1 good-2" {
		t.Fatalf("handles = %v, want the held bad-1 and cut-1 too", got)
	}
	if _, err := s.ReadUnits(ctxT(t), "bad-1"); !errors.Is(err, repl.ErrChanged) || !strings.Contains(err.Error(), "line 12") {
		t.Errorf("ReadUnits(bad-1) = %v, want a refusal naming line 12", err)
	}
	probs := s.Problems()
	if len(probs) != 2 || !strings.Contains(probs[0].Error(), "line 12") || !strings.Contains(probs[1].Error(), "line 14") {
		t.Fatalf("Problems() = %v, want the malformed line 12 and the unterminated card at line 14", probs)
	}
	if !strings.Contains(probs[0].Error(), DefaultDevicePath) || !strings.Contains(probs[0].Error(), "kept in the file") {
		t.Errorf("problem %q should name the file and say the card is kept", probs[0])
	}
	if len(logged) != 2 {
		t.Errorf("logged %q, want each problem once", logged)
	}
	handles(t, s) // a second read logs nothing new
	if len(logged) != 2 {
		t.Errorf("logged %q after a second read, want no repeats", logged)
	}
	st, _ := s.Stat(ctxT(t), "good-1")
	if err := s.Delete(ctxT(t), "good-1", st.Stamp()); err != nil {
		t.Fatalf("Delete(good-1): %v", err)
	}
	after, err := os.ReadFile(filepath.Join(root, DefaultDevicePath))
	if err != nil {
		t.Fatal(err)
	}
	segs := splitFile(data)
	want := string(segs[1].raw) + string(segs[2].raw) + string(segs[3].raw)
	if string(after) != want {
		t.Errorf("after deleting good-1 the file is\n%q\nwant the other cards byte for byte\n%q", after, want)
	}
}

// A card without UID keeps its identity when the phone edits it (and exports the file again
// without UIDs), and once Cradle has written the file the card carries it as its UID.
func TestDeviceNoUIDStableIdentity(t *testing.T) {
	data, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	root, dev := folderPhone(t, data)
	path := filepath.Join(root, filepath.FromSlash(DefaultDevicePath))
	state := t.TempDir()
	open := func(state string) *DeviceFile {
		s, err := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(state)
	all := handles(t, s)
	if len(all) != 4 {
		t.Fatalf("handles = %v, want 4 cards", all)
	}
	for _, h := range all {
		if !strings.HasPrefix(h, idPrefix) {
			t.Errorf("card without UID has handle %q, want a derived ID", h)
		}
	}
	h := handleOf(t, s, "Jürgen Müller")
	if k, _ := s.NaturalKey(ctxT(t), repl.Entry{Handle: h}); k != h {
		t.Errorf("NaturalKey of an unedited card = %q, want its derived key %q", k, h)
	}

	steps := []struct{ what, old, new string }{
		{"phone number edited", "TEL;CELL:+49 170 1234567", "TEL;CELL:+49 170 0000001"},
		{"name edited (phone kept)", "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=4A=C3=BC=72=67=65=6E=20=4D=C3=BC=6C=6C=65=72", "FN:Juergen Mueller"},
	}
	for _, st := range steps {
		editFile(t, path, st.old, st.new)
		s = open(state) // a new session, as after plugging the phone in again
		if got := handles(t, s); len(got) != 4 || !contains(got, h) {
			t.Fatalf("after %s: handles = %v, want %q still there", st.what, got, h)
		}
	}
	if got := handleOf(t, s, "Juergen Mueller"); got != h {
		t.Errorf("edited card has handle %q, want %q", got, h)
	}

	// Cradle writes the file (an edit of another card): every card gets its ID as UID, and from
	// then on even a computer without the ID map sees the same handles.
	other := handleOf(t, s, "John Smith")
	u, _ := s.ReadUnits(ctxT(t), other)
	u["TITLE"] = []byte("TITLE:Engineer")
	e, _ := s.Stat(ctxT(t), other)
	stamp := e.Stamp()
	if _, err := s.WriteUnits(ctxT(t), repl.WriteRequest{Handle: other, Expected: &stamp, Name: other, Kind: repl.KindFile, Size: -1}, u); err != nil {
		t.Fatalf("WriteUnits: %v", err)
	}
	after, _ := os.ReadFile(path)
	if n := bytes.Count(after, []byte("\r\nUID:"+idPrefix)); n != 4 {
		t.Errorf("file has %d derived UIDs written in, want 4:\n%s", n, after)
	}
	fresh := open(t.TempDir())
	if got, want := handles(t, fresh), handles(t, s); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("handles without the ID map = %v, want %v", got, want)
	}
}

// Two identical cards without UID get distinct, stable handles.
func TestDeviceTwinCards(t *testing.T) {
	twin := "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;Jane;;;\r\nFN:Jane Doe\r\nTEL;CELL:555\r\nEND:VCARD\r\n"
	_, dev := folderPhone(t, []byte(twin+twin))
	state := t.TempDir()
	s, _ := NewDeviceFile(dev, "", state, t.Logf)
	first := handles(t, s)
	if len(first) != 2 || first[0] == first[1] {
		t.Fatalf("handles of twins = %v, want two distinct", first)
	}
	s2, _ := NewDeviceFile(dev, "", state, t.Logf)
	if again := handles(t, s2); strings.Join(again, " ") != strings.Join(first, " ") {
		t.Errorf("handles of twins in a new session = %v, want %v", again, first)
	}
}

// The device side over real MTP: an Android-like phone (renames) and a QEMU-like one (no rename,
// dot-files hidden), each through the conformance suite.
func TestDeviceConformanceMTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts emulator.Options
	}{{"android", emulator.Options{}}, {"qemu", emulator.QEMU()}} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness(func(t *testing.T) (repl.Store, repltest.Editor) {
				root := t.TempDir()
				_, dev := emulatedPhone(t, root, tc.opts)
				s, err := NewDeviceFile(dev, DefaultDevicePath, t.TempDir(), t.Logf)
				if err != nil {
					t.Fatal(err)
				}
				return s, &phoneEditor{path: filepath.Join(root, filepath.FromSlash(DefaultDevicePath))}
			}, nil)
			h.NoModTime = true
			repltest.Run(t, h)
		})
	}
}

// A rewrite cut short by an unplug between deleting the old file and creating the new one (a
// device without rename) loses nothing: the next session puts the previous file back.
func TestDeviceUnplugMidRewrite(t *testing.T) {
	data := androidCards(t)
	root, path := phoneFolder(t, data)
	state := t.TempDir()
	emu, dev := emulatedPhone(t, root, emulator.QEMU())
	s, err := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	before := handles(t, s)
	// A first write teaches the store that this device cannot rename.
	h := handleOf(t, s, "John Smith")
	edit := func(s *DeviceFile, title string) error {
		u, err := s.ReadUnits(ctxT(t), h)
		if err != nil {
			return err
		}
		u["TITLE"] = []byte("TITLE:" + title)
		e, err := s.Stat(ctxT(t), h)
		if err != nil {
			return err
		}
		stamp := e.Stamp()
		_, err = s.WriteUnits(ctxT(t), repl.WriteRequest{Handle: h, Expected: &stamp, Name: h, Kind: repl.KindFile, Size: -1}, u)
		return err
	}
	if err := edit(s, "One"); err != nil {
		t.Fatalf("first write: %v", err)
	}
	previous, _ := os.ReadFile(path)
	// Unplug once the old file is deleted and part of the new one is sent.
	emu.DisconnectAfter(-1, 1500)
	err = edit(s, "Two")
	if !errors.Is(err, repl.ErrGone) {
		t.Fatalf("write cut by an unplug = %v, want an error matching repl.ErrGone", err)
	}
	if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, previous) {
		t.Fatalf("the unplug came too late to test anything: the device still has the previous file")
	}
	if _, err := os.Stat(filepath.Join(state, "device-write.json")); err != nil {
		t.Fatalf("no write journal after an interrupted write: %v", err)
	}

	// Plugged in again: the previous file is back, whole.
	_, dev2 := emulatedPhone(t, root, emulator.QEMU())
	s2, err := NewDeviceFile(dev2, DefaultDevicePath, state, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if got := handles(t, s2); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Errorf("handles after recovery = %v, want %v", got, before)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, previous) {
		t.Errorf("recovered file differs from the previous one:\n%s\nwant\n%s", got, previous)
	}
	for _, f := range []string{"device-write.json", "device-previous.vcf"} {
		if _, err := os.Stat(filepath.Join(state, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in the state folder after recovery (%v)", f, err)
		}
	}
	if err := edit(s2, "Two"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}

// On a device that renames, a rewrite swaps the files and leaves nothing beside them.
func TestDeviceSwapLeavesNothing(t *testing.T) {
	root, path := phoneFolder(t, androidCards(t))
	state := t.TempDir()
	_, dev := emulatedPhone(t, root, emulator.Options{})
	s, _ := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
	h := handleOf(t, s, "Émilie Dupont")
	e, _ := s.Stat(ctxT(t), h)
	if err := s.Delete(ctxT(t), h, e.Stamp()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	des, _ := os.ReadDir(filepath.Dir(path))
	if len(des) != 1 || des[0].Name() != "contacts.vcf" {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("Contacts/ holds %v after a rewrite, want only contacts.vcf", names)
	}
	if st, _ := os.ReadDir(state); len(st) != 1 || st[0].Name() != "contact-ids.json" {
		t.Errorf("state folder holds %v after a completed write, want only the ID map", st)
	}
	if got := handles(t, s); len(got) != 3 || contains(got, h) {
		t.Errorf("handles after Delete(%q) = %v", h, got)
	}
}

func TestResolveDevicePath(t *testing.T) {
	storages := []device.Storage{
		{ID: 0x10001, Description: "Internal shared storage"},
		{ID: 0x20001, Description: "SD card"},
	}
	tests := []struct {
		spec    string
		storage device.StorageID
		path    string
		err     string
	}{
		{"Contacts/contacts.vcf", 0x10001, "Contacts/contacts.vcf", ""},
		{"/Contacts/contacts.vcf", 0x10001, "Contacts/contacts.vcf", ""},
		{"SD card:backup/all.vcf", 0x20001, "backup/all.vcf", ""},
		{"sd CARD:all.vcf", 0x20001, "all.vcf", ""},
		{"0x20001:all.vcf", 0x20001, "all.vcf", ""},
		{"131073:all.vcf", 0x20001, "all.vcf", ""},
		{"USB stick:all.vcf", 0, "", `no storage "USB stick"; its storages are "Internal shared storage" (id 65537), "SD card" (id 131073)`},
		{"../etc/contacts.vcf", 0, "", "not a usable file path"},
		{"SD card:", 0, "", "not a usable file path"},
	}
	for _, tt := range tests {
		id, p, err := resolveDevicePath(tt.spec, storages)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolveDevicePath(%q) = %v, want an error containing %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || id != tt.storage || p != tt.path {
			t.Errorf("resolveDevicePath(%q) = %#x, %q, %v; want %#x, %q", tt.spec, id, p, err, tt.storage, tt.path)
		}
	}
}

func TestParseREV(t *testing.T) {
	want := time.Date(2024, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, v := range []string{"20240314T150926Z", "2024-03-14T15:09:26Z", "2024-03-14T16:09:26+01:00", "20240314T160926+0100"} {
		if got, ok := parseREV(v); !ok || !got.Equal(want) {
			t.Errorf("parseREV(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	if _, ok := parseREV("yesterday"); ok {
		t.Error(`parseREV("yesterday") succeeded`)
	}
}

// A swap cut between its two renames leaves the old file beside the missing one (and maybe a
// partial new one): the next session puts the old file back and clears the rest.
func TestDeviceSwapCutBetweenRenames(t *testing.T) {
	data, _ := os.ReadFile("testdata/android21.vcf")
	root, dev := folderPhone(t, nil)
	dir := filepath.Join(root, "Contacts")
	writeFiles(t, dir, map[string]string{
		"contacts.vcf.cradle-old": string(data),
		"contacts.vcf.cradle-new": string(data[:100]),
	})
	s, err := NewDeviceFile(dev, DefaultDevicePath, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if got := handles(t, s); len(got) != 4 {
		t.Errorf("handles after recovery = %v, want the 4 cards of the old file", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "contacts.vcf")); !bytes.Equal(got, data) {
		t.Errorf("contacts.vcf after recovery is not the old file")
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Errorf("Contacts/ holds %d entries after recovery, want only contacts.vcf", len(des))
	}
}
