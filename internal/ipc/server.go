package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy means another process serves that socket already (it holds the socket's lock).
var ErrBusy = errors.New("another Cradle serves this config folder")

// Handler runs one request and returns its exit status. ctx ends when the client cancels or
// goes away, or when the server closes. s's writers send to the client; its reader asks the
// client for stdin.
type Handler func(ctx context.Context, req *Request, s *Stream) int

// Stream is one request's connection to its client.
type Stream struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
}

// handshakeTimeout bounds how long a connection may take to send its request.
const handshakeTimeout = 10 * time.Second

// Server serves one socket. Create it with Listen, run it with Serve, stop it with Close.
type Server struct {
	path    string
	ln      *net.UnixListener
	lock    *os.File
	handler Handler
	hello   Hello
	log     *slog.Logger
	uid     int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Options tune a Server.
type Options struct {
	// Program is the program's version, told to clients in the greeting.
	Program string
	// Logger receives what clients did wrong; nil means slog.Default().
	Logger *slog.Logger
}

// Listen takes the socket at path for this process. It holds path+".lock" (flock) while it
// serves: a second process gets ErrBusy. A socket file left by a process that was killed is
// removed and taken over. The folder is created private to the user, the socket is mode 0600,
// and each connection's peer must be this user.
func Listen(path string, h Handler, opts Options) (*Server, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s is longer than a unix socket allows (%d bytes); set XDG_RUNTIME_DIR to a shorter folder", path, maxSocketPath)
	}
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s.lock: %w", path, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	// Holding the lock, whatever socket file is there was left by a process that is gone.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, fmt.Errorf("remove the stale socket %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The folder is private already; the mode keeps the socket so if the folder is not.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	s := &Server{path: path, ln: ln, lock: lock, handler: h, log: opts.Logger, uid: os.Getuid(),
		hello: Hello{Version: Version, PID: os.Getpid(), Program: opts.Program}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until Close, each on its own goroutine.
func (s *Server) Serve() {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("ipc: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// closeWait bounds how long Close waits for the running requests to end once cancelled.
const closeWait = 10 * time.Second

// Close stops accepting, cancels the running requests and waits (a bounded time) for them to
// send their exit status, then removes the socket and releases its lock.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.ln.Close() // removes the socket file
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
			s.log.Warn("ipc: requests still running at close")
		}
		s.lock.Close()
	})
	return nil
}

// PeerError is a connection from another user, refused.
type PeerError struct {
	UID, Want int
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("this Cradle belongs to another user (uid %d); a connection from uid %d is refused", e.Want, e.UID)
}

// checkPeer accepts the peer uid when it is this process's own uid (own).
func checkPeer(uid uint32, own int) error {
	if int64(uid) != int64(own) {
		return &PeerError{UID: int(uid), Want: own}
	}
	return nil
}

// peerCred reads the connecting process's credentials (SO_PEERCRED).
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// conn is one client's connection: writes are serialised; the reader goroutine delivers stdin.
type conn struct {
	c      *net.UnixConn
	wmu    sync.Mutex
	stdin  chan []byte // frames of stdin from the reader goroutine
	cancel context.CancelFunc
}

func (c *conn) send(kind byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeFrame(c.c, kind, p)
}

func (c *conn) sendChunks(kind byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeChunks(c.c, kind, p)
}

func (s *Server) serveConn(uc *net.UnixConn) {
	defer uc.Close()
	c := &conn{c: uc, stdin: make(chan []byte, 1)}
	cred, err := peerCred(uc)
	if err == nil {
		err = checkPeer(cred.Uid, s.uid)
	}
	if err != nil {
		s.log.Warn("ipc: connection refused", "err", err)
		c.send(frameRefused, []byte(err.Error()))
		return
	}
	hello, _ := json.Marshal(s.hello)
	if err := c.send(frameHello, hello); err != nil {
		return
	}
	uc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	kind, payload, err := readFrame(uc)
	if err != nil {
		s.log.Debug("ipc: no request", "err", err)
		return
	}
	uc.SetReadDeadline(time.Time{})
	if kind != frameRequest {
		s.log.Warn("ipc: malformed request", "frame", kind)
		c.send(frameRefused, []byte(fmt.Sprintf("malformed request: frame %q before the request", kind)))
		return
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		s.log.Warn("ipc: request refused", "err", err)
		c.send(frameRefused, []byte(err.Error()))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c.cancel = cancel
	go c.readClient()
	st := &Stream{
		Stdout: &frameWriter{c: c, kind: frameStdout},
		Stderr: &frameWriter{c: c, kind: frameStderr},
		Stdin:  &stdinReader{c: c, ctx: ctx},
	}
	code := s.handler(ctx, req, st)
	c.send(frameExit, uint32Payload(uint32(int32(code))))
}

// readClient reads the client's frames after the request: stdin, cancel. The client going
// away, or anything it should not send, cancels the request.
func (c *conn) readClient() {
	defer c.cancel()
	defer close(c.stdin)
	for {
		kind, p, err := readFrame(c.c)
		if err != nil {
			return
		}
		switch kind {
		case frameCancel:
			c.cancel()
		case frameStdin:
			select {
			case c.stdin <- p:
			default:
				// Stdin the command did not ask for: a confused client.
				return
			}
		default:
			return
		}
	}
}

// frameWriter sends writes as frames of one kind.
type frameWriter struct {
	c    *conn
	kind byte
}

func (w *frameWriter) Write(p []byte) (int, error) {
	if err := w.c.sendChunks(w.kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stdinReader asks the client for stdin as the command reads it.
type stdinReader struct {
	c   *conn
	ctx context.Context
	mu  sync.Mutex
	buf []byte
	eof bool
}

func (r *stdinReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		if err := r.c.send(frameRead, uint32Payload(uint32(min(len(p), MaxFrame)))); err != nil {
			return 0, err
		}
		select {
		case b, ok := <-r.c.stdin:
			if !ok {
				return 0, io.ErrUnexpectedEOF
			}
			if len(b) == 0 {
				r.eof = true
				return 0, io.EOF
			}
			r.buf = b
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
