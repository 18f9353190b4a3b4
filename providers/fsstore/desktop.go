package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"golang.org/x/text/unicode/norm"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// DesktopOptions tune a DesktopStore.
type DesktopOptions struct {
	// Ignore holds the user's ignore patterns (see Ignorer); the built-in rules always apply.
	Ignore []string
	// Create makes the folder when it does not exist yet (its parent must exist).
	Create bool
	// Logf receives warnings (skipped symbolic links, a folder that could not be flushed);
	// default log.Printf.
	Logf func(format string, args ...any)
	// Versions, when set, keeps the old content of a file before the store replaces or deletes
	// it for the engine (which says why: repl.WriteRequest.Cause, repl.CauseDeleter).
	Versions *versions.Dir
}

// DesktopStore is a desktop folder as a repl.Store (and repl.Notifier).
//
// Handles are paths relative to the folder with '/' separators, byte for byte as the file
// system has them. Folders are items (so empty folders sync). Symbolic links are neither
// followed nor synced: they are skipped and counted (SkippedLinks); so are sockets, pipes and
// devices. Ignored items (see Ignorer) are left out of enumerations and IsItemReplicated says
// false for them.
//
// Unicode: Linux file systems keep names as bytes and do not normalise them, so a name written
// in NFD (as macOS writes it) and the same name in NFC are two different files here. The store
// keeps every name exactly as it is, so that each file stays reachable, and uses the NFC form as
// the NaturalKey, so that on a first sync "café" in NFC on one side and "café" in NFD on the
// other are matched as one item instead of being copied both ways.
//
// Writes are atomic: the content goes to a temporary file in the target's folder (named
// TempPrefix..., which the ignore rules skip), is synced, gets its modification time, is checked
// once more against the Expected stamp and is then renamed over the target; the folder is
// synced after the rename. A cancelled or failed write leaves the temporary file removed and the
// target untouched.
//
// Versions: with DesktopOptions.Versions, a file the engine replaces is first hard-linked into
// the versions area (so it never leaves its place before the new content takes it), and a file
// the engine deletes is renamed into it; a process killed at any step leaves the content in its
// place or in the area.
//
// Concurrency: safe for use from several goroutines; the store keeps no mutable state besides
// counters.
type DesktopStore struct {
	dir      string // absolute
	ig       *Ignorer
	logf     func(string, ...any)
	versions *versions.Dir

	skippedLinks atomic.Int64

	granOnce sync.Once
	gran     time.Duration
}

var (
	_ repl.Store    = (*DesktopStore)(nil)
	_ repl.Notifier = (*DesktopStore)(nil)
	_ repl.Stater   = (*DesktopStore)(nil)

	_ repl.CauseDeleter = (*DesktopStore)(nil)
)

// NewDesktopStore opens the folder dir as a store. The folder must exist (unless opts.Create)
// and be readable.
func NewDesktopStore(dir string, opts DesktopOptions) (*DesktopStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("desktop folder %s: %w", dir, err)
	}
	ig, err := NewIgnorer(opts.Ignore)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) && opts.Create {
		if err := os.Mkdir(abs, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create desktop folder %s: %w", abs, providers.MapFSError(err))
		}
		fi, err = os.Stat(abs)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("desktop folder %s does not exist (if it is on a drive, mount it; "+
				"if it was moved, change the partnership's desktop folder): %w", abs, repl.ErrNotFound)
		}
		return nil, fmt.Errorf("desktop folder %s: %w", abs, providers.MapFSError(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("desktop folder %s is a file, not a folder: %w", abs, repl.ErrInvalidName)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("desktop folder %s cannot be read (check its permissions): %w", abs, providers.MapFSError(err))
	}
	f.Close()
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	return &DesktopStore{dir: abs, ig: ig, logf: logf, versions: opts.Versions}, nil
}

// Dir returns the folder's absolute path.
func (s *DesktopStore) Dir() string { return s.dir }

// Ignorer returns the store's ignore rules.
func (s *DesktopStore) Ignorer() *Ignorer { return s.ig }

// SkippedLinks returns how many symbolic links (and other special files) enumerations skipped.
func (s *DesktopStore) SkippedLinks() int64 { return s.skippedLinks.Load() }

