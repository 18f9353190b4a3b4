package photos

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// LibraryOptions tune a Library.
type LibraryOptions struct {
	// StateDir holds the import log and the hash cache. Required.
	StateDir string
	// KeepOriginals keeps the picture a device item replaced: when the device holds new content
	// under a name imported before (a camera that reuses IMG_0001.JPG after its card was
	// formatted, a picture edited on the phone), the earlier picture is renamed "name (2).jpg"
	// beside it instead of being overwritten. The provider sets it.
	KeepOriginals bool
	// Free, if set, is called with the content hash of each picture imported and verified (read
	// back from the disk and compared); the provider wires it to Source.Free for the "delete
	// from device after import" option. Its error is logged: the import itself succeeded.
	Free func(ctx context.Context, hash string) error
	// Logf receives warnings; default log.Printf.
	Logf func(format string, args ...any)
	// Versions, when set, keeps a picture the engine deletes from the library (see
	// fsstore.DesktopOptions.Versions).
	Versions *versions.Dir
}

// Library is a desktop photo library as a repl.Store: pictures are written to
// YYYY/YYYY-MM-DD/name by the picture's own date (EXIF DateTimeOriginal, else the modification
// time the device gave it), whatever folder they came from. Enumeration, Open, Stat, Delete and
// Watch are those of fsstore.DesktopStore; only pictures, RAW files and videos are replicated.
//
// Imports: every import is recorded in an import log (source name, library path, content hash).
// A source name imported before is refused with ErrExists while its picture is in the library,
// and, once the user has deleted that picture, is acknowledged without writing anything, so a
// picture deleted on the computer is never imported again (even if the engine's metadata was
// rebuilt). A different picture whose date folder already holds one of the same name is written
// as "name (2).jpg"; the same picture already there (same content) is joined, not copied.
//
// Concurrency: safe for use from several goroutines; Writes are serialised.
type Library struct {
	*fsstore.DesktopStore
	dir    string
	opts   LibraryOptions
	logf   func(string, ...any)
	hashes *hashCache
	imp    *importLog
	wmu    sync.Mutex
}

var _ repl.Store = (*Library)(nil)

// NewLibrary opens (creating it if needed) the library folder dir.
func NewLibrary(dir string, opts LibraryOptions) (*Library, error) {
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	ds, err := fsstore.NewDesktopStore(dir, fsstore.DesktopOptions{Create: true, Logf: logf, Versions: opts.Versions})
	if err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	l := &Library{DesktopStore: ds, dir: ds.Dir(), opts: opts, logf: logf}
	stateDir := opts.StateDir
	if stateDir == "" {
		return nil, errors.New("photos: the library needs a state folder for its import log")
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("photos: state folder %s: %w", stateDir, err)
	}
	if l.hashes, err = openHashCache(filepath.Join(stateDir, "library-hashes")); err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	if l.imp, err = openImportLog(filepath.Join(stateDir, "import-log")); err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	return l, nil
}

// Close releases the state files.
func (l *Library) Close() error {
	err := l.hashes.close()
	if cerr := l.imp.close(); err == nil {
		err = cerr
	}
	return err
}

// IsItemReplicated is true for pictures, RAW files and videos that the ignore rules keep.
func (l *Library) IsItemReplicated(e repl.Entry) bool {
	return e.Kind == repl.KindFile && IsMedia(e.Handle) && l.DesktopStore.IsItemReplicated(e)
}

// NaturalKey is the content hash (read once, cached by path, size and time).
func (l *Library) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	if h, ok := l.hashes.get(e.Handle, e.Size, e.ModTime); ok {
		return h, nil
	}
	h, err := l.hashFile(filepath.Join(l.dir, filepath.FromSlash(e.Handle)))
	if err != nil {
		return "", fmt.Errorf("natural key of %s: %w", e.Handle, err)
	}
	if err := l.hashes.put(e.Handle, e.Size, e.ModTime, h); err != nil {
		return "", err
	}
	return h, nil
}

