package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The child of TestCrashBetweenTwoFiles: it commits a change of two files and dies (exit 3)
// after putting the first in place, as a process killed there would.
const crashEnv = "STAGE_TEST_CRASH_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(crashEnv); root != "" {
		testAfterStep = func(i int) error {
			if i == 0 {
				os.Exit(3)
			}
			return nil
		}
		d, err := Open(root)
		if err == nil {
			var tx *Tx
			if tx, err = d.Begin(); err == nil {
				_ = tx.WriteFile("item.head", []byte("new head\n"), time.Time{})
				_ = tx.WriteFile("item.body", []byte("new body\n"), time.Time{})
				_ = tx.Remove("item.old")
				err = tx.Commit(context.Background())
			}
		}
		fmt.Fprintln(os.Stderr, "the child did not crash:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// A process that dies between the two renames of one item's commit leaves half an item on disk;
// the next Open puts the rest in place.
func TestCrashBetweenTwoFiles(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "item.head"), "old head\n")
	write(t, filepath.Join(root, "item.body"), "old body\n")
	write(t, filepath.Join(root, "item.old"), "an attachment the new version drops\n")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("the child = %v, %s; want it to die at the first rename", err, out)
	}
	if h, b := readString(t, filepath.Join(root, "item.head")), readString(t, filepath.Join(root, "item.body")); h != "new head\n" || b != "old body\n" {
		t.Fatalf("after the crash: head %q, body %q; want the half-written item the crash left", h, b)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if h, b := readString(t, filepath.Join(root, "item.head")), readString(t, filepath.Join(root, "item.body")); h != "new head\n" || b != "new body\n" {
		t.Errorf("after Open: head %q, body %q; want the whole new item", h, b)
	}
	if _, err := os.Stat(filepath.Join(root, "item.old")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file the new version drops is still there: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, Folder)); len(ents) != 0 {
		t.Errorf("the staging folder still holds %d entries", len(ents))
	}
}

// A commit that stops before its journal (a crash while staging, a cancelled ctx, an aborted
// transaction) changes nothing, and leaves nothing behind after the next Open.
func TestUncommittedChangesNothing(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "a"), "old a")
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := d.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.WriteFile("a", []byte("new a"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The process dies here: the staged file stays in the staging folder.
	if got := readString(t, filepath.Join(root, "a")); got != "old a" {
		t.Errorf("a staged file is visible before the commit: %q", got)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(root, "a")); got != "old a" {
		t.Errorf("after Open: a = %q, want the old content", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, Folder)); len(ents) != 0 {
		t.Errorf("the staging folder still holds %d entries", len(ents))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tx, _ = d.Begin()
	_ = tx.WriteFile("a", []byte("new a"), time.Time{})
	if err := tx.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled ctx = %v, want context.Canceled", err)
	}
	if got := readString(t, filepath.Join(root, "a")); got != "old a" {
		t.Errorf("after a cancelled commit: a = %q", got)
	}
	tx, _ = d.Begin()
	_ = tx.WriteFile("b/c", []byte("new c"), time.Now())
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(root, "b", "c")); got != "new c" {
		t.Errorf("after a commit: b/c = %q", got)
	}
	for _, bad := range []string{"", "../x", "/abs", Folder + "/x", "a/../../x"} {
		tx, _ := d.Begin()
		if err := tx.WriteFile(bad, nil, time.Time{}); err == nil {
			t.Errorf("WriteFile(%q) = nil, want refused", bad)
		}
		tx.Abort()
	}
}
