package fsstore

import (
	"context"
	"fmt"
	"io"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// roomShare is the share of a storage that must stay free for the device to keep versions: below
// it, the old content goes to this computer instead.
const roomShare = 10

// keep keeps the device's file at handle (cur) before the store replaces or deletes it for
// cause: on the device (a rename into its versions area) where it can rename and has room, else
// copied to this computer. It returns whether the object was moved away; if not, it is still in
// its place and the caller removes it. Nothing is kept for repl.CauseNone, for folders, or
// without a versions area.
func (s *DeviceStore) keep(ctx context.Context, handle string, cur repl.Entry, cause repl.Cause) (bool, error) {
	r := versions.ReasonOf(cause)
	if r == "" || cur.Kind != repl.KindFile || (s.area == nil && s.versions == nil) {
		return false, nil
	}
	if s.area != nil {
		room, err := s.room(ctx)
		if err != nil {
			return false, err
		}
		rename := false
		if room {
			if rename, err = s.canRename(ctx); err != nil {
				return false, err
			}
		}
		if rename {
			err := s.area.Keep(ctx, s.full(handle), handle, r, cur.Size, cur.ModTime)
			if err == nil {
				return true, nil
			}
			if transient(ctx, err) || s.versions == nil {
				return false, fmt.Errorf("keep the old version of %s: %w", s.full(handle), providers.MapDeviceError(err))
			}
			s.logf("files: the old version of %s could not be kept on the device (%v); it is kept on this computer", s.full(handle), err)
		}
	}
	if s.versions == nil {
		return false, nil
	}
	rc, err := s.dev.Open(ctx, s.storage, s.full(handle), 0)
	if err != nil {
		return false, fmt.Errorf("keep the old version of %s: %w", s.full(handle), providers.MapDeviceError(err))
	}
	defer rc.Close()
	if err := s.versions.Save(ctx, &exactReader{r: rc, left: cur.Size}, handle, r, cur.ModTime); err != nil {
		return false, fmt.Errorf("keep the old version of %s on this computer: %w", s.full(handle), providers.MapFSError(providers.MapDeviceError(err)))
	}
	return false, nil
}

// room tells whether the device's storage has room to keep versions: at least a roomShare-th of
// it free (a storage that does not say its size has none).
func (s *DeviceStore) room(ctx context.Context) (bool, error) {
	sts, err := s.dev.Storages(ctx)
	if err != nil {
		return false, fmt.Errorf("read the device's free space: %w", providers.MapDeviceError(err))
	}
	for _, st := range sts {
		if st.ID == s.storage {
			return st.Capacity > 0 && st.Free >= st.Capacity/roomShare, nil
		}
	}
	return false, nil
}

// exactReader reads exactly left bytes from r: fewer or more is an error, so that a copy cut
// short is never kept for the content.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left < 0:
		return n, fmt.Errorf("the device sent more than the file's size: %w", repl.ErrChanged)
	case err == io.EOF && e.left > 0:
		return n, fmt.Errorf("the device sent %d bytes less than the file's size: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}
