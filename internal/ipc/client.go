package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrNoServer means nothing serves the socket: no file, or a file left by a process that is
// gone. The command then runs in its own process.
var ErrNoServer = errors.New("no Cradle serves this config folder")

// RefusedError is the server's refusal of a request, in its words.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Client is a connection to a serving Cradle, greeted. It runs one request.
type Client struct {
	c     *net.UnixConn
	hello Hello
	path  string
	wmu   sync.Mutex
}

// helloTimeout bounds the wait for the server's greeting: a process that accepts but does not
// answer (stopped, hung) is reported instead of waited on forever.
const helloTimeout = 15 * time.Second

// Dial connects to the socket at path and reads the server's greeting. It returns ErrNoServer
// when nothing listens there.
func Dial(path string) (*Client, error) {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ErrNoServer
		}
		return nil, fmt.Errorf("connect to the running Cradle at %s: %w", path, err)
	}
	cl := &Client{c: uc, path: path}
	uc.SetReadDeadline(time.Now().Add(helloTimeout))
	kind, p, err := readFrame(uc)
	uc.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		uc.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("the Cradle serving %s does not answer (for %s); if it hangs, stop it", path, helloTimeout)
		}
		if errors.Is(err, io.EOF) {
			// It went away between accepting and greeting: as good as none.
			return nil, ErrNoServer
		}
		return nil, fmt.Errorf("the running Cradle at %s: %w", path, err)
	case kind == frameRefused:
		uc.Close()
		return nil, &RefusedError{Msg: string(p)}
	case kind != frameHello:
		uc.Close()
		return nil, fmt.Errorf("the process at %s does not speak Cradle's protocol (frame %q)", path, kind)
	}
	if err := json.Unmarshal(p, &cl.hello); err != nil {
		uc.Close()
		return nil, fmt.Errorf("the process at %s does not speak Cradle's protocol: %w", path, err)
	}
	if cl.hello.Version != Version {
		uc.Close()
		return nil, &VersionError{Theirs: cl.hello.Version, PID: cl.hello.PID}
	}
	return cl, nil
}

// Hello returns the server's greeting.
func (cl *Client) Hello() Hello { return cl.hello }

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }

func (cl *Client) send(kind byte, p []byte) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	return writeFrame(cl.c, kind, p)
}

// Run sends req and streams the command's output to stdout and stderr until its exit status,
// which it returns. stdin is read only when the command asks for input. When ctx ends (Ctrl+C),
// the command is cancelled and Run still waits for its status. err is set when the request was
// refused or the connection broke; the connection is closed either way.
func (cl *Client) Run(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	defer cl.c.Close()
	req.Version = Version
	b, err := json.Marshal(req)
	if err != nil {
		return 1, err
	}
	if err := cl.send(frameRequest, b); err != nil {
		return 1, fmt.Errorf("send the command to the running Cradle (pid %d): %w", cl.hello.PID, err)
	}
	stop := context.AfterFunc(ctx, func() { cl.send(frameCancel, nil) })
	defer stop()
	reading := false
	var rmu sync.Mutex
	for {
		kind, p, err := readFrame(cl.c)
		if err != nil {
			return 1, fmt.Errorf("the running Cradle (pid %d) stopped before the command finished (%v)", cl.hello.PID, err)
		}
		switch kind {
		case frameStdout:
			stdout.Write(p)
		case frameStderr:
			stderr.Write(p)
		case frameRead:
			n, ok := readUint32(p)
			if !ok || n == 0 || n > MaxFrame {
				return 1, errors.New("the running Cradle sent a malformed frame")
			}
			rmu.Lock()
			if reading {
				rmu.Unlock()
				continue
			}
			reading = true
			rmu.Unlock()
			// Read stdin aside: output keeps flowing meanwhile.
			go func() {
				buf := make([]byte, n)
				var k int
				var rerr error
				if stdin == nil {
					rerr = io.EOF
				}
				for k == 0 && rerr == nil {
					k, rerr = stdin.Read(buf)
				}
				rmu.Lock()
				reading = false
				rmu.Unlock()
				if k > 0 {
					cl.send(frameStdin, buf[:k])
				} else {
					cl.send(frameStdin, nil)
				}
			}()
		case frameExit:
			n, ok := readUint32(p)
			if !ok {
				return 1, errors.New("the running Cradle sent a malformed exit status")
			}
			return int(int32(n)), nil
		case frameRefused:
			return 1, &RefusedError{Msg: string(p)}
		default:
			return 1, fmt.Errorf("the running Cradle sent an unknown frame %q", kind)
		}
	}
}
