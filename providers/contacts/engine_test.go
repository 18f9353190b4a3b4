package contacts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/repl"
)

// partnership is a contacts partnership as the manager runs it: a vdir, a device (a folder
// device whose contacts file is edited as a phone would), a state folder and a handle file.
type partnership struct {
	t        *testing.T
	vdir     string
	root     string // the device's folder
	state    string
	hf       *repl.HandleFile
	dev      *folder.Device
	desktop  *Desktop
	phone    *DeviceFile
	policy   repl.Policy
	lastRep  *repl.Report
	deviceVF string // the contacts file, as a path on disk
}

func newPartnership(t *testing.T, deviceFile []byte) *partnership {
	t.Helper()
	p := &partnership{t: t, vdir: t.TempDir(), root: t.TempDir(), state: t.TempDir()}
	p.deviceVF = filepath.Join(p.root, filepath.FromSlash(DefaultDevicePath))
	if deviceFile != nil {
		if err := os.MkdirAll(filepath.Dir(p.deviceVF), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.deviceVF, deviceFile, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hf, err := repl.Open(filepath.Join(p.state, "handles.db"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	p.hf = hf
	p.reconnect()
	return p
}

// reconnect opens the stores afresh, as a new session after the device was plugged in again.
func (p *partnership) reconnect() {
	p.t.Helper()
	if p.dev != nil {
		p.dev.Close()
	}
	dev, err := folder.Open(p.root, folder.Options{NoEvents: true, Logf: p.t.Logf})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { dev.Close() })
	p.dev = dev
	if p.desktop, err = NewDesktop(p.vdir, p.t.Logf); err != nil {
		p.t.Fatal(err)
	}
	if p.phone, err = NewDeviceFile(dev, DefaultDevicePath, p.state, p.t.Logf); err != nil {
		p.t.Fatal(err)
	}
}

func (p *partnership) sync() *repl.Report {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := p.hf.Sync(ctx, repl.Side{Name: "desktop", Store: p.desktop}, repl.Side{Name: "device", Store: p.phone},
		repl.Config{Policy: p.policy})
	if err != nil {
		p.t.Fatalf("Sync: %v", err)
	}
	for _, s := range rep.Skipped {
		p.t.Errorf("Sync skipped %s -> %s %q: %v", s.From, s.To, s.Name, s.Err)
	}
	p.lastRep = rep
	return rep
}

// editFile replaces text in a file, as a user or a phone editing it would (the modification
// time steps on, as it does on a real clock).
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q:\n%s", path, old, data)
	}
	data = bytes.Replace(data, []byte(old), []byte(new), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mt := info.ModTime().Add(2 * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

// vdirFile returns the path of the desktop card whose FN is fn.
func (p *partnership) vdirFile(fn string) string {
	p.t.Helper()
	des, err := os.ReadDir(p.vdir)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(p.vdir, de.Name()))
		if err != nil {
			p.t.Fatal(err)
		}
		if c, err := parseSingle(data); err == nil && value(c, "FN") == fn {
			return filepath.Join(p.vdir, de.Name())
		}
	}
	p.t.Fatalf("no card %q in the address book folder", fn)
	return ""
}

// cardIn returns the card with FN fn from a file of cards.
func cardIn(t *testing.T, data []byte, fn string) *card {
	t.Helper()
	for _, seg := range splitFile(data) {
		if !seg.card {
			continue
		}
		if c, err := parseCard(seg.raw, seg.line); err == nil && value(c, "FN") == fn {
			return c
		}
	}
	t.Fatalf("no card %q in:\n%s", fn, data)
	return nil
}

func (p *partnership) deviceCard(fn string) *card {
	p.t.Helper()
	data, err := os.ReadFile(p.deviceVF)
	if err != nil {
		p.t.Fatal(err)
	}
	return cardIn(p.t, data, fn)
}

func (p *partnership) desktopCard(fn string) *card {
	p.t.Helper()
	data, err := os.ReadFile(p.vdirFile(fn))
	if err != nil {
		p.t.Fatal(err)
	}
	return cardIn(p.t, data, fn)
}

func values(c *card, key string) []string {
	var out []string
	for _, f := range c.fields[key] {
		out = append(out, unescape(f.Value))
	}
	return out
}

func TestEngineMergesFieldEdits(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartnership(t, android)
	p.sync()
	if n := p.lastRep.Applied["desktop"]; n == nil || n.Created != 4 {
		t.Fatalf("first sync created %+v on the desktop, want 4 cards", n)
	}
	jd := p.desktopCard("Jürgen Müller")
	if got := value(jd, "NOTE"); !strings.Contains(got, "Grüße, und 😀 Emoji; sehr") {
		t.Errorf("desktop NOTE = %q, want the decoded text with umlauts and emoji", got)
	}
	raw, _ := os.ReadFile(p.vdirFile("王小明"))
	if !bytes.Contains(raw, []byte("VERSION:3.0")) || !bytes.Contains(raw, []byte("FN:王小明")) {
		t.Errorf("desktop card is not plain UTF-8 vCard 3.0:\n%s", raw)
	}

	// The phone changes Jürgen's mobile number (and exports the file again, still without UIDs);
	// the user changes his e-mail address in khard.
	editFile(t, p.deviceVF, "TEL;CELL:+49 170 1234567", "TEL;CELL:+49 170 7654321")
	editFile(t, p.vdirFile("Jürgen Müller"), "juergen@example.de", "j.mueller@example.org")
	p.reconnect()
	rep := p.sync()
	if len(rep.Conflicts) != 0 {
		t.Fatalf("edits of TEL on the device and EMAIL on the desktop gave conflicts: %+v", rep.Conflicts)
	}
	for side, c := range map[string]*card{"desktop": p.desktopCard("Jürgen Müller"), "device": p.deviceCard("Jürgen Müller")} {
		if got := values(c, "TEL"); !contains(got, "+49 170 7654321") || contains(got, "+49 170 1234567") {
			t.Errorf("%s TEL = %q, want the device's new number", side, got)
		}
		if got := values(c, "EMAIL"); len(got) != 1 || got[0] != "j.mueller@example.org" {
			t.Errorf("%s EMAIL = %q, want the desktop's new address", side, got)
		}
		if got := value(c, "FN"); got != "Jürgen Müller" {
			t.Errorf("%s FN = %q, want Jürgen Müller", side, got)
		}
	}
	dev, _ := os.ReadFile(p.deviceVF)
	if bytes.Contains(dev, []byte("VERSION:3.0")) || bytes.Count(dev, []byte("VERSION:2.1")) != 4 {
		t.Errorf("the device file is no longer all vCard 2.1:\n%s", dev)
	}
	if !bytes.Contains(dev, []byte("N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E7=8E=8B;=E5=B0=8F=E6=98=8E;;;")) {
		t.Errorf("an unchanged card was not kept byte for byte in the device file:\n%s", dev)
	}

	// A third sync finds nothing to do.
	p.reconnect()
	rep = p.sync()
	for side, n := range rep.Applied {
		if n.Total() != 0 {
			t.Errorf("a sync without edits changed %s: %+v", side, n)
		}
	}

	// The same field edited on both sides is a conflict; under Ask nothing is overwritten.
	editFile(t, p.deviceVF, "TEL;HOME:030-123456", "TEL;HOME:030-999999")
	editFile(t, p.vdirFile("Jürgen Müller"), "030-123456", "030-111111")
	p.reconnect()
	rep = p.sync()
	ids := map[string]bool{}
	for _, c := range rep.Conflicts { // a conflict is reported by each pass that meets it
		ids[c.ID] = true
	}
	if len(ids) != 1 {
		t.Fatalf("TEL edited on both sides: %d conflicts, want 1 (%+v)", len(ids), rep.Conflicts)
	}
	if got := values(p.deviceCard("Jürgen Müller"), "TEL"); !contains(got, "030-999999") {
		t.Errorf("device TEL after a conflict = %q, want the device's own edit kept", got)
	}
	if got := values(p.desktopCard("Jürgen Müller"), "TEL"); !contains(got, "030-111111") {
		t.Errorf("desktop TEL after a conflict = %q, want the desktop's own edit kept", got)
	}
	cs, err := p.hf.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("Conflicts() = %d, %v; want the one recorded", len(cs), err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A card created on the desktop reaches the device in the file's version, and a card deleted on
// the phone is deleted on the desktop.
func TestEngineCreateAndDelete(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartnership(t, android)
	p.sync()
	khard := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:5f1e5c32-1b4c-4a2e-9f7a-0c6d2f0b9e11\r\nN:Ødegård;Åse;;;\r\nFN:Åse Ødegård\r\nTEL;TYPE=cell:+47 912 34 567\r\nEND:VCARD\r\n"
	if err := os.WriteFile(filepath.Join(p.vdir, "5f1e5c32-1b4c-4a2e-9f7a-0c6d2f0b9e11.vcf"), []byte(khard), 0o644); err != nil {
		t.Fatal(err)
	}
	p.reconnect()
	p.sync()
	c := p.deviceCard("Åse Ødegård")
	if c.version != "2.1" || c.uid() != "5f1e5c32-1b4c-4a2e-9f7a-0c6d2f0b9e11" {
		t.Errorf("new device card: version %q UID %q, want 2.1 and the desktop's UID", c.version, c.uid())
	}
	// The phone drops Émilie (its new export lacks her card).
	data, _ := os.ReadFile(p.deviceVF)
	var kept []byte
	for _, seg := range splitFile(data) {
		if seg.card && bytes.Contains(seg.raw, []byte("EMAIL;WORK:emilie.dupont@example.fr")) {
			continue
		}
		kept = append(kept, seg.raw...)
	}
	if err := os.WriteFile(p.deviceVF, kept, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(time.Hour)
	_ = os.Chtimes(p.deviceVF, mt, mt)
	p.reconnect()
	rep := p.sync()
	if n := rep.Applied["desktop"]; n == nil || n.Deleted != 1 {
		t.Errorf("deleting a card on the phone deleted %+v on the desktop, want 1", n)
	}
	des, _ := os.ReadDir(p.vdir)
	if len(des) != 4 {
		t.Errorf("address book holds %d files, want 4", len(des))
	}
}

// A card that becomes unreadable on one side (a botched edit) is held: the other side keeps it,
// and the sync goes on for the rest.
func TestEngineHoldsUnreadableCards(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartnership(t, android)
	p.sync()
	// The desktop edits a card, so the device file gets written and every card there gets a UID.
	editFile(t, p.vdirFile("John Smith"), "TEL;TYPE=voice,work:+1-202-555-0143", "TEL;TYPE=voice,work:+1-202-555-0199")
	p.reconnect()
	p.sync()
	if dev, _ := os.ReadFile(p.deviceVF); bytes.Count(dev, []byte("UID:")) != 4 {
		t.Fatalf("device file after a write has %d UIDs, want 4:\n%s", bytes.Count(dev, []byte("UID:")), dev)
	}
	// The phone garbles Jürgen's card; the user garbles Émilie's file.
	editFile(t, p.deviceVF, "TEL;HOME:030-123456", "TEL;HOME 030-123456")
	editFile(t, p.vdirFile("Émilie Dupont"), "BDAY:1990-05-17", "BDAY 1990-05-17")
	p.reconnect()
	rep := p.sync()
	for side, n := range rep.Applied {
		if n.Deleted != 0 {
			t.Errorf("an unreadable card was deleted on the %s: %+v", side, n)
		}
	}
	if got := value(p.desktopCard("Jürgen Müller"), "FN"); got != "Jürgen Müller" {
		t.Errorf("desktop lost Jürgen (FN %q)", got)
	}
	if got := value(p.deviceCard("Émilie Dupont"), "FN"); got != "Émilie Dupont" {
		t.Errorf("device lost Émilie (FN %q)", got)
	}
	if probs := p.phone.Problems(); len(probs) != 1 || !strings.Contains(probs[0].Error(), "TEL;HOME 030-123456") {
		t.Errorf("device problems = %v, want the garbled line named", probs)
	}
	// Fixed on the phone, the card syncs again.
	editFile(t, p.deviceVF, "TEL;HOME 030-123456", "TEL;HOME:030-123457")
	p.reconnect()
	p.sync()
	if got := values(p.desktopCard("Jürgen Müller"), "TEL"); !contains(got, "030-123457") {
		t.Errorf("desktop TEL after the phone fixed the card = %q, want 030-123457", got)
	}
}

// Properties Cradle does not know, and grouped properties, survive the trip to the other side
// and back.
func TestEngineKeepsUnknownProperties(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartnership(t, android)
	p.sync()
	if got := value(p.desktopCard("王小明"), "X-ANDROID-CUSTOM"); got != "vnd.android.cursor.item/nickname;Xiao Ming;1;;;;;;;;;;;;;" {
		t.Fatalf("desktop X-ANDROID-CUSTOM = %q", got)
	}
	// In khard: a new title, and an Apple-style labelled address in a group.
	editFile(t, p.vdirFile("王小明"), "TITLE:工程师", "TITLE:高级工程师\r\nitem1.EMAIL;TYPE=INTERNET:xm@example.cn\r\nitem1.X-ABLabel:_$!<Other>!$_\r\nX-SOCIALPROFILE;TYPE=weibo:weibo.com/xm")
	p.reconnect()
	p.sync()
	c := p.deviceCard("王小明")
	if c.version != "2.1" {
		t.Errorf("device card version %q, want 2.1", c.version)
	}
	for key, want := range map[string]string{
		"TITLE":            "高级工程师",
		"X-ANDROID-CUSTOM": "vnd.android.cursor.item/nickname;Xiao Ming;1;;;;;;;;;;;;;",
		"X-ABLABEL":        "_$!<Other>!$_",
		"X-SOCIALPROFILE":  "weibo.com/xm",
		"EMAIL":            "xm@example.cn",
	} {
		if got := value(c, key); got != want {
			t.Errorf("device %s = %q, want %q", key, got, want)
		}
	}
	if g := c.fields.Get("EMAIL").Group; g != "item1" || c.fields.Get("X-ABLABEL").Group != "item1" {
		t.Errorf("groups after the round trip: EMAIL %q, X-ABLabel %q; want item1", g, c.fields.Get("X-ABLABEL").Group)
	}
	// Back on the desktop, nothing changed that the user did not change.
	p.reconnect()
	rep := p.sync()
	for side, n := range rep.Applied {
		if n.Total() != 0 {
			t.Errorf("a sync after the round trip changed %s: %+v", side, n)
		}
	}
}

// A first sync between an address book and a phone that already hold the same cards, none with a
// UID (both exported from the same phone once), matches them by their derived keys: no
// duplicates, no conflicts.
func TestEngineFirstSyncMatchesCardsWithoutUID(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	p := newPartnership(t, android)
	for i, c := range parseFile(t, "testdata/android21.vcf") {
		if err := os.WriteFile(filepath.Join(p.vdir, fmt.Sprintf("card-%d.vcf", i)), c.encode(v30), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.reconnect()
	rep := p.sync()
	if len(rep.Conflicts) != 0 {
		t.Errorf("first sync of equal cards gave conflicts: %+v", rep.Conflicts)
	}
	// The engine merges each pair by natural key. (Depending on which side's global ID wins, it
	// may rewrite the device card under the desktop's name, as a create and a delete: churn, not
	// loss; reported to the engine's owner.)
	if n := rep.Applied["desktop"]; n != nil && (n.Created != 0 || n.Deleted != 0) {
		t.Errorf("first sync of equal cards created or deleted on the desktop: %+v", n)
	}
	for _, fn := range []string{"Jürgen Müller", "王小明", "Émilie Dupont", "John Smith"} {
		d, e := p.desktopCard(fn).units(), p.deviceCard(fn).units()
		if unitsHash(d) != unitsHash(e) {
			t.Errorf("%s differs after the first sync:\ndesktop %q\ndevice  %q", fn, d, e)
		}
	}
	if des, _ := os.ReadDir(p.vdir); len(des) != 4 {
		t.Errorf("address book holds %d files, want the 4 it had", len(des))
	}
	if dev, _ := os.ReadFile(p.deviceVF); bytes.Count(dev, []byte("BEGIN:VCARD")) != 4 {
		t.Errorf("device file holds %d cards, want 4", bytes.Count(dev, []byte("BEGIN:VCARD")))
	}
}

// Different values of one property are change units of their own: the mobile number edited on the
// phone and the home number edited on the computer merge, under every policy, with no conflict
// and neither edit dropped. (Whole properties were units: this was a conflict, and under newest
// one of the two edits was lost.)
func TestEngineMergesEditsOfDifferentValues(t *testing.T) {
	android, err := os.ReadFile("testdata/android21.vcf")
	if err != nil {
		t.Fatal(err)
	}
	for _, pol := range []repl.Policy{{Rule: repl.Ask}, {Rule: repl.Newest}, {Rule: repl.Wins, Winner: "device"}} {
		t.Run(pol.Rule.String(), func(t *testing.T) {
			p := newPartnership(t, android)
			p.policy = pol
			p.sync()
			editFile(t, p.deviceVF, "TEL;CELL:+49 170 1234567", "TEL;CELL:+49 170 7654321")
			editFile(t, p.vdirFile("Jürgen Müller"), "030-123456", "030-111111")
			p.reconnect()
			rep := p.sync()
			if len(rep.Conflicts) != 0 || len(rep.Decisions) != 0 {
				t.Fatalf("edits of two phone numbers gave conflicts %+v, decisions %+v", rep.Conflicts, rep.Decisions)
			}
			for side, c := range map[string]*card{"desktop": p.desktopCard("Jürgen Müller"), "device": p.deviceCard("Jürgen Müller")} {
				got := values(c, "TEL")
				if !contains(got, "+49 170 7654321") || !contains(got, "030-111111") || len(got) != 2 {
					t.Errorf("%s TEL = %q, want the phone's mobile number and the computer's home number", side, got)
				}
			}
		})
	}
}
