package contacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// maxCardSize bounds what Cradle reads as one contact (a card with a large photo is some
// hundreds of kilobytes).
const maxCardSize = 32 << 20

// Desktop is the desktop side of a contacts partnership: a vdir folder, one vCard per ".vcf"
// file, as khard and vdirsyncer keep it. An item's handle is the card's UID; a file without UID
// is named by its file name (which never changes when the card is edited). Cards are written as
// vCard 3.0, atomically (temporary file, fsync, rename, fsync of the folder), with the
// modification time the engine asks for. Files Cradle cannot read (malformed, several cards in
// one file, a UID another file already has) are reported and left alone: never synced, never
// rewritten. A card that becomes unreadable (a botched edit) is still listed under its handle
// (its UID found by a lenient scan, or its file name) but not replicated, so the engine holds
// it instead of taking it as deleted.
//
// Desktop is safe for use from several goroutines.
type Desktop struct {
	dir      string
	log      Logger
	versions *versions.Dir // where replaced and deleted cards go; nil: nowhere

	mu       sync.Mutex
	files    map[string]*deskFile // by file name
	byHandle map[string]string    // handle -> file name, from the last scan
	problems []error
}

// deskFile is what Desktop knows of one file, valid while size and mtime stay the same.
type deskFile struct {
	name   string
	size   int64
	mtime  time.Time
	card   *card // nil when err is set
	err    error
	handle string
	hash   string
}

// Logger receives the warnings a store meets on its way (a card it skipped, a file it could
// not read); Printf-like.
type Logger func(format string, args ...any)

var (
	_ repl.UnitStore = (*Desktop)(nil)
	_ repl.Hasher    = (*Desktop)(nil)
	_ repl.Stater    = (*Desktop)(nil)
)

// NewDesktop returns the store for the vdir folder dir. The folder must exist when the store is
// used (Cradle does not create an address book where the user expects one; a missing folder is
// more likely an unmounted disk than an empty address book). log may be nil.
func NewDesktop(dir string, log Logger) (*Desktop, error) {
	if dir == "" {
		return nil, errors.New("contacts: no desktop folder given: set the option desktop to the address book folder (a vdir, one .vcf per contact)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("contacts folder %s: %w", dir, err)
	}
	if log == nil {
		log = defaultLogger
	}
	return &Desktop{dir: abs, log: log, files: map[string]*deskFile{}, byHandle: map[string]string{}}, nil
}

// heldHash marks the entry of a card the store lists but cannot read: the engine leaves it alone
// (IsItemReplicated is false) until it is fixed.
const heldHash = "unreadable"

// Dir returns the vdir folder.
func (s *Desktop) Dir() string { return s.dir }

// Problems returns the files the last enumeration skipped, each error naming the file and what
// is wrong with it.
func (s *Desktop) Problems() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.problems...)
}

// Enumerate lists the cards of the folder.
func (s *Desktop) Enumerate(ctx context.Context) (repl.Iterator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.scan(ctx); err != nil {
		return nil, err
	}
	entries := make([]repl.Entry, 0, len(s.byHandle))
	for _, name := range s.byHandle {
		entries = append(entries, s.files[name].entry())
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Handle < entries[j].Handle })
	return &sliceIter{entries: entries}, nil
}

func (f *deskFile) entry() repl.Entry {
	if f.err != nil {
		return repl.Entry{Handle: f.handle, Kind: repl.KindFile, Size: f.size, ModTime: f.mtime, Hash: heldHash}
	}
	return repl.Entry{Handle: f.handle, Kind: repl.KindFile, Size: f.size, ModTime: f.mtime, Hash: f.hash}
}

// unreadable is the error for an operation on a held card.
func (f *deskFile) unreadable(op string) error {
	return fmt.Errorf("%s contact %s: %v; fix or remove the file: %w", op, f.handle, f.err, repl.ErrChanged)
}

