package contacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/repl"
)

// A phone's contacts app adding a card to the file is reported by the card's handle; files
// elsewhere on the phone are not; unplugging stops the watch.
func TestDeviceFileWatch(t *testing.T) {
	data := androidCards(t)
	root, path := phoneFolder(t, data)
	emu, dev := emulatedPhone(t, root, emulator.Options{})
	s, err := NewDeviceFile(dev, DefaultDevicePath, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// A session reads the file first: MTP devices report changes in the folders the initiator
	// has listed (the emulator as QEMU's usb-mtp does).
	if hs := handles(t, s); len(hs) == 0 {
		t.Fatal("no card in the contacts file")
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	got := make(chan repl.Notification, 16)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(n repl.Notification) { got <- n }) }()
	time.Sleep(100 * time.Millisecond) // the watch subscribes

	// Elsewhere on the phone, and beside the file: nothing.
	if err := os.MkdirAll(filepath.Join(root, "Music"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "Music", "song.mp3"), []byte("la"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "notes.txt"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		t.Fatalf("notification %+v for files that are not the contacts file", n)
	case <-time.After(time.Second):
	}

	// The contacts app rewrites the file.
	if err := os.WriteFile(path, append(data, "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Nouveau;Contact;;;\r\nFN:Contact Nouveau\r\nEND:VCARD\r\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n.Kind != repl.ItemCreated || n.Handle != handleOf(t, s, "Contact Nouveau") {
			t.Fatalf("notification %+v after a card was added on the device, want ItemCreated of its handle", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after the contacts file changed on the device")
	}

	// Unplugged: Shutdown, and Watch returns.
	emu.Unplug()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n := <-got:
			if n.Kind != repl.Shutdown {
				continue // more events of the rewrite
			}
			if !errors.Is(n.Err, repl.ErrGone) {
				t.Errorf("Shutdown error = %v, want ErrGone", n.Err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Watch returned %v after the device went away, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Watch did not return after the device went away")
			}
			return
		case <-deadline:
			t.Fatal("no Shutdown after the device was unplugged")
		}
	}
}
