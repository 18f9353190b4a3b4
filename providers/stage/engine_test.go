package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// pairStore is a store whose items are two files each: NAME.head holds an item's first line,
// NAME.body the rest (as a note and its attachments, a photo and its sidecar). With staged, it
// writes an item's two files through a stage.Dir; without, one after the other.
type pairStore struct {
	root   string
	staged *Dir
	// crashAfterHead, without staging, stops a write after the head file, as a crash would.
	crashAfterHead bool
}

var errCrash = fmt.Errorf("the process died here: %w", repl.ErrGone)

func openPair(t *testing.T, root string, staged bool) *pairStore {
	t.Helper()
	s := &pairStore{root: root}
	if staged {
		d, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		s.staged = d
	}
	return s
}

func (s *pairStore) files(name string) (head, body string) {
	return filepath.Join(s.root, name+".head"), filepath.Join(s.root, name+".body")
}

func (s *pairStore) Stat(_ context.Context, name string) (repl.Entry, error) {
	head, body := s.files(name)
	hi, err := os.Stat(head)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("stat %s: %w", name, repl.ErrNotFound)
	}
	bi, err := os.Stat(body)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("stat %s: %w", name, repl.ErrNotFound)
	}
	mt := hi.ModTime()
	if bi.ModTime().After(mt) {
		mt = bi.ModTime()
	}
	return repl.Entry{Handle: name, Kind: repl.KindFile, Size: hi.Size() + bi.Size(), ModTime: mt}, nil
}

type entries struct{ list []repl.Entry }

func (e *entries) Next(context.Context) (repl.Entry, error) {
	if len(e.list) == 0 {
		return repl.Entry{}, io.EOF
	}
	x := e.list[0]
	e.list = e.list[1:]
	return x, nil
}

func (e *entries) Close() error { return nil }

func (s *pairStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".head"); ok && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	it := &entries{}
	for _, n := range names {
		if e, err := s.Stat(ctx, n); err == nil {
			it.list = append(it.list, e)
		}
	}
	return it, nil
}

func (s *pairStore) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

func (s *pairStore) IsItemReplicated(repl.Entry) bool { return true }

func (s *pairStore) NaturalKey(_ context.Context, e repl.Entry) (string, error) { return e.Handle, nil }

func (s *pairStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := s.Stat(ctx, name); err != nil {
		return nil, err
	}
	head, body := s.files(name)
	h, err := os.ReadFile(head)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(body)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(append(h, b...))), nil
}

func (s *pairStore) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle != "" && req.Expected != nil {
		now, err := s.Stat(ctx, req.Handle)
		if err != nil {
			return repl.Entry{}, err
		}
		if repl.StampChanged(*req.Expected, now) {
			return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, repl.ErrChanged)
		}
	}
	data, err := io.ReadAll(req.Data)
	if err != nil {
		return repl.Entry{}, err
	}
	i := bytes.IndexByte(data, '\n') + 1
	headData, bodyData := data[:i], data[i:]
	if s.staged != nil {
		tx, err := s.staged.Begin()
		if err != nil {
			return repl.Entry{}, err
		}
		if err := tx.WriteFile(req.Name+".head", headData, req.ModTime); err != nil {
			tx.Abort()
			return repl.Entry{}, err
		}
		if err := tx.WriteFile(req.Name+".body", bodyData, req.ModTime); err != nil {
			tx.Abort()
			return repl.Entry{}, err
		}
		if err := tx.Commit(ctx); err != nil {
			return repl.Entry{}, err
		}
		return s.Stat(ctx, req.Name)
	}
	head, body := s.files(req.Name)
	for i, f := range []struct {
		path string
		data []byte
	}{{head, headData}, {body, bodyData}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o644); err != nil {
			return repl.Entry{}, err
		}
		if err := os.Chtimes(tmp, req.ModTime, req.ModTime); err != nil {
			return repl.Entry{}, err
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return repl.Entry{}, err
		}
		if i == 0 && s.crashAfterHead {
			return repl.Entry{}, errCrash
		}
	}
	return s.Stat(ctx, req.Name)
}

func (s *pairStore) Delete(ctx context.Context, name string, expected repl.Stamp) error {
	return errors.New("not needed here")
}

// TestCrashMidItemLeavesNothingToResolve: an item of two files is being written from the device
// when the process dies between the two files. With the item staged, the next session finds the
// item whole (the new version) and nothing to resolve; written file by file, the half item is an
// edit of the desktop's that meets the device's as a conflict.
func TestCrashMidItemLeavesNothingToResolve(t *testing.T) {
	for _, tc := range []struct {
		name          string
		staged        bool
		wantConflicts int
	}{{"staged", true, 0}, {"file by file", false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			hf, err := repl.Open(filepath.Join(t.TempDir(), "state.repl"), repl.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			dev := memstore.New(memstore.Options{})
			v1, v2 := "title\nfirst body\n", "new title\nsecond body, longer\n"
			t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			if err := dev.Put("note", []byte(v1), t0); err != nil {
				t.Fatal(err)
			}
			desk := openPair(t, root, tc.staged)
			sync := func(desk repl.Store) *repl.Report {
				t.Helper()
				rep, err := hf.Sync(ctx, repl.Side{Name: "desktop", Store: desk}, repl.Side{Name: "device", Store: dev}, repl.Config{})
				if err != nil && !errors.Is(err, repl.ErrGone) {
					t.Fatalf("Sync: %v", err)
				}
				return rep
			}
			sync(desk)
			if err := dev.Put("note", []byte(v2), t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			// The process dies between the item's two files.
			if tc.staged {
				testAfterStep = func(i int) error {
					if i == 0 {
						return errCrash
					}
					return nil
				}
			} else {
				desk.crashAfterHead = true
			}
			sync(desk)
			testAfterStep = nil
			// Cradle starts the plugin again, and syncs.
			desk = openPair(t, root, tc.staged)
			rep := sync(desk)
			cs, err := hf.Conflicts()
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != tc.wantConflicts || len(rep.Conflicts) != tc.wantConflicts {
				t.Errorf("after the restart: %d conflicts pending (%d in the session), want %d", len(cs), len(rep.Conflicts), tc.wantConflicts)
			}
			if tc.wantConflicts > 0 {
				return
			}
			rc, err := desk.Open(ctx, "note")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if string(got) != v2 {
				t.Errorf("the desktop's note = %q, want the device's %q", got, v2)
			}
		})
	}
}
