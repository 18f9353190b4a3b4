package ui

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"github.com/go-text/typesetting/font"

	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/providers"
	_ "github.com/cradle-sync/cradle/providers/all"
)

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		st   manager.Status
		want string
		tone tone
	}{
		{"never", manager.Status{State: manager.StateIdle, Connected: true}, "Not synchronized yet", toneNormal},
		{"synced", manager.Status{State: manager.StateIdle, LastSync: now.Add(-2 * time.Minute), LastOutcome: manager.OutcomeOK},
			"Synchronized 2 minutes ago", toneOK},
		{"one minute", manager.Status{State: manager.StateIdle, LastSync: now.Add(-61 * time.Second), LastOutcome: manager.OutcomeOK},
			"Synchronized 1 minute ago", toneOK},
		{"waiting", manager.Status{State: manager.StateIdle, LastSync: now.Add(-3 * time.Hour), Pending: 3},
			"Synchronized 3 hours ago · 3 changes waiting", toneOK},
		{"conflicts", manager.Status{State: manager.StateIdle, LastSync: now.Add(-10 * time.Second), Conflicts: 2, LastOutcome: manager.OutcomeConflicts},
			"Synchronized just now · 2 conflicts need you", toneWarning},
		{"partial", manager.Status{State: manager.StateIdle, LastSync: now.Add(-25 * time.Hour), LastOutcome: manager.OutcomePartial},
			"Synchronized yesterday, with items skipped", toneWarning},
		{"old", manager.Status{State: manager.StateIdle, LastSync: time.Date(2026, 11, 1, 9, 30, 0, 0, time.Local), LastOutcome: manager.OutcomeOK},
			"Synchronized on 2026-11-01 09:30", toneOK},
		{"paused", manager.Status{State: manager.StateIdle, LastSync: now.Add(-time.Minute), Paused: true},
			"Synchronized 1 minute ago · automatic sync paused until the device is plugged in again", toneOK},
		{"disconnected", manager.Status{State: manager.StateDisconnected, LastSync: now.Add(-48 * time.Hour), Conflicts: 1},
			"Device not connected; last synchronized on " + now.Add(-48*time.Hour).Local().Format("2006-01-02 15:04") + " · 1 conflict needs you", toneMuted},
		{"queued", manager.Status{State: manager.StateQueued}, "Waiting for the device's other sync to finish", toneBusy},
		{"names skipped", manager.Status{State: manager.StateIdle, LastSync: now.Add(-time.Minute), LastOutcome: manager.OutcomePartial,
			Skipped: []manager.SkippedName{{Path: "a:b.txt", Side: "desktop", Reason: "a memory card does not allow \":\""}}},
			"Synchronized 1 minute ago, with items skipped\n1 name skipped: a:b.txt (a memory card does not allow \":\")", toneWarning},
		{"detecting", manager.Status{State: manager.StateSyncing, Progress: &manager.Progress{Phase: "detecting", ETA: -1}},
			"Looking for changes…", toneBusy},
		{"bytes", manager.Status{State: manager.StateSyncing, Progress: &manager.Progress{Phase: "syncing",
			BytesDone: 120e6, BytesTotal: 260e6, ETA: 65 * time.Second}},
			"Syncing: 120 MB of 260 MB, about 1 minute left", toneBusy},
		{"bytes no eta", manager.Status{State: manager.StateSyncing, Progress: &manager.Progress{Phase: "syncing",
			BytesDone: 0, BytesTotal: 2_500_000_000, ETA: -1}},
			"Syncing: 0 B of 2.5 GB", toneBusy},
		{"items", manager.Status{State: manager.StateSyncing, Progress: &manager.Progress{Phase: "syncing",
			ItemsDone: 3, ItemsTotal: 10, ETA: 3 * time.Hour}},
			"Syncing: 3 of 10 items, about 3 hours left", toneBusy},
		{"error", manager.Status{State: manager.StateError, Error: "the device is full", Fix: "free some space and sync again"},
			"The device is full\nFree some space and sync again", toneError},
		{"invalid", manager.Status{State: manager.StateError, Error: "invalid value: desktop folder /x does not exist"},
			"Desktop folder /x does not exist", toneError},
		{"provider stopped", manager.Status{State: manager.StateStopped, Error: "provider stopped: plugin exited with status 2", Fix: "the next sync restarts it"},
			"Provider stopped: plugin exited with status 2\nThe next sync restarts it", toneError},
		{"provider stopped said", manager.Status{State: manager.StateStopped,
			Error: "provider stopped: provider notes stopped: signal: killed; it will be restarted at the next sync", Fix: "the next sync restarts it"},
			"Provider notes stopped: signal: killed; it will be restarted at the next sync", toneError},
		{"provider stopped bare", manager.Status{State: manager.StateStopped}, "Provider stopped\nThe next sync restarts it", toneError},
	} {
		got, tn := statusText(c.st, now)
		if got != c.want || tn != c.tone {
			t.Errorf("%s: statusText = %q (tone %d), want %q (tone %d)", c.name, got, tn, c.want, c.tone)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {812, "812 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {3_400_000, "3.4 MB"},
		{120_000_000, "120 MB"}, {999_600, "1.0 MB"}, {1_099_511_627_776, "1.1 TB"}, {-5, "0 B"},
	} {
		if got := humanBytes(c.n); got != c.want {
			t.Errorf("humanBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestDelayText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond: "0.3 s", time.Second: "1 s", 20 * time.Second: "20 s",
		time.Minute: "1 min", 90 * time.Second: "1.5 min", 5 * time.Minute: "5 min",
	} {
		if got := delayText(d); got != want {
			t.Errorf("delayText(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestProgressFraction(t *testing.T) {
	for _, c := range []struct {
		p    *manager.Progress
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{&manager.Progress{Phase: "detecting", ItemsDone: 5}, 0, false},
		{&manager.Progress{Phase: "syncing", BytesDone: 50, BytesTotal: 200, ItemsDone: 9, ItemsTotal: 10}, 0.25, true},
		{&manager.Progress{Phase: "syncing", ItemsDone: 9, ItemsTotal: 10}, 0.9, true},
		{&manager.Progress{Phase: "syncing", BytesDone: 300, BytesTotal: 200}, 1, true},
		{&manager.Progress{Phase: "syncing"}, 0, false},
	} {
		got, ok := progressFraction(c.p)
		if got != c.want || ok != c.ok {
			t.Errorf("progressFraction(%+v) = %v, %v, want %v, %v", c.p, got, ok, c.want, c.ok)
		}
	}
}

func TestCountsText(t *testing.T) {
	for _, c := range []struct {
		s    manager.Session
		want string
	}{
		{manager.Session{}, ""},
		{manager.Session{ToDesktop: manager.Counts{Created: 1}}, "1 new on this computer"},
		{manager.Session{ToDesktop: manager.Counts{Created: 3, Updated: 1}, ToDevice: manager.Counts{Deleted: 2}},
			"3 new and 1 changed on this computer; 2 deleted on the device"},
		{manager.Session{ToDevice: manager.Counts{Created: 1, Updated: 2, Renamed: 1, Deleted: 4}},
			"1 new, 2 changed, 1 renamed and 4 deleted on the device"},
	} {
		if got := countsText(c.s); got != c.want {
			t.Errorf("countsText(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestDiffLines(t *testing.T) {
	for _, c := range []struct {
		a, b         string
		wantA, wantB []bool
	}{
		{"x\ny\nz", "x\ny\nz", []bool{true, true, true}, []bool{true, true, true}},
		{"x\ny\nz", "x\nz", []bool{true, false, true}, []bool{true, true}},
		{"a\nb\nc", "a\nB\nc\nd", []bool{true, false, true}, []bool{true, false, true, false}},
		{"", "one", []bool{}, []bool{false}},
		{"p\nq\nr", "q\nr\np", []bool{false, true, true}, []bool{true, true, false}},
	} {
		a, b := splitLines(c.a), splitLines(c.b)
		gotA, gotB := diffLines(a, b)
		if !slices.Equal(gotA, c.wantA) || !slices.Equal(gotB, c.wantB) {
			t.Errorf("diffLines(%q, %q) = %v, %v, want %v, %v", c.a, c.b, gotA, gotB, c.wantA, c.wantB)
		}
	}
	// Past the table's bound, lines are compared as multisets.
	var big, other []string
	for i := range 1000 {
		big = append(big, strconv.Itoa(i))
		other = append(other, strconv.Itoa(999-i))
	}
	other[0] = "new"
	gotA, gotB := diffLines(big, other)
	if gotA[999] || !gotA[0] || gotB[0] || !gotB[1] {
		t.Errorf("large diff: line 999 common %v, line 0 common %v; other's new line common %v", gotA[999], gotA[0], gotB[0])
	}
}

func TestUdevCommands(t *testing.T) {
	cmds := udevCommands()
	for _, want := range []string{
		"sudo tee /etc/udev/rules.d/69-cradle-mtp.rules >/dev/null <<'EOF'\n",
		`ENV{ID_MTP_DEVICE}=="1", TAG+="uaccess"`,
		"\nEOF\nsudo udevadm control --reload-rules && sudo udevadm trigger",
	} {
		if !strings.Contains(cmds, want) {
			t.Errorf("udevCommands() lacks %q:\n%s", want, cmds)
		}
	}
	if strings.Contains(cmds, "# ") {
		t.Errorf("udevCommands() keeps the rule's comments:\n%s", cmds)
	}
}

// TestTranslationsComplete checks that every message the window shows has a Portuguese
// translation, that messages with plural forms have their English singular, and that the
// translation files hold nothing the window no longer says.
func TestTranslationsComplete(t *testing.T) {
	single, plural := messages(t)
	read := func(name string) map[string]json.RawMessage {
		b, err := translations.ReadFile("translations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	en, pt := read("en.json"), read("pt.json")
	forms := func(raw json.RawMessage) map[string]string {
		var m map[string]string
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		return m
	}
	for id := range single {
		if raw, ok := pt[id]; !ok {
			t.Errorf("pt.json has no translation of %q", id)
		} else if forms(raw) != nil {
			t.Errorf("pt.json translates %q with plural forms; the window does not count it", id)
		}
	}
	for id := range plural {
		for lang, m := range map[string]map[string]json.RawMessage{"en.json": en, "pt.json": pt} {
			f := forms(m[id])
			if f["one"] == "" || f["other"] == "" {
				t.Errorf("%s lacks the one and other forms of %q", lang, id)
			}
		}
	}
	// Texts of the built-in providers' declarations are translated when pt.json has them.
	decl := map[string]bool{}
	for _, p := range providers.All() {
		decl[capitalize(p.Name)] = true
		decl[p.Description] = true
		for _, o := range p.Options {
			decl[o.Label], decl[o.Help] = true, true
		}
	}
	for id := range pt {
		if !single[id] && !plural[id] && !decl[id] {
			t.Errorf("pt.json translates %q, which the window no longer shows", id)
		}
	}
	for id := range en {
		if !plural[id] {
			t.Errorf("en.json has %q, which is not a message with plural forms", id)
		}
	}
}

// messages returns the message IDs the window's code passes to tr and trN.
func messages(t *testing.T) (single, plural map[string]bool) {
	single, plural = map[string]bool{}, map[string]bool{}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			id, ok := call.Fun.(*ast.Ident)
			if !ok || id.Name != "tr" && id.Name != "trN" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: %s(...) with a message that is not a literal: it cannot be translated", fset.Position(call.Pos()), id.Name)
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if id.Name == "tr" {
				single[s] = true
			} else {
				plural[s] = true
			}
			return true
		})
	}
	if len(single) < 100 || len(plural) < 10 {
		t.Fatalf("found %d messages and %d with plural forms: the scan is broken", len(single), len(plural))
	}
	return single, plural
}

// TestTextsHaveGlyphs checks that every character the window shows, in either language, is in
// the fonts fyne's theme ships: a missing one is drawn from a system font that fyne finds by
// scanning the system's fonts, which costs tens of megabytes and may show a box instead.
func TestTextsHaveGlyphs(t *testing.T) {
	single, plural := messages(t)
	texts := []string{}
	for id := range single {
		texts = append(texts, id)
	}
	for id := range plural {
		texts = append(texts, id)
	}
	b, err := translations.ReadFile("translations/pt.json")
	if err != nil {
		t.Fatal(err)
	}
	var pt map[string]json.RawMessage
	if err := json.Unmarshal(b, &pt); err != nil {
		t.Fatal(err)
	}
	for _, raw := range pt {
		var s string
		var forms map[string]string
		if json.Unmarshal(raw, &s) == nil {
			texts = append(texts, s)
		} else if json.Unmarshal(raw, &forms) == nil {
			for _, f := range forms {
				texts = append(texts, f)
			}
		}
	}
	// Texts the code writes without a translation.
	texts = append(texts, " · ", "…", "—", "%")
	for _, res := range []fyne.Resource{theme.DefaultTextFont(), theme.DefaultTextBoldFont()} {
		face, err := font.ParseTTF(bytes.NewReader(res.Content()))
		if err != nil {
			t.Fatalf("%s: %v", res.Name(), err)
		}
		missing := map[rune]string{}
		for _, s := range texts {
			for _, r := range s {
				if _, ok := face.NominalGlyph(r); !ok && r != '\n' {
					missing[r] = s
				}
			}
		}
		for r, s := range missing {
			t.Errorf("%s has no glyph for %q (U+%04X), used in %q", res.Name(), r, r, s)
		}
	}
}

// TestSystemLanguage checks that with no language chosen the window follows the system's
// locale, and that choosing one leaves the process's environment as it was.
func TestSystemLanguage(t *testing.T) {
	t.Cleanup(func() { SetLanguage("") })
	for _, v := range localeVars {
		t.Setenv(v, "")
	}
	t.Setenv("LANG", "pt_PT.UTF-8")
	if err := SetLanguage("en"); err != nil {
		t.Fatal(err)
	}
	if got := tr("Sync Now"); got != "Sync Now" {
		t.Errorf("chosen English: %q", got)
	}
	if got := os.Getenv("LANGUAGE"); got != "" {
		t.Errorf("SetLanguage left LANGUAGE=%q in the environment", got)
	}
	if err := SetLanguage(""); err != nil {
		t.Fatal(err)
	}
	if got := tr("Sync Now"); got != "Sincronizar agora" {
		t.Errorf("system locale pt_PT: %q, want Portuguese", got)
	}
	if got := trN("{{.Count}} conflicts need you", 1); got != "1 conflito precisa de si" {
		t.Errorf("system locale pt_PT, one conflict: %q", got)
	}
	t.Setenv("LANG", "C.UTF-8")
	SetLanguage("pt")
	if err := SetLanguage(""); err != nil {
		t.Fatal(err)
	}
	if got := tr("Sync Now"); got != "Sync Now" {
		t.Errorf("system locale C.UTF-8: %q, want English", got)
	}
	if err := SetLanguage("fr"); err == nil {
		t.Errorf("SetLanguage(%q) = nil, want an error naming the languages there are", "fr")
	}
}

func TestContactField(t *testing.T) {
	for _, c := range []struct {
		f            manager.Field
		label, value string
	}{
		{manager.Field{Name: "TEL", Value: "TEL;TYPE=cell:+351911111111"}, "Phone (cell)", "+351911111111"},
		{manager.Field{Name: "TEL", Value: "TEL;WORK;VOICE:+351213000111"}, "Phone (work, voice)", "+351213000111"},
		{manager.Field{Name: "EMAIL", Value: `EMAIL;TYPE="home,pref":a@b.org`}, "E-mail (home, pref)", "a@b.org"},
		{manager.Field{Name: "N", Value: "N:Silva;Ana;;;"}, "Name parts", "Silva, Ana"},
		{manager.Field{Name: "FN", Value: "FN:Ana Silva"}, "Name", "Ana Silva"},
		{manager.Field{Name: "X-CUSTOM", Value: "x:y"}, "X-CUSTOM", "x:y"},
		{manager.Field{Name: "NOTE", Value: "plain note: no property line"}, "Note", "plain note: no property line"},
	} {
		label, value := contactField(c.f)
		if label != c.label || value != c.value {
			t.Errorf("contactField(%+v) = %q, %q, want %q, %q", c.f, label, value, c.label, c.value)
		}
	}
}
