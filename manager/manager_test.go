package manager

import (
	"path/filepath"
	"testing"
)

func TestFirstSyncUnion(t *testing.T) {
	w := newWorld(t)
	writeFile(t, filepath.Join(w.desktop, "a.txt"), "from the desktop")
	writeFile(t, filepath.Join(w.phone, "Documents", "b.txt"), "from the phone")
	m := w.open(false)
	w.waitDevice(m)
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Docs", Provider: "files", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop, "device-path": "Documents"}})
	if err != nil {
		t.Fatalf("AddPartnership: %v", err)
	}
	ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	t.Logf("%+v", ss)
	if got := readFile(t, filepath.Join(w.phone, "Documents", "a.txt")); got != "from the desktop" {
		t.Errorf("device a.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(w.desktop, "b.txt")); got != "from the phone" {
		t.Errorf("desktop b.txt = %q", got)
	}
}
