package contacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-vcard"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/repl"
)

// Benchmarks (run by `make bench`): each has a baseline measured in the same run, so figures
// compare as ratios on any machine.
//
//   - BenchmarkParse: Android 2.1 cards through the pre-pass and go-vcard, against go-vcard alone
//     on the same cards already in 3.0.
//   - BenchmarkDeviceWrite: one card updated in a 500-card device file (the whole file
//     rewritten, with its journal), against uploading the same bytes once, on a folder device and
//     over MTP.

// androidCard writes the i-th card the way Android exports it, with a photo of photoBytes bytes
// when photoBytes > 0.
func androidCard(i, photoBytes int) string {
	qp := func(s string) string {
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Binary = true
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	var b strings.Builder
	b.WriteString("BEGIN:VCARD\r\nVERSION:2.1\r\n")
	fmt.Fprintf(&b, "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:%s;%s;;;\r\n", qp(fmt.Sprintf("Müller-%d", i)), qp("Jürgen"))
	fmt.Fprintf(&b, "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:%s\r\n", qp(fmt.Sprintf("Jürgen Müller-%d", i)))
	fmt.Fprintf(&b, "TEL;CELL:+49 170 %07d\r\nTEL;HOME:030-%06d\r\nEMAIL;HOME:j%d@example.de\r\n", i, i, i)
	fmt.Fprintf(&b, "ADR;HOME;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:;;%s;Berlin;;10115;Deutschland\r\n", qp(fmt.Sprintf("Straße %d", i)))
	fmt.Fprintf(&b, "NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:%s\r\n", qp("Erste Zeile\r\nZweite Zeile 😀"))
	if photoBytes > 0 {
		raw := make([]byte, photoBytes)
		r := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range raw {
			raw[j] = byte(r.Uint32())
		}
		b.WriteString(strings.TrimSuffix(fold("PHOTO;ENCODING=BASE64;JPEG:"+base64.StdEncoding.EncodeToString(raw)), "\r\n") + "\r\n\r\n")
	}
	b.WriteString("END:VCARD\r\n")
	return b.String()
}

func androidFile(n, photoEvery, photoBytes int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		p := 0
		if photoEvery > 0 && i%photoEvery == 0 {
			p = photoBytes
		}
		b.WriteString(androidCard(i, p))
	}
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	data := androidFile(500, 10, 8<<10)
	var as30 bytes.Buffer
	for _, seg := range splitFile(data) {
		c, err := parseCard(seg.raw, seg.line)
		if err != nil {
			b.Fatal(err)
		}
		as30.Write(c.encode(v30))
	}
	b.Run("baseline-govcard-3.0", func(b *testing.B) {
		b.SetBytes(int64(as30.Len()))
		for b.Loop() {
			dec := vcard.NewDecoder(bytes.NewReader(as30.Bytes()))
			for {
				if _, err := dec.Decode(); err != nil {
					break
				}
			}
		}
	})
	b.Run("cradle-android-2.1", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			for _, seg := range splitFile(data) {
				if _, err := parseCard(seg.raw, seg.line); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkDeviceWrite(b *testing.B) {
	data := androidFile(500, 25, 16<<10)
	for _, kind := range []string{"folder", "mtp"} {
		b.Run(kind, func(b *testing.B) {
			root := b.TempDir()
			path := filepath.Join(root, filepath.FromSlash(DefaultDevicePath))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				b.Fatal(err)
			}
			var dev device.Device
			if kind == "folder" {
				d, err := folder.Open(root, folder.Options{NoEvents: true})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				dev = d
			} else {
				d, err := emulator.OpenDevice(context.Background(), root, emulator.Options{Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				dev = d
			}
			ctx := context.Background()
			storages, err := dev.Storages(ctx)
			if err != nil {
				b.Fatal(err)
			}
			sid := storages[0].ID
			b.Run("baseline-upload", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := dev.Create(ctx, sid, "Contacts/upload.vcf", int64(len(data)), time.Now(), bytes.NewReader(data)); err != nil {
						b.Fatal(err)
					}
					if err := dev.Delete(ctx, sid, "Contacts/upload.vcf"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("update-one-card", func(b *testing.B) {
				s, err := NewDeviceFile(dev, DefaultDevicePath, b.TempDir(), b.Logf)
				if err != nil {
					b.Fatal(err)
				}
				it, err := s.Enumerate(ctx)
				if err != nil {
					b.Fatal(err)
				}
				e, err := it.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				units, err := s.ReadUnits(ctx, e.Handle)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(data)))
				n := 0
				for b.Loop() {
					n++
					units["TITLE"] = []byte(fmt.Sprintf("TITLE:Engineer %d", n))
					stamp := e.Stamp()
					if e, err = s.WriteUnits(ctx, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: e.Handle, Kind: repl.KindFile, Size: -1}, units); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// A card with a large photo, folded over thousands of lines in 2.1 layout, reads and writes back
// whole.
func TestLargePhoto(t *testing.T) {
	raw := androidCard(7, 1536<<10)
	c, err := parseCard([]byte(raw), 1)
	if err != nil {
		t.Fatal(err)
	}
	photo := c.fields.Get("PHOTO")
	data, err := base64.StdEncoding.DecodeString(photo.Value)
	if err != nil || len(data) != 1536<<10 {
		t.Fatalf("photo decodes to %d bytes (%v), want %d", len(data), err, 1536<<10)
	}
	for _, v := range []string{v21, v30, v40} {
		back, err := parseCard(c.encode(v), 1)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if back.fields.Get("PHOTO").Value != photo.Value {
			t.Errorf("photo changed in a %s round trip", v)
		}
	}
}
