package fsstore

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/repl"
)

// deadPID returns the process ID of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestStaleTempsRemoved: a temporary file left by a write that a killed process never finished
// is removed by the next full enumeration; one of a process still running (this one: a write in
// progress) is left alone, and neither is ever an item.
func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := TempPrefix + strconv.Itoa(deadPID(t)) + "-ABCDEFGHIJKLMNOP"
	live := TempName()
	for _, p := range []string{stale, filepath.Join("sub", stale), live, "a.txt", filepath.Join("sub", "b.txt")} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("half of a file"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newDesktop(t, dir, DesktopOptions{})
	ctx := context.Background()
	it, err := s.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Handle)
	}
	it.Close()
	if len(got) != 3 {
		t.Errorf("Enumerate = %q, want a.txt, sub and sub/b.txt only", got)
	}
	for _, p := range []string{stale, filepath.Join("sub", stale)} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s, left by a process that no longer runs, is still there after a full enumeration", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, live)); err != nil {
		t.Errorf("%s, of a running process, was removed: %v", live, err)
	}
	if !StaleTemp(stale) || StaleTemp(live) || StaleTemp("a.txt") || StaleTemp(TempPrefix+"ABCDEFGHIJKLMNOP") {
		t.Errorf("StaleTemp: wrong answer for %q, %q, a.txt or a name without a process ID", stale, live)
	}
}

// renamingReader renames a folder when first read: the user moving the folder a file is being
// written into.
type renamingReader struct {
	from, to string
	r        io.Reader
	done     bool
}

func (r *renamingReader) Read(p []byte) (int, error) {
	if !r.done {
		r.done = true
		if err := os.Rename(r.from, r.to); err != nil {
			return 0, err
		}
	}
	return r.r.Read(p)
}

// TestTempOfRenamedFolderRemoved: a write whose folder the user renames while the file is copied
// fails, and its temporary file moves with the folder where the write cannot remove it. It is a
// leftover like a killed process's, although this process still runs (a `cradle watch` runs for
// days): the next enumeration of that folder removes it.
func TestTempOfRenamedFolderRemoved(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newDesktop(t, dir, DesktopOptions{})
	ctx := context.Background()
	content := "the file's content"
	_, err := s.Write(ctx, repl.WriteRequest{Name: "d/x.txt", Kind: repl.KindFile, Size: int64(len(content)),
		Data: &renamingReader{from: filepath.Join(dir, "d"), to: filepath.Join(dir, "e"), r: strings.NewReader(content)}})
	if err == nil {
		t.Fatal("the write into a folder renamed meanwhile succeeded")
	}
	it, err := s.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	it.Close()
	left, _ := filepath.Glob(filepath.Join(dir, "e", TempPrefix+"*"))
	if len(left) > 0 {
		t.Errorf("temporary files left in the renamed folder after an enumeration: %q", left)
	}
}
