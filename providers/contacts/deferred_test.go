package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// Deferred uploads (pending.go) under the engine: how many times the contacts file is uploaded,
// and what a process killed or a device unplugged between the engine's commits and the upload
// leaves.

// errKilled is what a device call returns once the test's process "died".
var errKilled = fmt.Errorf("the process was killed: %w", context.Canceled)

// countingDevice counts the uploads of the contacts file (Create of it, or of the new file beside
// it) and their bytes. After kill, every call fails: the process is dead, nothing more reaches the
// device.
type countingDevice struct {
	device.Device
	mu      sync.Mutex
	uploads int
	bytes   int64
	killAt  int // the upload (1-based) the process dies at; 0: never
	killed  bool
}

func (d *countingDevice) dead() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		return errKilled
	}
	return nil
}

func (d *countingDevice) kill() {
	d.mu.Lock()
	d.killed = true
	d.mu.Unlock()
}

func (d *countingDevice) Create(ctx context.Context, s device.StorageID, path string, size int64, mt time.Time, r io.Reader) (device.Object, error) {
	if strings.HasPrefix(path, DefaultDevicePath) {
		d.mu.Lock()
		d.uploads++
		d.bytes += size
		if d.uploads == d.killAt {
			d.killed = true
		}
		d.mu.Unlock()
	}
	if err := d.dead(); err != nil {
		return device.Object{}, err
	}
	return d.Device.Create(ctx, s, path, size, mt, r)
}

func (d *countingDevice) Stat(ctx context.Context, s device.StorageID, path string) (device.Object, error) {
	if err := d.dead(); err != nil {
		return device.Object{}, err
	}
	return d.Device.Stat(ctx, s, path)
}

func (d *countingDevice) Open(ctx context.Context, s device.StorageID, path string, off int64) (io.ReadCloser, error) {
	if err := d.dead(); err != nil {
		return nil, err
	}
	return d.Device.Open(ctx, s, path, off)
}

func (d *countingDevice) Delete(ctx context.Context, s device.StorageID, path string) error {
	if err := d.dead(); err != nil {
		return err
	}
	return d.Device.Delete(ctx, s, path)
}

func (d *countingDevice) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	if err := d.dead(); err != nil {
		return err
	}
	return d.Device.Rename(ctx, s, from, to)
}

// phonePartnership is a contacts partnership as the provider opens it (deferred uploads, versions
// kept) against an emulated phone over MTP.
type phonePartnership struct {
	t       *testing.T
	vdir    string
	root    string // the phone's folder
	state   string
	opts    emulator.Options
	hf      *repl.HandleFile
	emu     *emulator.Emulator
	dev     *countingDevice
	desktop *Desktop
	phone   *DeviceFile
	kept    *versions.Dir // the device's cards kept on this computer
}

