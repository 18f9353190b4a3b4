package fsstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// enumerateAll returns every replicated entry of a store by handle.
func enumerateAll(t testing.TB, s repl.Store) map[string]repl.Entry {
	t.Helper()
	ctx := context.Background()
	it, err := s.Enumerate(ctx)
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	defer it.Close()
	m := map[string]repl.Entry{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if s.IsItemReplicated(e) {
			m[e.Handle] = e
		}
	}
}

func sortedHandles(m map[string]repl.Entry) string {
	var hs []string
	for h := range m {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return strings.Join(hs, " ")
}

func TestDesktopEnumerateSkipsLinksIgnoredAndKeepsEmptyFolders(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	storetest.WriteFile(t, filepath.Join(outside, "secret.txt"), "not ours")
	storetest.WriteFile(t, filepath.Join(dir, "a.txt"), "a")
	storetest.WriteFile(t, filepath.Join(dir, "sub/b.txt"), "b")
	storetest.WriteFile(t, filepath.Join(dir, "sub/b.txt~"), "backup")
	storetest.WriteFile(t, filepath.Join(dir, "sub/.DS_Store"), "litter")
	storetest.WriteFile(t, filepath.Join(dir, "logs/app.log"), "log")
	storetest.WriteFile(t, filepath.Join(dir, ".cradle/device.snap"), "meta")
	storetest.WriteFile(t, filepath.Join(dir, TempPrefix+"XYZ"), "half-written")
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link-to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.txt"), filepath.Join(dir, "link-to-file")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newDesktop(t, dir, DesktopOptions{Ignore: []string{"*.log"}})
	got := enumerateAll(t, s)
	if want := "a.txt empty logs sub sub/b.txt"; sortedHandles(got) != want {
		t.Errorf("Enumerate = %q, want %q", sortedHandles(got), want)
	}
	if got["empty"].Kind != repl.KindFolder || got["sub"].Kind != repl.KindFolder {
		t.Errorf("folders enumerated as %v and %v, want folder", got["empty"].Kind, got["sub"].Kind)
	}
	if n := s.SkippedLinks(); n != 3 {
		t.Errorf("SkippedLinks() = %d, want 3 (two symbolic links and a pipe)", n)
	}
	for _, h := range []string{"logs/app.log", "sub/b.txt~", ".cradle/device.snap"} {
		if s.IsItemReplicated(repl.Entry{Handle: h, Kind: repl.KindFile}) {
			t.Errorf("IsItemReplicated(%q) = true, want false", h)
		}
	}
	if _, err := s.Stat(context.Background(), "link-to-file"); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Stat(symbolic link) = %v, want ErrNotFound", err)
	}
}

// TestDesktopEnumerateInHandleOrder: the walk lists items in the byte order of their handles,
// a folder's items after the siblings whose names continue with a byte below '/'.
func TestDesktopEnumerateInHandleOrder(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a/b", "a/c.d/e", "a.txt", "a-1/x", "a0", "b", "c.d/f", "c/e", "Z", "é/ü"} {
		storetest.WriteFile(t, filepath.Join(dir, n), n)
	}
	if err := os.Mkdir(filepath.Join(dir, "a/empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newDesktop(t, dir, DesktopOptions{})
	ctx := context.Background()
	it, err := s.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Handle)
	}
	want := slices.Clone(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(got) != 17 {
		t.Errorf("Enumerate listed %q, want %q", got, want)
	}
}

