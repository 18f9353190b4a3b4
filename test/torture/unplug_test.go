package torture

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
)

// TestDeviceGone (R2): the device disappears in the middle of a session, at a random point of
// its transfers; while it is away no partial file is visible on either side, and plugged in
// again the next session completes with both sides as the user made them.
func TestDeviceGone(t *testing.T) {
	n := trials(t, 5, 50)
	r, seed := newRand(t)
	start := time.Now()
	e := newEnv(t)
	u := newUser(r, e.desktop, e.devDir())
	u.large = 10
	if err := u.populate(400, 150); err != nil {
		t.Fatal(err)
	}
	ip := openInproc(t, e, emulator.Options{}, nil)
	rec := record{ID: "R2", Seed: seed, What: "the emulated device cut off in the middle of a session (Unplug at a random moment, DisconnectAfter a random number of bytes to or from it), then plugged in again"}
	fail := func(format string, args ...any) {
		t.Helper()
		rec.Failed++
		rec.Seconds = time.Since(start).Seconds()
		report(t, rec)
		t.Fatalf(format+"\nmanager log:\n%s", append(args, ip.log.String())...)
	}
	check := func(when string) {
		t.Helper()
		problems, lost, corrupt, extra := u.m.check(e.desktop, e.devDir())
		rec.Lost, rec.Corrupt, rec.Extra = rec.Lost+lost, rec.Corrupt+corrupt, rec.Extra+extra
		if len(problems) > 0 {
			fail("%s:\n%s", when, strings.Join(problems, "\n"))
		}
	}
	t0 := time.Now()
	if s := ip.sync(t, manager.SyncOptions{}); s.Outcome != manager.OutcomeOK {
		fail("first sync: %s", summary(s))
	}
	est := time.Since(t0) / 4
	check("after the first sync")

	modes := []string{"uploads cut after a random number of bytes", "downloads cut after a random number of bytes", "unplugged at a random moment"}
	cut := make([]int, len(modes))
	journaled := 0
	for i := range n {
		if err := u.edit(2); err != nil {
			t.Fatal(err)
		}
		// A large file each way, so that some cuts land inside one.
		for _, side := range []string{"desktop", "device"} {
			if err := u.createSize(side, fmt.Sprintf("large/%s-%d.bin", side, i), 1<<20+r.IntN(8<<20)); err != nil {
				t.Fatal(err)
			}
		}
		emu := ip.mon.current()
		mode := i % len(modes)
		budget := r.Int64N(u.batchBytes + 1)
		var timer *time.Timer
		switch mode {
		case 0:
			emu.DisconnectAfter(-1, budget)
		case 1:
			emu.DisconnectAfter(budget, -1)
		case 2:
			timer = time.AfterFunc(time.Duration(r.Int64N(int64(est)+1)), emu.Unplug)
		}
		s := ip.sync(t, manager.SyncOptions{})
		if timer != nil {
			timer.Stop()
		}
		when := fmt.Sprintf("trial %d (%s)", i+1, modes[mode])
		if s.Outcome != manager.OutcomeOK {
			cut[mode]++
			if s.Outcome != manager.OutcomeStopped || !strings.Contains(strings.Join(s.Errors, " "), "disconnected") {
				fail("%s: the cut session ended %s; want it stopped with a message that the device was disconnected", when, summary(s))
			}
		}
		// Pull it out (if the fault did not), look at both sides while it is away.
		emu.Unplug()
		ip.mon.waitGone(t, ip.m)
		for _, side := range []struct{ name, dir string }{{"desktop", e.desktop}, {"device", e.phone}} {
			partial, whole, cut, err := strangers(side.dir, u.made)
			if err != nil {
				t.Fatal(err)
			}
			if len(partial) > 0 || len(cut) > 0 {
				rec.Extra += len(partial) + len(cut)
				fail("%s: with the device away, the %s shows partial files: %s", when, side.name, short(append(partial, cut...)))
			}
			// A whole upload under its temporary name, journaled, may wait on the device for the
			// next session (which must remove it: check below); never on the desktop.
			if side.name == "device" {
				journaled += len(whole)
			} else if len(whole) > 0 {
				rec.Extra += len(whole)
				fail("%s: with the device away, the desktop shows temporary files: %s", when, short(whole))
			}
		}
		// Plug it in again: the next session completes.
		ip.mon.plugIn(t, ip.m, emulator.Options{})
		if s := ip.sync(t, manager.SyncOptions{}); s.Outcome != manager.OutcomeOK {
			fail("%s: the next session did not complete: %s", when, summary(s))
		}
		if cs, err := ip.m.Conflicts(); err != nil || len(cs) > 0 {
			fail("%s: conflicts after the next session: %+v (%v)", when, cs, err)
		}
		check(when)
		rec.Count++
	}
	rec.Seconds = time.Since(start).Seconds()
	var notes []string
	for i, m := range modes {
		notes = append(notes, fmt.Sprintf("%s: %d cut mid-session", m, cut[i]))
	}
	rec.Notes = append(rec.Notes, strings.Join(notes, "; ")+fmt.Sprintf(" (the rest finished before the fault came); %d trials each", (n+len(modes)-1)/len(modes)),
		fmt.Sprintf("%d times the device was pulled out between a whole upload under its temporary name and its swap into place: the upload waited, journaled, and the next session removed it or moved it into place (checked)", journaled))
	report(t, rec)
}
