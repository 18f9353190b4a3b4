package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cradle-sync/cradle/internal/ipc"
	"github.com/cradle-sync/cradle/manager"
)

// One Cradle per config folder. The first process that needs the config folder for as long as
// it runs (the window, the tray, cradle watch) becomes its host: it takes the folder's socket
// (internal/ipc) and then starts the manager. Every later cradle command of the user finds the
// socket and becomes a client: it sends its command line, working directory, terminal facts
// and a few environment variables, and the host runs the very same command (run, with an
// environ whose streams are the connection) against its own manager. So every command, and
// every command added later, has the same output, JSON and exit status either way, progress
// bars included (they are drawn from the host's manager events into the client's terminal).
// Commands that do not use the manager (autostart, --version, -h) always run where they are
// typed. With no host, commands run in their own process as before.

// environ is where a command line runs: its streams, working directory and terminal, the
// client's environment variables, and the host that serves it (nil when it runs in its own
// process).
type environ struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	dir            string
	stdoutTerm     ipc.Terminal
	stderrTerm     ipc.Terminal
	vars           map[string]string // served: the client's; nil: this process's environment
	host           *host
	// noManager: only help is wanted (the manual is being written); open fails.
	noManager bool
}

// errNoManager is open's answer while the manual is written: help needs no manager.
var errNoManager = errors.New("no manager while the manual is written")

// localEnviron is this process's own environment.
func localEnviron(stdout, stderr io.Writer) *environ {
	dir, _ := os.Getwd()
	return &environ{stdout: stdout, stderr: stderr, stdin: os.Stdin, dir: dir,
		stdoutTerm: terminalOf(stdout), stderrTerm: terminalOf(stderr)}
}

func terminalOf(w io.Writer) ipc.Terminal {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return ipc.Terminal{}
	}
	width, _, _ := term.GetSize(int(f.Fd()))
	return ipc.Terminal{TTY: true, Width: width}
}

// getenv reads one of the user's environment variables.
func (e *environ) getenv(name string) string {
	if e.vars != nil {
		return e.vars[name]
	}
	return os.Getenv(name)
}

// request is what a client sends for this command line.
func (e *environ) request(kind ipc.Kind, args []string) ipc.Request {
	env := map[string]string{}
	for _, n := range ipc.EnvNames {
		if v, ok := os.LookupEnv(n); ok {
			env[n] = v
		}
	}
	return ipc.Request{Kind: kind, Args: args, Dir: e.dir, Env: env, Stdout: e.stdoutTerm, Stderr: e.stderrTerm}
}

// serveElsewhere sends the command line to the Cradle that serves the config folder, if one
// does, and returns its exit status (served: true). With none it returns served false and the
// command runs here.
func (c *invocation) serveElsewhere() (code int, served bool) {
	g := globalsIn(*c.g, c.args)
	dir, err := configDirOf(g.config, c.env)
	if err != nil {
		return 0, false
	}
	return c.sendTo(ipc.SocketPath(dir))
}

// sendTo runs the command line in the Cradle serving path; served is false when none does.
func (c *invocation) sendTo(path string) (code int, served bool) {
	cl, err := ipc.Dial(path)
	if errors.Is(err, ipc.ErrNoServer) {
		return 0, false
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "cradle: %s\n", oneLine(err))
		return 1, true
	}
	code, err = cl.Run(c.ctx, c.env.request(c.kind, c.args), c.env.stdin, c.stdout, c.stderr)
	if err != nil {
		fmt.Fprintf(c.stderr, "cradle: %s\n", oneLine(err))
		return 1, true
	}
	return code, true
}

// host is this process when it serves the config folder: the manager, the socket, and the
// window it shows or may open later (gui.go).
type host struct {
	dir string
	m   *manager.Manager
	srv *ipc.Server
	// The devices this process emulates (absolute folders) and its --emulate-list file.
	emulated    []string
	emulateList string
	// The emulated devices' --emulate-profile and --emulate-tz.
	emulateProfile, emulateTZ string
	// ready is closed once the manager runs, or failed to start (startErr).
	ready    chan struct{}
	startErr error
	log      *slog.Logger
	gui      *gui
}

