// Command cradle-provider-onefile is a test plugin whose desktop side is a store of one item: one
// file (the "file" option), synced with the file of the same name in the device folder. It
// declares NoKeepBoth: its store has no room for a conflict copy beside the file. With the crash
// option, the store panics when it is asked to write.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/repl"
)

func main() {
	plugin.Serve(plugin.Declaration{
		Name:        "onefile",
		Description: "one file, synced with the file of the same name in a device folder",
		Options: []providers.Option{
			{Name: "file", Label: "File", Help: "the file to sync", Kind: providers.KindString, Required: true},
			{Name: "crash", Label: "Crash", Help: "panic when asked to write", Kind: providers.KindBool, Default: "false"},
		},
		NoKeepBoth: true,
	}, func(_ context.Context, env plugin.Env) (repl.Store, error) {
		p, err := filepath.Abs(env.Options["file"])
		if err != nil {
			return nil, err
		}
		return &oneFile{path: p, name: filepath.Base(p), crash: env.Options["crash"] == "true"}, nil
	})
}

// oneFile is a store of one item: the file at path, named by its base name.
type oneFile struct {
	path, name string
	crash      bool
}

func (s *oneFile) Stat(_ context.Context, handle string) (repl.Entry, error) {
	if handle != s.name {
		return repl.Entry{}, fmt.Errorf("stat %q: %w", handle, repl.ErrNotFound)
	}
	fi, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return repl.Entry{}, fmt.Errorf("stat %q: %w", handle, repl.ErrNotFound)
	}
	if err != nil {
		return repl.Entry{}, err
	}
	return repl.Entry{Handle: s.name, Kind: repl.KindFile, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (s *oneFile) Enumerate(ctx context.Context) (repl.Iterator, error) {
	e, err := s.Stat(ctx, s.name)
	if errors.Is(err, repl.ErrNotFound) {
		return &list{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &list{items: []repl.Entry{e}}, nil
}

type list struct{ items []repl.Entry }

func (l *list) Next(context.Context) (repl.Entry, error) {
	if len(l.items) == 0 {
		return repl.Entry{}, io.EOF
	}
	e := l.items[0]
	l.items = l.items[1:]
	return e, nil
}

func (l *list) Close() error { return nil }

func (s *oneFile) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

func (s *oneFile) IsItemReplicated(e repl.Entry) bool { return e.Handle == s.name }

func (s *oneFile) NaturalKey(_ context.Context, e repl.Entry) (string, error) { return e.Handle, nil }

func (s *oneFile) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if _, err := s.Stat(ctx, handle); err != nil {
		return nil, err
	}
	return os.Open(s.path)
}

func (s *oneFile) check(ctx context.Context, handle string, expected *repl.Stamp) error {
	if handle == "" {
		if _, err := os.Stat(s.path); err == nil {
			return fmt.Errorf("%s: %w", s.name, repl.ErrExists)
		}
		return nil
	}
	e, err := s.Stat(ctx, handle)
	if err != nil {
		return err
	}
	if expected != nil && repl.StampChanged(*expected, e) {
		return fmt.Errorf("%s: %w", s.name, repl.ErrChanged)
	}
	return nil
}

func (s *oneFile) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if s.crash {
		panic("told to crash when writing " + req.Name)
	}
	if req.Name != s.name || req.Kind != repl.KindFile {
		return repl.Entry{}, fmt.Errorf("write %q: this store holds only %s: %w", req.Name, s.name, repl.ErrInvalidName)
	}
	if err := s.check(ctx, req.Handle, req.Expected); err != nil {
		return repl.Entry{}, err
	}
	tmp := s.path + ".cradle-tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return repl.Entry{}, err
	}
	defer os.Remove(tmp)
	if req.Data != nil {
		if _, err := io.Copy(f, req.Data); err != nil {
			f.Close()
			return repl.Entry{}, err
		}
	}
	if err := f.Close(); err != nil {
		return repl.Entry{}, err
	}
	if !req.ModTime.IsZero() {
		if err := os.Chtimes(tmp, req.ModTime, req.ModTime); err != nil {
			return repl.Entry{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return repl.Entry{}, err
	}
	return s.Stat(ctx, s.name)
}

func (s *oneFile) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	if err := s.check(ctx, handle, &expected); err != nil {
		return err
	}
	return os.Remove(s.path)
}
