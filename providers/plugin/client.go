package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// The host side of a plugin store. storeClient holds what outlives one plugin process (the
// provider's name, how to start and open it, the abilities of its store) and the current process,
// a generation. When the process ends, the generation is stopped: every call fails with its
// *StoppedError, a Watch delivers repl.Shutdown, and the next Enumerate, Watch or Open starts and
// opens a new process. The other calls never restart it: they belong to a sync that began before
// the stop, and that sync must end.

// starter starts a plugin process and opens the store in it.
type starter func(ctx context.Context) (*generation, error)

// generation is one plugin process with an open store.
type generation struct {
	proc *process // nil when the server runs in this process (tests)
	rpc  pb.ProviderClient
	caps *pb.OpenReply

	stopOnce sync.Once
	stopped  chan struct{} // closed once stop is set
	stop     *StoppedError
}

// markStopped records why the generation ended; the first reason wins.
func (g *generation) markStopped(e *StoppedError) {
	g.stopOnce.Do(func() {
		g.stop = e
		close(g.stopped)
	})
}

// isStopped tells whether the generation has ended.
func (g *generation) isStopped() bool {
	select {
	case <-g.stopped:
		return true
	default:
		return false
	}
}

// storeClient is the host side of one plugin store. It is safe for concurrent use.
type storeClient struct {
	name  string
	log   *slog.Logger
	start starter
	caps  *pb.OpenReply // the abilities of the first open; a restart must offer the same

	stopWait time.Duration // see defaultStopWait

	mu     sync.Mutex
	cur    *generation // the current generation; stopped ones stay until replaced
	closed bool

	repMu      sync.Mutex
	replicated map[string]replicatedAnswer
}

// replicatedAnswer is IsItemReplicated for an entry as Enumerate sent it.
type replicatedAnswer struct {
	stamp      repl.Stamp
	replicated bool
}

// maxReplicatedCache bounds the memory the cache of IsItemReplicated answers takes.
const maxReplicatedCache = 1 << 18

// defaultStopWait is how long a failed call waits for the process's exit to be observed, so that its
// error can say how the process ended.
const defaultStopWait = 3 * time.Second

func newStoreClient(name string, log *slog.Logger, start starter) *storeClient {
	return &storeClient{name: name, log: log, start: start, stopWait: defaultStopWait}
}

// client returns the storeClient behind any of the store types of storeWith.
func (s *storeClient) client() *storeClient { return s }

// get returns the current generation; with restart, a stopped one is replaced by a new process.
func (s *storeClient) get(ctx context.Context, restart bool) (*generation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &StoppedError{Provider: s.name, Closed: true}
	}
	if s.cur != nil && !s.cur.isStopped() {
		return s.cur, nil
	}
	if s.cur != nil && !restart {
		return nil, s.cur.stop
	}
	if s.cur != nil {
		s.log.Info("restarting the provider plugin", "after", s.cur.stop.Status)
	}
	g, err := s.start(ctx)
	if err != nil {
		if s.cur != nil {
			return nil, fmt.Errorf("provider %s stopped and could not be restarted: %w (%w)", s.name, err, repl.ErrGone)
		}
		return nil, err
	}
	if s.caps != nil && !sameCaps(s.caps, g.caps) {
		g.shutdown(ctx)
		return nil, fmt.Errorf("provider %s came back with other abilities than it had (was the plugin replaced?); open the partnership again: %w", s.name, repl.ErrGone)
	}
	s.caps = g.caps
	s.cur = g
	if g.proc != nil {
		go s.watchExit(g)
	}
	return g, nil
}

func sameCaps(a, b *pb.OpenReply) bool {
	return a.GetNotifier() == b.GetNotifier() && a.GetUnitStore() == b.GetUnitStore() &&
		a.GetHasher() == b.GetHasher() && a.GetStater() == b.GetStater() && a.GetWritesNotAtomic() == b.GetWritesNotAtomic() &&
		a.GetClock() == b.GetClock() && a.GetMonitoring() == b.GetMonitoring()
}

// watchExit waits for the generation's process to end and records why.
func (s *storeClient) watchExit(g *generation) {
	<-g.proc.runner.done
	status, last := g.proc.exitReason()
	e := &StoppedError{Provider: s.name, Status: status, LastLog: last, Log: g.proc.plog.where()}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		e = &StoppedError{Provider: s.name, Closed: true}
	} else {
		s.log.Info(e.Error()) // the calls that fail say it; in the service's log it is the record
	}
	g.markStopped(e)
	g.proc.cleanup()
}

