package emulator

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cradle-sync/cradle/device"
)

// TestStalePartsRemoved: an upload in progress when the process serving the device was killed
// leaves its temporary file in the device's folder; the next emulated device on that folder
// removes it when it reads the folder. One of a running process is left alone.
func TestStalePartsRemoved(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stale := partName(cmd.Process.Pid, 7) + "123456"
	live := partName(os.Getpid(), 8) + "654321"
	for _, p := range []string{stale, filepath.Join("sub", stale), live, filepath.Join("sub", "a.txt")} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("half an upload"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	d, err := OpenDevice(ctx, dir, quiet(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Walk(ctx, 0x00010001, "", func(o device.Object) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, filepath.Join("sub", stale)} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s, left by a process that no longer runs, is still there after the folder was read", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, live)); err != nil {
		t.Errorf("%s, of a running process, was removed: %v", live, err)
	}
	if stalePart(live) || !stalePart(stale) || stalePart(partPrefix+"1-x") || stalePart("a.txt") {
		t.Errorf("stalePart: wrong answer for %q, %q, a name without a process ID or a.txt", live, stale)
	}
}
