package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKillDuringContactsSync (R1 with contacts): `cradle sync` of a contacts partnership killed with
// SIGKILL at a random moment while it sends hundreds of new cards to the phone's one contacts
// file, which the device side writes once at the end of the session from a journal on this
// computer: the next sync completes, and the address book and the phone's file hold every card
// the user made, each once.
func TestKillDuringContactsSync(t *testing.T) {
	n := trials(t, 4, 40)
	r, seed := newRand(t)
	start := time.Now()
	e := newEnv(t)
	const first, perTrial = 200, 500
	made := 0
	add := func(k int) {
		t.Helper()
		for range k {
			uid := fmt.Sprintf("urn:uuid:00000000-kill-4000-8000-%012d", made)
			card := fmt.Sprintf("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:%s\r\nN:Person;Number %d;;;\r\nFN:Number %d Person\r\n"+
				"TEL;TYPE=cell:+44 7700 9%05d\r\nEMAIL;TYPE=home:n%d@example.org\r\nEND:VCARD\r\n", uid, made, made, made, made)
			if err := os.WriteFile(filepath.Join(e.desktop, fmt.Sprintf("card-%05d.vcf", made)), []byte(card), 0o644); err != nil {
				t.Fatal(err)
			}
			made++
		}
	}
	add(first)
	var devs []struct{ Serial string }
	if err := json.Unmarshal([]byte(e.ok("devices", "--json").stdout), &devs); err != nil || len(devs) != 1 {
		t.Fatalf("devices --json: %v", err)
	}
	e.ok("partner", "add", "--name", "contacts", "--provider", "contacts", "--device", devs[0].Serial, "--desktop", e.desktop)
	rec := record{ID: "R1", Seed: seed, What: fmt.Sprintf("cradle sync of a contacts partnership killed (SIGKILL) at a random moment, %d new cards before each", perTrial)}
	check := func(when string) bool {
		t.Helper()
		desk, err := uidsIn(e.desktop, false)
		if err != nil {
			t.Fatal(err)
		}
		phone, err := uidsIn(filepath.Join(e.phone, "Contacts"), true)
		if err != nil {
			t.Fatal(err)
		}
		var problems []string
		for side, uids := range map[string][]string{"address book": desk, "phone": phone} {
			if dups := len(uids) - len(slices.Compact(slices.Sorted(slices.Values(uids)))); dups > 0 {
				problems = append(problems, fmt.Sprintf("%d cards twice in the %s", dups, side))
				rec.Extra += dups
			}
			if got := len(slices.Compact(slices.Sorted(slices.Values(uids)))); got != made {
				problems = append(problems, fmt.Sprintf("the %s holds %d cards, want %d", side, got, made))
				if got < made {
					rec.Lost += made - got
				}
			}
		}
		if len(problems) > 0 {
			rec.Failed++
			t.Errorf("%s:\n%s", when, strings.Join(problems, "\n"))
			return false
		}
		return true
	}
	if s := e.run("sync"); s.code != 0 || !check("after the first sync") {
		t.Fatalf("first sync: %v", s)
	}
	add(perTrial)
	cal := e.run("sync")
	if cal.code != 0 || !check("after the calibration sync") {
		t.Fatalf("calibration sync: %v", cal)
	}
	// The moment that matters is between the commit of a batch and the upload of the file at
	// the session's end: the device side's journal appears at the first batch's commit, and a
	// kill lands a random moment after it (within a quarter of an uninterrupted sync, so that
	// some land during the upload and some after it); or, if the journal never appears, at a
	// random moment of the sync.
	window := cal.wall + cal.wall/4
	journals := filepath.Join(e.config, "state", "*", "device-pending.jsonl")
	t.Logf("%d new cards sync in %s", perTrial, cal.wall.Round(time.Millisecond))

	var killed, atJournal int
	for i := range n {
		add(perTrial)
		after := time.Duration(r.Int64N(int64(cal.wall / 4)))
		fallback := time.Duration(r.Int64N(int64(window)))
		if i%2 == 0 {
			fallback = window // only the journal's appearing (or the window's end) kills
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := e.command(ctx, "sync")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		started, seen := time.Now(), time.Time{}
		delay := fallback
	wait:
		for {
			select {
			case <-exited:
				break wait
			case <-time.After(time.Millisecond):
			}
			if seen.IsZero() {
				if m, _ := filepath.Glob(journals); len(m) > 0 {
					seen = time.Now()
					delay = seen.Sub(started) + after
				}
			}
			if time.Since(started) >= delay {
				if err := cmd.Process.Kill(); err != nil {
					t.Logf("kill: %v", err)
				}
				<-exited
				killed++
				if !seen.IsZero() {
					atJournal++
				}
				break wait
			}
		}
		cancel()
		when := fmt.Sprintf("trial %d (kill after %s)", i+1, delay.Round(time.Millisecond))
		s := e.run("sync", "--json")
		var ss []session
		if s.code != 0 || json.Unmarshal([]byte(s.stdout), &ss) != nil || len(ss) != 1 || ss[0].Outcome != "ok" {
			rec.Failed++
			t.Errorf("%s: the next sync did not complete: %v", when, s)
			break
		}
		if ss[0].ToDesktop.Deleted > 0 || ss[0].ToDevice.Deleted > 0 {
			rec.Failed++
			t.Errorf("%s: the next sync deleted cards: %+v", when, ss[0])
			break
		}
		if !check(when) {
			break
		}
		rec.Count++
	}
	rec.Seconds = time.Since(start).Seconds()
	t.Logf("%d of %d syncs killed, %d after the journal appeared", killed, n, atJournal)
	rec.Notes = append(rec.Notes, fmt.Sprintf("%d of %d syncs killed, %d of them within %s after the device side's journal appeared (the first batch committed, the file not written yet); %d new cards synced in %s uninterrupted; %d cards at the end", killed, n, atJournal, (cal.wall/4).Round(time.Millisecond), perTrial, cal.wall.Round(time.Millisecond), made))
	report(t, rec)
}

// uidsIn returns the UIDs of the cards in the .vcf files of dir (one card a file, or, for the
// phone, every card of its contacts file).
func uidsIn(dir string, phone bool) ([]string, error) {
	var uids []string
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".vcf") || (phone && de.Name() != "contacts.vcf") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if uid, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), "UID:"); ok {
				uids = append(uids, uid)
			}
		}
	}
	return uids, nil
}
