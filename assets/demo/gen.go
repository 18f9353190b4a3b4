//go:build ignore

// gen draws the demo's camera pictures: small JPEG landscapes with EXIF dates, as a phone's camera
// writes them (Make, Model, DateTime and DateTimeOriginal), so the photos provider files them by
// the day they were taken. Run: go run assets/demo/gen.go (writes assets/demo/device/DCIM/Camera).
package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"
)

type scene struct {
	name  string
	taken time.Time
	sky   [2]color.NRGBA // top, horizon
	land  color.NRGBA
	sun   bool
	hills float64 // amplitude of the horizon line
	sea   bool
}

func main() {
	dir := filepath.Join("assets", "demo", "device", "DCIM", "Camera")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	scenes := []scene{
		{"IMG_20260614_071502.jpg", time.Date(2026, 6, 14, 7, 15, 2, 0, time.UTC),
			[2]color.NRGBA{{0x2c, 0x3e, 0x7b, 0xff}, {0xf6, 0xa6, 0x5b, 0xff}}, color.NRGBA{0x2f, 0x4f, 0x2f, 0xff}, true, 0.05, false},
		{"IMG_20260803_153321.jpg", time.Date(2026, 8, 3, 15, 33, 21, 0, time.UTC),
			[2]color.NRGBA{{0x3a, 0x8e, 0xd8, 0xff}, {0xbf, 0xe3, 0xf7, 0xff}}, color.NRGBA{0x1d, 0x5f, 0x8a, 0xff}, true, 0.0, true},
		{"IMG_20260803_154007.jpg", time.Date(2026, 8, 3, 15, 40, 7, 0, time.UTC),
			[2]color.NRGBA{{0x4a, 0x9a, 0xe0, 0xff}, {0xd8, 0xee, 0xfb, 0xff}}, color.NRGBA{0xd9, 0xc2, 0x8a, 0xff}, false, 0.02, true},
		{"IMG_20261031_175944.jpg", time.Date(2026, 10, 31, 17, 59, 44, 0, time.UTC),
			[2]color.NRGBA{{0x1b, 0x1f, 0x3b, 0xff}, {0xc0, 0x5a, 0x3b, 0xff}}, color.NRGBA{0x4a, 0x3b, 0x2a, 0xff}, false, 0.12, false},
	}
	for i, s := range scenes {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, draw(s, int64(i)), &jpeg.Options{Quality: 82}); err != nil {
			log.Fatal(err)
		}
		out := withExif(buf.Bytes(), s.taken)
		if err := os.WriteFile(filepath.Join(dir, s.name), out, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func mix(a, b color.NRGBA, t float64) color.NRGBA {
	l := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*t) }
	return color.NRGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 0xff}
}

func draw(s scene, seed int64) image.Image {
	const w, h = 640, 480
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	horizon := func(x int) float64 {
		fx := float64(x) / w
		return h*0.62 - s.hills*h*(math.Sin(fx*6.3+float64(seed))+0.5*math.Sin(fx*17+float64(seed)*2))
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			hy := horizon(x)
			var c color.NRGBA
			if float64(y) < hy {
				c = mix(s.sky[0], s.sky[1], float64(y)/hy)
				if s.sun {
					dx, dy := float64(x)-w*0.7, float64(y)-hy*0.55
					if d := math.Hypot(dx, dy); d < 38 {
						c = color.NRGBA{0xff, 0xf2, 0xb0, 0xff}
					} else if d < 70 {
						c = mix(color.NRGBA{0xff, 0xe8, 0xa0, 0xff}, c, (d-38)/32)
					}
				}
			} else {
				t := (float64(y) - hy) / (h - hy)
				c = mix(s.land, color.NRGBA{s.land.R / 2, s.land.G / 2, s.land.B / 2, 0xff}, t)
				if s.sea && (y/6+x/40)%7 == 0 {
					c = mix(c, color.NRGBA{0xff, 0xff, 0xff, 0xff}, 0.25)
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// withExif inserts an APP1 Exif segment after the JPEG's SOI marker.
func withExif(jpg []byte, taken time.Time) []byte {
	stamp := taken.Format("2006:01:02 15:04:05") + "\x00"
	le := binary.LittleEndian
	type entry struct {
		tag, typ uint16
		count    uint32
		data     []byte // ASCII data, or nil for a LONG value
		long     uint32
	}
	ascii := func(tag uint16, s string) entry {
		return entry{tag: tag, typ: 2, count: uint32(len(s)), data: []byte(s)}
	}
	// writeIFD lays out an IFD at offset off (from the TIFF header), its out-of-line data after it.
	writeIFD := func(off uint32, es []entry, next uint32) []byte {
		var ifd, extra bytes.Buffer
		binary.Write(&ifd, le, uint16(len(es)))
		dataOff := off + 2 + uint32(len(es))*12 + 4
		for _, e := range es {
			binary.Write(&ifd, le, e.tag)
			binary.Write(&ifd, le, e.typ)
			binary.Write(&ifd, le, e.count)
			switch {
			case e.data == nil:
				binary.Write(&ifd, le, e.long)
			case len(e.data) <= 4:
				var v [4]byte
				copy(v[:], e.data)
				ifd.Write(v[:])
			default:
				binary.Write(&ifd, le, dataOff+uint32(extra.Len()))
				extra.Write(e.data)
				if extra.Len()%2 == 1 {
					extra.WriteByte(0)
				}
			}
		}
		binary.Write(&ifd, le, next)
		return append(ifd.Bytes(), extra.Bytes()...)
	}
	ifd0 := []entry{
		ascii(0x010F, "Cradle\x00"),
		ascii(0x0110, "Demo Phone\x00"),
		ascii(0x0132, stamp),
		{tag: 0x8769, typ: 4, count: 1}, // Exif IFD pointer, set below
	}
	// IFD0 at offset 8; its size decides where the Exif IFD goes.
	first := writeIFD(8, ifd0, 0)
	exifOff := 8 + uint32(len(first))
	ifd0[3].long = exifOff
	first = writeIFD(8, ifd0, 0)
	exif := writeIFD(exifOff, []entry{ascii(0x9003, stamp), ascii(0x9004, stamp)}, 0)
	var tiff bytes.Buffer
	tiff.WriteString("II*\x00")
	binary.Write(&tiff, le, uint32(8))
	tiff.Write(first)
	tiff.Write(exif)
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2]) // SOI
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
	out.Write(payload)
	out.Write(jpg[2:])
	return out.Bytes()
}