// scan reads the folder, re-reading only files whose size or modification time changed, and
// rebuilds the handle index. Called with s.mu held.
func (s *Desktop) scan(ctx context.Context) error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("contacts folder %s does not exist: create it, or mount the disk it is on, or choose another folder: %w", s.dir, providers.MapFSError(err))
		}
		return fmt.Errorf("read contacts folder %s: %w", s.dir, providers.MapFSError(err))
	}
	seen := map[string]bool{}
	var names []string
	for _, de := range des {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read contacts folder %s: %w", s.dir, err)
		}
		name := de.Name()
		if !isCardFile(name) || de.IsDir() {
			continue
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("read contacts folder %s: %w", s.dir, providers.MapFSError(err))
		}
		if !info.Mode().IsRegular() {
			continue
		}
		seen[name] = true
		names = append(names, name)
		if err := s.load(name, info); err != nil {
			return err
		}
	}
	for name := range s.files {
		if !seen[name] {
			delete(s.files, name)
		}
	}
	sort.Strings(names)
	s.byHandle = map[string]string{}
	s.problems = nil
	var held []*deskFile
	for _, name := range names {
		f := s.files[name]
		if f == nil {
			continue // vanished while being read
		}
		if f.err != nil {
			s.problems = append(s.problems, f.err)
			held = append(held, f)
			continue
		}
		if other, dup := s.byHandle[f.handle]; dup {
			err := fmt.Errorf("%s: same UID %q as %s; skipped (give one of them another UID or merge them)", filepath.Join(s.dir, name), f.handle, other)
			s.problems = append(s.problems, err)
			continue
		}
		s.byHandle[f.handle] = name
	}
	// Unreadable files are listed under the handle they most likely had, unless a readable card
	// has it: the engine then holds that item instead of deleting it everywhere.
	for _, f := range held {
		if _, taken := s.byHandle[f.handle]; !taken && f.handle != "" {
			s.byHandle[f.handle] = f.name
		}
	}
	return nil
}

// isCardFile tells whether a folder entry is a contact: a ".vcf" file that is not hidden (which
// covers Cradle's temporary files and other programs' partial writes).
func isCardFile(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.EqualFold(filepath.Ext(name), ".vcf")
}

// load reads one file unless what is cached is still current. A file that vanished is dropped
// from the cache; a file that cannot be parsed is cached with its error (and logged once).
func (s *Desktop) load(name string, info fs.FileInfo) error {
	if f := s.files[name]; f != nil && f.size == info.Size() && f.mtime.Equal(info.ModTime()) {
		return nil
	}
	path := filepath.Join(s.dir, name)
	data, err := readLimited(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		delete(s.files, name)
		return nil
	case err != nil && !errors.Is(err, errTooLarge):
		// Not knowing what the file holds, the store cannot say which card it is: the whole
		// enumeration fails rather than let the engine take that card as deleted.
		return fmt.Errorf("cannot read contact file %s (fix its permissions or move it out of the folder): %w", path, providers.MapFSError(err))
	}
	f := &deskFile{name: name, size: info.Size(), mtime: info.ModTime()}
	if err != nil {
		f.err = fmt.Errorf("%s: %w", path, err)
	} else {
		f.card, f.err = parseSingle(data)
		if f.err != nil {
			f.err = fmt.Errorf("%s: %w; the file is left as it is and not synced", path, f.err)
		}
	}
	if f.err != nil {
		s.log("%v", f.err)
		if data != nil {
			f.handle = lenientUID(data)
		}
		if f.handle == "" {
			f.handle = name
		}
	} else {
		f.handle = f.card.uid()
		if f.handle == "" {
			f.handle = name
		}
		f.hash = unitsHash(f.card.units())
	}
	s.files[name] = f
	return nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxCardSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCardSize {
		return nil, errTooLarge
	}
	return data, nil
}

var errTooLarge = fmt.Errorf("larger than %d MiB, too large for a contact; the file is left as it is and not synced", maxCardSize>>20)

// parseSingle reads data that must hold exactly one card.
func parseSingle(data []byte) (*card, error) {
	var cards []segment
	for _, seg := range splitFile(data) {
		switch {
		case seg.card:
			cards = append(cards, seg)
		case !blank(seg.raw):
			return nil, &ParseError{Line: seg.line, Msg: "text outside BEGIN:VCARD ... END:VCARD"}
		}
	}
	switch len(cards) {
	case 0:
		return nil, errors.New("no vCard in it (no BEGIN:VCARD line)")
	case 1:
		return parseCard(cards[0].raw, cards[0].line)
	}
	return nil, fmt.Errorf("holds %d cards; an address book folder holds one card per file", len(cards))
}