func (l *Library) hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", providers.MapFSError(err)
	}
	defer f.Close()
	h, _, err := hashReader(f)
	if err != nil {
		return "", providers.MapFSError(err)
	}
	return h, nil
}

// ImportedAs returns the library path the source name was imported to, if it was.
func (l *Library) ImportedAs(name string) (string, bool) {
	r, ok := l.imp.byName(name)
	return r.handle, ok
}

// Write imports a picture (see Library). Folders are refused: the library arranges its own.
func (l *Library) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := repl.CheckName(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("import: %w", err)
	}
	if req.Kind != repl.KindFile {
		return repl.Entry{}, fmt.Errorf("import %s: the photo library arranges its own folders: %w", req.Name, repl.ErrInvalidName)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if req.Handle == "" {
		if rec, ok := l.imp.byName(req.Name); ok {
			if _, err := os.Lstat(l.abs(rec.handle)); err == nil {
				return repl.Entry{}, fmt.Errorf("import %s: imported already as %s: %w", req.Name, rec.handle, repl.ErrExists)
			}
			// Imported before and deleted by the user since: acknowledged, not written again.
			e := repl.Entry{Handle: rec.handle, Kind: repl.KindFile, Size: req.Size, ModTime: req.ModTime}
			if e.Size < 0 {
				e.Size = 0
			}
			return e, nil
		}
	}
	e, err := l.importFile(ctx, req)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("import %s: %w", req.Name, err)
	}
	return e, nil
}

func (l *Library) abs(handle string) string { return filepath.Join(l.dir, filepath.FromSlash(handle)) }

