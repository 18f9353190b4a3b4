package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// probe is a store built to observe the plugin boundary from the plugin's side: what its calls
// receive (contexts, data chunks) and what errors it returns. Handles steer it:
//
//	err:NAME  every call on it fails with the sentinel NAME (see probeErrors), wrapped
//	block     the call blocks until its ctx is done, and reports that ctx
type probe struct {
	mu      sync.Mutex
	files   map[string][]byte
	entries []repl.Entry // what Enumerate lists; failAt >= 0 fails it after that many
	failAt  int
	failErr error

	entered       chan struct{}   // a blocking call started
	sawCtx        chan error      // the ctx error a blocking call ended with
	sawDeadline   chan time.Time  // the deadline a blocking call had (zero when none)
	writeSaw      chan writeSight // what each Write saw of its data
	replicatedAsk atomic.Int64    // calls of IsItemReplicated
}

type writeSight struct {
	name    string
	maxRead int   // the largest single Read of the data
	total   int   // bytes read
	err     error // the data's error (nil at EOF)
}

var probeErrors = map[string]error{
	"notfound":    repl.ErrNotFound,
	"changed":     repl.ErrChanged,
	"exists":      repl.ErrExists,
	"notempty":    repl.ErrNotEmpty,
	"nospace":     repl.ErrNoSpace,
	"gone":        repl.ErrGone,
	"readonly":    repl.ErrReadOnly,
	"invalidname": repl.ErrInvalidName,
	"permission":  repl.ErrPermission,
	"canceled":    context.Canceled,
	"deadline":    context.DeadlineExceeded,
}

func newProbe() *probe {
	return &probe{
		files:       map[string][]byte{},
		failAt:      -1,
		entered:     make(chan struct{}, 16),
		sawCtx:      make(chan error, 16),
		sawDeadline: make(chan time.Time, 16),
		writeSaw:    make(chan writeSight, 16),
	}
}

// steer applies the handle's behaviour; ok false means the call goes on normally.
func (p *probe) steer(ctx context.Context, handle string) (error, bool) {
	if name, found := strings.CutPrefix(handle, "err:"); found {
		switch name {
		case "plain":
			return fmt.Errorf("probe failed on %s: disk on fire", handle), true
		case "joined":
			return fmt.Errorf("probe failed on %s: %w", handle, errors.Join(repl.ErrChanged, repl.ErrPermission)), true
		}
		return fmt.Errorf("probe failed on %s: %w", handle, probeErrors[name]), true
	}
	switch handle {
	case "block":
		dl, _ := ctx.Deadline()
		offer(p.sawDeadline, dl)
		offer(p.entered, struct{}{})
		<-ctx.Done()
		offer(p.sawCtx, ctx.Err())
		slog.Info("probe: blocked call ended", "err", ctx.Err())
		return fmt.Errorf("probe blocked: %w", ctx.Err()), true
	case "panic":
		panic("boom: the probe was told to panic")
	}
	return nil, false
}

// offer sends without blocking: in a plugin process nobody reads the channels.
func offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func (p *probe) Enumerate(ctx context.Context) (repl.Iterator, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failAt == 0 {
		return nil, p.failErr
	}
	return &probeIter{items: append([]repl.Entry(nil), p.entries...), failAt: p.failAt, failErr: p.failErr}, nil
}

type probeIter struct {
	items   []repl.Entry
	n       int
	failAt  int
	failErr error
}

func (it *probeIter) Next(ctx context.Context) (repl.Entry, error) {
	if it.failAt >= 0 && it.n == it.failAt {
		return repl.Entry{}, it.failErr
	}
	if it.n == len(it.items) {
		return repl.Entry{}, io.EOF
	}
	it.n++
	return it.items[it.n-1], nil
}

func (it *probeIter) Close() error { return nil }

func (p *probe) IsItemChanged(ctx context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	if err, ok := p.steer(ctx, e.Handle); ok {
		return false, err
	}
	return repl.StampChanged(recorded, e), nil
}

func (p *probe) IsItemReplicated(e repl.Entry) bool {
	p.replicatedAsk.Add(1)
	return !strings.HasSuffix(e.Handle, ".tmp")
}

func (p *probe) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	if err, ok := p.steer(ctx, e.Handle); ok {
		return "", err
	}
	return "key:" + e.Handle, nil
}

func (p *probe) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if err, ok := p.steer(ctx, handle); ok {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.files[handle]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", handle, repl.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (p *probe) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err, ok := p.steer(ctx, req.Name); ok {
		return repl.Entry{}, err
	}
	var content []byte
	if req.Data != nil {
		sight := writeSight{name: req.Name}
		buf := make([]byte, 1<<20)
		for {
			n, err := req.Data.Read(buf)
			sight.total += n
			sight.maxRead = max(sight.maxRead, n)
			content = append(content, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				sight.err = err
				offer(p.writeSaw, sight)
				return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, err)
			}
		}
		offer(p.writeSaw, sight)
	}
	p.mu.Lock()
	p.files[req.Name] = content
	p.mu.Unlock()
	return repl.Entry{Handle: req.Name, Kind: req.Kind, Size: int64(len(content)), ModTime: req.ModTime}, nil
}

func (p *probe) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	if err, ok := p.steer(ctx, handle); ok {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.files[handle]; !ok {
		return fmt.Errorf("delete %s: %w", handle, repl.ErrNotFound)
	}
	delete(p.files, handle)
	return nil
}

func (p *probe) has(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.files[name]
	return ok
}

// probeNotifier is a probe that reports changes: the given notifications, then it waits for its
// ctx (or, with startErr, it cannot start).
type probeNotifier struct {
	*probe
	send     []repl.Notification
	startErr error
	watchCtx chan error
}

func (p *probeNotifier) Watch(ctx context.Context, notify func(repl.Notification)) error {
	if p.startErr != nil {
		return p.startErr
	}
	for _, n := range p.send {
		notify(n)
	}
	<-ctx.Done()
	p.watchCtx <- ctx.Err()
	return nil
}

// probeUnits is a probe with change units and hashes.
type probeUnits struct {
	*probe
	umu   sync.Mutex
	units map[string]repl.Units
}

func (p *probeUnits) ReadUnits(ctx context.Context, handle string) (repl.Units, error) {
	if err, ok := p.steer(ctx, handle); ok {
		return nil, err
	}
	p.umu.Lock()
	defer p.umu.Unlock()
	u, ok := p.units[handle]
	if !ok {
		return nil, fmt.Errorf("units of %s: %w", handle, repl.ErrNotFound)
	}
	return maps.Clone(u), nil
}

func (p *probeUnits) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	e, err := p.Write(ctx, req)
	if err != nil {
		return e, err
	}
	p.umu.Lock()
	p.units[req.Name] = maps.Clone(units)
	p.umu.Unlock()
	return e, nil
}

func (p *probeUnits) Hash(ctx context.Context, handle string) (string, error) {
	if err, ok := p.steer(ctx, handle); ok {
		return "", err
	}
	p.umu.Lock()
	defer p.umu.Unlock()
	keys := make([]string, 0, len(p.units[handle]))
	for k := range p.units[handle] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "units:" + strings.Join(keys, ","), nil
}