func newPhonePartnership(t *testing.T, opts emulator.Options) *phonePartnership {
	t.Helper()
	p := &phonePartnership{t: t, vdir: t.TempDir(), root: t.TempDir(), state: t.TempDir(), opts: opts}
	hf, err := repl.Open(filepath.Join(p.state, "handles.db"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	p.hf = hf
	p.kept = versions.NewDir(filepath.Join(p.state, "device-versions"), versions.Device)
	p.connect()
	return p
}

// connect opens the stores afresh over a new connection, as a new process would after a kill or
// the phone plugged in again; the old ones are abandoned as they are.
func (p *phonePartnership) connect() {
	p.t.Helper()
	emu, dev := emulatedPhone(p.t, p.root, p.opts)
	p.emu, p.dev = emu, &countingDevice{Device: dev}
	var err error
	if p.desktop, err = NewDesktop(p.vdir, p.t.Logf); err != nil {
		p.t.Fatal(err)
	}
	if p.phone, err = NewDeviceFile(p.dev, DefaultDevicePath, p.state, p.t.Logf); err != nil {
		p.t.Fatal(err)
	}
	p.phone.KeepVersions(p.kept, p.desktop.FileFor)
	p.phone.DeferUploads()
}

func (p *phonePartnership) sides() (repl.Side, repl.Side) {
	return repl.Side{Name: "desktop", Store: p.desktop}, repl.Side{Name: "device", Store: p.phone}
}

func (p *phonePartnership) syncErr(cfg repl.Config) (*repl.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := p.sides()
	return p.hf.Sync(ctx, a, b, cfg)
}

func (p *phonePartnership) sync() *repl.Report {
	p.t.Helper()
	rep, err := p.syncErr(repl.Config{})
	if err != nil {
		p.t.Fatalf("Sync: %v", err)
	}
	for _, s := range rep.Skipped {
		p.t.Errorf("Sync skipped %s -> %s %q: %v", s.From, s.To, s.Name, s.Err)
	}
	return rep
}

// addCards writes cards from..to-1 into the address book folder.
func (p *phonePartnership) addCards(from, to int) {
	p.t.Helper()
	for i := from; i < to; i++ {
		if err := os.WriteFile(filepath.Join(p.vdir, fmt.Sprintf("card-%04d.vcf", i)), testCard(i, 1), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

// deviceUIDs returns the UIDs of the cards in the phone's contacts file.
func (p *phonePartnership) deviceUIDs() map[string]bool {
	p.t.Helper()
	data, err := os.ReadFile(filepath.Join(p.root, filepath.FromSlash(DefaultDevicePath)))
	if err != nil {
		p.t.Fatalf("the phone's contacts file: %v", err)
	}
	uids := map[string]bool{}
	for _, seg := range splitFile(data) {
		if !seg.card {
			continue
		}
		c, err := parseCard(seg.raw, seg.line)
		if err != nil {
			p.t.Fatalf("the phone's contacts file: %v", err)
		}
		uids[c.uid()] = true
	}
	return uids
}

// desktopUIDs returns the UIDs of the cards in the address book folder.
func (p *phonePartnership) desktopUIDs() map[string]bool {
	p.t.Helper()
	uids := map[string]bool{}
	for _, h := range handles(p.t, p.desktop) {
		uids[h] = true
	}
	return uids
}

// wantCards checks that both sides hold exactly cards 0..n-1.
func (p *phonePartnership) wantCards(n int) {
	p.t.Helper()
	for side, uids := range map[string]map[string]bool{"desktop": p.desktopUIDs(), "device": p.deviceUIDs()} {
		missing := 0
		for i := range n {
			if !uids[testUID(i)] {
				missing++
			}
		}
		if missing > 0 || len(uids) != n {
			p.t.Errorf("the %s holds %d cards, %d of the %d expected missing", side, len(uids), missing, n)
		}
	}
}

func (p *phonePartnership) journal() bool {
	_, err := os.Stat(filepath.Join(p.state, "device-pending.jsonl"))
	return err == nil
}

// 1,000 new cards on the desktop reach the phone in one upload of the contacts file (issue 16:
// at most two), and the next sync has nothing to do.
func TestThousandNewCardsOneUpload(t *testing.T) {
	const n = 1000
	p := newPhonePartnership(t, emulator.Options{})
	p.addCards(0, n)
	rep := p.sync()
	if c := rep.Applied["device"]; c == nil || c.Created != n {
		t.Fatalf("created on the device: %+v, want %d", c, n)
	}
	if p.dev.uploads > 2 {
		t.Errorf("%d uploads of the contacts file (%d bytes) for %d new cards, want at most 2", p.dev.uploads, p.dev.bytes, n)
	}
	t.Logf("%d upload(s), %d bytes", p.dev.uploads, p.dev.bytes)
	p.wantCards(n)
	if p.journal() {
		t.Errorf("the journal is still in the state folder after the upload")
	}
	before := p.dev.uploads
	rep = p.sync()
	for side, c := range rep.Applied {
		if c.Total() != 0 {
			t.Errorf("the second sync changed %s: %+v", side, c)
		}
	}
	if p.dev.uploads != before {
		t.Errorf("the second sync uploaded the file %d times", p.dev.uploads-before)
	}
}

// A process killed after the engine committed its batches and before the upload (or part-way
// through the batches) loses no card: the next process's session, over a new connection, finds
// the journal, puts the cards on the phone and both sides end equal.
func TestKilledBeforeTheUpload(t *testing.T) {
	const n = 450
	for _, tc := range []struct {
		name string
		kill func(p *phonePartnership) repl.Config
	}{
		{"at the upload", func(p *phonePartnership) repl.Config {
			p.dev.killAt = p.dev.uploads + 1
			return repl.Config{}
		}},
		{"after two batches", func(p *phonePartnership) repl.Config {
			return repl.Config{ProgressInterval: time.Nanosecond, Progress: func(pr repl.Progress) {
				if pr.Phase == repl.PhaseSyncing && pr.ItemsDone >= 2*200+10 {
					p.dev.kill()
				}
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhonePartnership(t, emulator.Options{})
			p.addCards(0, 20)
			p.sync() // the phone has a contacts file
			p.addCards(20, n)
			if _, err := p.syncErr(tc.kill(p)); !errors.Is(err, context.Canceled) {
				t.Fatalf("Sync killed = %v, want the kill's error", err)
			}
			if got := len(p.deviceUIDs()); got != 20 {
				t.Fatalf("the phone has %d cards after the kill, want the 20 it had (the kill came too late)", got)
			}
			if !p.journal() {
				t.Fatalf("no journal in the state folder after the kill")
			}

			p.connect()
			rep := p.sync()
			if c := rep.Applied["desktop"]; c != nil && c.Deleted > 0 {
				t.Errorf("the session after the kill deleted %d cards on the desktop", c.Deleted)
			}
			p.wantCards(n)
			if p.journal() {
				t.Errorf("the journal is still in the state folder")
			}
			rep = p.sync()
			for side, c := range rep.Applied {
				if c.Total() != 0 {
					t.Errorf("a third sync changed %s: %+v", side, c)
				}
			}
		})
	}
}

// A preview after a kill shows what the next session does: no card deleted anywhere.
func TestForecastAfterAKill(t *testing.T) {
	p := newPhonePartnership(t, emulator.Options{})
	p.addCards(0, 30)
	p.dev.killAt = p.dev.uploads + 1
	if _, err := p.syncErr(repl.Config{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync killed = %v, want the kill's error", err)
	}
	p.connect()
	a, b := p.sides()
	fc, err := p.hf.Forecast(ctxT(t), a, b, repl.Config{})
	if err != nil {
		t.Fatalf("Forecast: %v", err)
	}
	if len(fc.Actions) != 0 {
		t.Errorf("the forecast after a kill plans %+v, want nothing (the cards are the journal's)", fc.Actions)
	}
	if p.dev.uploads != 0 {
		t.Errorf("the forecast uploaded the contacts file")
	}
	p.sync()
	p.wantCards(30)
}

// The phone unplugged during the one upload loses nothing: plugged in again, the next session
// puts the cards on it. With and without rename (a device without it deletes the old file
// before it creates the new one).
func TestUnplugDuringTheUpload(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts emulator.Options
	}{{"rename", emulator.Options{}}, {"no rename", emulator.QEMU()}} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 300
			p := newPhonePartnership(t, tc.opts)
			p.addCards(0, 40)
			p.sync()
			p.addCards(40, n)
			p.emu.DisconnectAfter(-1, 20_000) // part of the new file is sent
			if _, err := p.syncErr(repl.Config{}); !errors.Is(err, repl.ErrGone) {
				t.Fatalf("Sync unplugged = %v, want ErrGone", err)
			}
			if !p.journal() {
				t.Fatalf("no journal in the state folder after the unplug")
			}
			p.connect()
			rep := p.sync()
			if c := rep.Applied["desktop"]; c != nil && c.Deleted > 0 {
				t.Errorf("the session after the unplug deleted %d cards on the desktop", c.Deleted)
			}
			p.wantCards(n)
			for _, f := range []string{"device-pending.jsonl", "device-write.json", "device-previous.vcf"} {
				if _, err := os.Stat(filepath.Join(p.state, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still in the state folder (%v)", f, err)
				}
			}
		})
	}
}

// A card edited on the phone between a kill and the next session keeps the phone's edit; the
// version Cradle had written there (the desktop's edit) is kept on this computer, and the new
// cards of the killed session arrive.
func TestPhoneEditAfterAKill(t *testing.T) {
	p := newPhonePartnership(t, emulator.Options{})
	p.addCards(0, 10)
	p.sync()
	editFile(t, filepath.Join(p.vdir, "card-0003.vcf"), "NOTE:version 1", "NOTE:desktop edit")
	p.addCards(10, 20)
	p.dev.killAt = p.dev.uploads + 1
	if _, err := p.syncErr(repl.Config{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync killed = %v, want the kill's error", err)
	}
	p.editOnPhone(testUID(3), "NOTE:version 1.", "NOTE:phone edit")
	p.connect()
	p.sync()
	p.wantCards(20)
	data, err := os.ReadFile(filepath.Join(p.vdir, "card-0003.vcf"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("phone edit")) {
		t.Errorf("the desktop card after the sync:\n%s\nwant the phone's edit", data)
	}
	kept, err := p.kept.List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range kept {
		b, err := os.ReadFile(p.kept.Path(v))
		if err == nil && bytes.Contains(b, []byte("desktop edit")) {
			found = true
		}
	}
	if !found {
		t.Errorf("the desktop's edit is not kept among the device's versions (%d kept)", len(kept))
	}
}

// editOnPhone replaces old with new in the card uid of the phone's contacts file, as the phone's
// contacts app would edit it.
func (p *phonePartnership) editOnPhone(uid, old, new string) {
	p.t.Helper()
	path := filepath.Join(p.root, filepath.FromSlash(DefaultDevicePath))
	data, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []byte
	found := false
	for _, seg := range splitFile(data) {
		raw := seg.raw
		if c, err := parseCard(raw, seg.line); seg.card && err == nil && c.uid() == uid && bytes.Contains(raw, []byte(old)) {
			raw, found = bytes.Replace(raw, []byte(old), []byte(new), 1), true
		}
		out = append(out, raw...)
	}
	if !found {
		p.t.Fatalf("no card %s holding %q on the phone", uid, old)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		p.t.Fatal(err)
	}
	mt := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		p.t.Fatal(err)
	}
}

// flushing is a DeviceFile with deferred uploads that persists and flushes after every change,
// so that the conformance suite, and its editor (the phone, rewriting the file), meet the file
// the deferred changes made.
type flushing struct{ *DeviceFile }

func (s flushing) done(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	if err := s.Persist(ctx); err != nil {
		return err
	}
	return s.Flush(ctx)
}

func (s flushing) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	e, err := s.DeviceFile.Write(ctx, req)
	return e, s.done(ctx, err)
}

func (s flushing) WriteUnits(ctx context.Context, req repl.WriteRequest, u repl.Units) (repl.Entry, error) {
	e, err := s.DeviceFile.WriteUnits(ctx, req, u)
	return e, s.done(ctx, err)
}

func (s flushing) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.done(ctx, s.DeviceFile.Delete(ctx, handle, expected))
}

func (s flushing) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	return s.done(ctx, s.DeviceFile.DeleteFor(ctx, handle, expected, cause))
}

// The device side with deferred uploads passes the conformance suite (each change flushed).
func TestDeviceConformanceDeferred(t *testing.T) {
	open := func(t *testing.T, dev device.Device, state string) repl.Store {
		s, err := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		s.DeferUploads()
		return flushing{s}
	}
	h := harness(func(t *testing.T) (repl.Store, repltest.Editor) {
		root := t.TempDir()
		_, dev := emulatedPhone(t, root, emulator.Options{})
		return open(t, dev, t.TempDir()), &phoneEditor{path: filepath.Join(root, filepath.FromSlash(DefaultDevicePath))}
	}, func(t *testing.T, s repl.Store) repl.Store {
		old := s.(flushing)
		return open(t, old.dev, old.stateDir)
	})
	h.NoModTime = true
	repltest.Run(t, h)
}

// hashes maps each card of s to its hash, as Enumerate reports them.
func hashes(t *testing.T, s repl.Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, h := range handles(t, s) {
		e, err := s.(repl.Stater).Stat(ctxT(t), h)
		if err != nil {
			t.Fatal(err)
		}
		m[h] = e.Hash
	}
	return m
}

// Changes persisted and not uploaded (an update, a delete, a new card, over an Android file whose
// cards have no UID) are what the next store on the same state reports, before and after its
// Flush uploads them; a change not persisted is lost whole.
func TestDeferredChangesReplayed(t *testing.T) {
	data := androidCards(t)
	root, path := phoneFolder(t, data)
	state := t.TempDir()
	open := func() *DeviceFile {
		dev, err := folder.Open(root, folder.Options{NoEvents: true, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		s, err := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		s.DeferUploads()
		return s
	}
	s := open()
	ctx := ctxT(t)
	h := handleOf(t, s, "John Smith")
	u, err := s.ReadUnits(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	u["TITLE"] = []byte("TITLE:Deferred")
	e, _ := s.Stat(ctx, h)
	stamp := e.Stamp()
	if _, err := s.WriteUnits(ctx, repl.WriteRequest{Handle: h, Expected: &stamp, Name: h, Kind: repl.KindFile, Size: -1}, u); err != nil {
		t.Fatalf("update: %v", err)
	}
	var gone string
	for _, x := range handles(t, s) {
		if x != h {
			gone = x
			break
		}
	}
	e, _ = s.Stat(ctx, gone)
	if err := s.Delete(ctx, gone, e.Stamp()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	card := testCard(7, 1)
	if _, err := s.Write(ctx, repl.WriteRequest{Name: testUID(7), Kind: repl.KindFile, Size: int64(len(card)), Data: bytes.NewReader(card)}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := s.Persist(ctx); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	want := hashes(t, s)
	card = testCard(9, 1)
	if _, err := s.Write(ctx, repl.WriteRequest{Name: testUID(9), Kind: repl.KindFile, Size: int64(len(card)), Data: bytes.NewReader(card)}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatalf("the device's file changed before any Flush")
	}

	// Abandoned: the next store replays what was persisted, nothing else.
	s2 := open()
	if got := hashes(t, s2); !maps.Equal(got, want) {
		t.Errorf("cards replayed = %v\nwant %v", got, want)
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got, _ := os.ReadFile(path); bytes.Equal(got, data) {
		t.Fatalf("Flush did not write the device's file")
	}
	if _, err := os.Stat(filepath.Join(state, "device-pending.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the journal is still there after the Flush (%v)", err)
	}
	if got := hashes(t, open()); !maps.Equal(got, want) {
		t.Errorf("cards after the Flush = %v\nwant %v", got, want)
	}
}

// A plugin's device side whose store defers its uploads still writes through: the host's engine
// does not flush across the plugin boundary, so the plugin's server does after each change.
func TestDeferredThroughAPluginWritesThrough(t *testing.T) {
	open := func(ctx context.Context, env plugin.Env) (repl.Store, error) {
		s, err := NewDeviceFile(env.Device, env.Options[OptDevicePath], env.StateDir, t.Logf)
		if err == nil {
			s.DeferUploads()
		}
		return s, err
	}
	root, path := phoneFolder(t, nil)
	dev, err := folder.Open(root, folder.Options{NoEvents: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	s := plugin.TestStore(t, open, providers.Env{Device: dev, StateDir: t.TempDir(), Options: map[string]string{OptDevicePath: DefaultDevicePath}})
	if _, ok := s.(repl.Flusher); ok {
		t.Errorf("the host's store of a plugin offers repl.Flusher")
	}
	card := testCard(1, 1)
	e, err := s.Write(ctxT(t), repl.WriteRequest{Name: testUID(1), Kind: repl.KindFile, Size: int64(len(card)), Data: bytes.NewReader(card)})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Contains(got, []byte(testUID(1))) {
		t.Fatalf("the device's file after a plugin's Write:\n%s\nwant the card", got)
	}
	if err := s.Delete(ctxT(t), e.Handle, e.Stamp()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, _ := os.ReadFile(path); bytes.Contains(got, []byte(testUID(1))) {
		t.Errorf("the device's file after a plugin's Delete still holds the card:\n%s", got)
	}
}

// A journal whose last line was cut short (a Persist the process did not finish) keeps its whole
// lines, and what the next store persists after it is not lost behind the torn line.
func TestDeferredJournalTornTail(t *testing.T) {
	root, _ := phoneFolder(t, nil)
	state := t.TempDir()
	open := func() *DeviceFile {
		dev, err := folder.Open(root, folder.Options{NoEvents: true, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		s, err := NewDeviceFile(dev, DefaultDevicePath, state, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		s.DeferUploads()
		return s
	}
	write := func(s *DeviceFile, i int) {
		t.Helper()
		card := testCard(i, 1)
		if _, err := s.Write(ctxT(t), repl.WriteRequest{Name: testUID(i), Kind: repl.KindFile, Size: int64(len(card)), Data: bytes.NewReader(card)}); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if err := s.Persist(ctxT(t)); err != nil {
			t.Fatalf("Persist: %v", err)
		}
	}
	write(open(), 1)
	journal := filepath.Join(state, "device-pending.jsonl")
	f, err := os.OpenFile(journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"uid":"cut-short","card":"QkVH`)
	f.Close()

	s := open()
	if got := handles(t, s); strings.Join(got, " ") != testUID(1) {
		t.Fatalf("cards with a torn journal = %v, want %s", got, testUID(1))
	}
	write(s, 2)
	want := []string{testUID(1), testUID(2)}
	if got := handles(t, open()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cards after a Persist behind a torn line = %v, want %v", got, want)
	}
}

// A journal that cannot be written stops the session with nothing of the batch recorded; the
// cards the store still uploaded at the end are met again by the next session as the same cards:
// none lost, none twice.
func TestDeferredJournalUnwritable(t *testing.T) {
	const n = 250
	p := newPhonePartnership(t, emulator.Options{})
	p.addCards(0, n)
	journal := filepath.Join(p.state, "device-pending.jsonl")
	if err := os.MkdirAll(filepath.Join(journal, "in the way"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := p.syncErr(repl.Config{})
	if err == nil || repl.ErrorSide(err) != "device" {
		t.Fatalf("Sync with the journal unwritable = %v (side %q), want an error on the device", err, repl.ErrorSide(err))
	}
	if err := os.RemoveAll(journal); err != nil {
		t.Fatal(err)
	}
	p.connect()
	p.sync()
	p.wantCards(n)
	rep := p.sync()
	for side, c := range rep.Applied {
		if c.Total() != 0 {
			t.Errorf("a third sync changed %s: %+v", side, c)
		}
	}
}