func (l *Library) importFile(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	tmp, hash, err := l.spool(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp)
		}
	}()

	var target string
	if req.Handle != "" {
		cur, err := l.DesktopStore.Stat(ctx, req.Handle)
		if err != nil {
			return repl.Entry{}, err
		}
		if req.Expected != nil && repl.StampChanged(*req.Expected, cur) {
			return repl.Entry{}, fmt.Errorf("%s was modified on this computer since it was last seen: %w", req.Handle, repl.ErrChanged)
		}
		target = req.Handle
		if l.opts.KeepOriginals {
			old, err := l.hashFile(l.abs(target))
			if err != nil {
				return repl.Entry{}, err
			}
			if old != hash {
				aside, err := l.freeName(path.Dir(target), path.Base(target), "")
				if err != nil {
					return repl.Entry{}, err
				}
				if err := os.Rename(l.abs(target), l.abs(aside)); err != nil {
					return repl.Entry{}, providers.MapFSError(err)
				}
				l.logf("photos: %s was replaced on the device; the earlier picture is kept as %s", req.Name, aside)
			}
		}
	} else {
		taken, ok := exifDate(tmp)
		if !ok {
			taken = req.ModTime
		}
		if taken.IsZero() {
			taken = time.Now()
		}
		name := path.Base(req.Name)
		target, err = l.freeName(dateFolder(taken), name, hash)
		if err != nil {
			return repl.Entry{}, err
		}
		if fi, err := os.Lstat(l.abs(target)); err == nil && fi.Mode().IsRegular() {
			// The same picture is there already: join it.
			if err := l.imp.add(req.Name, target, hash); err != nil {
				return repl.Entry{}, err
			}
			return l.DesktopStore.Stat(ctx, target)
		}
	}
	if !req.ModTime.IsZero() {
		if err := os.Chtimes(tmp, req.ModTime, req.ModTime); err != nil {
			return repl.Entry{}, providers.MapFSError(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(l.abs(target)), 0o755); err != nil {
		return repl.Entry{}, providers.MapFSError(err)
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if req.Handle == "" {
		if _, err := os.Lstat(l.abs(target)); err == nil {
			return repl.Entry{}, fmt.Errorf("%s appeared meanwhile: %w", target, repl.ErrExists)
		}
	}
	if err := os.Rename(tmp, l.abs(target)); err != nil {
		return repl.Entry{}, providers.MapFSError(err)
	}
	committed = true
	if err := fsutil.SyncDir(filepath.Dir(l.abs(target))); err != nil {
		log.Printf("photos: flushing folder %s: %v", filepath.Dir(l.abs(target)), err)
	}
	if err := l.imp.add(req.Name, target, hash); err != nil {
		return repl.Entry{}, err
	}
	e, err := l.DesktopStore.Stat(ctx, target)
	if err != nil {
		return repl.Entry{}, err
	}
	if err := l.hashes.put(target, e.Size, e.ModTime, hash); err != nil {
		return repl.Entry{}, err
	}
	if l.opts.Free != nil {
		l.verifyAndFree(ctx, target, hash)
	}
	return e, nil
}

// verifyAndFree reads the imported picture back from the disk and, when its hash is the one the
// device's bytes had, asks for it to be deleted from the device.
func (l *Library) verifyAndFree(ctx context.Context, target, hash string) {
	got, err := l.hashFile(l.abs(target))
	if err != nil || got != hash {
		l.logf("photos: %s is not deleted from the device: the imported copy could not be verified (%v)", target, err)
		return
	}
	if err := l.opts.Free(ctx, hash); err != nil {
		l.logf("photos: %s was imported but not deleted from the device: %v", target, err)
	}
}

// freeName returns dir/name, or dir/"stem (n).ext" with the lowest n free, where an existing file
// whose content hash is hash counts as free (it is the same picture).
func (l *Library) freeName(dir, name, hash string) (string, error) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for n := 1; n < 10000; n++ {
		cand := path.Join(dir, name)
		if n > 1 {
			cand = path.Join(dir, fmt.Sprintf("%s (%d)%s", stem, n, ext))
		}
		_, err := os.Lstat(l.abs(cand))
		if errors.Is(err, fs.ErrNotExist) {
			return cand, nil
		}
		if err != nil {
			return "", providers.MapFSError(err)
		}
		if hash != "" {
			if h, err := l.hashFile(l.abs(cand)); err == nil && h == hash {
				return cand, nil
			}
		}
	}
	return "", fmt.Errorf("no free name for %s in %s: %w", name, dir, repl.ErrExists)
}

// spool copies the content into a temporary file at the top of the library (same file system as
// every target, so the final rename is atomic), hashing it on the way, and syncs it.
func (l *Library) spool(ctx context.Context, req repl.WriteRequest) (string, string, error) {
	tmp := filepath.Join(l.dir, fsstore.TempPrefix+rand.Text()[:16])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", "", providers.MapFSError(err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var src io.Reader = strings.NewReader("")
	if req.Data != nil {
		src = req.Data
	}
	h, n, err := hashReader(io.TeeReader(fsutil.ContextReader(ctx, src), f))
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", providers.MapFSError(err)
	}
	if req.Size >= 0 && n != req.Size {
		return "", "", fmt.Errorf("the content was %d bytes, %d were announced (the source changed while it was copied): %w",
			n, req.Size, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return "", "", providers.MapFSError(err)
	}
	if err := f.Close(); err != nil {
		return "", "", providers.MapFSError(err)
	}
	ok = true
	return tmp, h, nil
}

// importLog records what was imported: source name -> library path and content hash. It is
// appended to as pictures are imported.
type importLog struct {
	path  string
	mu    sync.Mutex
	names map[string]importRec
	f     *os.File
}

type importRec struct{ handle, hash string }

func openImportLog(p string) (*importLog, error) {
	l := &importLog{path: p, names: map[string]importRec{}}
	f, err := os.Open(p)
	if err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), "\t", 3)
			if len(parts) == 3 {
				l.names[parts[2]] = importRec{handle: parts[1], hash: parts[0]}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return l, nil
}

func (l *importLog) byName(name string) (importRec, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.names[name]
	return r, ok
}

func (l *importLog) add(name, handle, hash string) error {
	if strings.ContainsAny(name+handle, "\t\n") {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names[name] = importRec{handle: handle, hash: hash}
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("write %s: %w", l.path, err)
		}
		l.f = f
	}
	if _, err := fmt.Fprintf(l.f, "%s\t%s\t%s\n", hash, handle, name); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

func (l *importLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
