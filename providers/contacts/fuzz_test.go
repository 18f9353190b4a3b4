package contacts

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-vcard"
)

// The fuzz targets run their seed corpus (the fixtures and the cases below) in every go test;
// `make fuzz` (scripts/fuzz) runs them for real.

func addFixtureSeeds(f *testing.F) {
	for _, name := range []string{"testdata/android21.vcf", "testdata/charsets.vcf", "testdata/malformed.vcf"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, seg := range splitFile(data) {
			f.Add(seg.raw)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"BEGIN:VCARD\r\nVERSION:3.0\r\nN:O\\;Brien;Pat;;;\r\nCATEGORIES:a,b\\,c\r\nNOTE:x\\ny\\\\z\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;PREF=1;TYPE=cell:1\r\nPHOTO:data:image/png;base64,iVBORw0KGgo=\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\nVERSION:2.1\nNOTE;ENCODING=QUOTED-PRINTABLE:a=\nb=3D=\n\nEND:VCARD\n",
		"BEGIN:VCARD\r\nVERSION:2.1\r\nitem1.EMAIL;INTERNET;PREF:x@y\r\nitem1.X-ABLabel:_$!<Other>!$_\r\nEND:VCARD\r\n",
		"BEGIN:VCARD\r\nVERSION:3.0\r\nADR;LABEL=\"a;b:c\";TYPE=work:;;1 Main St\\, Apt 2;Town;;;\r\nEND:VCARD\r\n",
		"\uFEFFBEGIN:VCARD\r\nVERSION:3.0\r\nFN:bom\r\nEND:VCARD",
	} {
		f.Add([]byte(s))
	}
}

// FuzzCard checks that no input makes the parser panic, and that a card it accepts survives
// being written in every version: it reads back with the same units, and writing it again gives
// the same bytes.
func FuzzCard(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, seg := range splitFile(data) {
			if !seg.card {
				continue
			}
			c, err := parseCard(seg.raw, seg.line)
			if err != nil {
				continue
			}
			want := c.units()
			for _, v := range []string{v30, v21, v40} {
				out := c.encode(v)
				back, err := parseCard(out, 1)
				if err != nil {
					t.Fatalf("card %q written as %s does not parse: %v\n%s", seg.raw, v, err, out)
				}
				if got := back.units(); !reflect.DeepEqual(got, want) {
					t.Fatalf("card %q written as %s reads back as other units:\n got %q\nwant %q\n%s", seg.raw, v, got, want, out)
				}
				if again := back.encode(v); !bytes.Equal(again, out) {
					t.Fatalf("card %q: %s encoding not stable:\n%q\n%q", seg.raw, v, out, again)
				}
			}
			if u := c.uid(); u != "" && !strings.ContainsAny(u, "\r\n") {
				c2, err := parseCard(c.encode(v30), 1)
				if err != nil || c2.uid() != u {
					t.Fatalf("UID %q does not survive: %q, %v", u, c2.uid(), err)
				}
			}
		}
	})
}

// FuzzPrepass checks the 2.1 pre-pass on single content lines: it never panics, what it accepts
// go-vcard reads as exactly one field, and that field written and pre-passed again is the same.
func FuzzPrepass(f *testing.F) {
	for _, s := range []string{
		"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=4D=C3=BC=6C=6C=65=72;=4A=C3=BC=72=67=65=6E;;;",
		"TEL;CELL;PREF:+49 170 1234567",
		"NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Ren=E9=0D=0Aligne, deux",
		"FN;CHARSET=SHIFT_JIS:\x8eR\x93c",
		"PHOTO;ENCODING=BASE64;JPEG:/9j/4AAQ SkZJRg==",
		"item2.URL;type=pref:http://x/a,b;c",
		"X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;Nick;1;;;;;;;;;;;;;",
		"NOTE:back\\slash \\: colon \\N newline \\, comma",
		"ADR;TYPE=\"home,work\":;;a\\;b;c",
		"bad line without colon",
		"TEL;X-Q=\"quoted \\ backslash\":1",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, line string, v21 bool) {
		if strings.ContainsAny(line, "\r\n") {
			return // one logical line
		}
		norm, err := normalizeLine(logical{text: line, line: 1}, v21)
		if err != nil {
			return
		}
		c := decodeOne(t, norm)
		if c == nil {
			return
		}
		var key string
		var field *vcard.Field
		for k, fs := range c {
			key, field = k, fs[0]
		}
		again, err := normalizeLine(logical{text: formatLine(key, field, v30), line: 1}, false)
		if err != nil {
			t.Fatalf("%q -> %q: written back as %q it no longer passes: %v", line, norm, formatLine(key, field, v30), err)
		}
		c2 := decodeOne(t, again)
		if c2 == nil || !reflect.DeepEqual(c2[key], c[key]) {
			t.Fatalf("%q: field %v written and read again is %v", line, c[key], c2)
		}
	})
}

// decodeOne runs go-vcard on one normalized line, which must give one field (nil for BEGIN/END
// and VERSION, which go-vcard treats apart).
func decodeOne(t *testing.T, norm string) vcard.Card {
	t.Helper()
	c, err := vcard.NewDecoder(strings.NewReader("BEGIN:VCARD\r\n" + norm + "\r\nEND:VCARD\r\n")).Decode()
	if err != nil {
		if h, _, _ := cutValue(norm); strings.EqualFold(h, "END") || strings.EqualFold(h, "BEGIN") {
			return nil
		}
		t.Fatalf("normalized line %q does not decode: %v", norm, err)
	}
	n := 0
	for _, fs := range c {
		n += len(fs)
	}
	if n != 1 {
		if strings.HasPrefix(strings.ToUpper(norm), "END") || strings.HasPrefix(strings.ToUpper(norm), "BEGIN") {
			return nil
		}
		t.Fatalf("normalized line %q decodes to %d fields, want 1", norm, n)
	}
	(&card{fields: c}).normalize()
	return c
}
