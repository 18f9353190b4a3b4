package fsstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// watching runs Watch in the background and collects its notifications.
type watching struct {
	ch     chan repl.Notification
	done   chan error
	cancel context.CancelFunc
	ended  bool  // Watch returned (its result was taken from done)
	err    error // what it returned
}

func startWatch(t *testing.T, s repl.Notifier, notify func(repl.Notification)) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{ch: make(chan repl.Notification, 100000), done: make(chan error, 1), cancel: cancel}
	if notify == nil {
		notify = func(n repl.Notification) { w.ch <- n }
	}
	go func() { w.done <- s.Watch(ctx, notify) }()
	t.Cleanup(func() {
		cancel()
		if w.ended {
			return
		}
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after its context was cancelled")
		}
	})
	return w
}

// ready waits until the watcher reports changes in dir: it touches a probe file until a
// notification for it arrives, then removes it and forgets what the probe raised.
func (w *watching) ready(t *testing.T, dir string) {
	t.Helper()
	probe := filepath.Join(dir, "watch-probe")
	deadline := time.Now().Add(10 * time.Second)
	for seen := false; !seen; {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not start within 10 s")
		}
		if err := os.WriteFile(probe, []byte("probe"), 0o644); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(200 * time.Millisecond)
	wait:
		for {
			select {
			case n := <-w.ch:
				if n.Handle == "watch-probe" {
					seen = true
					break wait
				}
			case <-timeout:
				break wait
			}
		}
	}
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.ItemDeleted, "watch-probe")
}

func (w *watching) expect(t *testing.T, kind repl.NotifyKind, handle string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case n := <-w.ch:
			if n.Kind == kind && n.Handle == handle {
				return
			}
			seen = append(seen, fmt.Sprintf("%v %q", n.Kind, n.Handle))
		case err := <-w.done:
			w.ended, w.err = true, err
			// Whatever it sent before returning is still to be read.
			for {
				select {
				case n := <-w.ch:
					if n.Kind == kind && n.Handle == handle {
						return
					}
					seen = append(seen, fmt.Sprintf("%v %q", n.Kind, n.Handle))
					continue
				default:
				}
				break
			}
			t.Fatalf("Watch returned (%v) while waiting for %v %q; got: %s", err, kind, handle, strings.Join(seen, ", "))
		case <-deadline:
			t.Fatalf("no %v notification for %q within 5 s; got: %s", kind, handle, strings.Join(seen, ", "))
		}
	}
}

func TestDesktopWatch(t *testing.T) {
	dir := t.TempDir()
	storetest.WriteFile(t, filepath.Join(dir, "old/deep/notes.txt"), "v1")
	s := newDesktop(t, dir, DesktopOptions{Ignore: []string{"*.log"}})
	w := startWatch(t, s, nil)
	w.ready(t, dir)

	storetest.WriteFile(t, filepath.Join(dir, "new.txt"), "hello")
	w.expect(t, repl.ItemCreated, "new.txt")

	storetest.WriteFile(t, filepath.Join(dir, "old/deep/notes.txt"), "v2")
	w.expect(t, repl.ItemModified, "old/deep/notes.txt")

	if err := os.Remove(filepath.Join(dir, "new.txt")); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.ItemDeleted, "new.txt")

	// A new subfolder is watched from then on.
	if err := os.Mkdir(filepath.Join(dir, "fresh"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.ItemCreated, "fresh")
	storetest.WriteFile(t, filepath.Join(dir, "fresh/inside.txt"), "x")
	w.expect(t, repl.ItemCreated, "fresh/inside.txt")

	// A folder moved in with contents reports them; one moved away is reported deleted and
	// its old path is no longer watched.
	staging := t.TempDir()
	storetest.WriteFile(t, filepath.Join(staging, "trip/day1/a.jpg"), "a")
	if err := os.Rename(filepath.Join(staging, "trip"), filepath.Join(dir, "trip")); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.ItemCreated, "trip")
	w.expect(t, repl.ItemCreated, "trip/day1/a.jpg")
	storetest.WriteFile(t, filepath.Join(dir, "trip/day1/b.jpg"), "b")
	w.expect(t, repl.ItemCreated, "trip/day1/b.jpg")

	// A rename is a deletion of the old name and a creation of the new one.
	if err := os.Rename(filepath.Join(dir, "trip"), filepath.Join(dir, "holiday")); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.ItemDeleted, "trip")
	w.expect(t, repl.ItemCreated, "holiday")
	storetest.WriteFile(t, filepath.Join(dir, "holiday/day1/c.jpg"), "c")
	w.expect(t, repl.ItemCreated, "holiday/day1/c.jpg")

	// Ignored names raise nothing; the next real change comes through alone.
	storetest.WriteFile(t, filepath.Join(dir, "debug.log"), "noise")
	storetest.WriteFile(t, filepath.Join(dir, ".notes.txt.swp"), "noise")
	storetest.WriteFile(t, filepath.Join(dir, "signal.txt"), "s")
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case n := <-w.ch:
			if strings.HasSuffix(n.Handle, ".log") || strings.HasSuffix(n.Handle, ".swp") {
				t.Errorf("notification for an ignored file: %v %q", n.Kind, n.Handle)
			}
			done = n.Handle == "signal.txt"
		case <-deadline:
			t.Fatal("no notification for signal.txt")
		}
	}
}

func TestDesktopWatchFolderGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sync")
	storetest.WriteFile(t, filepath.Join(dir, "a.txt"), "a")
	s := newDesktop(t, dir, DesktopOptions{})
	w := startWatch(t, s, nil)
	w.ready(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w.expect(t, repl.Shutdown, "")
	if !w.ended {
		select {
		case err := <-w.done:
			w.ended, w.err = true, err
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not return after its folder went away")
		}
	}
	if w.err != nil {
		t.Errorf("Watch after the folder went away = %v, want nil after the Shutdown notification", w.err)
	}
}

// TestDesktopWatchOverflow makes the kernel's event queue overflow for real: the notification
// callback blocks while far more changes happen than the queue holds, so inotify drops events.
// The watcher must then ask for a full pass (Overflow) and go on watching.
func TestDesktopWatchOverflow(t *testing.T) {
	limit := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			limit = n
		}
	}
	if limit > 100000 {
		t.Skipf("fs.inotify.max_queued_events is %d: overflowing it would take too long here", limit)
	}
	dir := t.TempDir()
	s := newDesktop(t, dir, DesktopOptions{})
	release := make(chan struct{}) // closed when the watcher may go on
	var blocking atomic.Bool
	notes := make(chan repl.Notification, 1<<20)
	w := startWatch(t, s, func(n repl.Notification) {
		if blocking.Load() {
			<-release // the first notification from now on blocks the watcher until then
		}
		notes <- n
	})
	w.ch = notes
	w.ready(t, dir)
	blocking.Store(true)
	// Each new file with content raises a create and a modify event: limit files make twice
	// what the queue holds.
	for i := range limit {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), []byte{1}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case n := <-notes:
			if n.Kind == repl.Overflow {
				// Still watching after the overflow.
				storetest.WriteFile(t, filepath.Join(dir, "after.txt"), "x")
				for {
					select {
					case n := <-notes:
						if n.Handle == "after.txt" {
							return
						}
					case <-time.After(10 * time.Second):
						t.Fatal("no notification for a change made after the overflow")
					}
				}
			}
		case <-deadline:
			t.Fatal("no Overflow notification after the event queue overflowed")
		}
	}
}

// TestDesktopWatchLimit checks that Watch refuses to start, with advice, when the inotify watch
// limit is too low for the tree. The limit is lowered in a user namespace of a child process
// (limits there are per namespace), so nothing else on the machine is affected.
func TestDesktopWatchLimit(t *testing.T) {
	if os.Getenv("CRADLE_WATCH_LIMIT_CHILD") == "1" {
		watchLimitChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDesktopWatchLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CRADLE_WATCH_LIMIT_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Skipf("cannot start a child in a user namespace (%v): unprivileged user namespaces are needed for this check", err)
		}
		t.Fatalf("child run failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

func watchLimitChild(t *testing.T) {
	if err := os.WriteFile("/proc/sys/user/max_inotify_watches", []byte("8"), 0); err != nil {
		t.Fatalf("lower the watch limit in the child's user namespace: %v", err)
	}
	dir := t.TempDir()
	for i := range 20 {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%02d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := newDesktop(t, dir, DesktopOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Watch(ctx, func(repl.Notification) {})
	if err == nil {
		t.Fatal("Watch over 21 folders with a limit of 8 watches returned nil, want an error")
	}
	for _, want := range []string{"max_user_watches", "sysctl", "full syncs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Watch error %q does not mention %q", err, want)
		}
	}
}
