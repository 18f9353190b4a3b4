package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKillDuringSync (R1): `cradle sync` killed with SIGKILL at random moments while it syncs a
// few thousand files; after each kill the next sync completes and both sides hold exactly what
// the user made, with no temporary file left.
func TestKillDuringSync(t *testing.T) {
	n := trials(t, 10, 200)
	r, seed := newRand(t)
	start := time.Now()
	e := newEnv(t)
	u := newUser(r, e.desktop, e.devDir())
	desktopFiles, deviceFiles := 1500, 500
	if full() {
		desktopFiles, deviceFiles = 2500, 700
	}
	if err := u.populate(desktopFiles, deviceFiles); err != nil {
		t.Fatal(err)
	}
	e.partner()
	first := e.run("sync", "--json")
	if first.code != 0 {
		t.Fatalf("first sync: %v", first)
	}
	rec := record{ID: "R1", Seed: seed, What: fmt.Sprintf("cradle sync killed (SIGKILL) at a random moment, %d files, a batch of changes on both sides before each", desktopFiles+deviceFiles)}
	check := func(when string) bool {
		t.Helper()
		problems, lost, corrupt, extra := u.m.check(e.desktop, e.devDir())
		if ts := temps(e.phone); len(ts) > 0 {
			problems = append(problems, "temporary files on the device: "+short(ts))
			extra += len(ts)
		}
		// Every content the user ever wrote is in place or in the versions.
		gone, err := u.unkept()
		if err != nil {
			t.Fatal(err)
		}
		if len(gone) > 0 {
			problems = append(problems, fmt.Sprintf("%d contents the user wrote are neither in place nor in the versions: %s", len(gone), short(gone)))
			lost += len(gone)
		}
		rec.Lost, rec.Corrupt, rec.Extra = rec.Lost+lost, rec.Corrupt+corrupt, rec.Extra+extra
		if len(problems) > 0 {
			rec.Failed++
			t.Errorf("%s:\n%s", when, strings.Join(problems, "\n"))
			return false
		}
		return true
	}
	if !check("after the first sync") {
		t.FailNow()
	}

	// Calibrate: how long a batch of changes takes to sync, so that kills land inside syncs.
	if err := u.edit(3); err != nil {
		t.Fatal(err)
	}
	cal := e.run("sync")
	if cal.code != 0 || !check("after the calibration sync") {
		t.Fatalf("calibration sync: %v", cal)
	}
	window := cal.wall + cal.wall/4
	t.Logf("a batch syncs in %s; kills land within %s of the start", cal.wall.Round(time.Millisecond), window.Round(time.Millisecond))

	var killed, finished int
	var delays []time.Duration
	for i := range n {
		if err := u.edit(3); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(r.Int64N(int64(window)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := e.command(ctx, "sync")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
			finished++
		case <-time.After(delay):
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill: %v", err)
			}
			<-exited
			killed++
			delays = append(delays, delay)
		}
		cancel()
		s := e.run("sync", "--json")
		when := fmt.Sprintf("trial %d (killed after %s)", i+1, delay.Round(time.Millisecond))
		var ss []session
		if s.code != 0 || json.Unmarshal([]byte(s.stdout), &ss) != nil || len(ss) != 1 || ss[0].Outcome != "ok" {
			rec.Failed++
			t.Errorf("%s: the next sync did not complete: %v", when, s)
			break
		}
		if cs := e.run("conflicts", "--json"); strings.TrimSpace(cs.stdout) != "[]" {
			rec.Failed++
			t.Errorf("%s: conflicts after the next sync: %s", when, cs.stdout)
			break
		}
		if !check(when) {
			break
		}
		rec.Count++
	}
	rec.Seconds = time.Since(start).Seconds()
	span := "none"
	if len(delays) > 0 {
		span = fmt.Sprintf("from %s to %s after the start", slices.Min(delays).Round(time.Millisecond), slices.Max(delays).Round(time.Millisecond))
	}
	rec.Notes = append(rec.Notes, fmt.Sprintf("%d killed during the sync (%s), %d finished before the kill came; a batch synced in %s uninterrupted, kills drawn uniformly within %s of the start",
		killed, span, finished, cal.wall.Round(time.Millisecond), window.Round(time.Millisecond)),
		fmt.Sprintf("%d files in the folders at the end", u.count()))
	report(t, rec)
}
