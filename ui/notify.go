package ui

import (
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"github.com/cradle-sync/cradle/manager"
)

// maxSent bounds Window.sent.
const maxSent = 20

// send sends a desktop notification and remembers it.
func (w *Window) send(n *fyne.Notification) {
	if w.opts.Notifications {
		w.app.SendNotification(n)
	}
	w.sent = append(w.sent, n)
	if len(w.sent) > maxSent {
		w.sent = slices.Delete(w.sent, 0, len(w.sent)-maxSent)
	}
}

// notify sends the notifications an update calls for: a sync finished (with its counts),
// conflicts need the user, a device the user must do something about, a provider that stopped.
func (w *Window) notify(p pending) {
	var done []manager.Session
	for _, s := range p.finished {
		switch {
		case s.Outcome == manager.OutcomeFailed:
			msg := ""
			if len(s.Errors) > 0 {
				msg = sentence(s.Errors[0])
			}
			if st, ok := w.statuses[s.Partnership]; ok && st.Fix != "" {
				msg += "\n" + capitalize(st.Fix)
			}
			w.send(fyne.NewNotification(tr("Sync of {{.Name}} failed", map[string]any{"Name": s.Name}), msg))
		case s.Outcome == manager.OutcomeStopped:
		case s.ToDesktop.Total()+s.ToDevice.Total() > 0 || s.Outcome == manager.OutcomePartial:
			done = append(done, s)
		}
	}
	switch len(done) {
	case 0:
	case 1:
		s := done[0]
		msg := countsText(s)
		if s.Skipped > 0 {
			msg += "\n" + trN("{{.Count}} items could not be synced; they are tried again next time", s.Skipped)
		}
		w.send(fyne.NewNotification(tr("{{.Name}} synchronized", map[string]any{"Name": s.Name}), msg))
	default:
		var lines []string
		for _, s := range done {
			lines = append(lines, s.Name+": "+countsText(s))
		}
		w.send(fyne.NewNotification(trN("{{.Count}} partnerships synchronized", len(done)), strings.Join(lines, "\n")))
	}
	if p.added > 0 {
		w.send(fyne.NewNotification(trN("{{.Count}} conflicts need you", p.added),
			tr("An item changed both here and on the device. Open Cradle and choose which version to keep.")))
	}
	for _, d := range p.problems {
		switch d.State {
		case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked:
			state, _ := deviceStateText(d)
			w.send(fyne.NewNotification(d.Label+": "+state, sentence(d.Problem)))
		}
	}
	for _, s := range p.stopped {
		id, msg, _ := strings.Cut(s, "\x00")
		name := id
		for _, q := range w.parts {
			if q.ID == id {
				name = q.Name
			}
		}
		w.send(fyne.NewNotification(tr("Provider stopped: {{.Name}}", map[string]any{"Name": name}),
			sentence(msg)+"\n"+tr("The next sync restarts it.")))
	}
}
