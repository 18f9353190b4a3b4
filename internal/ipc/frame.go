// Package ipc is the local socket between the Cradle process that owns a config folder (the
// window, the tray or `cradle watch`) and every other cradle command of the same user: a unix
// socket in the user's runtime folder, mode 0600, each connection's peer uid checked.
//
// One connection carries one command. The server greets (a hello frame), the client sends its
// request (the command line, working directory and terminal facts), then the server streams
// the command's stdout and stderr back, asks for stdin only when the command reads it, and ends
// with the exit status. The client may cancel (Ctrl+C) at any time; a client that goes away
// cancels too.
//
// Every frame is a kind byte, a big-endian uint32 length and that many bytes (at most
// MaxFrame). Nothing a peer sends can make the server allocate more than that, panic or stop
// serving others: DecodeRequest is fuzzed.
//
// The package imports nothing of Cradle's.
package ipc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Version is the protocol's version. A client and a server of different versions (the program
// was upgraded while an older one runs) refuse each other with a message saying so.
const Version = 1

// MaxFrame is the largest payload of a frame.
const MaxFrame = 1 << 20

// Frame kinds.
const (
	frameHello   byte = 'H' // server -> client: Hello (JSON), first
	frameRequest byte = 'Q' // client -> server: Request (JSON), first
	frameStdout  byte = 'O' // server -> client: bytes of stdout
	frameStderr  byte = 'E' // server -> client: bytes of stderr
	frameRead    byte = 'R' // server -> client: the command reads stdin; payload: uint32 most bytes
	frameStdin   byte = 'I' // client -> server: bytes of stdin; empty means end of input
	frameCancel  byte = 'C' // client -> server: the user interrupted the command
	frameExit    byte = 'X' // server -> client: the exit status (int32); last
	frameRefused byte = 'F' // server -> client: the request is refused (text); last
)

// Kind is what a request asks for.
type Kind string

// Kinds of request.
const (
	// KindRun runs a command (Request.Args) as if in the client's process.
	KindRun Kind = "run"
	// KindWindow shows the window: raised when it is open, opened when the process runs
	// without one.
	KindWindow Kind = "window"
	// KindBackground asks the process to keep running in the background with its tray icon
	// (when the desktop has a tray), without showing the window.
	KindBackground Kind = "background"
)

// Terminal describes one of the client's output streams.
type Terminal struct {
	// TTY tells whether it is a terminal (progress bars are drawn on terminals only).
	TTY bool `json:"tty,omitempty"`
	// Width is the terminal's width in columns, 0 when unknown.
	Width int `json:"width,omitempty"`
}

// Request is what a client asks of the server.
type Request struct {
	Version int      `json:"version"`
	Kind    Kind     `json:"kind"`
	Args    []string `json:"args,omitempty"`
	// Dir is the client's working directory: relative paths in Args are relative to it.
	Dir string `json:"dir"`
	// Env holds the few environment variables of the client's that a command or a window
	// needs (the display, the session bus, the terminal); see EnvNames.
	Env    map[string]string `json:"env,omitempty"`
	Stdout Terminal          `json:"stdout"`
	Stderr Terminal          `json:"stderr"`
}

// EnvNames are the environment variables a request may carry.
var EnvNames = []string{"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "XDG_CURRENT_DESKTOP", "TERM", "COLUMNS", "NO_COLOR", "LANG", "LC_ALL", "LC_MESSAGES"}

// Hello is the server's greeting.
type Hello struct {
	Version int `json:"version"`
	// PID is the serving process, for messages.
	PID int `json:"pid"`
	// Program is the serving program's version ("0.1.0 (abc1234)").
	Program string `json:"program,omitempty"`
}

// Limits of a request, so that a request is bounded however it was made.
const (
	maxArgs   = 4096
	maxArgLen = 64 << 10
	maxEnvLen = 4096
)

// DecodeRequest reads a request from a frame's payload and checks it: the version, a known
// kind, an absolute working directory, and sizes within bounds. Its errors say what is wrong.
func DecodeRequest(b []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	if r.Version != Version {
		return nil, &VersionError{Theirs: r.Version}
	}
	switch r.Kind {
	case KindRun, KindWindow, KindBackground:
	default:
		return nil, fmt.Errorf("malformed request: unknown kind %q", r.Kind)
	}
	if len(r.Args) > maxArgs {
		return nil, fmt.Errorf("malformed request: %d arguments", len(r.Args))
	}
	for _, a := range r.Args {
		if len(a) > maxArgLen || !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("malformed request: an argument is too long or not text")
		}
	}
	if !filepath.IsAbs(r.Dir) || strings.IndexByte(r.Dir, 0) >= 0 {
		return nil, fmt.Errorf("malformed request: working directory %q is not an absolute path", r.Dir)
	}
	allowed := map[string]bool{}
	for _, n := range EnvNames {
		allowed[n] = true
	}
	for k, v := range r.Env {
		if !allowed[k] || len(v) > maxEnvLen || strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("malformed request: environment variable %q", k)
		}
	}
	if r.Stdout.Width < 0 || r.Stderr.Width < 0 || r.Stdout.Width > 1<<16 || r.Stderr.Width > 1<<16 {
		return nil, errors.New("malformed request: terminal width")
	}
	return &r, nil
}

// VersionError is a peer speaking another version of the protocol.
type VersionError struct {
	Theirs int
	// PID is the server's, when the client saw the mismatch.
	PID int
}

func (e *VersionError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("the running Cradle (pid %d) is another version of the program (protocol %d, this one %d); quit it and start it again to use this one", e.PID, e.Theirs, Version)
	}
	return fmt.Sprintf("the command is another version of the program (protocol %d, this one %d); start Cradle again after an upgrade", e.Theirs, Version)
}

// errFrameTooLarge is a frame whose length is over MaxFrame.
var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one frame.
func readFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w (%d bytes)", errFrameTooLarge, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// writeFrame writes one frame (the caller serialises writers).
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return errFrameTooLarge
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// writeChunks writes p as frames of kind, MaxFrame bytes at most each.
func writeChunks(w io.Writer, kind byte, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
		if err := writeFrame(w, kind, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func uint32Payload(n uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, n)
}

func readUint32(p []byte) (uint32, bool) {
	if len(p) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p), true
}
