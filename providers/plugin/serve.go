package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// envParentWatch is set by the host when the plugin's stdin is a pipe that the host holds open:
// the plugin exits when it reads EOF there, that is when the host is gone.
const envParentWatch = "CRADLE_PROVIDER_PARENT_PIPE"

// Serve serves a provider to Cradle; a plugin's main calls it and returns when it returns. It
// never returns before Cradle is done with the plugin.
//
// Serve makes slog's and the log package's default loggers write to Cradle's log (tagged with
// the plugin's name); a plugin must not write to stdout, which carries the handshake.
//
// open opens the desktop side of a partnership. With the DeviceSide option the plugin serves the
// device side too; without it, Cradle syncs the device side as a plain folder (the device-path
// option), file by file.
//
// Run by hand instead of by Cradle, or with a faulty declaration, the program prints what is
// wrong and exits with status 1.
func Serve(d Declaration, open OpenFunc, opts ...ServeOption) {
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := d.check(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: the provider declaration is faulty: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
	if open == nil {
		fmt.Fprintf(os.Stderr, "%s: plugin.Serve needs an OpenFunc\n", filepath.Base(os.Args[0]))
		os.Exit(1)
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a Cradle provider plugin (provider %q); Cradle starts it when it needs it.\n"+
			"Put it in Cradle's plugins folder (for example ~/.config/cradle/plugins/), then add a partnership:\n"+
			"  cradle partner add --provider %s --name NAME --device SERIAL --desktop PATH --device-path PATH\n",
			filepath.Base(os.Args[0]), d.Name, d.Name)
		os.Exit(1)
	}

	stderr := os.Stderr // go-plugin replaces os.Stderr once serving; logs go to the real one
	slog.SetDefault(slog.New(newPluginLogHandler(stderr)))
	logger := hclog.New(&hclog.LoggerOptions{Output: stderr, JSONFormat: true, Level: hclog.Info})

	srv := &server{decl: d, open: open, openDevice: cfg.openDevice}
	var gs *grpc.Server
	var gsMu sync.Mutex
	if os.Getenv(envParentWatch) == "1" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			slog.Warn("Cradle went away; the plugin stops")
			gsMu.Lock()
			if gs != nil {
				gs.Stop()
			}
			gsMu.Unlock()
			srv.closeStore()
			os.Exit(0)
		}()
	}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{pluginKey: &grpcPlugin{srv: srv}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))
			s := grpc.NewServer(opts...)
			gsMu.Lock()
			gs = s
			gsMu.Unlock()
			return s
		},
		Logger: logger,
	})
	srv.closeStore()
}

// A ServeOption adds to what Serve serves.
type ServeOption func(*serveConfig)

type serveConfig struct {
	openDevice OpenFunc
}

// DeviceSide makes the plugin serve the device side of its partnerships as well: open opens it,
// with env.Device the connected device (served by Cradle over the plugin connection) and
// env.Options holding the partnership's device-path. The device side runs in a process of its
// own, beside the desktop side's, and is held to the same contract: the conformance suite
// (repl/repltest), atomic writes, the Expected stamps. A device store that keeps one file on the
// device for many items (a calendar, an address book) makes them items with change units, so that
// edits of different items, or of different fields of one item, on the two sides merge.
func DeviceSide(open OpenFunc) ServeOption {
	return func(c *serveConfig) { c.openDevice = open }
}

// server is the plugin side of the protocol: it serves one repl.Store, opened by the host's Open.
type server struct {
	pb.UnimplementedProviderServer

	decl       Declaration
	open       OpenFunc
	openDevice OpenFunc // nil: the plugin serves no device side

	mu        sync.Mutex
	broker    *goplugin.GRPCBroker // the connection's broker, to reach the host's device
	store     repl.Store
	dev       *remoteDevice      // the device of a device side
	hub       *hub               // the store's notifications, when it is a Notifier
	stopWatch context.CancelFunc // ends the store's Watch
}

func (s *server) setBroker(b *goplugin.GRPCBroker) {
	s.mu.Lock()
	s.broker = b
	s.mu.Unlock()
}

