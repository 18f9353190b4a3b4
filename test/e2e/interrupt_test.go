package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/test/clitest"
)

// TestInterruptedSyncSaysSo: `cradle sync` stopped by Ctrl+C in the middle of an upload exits
// non-zero and says that it stopped and that the next sync resumes, not "context canceled".
func TestInterruptedSyncSaysSo(t *testing.T) {
	e := newEnv(t)
	e.partner()
	for i := range 40 {
		b := make([]byte, 8<<20)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(e.desktop, fmt.Sprintf("f%02d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := clitest.Command(ctx, bin, "--config", e.config, "--emulate", e.phone, "sync")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// An upload under way: the emulated phone's partial file is there.
	deadline := time.Now().Add(time.Minute)
	for {
		parts, _ := filepath.Glob(filepath.Join(e.devDir(), ".cradle-emu-part-*"))
		if len(parts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no upload seen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil {
		// 320 MB interrupted at its first upload cannot finish first: if it did, the signal
		// was lost, which is a failure too.
		t.Fatalf("the sync exited 0 after Ctrl+C at its first upload; stderr %q", stderr.String())
	}
	msg := stderr.String()
	if strings.Contains(msg, "context canceled") || !strings.Contains(msg, "resumes") {
		t.Errorf("interrupted sync: %v, stderr %q, want it to say it stopped and the next sync resumes", err, msg)
	}
}
