package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/manager"
)

// tone is how a status reads at a glance: it picks the colour and the icon of a status line.
type tone int

const (
	toneNormal  tone = iota // nothing to report
	toneOK                  // synchronized, all is well
	toneBusy                // something runs
	toneWarning             // the user should look (conflicts, changes waiting, a partial sync)
	toneError               // the user must act
	toneMuted               // nothing can happen now (device not connected)
)

// delayText formats a short delay as people read it: "0.3 s", "2 s", "1 min", "1.5 min" (the
// units are the same in the window's languages).
func delayText(d time.Duration) string {
	trim := func(v float64) string { return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") }
	if d < time.Minute {
		return trim(d.Seconds()) + " s"
	}
	return trim(d.Minutes()) + " min"
}

// humanBytes formats a size in SI units, as file managers do: "812 B", "3.4 MB", "120 MB".
func humanBytes(n int64) string {
	if n < 0 {
		n = 0
	}
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n) / 1000
	i := 0
	for v >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if v < 9.95 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}

// ago says how long ago t was: "just now", "5 minutes ago", "yesterday", "on 2026-11-20 14:03".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return tr("just now")
	case d < time.Hour:
		return trN("{{.Count}} minutes ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return trN("{{.Count}} hours ago", int(d/time.Hour))
	case d < 48*time.Hour:
		return tr("yesterday")
	}
	return tr("on {{.Date}}", map[string]any{"Date": t.Local().Format("2006-01-02 15:04")})
}

// timeLeft says how long a sync still takes: "about 3 minutes left".
func timeLeft(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return tr("a few seconds left")
	case d < time.Minute:
		return tr("less than a minute left")
	case d < 90*time.Minute:
		return trN("about {{.Count}} minutes left", int(math.Round(d.Minutes())))
	}
	return trN("about {{.Count}} hours left", int(math.Round(d.Hours())))
}

// interval says how often something happens: "every 15 minutes", "every hour".
func intervalText(d time.Duration) string {
	switch {
	case d <= 0:
		return tr("Never")
	case d%(24*time.Hour) == 0:
		return trN("Every {{.Count}} days", int(d/(24*time.Hour)))
	case d%time.Hour == 0:
		return trN("Every {{.Count}} hours", int(d/time.Hour))
	case d%time.Minute == 0:
		return trN("Every {{.Count}} minutes", int(d/time.Minute))
	}
	return tr("Every {{.Duration}}", map[string]any{"Duration": d.String()})
}

// directionText names a direction for people.
func directionText(d manager.Direction) string {
	switch d {
	case manager.ToDevice:
		return tr("To the device")
	case manager.ToDesktop:
		return tr("To this computer")
	}
	return tr("Both ways")
}

// policyText names a conflict policy for people.
func policyText(p manager.ConflictPolicy) string {
	switch p {
	case manager.PolicyDesktop:
		return tr("This computer's version wins")
	case manager.PolicyDevice:
		return tr("The device's version wins")
	case manager.PolicyNewest:
		return tr("The newest version wins")
	case manager.PolicyKeepBoth:
		return tr("Keep both versions")
	}
	return tr("Ask me")
}

// deviceStateText names a device's state for the header.
func deviceStateText(d manager.DeviceInfo) (string, tone) {
	if d.Syncing && d.State == manager.DeviceStateConnected {
		return tr("Syncing"), toneBusy
	}
	switch d.State {
	case manager.DeviceStateConnected:
		return tr("Connected"), toneOK
	case manager.DeviceStateDisconnected:
		return tr("Not connected"), toneMuted
	case manager.DeviceStateBusy:
		return tr("Busy"), toneError
	case manager.DeviceStateNoPermission:
		return tr("No permission"), toneError
	case manager.DeviceStateLocked:
		return tr("Locked"), toneWarning
	}
	return tr("Cannot be opened"), toneError
}

