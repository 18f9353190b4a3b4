package contacts

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/repl"
)

// parseFile reads every card of a fixture, failing on any malformed one.
func parseFile(t *testing.T, path string) []*card {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cards []*card
	for _, seg := range splitFile(data) {
		if !seg.card {
			continue
		}
		c, err := parseCard(seg.raw, seg.line)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cards = append(cards, c)
	}
	return cards
}

func value(c *card, key string) string { return unescape(c.fields.Value(key)) }

func TestParseAndroid21(t *testing.T) {
	cards := parseFile(t, "testdata/android21.vcf")
	if len(cards) != 4 {
		t.Fatalf("parsed %d cards, want 4", len(cards))
	}
	photo, err := os.ReadFile("testdata/photo.b64")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		card       int
		key, value string
	}{
		{0, "FN", "Jürgen Müller"},
		{0, "N", "Müller;Jürgen;;;"},
		{0, "ADR", ";;Straße 1;Berlin;;10115;Deutschland"},
		{0, "NOTE", "Erste Zeile\nZweite Zeile: Grüße, und 😀 Emoji; sehr lang, damit der Wert über mehrere Zeilen umbricht"},
		{0, "PHOTO", strings.TrimSpace(string(photo))},
		{1, "FN", "王小明"},
		{1, "N", "王;小明;;;"},
		{1, "ORG", "北京科技有限公司"},
		{1, "TITLE", "工程师"},
		{1, "X-ANDROID-CUSTOM", "vnd.android.cursor.item/nickname;Xiao Ming;1;;;;;;;;;;;;;"},
		{2, "FN", "Émilie Dupont"},
		{2, "BDAY", "1990-05-17"},
		{2, "URL", "https://example.fr/~emilie"},
		{3, "NOTE", `Backslash C:\temp\x and semicolon; kept`},
	}
	for _, tt := range tests {
		if got := value(cards[tt.card], tt.key); got != tt.value {
			t.Errorf("card %d %s = %q, want %q", tt.card, tt.key, got, tt.value)
		}
	}
	if got := cards[0].fields.Get("PHOTO").Params; got.Get("ENCODING") != "b" || !reflect.DeepEqual(got["TYPE"], []string{"jpeg"}) {
		t.Errorf("PHOTO params = %v, want ENCODING=b TYPE=jpeg", got)
	}
	if got := cards[1].fields.Get("TEL").Params["TYPE"]; !reflect.DeepEqual(got, []string{"cell", "pref"}) {
		t.Errorf("TEL;CELL;PREF types = %v, want [cell pref]", got)
	}
	if got := cards[2].fields.Get("TEL").Params["TYPE"]; !reflect.DeepEqual(got, []string{"fax", "work"}) {
		t.Errorf("TEL;WORK;FAX types = %v, want [fax work]", got)
	}
	for i, c := range cards {
		if c.version != "2.1" {
			t.Errorf("card %d version = %q, want 2.1", i, c.version)
		}
	}
}

func TestParseCharsets(t *testing.T) {
	cards := parseFile(t, "testdata/charsets.vcf")
	want := []string{"山田太郎", "René François"}
	if len(cards) != len(want) {
		t.Fatalf("parsed %d cards, want %d", len(cards), len(want))
	}
	for i, w := range want {
		if got := value(cards[i], "FN"); got != w {
			t.Errorf("card %d FN = %q, want %q", i, got, w)
		}
	}
}

// Every fixture card survives writing in each version and reading back: same units, and the
// text is plain UTF-8 without mojibake in 3.0 and 4.0.
func TestRoundTripVersions(t *testing.T) {
	for _, file := range []string{"testdata/android21.vcf", "testdata/charsets.vcf"} {
		for i, c := range parseFile(t, file) {
			want := c.units()
			for _, v := range []string{v21, v30, v40} {
				out := c.encode(v)
				back, err := parseCard(out, 1)
				if err != nil {
					t.Fatalf("%s card %d: encode(%s) does not parse: %v\n%s", file, i, v, err, out)
				}
				if got := back.units(); !reflect.DeepEqual(got, want) {
					t.Errorf("%s card %d: units after a %s round trip differ:\n got %q\nwant %q", file, i, v, got, want)
				}
				if again := back.encode(v); !bytes.Equal(again, out) {
					t.Errorf("%s card %d: %s encoding is not stable:\n%s\nthen\n%s", file, i, v, out, again)
				}
				if v != v21 {
					fn := value(c, "FN")
					if !bytes.Contains(unfoldAll(out), []byte("FN:"+fn)) {
						t.Errorf("%s card %d: %s output lacks FN:%s in plain UTF-8:\n%s", file, i, v, fn, out)
					}
				}
			}
		}
	}
}

