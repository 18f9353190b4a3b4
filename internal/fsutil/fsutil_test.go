package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "settings.toml")
	if err := WriteFileAtomic(p, []byte("one"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := WriteFileAtomic(p, []byte("two"), WriteOptions{Perm: 0o644, ModTime: mt}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	fi, serr := os.Stat(p)
	if err != nil || serr != nil || string(b) != "two" || fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(mt) {
		t.Fatalf("after two writes: %q (%v), %v, want \"two\", -rw-r--r--, %v", b, err, fi, mt)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after the writes, want only the file", len(entries))
	}

	// A temporary name that is taken fails the write and leaves the target as it was.
	if err := os.WriteFile(filepath.Join(dir, ".taken"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("three"), WriteOptions{TempName: ".taken"}); !errors.Is(err, os.ErrExist) {
		t.Errorf("WriteFileAtomic through a taken temporary name = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("target after a failed write = %q, want \"two\"", b)
	}
}

func TestContextReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, strings.NewReader("abcdef"))
	buf := make([]byte, 3)
	if n, err := r.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %v, want context.Canceled", err)
	}
}
