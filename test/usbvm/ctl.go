package usbvm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// The control channel is the guest's second serial port (/dev/ttyS1), a unix socket on the host.
// The guest asks, the host answers, one line each way:
//
//	USBVM-CALL <id> <verb> <arg>...
//	USBVM-REPLY <id> ok <text>
//	USBVM-REPLY <id> err <text>
//
// Arguments and text are URL path-escaped, so they hold no spaces or newlines. Verbs are what the
// host's handler knows (see Session.handle): unplug and plug the MTP device over QMP, write or
// hash a file in the device's host folder, and so on.
const (
	callPrefix  = "USBVM-CALL "
	replyPrefix = "USBVM-REPLY "
)

// Markers on the console (the guest's first serial port). The guest's /init prints ExitMarker with
// its test program's exit status just before it powers off.
const (
	BeginMarker = "USBVM-BEGIN"
	ExitMarker  = "USBVM-EXIT "
)

// GuestCtlDevice is the guest's end of the control channel.
const GuestCtlDevice = "/dev/ttyS1"

// Call is one request from the guest.
type Call struct {
	ID   int
	Verb string
	Args []string
}

func (c Call) encode() string {
	var b strings.Builder
	b.WriteString(callPrefix)
	b.WriteString(strconv.Itoa(c.ID))
	b.WriteByte(' ')
	b.WriteString(url.PathEscape(c.Verb))
	for _, a := range c.Args {
		b.WriteByte(' ')
		b.WriteString(escapeArg(a))
	}
	b.WriteByte('\n')
	return b.String()
}

// escapeArg escapes so that the empty string survives the round trip.
func escapeArg(s string) string {
	if s == "" {
		return "%00empty"
	}
	return url.PathEscape(s)
}

func unescapeArg(s string) (string, error) {
	if s == "%00empty" {
		return "", nil
	}
	return url.PathUnescape(s)
}

// parseCall parses one line of the guest; ok is false for a line that is not a call (noise on the
// port, say).
func parseCall(line string) (c Call, ok bool, err error) {
	i := strings.Index(line, callPrefix)
	if i < 0 {
		return Call{}, false, nil
	}
	f := strings.Fields(line[i+len(callPrefix):])
	if len(f) < 2 {
		return Call{}, true, fmt.Errorf("control call %q: want an id and a verb", line)
	}
	c.ID, err = strconv.Atoi(f[0])
	if err != nil {
		return Call{}, true, fmt.Errorf("control call %q: bad id: %w", line, err)
	}
	if c.Verb, err = unescapeArg(f[1]); err != nil {
		return Call{}, true, fmt.Errorf("control call %q: %w", line, err)
	}
	for _, a := range f[2:] {
		s, err := unescapeArg(a)
		if err != nil {
			return Call{}, true, fmt.Errorf("control call %q: %w", line, err)
		}
		c.Args = append(c.Args, s)
	}
	return c, true, nil
}

func encodeReply(id int, text string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s%d err %s\n", replyPrefix, id, escapeArg(err.Error()))
	}
	return fmt.Sprintf("%s%d ok %s\n", replyPrefix, id, escapeArg(text))
}

// Ctl is the guest's end of the control channel. It is safe for use from several goroutines;
// calls are answered one at a time, in order.
type Ctl struct {
	w io.Writer

	mu     sync.Mutex // serialises calls
	nextID int

	lines chan string
	done  chan struct{}
	err   error
}

// NewCtl starts reading the host's replies from rw (the guest's /dev/ttyS1 in raw mode). The
// reader goroutine ends when rw's reads fail (the caller closes rw).
func NewCtl(rw io.ReadWriter) *Ctl {
	c := &Ctl{w: rw, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		r := bufio.NewReader(rw)
		for {
			line, err := r.ReadString('\n')
			if strings.Contains(line, replyPrefix) {
				c.lines <- strings.TrimRight(line, "\r\n")
			}
			if err != nil {
				c.err = err
				return
			}
		}
	}()
	return c
}

// ErrHost wraps the error text a host handler answered.
var ErrHost = errors.New("host")

// Call asks the host to do verb with args and waits for its answer.
func (c *Ctl) Call(ctx context.Context, verb string, args ...string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	if _, err := io.WriteString(c.w, Call{ID: id, Verb: verb, Args: args}.encode()); err != nil {
		return "", fmt.Errorf("control call %s: %w", verb, err)
	}
	for {
		select {
		case line := <-c.lines:
			f := strings.Fields(line[strings.Index(line, replyPrefix)+len(replyPrefix):])
			if len(f) != 3 {
				return "", fmt.Errorf("control call %s: malformed reply %q", verb, line)
			}
			if rid, err := strconv.Atoi(f[0]); err != nil || rid != id {
				continue // the answer to an abandoned call
			}
			text, err := unescapeArg(f[2])
			if err != nil {
				return "", fmt.Errorf("control call %s: malformed reply %q: %w", verb, line, err)
			}
			if f[1] != "ok" {
				return "", fmt.Errorf("control call %s %q: %w: %s", verb, args, ErrHost, text)
			}
			return text, nil
		case <-c.done:
			return "", fmt.Errorf("control call %s: channel closed: %v", verb, c.err)
		case <-ctx.Done():
			return "", fmt.Errorf("control call %s: %w", verb, ctx.Err())
		}
	}
}

// Content returns the deterministic content of a test file called name with size bytes: both
// sides of the harness generate it, so the host checks by hash what the guest wrote and the
// other way round, without shipping the data.
func Content(name string, size int64) io.Reader {
	seed := sha256.Sum256([]byte(name))
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// ContentHash is the hex SHA-256 of Content(name, size).
func ContentHash(name string, size int64) string {
	h := sha256.New()
	if _, err := io.Copy(h, Content(name, size)); err != nil {
		panic(err) // reading from a ChaCha8 never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HashReader returns the hex SHA-256 of what r yields and the byte count.
func HashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
