package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
)

// The host side of a plugin's device side: deviceServer serves the connected device.Device to the
// plugin process over a connection that go-plugin's broker sets up (see host.go, startDevice). The
// plugin's calls carry their ctx, so a sync cancelled on the host cancels the device transfer the
// plugin asked for; device errors cross with their sentinels (errors.go).

type deviceServer struct {
	pb.UnimplementedDeviceServer
	dev device.Device
}

func deviceInfoToPB(i device.Info) *pb.DeviceInfo {
	return &pb.DeviceInfo{Serial: i.Serial, Manufacturer: i.Manufacturer, Model: i.Model, Version: i.Version,
		Kind: string(i.Kind), Transport: i.Transport}
}

func deviceInfoFromPB(p *pb.DeviceInfo) device.Info {
	return device.Info{Serial: p.GetSerial(), Manufacturer: p.GetManufacturer(), Model: p.GetModel(),
		Version: p.GetVersion(), Kind: device.Kind(p.GetKind()), Transport: p.GetTransport()}
}

func objectToPB(o device.Object) *pb.DeviceObject {
	return &pb.DeviceObject{Storage: uint32(o.Storage), Path: []byte(o.Path), Name: []byte(o.Name), Dir: o.Dir,
		Size: o.Size, ModTime: timeToPB(o.ModTime)}
}

// objectFromPB decodes an object the host sent; its path is checked as a device path, as every
// device implementation checks the names it reports.
func objectFromPB(p *pb.DeviceObject) (device.Object, error) {
	if p == nil {
		return device.Object{}, fmt.Errorf("missing object")
	}
	mt, err := timeFromPB(p.GetModTime())
	if err != nil {
		return device.Object{}, fmt.Errorf("object %q: %w", p.GetPath(), err)
	}
	path, err := device.CheckPath(string(p.GetPath()))
	if err != nil {
		return device.Object{}, err
	}
	return device.Object{Storage: device.StorageID(p.GetStorage()), Path: path, Name: string(p.GetName()),
		Dir: p.GetDir(), Size: p.GetSize(), ModTime: mt}, nil
}

func (s *deviceServer) Storages(ctx context.Context, _ *pb.StoragesRequest) (*pb.StoragesReply, error) {
	sts, err := s.dev.Storages(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.StoragesReply{}
	for _, st := range sts {
		out.Storages = append(out.Storages, &pb.DeviceStorage{Id: uint32(st.ID), Description: st.Description,
			Free: st.Free, Capacity: st.Capacity, ReadOnly: st.ReadOnly})
	}
	return out, nil
}

func (s *deviceServer) List(ctx context.Context, req *pb.ObjectRequest) (*pb.ObjectList, error) {
	objs, err := s.dev.List(ctx, device.StorageID(req.GetStorage()), string(req.GetPath()))
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.ObjectList{Objects: make([]*pb.DeviceObject, 0, len(objs))}
	for _, o := range objs {
		out.Objects = append(out.Objects, objectToPB(o))
	}
	return out, nil
}

func (s *deviceServer) Stat(ctx context.Context, req *pb.ObjectRequest) (*pb.DeviceObject, error) {
	o, err := s.dev.Stat(ctx, device.StorageID(req.GetStorage()), string(req.GetPath()))
	if err != nil {
		return nil, toStatus(err)
	}
	return objectToPB(o), nil
}

func (s *deviceServer) Read(req *pb.ReadObjectRequest, stream pb.Device_ReadServer) error {
	ctx := stream.Context()
	path := string(req.GetPath())
	rc, err := s.dev.Open(ctx, device.StorageID(req.GetStorage()), path, req.GetOffset())
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	if err := stream.Send(&pb.Chunk{}); err != nil {
		return err
	}
	for {
		buf := make([]byte, chunkSize)
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
			return toStatus(fmt.Errorf("read %s: %w", path, rerr))
		}
	}
}

func (s *deviceServer) Create(stream pb.Device_CreateServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "a create must start with a header")
	}
	mt, err := timeFromPB(h.GetModTime())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "create: %v", err)
	}
	data := &streamReader{recv: func() ([]byte, bool, error) {
		m, err := stream.Recv()
		if err != nil {
			return nil, false, err
		}
		return m.GetData(), m.GetHeader() != nil, nil
	}, ctx: ctx}
	o, err := s.dev.Create(ctx, device.StorageID(h.GetStorage()), string(h.GetPath()), h.GetSize(), mt, data)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(objectToPB(o))
}

func (s *deviceServer) Mkdir(ctx context.Context, req *pb.ObjectRequest) (*pb.DeviceObject, error) {
	o, err := s.dev.Mkdir(ctx, device.StorageID(req.GetStorage()), string(req.GetPath()))
	if err != nil {
		return nil, toStatus(err)
	}
	return objectToPB(o), nil
}

func (s *deviceServer) Remove(ctx context.Context, req *pb.ObjectRequest) (*pb.RemoveReply, error) {
	if err := s.dev.Delete(ctx, device.StorageID(req.GetStorage()), string(req.GetPath())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RemoveReply{}, nil
}

func (s *deviceServer) Rename(ctx context.Context, req *pb.RenameRequest) (*pb.RenameReply, error) {
	if err := s.dev.Rename(ctx, device.StorageID(req.GetStorage()), string(req.GetFrom()), string(req.GetTo())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RenameReply{}, nil
}

var eventKinds = map[device.EventKind]pb.EventKind{
	device.ObjectAdded:    pb.EventKind_EVENT_OBJECT_ADDED,
	device.ObjectRemoved:  pb.EventKind_EVENT_OBJECT_REMOVED,
	device.ObjectChanged:  pb.EventKind_EVENT_OBJECT_CHANGED,
	device.StorageAdded:   pb.EventKind_EVENT_STORAGE_ADDED,
	device.StorageRemoved: pb.EventKind_EVENT_STORAGE_REMOVED,
	device.DeviceGone:     pb.EventKind_EVENT_DEVICE_GONE,
	device.EventOverflow:  pb.EventKind_EVENT_OVERFLOW,
}

// Events forwards the device's events (through device.Subscribe, beside every other reader in the
// host) until the plugin cancels the stream or the device goes away.
func (s *deviceServer) Events(_ *pb.EventsRequest, stream pb.Device_EventsServer) error {
	ch, stop := device.Subscribe(s.dev)
	defer stop()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				// The device's channel closed: it is gone (a DeviceGone went before, or was lost).
				return stream.Send(&pb.DeviceEvent{Kind: pb.EventKind_EVENT_DEVICE_GONE})
			}
			k, known := eventKinds[ev.Kind]
			if !known {
				continue
			}
			if err := stream.Send(&pb.DeviceEvent{Kind: k, Storage: uint32(ev.Storage), Path: []byte(ev.Path)}); err != nil {
				return err
			}
			if ev.Kind == device.DeviceGone {
				return nil
			}
		}
	}
}

// streamReader is the io.Reader over the data messages of a client stream (a Create on the host,
// a Write in the plugin). It returns io.EOF only when the sender half-closed the stream after the
// last byte; a cancelled or broken stream is an error, so that the receiver discards what it got.
type streamReader struct {
	recv func() (data []byte, header bool, err error)
	ctx  context.Context
	buf  []byte
	err  error
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		data, header, err := r.recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			if cerr := r.ctx.Err(); cerr != nil {
				r.err = fmt.Errorf("receive the data: %w", cerr)
			} else {
				r.err = fmt.Errorf("receive the data: %w", err)
			}
		case header:
			r.err = errors.New("receive the data: a second header in one stream")
		default:
			r.buf = data
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