func unfoldAll(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n "), nil) }

func TestEscapesSurvive(t *testing.T) {
	tests := []struct{ in, key, want string }{
		{"NOTE:a\\;b\\,c\\\\d\\ne", "NOTE", "a;b,c\\d\ne"},
		{"N:O\\;Brien;Pat;;;", "N", "O;Brien;Pat;;;"},
		{"CATEGORIES:friends,work\\,play", "CATEGORIES", "friends,work,play"},
		{"NOTE:upper \\N newline", "NOTE", "upper \n newline"},
		{"NOTE:colon \\: kept", "NOTE", "colon : kept"},
	}
	for _, tt := range tests {
		c, err := parseCard([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\n"+tt.in+"\r\nEND:VCARD\r\n"), 1)
		if err != nil {
			t.Fatalf("parseCard(%q): %v", tt.in, err)
		}
		if got := value(c, tt.key); got != tt.want {
			t.Errorf("parseCard(%q) %s = %q, want %q", tt.in, tt.key, got, tt.want)
		}
		out := c.encode(v30)
		back, err := parseCard(out, 1)
		if err != nil {
			t.Fatalf("re-parse %q: %v", out, err)
		}
		if !reflect.DeepEqual(back.fields[tt.key], c.fields[tt.key]) {
			t.Errorf("%q: %s after a round trip = %q, want %q", tt.in, tt.key, back.fields.Value(tt.key), c.fields.Value(tt.key))
		}
	}
	// A list keeps the difference between a separator and an escaped comma.
	c, _ := parseCard([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nCATEGORIES:a,b\\,c\r\nEND:VCARD\r\n"), 1)
	if got := string(c.units()["CATEGORIES"]); got != `CATEGORIES:a,b\,c` {
		t.Errorf("CATEGORIES unit = %q, want %q", got, `CATEGORIES:a,b\,c`)
	}
}

func TestMalformedCards(t *testing.T) {
	data, err := os.ReadFile("testdata/malformed.vcf")
	if err != nil {
		t.Fatal(err)
	}
	var good []string
	var bad []error
	for _, seg := range splitFile(data) {
		if !seg.card {
			continue
		}
		c, err := parseCard(seg.raw, seg.line)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		good = append(good, c.uid())
	}
	if !reflect.DeepEqual(good, []string{"good-1", "good-2"}) {
		t.Errorf("good cards = %v, want [good-1 good-2]", good)
	}
	wantLines := []int{12, 14}
	if len(bad) != len(wantLines) {
		t.Fatalf("malformed cards = %v, want %d", bad, len(wantLines))
	}
	for i, err := range bad {
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != wantLines[i] {
			t.Errorf("error %d = %v, want a ParseError at line %d", i, err, wantLines[i])
		}
	}
}

func TestUnitsCanonical(t *testing.T) {
	a, err := parseCard([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nREV:20200101T000000Z\r\nTEL;TYPE=HOME:1\r\nTEL;TYPE=cell,voice:2\r\nFN:A\r\nEND:VCARD\r\n"), 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseCard([]byte("BEGIN:VCARD\r\nVERSION:2.1\r\nFN:A\r\nTEL;VOICE;CELL:2\r\nTEL;home:1\r\nPRODID:other\r\nEND:VCARD\r\n"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if ua, ub := a.units(), b.units(); !reflect.DeepEqual(ua, ub) {
		t.Errorf("units differ for the same fields in another order and version:\n%q\n%q", ua, ub)
	}
	if unitsHash(a.units()) != unitsHash(b.units()) {
		t.Error("unitsHash differs for equal units")
	}
	want := repl.Units{"FN": []byte("FN:A"), "TEL;CELL,VOICE": []byte("TEL;TYPE=cell,voice:2"), "TEL;HOME": []byte("TEL;TYPE=home:1")}
	if got := a.units(); !reflect.DeepEqual(got, want) {
		t.Errorf("units = %q, want %q", got, want)
	}
	c, err := cardFromUnits(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.units(); !reflect.DeepEqual(got, want) {
		t.Errorf("cardFromUnits round trip = %q, want %q", got, want)
	}
	if _, err := cardFromUnits(repl.Units{"TEL": []byte("EMAIL:a@b")}); err == nil {
		t.Error("cardFromUnits accepted a TEL unit holding an EMAIL line")
	}
}