func (s *server) current() (repl.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil, status.Error(codes.FailedPrecondition, "no store is open in this plugin process")
	}
	return s.store, nil
}

// closeStore ends the store's Watch and closes the store, if any and if it is an io.Closer.
func (s *server) closeStore() {
	s.mu.Lock()
	st, h, stop, dev := s.store, s.hub, s.stopWatch, s.dev
	s.store, s.hub, s.stopWatch, s.dev = nil, nil, nil, nil
	s.mu.Unlock()
	if dev != nil {
		defer dev.Close()
	}
	if stop != nil {
		stop()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			slog.Warn("the store's Watch did not return within 5 s of its ctx being cancelled")
		}
	}
	if c, ok := st.(io.Closer); ok {
		if err := c.Close(); err != nil {
			slog.Error("close the store", "err", err)
		}
	}
}

func (s *server) Declare(context.Context, *pb.DeclareRequest) (*pb.Declaration, error) {
	d := declarationToPB(s.decl)
	d.DeviceSide = s.openDevice != nil
	return d, nil
}

func (s *server) Open(ctx context.Context, req *pb.OpenRequest) (*pb.OpenReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store != nil {
		return nil, status.Error(codes.FailedPrecondition, "a store is already open in this plugin process")
	}
	env := Env{Options: req.GetOptions(), StateDir: req.GetStateDir()}
	if env.Options == nil {
		env.Options = map[string]string{}
	}
	open := s.open
	if req.GetSide() == pb.Side_SIDE_DEVICE {
		if s.openDevice == nil {
			return nil, status.Error(codes.Unimplemented, "this plugin serves no device side")
		}
		if s.broker == nil || req.GetDeviceBroker() == 0 {
			return nil, status.Error(codes.InvalidArgument, "opening a device side needs the host's device")
		}
		conn, err := s.broker.DialWithOptions(req.GetDeviceBroker(), grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "reach the host's device: %v", err)
		}
		s.dev = newRemoteDevice(deviceInfoFromPB(req.GetDevice()), conn)
		env.Device = s.dev
		open = s.openDevice
	}
	st, err := open(ctx, env)
	if err == nil && st == nil {
		err = errors.New("the plugin's OpenFunc returned no store and no error")
	}
	if err != nil {
		if s.dev != nil {
			_ = s.dev.Close()
			s.dev = nil
		}
		return nil, toStatus(err)
	}
	s.store = st
	if n, ok := st.(repl.Notifier); ok {
		s.hub, s.stopWatch = startHub(n)
	}
	_, notifier := st.(repl.Notifier)
	_, units := st.(repl.UnitStore)
	_, hasher := st.(repl.Hasher)
	_, stater := st.(repl.Stater)
	a, ok := st.(repl.Atomicity)
	notAtomic := ok && !a.WritesAtomic()
	reply := &pb.OpenReply{Notifier: notifier, UnitStore: units, Hasher: hasher, Stater: stater, WritesNotAtomic: notAtomic}
	if c, ok := st.(repl.Clock); ok {
		reply.Clock, reply.TimeGranularity = true, int64(c.TimeGranularity())
	}
	_, reply.Monitoring = st.(repl.Monitoring)
	return reply, nil
}

func (s *server) Close(context.Context, *pb.CloseRequest) (*pb.CloseReply, error) {
	s.closeStore()
	return &pb.CloseReply{}, nil
}

// maxBatch bounds an enumeration batch by count and (roughly) by bytes.
const (
	maxBatchEntries = 512
	maxBatchBytes   = 1 << 20
)

