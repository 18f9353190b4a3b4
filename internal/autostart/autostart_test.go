package autostart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOnOff(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cfg, "autostart", FileName); e.Path != want {
		t.Errorf("Path = %s, want %s", e.Path, want)
	}
	if e.Enabled() {
		t.Fatal("Enabled before SetEnabled(true)")
	}
	if err := e.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.Path)
	if err != nil || !strings.Contains(string(b), "Exec="+quoteExec(e.Exec)+" --background\n") || !e.Enabled() {
		t.Fatalf("entry after on: %q, %v, enabled %v", b, err, e.Enabled())
	}
	os.WriteFile(e.Path, append(b, "Hidden=true\n"...), 0o644)
	if e.Enabled() {
		t.Error("an entry with Hidden=true counts as enabled")
	}
	if err := e.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.Path); !os.IsNotExist(err) || e.Enabled() {
		t.Fatalf("entry still there after off: %v", err)
	}
	if err := e.SetEnabled(false); err != nil {
		t.Errorf("off twice: %v", err)
	}
}

func TestQuoteExec(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/usr/bin/cradle", "/usr/bin/cradle"},
		{"/opt/my apps/cradle", `"/opt/my apps/cradle"`},
		{`/o/a"b$c`, `"/o/a\\"b\\$c"`},
		{"/o/100%/cradle", "/o/100%%/cradle"},
	} {
		if got := quoteExec(tc.in); got != tc.want {
			t.Errorf("quoteExec(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
