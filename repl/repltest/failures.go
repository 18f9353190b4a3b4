package repltest

// The checks of writes that fail half-way (cancelled, a failing or short source), refused names,
// large content and concurrent reads.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cradle-sync/cradle/repl"
)

func atomic(st repl.Store) bool {
	a, ok := st.(repl.Atomicity)
	return !ok || a.WritesAtomic()
}

// cancelReader returns data in small pieces and cancels ctx after the first one.
type cancelReader struct {
	data   []byte
	cancel context.CancelFunc
	n      int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.n > 0 {
		r.cancel()
	}
	r.n++
	k := min(len(p), len(r.data), 1024)
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func (s *suite) testCancelledWrite(t *testing.T) {
	st, _ := s.h.New(t)
	big := bytes.Repeat([]byte("cancel me "), 64<<10/10)
	// A create.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.Write(ctx, repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(big)),
		ModTime: baseTime, Data: &cancelReader{data: big, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write whose ctx was cancelled mid-stream = %v, want context.Canceled", err)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a cancelled create left %v visible", keys(got))
		}
	}
	// An update: the old content must stay.
	i := s.items(2) - 1
	e := s.create(t, st, i, 0)
	stamp := e.Stamp()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	_, err = st.Write(ctx2, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(i), Kind: repl.KindFile,
		Size: int64(len(big)), ModTime: baseTime, Data: &cancelReader{data: big, cancel: cancel2}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("update whose ctx was cancelled mid-stream = %v, want context.Canceled", err)
	}
	if atomic(st) {
		if b := read(t, st, e.Handle); !s.same(s.content(i, 0), b) {
			t.Errorf("a cancelled update left %q with %d bytes, want the old content", e.Handle, len(b))
		}
	}
}

var errSource = errors.New("source went away")

type failingReader struct {
	data []byte
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errSource
	}
	k := min(len(p), len(r.data), 1024)
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func (s *suite) testFailingData(t *testing.T) {
	st, _ := s.h.New(t)
	data := bytes.Repeat([]byte("abc"), 10000)
	_, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)) * 2,
		ModTime: baseTime, Data: &failingReader{data: data}})
	if !errors.Is(err, errSource) {
		t.Errorf("Write whose data fails = %v, want the reader's error wrapped", err)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a failed create left %v visible", keys(got))
		}
	}
}

func (s *suite) testShortData(t *testing.T) {
	st, _ := s.h.New(t)
	data := s.content(0, 0)
	_, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)) + 100,
		ModTime: baseTime, Data: bytes.NewReader(data)})
	if err == nil {
		t.Errorf("Write of %d bytes announced as %d succeeded, want an error (the source changed or was cut short)", len(data), len(data)+100)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a short write left %v visible", keys(got))
		}
	}
}

func (s *suite) testInvalidNames(t *testing.T) {
	st, _ := s.h.New(t)
	names := s.h.InvalidNames
	if names == nil {
		names = DefaultInvalidNames
	}
	for _, n := range names {
		_, err := st.Write(ctxT(t), repl.WriteRequest{Name: n, Kind: repl.KindFile, Size: 1, Data: strings.NewReader("x")})
		if !errors.Is(err, repl.ErrInvalidName) {
			t.Errorf("Write(name %q) = %v, want ErrInvalidName", n, err)
		}
	}
	if got := enumerate(t, st); len(files(got)) != 0 {
		t.Errorf("refused names left %v", keys(got))
	}
}

// patternReader yields n deterministic bytes and hides any WriterTo or Seeker.
type patternReader struct {
	n, off int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.off)
	for i := 0; i < k; i++ {
		x := r.off + i
		p[i] = byte(x*7 + x>>11)
	}
	r.off += k
	return k, nil
}

func (s *suite) testLarge(t *testing.T) {
	st, _ := s.h.New(t)
	size := s.h.LargeSize
	if size == 0 {
		size = 4 << 20
	}
	want := sha256.New()
	if _, err := io.Copy(want, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	e, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(size), ModTime: baseTime, Data: &patternReader{n: size}})
	if err != nil {
		t.Fatalf("Write of %d bytes: %v", size, err)
	}
	if s.h.SameContent != nil {
		// A store that normalises content: what it holds must say the same and match its size.
		held := read(t, st, e.Handle)
		var b bytes.Buffer
		if _, err := io.Copy(&b, &patternReader{n: size}); err != nil {
			t.Fatal(err)
		}
		if !s.same(b.Bytes(), held) || e.Size != int64(len(held)) {
			t.Errorf("large item %q: Write returned size %d, holds %d bytes (same content: %v)", e.Handle, e.Size, len(held), s.same(b.Bytes(), held))
		}
		return
	}
	if e.Size != int64(size) {
		t.Errorf("Write of %d bytes returned size %d", size, e.Size)
	}
	rc, err := st.Open(ctxT(t), e.Handle)
	if err != nil {
		t.Fatalf("Open(%q): %v", e.Handle, err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("reading %q: %v", e.Handle, err)
	}
	if n != int64(size) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("large item %q read back as %d bytes with a different hash, want %d bytes identical", e.Handle, n, size)
	}
}

func (s *suite) testConcurrentReads(t *testing.T) {
	st, ed := s.h.New(t)
	var handles []string
	for i := 0; i < s.items(6); i++ {
		handles = append(handles, s.put(t, ed, i, 0, baseTime))
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				h := handles[(g+k)%len(handles)]
				rc, err := st.Open(ctx, h)
				if err != nil {
					errs <- fmt.Errorf("open %q: %w", h, err)
					return
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					errs <- err
				}
				rc.Close()
				it, err := st.Enumerate(ctx)
				if err != nil {
					errs <- fmt.Errorf("enumerate: %w", err)
					return
				}
				for {
					if _, err := it.Next(ctx); err != nil {
						if err != io.EOF {
							errs <- err
						}
						break
					}
				}
				it.Close()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}