func (s *server) Enumerate(_ *pb.EnumerateRequest, stream pb.Provider_EnumerateServer) (err error) {
	st, err := s.current()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	it, err := st.Enumerate(ctx)
	if err != nil {
		return toStatus(err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil {
			slog.Warn("close the enumeration", "err", cerr)
		}
	}()
	batch := &pb.EntryBatch{}
	size := 0
	for {
		e, err := it.Next(ctx)
		if err == io.EOF { // the contract's end marker, not a wrapped EOF from a failed read
			break
		}
		if err != nil {
			// What came before the failure is valid: send it, then the failure.
			if len(batch.Entries) > 0 {
				if serr := stream.Send(batch); serr != nil {
					return serr
				}
			}
			return toStatus(err)
		}
		batch.Entries = append(batch.Entries, &pb.Enumerated{Entry: entryToPB(e), Replicated: st.IsItemReplicated(e)})
		size += len(e.Handle) + len(e.Hash) + 48
		if len(batch.Entries) >= maxBatchEntries || size >= maxBatchBytes {
			if err := stream.Send(batch); err != nil {
				return err
			}
			batch, size = &pb.EntryBatch{}, 0
		}
	}
	if len(batch.Entries) > 0 {
		return stream.Send(batch)
	}
	return nil
}

func (s *server) IsItemChanged(ctx context.Context, req *pb.IsItemChangedRequest) (*pb.IsItemChangedReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	e, err := entryFromPB(req.GetEntry())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "is item changed: %v", err)
	}
	rec, err := stampFromPB(req.GetRecorded())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "is item changed: %v", err)
	}
	changed, err := st.IsItemChanged(ctx, e, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.IsItemChangedReply{Changed: changed}, nil
}

func (s *server) IsItemReplicated(_ context.Context, req *pb.IsItemReplicatedRequest) (*pb.IsItemReplicatedReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	e, err := entryFromPB(req.GetEntry())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "is item replicated: %v", err)
	}
	return &pb.IsItemReplicatedReply{Replicated: st.IsItemReplicated(e)}, nil
}

func (s *server) NaturalKey(ctx context.Context, req *pb.NaturalKeyRequest) (*pb.NaturalKeyReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	e, err := entryFromPB(req.GetEntry())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "natural key: %v", err)
	}
	key, err := st.NaturalKey(ctx, e)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.NaturalKeyReply{Key: []byte(key)}, nil
}

func (s *server) Read(req *pb.ReadRequest, stream pb.Provider_ReadServer) error {
	st, err := s.current()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	handle := string(req.GetHandle())
	rc, err := st.Open(ctx, handle)
	if err != nil {
		return toStatus(err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil {
			slog.Warn("close an item after reading it", "handle", handle, "err", cerr)
		}
	}()
	// An empty first chunk says the item is open, so that the host's Open can report ErrNotFound
	// itself instead of at the first Read.
	if err := stream.Send(&pb.Chunk{}); err != nil {
		return err
	}
	for {
		buf := make([]byte, chunkSize) // a fresh buffer per message: Send may keep the message
		n, rerr := fill(rc, buf)
		if n > 0 {
			if err := stream.Send(&pb.Chunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if ctx.Err() != nil {
				return toStatus(ctx.Err())
			}
			return toStatus(fmt.Errorf("read %s: %w", handle, rerr))
		}
	}
}

// fill reads into buf until it is full or r fails; the error is io.EOF only when r returned io.EOF
// (unlike io.ReadFull, a reader's own io.ErrUnexpectedEOF stays an error).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 && n < len(buf) {
			// A reader that returns 0, nil: try again rather than spin forever.
			m, err = r.Read(buf[n:])
			n += m
			if err != nil {
				return n, err
			}
			if m == 0 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

func (s *server) Write(stream pb.Provider_WriteServer) error {
	st, err := s.current()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "a write must start with a header")
	}
	kind, err := kindFromPB(h.GetKind())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "write: %v", err)
	}
	mt, err := timeFromPB(h.GetModTime())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "write: %v", err)
	}
	req := repl.WriteRequest{
		Handle:  string(h.GetHandle()),
		Name:    string(h.GetName()),
		Kind:    kind,
		Size:    h.GetSize(),
		ModTime: mt,
		Cause:   repl.Cause(h.GetCause()),
	}
	if h.GetExpected() != nil {
		exp, err := stampFromPB(h.GetExpected())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "write: %v", err)
		}
		req.Expected = &exp
	}
	if h.GetHasData() {
		req.Data = &streamReader{recv: func() ([]byte, bool, error) {
			m, err := stream.Recv()
			if err != nil {
				return nil, false, err
			}
			return m.GetData(), m.GetHeader() != nil, nil
		}, ctx: ctx}
	}
	var e repl.Entry
	if h.GetWithUnits() {
		us, ok := st.(repl.UnitStore)
		if !ok {
			return status.Error(codes.Unimplemented, "the store has no change units")
		}
		e, err = us.WriteUnits(ctx, req, unitsFromPB(h.GetUnits()))
	} else {
		e, err = st.Write(ctx, req)
	}
	if err == nil {
		err = writeThrough(ctx, st)
	}
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.WriteReply{Entry: entryToPB(e)})
}

