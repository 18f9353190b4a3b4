package fsstore

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// benchTree returns a tree of 100,000 small files in 1,000 folders (10 top folders of 100
// folders each), made once under the temporary folder and reused by later runs. Set
// CRADLE_BENCH_TREE to put it elsewhere.
func benchTree(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("CRADLE_BENCH_TREE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cradle-bench-tree-100k")
	}
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return dir
	}
	b.Logf("creating a 100k-file tree in %s (once)", dir)
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	mt := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for top := range 10 {
		for sub := range 100 {
			d := filepath.Join(dir, fmt.Sprintf("top%02d", top), fmt.Sprintf("sub%03d", sub))
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := range 100 {
				p := filepath.Join(d, fmt.Sprintf("file%03d.txt", f))
				if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.Chtimes(p, mt, mt); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// bareWalk is the baseline: the standard library's walk with an lstat of every entry.
func bareWalk(b *testing.B, dir string) int {
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
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// detect is what a full change detection asks of the store: enumerate everything and ask
// IsItemChanged of each item against its recorded stamp.
func detect(b *testing.B, s *DesktopStore, recorded map[string]repl.Stamp) int {
	ctx := context.Background()
	it, err := s.Enumerate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	n := 0
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if !s.IsItemReplicated(e) {
			continue
		}
		changed, err := s.IsItemChanged(ctx, e, recorded[e.Handle])
		if err != nil || changed {
			b.Fatalf("IsItemChanged(%q) = %v, %v on an unchanged tree", e.Handle, changed, err)
		}
		n++
	}
	return n
}

func recordTree(b *testing.B, s *DesktopStore) map[string]repl.Stamp {
	ctx := context.Background()
	it, err := s.Enumerate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	m := map[string]repl.Stamp{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			return m
		}
		if err != nil {
			b.Fatal(err)
		}
		m[e.Handle] = e.Stamp()
	}
}

// BenchmarkEnumerate100k measures a full detection pass of the desktop store over an unchanged
// 100k-file tree against a bare filepath.WalkDir + os.Lstat of the same tree. The goal is a ratio
// of at most 1.5; BenchmarkEnumerate100kRatio reports it directly.
func BenchmarkEnumerate100k(b *testing.B) {
	dir := benchTree(b)
	s := newDesktop(b, dir, DesktopOptions{})
	recorded := recordTree(b, s)
	b.Run("bare-walk-lstat", func(b *testing.B) {
		for b.Loop() {
			bareWalk(b, dir)
		}
	})
	b.Run("store-detect", func(b *testing.B) {
		for b.Loop() {
			if n := detect(b, s, recorded); n < 100000 {
				b.Fatalf("detected %d items, want at least 100000", n)
			}
		}
	})
}

// BenchmarkEnumerate100kRatio alternates the two passes and reports store time / bare time.
func BenchmarkEnumerate100kRatio(b *testing.B) {
	dir := benchTree(b)
	s := newDesktop(b, dir, DesktopOptions{})
	recorded := recordTree(b, s)
	var bare, store time.Duration
	for b.Loop() {
		t0 := time.Now()
		bareWalk(b, dir)
		t1 := time.Now()
		detect(b, s, recorded)
		store += time.Since(t1)
		bare += t1.Sub(t0)
	}
	b.ReportMetric(float64(store)/float64(bare), "store/bare")
	b.ReportMetric(0, "ns/op")
}