// abs turns a handle into a path on disk, refusing handles that could leave the folder.
func (s *DesktopStore) abs(handle string) (string, error) {
	if err := checkRel(handle); err != nil {
		return "", err
	}
	return s.dir + "/" + handle, nil
}

// checkRel checks a relative '/'-separated path: no empty, "." or ".." components, no NUL, no
// component longer than 255 bytes, no leading or trailing '/'.
func checkRel(rel string) error {
	if rel == "" {
		return fmt.Errorf("empty path: %w", repl.ErrInvalidName)
	}
	for c := range strings.SplitSeq(rel, "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return fmt.Errorf("path %q has an empty, \".\" or \"..\" component: %w", rel, repl.ErrInvalidName)
		case strings.IndexByte(c, 0) >= 0:
			return fmt.Errorf("path %q holds a NUL byte: %w", rel, repl.ErrInvalidName)
		case len(c) > 255:
			return fmt.Errorf("path %q has a name longer than 255 bytes: %w", rel, repl.ErrInvalidName)
		}
	}
	return nil
}

// Enumerate walks the folder: every file and folder below it except ignored ones, symbolic links
// and special files, in the byte order of their handles (the engine then merges the listing
// with its records as it comes, without holding it). A folder that cannot be read ends the
// enumeration with an error (so that nothing in it is taken for deleted).
func (s *DesktopStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it := &desktopIter{s: s}
	it.stack = []walkFrame{{steps: []walkStep{{key: "/", descend: true}}}}
	return it, nil
}

// desktopIter reads one folder at a time, depth first. It costs one getdents per folder and one
// lstat per item, as a bare walk does, plus sorting each folder's names: handle order is byte
// order of whole paths, so a folder's items come after its siblings whose names continue with a
// byte below '/' ("a.txt" before "a/b"), and each folder's steps are sorted with a folder's
// descent keyed by its name and a '/'.
type desktopIter struct {
	s      *DesktopStore
	stack  []walkFrame
	n      int // items returned, for periodic ctx checks
	closed bool
}

// walkFrame is one folder being returned.
type walkFrame struct {
	dir   string   // relative
	f     *os.File // the folder, open: entries are stat'ed relative to it
	fd    int
	steps []walkStep
	i     int
}

// walkStep is an item of a folder to return, or a folder to descend into.
type walkStep struct {
	key     string // the name, and a '/' after a folder's name for its descent
	name    string
	typ     fs.FileMode
	descend bool
}

func (it *desktopIter) Next(ctx context.Context) (repl.Entry, error) {
	if it.closed {
		return repl.Entry{}, io.EOF
	}
	for len(it.stack) > 0 {
		fr := &it.stack[len(it.stack)-1]
		if fr.i >= len(fr.steps) {
			if fr.f != nil {
				fr.f.Close()
			}
			it.stack = it.stack[:len(it.stack)-1]
			continue
		}
		st := fr.steps[fr.i]
		fr.steps[fr.i] = walkStep{}
		fr.i++
		if st.descend {
			if err := ctx.Err(); err != nil {
				return repl.Entry{}, err
			}
			rel := st.name
			if fr.dir != "" {
				rel = fr.dir + "/" + st.name
			}
			if err := it.push(rel); err != nil {
				return repl.Entry{}, err
			}
			continue
		}
		e, ok, err := it.item(ctx, fr, st)
		if err != nil || ok {
			return e, err
		}
	}
	return repl.Entry{}, io.EOF
}

// push reads the folder rel and makes it the one being returned.
func (it *desktopIter) push(rel string) error {
	f, entries, err := it.s.readDir(rel)
	if err != nil {
		return err
	}
	fr := walkFrame{dir: rel, steps: make([]walkStep, 0, len(entries)+len(entries)/4)}
	if f != nil {
		fr.f, fr.fd = f, int(f.Fd())
	}
	for _, de := range entries {
		name, t := de.Name(), de.Type()
		fr.steps = append(fr.steps, walkStep{key: name, name: name, typ: t})
		if t.IsDir() {
			fr.steps = append(fr.steps, walkStep{key: name + "/", name: name, descend: true})
		}
	}
	slices.SortFunc(fr.steps, func(a, b walkStep) int { return strings.Compare(a.key, b.key) })
	it.stack = append(it.stack, fr)
	return nil
}

