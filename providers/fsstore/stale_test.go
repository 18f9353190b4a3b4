package fsstore

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
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