// writeThrough makes a change that a plugin's store deferred (repl.Flusher) reach its replica
// before the host hears of it: the host's engine does not call Persist and Flush across the
// plugin boundary, so a plugin's stores write through.
func writeThrough(ctx context.Context, st repl.Store) error {
	f, ok := st.(repl.Flusher)
	if !ok {
		return nil
	}
	if err := f.Persist(ctx); err != nil {
		return err
	}
	return f.Flush(ctx)
}

func (s *server) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	exp, err := stampFromPB(req.GetExpected())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "delete: %v", err)
	}
	err = repl.DeleteItem(ctx, st, string(req.GetHandle()), exp, repl.Cause(req.GetCause()))
	if err == nil {
		err = writeThrough(ctx, st)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteReply{}, nil
}

func (s *server) Watch(_ *pb.WatchRequest, stream pb.Provider_WatchServer) error {
	if _, err := s.current(); err != nil {
		return err
	}
	s.mu.Lock()
	h := s.hub
	s.mu.Unlock()
	if h == nil {
		return status.Error(codes.Unimplemented, "the store does not report changes")
	}
	ctx := stream.Context()
	w := h.subscribe()
	for {
		q, overflow, ended, werr, current := h.take(w)
		if !current {
			return nil
		}
		for _, x := range q {
			if err := stream.Send(notificationToPB(x)); err != nil {
				return err
			}
		}
		if overflow {
			if err := stream.Send(&pb.Notification{Kind: pb.NotifyKind_NOTIFY_OVERFLOW}); err != nil {
				return err
			}
		}
		if ended {
			return toStatus(werr)
		}
		select {
		case <-w:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *server) ReadUnits(ctx context.Context, req *pb.ReadUnitsRequest) (*pb.ReadUnitsReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	us, ok := st.(repl.UnitStore)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the store has no change units")
	}
	u, err := us.ReadUnits(ctx, string(req.GetHandle()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReadUnitsReply{Units: unitsToPB(u)}, nil
}

func (s *server) Hash(ctx context.Context, req *pb.HashRequest) (*pb.HashReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	h, ok := st.(repl.Hasher)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the store reports no hashes")
	}
	sum, err := h.Hash(ctx, string(req.GetHandle()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.HashReply{Hash: []byte(sum)}, nil
}

func (s *server) Stat(ctx context.Context, req *pb.StatRequest) (*pb.StatReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	sr, ok := st.(repl.Stater)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the store cannot describe one item")
	}
	e, err := sr.Stat(ctx, string(req.GetHandle()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StatReply{Entry: entryToPB(e)}, nil
}

func (s *server) Now(context.Context, *pb.NowRequest) (*pb.NowReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	c, ok := st.(repl.Clock)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the store has no clock of its own")
	}
	return &pb.NowReply{Now: timeToPB(c.Now())}, nil
}

func (s *server) ContinueMonitoring(context.Context, *pb.ContinueMonitoringRequest) (*pb.ContinueMonitoringReply, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	m, ok := st.(repl.Monitoring)
	if !ok {
		return &pb.ContinueMonitoringReply{Continue: true}, nil
	}
	return &pb.ContinueMonitoringReply{Continue: m.ContinueMonitoring()}, nil
}