// lookup returns the current state of the file holding handle, re-reading it if it changed and
// rescanning the folder if the handle is not where the last scan put it. Called with s.mu held.
func (s *Desktop) lookup(ctx context.Context, handle string) (*deskFile, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if name, ok := s.byHandle[handle]; ok {
			info, err := os.Stat(filepath.Join(s.dir, name))
			if err == nil {
				if err := s.load(name, info); err != nil {
					return nil, err
				}
				if f := s.files[name]; f != nil && f.handle == handle {
					return f, nil
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("contact %s: %w", handle, providers.MapFSError(err))
			}
		}
		if attempt == 0 {
			if err := s.scan(ctx); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("contact %q in %s: %w", handle, s.dir, repl.ErrNotFound)
}

// IsItemChanged compares content hashes (a touched but unchanged card is not a change).
func (s *Desktop) IsItemChanged(ctx context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated is true for every card the store lists, except those it cannot read.
func (s *Desktop) IsItemReplicated(e repl.Entry) bool {
	return e.Kind == repl.KindFile && e.Hash != heldHash
}

// NaturalKey is the card's UID, or for a card without one its derived ID (see fingerprintOf),
// which a card without UID on the device has too.
func (s *Desktop) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, e.Handle)
	if err != nil {
		return "", err
	}
	if f.err != nil {
		return f.handle, nil
	}
	if uid := f.card.uid(); uid != "" {
		return uid, nil
	}
	return fingerprintOf(f.card).Key, nil
}

// Hash returns the card's units hash.
func (s *Desktop) Hash(ctx context.Context, handle string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, handle)
	if err != nil {
		return "", err
	}
	if f.err != nil {
		return "", f.unreadable("hash")
	}
	return f.hash, nil
}

// Open returns the card's file as it is on disk.
func (s *Desktop) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, handle)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(filepath.Join(s.dir, f.name))
	if err != nil {
		return nil, fmt.Errorf("open contact %s: %w", handle, providers.MapFSError(err))
	}
	return fh, nil
}

// ReadUnits returns the card's change units.
func (s *Desktop) ReadUnits(ctx context.Context, handle string) (repl.Units, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, handle)
	if err != nil {
		return nil, err
	}
	if f.err != nil {
		return nil, f.unreadable("read")
	}
	return f.card.units(), nil
}

// Write creates or updates a card from a vCard (any version) in req.Data. A card that already
// is vCard 3.0 or 4.0 with the right UID is written byte for byte; any other is written as 3.0.
func (s *Desktop) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if req.Handle == "" {
		if err := checkUID(req.Name); err != nil {
			return repl.Entry{}, fmt.Errorf("create contact: %w", err)
		}
	}
	in, err := readIncoming(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	return s.write(ctx, req, in)
}

// WriteUnits creates or updates a card from its complete set of units, as vCard 3.0.
func (s *Desktop) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	if req.Handle == "" {
		if err := checkUID(req.Name); err != nil {
			return repl.Entry{}, fmt.Errorf("create contact: %w", err)
		}
	}
	c, err := cardFromUnits(units)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	return s.write(ctx, req, incoming{card: c})
}

