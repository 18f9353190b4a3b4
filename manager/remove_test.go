package manager

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoveDuringSession: a partnership removed while it syncs ends its session as stopped,
// saying why, not as failed with "context canceled" (what `cradle watch` printed).
func TestRemoveDuringSession(t *testing.T) {
	w := newWorld(t)
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(w.desktop, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := w.open(false)
	w.waitDevice(m)
	p := w.addDocs(m)
	ev := m.collect(t, SessionProgress|SessionFinished)
	go m.Sync(ctxT(t), SyncOptions{}, p.ID)
	ev.next(30*time.Second, "bytes moving", func(e Event) bool {
		pr, ok := e.Data.(Progress)
		return ok && pr.Phase == "syncing" && pr.BytesDone > 0
	})
	if err := m.RemovePartnership(ctxT(t), p.ID); err != nil {
		t.Fatal(err)
	}
	e := ev.next(30*time.Second, "the session's end", func(e Event) bool { return e.Type == SessionFinished })
	s := e.Data.(Session)
	if s.Outcome != OutcomeStopped || strings.Contains(strings.Join(s.Errors, "; "), "context canceled") {
		t.Errorf("session of the removed partnership: %s, %q; want stopped, saying why", s.Outcome, s.Errors)
	}
}
