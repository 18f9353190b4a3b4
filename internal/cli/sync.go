package cli

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cradle-sync/cradle/manager"
)

// cmdSync syncs partnerships now and waits for them.
func cmdSync(c *invocation, args []string) error {
	fs := c.flags("sync", "[ID|NAME...] [--json] [--allow-mass-delete] [--dry-run]")
	asJSON := fs.Bool("json", false, "print one JSON document with the sessions (with --dry-run: with the changes)")
	allow := fs.Bool("allow-mass-delete", false, "let the sync delete more than the mass-delete threshold (you confirmed)")
	dry := fs.Bool("dry-run", false, "list what the sync would do, and change nothing")
	refs, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	if *dry {
		return dryRun(c, m, manager.SyncOptions{AllowMassDelete: *allow}, *asJSON, refs)
	}
	// Progress goes to stderr from the events; it ends before the summary is printed.
	finish := func() {}
	if !*asJSON {
		show := newProgressView(c)
		sub := m.Subscribe(manager.SessionStarted | manager.SessionProgress | manager.SessionFinished)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range sub.C() {
				show.event(ev)
			}
		}()
		finish = func() {
			sub.Close()
			<-done
			show.stop()
		}
	}
	sessions, err := m.Sync(c.ctx, manager.SyncOptions{AllowMassDelete: *allow}, refs...)
	finish()
	if err != nil && c.ctx.Err() != nil {
		// Ctrl+C, or the running Cradle that served the command is quitting.
		return errors.New("stopped before it finished; the next sync resumes where it stopped")
	}
	if err != nil {
		return err
	}
	status := map[string]manager.Status{}
	for _, s := range m.Status() {
		status[s.ID] = s
	}
	var failed []string
	for _, s := range sessions {
		if s.Outcome == manager.OutcomeFailed || s.Outcome == manager.OutcomeStopped {
			msg := s.Name + ": " + strings.Join(s.Errors, "; ")
			if fix := status[s.Partnership].Fix; fix != "" {
				msg += "; " + fix
			}
			failed = append(failed, msg)
			continue
		}
		if !*asJSON {
			c.say("%s", summary(s))
		}
	}
	if *asJSON {
		if err := c.writeJSON(sessions); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, " | "))
	}
	return nil
}

// summary says what a finished session did, in one line.
func summary(s manager.Session) string {
	var parts []string
	if n := describeCounts(s.ToDevice); n != "" {
		parts = append(parts, "to the device: "+n)
	}
	if n := describeCounts(s.ToDesktop); n != "" {
		parts = append(parts, "to the desktop: "+n)
	}
	line := s.Name + ": "
	if len(parts) == 0 {
		line += "up to date"
	} else {
		line += strings.Join(parts, "; ")
		if s.Bytes > 0 {
			line += " (" + humanBytes(s.Bytes) + ")"
		}
	}
	if s.Decided > 0 {
		line += fmt.Sprintf("; %s settled by the partnership's policy", plural(s.Decided, "conflict"))
	}
	for i, k := range s.KeptBoth {
		if i == 3 {
			line += fmt.Sprintf("; and %d more kept twice", len(s.KeptBoth)-i)
			break
		}
		line += fmt.Sprintf("; %q kept twice (%s): the other is %q", k.Path, k.Reason, k.Copy)
	}
	if s.Conflicts > 0 {
		line += fmt.Sprintf("; %s %s for you: run 'cradle conflicts'", plural(s.Conflicts, "conflict"), waitVerb(s.Conflicts))
	}
	if s.Skipped > 0 {
		line += fmt.Sprintf("; %s could not be synced: %s", plural(s.Skipped, "item"), strings.Join(s.Errors, "; "))
	}
	return line
}

func waitVerb(n int) string {
	if n == 1 {
		return "waits"
	}
	return "wait"
}

func describeCounts(c manager.Counts) string {
	var parts []string
	for _, x := range []struct {
		n    int
		verb string
	}{{c.Created, "new"}, {c.Updated, "updated"}, {c.Renamed, "renamed"}, {c.Deleted, "deleted"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.verb))
		}
	}
	return strings.Join(parts, ", ")
}

// progressView shows sessions' progress: a bar per session on a terminal, a plain line every
// few seconds otherwise.
type progressView struct {
	c        *invocation
	terminal bool
	mu       sync.Mutex
	bars     map[string]*progressbar.ProgressBar
	names    map[string]string // partnership ID -> name
	last     map[string]time.Time
}

func newProgressView(c *invocation) *progressView {
	tty := c.env.stderrTerm.TTY
	return &progressView{c: c, terminal: tty, bars: map[string]*progressbar.ProgressBar{}, names: map[string]string{}, last: map[string]time.Time{}}
}

func (v *progressView) event(ev manager.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch ev.Type {
	case manager.SessionStarted:
		s := ev.Data.(manager.Session)
		v.names[ev.Partnership] = s.Name
		if v.terminal {
			v.bars[ev.Partnership] = progressbar.NewOptions64(-1,
				progressbar.OptionSetWriter(v.c.stderr),
				progressbar.OptionSetDescription(s.Name+": looking for changes"),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionSpinnerType(14),
			)
		} else {
			v.c.say("%s: syncing", s.Name)
		}
	case manager.SessionProgress:
		p := ev.Data.(manager.Progress)
		if v.terminal {
			bar := v.bars[ev.Partnership]
			if bar == nil {
				return
			}
			if p.BytesTotal > 0 {
				bar.ChangeMax64(p.BytesTotal)
				bar.Set64(p.BytesDone)
			}
			desc := v.names[ev.Partnership] + ": looking for changes"
			if p.Phase == "syncing" {
				desc = fmt.Sprintf("%s: %s -> %s, %d of %d items", v.names[ev.Partnership], p.From, p.To, p.ItemsDone, p.ItemsTotal)
			}
			bar.Describe(desc)
			return
		}
		if time.Since(v.last[ev.Partnership]) < 2*time.Second || p.Phase != "syncing" {
			return
		}
		v.last[ev.Partnership] = time.Now()
		line := fmt.Sprintf("%s: %s -> %s: %d of %d items", v.names[ev.Partnership], p.From, p.To, p.ItemsDone, p.ItemsTotal)
		if p.BytesTotal > 0 {
			line += fmt.Sprintf(", %s of %s", humanBytes(p.BytesDone), humanBytes(p.BytesTotal))
		}
		if p.ETA > 0 {
			line += fmt.Sprintf(", about %s left", p.ETA.Round(time.Second))
		}
		v.c.say("%s", line)
	case manager.SessionFinished:
		if bar := v.bars[ev.Partnership]; bar != nil {
			bar.Finish()
			bar.Exit()
			delete(v.bars, ev.Partnership)
		}
	}
}

func (v *progressView) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, bar := range v.bars {
		bar.Exit()
		delete(v.bars, id)
	}
}
