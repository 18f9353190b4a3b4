package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResolveLinks: a config folder reached through a symbolic link names one socket before it
// exists and after.
func TestResolveLinks(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(real, "cradle", "sub")
	before := resolveLinks(filepath.Join(link, "cradle", "sub"))
	if err := os.MkdirAll(filepath.Join(real, "cradle", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	after := resolveLinks(filepath.Join(link, "cradle", "sub"))
	if before != want || after != want {
		t.Errorf("resolveLinks before and after the folder exists = %s, %s; want %s", before, after, want)
	}
}