// kindText names a kind of device.
func kindText(k manager.DeviceKind) string {
	switch k {
	case "phone":
		return tr("Phone")
	case "camera":
		return tr("Camera")
	case "media-player":
		return tr("Media player")
	case "e-reader":
		return tr("E-reader")
	case "storage":
		return tr("Storage")
	}
	return tr("Device")
}

// statusText is the line under a partnership's name, in words a person understands, and its
// tone. The error's fix, when there is one, is on a second line.
func statusText(st manager.Status, now time.Time) (string, tone) {
	switch st.State {
	case manager.StateSyncing:
		return progressText(st.Progress), toneBusy
	case manager.StateQueued:
		return tr("Waiting for the device's other sync to finish"), toneBusy
	case manager.StateStopped:
		msg := tr("Provider stopped")
		e := st.Error
		if strings.HasPrefix(strings.ToLower(e), "provider stopped") {
			e = strings.TrimLeft(e[len("provider stopped"):], ": ")
		}
		switch {
		case strings.Contains(e, "stopped"):
			msg = sentence(e) // "Provider notes stopped: signal: killed; …"
		case e != "":
			msg += ": " + e
		}
		fix := st.Fix
		if fix == "" {
			fix = tr("the next sync restarts it")
		}
		if !strings.Contains(msg, "next sync") {
			msg += "\n" + capitalize(fix)
		}
		return msg, toneError
	case manager.StateError:
		if st.MassDelete != nil {
			return massDeleteText(*st.MassDelete) + "\n" + tr("Open Preview in the partnership's menu to see the deletions and allow them; what a sync deletes is kept in Versions."), toneError
		}
		msg := sentence(st.Error)
		if st.Fix != "" {
			msg += "\n" + capitalize(sentence(st.Fix))
		}
		return msg, toneError
	}
	var parts []string
	t := toneNormal
	switch {
	case st.State == manager.StateDisconnected:
		t = toneMuted
		if st.LastSync.IsZero() {
			parts = append(parts, tr("Device not connected"))
		} else {
			parts = append(parts, tr("Device not connected; last synchronized {{.When}}", map[string]any{"When": ago(st.LastSync, now)}))
		}
	case st.LastSync.IsZero():
		parts = append(parts, tr("Not synchronized yet"))
	case st.LastOutcome == manager.OutcomePartial:
		t = toneWarning
		parts = append(parts, tr("Synchronized {{.When}}, with items skipped", map[string]any{"When": ago(st.LastSync, now)}))
	case st.LastOutcome == manager.OutcomeStopped:
		t = toneWarning
		parts = append(parts, tr("Stopped {{.When}} before it finished", map[string]any{"When": ago(st.LastSync, now)}))
	default:
		t = toneOK
		parts = append(parts, tr("Synchronized {{.When}}", map[string]any{"When": ago(st.LastSync, now)}))
	}
	if st.Conflicts > 0 {
		parts = append(parts, trN("{{.Count}} conflicts need you", st.Conflicts))
		if t != toneMuted {
			t = toneWarning
		}
	}
	if st.Pending > 0 {
		parts = append(parts, trN("{{.Count}} changes waiting", st.Pending))
	}
	if st.Paused {
		parts = append(parts, tr("automatic sync paused until the device is plugged in again"))
	}
	text := strings.Join(parts, " · ")
	if len(st.Skipped) > 0 {
		// Each name left out, with why: the user renames it to sync it.
		var names []string
		for _, k := range st.Skipped {
			names = append(names, tr("{{.Name}} ({{.Reason}})", map[string]any{"Name": k.Path, "Reason": k.Reason}))
		}
		text += "\n" + trN("{{.Count}} names skipped: {{.List}}", len(st.Skipped), map[string]any{"List": strings.Join(names, "; ")})
		if t == toneOK || t == toneNormal {
			t = toneWarning
		}
	}
	return text, t
}

