// Command icons writes Cradle's application icon (assets/icon.png, 512x512) at the sizes of
// the hicolor icon theme: go run ./packaging/icons DIR writes
// DIR/NxN/apps/io.github.cradle_sync.cradle.png for each size.
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"

	"github.com/cradle-sync/cradle/assets"
)

// sizes are the hicolor theme's usual application icon sizes.
var sizes = []int{16, 22, 24, 32, 48, 64, 128, 256, 512}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: icons DIR (the hicolor theme folder to write into)")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "icons:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	src, err := png.Decode(bytes.NewReader(assets.Icon))
	if err != nil {
		return fmt.Errorf("decode the icon: %w", err)
	}
	for _, n := range sizes {
		dst := image.NewNRGBA(image.Rect(0, 0, n, n))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
		dir := filepath.Join(root, fmt.Sprintf("%dx%d", n, n), "apps")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var b bytes.Buffer
		if err := png.Encode(&b, dst); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "io.github.cradle_sync.cradle.png"), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
