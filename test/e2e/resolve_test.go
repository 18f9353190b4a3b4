package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestResolveExitCodes: `cradle resolve` exits 0 only when the choice was carried out (or the
// device is away and it waits for the next sync); a choice a session could not carry out, or one
// the partnership's store cannot hold, exits non-zero saying why and which choices are left.
func TestResolveExitCodes(t *testing.T) {
	t.Run("a choice that cannot be carried out", func(t *testing.T) {
		e := newEnv(t)
		// A conflict copy of this file would have a name too long for the file system.
		long := strings.Repeat("n", 240) + ".txt"
		put(t, filepath.Join(e.desktop, long), "original", at(0))
		e.partner()
		e.syncJSON()
		put(t, filepath.Join(e.desktop, long), "desktop edit", at(10))
		put(t, filepath.Join(e.devDir(), long), "phone edit", at(20))
		e.syncJSON()
		id := e.conflicts()[0].ID
		r := e.run("resolve", id, "--keep", "both")
		if r.code == 0 || !strings.Contains(r.stderr, "keep both could not be carried out") ||
			!strings.Contains(r.stderr, "cradle resolve "+id+" --keep desktop|device") {
			t.Fatalf("resolve --keep both of a copy that cannot be written: %v\nwant a failure naming the choices left", r)
		}
		if strings.Contains(r.stderr, "Resolved") {
			t.Errorf("resolve says it resolved what it could not: %v", r)
		}
		cs := e.conflicts()
		if len(cs) != 1 || cs[0].Resolution != "" || cs[0].ResolutionError == "" {
			t.Fatalf("conflicts after the failed choice = %+v, want it waiting for a choice, with the reason", cs)
		}
		r = e.ok("resolve", id, "--keep", "desktop")
		if !strings.Contains(r.stderr, "Resolved "+id+": keep desktop.") {
			t.Errorf("resolve --keep desktop: %v", r)
		}
		if cs := e.conflicts(); len(cs) != 0 {
			t.Errorf("conflicts after keeping the desktop's = %+v", cs)
		}
		if got := get(t, filepath.Join(e.devDir(), long)); got != "desktop edit" {
			t.Errorf("phone file = %q, want the desktop's", got)
		}
	})
	t.Run("a store that cannot keep both", func(t *testing.T) {
		e := newEnv(t)
		e.buildOneFile()
		file := filepath.Join(e.desktop, "settings.conf")
		put(t, file, "original", at(0))
		serial := e.serial()
		add := []string{"partner", "add", "--name", "one", "--provider", "onefile", "--device", serial, "--file", file, "--device-path", "Settings"}
		if r := e.run(append(add, "--on-conflict", "keep-both")...); r.code == 0 || !strings.Contains(r.stderr, "cannot keep both") {
			t.Errorf("partner add --on-conflict keep-both for a store of one item: %v", r)
		}
		e.ok(add...)
		e.syncJSON()
		put(t, file, "desktop edit", at(10))
		put(t, filepath.Join(e.phone, "Settings", "settings.conf"), "phone edit", at(20))
		e.syncJSON()
		cs := e.conflicts()
		if len(cs) != 1 || !slices.Equal(cs[0].Choices, []string{"desktop", "device"}) {
			t.Fatalf("conflicts = %+v, want one whose choices are desktop and device", cs)
		}
		r := e.run("resolve", cs[0].ID, "--keep", "both")
		if r.code == 0 || !strings.Contains(r.stderr, "choose desktop or device") {
			t.Errorf("resolve --keep both in a store of one item: %v\nwant it refused, naming desktop or device", r)
		}
		if r := e.run("resolve", "--all", "--keep", "both"); r.code == 0 {
			t.Errorf("resolve --all --keep both in a store of one item: %v\nwant it refused", r)
		}
		e.ok("resolve", cs[0].ID, "--keep", "device")
		if got := get(t, file); got != "phone edit" {
			t.Errorf("desktop file = %q, want the phone's", got)
		}
	})
}
