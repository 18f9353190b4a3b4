package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// Folder is the desktop side: a folder with one .ics file per event, as vdirsyncer and khal keep
// a calendar. An event is named by its UID, whatever its file is called; a file Cradle creates is
// called after the UID. Its change units are the event's properties (see ical.go).
type Folder struct {
	dir string

	mu    sync.Mutex
	files map[string]string // UID -> file, as the last look at the folder found them
}

var (
	_ repl.UnitStore = (*Folder)(nil)
	_ repl.Stater    = (*Folder)(nil)
)

// OpenFolder opens the calendar folder dir.
func OpenFolder(dir string) (*Folder, error) {
	if dir == "" {
		return nil, errors.New("the calendar folder is not set: give the partnership a desktop folder")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("calendar folder: %w", mapErr(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("calendar folder %s is a file, not a folder", dir)
	}
	return &Folder{dir: dir, files: map[string]string{}}, nil
}

// readFile reads the event in file; an event is a file that parses as one event.
func readFile(path string) (*event, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	c, err := parseCalendar(data)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.events) != 1 {
		return nil, time.Time{}, fmt.Errorf("%s holds %d events, want one", path, len(c.events))
	}
	return c.events[0], fi.ModTime(), nil
}

// scan reads every event file and returns the events with their files. A file that is not an
// event is left alone (and out of the sync).
func (f *Folder) scan() ([]repl.Entry, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("read the calendar folder: %w", mapErr(err))
	}
	files := map[string]string{}
	var out []repl.Entry
	for _, de := range ents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".ics") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		p := filepath.Join(f.dir, de.Name())
		ev, mod, err := readFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil || files[ev.uid] != "" {
			continue // not one event, or a second file for one UID
		}
		files[ev.uid] = p
		e := ev.entry()
		e.ModTime = mod
		out = append(out, e)
	}
	f.mu.Lock()
	f.files = files
	f.mu.Unlock()
	return out, nil
}

// Enumerate lists the events.
func (f *Folder) Enumerate(ctx context.Context) (repl.Iterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	es, err := f.scan()
	if err != nil {
		return nil, err
	}
	return &entries{list: es}, nil
}

type entries struct{ list []repl.Entry }

func (l *entries) Next(ctx context.Context) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if len(l.list) == 0 {
		return repl.Entry{}, io.EOF
	}
	e := l.list[0]
	l.list = l.list[1:]
	return e, nil
}

func (l *entries) Close() error { return nil }

// lookup returns the file and the event of uid, looking at the folder again when the file is not
// where it was.
func (f *Folder) lookup(uid string) (string, *event, time.Time, error) {
	f.mu.Lock()
	p := f.files[uid]
	f.mu.Unlock()
	if p != "" {
		if ev, mod, err := readFile(p); err == nil && ev.uid == uid {
			return p, ev, mod, nil
		}
	}
	if _, err := f.scan(); err != nil {
		return "", nil, time.Time{}, err
	}
	f.mu.Lock()
	p = f.files[uid]
	f.mu.Unlock()
	if p == "" {
		return "", nil, time.Time{}, fmt.Errorf("event %s: %w", uid, repl.ErrNotFound)
	}
	ev, mod, err := readFile(p)
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("event %s: %w", uid, mapErr(err))
	}
	return p, ev, mod, nil
}

// Stat describes one event.
func (f *Folder) Stat(_ context.Context, uid string) (repl.Entry, error) {
	_, ev, mod, err := f.lookup(uid)
	if err != nil {
		return repl.Entry{}, err
	}
	e := ev.entry()
	e.ModTime = mod
	return e, nil
}

// IsItemChanged compares the content hashes.
func (f *Folder) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated: every event takes part.
func (f *Folder) IsItemReplicated(repl.Entry) bool { return true }

// NaturalKey matches an event with its counterpart by its UID.
func (f *Folder) NaturalKey(_ context.Context, e repl.Entry) (string, error) { return e.Handle, nil }

// Open returns the event as a VEVENT.
func (f *Folder) Open(_ context.Context, uid string) (io.ReadCloser, error) {
	_, ev, _, err := f.lookup(uid)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(ev.text())), nil
}

// ReadUnits returns the event's properties.
func (f *Folder) ReadUnits(_ context.Context, uid string) (repl.Units, error) {
	_, ev, _, err := f.lookup(uid)
	if err != nil {
		return nil, err
	}
	return ev.units, nil
}

// Write creates or updates an event from its iCalendar text.
func (f *Folder) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle != "" {
		if _, _, _, err := f.lookup(req.Handle); err != nil {
			return repl.Entry{}, err
		}
	}
	ev, err := readRequest(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	return f.WriteUnits(ctx, req, ev.units)
}