func TestDesktopUnicodeNames(t *testing.T) {
	dir := t.TempDir()
	nfc := "caf\u00e9.txt"  // é as one code point
	nfd := "cafe\u0301.txt" // e + combining acute accent
	storetest.WriteFile(t, filepath.Join(dir, nfd), "from a Mac")
	s := newDesktop(t, dir, DesktopOptions{})
	got := enumerateAll(t, s)
	e, ok := got[nfd]
	if !ok {
		t.Fatalf("Enumerate = %q, want the NFD name kept byte for byte", sortedHandles(got))
	}
	key, err := s.NaturalKey(context.Background(), e)
	if err != nil || key != nfc {
		t.Errorf("NaturalKey(NFD name) = %q, %v; want the NFC form %q", key, err, nfc)
	}
	rc, err := s.Open(context.Background(), nfd)
	if err != nil {
		t.Fatalf("Open(NFD handle): %v", err)
	}
	rc.Close()
	// A name in another script round-trips.
	name := "写真/Ünïcödé ✓.txt"
	w, err := s.Write(context.Background(), repl.WriteRequest{Name: name, Kind: repl.KindFile, Size: 2, Data: strings.NewReader("ok")})
	if err != nil || w.Handle != name {
		t.Fatalf("Write(%q) = %+v, %v", name, w, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Errorf("the file is not on disk under its name: %v", err)
	}
}

// stallReader returns some data, then waits for its context and fails with its error.
type stallReader struct {
	ctx  context.Context
	sent bool
}

func (r *stallReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, bytes.Repeat([]byte("partial "), 4096)), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func TestDesktopWriteInterruptedLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newDesktop(t, dir, DesktopOptions{})
	storetest.WriteFile(t, filepath.Join(dir, "doc.txt"), "original")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	e, err := s.Stat(context.Background(), "doc.txt")
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stamp()
	_, err = s.Write(ctx, repl.WriteRequest{Handle: "doc.txt", Expected: &st, Name: "doc.txt", Kind: repl.KindFile,
		Size: 1 << 20, Data: &stallReader{ctx: ctx}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Write = %v, want context.Canceled", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "doc.txt")); string(b) != "original" {
		t.Errorf("after an interrupted update the file holds %q, want the original", b)
	}
	_, err = s.Write(context.Background(), repl.WriteRequest{Name: "new/fresh.bin", Kind: repl.KindFile, Size: 1 << 20,
		Data: &failingSource{left: 1000}})
	if err == nil {
		t.Fatal("Write from a failing source succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "new/fresh.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed create left new/fresh.bin: %v", err)
	}
	storetest.NoTempFiles(t, dir, TempPrefix)
}

type failingSource struct{ left int }

func (f *failingSource) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("source unplugged")
	}
	n := min(len(p), f.left)
	f.left -= n
	return n, nil
}

func TestDesktopNoSpace(t *testing.T) {
	mnt := smallTmpfs(t, "256k")
	s := newDesktop(t, mnt, DesktopOptions{})
	storetest.WriteFile(t, filepath.Join(mnt, "keep.txt"), "precious")
	data := bytes.Repeat([]byte{7}, 1<<20)
	_, err := s.Write(context.Background(), repl.WriteRequest{Name: "big.bin", Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Fatalf("Write of 1 MiB to a 256 KiB disk = %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "big.bin") {
		t.Errorf("error %q does not name the file", err)
	}
	// An update that does not fit leaves the old content.
	e, _ := s.Stat(context.Background(), "keep.txt")
	st := e.Stamp()
	_, err = s.Write(context.Background(), repl.WriteRequest{Handle: "keep.txt", Expected: &st, Name: "keep.txt", Kind: repl.KindFile,
		Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Fatalf("update too big for the disk = %v, want ErrNoSpace", err)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, "keep.txt")); string(b) != "precious" {
		t.Errorf("a failed update changed keep.txt to %d bytes", len(b))
	}
	entries, _ := os.ReadDir(mnt)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after failed writes the disk holds %v, want only keep.txt", names)
	}
}

// smallTmpfs mounts a tmpfs of the given size for the test. It needs root; without it the test
// is skipped with a note of what the run needs.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs: run the tests as root (CI does) to check the full-disk path")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): this run needs CAP_SYS_ADMIN to check the full-disk path", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// unprivileged runs fn on a thread whose file-system identity is "nobody", so that permission
// bits apply even when the tests run as root (CI does). The thread is discarded afterwards.
func unprivileged(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if os.Geteuid() == 0 {
			syscall.Setfsuid(65534)
			syscall.Setfsgid(65534)
		}
		fn()
	}()
	<-done
}

// openUp makes dir and its parents up to the test's temporary root reachable by "nobody".
func openUp(t *testing.T, dir string) {
	t.Helper()
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDesktopUnreadableFolder(t *testing.T) {
	dir := t.TempDir()
	storetest.WriteFile(t, filepath.Join(dir, "ok.txt"), "fine")
	storetest.WriteFile(t, filepath.Join(dir, "locked/inner.txt"), "hidden")
	storetest.WriteFile(t, filepath.Join(dir, "secret.txt"), "no peeking")
	openUp(t, dir)
	if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "secret.txt"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "locked"), 0o755) })
	s := newDesktop(t, dir, DesktopOptions{})
	var enumErr, openErr error
	unprivileged(t, func() {
		it, err := s.Enumerate(context.Background())
		if err != nil {
			enumErr = err
			return
		}
		defer it.Close()
		for {
			if _, err := it.Next(context.Background()); err != nil {
				if err != io.EOF {
					enumErr = err
				}
				break
			}
		}
		_, openErr = s.Open(context.Background(), "secret.txt")
	})
	if !errors.Is(enumErr, repl.ErrPermission) {
		t.Fatalf("Enumerate over an unreadable folder = %v, want an error wrapping ErrPermission (an enumeration that skipped it would make its files look deleted)", enumErr)
	}
	for _, want := range []string{filepath.Join(dir, "locked"), "chmod"} {
		if !strings.Contains(enumErr.Error(), want) {
			t.Errorf("error %q does not mention %q", enumErr, want)
		}
	}
	if !errors.Is(openErr, repl.ErrPermission) {
		t.Errorf("Open of an unreadable file = %v, want ErrPermission", openErr)
	}
}

