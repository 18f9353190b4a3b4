package plugin

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
)

// remoteDevice is the plugin side of the host's device: a device.Device whose every call goes to
// the host's deviceServer. A plugin's device side gets it as Env.Device and uses it as the
// built-in providers use theirs. Errors wrap the device sentinels the host's device returned
// (errors.Is(err, device.ErrNotFound) works); when the host cannot be reached they wrap
// device.ErrDisconnected.
type remoteDevice struct {
	info device.Info
	rpc  pb.DeviceClient
	conn *grpc.ClientConn // closed by Close; nil when someone else owns it (tests)

	evOnce   sync.Once
	events   chan device.Event
	evCtx    context.Context
	evCancel context.CancelFunc

	closeOnce sync.Once
}

var _ device.Device = (*remoteDevice)(nil)

func newRemoteDevice(info device.Info, conn *grpc.ClientConn) *remoteDevice {
	ctx, cancel := context.WithCancel(context.Background())
	return &remoteDevice{info: info, rpc: pb.NewDeviceClient(conn), conn: conn, evCtx: ctx, evCancel: cancel}
}

// deviceErr turns the error of a call to the host's device into the error a device returns.
func deviceErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	e, transport := fromStatus(err)
	if transport {
		return fmt.Errorf("%s: Cradle's connection to the device was lost (%v): %w", op, e, device.ErrDisconnected)
	}
	return e
}

func (d *remoteDevice) Info() device.Info { return d.info }

func (d *remoteDevice) Storages(ctx context.Context) ([]device.Storage, error) {
	r, err := d.rpc.Storages(ctx, &pb.StoragesRequest{})
	if err != nil {
		return nil, deviceErr(ctx, "list the storages", err)
	}
	out := make([]device.Storage, 0, len(r.GetStorages()))
	for _, s := range r.GetStorages() {
		out = append(out, device.Storage{ID: device.StorageID(s.GetId()), Description: s.GetDescription(),
			Free: min(s.GetFree(), s.GetCapacity()), Capacity: s.GetCapacity(), ReadOnly: s.GetReadOnly()})
	}
	return out, nil
}

func (d *remoteDevice) List(ctx context.Context, s device.StorageID, dir string) ([]device.Object, error) {
	r, err := d.rpc.List(ctx, &pb.ObjectRequest{Storage: uint32(s), Path: []byte(dir)})
	if err != nil {
		return nil, deviceErr(ctx, fmt.Sprintf("list %q", dir), err)
	}
	out := make([]device.Object, 0, len(r.GetObjects()))
	for _, p := range r.GetObjects() {
		o, err := objectFromPB(p)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", dir, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func (d *remoteDevice) Stat(ctx context.Context, s device.StorageID, path string) (device.Object, error) {
	r, err := d.rpc.Stat(ctx, &pb.ObjectRequest{Storage: uint32(s), Path: []byte(path)})
	if err != nil {
		return device.Object{}, deviceErr(ctx, fmt.Sprintf("stat %q", path), err)
	}
	return objectFromPB(r)
}

// Walk lists folder by folder, as the device implementations do. fn returning fs.SkipDir skips a
// folder's contents (for a file, the rest of its folder); fs.SkipAll ends the walk.
func (d *remoteDevice) Walk(ctx context.Context, s device.StorageID, dir string, fn func(device.Object) error) error {
	return device.WalkList(ctx, func(ctx context.Context, dir string) ([]device.Object, error) { return d.List(ctx, s, dir) }, dir, fn)
}

func (d *remoteDevice) Open(ctx context.Context, s device.StorageID, path string, offset int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("open %q", path)
	sctx, cancel := context.WithCancel(ctx)
	stream, err := d.rpc.Read(sctx, &pb.ReadObjectRequest{Storage: uint32(s), Path: []byte(path), Offset: offset})
	if err != nil {
		cancel()
		return nil, deviceErr(ctx, op, err)
	}
	if _, err := stream.Recv(); err != nil { // the host's "opened", or its error
		cancel()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: the host ended the stream before opening the object", op)
		}
		return nil, deviceErr(ctx, op, err)
	}
	return &deviceReader{ctx: sctx, op: "read " + path, stream: stream, cancel: cancel}, nil
}

type deviceReader struct {
	ctx    context.Context
	op     string
	stream grpc.ServerStreamingClient[pb.Chunk]
	cancel context.CancelFunc
	buf    []byte
	err    error
}

func (r *deviceReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		c, err := r.stream.Recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = deviceErr(r.ctx, r.op, err)
			r.cancel()
		default:
			r.buf = c.GetData()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *deviceReader) Close() error {
	r.cancel()
	return nil
}

