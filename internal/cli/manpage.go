package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteManPage writes cradle(1), in roff, from the command table: each command's summary and
// its own help (`cradle COMMAND -h`), the global flags, and what the command line promises
// (exit status, one Cradle per user, files). date is the manual's date.
func WriteManPage(w io.Writer, date time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH CRADLE 1 %q %q \"User Commands\"\n", date.UTC().Format("2006-01-02"), "cradle "+Version)
	b.WriteString(".SH NAME\ncradle \\- sync phones, cameras and media players with this computer\n")
	b.WriteString(".SH SYNOPSIS\n.B cradle\n[\\fIglobal options\\fR] [\\fIcommand\\fR] [\\fIargs\\fR]\n")
	para(&b, "DESCRIPTION",
		"Cradle syncs the partnerships you set up between folders on this computer and handheld devices "+
			"that speak MTP over USB (phones, cameras, e-readers, media players): a folder with a folder on the "+
			"device, the camera roll into Pictures, the contacts. Without a command, cradle opens its window.",
		"One Cradle runs per user and config folder. The first Cradle process (the window, the tray started "+
			"at login with --background, or cradle watch) serves every other cradle command over a socket in "+
			"the user's runtime folder: the commands print the same output and exit with the same status as "+
			"when they run on their own. Running cradle again shows the window of the Cradle already running.")
	b.WriteString(".SH COMMANDS\n")
	for _, name := range commandOrder {
		cmd := commands[name]
		fmt.Fprintf(&b, ".SS %s\n%s.\n", roff(name), roff(capitalize(cmd.summary)))
		help := commandHelp(name, cmd)
		if help != "" {
			b.WriteString(".PP\n.nf\n")
			for _, l := range strings.Split(strings.TrimRight(help, "\n"), "\n") {
				b.WriteString(roffLine(l) + "\n")
			}
			b.WriteString(".fi\n")
		}
	}
	b.WriteString(".SH OPTIONS\nThe global options may also come after the command.\n.PP\n.nf\n")
	g := &globals{}
	fs := newTopFlags(g, io.Discard)
	var flags bytes.Buffer
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	for _, l := range strings.Split(strings.TrimRight(flags.String(), "\n"), "\n") {
		b.WriteString(roffLine(l) + "\n")
	}
	b.WriteString(".fi\n")
	para(&b, "EXIT STATUS",
		"0 when the command did what it was asked (a sync that leaves conflicts for you included), "+
			"1 when it failed (the message says why and what to do), 2 for a mistake in the command line.")
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"~/.config/cradle/", "settings (settings.toml), history and the state of each partnership; another with --config"},
		{"$XDG_RUNTIME_DIR/cradle/", "the sockets of the running Cradles (/tmp/cradle-UID without a runtime folder)"},
		{"~/.config/autostart/io.github.cradle_sync.cradle.desktop", "the start at login (cradle autostart on)"},
		{"/usr/lib/systemd/user/cradle.service", "cradle watch as a systemd user service: systemctl \\-\\-user enable \\-\\-now cradle"},
		{"/usr/lib/udev/rules.d/69-cradle-mtp.rules", "lets the user at the seat open MTP devices"},
	} {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roff(f[0]), f[1])
	}
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B CRADLE_NO_HARDWARE\nWhen set, only \\-\\-emulate devices are seen (for scripts and tests).\n")
	b.WriteString(".SH SEE ALSO\n.BR udevadm (8),\n.BR systemctl (1)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// commandHelp is what `cradle NAME -h` prints, without a manager.
func commandHelp(name string, cmd command) string {
	var out bytes.Buffer
	e := &environ{stdout: &out, stderr: &out, dir: "/", noManager: true}
	c := &invocation{ctx: context.Background(), g: &globals{}, name: name, stdout: &out, stderr: &out, env: e}
	cmd.run(c, []string{"-h"})
	if name == "partner" {
		// Its own help lists add, list, remove; add's flags come from the provider declarations.
		out.WriteString("\n")
		cmdPartner(c, []string{"add", "-h"})
	}
	return withoutGlobalFlags(out.String())
}

// withoutGlobalFlags drops the global flags from a command's help (the manual lists them once).
func withoutGlobalFlags(help string) string {
	global := map[string]bool{}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	(&globals{}).register(fs)
	fs.VisitAll(func(f *flag.Flag) { global[f.Name] = true })
	var out []string
	skipping := false
	for _, l := range strings.Split(help, "\n") {
		if name, ok := strings.CutPrefix(l, "  -"); ok {
			name, _, _ = strings.Cut(name, " ")
			skipping = global[name]
		} else if !strings.HasPrefix(l, "    ") {
			skipping = false
		}
		if !skipping {
			out = append(out, l)
		}
	}
	// A "Flags:" heading left with no flag under it goes too.
	var kept []string
	for i, l := range out {
		if l == "Flags:" {
			next := ""
			for _, m := range out[i+1:] {
				if strings.TrimSpace(m) != "" {
					next = m
					break
				}
			}
			if !strings.HasPrefix(next, "  -") {
				continue
			}
		}
		kept = append(kept, l)
	}
	return strings.TrimRight(strings.Join(kept, "\n"), "\n") + "\n"
}

func para(b *strings.Builder, section string, ps ...string) {
	fmt.Fprintf(b, ".SH %s\n", section)
	for i, p := range ps {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roff(p) + "\n")
	}
}

// roff escapes text for roff: backslashes, and minus signs as \-.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine escapes one line of a no-fill block: a line starting with a dot or a quote would be
// a request.
func roffLine(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
