package usbvm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host controllers the harness boots with. UMTP is no QEMU device: the guest runs
// uMTP-Responder as a USB gadget on its own dummy_hcd, a second MTP implementation beside QEMU's.
const (
	XHCI = "qemu-xhci"
	EHCI = "usb-ehci"
	UMTP = "umtp"
)

// DeviceID is the QEMU id of the MTP device.
const DeviceID = "mtp0"

// Machine is one QEMU run: a guest kernel and initramfs with QEMU's usb-mtp device on a host
// folder, behind the given USB host controller.
type Machine struct {
	Kernel Kernel
	// Initrd is the initramfs file (a base archive and a per-run archive concatenated).
	Initrd string
	// HCD is the host controller: XHCI or EHCI.
	HCD string
	// RootDir is the host folder usb-mtp serves (absolute).
	RootDir string
	// MemoryMB is the guest's memory; 0 means 1024.
	MemoryMB int
	// CPUs is the guest's virtual CPUs; 0 means 1.
	CPUs int
	// Work is a folder for QEMU's sockets (short path: unix socket names are limited).
	Work string
	// Timeout bounds the whole run: a guest that hangs is killed and the run fails.
	Timeout time.Duration
	// Console receives the guest's console as it comes (nil: discarded; Result keeps it too).
	Console io.Writer
	// Handlers answer the guest's control calls by verb, on top of the built-in ones (unplug,
	// plug, write, hash, list, remove, log).
	Handlers map[string]Handler
	// Trace names QEMU trace events to enable (patterns such as "usb_mtp_*"); QEMU writes them
	// to its stderr, which is kept in qemu.log in Work.
	Trace []string
}

// Handler answers one control call from the guest.
type Handler func(ctx context.Context, s *Session, args []string) (string, error)

// Session is a running machine as handlers see it.
type Session struct {
	m       *Machine
	qmp     *QMP
	started time.Time
	logf    func(format string, args ...any)
}

// Result is what a run produced.
type Result struct {
	// Console is everything the guest printed on its console.
	Console string
	// Status is the guest program's exit status (from the exit marker).
	Status int
	// Elapsed is the wall time from QEMU's start to its exit.
	Elapsed time.Duration
	// Calls counts the control calls the host answered.
	Calls int
}

// ErrGuestFailed says the guest program ran and exited non-zero.
var ErrGuestFailed = errors.New("guest program failed")

// DeviceProps are device_add's arguments for the MTP device on this machine's controller.
func (m *Machine) DeviceProps() map[string]any {
	return map[string]any{
		"driver":   "usb-mtp",
		"id":       DeviceID,
		"bus":      "hcd.0",
		"rootdir":  m.RootDir,
		"readonly": false,
		"desc":     "Storage",
	}
}

func (m *Machine) args(qmpSock, ctlSock string) []string {
	mem := m.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	args := []string{
		"-accel", "tcg", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(max(m.CPUs, 1)),
		"-nodefaults", "-display", "none", "-no-reboot", "-nic", "none", "-rtc", "base=utc",
		"-kernel", m.Kernel.Image, "-initrd", m.Initrd,
		"-append", "console=ttyS0 quiet loglevel=1 panic=-1",
		"-serial", "stdio",
		"-serial", "unix:" + ctlSock + ",server=on,wait=off",
		"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
	}
	if m.HCD != UMTP {
		args = append(args, "-device", m.HCD+",id=hcd",
			"-device", fmt.Sprintf("usb-mtp,id=%s,bus=hcd.0,rootdir=%s,readonly=off,desc=Storage", DeviceID, m.RootDir))
	}
	for _, t := range m.Trace {
		args = append(args, "-trace", "enable="+t)
	}
	return args
}

