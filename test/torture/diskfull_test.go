package torture

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (which must exist) for the test. Mounting needs
// root: the tests run as root here and in CI; elsewhere this fails, it does not skip.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("R5 mounts a small tmpfs to fill a disk, which needs root: run the tests as root (CI does), e.g. sudo go test ./test/torture/")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// resize gives the tmpfs on dir a new size (the user freeing space).
func resize(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("resize the tmpfs on %s: %v", dir, err)
	}
}

// spaceWords are what a message about a full disk must say.
func saysFull(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "space") || strings.Contains(m, "full")
}

// halfWritten lists the files below dir that hold content nobody made (a file cut short by the
// full disk) and the temporary files.
func halfWritten(t *testing.T, dir string, made map[string]bool) []string {
	t.Helper()
	partial, whole, cut, err := strangers(dir, made)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(partial, whole...), cut...)
}

// TestDesktopDiskFull (R5): the desktop folder is on a small file system that fills up while
// files come from the device. The session stops with a message that says so, no file is left
// half-written, and once space is freed the next sync completes.
func TestDesktopDiskFull(t *testing.T) {
	r, seed := newRand(t)
	start := time.Now()
	e := newEnv(t)
	mountTmpfs(t, e.desktop, 6<<20)
	u := newUser(r, e.desktop, e.devDir())
	for i := range 12 {
		if err := u.createSize("device", fmt.Sprintf("videos/clip%02d.mp4", i), 1<<20+r.IntN(1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		if err := u.create("device", fmt.Sprintf("notes/n%02d.txt", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.partner()
	rec := record{ID: "R5", Seed: seed, Count: 1, What: "the desktop folder on a 6 MB tmpfs receiving 20 MB from the device; then the tmpfs grown to 64 MB"}
	res := e.run("sync", "--json")
	var ss []session
	json.Unmarshal([]byte(res.stdout), &ss)
	msg := res.stderr + strings.Join(func() []string {
		if len(ss) == 1 {
			return ss[0].Errors
		}
		return nil
	}(), " ")
	t.Logf("the sync on a full disk: exit %d, %s", res.code, strings.TrimSpace(res.stderr))
	switch {
	case len(ss) == 1 && ss[0].Outcome == "ok":
		rec.Failed++
		t.Errorf("the sync onto a full disk ended ok:\n%v", res)
	case !saysFull(msg):
		rec.Failed++
		t.Errorf("the sync onto a full disk does not say the disk is full:\n%v", res)
	case strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine "):
		rec.Failed++
		t.Errorf("a stack trace:\n%s", res.stderr)
	}
	if bad := halfWritten(t, e.desktop, u.made); len(bad) > 0 {
		rec.Failed++
		rec.Extra += len(bad)
		t.Errorf("half-written or temporary files on the full desktop: %s", short(bad))
	}
	resize(t, e.desktop, 64<<20)
	if s := e.syncJSON(); s.Outcome != "ok" {
		rec.Failed++
		t.Errorf("the sync after space was freed: %+v", s)
	}
	problems, lost, corrupt, extra := u.m.check(e.desktop, e.devDir())
	rec.Lost, rec.Corrupt, rec.Extra = lost, corrupt, rec.Extra+extra
	if len(problems) > 0 {
		rec.Failed++
		t.Errorf("after space was freed:\n%s", strings.Join(problems, "\n"))
	}
	rec.Notes = append(rec.Notes, "the message: "+firstLine(msg))
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}

// TestDeviceFull (R5): a device with no room. Through the command line, an emulated device whose
// folder is a small tmpfs (it reports its real free space and refuses what does not fit); in
// process, a device that reports no free space at all (the emulator's FreeSpaceZero). Either
// way the session stops with a message that says the device is full, nothing is half-written on
// the device, and with room again the next session completes.
func TestDeviceFull(t *testing.T) {
	r, seed := newRand(t)
	start := time.Now()
	rec := record{ID: "R5", Seed: seed, What: "a device without room: an emulated device on a 6 MB tmpfs receiving 20 MB (command line), and one that reports no free space (in process); then room again"}
	fill := func(u *user) {
		for i := range 12 {
			if err := u.createSize("desktop", fmt.Sprintf("videos/clip%02d.mp4", i), 1<<20+r.IntN(1<<20)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 30 {
			if err := u.create("desktop", fmt.Sprintf("notes/n%02d.txt", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, u *user, e *env) {
		problems, lost, corrupt, extra := u.m.check(e.desktop, e.devDir())
		rec.Lost, rec.Corrupt, rec.Extra = rec.Lost+lost, rec.Corrupt+corrupt, rec.Extra+extra
		if len(problems) > 0 {
			rec.Failed++
			t.Errorf("%s: after room was made:\n%s", what, strings.Join(problems, "\n"))
		}
	}

	t.Run("small device storage, command line", func(t *testing.T) {
		rec.Count++
		e := newEnv(t)
		mountTmpfs(t, e.phone, 6<<20)
		u := newUser(r, e.desktop, e.devDir())
		fill(u)
		e.partner()
		res := e.run("sync", "--json")
		var ss []session
		json.Unmarshal([]byte(res.stdout), &ss)
		msg := res.stderr
		if len(ss) == 1 {
			msg += strings.Join(ss[0].Errors, " ")
		}
		t.Logf("the sync to a full device: exit %d, %s", res.code, strings.TrimSpace(res.stderr))
		if len(ss) == 1 && ss[0].Outcome == "ok" || !saysFull(msg) {
			rec.Failed++
			t.Errorf("the sync to a full device does not stop with a message that it is full:\n%v", res)
		}
		if bad := halfWritten(t, e.phone, u.made); len(bad) > 0 {
			rec.Failed++
			rec.Extra += len(bad)
			t.Errorf("half-written or temporary files on the full device: %s", short(bad))
		}
		rec.Notes = append(rec.Notes, "small device storage: "+firstLine(msg))
		resize(t, e.phone, 64<<20)
		if s := e.syncJSON(); s.Outcome != "ok" {
			rec.Failed++
			t.Errorf("the sync after room was made: %+v", s)
		}
		check("small device storage", u, e)
	})

	t.Run("device reporting no free space", func(t *testing.T) {
		rec.Count++
		e := newEnv(t)
		u := newUser(r, e.desktop, e.devDir())
		fill(u)
		ip := openInproc(t, e, emulator.Options{FreeSpaceZero: true}, nil)
		s := ip.sync(t, manager.SyncOptions{})
		msg := strings.Join(s.Errors, " ")
		t.Logf("the session with a full device: %s", summary(s))
		if s.Outcome == manager.OutcomeOK || !saysFull(msg) {
			rec.Failed++
			t.Errorf("the session with a device reporting no free space does not stop with a message that it is full: %s", summary(s))
		}
		if st := ip.m.Status()[0]; st.Error == "" && s.Outcome == manager.OutcomeFailed {
			t.Errorf("the partnership's status does not say what went wrong: %+v", st)
		}
		if bad := halfWritten(t, e.phone, u.made); len(bad) > 0 {
			rec.Failed++
			rec.Extra += len(bad)
			t.Errorf("half-written or temporary files on the full device: %s", short(bad))
		}
		rec.Notes = append(rec.Notes, "no free space reported: "+firstLine(msg))
		ip.mon.current().Unplug()
		ip.mon.waitGone(t, ip.m)
		ip.mon.plugIn(t, ip.m, emulator.Options{})
		if s := ip.sync(t, manager.SyncOptions{}); s.Outcome != manager.OutcomeOK {
			rec.Failed++
			t.Errorf("the session with room again: %s\nlog:\n%s", summary(s), ip.log.String())
		}
		check("no free space reported", u, e)
	})
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}

// firstLine returns the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