// lost returns the error of a call whose connection failed: the process's stop when it is observed
// within stopWait, else a stop for the lost connection (and the process, alive but unreachable, is
// killed so that a restart can follow).
func (s *storeClient) lost(g *generation, cause error) error {
	select {
	case <-g.stopped:
		return g.stop
	case <-time.After(s.stopWait):
	}
	e := &StoppedError{Provider: s.name, Status: "connection lost: " + errorText(cause)}
	if g.proc != nil {
		e.Log = g.proc.plog.where()
	}
	g.markStopped(e)
	if g.proc != nil {
		go func() { _ = g.proc.runner.Kill(context.Background()) }()
	}
	return g.stop
}

func errorText(err error) string {
	e, _ := fromStatus(err)
	return e.Error()
}

// fail turns the error of an RPC into the error a caller gets: the caller's own cancellation, the
// process's stop, or the plugin's error with its sentinels.
func (s *storeClient) fail(ctx context.Context, g *generation, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("provider %s: %s: %w", s.name, op, ctx.Err())
	}
	e, transport := fromStatus(err)
	if transport || g.isStopped() {
		return s.lost(g, err)
	}
	return fmt.Errorf("provider %s: %w", s.name, e)
}

// close ends the store for good: the plugin closes its store and exits (or is killed).
func (s *storeClient) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	g := s.cur
	s.mu.Unlock()
	if g == nil || g.isStopped() {
		return nil
	}
	g.markStopped(&StoppedError{Provider: s.name, Closed: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.shutdown(ctx)
	return nil
}

// shutdown closes the generation's store and ends its process.
func (g *generation) shutdown(ctx context.Context) {
	if g.proc != nil {
		g.proc.stop(ctx, g.rpc)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _ = g.rpc.Close(cctx, &pb.CloseRequest{})
}

func (s *storeClient) resetReplicated() {
	s.repMu.Lock()
	s.replicated = make(map[string]replicatedAnswer)
	s.repMu.Unlock()
}

func (s *storeClient) rememberReplicated(e repl.Entry, replicated bool) {
	s.repMu.Lock()
	if s.replicated != nil && len(s.replicated) < maxReplicatedCache {
		s.replicated[e.Handle] = replicatedAnswer{stamp: e.Stamp(), replicated: replicated}
	}
	s.repMu.Unlock()
}

// Enumerate implements repl.Store. It restarts a stopped plugin.
func (s *storeClient) Enumerate(ctx context.Context) (repl.Iterator, error) {
	g, err := s.get(ctx, true)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := g.rpc.Enumerate(sctx, &pb.EnumerateRequest{})
	if err != nil {
		cancel()
		return nil, s.fail(ctx, g, "enumerate", err)
	}
	s.resetReplicated()
	it := &iterator{s: s, g: g, ctx: sctx, stream: stream, cancel: cancel}
	// Fetch the first batch now, so that a store that cannot enumerate at all (an unreadable
	// folder) fails here, as it would in process.
	if err := it.fill(ctx); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	return it, nil
}

type iterator struct {
	s      *storeClient
	g      *generation
	ctx    context.Context
	stream grpc.ServerStreamingClient[pb.EntryBatch]
	cancel context.CancelFunc

	buf []repl.Entry
	err error
}

// fill receives the next batch into buf, or sets err.
func (it *iterator) fill(ctx context.Context) error {
	for len(it.buf) == 0 && it.err == nil {
		stop := context.AfterFunc(ctx, it.cancel)
		b, err := it.stream.Recv()
		stop()
		switch {
		case err == io.EOF:
			it.err = io.EOF
		case err != nil:
			if ctx.Err() != nil {
				it.err = fmt.Errorf("provider %s: enumerate: %w", it.s.name, ctx.Err())
			} else {
				it.err = it.s.fail(it.ctx, it.g, "enumerate", err)
			}
		default:
			for _, x := range b.GetEntries() {
				e, err := entryFromPB(x.GetEntry())
				if err != nil {
					it.err = fmt.Errorf("provider %s sent a faulty entry: %w", it.s.name, err)
					break
				}
				it.s.rememberReplicated(e, x.GetReplicated())
				it.buf = append(it.buf, e)
			}
		}
	}
	if it.err != nil && len(it.buf) == 0 {
		if it.err != io.EOF {
			it.cancel()
		}
		return it.err
	}
	return nil
}

func (it *iterator) Next(ctx context.Context) (repl.Entry, error) {
	if err := it.fill(ctx); err != nil {
		return repl.Entry{}, err
	}
	e := it.buf[0]
	it.buf = it.buf[1:]
	return e, nil
}

func (it *iterator) Close() error {
	it.cancel()
	return nil
}

// IsItemChanged implements repl.Store.
func (s *storeClient) IsItemChanged(ctx context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return false, err
	}
	r, err := g.rpc.IsItemChanged(ctx, &pb.IsItemChangedRequest{Entry: entryToPB(e), Recorded: stampToPB(recorded)})
	if err != nil {
		return false, s.fail(ctx, g, "is item changed", err)
	}
	return r.GetChanged(), nil
}

// replicatedTimeout bounds an IsItemReplicated call, which has no ctx of its own.
const replicatedTimeout = 30 * time.Second

// IsItemReplicated implements repl.Store. The answer for an entry as the last enumeration sent it
// comes from that enumeration; others ask the plugin. When the plugin cannot answer (it stopped),
// the item counts as replicated: its absence must never read as a deletion.
func (s *storeClient) IsItemReplicated(e repl.Entry) bool {
	s.repMu.Lock()
	a, ok := s.replicated[e.Handle]
	s.repMu.Unlock()
	if ok && a.stamp == e.Stamp() {
		return a.replicated
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicatedTimeout)
	defer cancel()
	g, err := s.get(ctx, false)
	if err != nil {
		s.log.Warn("is item replicated: no answer, counting the item as replicated", "handle", e.Handle, "err", err)
		return true
	}
	r, err := g.rpc.IsItemReplicated(ctx, &pb.IsItemReplicatedRequest{Entry: entryToPB(e)})
	if err != nil {
		s.log.Warn("is item replicated: no answer, counting the item as replicated", "handle", e.Handle, "err", s.fail(ctx, g, "is item replicated", err))
		return true
	}
	return r.GetReplicated()
}

// NaturalKey implements repl.Store.
func (s *storeClient) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return "", err
	}
	r, err := g.rpc.NaturalKey(ctx, &pb.NaturalKeyRequest{Entry: entryToPB(e)})
	if err != nil {
		return "", s.fail(ctx, g, "natural key", err)
	}
	return string(r.GetKey()), nil
}