// Run boots the machine and serves the guest's control calls until QEMU exits. It fails when QEMU
// cannot start, dies (an assertion in the device model, a signal), hangs past the timeout, or the
// guest never prints its exit marker; it returns ErrGuestFailed (with the Result) when the guest
// program exits non-zero.
func (m *Machine) Run(ctx context.Context) (*Result, error) {
	if m.HCD != XHCI && m.HCD != EHCI && m.HCD != UMTP {
		return nil, fmt.Errorf("unknown host controller %q", m.HCD)
	}
	if !filepath.IsAbs(m.RootDir) {
		return nil, fmt.Errorf("usb-mtp rootdir %q is not absolute", m.RootDir)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, errors.New("qemu-system-x86_64 is missing: run `make deps-usbvm`")
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	qmpSock := filepath.Join(m.Work, "qmp.sock")
	ctlSock := filepath.Join(m.Work, "ctl.sock")
	for _, s := range []string{qmpSock, ctlSock} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	cmd := exec.Command(qemu, m.args(qmpSock, ctlSock)...)
	// usb-mtp formats dates in QEMU's local time zone; the guest has no zone data and uses UTC.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdin = nil
	qlog, err := os.Create(filepath.Join(m.Work, "qemu.log"))
	if err != nil {
		return nil, err
	}
	defer qlog.Close()
	var stderr tailBuffer
	cmd.Stderr = io.MultiWriter(qlog, &stderr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	exited := make(chan error, 1)
	var console consoleLog
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		console.copy(stdout, m.Console)
	}()
	go func() {
		<-consoleDone // Wait closes the pipe: read everything first
		exited <- cmd.Wait()
	}()
	kill := func() {
		_ = cmd.Process.Kill()
	}

	res := &Result{}
	fail := func(err error) (*Result, error) {
		kill()
		<-exited
		res.Console = console.String()
		res.Elapsed = time.Since(start)
		return res, fmt.Errorf("%w\n%s", err, tail(res.Console, stderr.String()))
	}

	dialCtx, dialCancel := context.WithTimeout(ctx, 20*time.Second)
	q, err := DialQMP(dialCtx, qmpSock)
	dialCancel()
	if err != nil {
		return fail(fmt.Errorf("QEMU's monitor: %w", err))
	}
	defer q.Close()
	var ctlConn net.Conn
	for {
		var d net.Dialer
		ctlConn, err = d.DialContext(ctx, "unix", ctlSock)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("control socket %s: %w", ctlSock, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer ctlConn.Close()

	s := &Session{m: m, qmp: q, started: start, logf: func(format string, args ...any) {
		if m.Console != nil {
			fmt.Fprintf(m.Console, "[host %6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		}
	}}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.serve(ctx, ctlConn, &res.Calls) }()

	select {
	case err := <-exited:
		res.Console = console.String()
		res.Elapsed = time.Since(start)
		if err != nil {
			return res, fmt.Errorf("QEMU died: %w\n%s", err, tail(res.Console, stderr.String()))
		}
	case err := <-serveErr:
		return fail(fmt.Errorf("control channel: %w", err))
	case <-ctx.Done():
		return fail(fmt.Errorf("QEMU hung: no exit after %s", timeout))
	}
	st, ok := console.exitStatus()
	if !ok {
		return res, fmt.Errorf("the guest never printed its exit marker (kernel panic or crash?)\n%s", tail(res.Console, stderr.String()))
	}
	res.Status = st
	if st != 0 {
		return res, fmt.Errorf("%w with status %d", ErrGuestFailed, st)
	}
	return res, nil
}

// serve answers control calls until the connection ends or ctx is done.
func (s *Session) serve(ctx context.Context, conn net.Conn, calls *int) error {
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				<-ctx.Done() // QEMU closed the socket: it is exiting; Run sees that first
				return nil
			}
			return err
		}
		c, ok, err := parseCall(line)
		if !ok {
			continue
		}
		if err != nil {
			return err
		}
		*calls++
		text, herr := s.handle(ctx, c)
		if herr != nil {
			s.logf("%s %q: error: %v", c.Verb, c.Args, herr)
		} else {
			s.logf("%s %q: %s", c.Verb, c.Args, text)
		}
		if _, err := io.WriteString(conn, encodeReply(c.ID, text, herr)); err != nil {
			return err
		}
	}
}

func (s *Session) handle(ctx context.Context, c Call) (string, error) {
	if h, ok := s.m.Handlers[c.Verb]; ok {
		return h(ctx, s, c.Args)
	}
	h, ok := builtinHandlers[c.Verb]
	if !ok {
		return "", fmt.Errorf("unknown control verb %q", c.Verb)
	}
	return h(ctx, s, c.Args)
}

// RootPath returns the host path of a '/'-separated path inside the device's folder; it refuses
// paths that leave the folder.
func (s *Session) RootPath(rel string) (string, error) {
	p := filepath.Join(s.m.RootDir, filepath.FromSlash(rel))
	if p != s.m.RootDir && !strings.HasPrefix(p, s.m.RootDir+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q leaves the device folder", rel)
	}
	return p, nil
}

// Unplug removes the MTP device from the machine (QMP device_del) and waits until QEMU did.
func (s *Session) Unplug(ctx context.Context) error {
	return s.qmp.DeviceDel(ctx, DeviceID)
}

// Plug adds the MTP device again with the same properties.
func (s *Session) Plug(ctx context.Context) error {
	return s.qmp.DeviceAdd(ctx, s.m.DeviceProps())
}

var builtinHandlers = map[string]Handler{
	"unplug": func(ctx context.Context, s *Session, _ []string) (string, error) {
		return "", s.Unplug(ctx)
	},
	"plug": func(ctx context.Context, s *Session, _ []string) (string, error) {
		return "", s.Plug(ctx)
	},
	// write PATH SIZE: put Content(PATH, SIZE) at PATH in the device's folder (temp file, then
	// rename, so usb-mtp never sees a half-written file).
	"write": func(ctx context.Context, s *Session, args []string) (string, error) {
		if len(args) != 2 {
			return "", errors.New("write wants PATH SIZE")
		}
		size, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return "", err
		}
		p, err := s.RootPath(args[0])
		if err != nil {
			return "", err
		}
		return "", WriteContentFile(p, args[0], size)
	},
	// hash PATH: the hex SHA-256 and size of the file, or "absent".
	"hash": func(ctx context.Context, s *Session, args []string) (string, error) {
		if len(args) != 1 {
			return "", errors.New("hash wants PATH")
		}
		p, err := s.RootPath(args[0])
		if err != nil {
			return "", err
		}
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return "absent", nil
		}
		if err != nil {
			return "", err
		}
		defer f.Close()
		h, n, err := HashReader(f)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %d", h, n), nil
	},
	// list DIR: the names in a folder of the device's folder, '/'-terminated for folders.
	"list": func(ctx context.Context, s *Session, args []string) (string, error) {
		if len(args) != 1 {
			return "", errors.New("list wants DIR")
		}
		p, err := s.RootPath(args[0])
		if err != nil {
			return "", err
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return "", err
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() {
				n += "/"
			}
			names = append(names, n)
		}
		return strings.Join(names, "\n"), nil
	},
	// remove PATH: delete a file or an empty folder in the device's folder.
	"remove": func(ctx context.Context, s *Session, args []string) (string, error) {
		if len(args) != 1 {
			return "", errors.New("remove wants PATH")
		}
		p, err := s.RootPath(args[0])
		if err != nil {
			return "", err
		}
		return "", os.Remove(p)
	},
	// log TEXT: print on the host's log, with the host's clock.
	"log": func(ctx context.Context, s *Session, args []string) (string, error) {
		return strings.Join(args, " "), nil
	},
}

// WriteContentFile writes Content(name, size) to path through a temporary file in the same folder
// and a rename.
func WriteContentFile(path, name string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".usbvm-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, Content(name, size)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// consoleLog keeps the console and finds the exit marker in it.
type consoleLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *consoleLog) copy(r io.Reader, also io.Writer) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.ReplaceAll(line, "\r", "")
			c.mu.Lock()
			c.buf.WriteString(line)
			c.mu.Unlock()
			if also != nil {
				io.WriteString(also, line)
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *consoleLog) exitStatus() (int, bool) {
	s := c.String()
	i := strings.LastIndex(s, ExitMarker)
	if i < 0 {
		return 0, false
	}
	rest := s[i+len(ExitMarker):]
	if j := strings.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	if err != nil {
		return 0, false
	}
	return n, true
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8<<10 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// tail returns the last lines of the console and QEMU's stderr for an error message.
func tail(console, stderr string) string {
	lines := strings.Split(strings.TrimRight(console, "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	out := "--- last console lines:\n" + strings.Join(lines, "\n")
	if strings.TrimSpace(stderr) != "" {
		out += "\n--- QEMU stderr:\n" + strings.TrimSpace(stderr)
	}
	return out
}