func TestDesktopFileChangingMidRead(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789"), 100000)
	p := filepath.Join(dir, "movie.mkv")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newDesktop(t, dir, DesktopOptions{})

	// Truncated while read: the reader must fail, not hand over a short copy as the file.
	rc, err := s.Open(context.Background(), "movie.mkv")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 10000); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if !errors.Is(err, repl.ErrChanged) {
		t.Errorf("reading a file truncated mid-read = %v, want ErrChanged", err)
	}

	// Deleted while read: the open file is still whole on Linux, so the copy is complete.
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err = s.Open(context.Background(), "movie.mkv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(rest)+len(buf) != len(content) {
		t.Errorf("reading a file deleted mid-read = %d bytes, %v; want the whole %d bytes", len(rest)+len(buf), err, len(content))
	}
	if _, err := s.Open(context.Background(), "movie.mkv"); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open after the file vanished = %v, want ErrNotFound", err)
	}
}

func TestDesktopDeleteFolderWithLitterOnly(t *testing.T) {
	dir := t.TempDir()
	storetest.WriteFile(t, filepath.Join(dir, "album/.DS_Store"), "x")
	storetest.WriteFile(t, filepath.Join(dir, "album/Thumbs.db"), "x")
	storetest.WriteFile(t, filepath.Join(dir, "kept/.report.swp"), "an editor is open")
	s := newDesktop(t, dir, DesktopOptions{})
	ctx := context.Background()
	if err := s.Delete(ctx, "album", repl.Stamp{Kind: repl.KindFolder}); err != nil {
		t.Errorf("Delete of a folder holding only .DS_Store and Thumbs.db = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "album")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("album still exists: %v", err)
	}
	if err := s.Delete(ctx, "kept", repl.Stamp{Kind: repl.KindFolder}); !errors.Is(err, repl.ErrNotEmpty) {
		t.Errorf("Delete of a folder holding an editor's swap file = %v, want ErrNotEmpty", err)
	}
}

func TestDesktopMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	_, err := NewDesktopStore(dir, DesktopOptions{Logf: storetest.Quiet})
	if !errors.Is(err, repl.ErrNotFound) || !strings.Contains(err.Error(), "mount") {
		t.Errorf("NewDesktopStore(missing) = %v, want ErrNotFound with advice", err)
	}
	if _, err := NewDesktopStore(dir, DesktopOptions{Create: true, Logf: storetest.Quiet}); err != nil {
		t.Errorf("NewDesktopStore(missing, Create) = %v", err)
	}
}

// TestDesktopMoveFromFolderLeavesNothing: a file to move whose old name another item has taken
// as a folder is refused before anything is written, not as a name taken (ErrExists), which made
// the engine try the next conflict name, and left a copy at each of a hundred tries.
func TestDesktopMoveFromFolderLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newDesktop(t, dir, DesktopOptions{})
	storetest.WriteFile(t, filepath.Join(dir, "b.txt", "in.txt"), "the folder's file")
	for _, expected := range []*repl.Stamp{nil, {Kind: repl.KindFile, Size: 4}} {
		_, err := s.Write(context.Background(), repl.WriteRequest{Handle: "b.txt", Expected: expected,
			Name: "b (conflict 2026-12-07 device).txt", Kind: repl.KindFile, Size: 4, Data: strings.NewReader("text")})
		if err == nil || errors.Is(err, repl.ErrExists) {
			t.Errorf("move of b.txt, now a folder (expected %v) = %v, want an error that is not ErrExists", expected, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "b (conflict 2026-12-07 device).txt")); err == nil {
			t.Errorf("the refused move left its new name (expected %v)", expected)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt", "in.txt")); err != nil || string(b) != "the folder's file" {
		t.Errorf("the folder's file = %q, %v", b, err)
	}
	storetest.NoTempFiles(t, dir, TempPrefix)
}
