package files

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

func TestProviderDeclaration(t *testing.T) {
	p, err := providers.Lookup("files")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range providers.Directions {
		if !p.SupportsDirection(d) {
			t.Errorf("files does not support %s", d)
		}
	}
	if _, err := p.Validate(map[string]string{OptDevicePath: "Music"}); err == nil || !strings.Contains(err.Error(), OptDesktop) {
		t.Errorf("Validate without the desktop folder = %v, want an error naming it", err)
	}
	if _, err := p.Validate(map[string]string{OptDesktop: "/x", OptDevicePath: "M", OptIgnoreDeviceDeletes: "maybe"}); err == nil {
		t.Error("Validate accepted ignore-device-deletes=maybe")
	}
	vals, err := p.Validate(map[string]string{OptDesktop: "/x", OptDevicePath: "M"})
	if err != nil || vals[OptIgnoreDeviceDeletes] != "false" {
		t.Errorf("Validate = %v, %v; want the default false filled in", vals, err)
	}
}

func TestProviderOpenCreatesOnlyTheFirstTime(t *testing.T) {
	ctx := context.Background()
	p, _ := providers.Lookup("files")
	parent, root, state := t.TempDir(), t.TempDir(), t.TempDir()
	desk := filepath.Join(parent, "Phone")
	dev := openFolderDevice(t, root)
	env := providers.Env{Options: map[string]string{OptDesktop: desk, OptDevicePath: "Documents/Work", OptIgnore: "*.tmp, cache/"},
		Device: dev, StateDir: state}
	inst, err := p.Open(ctx, env)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if !exists(desk) || !exists(filepath.Join(root, "Documents/Work")) {
		t.Error("the first Open did not create the missing desktop and device folders")
	}
	if inst.Desktop.IsItemReplicated(repl.Entry{Handle: "cache", Kind: repl.KindFolder}) ||
		inst.Device.IsItemReplicated(repl.Entry{Handle: "a.tmp"}) {
		t.Error("the ignore option does not reach the stores")
	}
	inst.Close()
	// Later, a folder that went missing is an error, not an empty folder to sync from.
	if err := os.Remove(desk); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(ctx, env); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open with the desktop folder gone = %v, want ErrNotFound", err)
	}
	if err := os.Mkdir(desk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "Documents")); err != nil {
		t.Fatal(err)
	}
	inst, err = p.Open(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if _, err := inst.Device.Enumerate(ctx); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Enumerate with the device folder gone = %v, want ErrNotFound", err)
	}
	// Without a device, only the desktop side opens.
	only, err := p.Open(ctx, providers.Env{Options: env.Options, StateDir: state})
	if err != nil || only.Device != nil || only.Desktop == nil {
		t.Errorf("Open without a device = %+v, %v", only, err)
	}
}

func TestDeviceNoSpace(t *testing.T) {
	mnt := smallTmpfs(t, "256k")
	dev := openFolderDevice(t, mnt)
	s := newDeviceStore(t, dev, "", DeviceOptions{})
	data := bytes.Repeat([]byte{1}, 1<<20)
	_, err := s.Write(context.Background(), repl.WriteRequest{Name: "big.bin", Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Fatalf("Write of 1 MiB to a 256 KiB device = %v, want ErrNoSpace", err)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Errorf("a failed write left %d entries on the device", len(entries))
	}
	// An emulated phone that is full says so too.
	root := t.TempDir()
	edev, err := emulator.OpenDevice(context.Background(), root, emulator.Options{FreeSpaceZero: true})
	if err != nil {
		t.Fatal(err)
	}
	defer edev.Close()
	es, err := NewDeviceStore(context.Background(), edev, 0x00010001, "", DeviceOptions{Logf: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, err = es.Write(context.Background(), repl.WriteRequest{Name: "a.txt", Kind: repl.KindFile, Size: 3, Data: strings.NewReader("abc")})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Errorf("Write to a full emulated phone = %v, want ErrNoSpace", err)
	}
}

// A device that holds hostile names (a separator, a control character, names Windows reserves)
// never gets them onto the desktop: the objects are skipped, and nothing else is touched.
func TestHostileDeviceNamesNeverReachTheDesktop(t *testing.T) {
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	for _, n := range []string{"back\\slash.txt", "bell\x07.txt", "CON", "nul.txt", "fine.txt"} {
		writeFile(t, filepath.Join(root, "Sync", n), "payload")
	}
	dev := openFolderDevice(t, root)
	p := openPartnership(t, dev, desk, state, nil)
	p.sync()
	got, _ := os.ReadDir(desk)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "fine.txt" {
		t.Errorf("desktop holds %q, want only fine.txt", names)
	}
	if dev.Skipped() < 4 {
		t.Errorf("the device counted %d skipped objects, want the 4 hostile ones at each listing", dev.Skipped())
	}
}
