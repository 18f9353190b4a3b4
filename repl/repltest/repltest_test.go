package repltest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// The suite must catch broken stores, or it proves nothing. Each broken store below has one
// defect; TestSuiteCatchesDefects runs the suite against it in a child process (a failing suite
// fails its *testing.T) and checks that the child fails in the check that covers the defect.

type editor struct{ s *memstore.Store }

func (e editor) Put(name string, data []byte, mod time.Time) (string, error) {
	return name, e.s.Put(name, data, mod)
}
func (e editor) Remove(h string) error { return e.s.Remove(h) }

// ignoresExpected overwrites whatever is there, like a store that never checks the stamp.
type ignoresExpected struct{ *memstore.Store }

func (s ignoresExpected) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	req.Expected = nil
	return s.Store.Write(ctx, req)
}

// overwritesOnCreate replaces an existing item on create instead of refusing.
type overwritesOnCreate struct{ *memstore.Store }

func (s overwritesOnCreate) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle == "" {
		if e, ok := s.Lookup(req.Name); ok {
			req.Handle = e.Handle
		}
	}
	return s.Store.Write(ctx, req)
}

// losesModTime stamps every written item with the time of the write.
type losesModTime struct{ *memstore.Store }

func (s losesModTime) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	req.ModTime = time.Now()
	return s.Store.Write(ctx, req)
}

// vagueNames refuses bad names with an error that does not say which.
type vagueNames struct{ *memstore.Store }

func (s vagueNames) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err := repl.CheckName(req.Name); err != nil {
		return repl.Entry{}, errors.New("write failed")
	}
	return s.Store.Write(ctx, req)
}

// keepsPartial claims to be atomic but keeps what it read before an error.
type keepsPartial struct{ *memstore.Store }

func (s keepsPartial) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Kind != repl.KindFile || req.Data == nil {
		return s.Store.Write(ctx, req)
	}
	data, rerr := io.ReadAll(req.Data)
	req.Data = bytes.NewReader(data)
	req.Size = int64(len(data))
	e, err := s.Store.Write(context.Background(), req)
	if rerr != nil {
		return e, rerr
	}
	if cerr := ctx.Err(); cerr != nil {
		return e, cerr
	}
	return e, err
}

var broken = map[string]struct {
	store func(*memstore.Store) repl.Store
	check string // a subtest that must fail
}{
	"ignores-expected":     {func(s *memstore.Store) repl.Store { return ignoresExpected{s} }, "StaleWrite"},
	"overwrites-on-create": {func(s *memstore.Store) repl.Store { return overwritesOnCreate{s} }, "CreateExisting"},
	"loses-modtime":        {func(s *memstore.Store) repl.Store { return losesModTime{s} }, "ModTime"},
	"vague-names":          {func(s *memstore.Store) repl.Store { return vagueNames{s} }, "InvalidNames"},
	"keeps-partial":        {func(s *memstore.Store) repl.Store { return keepsPartial{s} }, "CancelledWrite"},
}

const childEnv = "REPLTEST_BROKEN_STORE"

// TestBrokenStoreChild is the child process's test: it only runs when the parent asks.
func TestBrokenStoreChild(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		return // not a child: nothing to do here (the parent is TestSuiteCatchesDefects)
	}
	b := broken[name]
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{})
			return b.store(s), editor{s}
		},
		Folders: true,
		Moves:   true,
	})
}

func TestSuiteCatchesDefects(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestBrokenStoreChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store that %s; output:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenStoreChild/"+b.check) {
				t.Errorf("the suite did not fail %s for a store that %s; output:\n%s", b.check, name, out)
			}
		})
	}
}

// oneItem is a store of one item, "settings.conf" (a settings file, or one file standing for a
// whole folder): any other name is refused.
type oneItem struct{ *memstore.Store }

const oneName = "settings.conf"

func (s oneItem) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Name != oneName {
		return repl.Entry{}, fmt.Errorf("write %q: this store holds only %s: %w", req.Name, oneName, repl.ErrInvalidName)
	}
	return s.Store.Write(ctx, req)
}

// A store of one item runs the whole suite with MaxItems: 1: no check needs a second name.
func TestOneItemStore(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{})
			return oneItem{s}, editor{s}
		},
		MaxItems: 1,
		Name: func(i int) string {
			if i == 0 {
				return oneName
			}
			return fmt.Sprintf("other-%d.conf", i) // refused: a check that uses it fails
		},
		InvalidNames: []string{"other.conf", "", "../settings.conf"},
	})
}

// crlf is a store that normalises content: it keeps text with CRLF line ends, whatever it is
// given, as an iCalendar or vCard store does.
type crlf struct{ *memstore.Store }

func toCRLF(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func (s crlf) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Kind != repl.KindFile || req.Data == nil {
		return s.Store.Write(ctx, req)
	}
	data, err := io.ReadAll(req.Data)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %q: %w", req.Name, err)
	}
	if req.Size >= 0 && int64(len(data)) != req.Size {
		return repl.Entry{}, fmt.Errorf("write %q: got %d bytes of %d: %w", req.Name, len(data), req.Size, io.ErrUnexpectedEOF)
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("write %q: %w", req.Name, err)
	}
	norm := toCRLF(data)
	req.Data, req.Size = bytes.NewReader(norm), int64(len(norm))
	return s.Store.Write(ctx, req)
}

// A store that normalises content passes with SameContent: the sizes it reports are those of what
// it holds, not of the bytes written.
func TestNormalisingStore(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{})
			return crlf{s}, editor{s}
		},
		SameContent: func(want, got []byte) bool { return bytes.Equal(toCRLF(want), toCRLF(got)) },
		Folders:     true,
		Moves:       true,
		LargeSize:   256 << 10,
	})
}
