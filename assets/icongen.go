//go:build ignore

// icongen draws Cradle's application icon: a phone standing in its cradle, with a sync arrow.
// Run: go run assets/icongen.go (writes assets/icon.png).
package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

const size = 512

func main() {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	bg := color.NRGBA{0x1f, 0x6f, 0xb2, 0xff}     // blue tile
	base := color.NRGBA{0x0e, 0x3d, 0x66, 0xff}   // cradle
	phone := color.NRGBA{0xf4, 0xf7, 0xfa, 0xff}  // device body
	screen := color.NRGBA{0x2b, 0x8f, 0xd9, 0xff} // screen
	arrow := color.NRGBA{0xff, 0xc1, 0x3b, 0xff}  // sync arrows

	fill := func(inside func(x, y float64) bool, c color.NRGBA) {
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				// 4x4 supersampling for smooth edges
				n := 0
				for sy := 0; sy < 4; sy++ {
					for sx := 0; sx < 4; sx++ {
						if inside(float64(x)+(float64(sx)+0.5)/4, float64(y)+(float64(sy)+0.5)/4) {
							n++
						}
					}
				}
				if n == 0 {
					continue
				}
				a := float64(n) / 16
				d := img.NRGBAAt(x, y)
				blend := func(s, t uint8) uint8 { return uint8(float64(s)*a + float64(t)*(1-a)) }
				na := uint8(math.Min(255, float64(d.A)+a*float64(255-int(d.A))))
				img.SetNRGBA(x, y, color.NRGBA{blend(c.R, d.R), blend(c.G, d.G), blend(c.B, d.B), na})
			}
		}
	}
	roundRect := func(x0, y0, x1, y1, r float64) func(x, y float64) bool {
		return func(x, y float64) bool {
			if x < x0 || x > x1 || y < y0 || y > y1 {
				return false
			}
			cx := math.Max(x0+r, math.Min(x, x1-r))
			cy := math.Max(y0+r, math.Min(y, y1-r))
			return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
		}
	}
	ring := func(cx, cy, r0, r1, a0, a1 float64) func(x, y float64) bool {
		return func(x, y float64) bool {
			d := math.Hypot(x-cx, y-cy)
			if d < r0 || d > r1 {
				return false
			}
			a := math.Atan2(y-cy, x-cx)
			if a < 0 {
				a += 2 * math.Pi
			}
			return a >= a0 && a <= a1
		}
	}
	tri := func(ax, ay, bx, by, cx, cy float64) func(x, y float64) bool {
		return func(x, y float64) bool {
			s := func(px, py, qx, qy, rx, ry float64) float64 { return (px-rx)*(qy-ry) - (qx-rx)*(py-ry) }
			d1, d2, d3 := s(x, y, ax, ay, bx, by), s(x, y, bx, by, cx, cy), s(x, y, cx, cy, ax, ay)
			neg := d1 < 0 || d2 < 0 || d3 < 0
			pos := d1 > 0 || d2 > 0 || d3 > 0
			return !(neg && pos)
		}
	}

	fill(roundRect(16, 16, 496, 496, 96), bg)
	// the cradle: a low dock with a slot
	fill(roundRect(96, 352, 416, 448, 40), base)
	// the phone standing in it
	fill(roundRect(176, 72, 336, 392, 28), phone)
	fill(roundRect(194, 104, 318, 340, 10), screen)
	fill(roundRect(236, 354, 276, 370, 8), base)
	// two sync arrows on the screen
	cx, cy := 256.0, 222.0
	fill(ring(cx, cy, 34, 50, math.Pi*1.05, math.Pi*1.85), arrow)
	fill(ring(cx, cy, 34, 50, math.Pi*0.05, math.Pi*0.85), arrow)
	fill(tri(cx+26, cy-58, cx+58, cy-30, cx+22, cy-18), arrow)
	fill(tri(cx-26, cy+58, cx-58, cy+30, cx-22, cy+18), arrow)

	f, err := os.Create("assets/icon.png")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		panic(err)
	}
}
