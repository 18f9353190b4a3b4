package emulator

import (
	"io/fs"
	"os"

	"github.com/cradle-sync/cradle/device/mtp"
)

// openFile opens the file of handle h for reading.
func (r *responder) openFile(h uint32) (*os.File, fs.FileInfo, answer) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	o, fi := r.e.tab.lookup(h)
	if o == nil {
		return nil, nil, fail(mtp.RespInvalidObjectHandle)
	}
	if o.dir {
		return nil, nil, fail(mtp.RespInvalidObjectFormatCode)
	}
	f, err := os.Open(r.e.tab.path(o))
	if err != nil {
		return nil, nil, fail(mtp.RespAccessDenied)
	}
	r.e.tab.seen(o, fi)
	return f, fi, ok()
}

func (r *responder) getObject(p []uint32) (answer, error) {
	f, fi, a := r.openFile(param(p, 0))
	if f == nil {
		return a, nil
	}
	defer f.Close()
	size := fi.Size()
	short := false
	err := r.sendData(size, func(w *transferWriter) error {
		var err error
		short, err = w.readFrom(fileReader(f, 0, size), size)
		return err
	})
	if err != nil {
		return answer{}, err
	}
	if short {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	return ok(), nil
}

func (r *responder) getPartialObject(p []uint32) (answer, error) {
	off, n := int64(param(p, 1)), int64(param(p, 2))
	if r.op == mtp.OpGetPartialObject64 {
		off |= int64(param(p, 2)) << 32
		n = int64(param(p, 3))
	}
	f, fi, a := r.openFile(param(p, 0))
	if f == nil {
		return a, nil
	}
	defer f.Close()
	if off > fi.Size() {
		return fail(mtp.RespInvalidParameter), nil
	}
	n = min(n, fi.Size()-off)
	if r.e.opts.BoundaryStall && off+n == fi.Size() && (n+mtp.HeaderSize)%packetSize == 0 {
		// Samsung: a read of a file's last bytes whose last packet is a whole one hangs.
		r.e.log.Info("emulator: a partial read to the end of a file ends on a packet boundary; stalling", "offset", off, "bytes", n)
		select {
		case <-r.abort:
			return answer{}, errAborted
		case <-r.e.gone:
			return answer{}, mtp.ErrTransportClosed
		}
	}
	short := false
	err := r.sendData(n, func(w *transferWriter) error {
		var err error
		short, err = w.readFrom(fileReader(f, off, n), n)
		return err
	})
	if err != nil {
		return answer{}, err
	}
	if short {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	return ok(uint32(n)), nil
}

func (r *responder) deleteObject(p []uint32) (answer, error) {
	h := param(p, 0)
	if h == 0xFFFFFFFF {
		return fail(mtp.RespParameterNotSupported), nil
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	o, _ := e.tab.lookup(h)
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	path := e.tab.path(o)
	var err error
	if o.dir {
		err = os.RemoveAll(path)
	} else {
		err = os.Remove(path)
	}
	if err != nil {
		e.log.Warn("emulator: delete failed", "path", path, "err", err)
		return fail(mtp.RespAccessDenied), nil
	}
	e.tab.remove(o)
	return ok(), nil
}
