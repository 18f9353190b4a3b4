package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A second partnership of the same desktop folder and the same device folder is refused: the
// two keep separate states but share the device's, so each brought back as new what the other
// had deleted (a file deleted on the desktop came back at the next sync). One folder inside the
// other on both sides is the same mistake; a different device folder is not.
func TestOverlappingPartnershipRefused(t *testing.T) {
	e := newEnv(t)
	mkdir(t, filepath.Join(e.desktop, "sub"))
	e.partner()
	serial := e.serial()
	add := func(name, desktop, devicePath string) result {
		return e.run("partner", "add", "--name", name, "--provider", "files", "--device", serial,
			"--desktop", desktop, "--device-path", devicePath)
	}
	for _, c := range []struct{ desktop, devicePath string }{
		{e.desktop, "Documents"},
		{filepath.Join(e.desktop, "sub"), "Documents"},
		{e.desktop, "/Documents/sub/"},
	} {
		r := add("again", c.desktop, c.devicePath)
		oneLine(t, "partner add "+c.desktop+" "+c.devicePath, r)
		if !strings.Contains(r.stderr, "partnership 1 (docs) already syncs") {
			t.Errorf("partner add %s %s said %q, want which partnership syncs it already", c.desktop, c.devicePath, r.stderr)
		}
	}
	if r := add("other", filepath.Join(e.desktop, "sub"), "Other"); r.code != 0 {
		t.Errorf("a partnership of another device folder: %v", r)
	}

	// The one partnership left syncs a delete as a delete.
	put(t, filepath.Join(e.desktop, "b.txt"), "b", at(0))
	e.ok("sync")
	if err := os.Remove(filepath.Join(e.desktop, "b.txt")); err != nil {
		t.Fatal(err)
	}
	e.ok("sync")
	if exists(filepath.Join(e.desktop, "b.txt")) || exists(filepath.Join(e.devDir(), "b.txt")) {
		t.Errorf("b.txt deleted on the desktop is back:\ndesktop:\n%sphone:\n%s", describe(t, e.desktop), describe(t, e.devDir()))
	}
}
