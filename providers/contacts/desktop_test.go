package contacts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	cardA     = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:uid-a\r\nFN:Anna A\r\nEND:VCARD\r\n"
	cardNoUID = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Nouid;Nina;;;\r\nFN:Nina Nouid\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n"
)

// Files Cradle cannot sync are reported, skipped and never touched; hidden files, other files
// and folders are not contacts at all.
func TestDesktopSkipsBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := map[string]string{
		"b-bad.vcf":   "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:uid-b\r\nFN:Bad\r\nno colon here\r\nEND:VCARD\r\n",
		"c-multi.vcf": cardA + strings.ReplaceAll(cardA, "uid-a", "uid-c"),
		"z-dup.vcf":   strings.ReplaceAll(cardA, "Anna A", "Anna Again"),
		"d-empty.vcf": "",
	}
	writeFiles(t, dir, bad)
	writeFiles(t, dir, map[string]string{
		"a-good.vcf":          cardA,
		"nouid.vcf":           cardNoUID,
		".hidden.vcf":         strings.ReplaceAll(cardA, "uid-a", "uid-hidden"),
		"notes.txt":           "not a card",
		"sub/inside.vcf":      strings.ReplaceAll(cardA, "uid-a", "uid-sub"),
		".cradle-tmp-x-y.vcf": "BEGIN:VCARD\r\n",
	})
	var logged []string
	s, err := NewDesktop(dir, func(f string, a ...any) { logged = append(logged, f) })
	if err != nil {
		t.Fatal(err)
	}
	if got := replicated(t, s); strings.Join(got, " ") != "nouid.vcf uid-a" {
		t.Errorf("replicated handles = %v, want [nouid.vcf uid-a]", got)
	}
	// Unreadable files are held under the UID a lenient scan finds (or their name).
	if got := handles(t, s); strings.Join(got, " ") != "d-empty.vcf nouid.vcf uid-a uid-b" {
		t.Errorf("handles = %v, want the held d-empty.vcf and uid-b too", got)
	}
	probs := s.Problems()
	wants := []string{"b-bad.vcf: line 5: no ':' in content line", "c-multi.vcf: holds 2 cards", "d-empty.vcf: no vCard in it", `z-dup.vcf: same UID "uid-a" as a-good.vcf`}
	if len(probs) != len(wants) {
		t.Fatalf("Problems() = %v, want %d", probs, len(wants))
	}
	for i, w := range wants {
		if !strings.Contains(probs[i].Error(), w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, probs[i], w)
		}
	}
	// Write and delete around them: they stay as they were.
	ctx := ctxT(t)
	e, err := s.Stat(ctx, "uid-a")
	if err != nil {
		t.Fatal(err)
	}
	stamp := e.Stamp()
	if _, err := s.WriteUnits(ctx, repl.WriteRequest{Handle: "uid-a", Expected: &stamp, Kind: repl.KindFile, Size: -1},
		repl.Units{"FN": []byte("FN:Anna B")}); err != nil {
		t.Fatalf("WriteUnits: %v", err)
	}
	if _, err := s.WriteUnits(ctx, repl.WriteRequest{Name: "uid-b", Kind: repl.KindFile, Size: -1},
		repl.Units{"FN": []byte("FN:Bee")}); !errors.Is(err, repl.ErrExists) {
		t.Errorf("WriteUnits(create uid-b, whose file is malformed) = %v, want ErrExists", err)
	}
	if err := s.Delete(ctx, "uid-b", repl.Stamp{Kind: repl.KindFile}); !errors.Is(err, repl.ErrChanged) || !strings.Contains(err.Error(), "fix or remove") {
		t.Errorf("Delete(uid-b, unreadable) = %v, want a refusal saying to fix the file", err)
	}
	for name, data := range bad {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != data {
			t.Errorf("%s changed to %q (%v)", name, got, err)
		}
	}
	// The UID-less card: named by its file, matched by its derived key, updated in place.
	nk, err := s.NaturalKey(ctx, repl.Entry{Handle: "nouid.vcf"})
	if err != nil || nk != fingerprintOf(mustParse(t, cardNoUID)).Key {
		t.Errorf("NaturalKey(nouid.vcf) = %q, %v; want the derived key", nk, err)
	}
	e, _ = s.Stat(ctx, "nouid.vcf")
	stamp = e.Stamp()
	if _, err := s.WriteUnits(ctx, repl.WriteRequest{Handle: "nouid.vcf", Expected: &stamp, Kind: repl.KindFile, Size: -1},
		repl.Units{"FN": []byte("FN:Nina N"), "TEL": []byte("TEL:+1 555 0101")}); err != nil {
		t.Fatalf("WriteUnits(nouid.vcf): %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "nouid.vcf"))
	if c := mustParse(t, string(got)); c.uid() != "" || value(c, "FN") != "Nina N" {
		t.Errorf("nouid.vcf after update = %q, want FN Nina N and still no UID", got)
	}
}

func mustParse(t *testing.T, s string) *card {
	t.Helper()
	c, err := parseSingle([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDesktopMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-mounted")
	s, err := NewDesktop(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Enumerate(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") || !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Enumerate of a missing folder = %v, want a clear error naming it", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store created the missing folder (%v); an unmounted disk must not look like an empty address book", err)
	}
	if _, err := NewDesktop("", nil); err == nil {
		t.Error("NewDesktop(\"\") succeeded, want an error saying the folder option is missing")
	}
}

// Files of new cards are named after their UIDs, safely, whatever the UID holds.
func TestDesktopFileNames(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDesktop(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	uids := []string{
		"plain-id@example.org",
		"urn:uuid:0f7d3c1e-5a4b-4c2d-8e9f-a1b2c3d4e5f6",
		"../../etc/passwd",
		"a/b",
		"a:b",
		"ⓤⓝⓘⓒⓞⓓⓔ",
		".hidden",
		"CON",
		strings.Repeat("long", 100),
	}
	names := map[string]string{}
	for i, uid := range uids {
		e, err := s.WriteUnits(ctxT(t), repl.WriteRequest{Name: uid, Kind: repl.KindFile, Size: -1, ModTime: time.Unix(int64(1e9+i), 0)},
			repl.Units{"FN": []byte("FN:Person")})
		if err != nil {
			t.Fatalf("create %q: %v", uid, err)
		}
		if e.Handle != uid {
			t.Errorf("create %q returned handle %q", uid, e.Handle)
		}
	}
	des, _ := os.ReadDir(dir)
	if len(des) != len(uids) {
		t.Fatalf("%d files for %d cards", len(des), len(uids))
	}
	for _, de := range des {
		n := de.Name()
		if !isCardFile(n) || strings.ContainsAny(n, `/\:`) || len(n) > 255 {
			t.Errorf("unsafe or hidden file name %q", n)
		}
		data, _ := os.ReadFile(filepath.Join(dir, n))
		names[mustParse(t, string(data)).uid()] = n
	}
	if names["plain-id@example.org"] != "plain-id@example.org.vcf" {
		t.Errorf("plain UID gave file %q, want plain-id@example.org.vcf", names["plain-id@example.org"])
	}
	if got := handles(t, s); len(got) != len(uids) {
		t.Errorf("handles = %v, want %d", got, len(uids))
	}
	if _, err := s.WriteUnits(ctxT(t), repl.WriteRequest{Name: "a/b", Kind: repl.KindFile, Size: -1}, repl.Units{"FN": []byte("FN:x")}); !errors.Is(err, repl.ErrExists) {
		t.Errorf("create of an existing UID = %v, want ErrExists", err)
	}
}

// The desktop always gets vCard 3.0: a 2.1 card is converted, a 3.0 or 4.0 card with the right
// UID is kept byte for byte.
func TestDesktopWriteVersions(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewDesktop(dir, t.Logf)
	android, _ := os.ReadFile("testdata/android21.vcf")
	first := splitFile(android)[0].raw
	e, err := s.Write(ctxT(t), repl.WriteRequest{Name: "juergen", Kind: repl.KindFile, Size: int64(len(first)), Data: bytes.NewReader(first)})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := s.Open(ctxT(t), e.Handle)
	defer rc.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(rc)
	c := mustParse(t, b.String())
	if c.version != v30 || c.uid() != "juergen" || value(c, "FN") != "Jürgen Müller" {
		t.Errorf("2.1 card written as version %q UID %q FN %q, want 3.0, juergen, Jürgen Müller", c.version, c.uid(), value(c, "FN"))
	}
	v4 := "BEGIN:VCARD\nVERSION:4.0\nUID:four\nFN:Vier\nKIND:individual\nEND:VCARD\n"
	e, err = s.Write(ctxT(t), repl.WriteRequest{Name: "four", Kind: repl.KindFile, Size: int64(len(v4)), Data: strings.NewReader(v4)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "four.vcf")); string(got) != v4 || e.Size != int64(len(v4)) {
		t.Errorf("4.0 card with its UID written as %q, want it byte for byte", got)
	}
}

func TestProviderDeclaration(t *testing.T) {
	p, err := providers.Lookup("contacts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Validate(map[string]string{}); err == nil || !strings.Contains(err.Error(), OptDesktop) {
		t.Errorf("Validate without %s = %v, want an error naming it", OptDesktop, err)
	}
	opts, err := p.Validate(map[string]string{OptDesktop: t.TempDir()})
	if err != nil || opts[OptDevicePath] != DefaultDevicePath {
		t.Fatalf("Validate = %v, %v; want %s defaulting to %s", opts, err, OptDevicePath, DefaultDevicePath)
	}
	for _, d := range providers.Directions {
		if !p.SupportsDirection(d) {
			t.Errorf("contacts does not support %s", d)
		}
	}
	inst, err := p.Open(ctxT(t), providers.Env{Options: opts, StateDir: t.TempDir()})
	if err != nil || inst.Desktop == nil || inst.Device != nil {
		t.Fatalf("Open without a device = %+v, %v; want a desktop store only", inst, err)
	}
	_, dev := folderPhone(t, nil)
	inst, err = p.Open(ctxT(t), providers.Env{Options: opts, StateDir: t.TempDir(), Device: dev})
	if err != nil || inst.Device == nil {
		t.Fatalf("Open with a device = %+v, %v; want both stores", inst, err)
	}
	if got := handles(t, inst.Device); len(got) != 0 {
		t.Errorf("a device without a contacts file lists %v, want nothing", got)
	}
	if err := inst.Close(); err != nil {
		t.Error(err)
	}
}

// The watcher reports the folder going away (a drive unmounted) as a shutdown.
func TestDesktopWatchFolderGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "book")
	writeFiles(t, dir, map[string]string{"a.vcf": cardA})
	s, _ := NewDesktop(dir, t.Logf)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan repl.Notification, 16)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(n repl.Notification) { got <- n }) }()
	time.Sleep(100 * time.Millisecond)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(3 * watchCheck)
	for {
		select {
		case n := <-got:
			if n.Kind == repl.Shutdown {
				if !errors.Is(n.Err, repl.ErrGone) {
					t.Errorf("shutdown error = %v, want ErrGone", n.Err)
				}
				if err := <-done; err != nil {
					t.Errorf("Watch returned %v after the shutdown", err)
				}
				return
			}
		case err := <-done:
			t.Fatalf("Watch returned %v without a shutdown", err)
		case <-deadline:
			t.Fatal("no shutdown notification after the folder was removed")
		}
	}
}