// becomeHost takes the config folder's socket for this process, then starts the manager with
// open: a command started meanwhile waits for the manager instead of opening the folder itself.
// When another process took the socket first, the command line goes to it instead (served is
// true, code its status). A socket that cannot be taken at all (no private runtime folder) is
// said once; the process then runs unserved, as before.
func becomeHost(c *invocation, open func() (*manager.Manager, error)) (h *host, code int, served bool) {
	dir, err := c.configDir()
	if err != nil {
		fmt.Fprintf(c.stderr, "cradle: %s\n", oneLine(err))
		return nil, 1, true
	}
	h = &host{dir: dir, ready: make(chan struct{}), log: c.logger(slog.LevelWarn), emulateList: c.g.emulateList,
		emulateProfile: c.g.emulateProfile, emulateTZ: c.g.emulateTZ}
	if h.emulateList != "" {
		h.emulateList = filepath.Clean(c.abs(h.emulateList))
	}
	for _, d := range c.g.emulate {
		h.emulated = append(h.emulated, filepath.Clean(c.abs(d)))
	}
	path := ipc.SocketPath(dir)
	for try := 0; ; try++ {
		h.srv, err = ipc.Listen(path, h.handle, ipc.Options{Program: versionLine(), Logger: h.log})
		if !errors.Is(err, ipc.ErrBusy) {
			break
		}
		// Another Cradle started at the same moment and holds the socket: it is the host.
		if code, served := c.sendTo(path); served || try == 20 {
			if !served {
				fmt.Fprintf(c.stderr, "cradle: another Cradle holds %s but does not answer\n", path)
				return nil, 1, true
			}
			return nil, code, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "cradle: other cradle commands cannot reach this one: %s\n", oneLine(err))
		h.srv = nil
	} else {
		go h.srv.Serve()
	}
	h.m, h.startErr = open()
	if h.m != nil {
		h.gui = newGUI(h.m, h.log)
	}
	close(h.ready)
	if h.startErr != nil {
		h.stopServing()
		fmt.Fprintf(c.stderr, "cradle: %s\n", oneLine(h.startErr))
		return nil, 1, true
	}
	return h, 0, false
}

// stopServing closes the socket: running served commands are cancelled and end first.
func (h *host) stopServing() {
	if h.srv != nil {
		h.srv.Close()
	}
}

// handle serves one client's request.
func (h *host) handle(ctx context.Context, req *ipc.Request, s *ipc.Stream) int {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return 1
	}
	if h.startErr != nil {
		fmt.Fprintf(s.Stderr, "cradle: %s\n", oneLine(h.startErr))
		return 1
	}
	e := &environ{stdout: s.Stdout, stderr: s.Stderr, stdin: s.Stdin, dir: req.Dir,
		stdoutTerm: req.Stdout, stderrTerm: req.Stderr, vars: req.Env, host: h}
	if e.vars == nil {
		e.vars = map[string]string{}
	}
	// The kind of request is in the arguments too: run reads them as it does here.
	return run(ctx, e, req.Args)
}

// covers checks that a served command's global flags name this host's folder and devices:
// a command cannot attach an emulated device to a Cradle that runs without it.
func (h *host) covers(c *invocation) error {
	if c.g.demo {
		return usageError("--demo opens a window of its own; quit the running Cradle first")
	}
	if c.g.config != "" {
		if dir, err := configDirOf(c.g.config, c.env); err == nil && dir != h.dir {
			return fmt.Errorf("the running Cradle (pid %d) serves %s, not %s", os.Getpid(), h.dir, dir)
		}
	}
	if l := c.g.emulateList; l != "" && filepath.Clean(c.abs(l)) != h.emulateList {
		return fmt.Errorf("the running Cradle (pid %d) was started without --emulate-list %s; quit it to run this command on its own", os.Getpid(), l)
	}
	for _, f := range []struct{ flag, theirs, ours string }{
		{"--emulate-profile", c.g.emulateProfile, h.emulateProfile},
		{"--emulate-tz", c.g.emulateTZ, h.emulateTZ},
	} {
		if f.theirs != "" && f.theirs != f.ours {
			return fmt.Errorf("the running Cradle (pid %d) emulates its devices without %s %s; quit it to run this command on its own", os.Getpid(), f.flag, f.theirs)
		}
	}
	var listed []string
	if h.emulateList != "" {
		if b, err := os.ReadFile(h.emulateList); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					listed = append(listed, filepath.Clean(l))
				}
			}
		}
	}
	dirs, err := c.emulated() // the same checks, and messages, as in a process of its own
	if err != nil {
		return err
	}
	for i, abs := range dirs {
		if !slices.Contains(h.emulated, abs) && !slices.Contains(listed, abs) {
			d := c.g.emulate[i]
			return fmt.Errorf("the running Cradle (pid %d) was started without the emulated device %s; start it with --emulate %s, or quit it to run this command on its own", os.Getpid(), d, d)
		}
	}
	return nil
}

// close stops serving, closes the window, then the manager (release).
func (h *host) close(release func()) {
	h.stopServing()
	h.gui.close()
	if release != nil {
		release()
	}
}