// item returns the item st of the folder fr, or ok false when it is not one to list.
func (it *desktopIter) item(ctx context.Context, fr *walkFrame, st walkStep) (repl.Entry, bool, error) {
	name, t := st.name, st.typ
	isDir := t.IsDir()
	if t&^fs.ModeDir != 0 {
		it.s.skippedLinks.Add(1) // symbolic link, socket, pipe, device
		return repl.Entry{}, false, nil
	}
	if t == 0 && strings.HasPrefix(name, TempPrefix) {
		it.removeStale(fr, name)
		return repl.Entry{}, false, nil
	}
	if it.s.ig.IgnoredName(fr.dir, name, isDir) {
		if isDir {
			it.skipDescent(fr, name)
		}
		return repl.Entry{}, false, nil
	}
	rel := name
	if fr.dir != "" {
		rel = fr.dir + "/" + name
	}
	// One fstatat relative to the open folder: no path lookup from the top, no FileInfo.
	var sb unix.Stat_t
	if err := unix.Fstatat(fr.fd, name, &sb, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return repl.Entry{}, false, nil // removed since the folder was read
		}
		return repl.Entry{}, false, fmt.Errorf("read %s: %w", filepath.Join(it.s.dir, rel), providers.MapFSError(err))
	}
	it.n++
	if it.n&1023 == 0 {
		if err := ctx.Err(); err != nil {
			return repl.Entry{}, false, err
		}
	}
	mt := time.Unix(sb.Mtim.Sec, sb.Mtim.Nsec)
	switch sb.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if !isDir {
			return repl.Entry{}, false, nil // became a folder since its parent was read: the next pass lists it
		}
		return repl.Entry{Handle: rel, Kind: repl.KindFolder, ModTime: mt}, true, nil
	case unix.S_IFREG:
		if isDir {
			it.skipDescent(fr, name) // no longer a folder
		}
		return repl.Entry{Handle: rel, Kind: repl.KindFile, Size: sb.Size, ModTime: mt, Change: sb.Ctim.Sec*1e9 + sb.Ctim.Nsec}, true, nil
	default:
		if isDir {
			it.skipDescent(fr, name)
		}
		it.s.skippedLinks.Add(1) // replaced by something else since the folder was read
	}
	return repl.Entry{}, false, nil
}

// skipDescent drops the descent into the folder name of fr, which is not listed.
func (it *desktopIter) skipDescent(fr *walkFrame, name string) {
	for j := fr.i; j < len(fr.steps); j++ {
		if fr.steps[j].descend && fr.steps[j].name == name {
			fr.steps[j] = walkStep{}
			return
		}
	}
}

// removeStale removes a temporary file of the folder being read when the process that was
// writing it no longer runs (a Cradle killed in the middle of a write): nobody will finish or
// remove it otherwise. A full enumeration is the first thing a session after such a crash does.
func (it *desktopIter) removeStale(fr *walkFrame, name string) {
	if !StaleTemp(name) || fr.f == nil {
		return
	}
	p := filepath.Join(it.s.dir, fr.dir, name)
	if err := unix.Unlinkat(fr.fd, name, 0); err != nil && !errors.Is(err, syscall.ENOENT) {
		it.s.logf("files: cannot remove %s, left by an interrupted write: %v", p, err)
		return
	}
	tempRemoved(name)
	it.s.logf("files: removed %s, left by an interrupted write", p)
}

func (it *desktopIter) Close() error {
	it.closed = true
	for _, fr := range it.stack {
		if fr.f != nil {
			fr.f.Close()
		}
	}
	it.stack = nil
	return nil
}

// readDir opens a folder (relative path) and reads its entries, unsorted. The caller closes the
// returned file; a folder removed since its parent was read gives no file and no entries.
func (s *DesktopStore) readDir(rel string) (*os.File, []os.DirEntry, error) {
	p := s.dir
	if rel != "" {
		p = s.dir + "/" + rel
	}
	f, err := os.Open(p)
	if err != nil {
		if rel != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("read folder %s: %w%s", p, providers.MapFSError(err), permissionHint(err))
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read folder %s: %w%s", p, providers.MapFSError(err), permissionHint(err))
	}
	return f, entries, nil
}

// permissionHint says what to do about a folder Cradle may not read.
func permissionHint(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return " (give your user read access, e.g. chmod u+rx, or add the folder to the ignore patterns)"
	}
	return ""
}

