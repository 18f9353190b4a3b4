package manager

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOverlappingPartnershipFollows: two partnerships of one device, the second's device folder
// inside the first's. What the first writes there reaches the second's desktop folder without a
// manual sync: the device announces nothing its initiator made, so the second's watcher never
// hears of it (watch used to stay idle with "1 pending" until the schedule, an hour later).
func TestOverlappingPartnershipFollows(t *testing.T) {
	w := newWorld(t)
	deskB := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(deskB, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.phone, "Documents", "sub", "old.txt"), "old")
	m := w.open(true)
	ev := m.collect(t, SessionFinished)
	w.waitDevice(m)
	w.addDocs(m)
	ev.next(10*time.Second, "the first session", finished(TriggerConnect))
	if _, err := m.AddPartnership(ctxT(t), Partnership{Name: "Sub", Provider: "files", Device: w.serial(),
		Options: map[string]string{"desktop": deskB, "device-path": "Documents/sub"}}); err != nil {
		t.Fatal(err)
	}
	ev.next(10*time.Second, "the second's first session", finished(TriggerConnect))
	writeFile(t, filepath.Join(w.desktop, "sub", "new.txt"), "from the first desktop")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(deskB, "new.txt")); err == nil && string(b) == "from the first desktop" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("new.txt did not reach the second partnership's folder; status %+v", m.Status())
}
