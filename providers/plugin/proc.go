package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/hashicorp/go-plugin/runner"
)

// procRunner runs a plugin executable for go-plugin (its RunnerFunc), instead of go-plugin's own
// runner, so that the host knows the moment the process ends and how (exit status, signal):
//
//   - stdout and stderr are plain pipes handed to the child, so the process is reaped by a
//     goroutine of ours as soon as it exits, independently of go-plugin draining the pipes;
//   - stdin is a pipe whose write end only the host holds: when the host dies, the plugin reads
//     EOF and exits (see envParentWatch), so no plugin outlives Cradle.
type procRunner struct {
	path string
	dir  string
	env  []string // set by the RunnerFunc, before Start

	mu        sync.Mutex
	cancelled bool
	cmd       *exec.Cmd
	stdout    *os.File
	stderr    *eofReader
	parent    *os.File // the host's end of the child's stdin

	done   chan struct{} // closed when the process has been reaped
	errEOF chan struct{} // closed when stderr has been read to its end
	state  *os.ProcessState
	werr   error
}

var _ runner.Runner = (*procRunner)(nil)

func newProcRunner(path, dir string) *procRunner {
	return &procRunner{path: path, dir: dir, done: make(chan struct{}), errEOF: make(chan struct{})}
}

func (r *procRunner) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancelled {
		return fmt.Errorf("start %s: cancelled", r.path)
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		rd, wr, err := os.Pipe()
		if err == nil {
			files = append(files, rd, wr)
		}
		return rd, wr, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", r.path, err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return fmt.Errorf("start %s: %w", r.path, err)
	}
	inR, inW, err := pipe()
	if err != nil {
		closeAll()
		return fmt.Errorf("start %s: %w", r.path, err)
	}
	cmd := exec.Command(r.path)
	cmd.Env = r.env
	cmd.Dir = r.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("start %s: %w", r.path, err)
	}
	// The child has its own copies now; ours would keep the pipes open after it exits.
	_ = outW.Close()
	_ = errW.Close()
	_ = inR.Close()
	r.cmd, r.stdout, r.stderr, r.parent = cmd, outR, newEOFReader(errR, r.errEOF), inW
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.state, r.werr = cmd.ProcessState, err
		r.mu.Unlock()
		close(r.done)
	}()
	return nil
}

// cancel stops a start in progress: the process is killed, or never started.
func (r *procRunner) cancel() {
	r.mu.Lock()
	r.cancelled = true
	cmd := r.cmd
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
	}
}

func (r *procRunner) Diagnose(context.Context) string { return "" }

func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }

func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }

func (r *procRunner) Name() string { return r.path }

func (r *procRunner) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.werr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *procRunner) Kill(context.Context) error {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", r.path, err)
	}
	return nil
}

func (r *procRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(r.cmd.Process.Pid)
}

// pid returns the process ID, or 0 before the start.
func (r *procRunner) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// exitStatus says how the process ended ("exit status 2", "signal: killed"); "" while it runs.
func (r *procRunner) exitStatus() string {
	select {
	case <-r.done:
	default:
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != nil {
		return r.state.String()
	}
	if r.werr != nil {
		return r.werr.Error()
	}
	return "exited"
}

// release closes the host's ends of the pipes, once go-plugin no longer reads them.
func (r *procRunner) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range []*os.File{r.stdout, r.parent} {
		if f != nil {
			_ = f.Close()
		}
	}
	if r.stderr != nil {
		_ = r.stderr.Close()
	}
	r.stdout, r.parent, r.stderr = nil, nil, nil
}

// eofReader reports when its reader has hit the end: the plugin's stderr is then fully logged,
// and its last line is known.
type eofReader struct {
	f    *os.File
	once sync.Once
	eof  chan struct{}
}

func newEOFReader(f *os.File, eof chan struct{}) *eofReader { return &eofReader{f: f, eof: eof} }

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.f.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

func (e *eofReader) Close() error {
	e.once.Do(func() { close(e.eof) })
	return e.f.Close()
}
