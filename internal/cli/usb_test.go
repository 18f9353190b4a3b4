package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/device/usb"
)

// The USB monitor names a copy of the udev rule in the config folder, so that the permission
// message's `sudo install FILE /etc/udev/rules.d/...` works as printed; the copy is written when
// missing or out of date.
func TestUSBMonitorRulePath(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config")
	m := newUSBMonitor(config, slog.New(slog.DiscardHandler))
	want := filepath.Join(config, usb.RuleName)
	if m.RulePath != want {
		t.Fatalf("Monitor.RulePath = %q, want %q", m.RulePath, want)
	}
	check := func(when string) {
		t.Helper()
		b, err := os.ReadFile(want)
		if err != nil || string(b) != assets.UdevRule {
			t.Errorf("%s: %s holds %q, %v; want the shipped rule", when, want, b, err)
		}
		if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode of %s = %v, %v; want -rw-r--r-- (installed as is)", when, want, fi.Mode(), err)
		}
	}
	check("first run")
	if err := os.WriteFile(want, []byte("# an older rule\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := newUSBMonitor(config, slog.New(slog.DiscardHandler)); m.RulePath != want {
		t.Errorf("Monitor.RulePath = %q after an update, want %q", m.RulePath, want)
	}
	check("an out-of-date copy")
	if leftovers, _ := filepath.Glob(filepath.Join(config, "*.tmp")); len(leftovers) > 0 {
		t.Errorf("temporary files left in the config folder: %v", leftovers)
	}

	// A config folder that cannot be written leaves the path empty (the message then names the
	// rule in Cradle's sources) instead of naming a file that is not there.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if m := newUSBMonitor(filepath.Join(file, "config"), slog.New(slog.DiscardHandler)); m.RulePath != "" {
		t.Errorf("Monitor.RulePath = %q for a config folder that cannot exist, want empty", m.RulePath)
	}
}