// Open implements repl.Store: the content streams from the plugin in chunks as it is read. It
// restarts a stopped plugin.
func (s *storeClient) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	g, err := s.get(ctx, true)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := g.rpc.Read(sctx, &pb.ReadRequest{Handle: []byte(handle)})
	if err != nil {
		cancel()
		return nil, s.fail(ctx, g, "open "+handle, err)
	}
	// The first message is the plugin's "opened" (or its error: not found, permission).
	if _, err := stream.Recv(); err != nil {
		cancel()
		if err == io.EOF {
			return nil, fmt.Errorf("provider %s: open %s: the plugin ended the stream before opening the item", s.name, handle)
		}
		return nil, s.fail(ctx, g, "open "+handle, err)
	}
	return &reader{s: s, g: g, ctx: sctx, handle: handle, stream: stream, cancel: cancel}, nil
}

type reader struct {
	s      *storeClient
	g      *generation
	ctx    context.Context
	handle string
	stream grpc.ServerStreamingClient[pb.Chunk]
	cancel context.CancelFunc

	buf []byte
	err error
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		c, err := r.stream.Recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = r.s.fail(r.ctx, r.g, "read "+r.handle, err)
			r.cancel()
		default:
			r.buf = c.GetData()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *reader) Close() error {
	r.cancel()
	return nil
}

// Write implements repl.Store: the content streams to the plugin in chunks.
func (s *storeClient) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	return s.write(ctx, req, nil, false)
}

func (s *storeClient) write(ctx context.Context, req repl.WriteRequest, units repl.Units, withUnits bool) (repl.Entry, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return repl.Entry{}, err
	}
	op := "write " + req.Name
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := g.rpc.Write(sctx)
	if err != nil {
		return repl.Entry{}, s.fail(ctx, g, op, err)
	}
	h := &pb.WriteHeader{
		Handle:    []byte(req.Handle),
		Name:      []byte(req.Name),
		Kind:      kindToPB(req.Kind),
		Size:      req.Size,
		ModTime:   timeToPB(req.ModTime),
		HasData:   req.Data != nil,
		WithUnits: withUnits,
		Units:     unitsToPB(units),
		Cause:     uint32(req.Cause),
	}
	if req.Expected != nil {
		h.Expected = stampToPB(*req.Expected)
	}
	sent := stream.Send(&pb.WriteMessage{Msg: &pb.WriteMessage_Header{Header: h}})
	if sent == nil && req.Data != nil {
		var n int64
		n, sent = s.sendData(ctx, stream, req.Data)
		var re *readError
		switch {
		case errors.As(sent, &re):
			// The source failed (a device unplugged mid-file): cancelling the stream, instead of
			// closing it, makes the plugin discard what it received.
			cancel()
			return repl.Entry{}, fmt.Errorf("%s: read the content: %w", op, re.err)
		case sent == nil && req.Size >= 0 && n != req.Size:
			cancel()
			return repl.Entry{}, fmt.Errorf("%s: the content was %d bytes, %d were announced (the source changed while it was copied): %w",
				op, n, req.Size, io.ErrUnexpectedEOF)
		}
	}
	// io.EOF from Send means the plugin ended the call early; its status comes with the reply.
	if sent != nil && sent != io.EOF {
		return repl.Entry{}, s.fail(ctx, g, op, sent)
	}
	// The plugin commits when the stream closes: never close it for a caller that gave up.
	if err := ctx.Err(); err != nil {
		cancel()
		return repl.Entry{}, fmt.Errorf("provider %s: %s: %w", s.name, op, err)
	}
	r, err := stream.CloseAndRecv()
	if err != nil {
		return repl.Entry{}, s.fail(ctx, g, op, err)
	}
	e, err := entryFromPB(r.GetEntry())
	if err != nil {
		return repl.Entry{}, fmt.Errorf("provider %s: %s: the plugin answered with a faulty entry: %w", s.name, op, err)
	}
	return e, nil
}

