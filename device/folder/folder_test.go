package folder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
)

func quiet(string, ...any) {}

func openTest(t *testing.T, dir string, opts Options) *Device {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = quiet
	}
	d, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestCreateOpenStatListRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTest(t, dir, Options{NoEvents: true})
	mt := time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	content := bytes.Repeat([]byte("cradle "), 100000)

	o, err := d.Create(ctx, Storage, "Music/Album/track.mp3", int64(len(content)), mt, bytes.NewReader(content))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if o.Path != "Music/Album/track.mp3" || o.Name != "track.mp3" || o.Dir || o.Size != int64(len(content)) || !o.ModTime.Equal(mt) {
		t.Errorf("Create returned %+v, want path, name, size %d and time %v", o, len(content), mt)
	}
	got, err := os.ReadFile(filepath.Join(dir, "Music/Album/track.mp3"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("file on disk: err %v, %d bytes, want the %d bytes written", err, len(got), len(content))
	}

	st, err := d.Stat(ctx, Storage, "/Music/Album/track.mp3")
	if err != nil || st != o {
		t.Errorf("Stat = %+v, %v; want %+v", st, err, o)
	}
	rootObj, err := d.Stat(ctx, Storage, "")
	if err != nil || !rootObj.Dir {
		t.Errorf("Stat(root) = %+v, %v; want a folder", rootObj, err)
	}

	rc, err := d.Open(ctx, Storage, "Music/Album/track.mp3", 7)
	if err != nil {
		t.Fatalf("Open at 7: %v", err)
	}
	tail, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(tail, content[7:]) {
		t.Errorf("Open at offset 7 read %d bytes (err %v), want %d", len(tail), err, len(content)-7)
	}

	list, err := d.List(ctx, Storage, "Music")
	if err != nil || len(list) != 1 || list[0].Path != "Music/Album" || !list[0].Dir {
		t.Errorf("List(Music) = %+v, %v; want the one folder Music/Album", list, err)
	}

	if _, err := d.Create(ctx, Storage, "Music/Album/track.mp3", 1, mt, strings.NewReader("x")); !errors.Is(err, device.ErrExists) {
		t.Errorf("Create over an existing object = %v, want ErrExists", err)
	}
	if _, err := d.Stat(ctx, Storage, "nope"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	if _, err := d.Open(ctx, Storage, "nope", 0); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	if _, err := d.List(ctx, 2, ""); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("List(storage 2) = %v, want ErrNotFound", err)
	}
}

func TestWalkOrderAndSkipDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, p := range []string{"a/x.txt", "a/sub/y.txt", "b/z.txt", "c.txt"} {
		writeFile(t, filepath.Join(dir, p), "data")
	}
	d := openTest(t, dir, Options{NoEvents: true})
	var seen []string
	err := d.Walk(ctx, Storage, "", func(o device.Object) error {
		seen = append(seen, o.Path)
		if o.Path == "b" {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	want := "a a/sub a/sub/y.txt a/x.txt b c.txt"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("Walk visited %q, want %q", got, want)
	}

	stop := errors.New("stop")
	if err := d.Walk(ctx, Storage, "", func(device.Object) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk with fn failing = %v, want fn's error", err)
	}
	n := 0
	if err := d.Walk(ctx, Storage, "", func(device.Object) error { n++; return fs.SkipAll }); err != nil || n != 1 {
		t.Errorf("Walk with SkipAll = %v after %d calls, want nil after 1", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Walk(cctx, Storage, "", func(device.Object) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestMkdirDeleteRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTest(t, dir, Options{NoEvents: true})

	if o, err := d.Mkdir(ctx, Storage, "Books/New"); err != nil || !o.Dir || o.Path != "Books/New" {
		t.Fatalf("Mkdir = %+v, %v", o, err)
	}
	if _, err := d.Mkdir(ctx, Storage, "Books/New"); err != nil {
		t.Errorf("Mkdir of an existing folder = %v, want nil", err)
	}
	if _, err := d.Create(ctx, Storage, "Books/New/a.epub", 3, time.Time{}, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mkdir(ctx, Storage, "Books/New/a.epub"); !errors.Is(err, device.ErrExists) {
		t.Errorf("Mkdir over a file = %v, want ErrExists", err)
	}
	if err := d.Delete(ctx, Storage, "Books/New"); !errors.Is(err, device.ErrNotEmpty) {
		t.Errorf("Delete of a non-empty folder = %v, want ErrNotEmpty", err)
	}
	if err := d.Rename(ctx, Storage, "Books/New/a.epub", "Archive/2024/b.epub"); err != nil {
		t.Fatalf("Rename into a new folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Archive/2024/b.epub")); err != nil {
		t.Errorf("after Rename the file is not at its new path: %v", err)
	}
	if _, err := d.Create(ctx, Storage, "Books/c.epub", 1, time.Time{}, strings.NewReader("c")); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename(ctx, Storage, "Books/c.epub", "Archive/2024/b.epub"); !errors.Is(err, device.ErrExists) {
		t.Errorf("Rename onto an existing object = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Archive/2024/b.epub")); string(b) != "abc" {
		t.Errorf("the refused Rename replaced the target: it holds %q", b)
	}
	if err := d.Rename(ctx, Storage, "missing", "x"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Rename of a missing object = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, Storage, "Books/New"); err != nil {
		t.Errorf("Delete of an empty folder = %v", err)
	}
	if err := d.Delete(ctx, Storage, "Books/New"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Delete of a deleted folder = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, Storage, ""); err == nil {
		t.Errorf("Delete of the storage root succeeded")
	}
}

// slowReader yields data forever, cancelling ctx after some bytes.
type cancellingReader struct {
	n      int
	after  int
	cancel func()
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		r.cancel()
	}
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}

func TestCreateInterruptedLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, dir, Options{NoEvents: true})
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancellingReader{after: 3 << 20, cancel: cancel}
	_, err := d.Create(ctx, Storage, "Movies/big.mkv", 100<<20, time.Now(), r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create cancelled mid-stream = %v, want context.Canceled", err)
	}
	assertNoFiles(t, filepath.Join(dir, "Movies"))

	_, err = d.Create(context.Background(), Storage, "short.bin", 10, time.Now(), strings.NewReader("12345"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Create with short content = %v, want io.ErrUnexpectedEOF", err)
	}
	_, err = d.Create(context.Background(), Storage, "long.bin", 3, time.Now(), strings.NewReader("12345"))
	if err == nil {
		t.Errorf("Create with content longer than its size succeeded")
	}
	assertNoFiles(t, dir, "Movies")
}

// assertNoFiles fails if dir holds anything but the allowed names (temporary files included).
func assertNoFiles(t *testing.T, dir string, allowed ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		ok := false
		for _, a := range allowed {
			ok = ok || e.Name() == a
		}
		if !ok {
			t.Errorf("%s holds %q after a failed Create", dir, e.Name())
		}
	}
}

func TestNoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (run as root, e.g. in CI, to cover the full-disk path)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	d := openTest(t, mnt, Options{NoEvents: true})
	st, err := d.Storages(context.Background())
	if err != nil || len(st) != 1 || st[0].Capacity != 256<<10 || st[0].Free > st[0].Capacity {
		t.Errorf("Storages = %+v, %v; want one storage of 256 KiB with free <= capacity", st, err)
	}
	data := bytes.Repeat([]byte{1}, 1<<20)
	_, err = d.Create(context.Background(), Storage, "too-big.bin", int64(len(data)), time.Now(), bytes.NewReader(data))
	if !errors.Is(err, device.ErrNoSpace) {
		t.Fatalf("Create of 1 MiB on a 256 KiB disk = %v, want ErrNoSpace", err)
	}
	assertNoFiles(t, mnt)
}

func TestHostileNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "secret")
	writeFile(t, filepath.Join(dir, "ok.txt"), "ok")
	for _, name := range []string{"back\\slash", "bell\x07", "CON", "nul.txt", "LPT1.log"} {
		writeFile(t, filepath.Join(dir, name), "hostile")
	}
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	d := openTest(t, dir, Options{NoEvents: true})
	list, err := d.List(ctx, Storage, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "ok.txt" {
		t.Errorf("List = %+v, want only ok.txt (hostile names and symbolic links skipped)", list)
	}
	if d.Skipped() != 5 {
		t.Errorf("Skipped() = %d, want 5", d.Skipped())
	}
	if _, err := d.Open(ctx, Storage, "escape/secret", 0); err == nil {
		t.Errorf("Open through a symbolic link leading outside the folder succeeded")
	}
	for _, p := range []string{"../x", "a/../../x", "a\\b", "x\x00y", "COM3.txt", strings.Repeat("n", 256)} {
		if _, err := d.Create(ctx, Storage, p, 1, time.Time{}, strings.NewReader("x")); !errors.Is(err, device.ErrUnsafeName) {
			t.Errorf("Create(%q) = %v, want ErrUnsafeName", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "x")); err == nil {
		t.Errorf("a write escaped the folder")
	}
}

func TestInfoAndStorages(t *testing.T) {
	dir := t.TempDir()
	d1 := openTest(t, dir, Options{NoEvents: true})
	d2 := openTest(t, dir+"/", Options{NoEvents: true})
	d3 := openTest(t, t.TempDir(), Options{NoEvents: true})
	i1, i2, i3 := d1.Info(), d2.Info(), d3.Info()
	if i1.Serial == "" || i1.Serial != i2.Serial {
		t.Errorf("serials for the same folder differ: %q, %q", i1.Serial, i2.Serial)
	}
	if i1.Serial == i3.Serial {
		t.Errorf("two folders got the same serial %q", i1.Serial)
	}
	if i1.Kind != device.KindStorage || i1.Transport != "folder" {
		t.Errorf("Info = %+v, want kind storage and transport folder", i1)
	}
	st, err := d1.Storages(context.Background())
	if err != nil || len(st) != 1 || st[0].ID != Storage || st[0].Capacity == 0 || st[0].Free > st[0].Capacity {
		t.Errorf("Storages = %+v, %v; want storage 1 with capacity > 0 and free <= capacity", st, err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{Logf: quiet}); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Open(missing folder) = %v, want ErrNotFound", err)
	}
}

func TestUnreadableFolder(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	writeFile(t, filepath.Join(locked, "inner.txt"), "x")
	// Let "nobody" reach dir, then lock the subfolder.
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	d := openTest(t, dir, Options{NoEvents: true})
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A thread whose file-system identity is "nobody", so permission bits apply even when
		// the tests run as root (CI does). The thread ends with the goroutine.
		runtime.LockOSThread()
		if os.Geteuid() == 0 {
			syscall.Setfsuid(65534)
			syscall.Setfsgid(65534)
		}
		_, err = d.List(context.Background(), Storage, "locked")
	}()
	<-done
	if !errors.Is(err, device.ErrPermission) {
		t.Errorf("List(unreadable) = %v, want ErrPermission", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