// write creates or updates a card. An update keeps the card's file, UID and PRODID and refuses
// with repl.ErrChanged when the card changed since the engine recorded req.Expected; req.Name is
// only used to create (it becomes the UID, and the file is named after it).
func (s *Desktop) write(ctx context.Context, req repl.WriteRequest, in incoming) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %q: %w", req.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var name, uid string
	var prev *card
	if req.Handle != "" {
		f, err := s.lookup(ctx, req.Handle)
		if err != nil {
			return repl.Entry{}, fmt.Errorf("update contact: %w", err)
		}
		if f.err != nil {
			return repl.Entry{}, f.unreadable("update")
		}
		if req.Expected != nil && changedSince(f.entry(), *req.Expected) {
			return repl.Entry{}, fmt.Errorf("update contact %s (%s): %w", req.Handle, f.name, repl.ErrChanged)
		}
		name, uid, prev = f.name, f.card.uid(), f.card
	} else {
		uid = req.Name
		if err := s.scan(ctx); err != nil {
			return repl.Entry{}, err
		}
		if _, ok := s.byHandle[uid]; ok {
			return repl.Entry{}, fmt.Errorf("create contact %s: %w", uid, repl.ErrExists)
		}
		name = s.fileNameFor(uid)
	}
	// khard and vdirsyncer read 3.0 and 4.0 alike; 2.1 is converted.
	data := in.build(uid, v30, func(v string) bool { return major(v) == '3' || major(v) == '4' }, prev, req)
	path := filepath.Join(s.dir, name)
	if r := versions.ReasonOf(req.Cause); r != "" && s.versions != nil && req.Handle != "" {
		if err := s.versions.KeepReplaced(path, name, r); err != nil {
			return repl.Entry{}, fmt.Errorf("update contact %s: %w", path, providers.MapFSError(err))
		}
	}
	if err := fsutil.WriteFileAtomic(path, data, atomically(path, req.ModTime)); err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %s: %w", path, providers.MapFSError(err))
	}
	info, err := os.Stat(path)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %s: %w", path, providers.MapFSError(err))
	}
	delete(s.files, name)
	if err := s.load(name, info); err != nil {
		return repl.Entry{}, err
	}
	f := s.files[name]
	if f == nil || f.err != nil {
		return repl.Entry{}, fmt.Errorf("write contact %s: the card written cannot be read back", path)
	}
	s.byHandle[f.handle] = name
	return f.entry(), nil
}

// Stat returns the card at handle as Enumerate reports it.
func (s *Desktop) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, handle)
	if err != nil {
		return repl.Entry{}, err
	}
	return f.entry(), nil
}

// changedSince tells whether an item no longer matches the stamp the engine recorded.
func changedSince(now repl.Entry, expected repl.Stamp) bool {
	if expected.Hash != "" && now.Hash != "" {
		return expected.Hash != now.Hash
	}
	return repl.StampChanged(expected, now)
}

// fileNameFor names a new card's file after its UID, as vdirsyncer does: the UID itself when it
// is made of safe characters, else a cleaned-up UID with a hash of the original; never the name
// of an existing file. Called with s.mu held.
func (s *Desktop) fileNameFor(uid string) string {
	safe := len(uid) <= 200 && !strings.HasPrefix(uid, ".")
	var b strings.Builder
	for _, r := range uid {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-+@", r)) {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
			safe = false
		}
	}
	base := b.String()
	if !safe {
		sum := sha256.Sum256([]byte(uid))
		base = strings.Trim(base, "._")
		if len(base) > 100 {
			base = base[:100]
		}
		if base != "" {
			base += "-"
		}
		base += hex.EncodeToString(sum[:6])
	}
	name := base + ".vcf"
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(s.dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d.vcf", base, n)
	}
}

// Delete removes the card's file; repl.ErrChanged when it changed since the engine recorded
// expected.
func (s *Desktop) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.DeleteFor(ctx, handle, expected, repl.CauseNone)
}

// DeleteFor is Delete, told why (repl.CauseDeleter): with KeepVersions, the card's file goes into
// the versions area.
func (s *Desktop) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete contact %s: %w", handle, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.lookup(ctx, handle)
	if err != nil {
		return fmt.Errorf("delete contact: %w", err)
	}
	if f.err != nil {
		return f.unreadable("delete")
	}
	if changedSince(f.entry(), expected) {
		return fmt.Errorf("delete contact %s (%s): %w", handle, f.name, repl.ErrChanged)
	}
	path := filepath.Join(s.dir, f.name)
	if r := versions.ReasonOf(cause); r != "" && s.versions != nil {
		if err := s.versions.Take(path, f.name, r); err != nil {
			return fmt.Errorf("delete contact %s: %w", path, providers.MapFSError(err))
		}
	} else if err := os.Remove(path); err != nil {
		return fmt.Errorf("delete contact %s: %w", path, providers.MapFSError(err))
	}
	delete(s.files, f.name)
	delete(s.byHandle, handle)
	if err := fsutil.SyncDir(s.dir); err != nil {
		return fmt.Errorf("delete contact %s: %w", path, err)
	}
	return nil
}

// sliceIter iterates over entries collected up front.
type sliceIter struct {
	entries []repl.Entry
	i       int
}

func (it *sliceIter) Next(ctx context.Context) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if it.i >= len(it.entries) {
		return repl.Entry{}, io.EOF
	}
	it.i++
	return it.entries[it.i-1], nil
}

func (it *sliceIter) Close() error { return nil }
