//go:build linux

package emulator

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// Linux's lseek whence values for finding holes in sparse files.
const (
	seekData = 3
	seekHole = 4
)

// fileReader reads size bytes of f from off. It asks the file system where the holes of a sparse
// file are and fills them with zeros instead of reading them: the kernel's zero-filling of a
// multi-gigabyte hole is far slower than the copy through the emulated pipes.
func fileReader(f *os.File, off, size int64) io.Reader {
	return &sparseReader{f: f, off: off, end: off + size, hole: off, data: off}
}

type sparseReader struct {
	f    *os.File
	off  int64
	end  int64
	hole int64 // the current hole ends here (a known hole covers [off, hole))
	data int64 // the current data region ends here
}

func (s *sparseReader) Read(p []byte) (int, error) {
	if s.off >= s.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.end-s.off)]
	if s.off >= s.hole && s.off >= s.data {
		s.probe()
	}
	if s.off < s.hole {
		n := min(int64(len(p)), s.hole-s.off)
		clear(p[:n])
		s.off += n
		return int(n), nil
	}
	n, err := s.f.ReadAt(p[:min(int64(len(p)), s.data-s.off)], s.off)
	s.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// probe finds whether off starts a hole or data, and where that region ends.
func (s *sparseReader) probe() {
	data, err := s.f.Seek(s.off, seekData)
	switch {
	case errors.Is(err, syscall.ENXIO):
		s.hole = s.end // only a hole until the end of the file
	case err != nil:
		s.data = s.end // no hole support: read everything
	case data > s.off:
		s.hole = data
	default:
		hole, err := s.f.Seek(s.off, seekHole)
		if err != nil || hole <= s.off {
			hole = s.end
		}
		s.data = hole
	}
}
