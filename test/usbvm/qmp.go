package usbvm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// QMP is a client of QEMU's machine protocol over a unix socket: commands with their answers, and
// the asynchronous events QEMU sends in between (DEVICE_DELETED after a device_del).
//
// QMP is safe for use from several goroutines; commands are sent one at a time.
type QMP struct {
	conn net.Conn

	mu      sync.Mutex // serialises commands
	nextID  int
	replies chan qmpMessage

	evMu   sync.Mutex
	events []qmpMessage
	evCond chan struct{} // closed and replaced when an event arrives

	done    chan struct{} // closed when the reader stops
	readErr error
}

type qmpMessage struct {
	ID     string          `json:"id,omitempty"`
	Return json.RawMessage `json:"return,omitempty"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error,omitempty"`
	Event string          `json:"event,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	QMP   json.RawMessage `json:"QMP,omitempty"`
}

// DialQMP connects to QEMU's QMP socket at path, retrying until ctx is done (QEMU creates the
// socket a moment after it starts), and negotiates capabilities.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var conn net.Conn
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to QMP at %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	q := &QMP{
		conn:    conn,
		replies: make(chan qmpMessage, 16),
		evCond:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	greeting := make(chan error, 1)
	go q.read(greeting)
	select {
	case err := <-greeting:
		if err != nil {
			conn.Close()
			return nil, err
		}
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("QMP greeting from %s: %w", path, ctx.Err())
	}
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// read runs until the connection ends: the first message is the greeting, then replies go to
// q.replies and events to q.events.
func (q *QMP) read(greeting chan<- error) {
	defer close(q.done)
	sc := bufio.NewScanner(q.conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	first := true
	for sc.Scan() {
		var m qmpMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			if first {
				greeting <- fmt.Errorf("QMP greeting %q: %w", sc.Text(), err)
			}
			q.readErr = fmt.Errorf("QMP message %q: %w", sc.Text(), err)
			return
		}
		switch {
		case first:
			first = false
			if m.QMP == nil {
				greeting <- fmt.Errorf("QMP greeting %q lacks the QMP member", sc.Text())
				return
			}
			greeting <- nil
		case m.Event != "":
			q.evMu.Lock()
			q.events = append(q.events, m)
			close(q.evCond)
			q.evCond = make(chan struct{})
			q.evMu.Unlock()
		default:
			q.replies <- m
		}
	}
	q.readErr = sc.Err()
	if q.readErr == nil {
		q.readErr = errors.New("QEMU closed the QMP connection")
	}
	if first {
		greeting <- fmt.Errorf("QMP greeting: %w", q.readErr)
	}
}

// Execute runs one QMP command and returns its "return" member; a QMP error answer is an error
// with QEMU's description.
func (q *QMP) Execute(ctx context.Context, command string, args map[string]any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextID++
	id := strconv.Itoa(q.nextID)
	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", command, err)
	}
	for {
		select {
		case m := <-q.replies:
			if m.ID != id {
				continue // an answer to an abandoned command
			}
			if m.Error != nil {
				return nil, fmt.Errorf("QMP %s: %s: %s", command, m.Error.Class, m.Error.Desc)
			}
			return m.Return, nil
		case <-q.done:
			return nil, fmt.Errorf("QMP %s: %w", command, q.readErr)
		case <-ctx.Done():
			return nil, fmt.Errorf("QMP %s: %w", command, ctx.Err())
		}
	}
}

// WaitEvent waits for an event named name whose data satisfies match (nil matches any), and
// consumes it. Events that arrived before the call count.
func (q *QMP) WaitEvent(ctx context.Context, name string, match func(data json.RawMessage) bool) (json.RawMessage, error) {
	for {
		q.evMu.Lock()
		for i, ev := range q.events {
			if ev.Event == name && (match == nil || match(ev.Data)) {
				q.events = append(q.events[:i:i], q.events[i+1:]...)
				q.evMu.Unlock()
				return ev.Data, nil
			}
		}
		wait := q.evCond
		q.evMu.Unlock()
		select {
		case <-wait:
		case <-q.done:
			return nil, fmt.Errorf("wait for QMP event %s: %w", name, q.readErr)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for QMP event %s: %w", name, ctx.Err())
		}
	}
}

// DeviceDel unplugs the device with the given id and waits until QEMU reports it deleted.
func (q *QMP) DeviceDel(ctx context.Context, id string) error {
	if _, err := q.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	_, err := q.WaitEvent(ctx, "DEVICE_DELETED", func(data json.RawMessage) bool {
		var d struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(data, &d) == nil && d.Device == id
	})
	return err
}

// DeviceAdd plugs a device in; props are device_add's arguments (driver, id, bus, ...).
func (q *QMP) DeviceAdd(ctx context.Context, props map[string]any) error {
	_, err := q.Execute(ctx, "device_add", props)
	return err
}

// Close closes the connection.
func (q *QMP) Close() error {
	err := q.conn.Close()
	<-q.done
	return err
}