// readRequest reads the event a Write carries: one event, named by the request's name.
func readRequest(ctx context.Context, req repl.WriteRequest) (*event, error) {
	if err := checkUID(req.Name); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if req.Kind != repl.KindFile || req.Data == nil {
		return nil, fmt.Errorf("write %s: an event has content: %w", req.Name, repl.ErrInvalidName)
	}
	data, err := io.ReadAll(req.Data)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", req.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("write %s: %w", req.Name, err)
	}
	if req.Size >= 0 && int64(len(data)) != req.Size {
		return nil, fmt.Errorf("write %s: got %d bytes of %d: %w", req.Name, len(data), req.Size, io.ErrUnexpectedEOF)
	}
	c, err := parseCalendar(data)
	if err != nil || len(c.events) != 1 {
		return nil, fmt.Errorf("write %s: the content is not one event (%v): %w", req.Name, err, repl.ErrInvalidName)
	}
	ev := c.events[0]
	ev.uid = req.Name // a copy kept beside a conflicting version has a UID of its own
	return ev, nil
}

var plainUID = regexp.MustCompile(`^[A-Za-z0-9@._-]{1,100}$`)

// fileName is the file a new event goes to: its UID, or a hash of it when the UID would not make
// a portable file name.
func fileName(uid string) string {
	if plainUID.MatchString(uid) && !strings.HasPrefix(uid, ".") {
		return uid + ".ics"
	}
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:16]) + ".ics"
}

// WriteUnits creates or updates the event req.Name from its units. The file is written to a
// temporary name, synced and renamed over the event's file; the stamp Cradle expects is checked
// before and again just before the rename.
func (f *Folder) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	if err := checkUID(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	check := func() (string, error) {
		if req.Handle == "" {
			if _, _, _, err := f.lookup(req.Name); err == nil {
				return "", fmt.Errorf("event %s: %w", req.Name, repl.ErrExists)
			} else if !errors.Is(err, repl.ErrNotFound) {
				return "", err
			}
			return filepath.Join(f.dir, fileName(req.Name)), nil
		}
		p, ev, mod, err := f.lookup(req.Handle)
		if err != nil {
			return "", err
		}
		now := ev.entry()
		now.ModTime = mod
		if req.Expected != nil && repl.StampChanged(*req.Expected, now) {
			return "", fmt.Errorf("event %s was edited since it was last seen: %w", req.Handle, repl.ErrChanged)
		}
		if req.Name != req.Handle {
			return "", fmt.Errorf("event %s: an event's UID does not change: %w", req.Handle, repl.ErrInvalidName)
		}
		return p, nil
	}
	target, err := check()
	if err != nil {
		return repl.Entry{}, err
	}
	ev := &event{uid: req.Name, units: units}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	data := (&calendar{events: []*event{ev}}).format(stamp)
	tmp := filepath.Join(f.dir, ".cradle-calendar-"+fmt.Sprint(time.Now().UnixNano())+".tmp")
	if err := writeSynced(tmp, data, req.ModTime); err != nil {
		os.Remove(tmp)
		return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, mapErr(err))
	}
	defer os.Remove(tmp)               // gone after the rename
	if _, err := check(); err != nil { // the user may have saved it meanwhile
		return repl.Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := os.Rename(tmp, target); err != nil {
		return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, mapErr(err))
	}
	f.mu.Lock()
	f.files[req.Name] = target
	f.mu.Unlock()
	return f.Stat(ctx, req.Name)
}

func writeSynced(path string, data []byte, mod time.Time) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if !mod.IsZero() {
		return os.Chtimes(path, mod, mod)
	}
	return nil
}

// Delete removes the event's file.
func (f *Folder) Delete(ctx context.Context, uid string, expected repl.Stamp) error {
	p, ev, mod, err := f.lookup(uid)
	if err != nil {
		return err
	}
	now := ev.entry()
	now.ModTime = mod
	if repl.StampChanged(expected, now) {
		return fmt.Errorf("event %s was edited since it was last seen: %w", uid, repl.ErrChanged)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", uid, mapErr(err))
	}
	return nil
}

// mapErr adds the repl sentinel error that a file system error means.
func mapErr(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sentinel = repl.ErrNotFound
	case errors.Is(err, syscall.ENOSPC):
		sentinel = repl.ErrNoSpace
	case errors.Is(err, syscall.EROFS):
		sentinel = repl.ErrReadOnly
	case errors.Is(err, fs.ErrPermission):
		sentinel = repl.ErrPermission
	default:
		return err
	}
	return repl.Classify(err, sentinel)
}
