package mtp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/cradle-sync/cradle/device"
)

// Open returns the content of the file at p from offset on. Where the device offers
// GetPartialObject (or Android's GetPartialObject64, needed beyond 4 GiB) the reader fetches
// chunks in separate transactions and offset costs nothing; otherwise it streams one GetObject,
// skipping offset bytes, and holds the device until it is read to the end or closed.
func (d *Device) Open(ctx context.Context, s device.StorageID, p string, offset int64) (io.ReadCloser, error) {
	p, err := device.CheckPath(p)
	if err == nil {
		err = d.ptpGuard(p)
	}
	if err != nil {
		return nil, err
	}
	var (
		h       uint32
		size    int64
		session uint64
	)
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, p)
		if err != nil {
			return err
		}
		if n.dir {
			return fmt.Errorf("it is a folder: %w", device.ErrUnsupported)
		}
		e, err := d.objectInfo(ctx, n.handle)
		if err == nil && e.name != n.name {
			err = &ResponseError{Op: OpGetObjectInfo, Code: RespInvalidObjectHandle}
		}
		h, size, session = n.handle, e.size, d.session
		return err
	})
	if err == nil && (offset < 0 || offset > size) {
		err = fmt.Errorf("offset %d is outside the object's %d bytes", offset, size)
	}
	if err != nil {
		return nil, fmt.Errorf("open %q on the device: %w", p, err)
	}
	switch {
	case d.devInfo.Supports(OpGetPartialObject64):
		return &partialReader{ctx: ctx, d: d, storage: s, path: p, handle: h, session: session, size: size, off: offset, wide: true}, nil
	case d.devInfo.Supports(OpGetPartialObject) && size < 0xFFFFFFFF:
		return &partialReader{ctx: ctx, d: d, storage: s, path: p, handle: h, session: session, size: size, off: offset}, nil
	}
	return d.stream(ctx, p, h, size, offset), nil
}

// partialReader reads an object in GetPartialObject(64) chunks.
type partialReader struct {
	ctx     context.Context // the Open call's: a reader outlives no more than its caller wants
	d       *Device
	storage device.StorageID
	path    string
	handle  uint32
	session uint64 // the Device's session handle belongs to
	size    int64
	off     int64
	wide    bool
	buf     bytes.Buffer
	pending []byte
	closed  bool
}

// Read implements io.Reader, fetching a chunk when the last one is used up.
func (r *partialReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read %q from the device: %w", r.path, fs.ErrClosed)
	}
	if len(r.pending) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			return 0, fmt.Errorf("read %q from the device at offset %d: %w", r.path, r.off, err)
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *partialReader) fetch() error {
	want := min(int64(partialChunk), r.size-r.off)
	if r.off+want == r.size && (want+HeaderSize)%int64(r.d.conn.packet) == 0 {
		// Samsung Galaxy devices hang on a read of a file's last bytes whose last packet is a
		// whole one (libmtp's DEVICE_FLAG_SAMSUNG_OFFSET_BUG): the last 512 bytes are read
		// apart. On every device: it costs one more transaction for one file in 512.
		if want > 512 {
			want -= 512
		} else {
			want /= 2
		}
	}
	op := OpGetPartialObject
	if r.wide {
		op = OpGetPartialObject64
	}
	var resp Container
	stale := false
	err := r.d.locked(r.ctx, func() error {
		if stale || r.session != r.d.session {
			// The device renumbered its objects, or a new session did: find the object again.
			if err := r.refind(); err != nil {
				return err
			}
		}
		params := []uint32{r.handle, uint32(r.off), uint32(want)}
		if r.wide {
			params = []uint32{r.handle, uint32(r.off), uint32(r.off >> 32), uint32(want)}
		}
		r.buf.Reset()
		var err error
		resp, err = r.d.conn.do(r.ctx, call{op: op, params: params, expect: want, recv: func(rd io.Reader) error {
			_, err := io.Copy(&r.buf, io.LimitReader(rd, want))
			return err
		}})
		stale = isResponse(err, RespInvalidObjectHandle)
		return err
	})
	if err != nil {
		return err
	}
	got := int64(r.buf.Len())
	if sent := resp.Param(0); len(resp.Params) > 0 && int64(sent) != got {
		return fmt.Errorf("%w: %v announced %d bytes and sent %d", ErrProtocol, op, sent, got)
	}
	if got == 0 {
		return fmt.Errorf("the object ended at %d of %d bytes (it changed on the device): %w", r.off, r.size, io.ErrUnexpectedEOF)
	}
	r.pending = r.buf.Bytes()
	r.off += got
	return nil
}

// refind looks up the reader's object by its path after its handle went stale, and takes the
// new handle if the object is the same size (else it changed: the read fails). It runs under the
// lock.
func (r *partialReader) refind() error {
	n, err := r.d.resolve(r.ctx, r.storage, r.path)
	if err != nil {
		return err
	}
	e, err := r.d.objectInfo(r.ctx, n.handle)
	if err != nil {
		return err
	}
	if e.dir || e.name != n.name || e.size != r.size {
		return fmt.Errorf("the object changed on the device while it was read: %w", io.ErrUnexpectedEOF)
	}
	r.handle, r.session = n.handle, r.d.session
	return nil
}

// Close ends the reader; the device holds nothing for it between chunks.
func (r *partialReader) Close() error {
	r.closed = true
	r.pending = nil
	return nil
}

// stream reads an object with one GetObject, in a goroutine that holds the device until the
// data phase is over: read to the end, or abandoned by Close.
func (d *Device) stream(ctx context.Context, p string, h uint32, size, offset int64) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	sr := &streamReader{PipeReader: pr, pw: pw, done: done}
	d.streamMu.Lock()
	d.streams[sr] = true
	d.streamMu.Unlock()
	go func() {
		defer close(done)
		defer func() {
			d.streamMu.Lock()
			delete(d.streams, sr)
			d.streamMu.Unlock()
		}()
		var copied int64
		err := d.locked(ctx, func() error {
			copied = 0
			_, err := d.conn.do(ctx, call{op: OpGetObject, params: []uint32{h}, expect: size, recv: func(r io.Reader) error {
				if _, err := io.CopyN(io.Discard, r, offset); err != nil {
					return err
				}
				var err error
				copied, err = io.Copy(pw, r)
				return err
			}})
			return err
		})
		if err == nil && copied != size-offset {
			err = fmt.Errorf("%w: the device sent %d of %d bytes", io.ErrUnexpectedEOF, copied, size-offset)
		}
		if err != nil {
			err = fmt.Errorf("read %q from the device: %w", p, err)
		}
		pw.CloseWithError(err)
	}()
	return sr
}

type streamReader struct {
	*io.PipeReader
	pw   *io.PipeWriter
	done chan struct{}
}

// Close abandons the transfer and waits until the device is free again.
func (r *streamReader) Close() error {
	r.PipeReader.Close()
	<-r.done
	return nil
}