// progressText describes a running session: "Syncing: 120 MB of 260 MB, about 1 minute left".
func progressText(p *manager.Progress) string {
	if p == nil {
		return tr("Starting…")
	}
	if p.Phase == "detecting" {
		if p.ItemsDone > 0 {
			return trN("Looking for changes: {{.Count}} items checked", p.ItemsDone)
		}
		return tr("Looking for changes…")
	}
	var s string
	switch {
	case p.BytesTotal > 0:
		s = tr("Syncing: {{.Done}} of {{.Total}}", map[string]any{"Done": humanBytes(p.BytesDone), "Total": humanBytes(p.BytesTotal)})
	case p.ItemsTotal > 0:
		s = trN("Syncing: {{.Done}} of {{.Count}} items", p.ItemsTotal, map[string]any{"Done": p.ItemsDone})
	default:
		s = tr("Syncing…")
	}
	if p.ETA >= 0 && (p.BytesDone > 0 || p.ItemsDone > 0) {
		s += ", " + timeLeft(p.ETA)
	}
	return s
}

// progressFraction is how far a running session is, from 0 to 1; ok is false when it cannot be
// told (still detecting, nothing to send).
func progressFraction(p *manager.Progress) (float64, bool) {
	if p == nil || p.Phase == "detecting" {
		return 0, false
	}
	switch {
	case p.BytesTotal > 0:
		return clamp01(float64(p.BytesDone) / float64(p.BytesTotal)), true
	case p.ItemsTotal > 0:
		return clamp01(float64(p.ItemsDone) / float64(p.ItemsTotal)), true
	}
	return 0, false
}

func clamp01(f float64) float64 {
	return math.Max(0, math.Min(1, f))
}

// countsText says what a session did: "3 new and 1 changed on this computer; 2 new on the
// device". Empty when it did nothing.
func countsText(s manager.Session) string {
	var sides []string
	if c := countParts(s.ToDesktop); c != "" {
		sides = append(sides, tr("{{.Changes}} on this computer", map[string]any{"Changes": c}))
	}
	if c := countParts(s.ToDevice); c != "" {
		sides = append(sides, tr("{{.Changes}} on the device", map[string]any{"Changes": c}))
	}
	return strings.Join(sides, "; ")
}

func countParts(c manager.Counts) string {
	var p []string
	if c.Created > 0 {
		p = append(p, trN("{{.Count}} new", c.Created))
	}
	if c.Updated > 0 {
		p = append(p, trN("{{.Count}} changed", c.Updated))
	}
	if c.Renamed > 0 {
		p = append(p, trN("{{.Count}} renamed", c.Renamed))
	}
	if c.Deleted > 0 {
		p = append(p, trN("{{.Count}} deleted", c.Deleted))
	}
	switch len(p) {
	case 0:
		return ""
	case 1:
		return p[0]
	}
	return strings.Join(p[:len(p)-1], ", ") + " " + tr("and") + " " + p[len(p)-1]
}

// outcomeText names how a session ended.
func outcomeText(o manager.Outcome) (string, tone) {
	switch o {
	case manager.OutcomeOK:
		return tr("Synchronized"), toneOK
	case manager.OutcomeConflicts:
		return tr("Synchronized, conflicts wait for you"), toneWarning
	case manager.OutcomePartial:
		return tr("Synchronized, some items skipped"), toneWarning
	case manager.OutcomeStopped:
		return tr("Stopped"), toneWarning
	}
	return tr("Failed"), toneError
}

// triggerText says why a session started.
func triggerText(t manager.Trigger) string {
	switch t {
	case manager.TriggerConnect:
		return tr("plugged in")
	case manager.TriggerChange:
		return tr("files changed")
	case manager.TriggerSchedule:
		return tr("scheduled")
	case manager.TriggerRetry:
		return tr("retry")
	case manager.TriggerResolve:
		return tr("conflict resolved")
	}
	return tr("by hand")
}

// capitalize upper-cases the first letter of s.
func capitalize(s string) string {
	for i, r := range s {
		if i == 0 {
			return strings.ToUpper(string(r)) + s[len(string(r)):]
		}
	}
	return s
}

// sentence makes an error message read as a sentence: capitalised, "invalid value: " dropped.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, manager.ErrInvalid.Error()+": ")
	return capitalize(s)
}

// formatTime shows a time for people: local, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