// Create streams r to the host's device. If r fails, or yields other than size bytes, the stream
// is cancelled and the device keeps nothing of it.
func (d *remoteDevice) Create(ctx context.Context, s device.StorageID, path string, size int64, modTime time.Time, r io.Reader) (device.Object, error) {
	op := fmt.Sprintf("create %q", path)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.rpc.Create(sctx)
	if err != nil {
		return device.Object{}, deviceErr(ctx, op, err)
	}
	sent := stream.Send(&pb.CreateMessage{Msg: &pb.CreateMessage_Header{Header: &pb.CreateHeader{
		Storage: uint32(s), Path: []byte(path), Size: size, ModTime: timeToPB(modTime)}}})
	var n int64
	for sent == nil {
		buf := make([]byte, chunkSize) // a fresh buffer per message: Send may keep the message
		k, rerr := fill(r, buf)
		if err := ctx.Err(); err != nil {
			return device.Object{}, fmt.Errorf("%s: %w", op, err)
		}
		if k > 0 {
			n += int64(k)
			sent = stream.Send(&pb.CreateMessage{Msg: &pb.CreateMessage_Data{Data: buf[:k]}})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			cancel()
			return device.Object{}, fmt.Errorf("%s: read the content: %w", op, rerr)
		}
	}
	if sent == nil && n != size {
		cancel()
		return device.Object{}, fmt.Errorf("%s: the content was %d bytes, %d were announced: %w", op, n, size, io.ErrUnexpectedEOF)
	}
	if sent != nil && sent != io.EOF { // io.EOF: the host ended the call early; its status follows
		return device.Object{}, deviceErr(ctx, op, sent)
	}
	o, err := stream.CloseAndRecv()
	if err != nil {
		return device.Object{}, deviceErr(ctx, op, err)
	}
	return objectFromPB(o)
}

func (d *remoteDevice) Mkdir(ctx context.Context, s device.StorageID, path string) (device.Object, error) {
	r, err := d.rpc.Mkdir(ctx, &pb.ObjectRequest{Storage: uint32(s), Path: []byte(path)})
	if err != nil {
		return device.Object{}, deviceErr(ctx, fmt.Sprintf("create the folder %q", path), err)
	}
	return objectFromPB(r)
}

func (d *remoteDevice) Delete(ctx context.Context, s device.StorageID, path string) error {
	if _, err := d.rpc.Remove(ctx, &pb.ObjectRequest{Storage: uint32(s), Path: []byte(path)}); err != nil {
		return deviceErr(ctx, fmt.Sprintf("delete %q", path), err)
	}
	return nil
}

func (d *remoteDevice) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	if _, err := d.rpc.Rename(ctx, &pb.RenameRequest{Storage: uint32(s), From: []byte(from), To: []byte(to)}); err != nil {
		return deviceErr(ctx, fmt.Sprintf("rename %q to %q", from, to), err)
	}
	return nil
}

var eventKindsFromPB = func() map[pb.EventKind]device.EventKind {
	m := map[pb.EventKind]device.EventKind{}
	for k, v := range eventKinds {
		m[v] = k
	}
	return m
}()

// eventBuffer is the capacity of the events channel; a reader that falls further behind loses
// events and then receives EventOverflow, as from any device.
const eventBuffer = 1024

// Events returns the device's events, streamed from the host from the first call on. The channel
// is closed after DeviceGone (the device went away, or the host can no longer be reached) or when
// the device is closed.
func (d *remoteDevice) Events() <-chan device.Event {
	d.evOnce.Do(func() {
		d.events = make(chan device.Event, eventBuffer)
		go d.streamEvents()
	})
	return d.events
}

func (d *remoteDevice) streamEvents() {
	defer close(d.events)
	overflow := false
	send := func(ev device.Event) {
		if overflow {
			select {
			case d.events <- device.Event{Kind: device.EventOverflow}:
				overflow = false
			default:
				return
			}
		}
		select {
		case d.events <- ev:
		default:
			overflow = true
		}
	}
	stream, err := d.rpc.Events(d.evCtx, &pb.EventsRequest{})
	for err == nil {
		var m *pb.DeviceEvent
		if m, err = stream.Recv(); err != nil {
			break
		}
		k, ok := eventKindsFromPB[m.GetKind()]
		if !ok {
			continue
		}
		ev := device.Event{Kind: k, Storage: device.StorageID(m.GetStorage()), Path: string(m.GetPath())}
		if ev.Path != "" {
			if p, perr := device.CheckPath(ev.Path); perr == nil {
				ev.Path = p
			} else {
				ev.Path = "" // a listener rescans
			}
		}
		send(ev)
		if k == device.DeviceGone {
			return
		}
	}
	if d.evCtx.Err() == nil {
		// The host ended the stream or went away: to this plugin, the device is gone.
		send(device.Event{Kind: device.DeviceGone})
	}
}

// Close ends this process's use of the device (its events stream and its connection to the host);
// the device itself belongs to Cradle and stays open.
func (d *remoteDevice) Close() error {
	d.closeOnce.Do(func() {
		d.evCancel()
		if d.conn != nil {
			_ = d.conn.Close()
		}
	})
	return nil
}
