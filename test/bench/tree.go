package main

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// treeSpec describes a benchmark tree: files spread 100 to a folder, folders 100 to a top folder.
type treeSpec struct {
	files int
	// size is each file's size; 0 writes a short line of text naming the file.
	size int
}

// treeMod is every file's modification time, so that trees built in different runs are alike.
var treeMod = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// rel returns the relative path of file i.
func (s treeSpec) rel(i int) string {
	folder := i / 100
	return filepath.Join(fmt.Sprintf("top%02d", folder/100), fmt.Sprintf("sub%03d", folder%100), fmt.Sprintf("file%03d.txt", i%100))
}

// folders returns how many folders the tree has (top folders included).
func (s treeSpec) folders() int {
	subs := (s.files + 99) / 100
	return subs + (subs+99)/100
}

// build writes the tree into dir (which must not exist yet).
func (s treeSpec) build(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(1, uint64(s.files)))
	buf := make([]byte, s.size)
	for i := range s.files {
		p := filepath.Join(dir, s.rel(i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		content := buf
		if s.size == 0 {
			content = fmt.Appendf(nil, "file %d of the benchmark tree\n", i)
		} else {
			// Random bytes: neither compressible nor all zeros (the emulator writes zeros sparsely).
			for j := 0; j < len(buf); j += 8 {
				v := rnd.Uint64()
				for k := 0; k < 8 && j+k < len(buf); k++ {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, treeMod, treeMod); err != nil {
			return err
		}
	}
	return nil
}

// bareWalk is the baseline of change detection: the standard library's walk of the tree with an
// lstat of every entry, the least any program must do to notice a changed size or time. It
// returns how many entries it saw.
func bareWalk(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := os.Lstat(p); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// timedWalk times one bare walk and checks that it saw the whole tree.
func timedWalk(dir string, want int) (time.Duration, error) {
	t0 := time.Now()
	n, err := bareWalk(dir)
	d := time.Since(t0)
	if err == nil && n != want {
		err = fmt.Errorf("the stat walk of %s saw %d entries, want %d", dir, n, want)
	}
	return d, err
}