// readError marks a failure of the data source, as opposed to the stream.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

// sendData streams data in chunks and returns how many bytes it sent.
func (s *storeClient) sendData(ctx context.Context, stream grpc.ClientStreamingClient[pb.WriteMessage, pb.WriteReply], data io.Reader) (int64, error) {
	var total int64
	for {
		buf := make([]byte, chunkSize) // a fresh buffer per message: Send may keep the message
		n, rerr := fill(data, buf)
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if n > 0 {
			if err := stream.Send(&pb.WriteMessage{Msg: &pb.WriteMessage_Data{Data: buf[:n]}}); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, &readError{rerr}
		}
	}
}

// Delete implements repl.Store.
func (s *storeClient) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.DeleteFor(ctx, handle, expected, repl.CauseNone)
}

// DeleteFor implements repl.CauseDeleter: the plugin's store is told why when it is one.
func (s *storeClient) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	g, err := s.get(ctx, false)
	if err != nil {
		return err
	}
	if _, err := g.rpc.Delete(ctx, &pb.DeleteRequest{Handle: []byte(handle), Expected: stampToPB(expected), Cause: uint32(cause)}); err != nil {
		return s.fail(ctx, g, "delete "+handle, err)
	}
	return nil
}

// watch is repl.Notifier's Watch. It restarts a stopped plugin. When the process stops while
// watching, notify gets a Shutdown whose Err is the *StoppedError, and watch returns nil.
func (s *storeClient) watch(ctx context.Context, notify func(repl.Notification)) error {
	g, err := s.get(ctx, true)
	if err != nil {
		return err
	}
	stream, err := g.rpc.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		return s.fail(ctx, g, "watch", err)
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ferr := s.fail(ctx, g, "watch", err)
			var stop *StoppedError
			if errors.As(ferr, &stop) {
				notify(repl.Notification{Kind: repl.Shutdown, Err: stop})
				return nil
			}
			return ferr
		}
		n, err := notificationFromPB(m)
		if err != nil {
			// A notification we cannot read still says something changed: a full pass finds it.
			s.log.Warn("faulty notification from the plugin; asking for a full pass", "err", err)
			n = repl.Notification{Kind: repl.Overflow}
		}
		notify(n)
	}
}

func (s *storeClient) readUnits(ctx context.Context, handle string) (repl.Units, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return nil, err
	}
	r, err := g.rpc.ReadUnits(ctx, &pb.ReadUnitsRequest{Handle: []byte(handle)})
	if err != nil {
		return nil, s.fail(ctx, g, "read units of "+handle, err)
	}
	return unitsFromPB(r.GetUnits()), nil
}

func (s *storeClient) hash(ctx context.Context, handle string) (string, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return "", err
	}
	r, err := g.rpc.Hash(ctx, &pb.HashRequest{Handle: []byte(handle)})
	if err != nil {
		return "", s.fail(ctx, g, "hash "+handle, err)
	}
	return string(r.GetHash()), nil
}

func (s *storeClient) stat(ctx context.Context, handle string) (repl.Entry, error) {
	g, err := s.get(ctx, false)
	if err != nil {
		return repl.Entry{}, err
	}
	r, err := g.rpc.Stat(ctx, &pb.StatRequest{Handle: []byte(handle)})
	if err != nil {
		return repl.Entry{}, s.fail(ctx, g, "stat "+handle, err)
	}
	e, err := entryFromPB(r.GetEntry())
	if err != nil {
		return repl.Entry{}, fmt.Errorf("provider %s: stat %s: the plugin answered with a faulty entry: %w", s.name, handle, err)
	}
	return e, nil
}