// IsItemChanged compares size, modification time and kind (repl.StampChanged).
func (s *DesktopStore) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated is false for ignored items (built-in rules and the user's patterns).
func (s *DesktopStore) IsItemReplicated(e repl.Entry) bool {
	return !s.ig.Ignored(e.Handle, e.Kind == repl.KindFolder)
}

// NaturalKey is the relative path in Unicode NFC.
func (s *DesktopStore) NaturalKey(_ context.Context, e repl.Entry) (string, error) {
	return naturalKey(e.Handle), nil
}

// naturalKey is the NFC form of a relative path (unchanged when it is not valid UTF-8).
func naturalKey(rel string) string {
	if !utf8.ValidString(rel) {
		return rel
	}
	return norm.NFC.String(rel)
}

// Open returns the file's content. The reader fails with an error wrapping repl.ErrChanged if the
// file is truncated or modified while it is read, so a half-old half-new copy is never taken for
// the file.
func (s *DesktopStore) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.abs(handle)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", handle, err)
	}
	f, err := fsutil.OpenRead(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w%s", p, providers.MapFSError(err), permissionHint(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", p, providers.MapFSError(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w", p, repl.ErrNotFound)
	}
	return &checkedReader{f: f, path: p, size: fi.Size(), mtime: fi.ModTime()}, nil
}

// checkedReader reads a file and, at its end, checks that it still has the size and time it had
// when it was opened.
type checkedReader struct {
	f     *os.File
	path  string
	size  int64
	mtime time.Time
	n     int64
}

func (r *checkedReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.n += int64(n)
	if err == io.EOF {
		fi, serr := r.f.Stat()
		switch {
		case serr != nil:
			return n, fmt.Errorf("read %s: %w", r.path, providers.MapFSError(serr))
		case r.n != r.size || fi.Size() != r.size || !fi.ModTime().Equal(r.mtime):
			return n, fmt.Errorf("read %s: the file changed while it was read (%d bytes read, %d expected): %w",
				r.path, r.n, r.size, repl.ErrChanged)
		}
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("read %s: %w", r.path, providers.MapFSError(err))
	}
	return n, nil
}

func (r *checkedReader) Close() error { return r.f.Close() }

// Stat returns the item at handle as Enumerate reports it (repl.Stater). Ignored items,
// symbolic links and special files are ErrNotFound.
func (s *DesktopStore) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	p, err := s.abs(handle)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("stat %q: %w", handle, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("stat %s: %w", p, providers.MapFSError(err))
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return repl.Entry{}, fmt.Errorf("stat %s: not a file or folder: %w", p, repl.ErrNotFound)
	}
	if s.ig.Ignored(handle, fi.IsDir()) {
		return repl.Entry{}, fmt.Errorf("stat %s: ignored: %w", p, repl.ErrNotFound)
	}
	return entryOf(handle, fi), nil
}

// current returns the entry now at a handle.
func (s *DesktopStore) current(handle string) (repl.Entry, error) {
	p, err := s.abs(handle)
	if err != nil {
		return repl.Entry{}, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("%s: %w", p, providers.MapFSError(err))
	}
	return entryOf(handle, fi), nil
}

func entryOf(handle string, fi fs.FileInfo) repl.Entry {
	e := repl.Entry{Handle: handle, Kind: repl.KindFile, Size: fi.Size(), ModTime: fi.ModTime(), Change: fsutil.ChangeTime(fi)}
	if fi.IsDir() {
		e.Kind, e.Size, e.Change = repl.KindFolder, 0, 0
	}
	return e
}

// checkExpected refuses with ErrChanged when the item at handle no longer matches expected (or
// became a symbolic link), and with ErrNotFound when it is gone.
func (s *DesktopStore) checkExpected(handle string, expected *repl.Stamp) error {
	p, _ := s.abs(handle)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is gone: %w", p, repl.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, providers.MapFSError(err))
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return fmt.Errorf("%s was replaced by a special file: %w", p, repl.ErrChanged)
	}
	if now := entryOf(handle, fi); expected != nil && (repl.StampChanged(*expected, now) || repl.ChangeMoved(*expected, now)) {
		return fmt.Errorf("%s was modified since it was last seen: %w", p, repl.ErrChanged)
	}
	return nil
}
