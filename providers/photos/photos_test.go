package photos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// exifAPP1 builds a JPEG APP1 segment holding a little-endian TIFF structure with IFD0, whose
// only entry points to an Exif IFD holding DateTimeOriginal.
func exifAPP1(date string) []byte {
	le := binary.LittleEndian
	var t bytes.Buffer
	t.WriteString("II")
	binary.Write(&t, le, uint16(42))
	binary.Write(&t, le, uint32(8)) // IFD0 right after the header
	// IFD0: one entry, ExifIFDPointer (0x8769, LONG) -> offset 26 (8 + 2 + 12 + 4).
	binary.Write(&t, le, uint16(1))
	binary.Write(&t, le, uint16(0x8769))
	binary.Write(&t, le, uint16(4))
	binary.Write(&t, le, uint32(1))
	binary.Write(&t, le, uint32(26))
	binary.Write(&t, le, uint32(0))
	// Exif IFD: one entry, DateTimeOriginal (0x9003, ASCII, 20 bytes) at offset 44.
	binary.Write(&t, le, uint16(1))
	binary.Write(&t, le, uint16(0x9003))
	binary.Write(&t, le, uint16(2))
	binary.Write(&t, le, uint32(20))
	binary.Write(&t, le, uint32(44))
	binary.Write(&t, le, uint32(0))
	t.WriteString(date)
	t.WriteByte(0)
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	n := len(payload) + 2
	return append([]byte{0xFF, 0xE1, byte(n >> 8), byte(n)}, payload...)
}

// photo returns a real JPEG (a small image of one colour), with an EXIF DateTimeOriginal when
// date is not empty.
func photo(t testing.TB, shade uint8, date string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, color.RGBA{shade, 255 - shade, uint8(x * y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	j := b.Bytes()
	if date == "" {
		return j
	}
	out := append([]byte{0xFF, 0xD8}, exifAPP1(date)...)
	return append(out, j[2:]...)
}

func put(t testing.TB, path string, data []byte, mt time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestExifDate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.jpg")
	put(t, p, photo(t, 10, "2019:07:04 10:20:30"), time.Now())
	got, ok := exifDate(p)
	if want := time.Date(2019, 7, 4, 10, 20, 30, 0, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("exifDate(JPEG with DateTimeOriginal) = %v, %v; want %v", got, ok, want)
	}
	plain := filepath.Join(dir, "b.jpg")
	put(t, plain, photo(t, 10, ""), time.Now())
	if _, ok := exifDate(plain); ok {
		t.Error("exifDate(JPEG without EXIF) reported a date")
	}
	for _, s := range []string{"0000:00:00 00:00:00", "    :  :     :  :  ", "garbage"} {
		if _, ok := parseExifTime(s); ok {
			t.Errorf("parseExifTime(%q) accepted a meaningless date", s)
		}
	}
}

func TestIsMedia(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"IMG_0001.JPG", true}, {"a.jpeg", true}, {"x.heic", true}, {"s.png", true}, {"g.gif", true},
		{"r.dng", true}, {"r.CR2", true}, {"r.nef", true}, {"r.arw", true},
		{"v.mp4", true}, {"v.MOV", true}, {"v.3gp", true},
		{"notes.txt", false}, {".thumbnail.jpg", false}, {".trashed-1700000000-IMG.jpg", false},
		{"IMG.jpg.part", false}, {"IMG.jpg~", false}, {"noext", false},
	} {
		if got := IsMedia(tt.name); got != tt.want {
			t.Errorf("IsMedia(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func newSource(t testing.TB, dev *folder.Device, state string, keep bool, roots ...string) *Source {
	t.Helper()
	s, err := NewSource(dev, folder.Storage, SourceOptions{Roots: roots, StateDir: state, KeepGone: keep, Logf: storetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func cameraName(i int) string {
	return "DCIM/Camera/IMG_" + string(rune('A'+i%26)) + strings.Repeat("x", i/26) + ".jpg"
}

// The source runs the suite without KeepGone: the suite checks that a removed item leaves the
// enumeration; KeepGone's opposite promise is checked by TestFreeTheDevice.
func TestSourceConformance(t *testing.T) {
	type opened struct {
		dev   *folder.Device
		state string
	}
	all := map[repl.Store]opened{}
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			root, state := t.TempDir(), t.TempDir()
			dev := storetest.OpenFolderDevice(t, root)
			s := newSource(t, dev, state, false)
			all[s] = opened{dev, state}
			return s, storetest.FolderEditor{Dir: root}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			o := all[s]
			return newSource(t, o.dev, o.state, false)
		},
		ReadOnly: true,
		Name:     cameraName,
	})
}

// libraryEditor edits the library as a user would: a name the store imported is the file it
// imported it to.
type libraryEditor struct {
	lib *Library
	dir string
}

func (e libraryEditor) Put(name string, data []byte, mt time.Time) (string, error) {
	h := name
	if imported, ok := e.lib.ImportedAs(name); ok {
		h = imported
	}
	p := filepath.Join(e.dir, filepath.FromSlash(h))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	return h, os.Chtimes(p, mt, mt)
}

func (e libraryEditor) Remove(h string) error {
	return os.Remove(filepath.Join(e.dir, filepath.FromSlash(h)))
}

func newLibrary(t testing.TB, dir, state string, opts LibraryOptions) *Library {
	t.Helper()
	opts.StateDir, opts.Logf = state, storetest.Quiet
	l, err := NewLibrary(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// The library runs the suite without KeepOriginals: the suite checks that an update replaces the
// item; KeepOriginals' promise is checked by TestCameraReusesNames.
func TestLibraryConformance(t *testing.T) {
	type opened struct{ dir, state string }
	all := map[repl.Store]opened{}
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			dir, state := t.TempDir(), t.TempDir()
			l := newLibrary(t, dir, state, LibraryOptions{})
			all[l] = opened{dir, state}
			return l, libraryEditor{l, dir}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			o := all[s]
			return newLibrary(t, o.dir, o.state, LibraryOptions{})
		},
		Name: cameraName,
	})
}

// importAll copies every item of the source the library does not refuse, as a to-desktop
// session with no metadata (a first sync, or one after the engine's file was rebuilt) would.
// It returns the handles of the pictures now in the library for what it wrote (a Write that
// acknowledges a picture the user deleted writes nothing).
func importAll(t *testing.T, src *Source, lib *Library) []string {
	t.Helper()
	ctx := context.Background()
	it, err := src.Enumerate(ctx)
	if err != nil {
		t.Fatalf("Source.Enumerate: %v", err)
	}
	defer it.Close()
	var written []string
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !src.IsItemReplicated(e) {
			continue
		}
		rc, err := src.Open(ctx, e.Handle)
		if errors.Is(err, repl.ErrNotFound) {
			continue // offered once, gone from the device since
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := lib.Write(ctx, repl.WriteRequest{Name: e.Handle, Kind: repl.KindFile, Size: e.Size, ModTime: e.ModTime, Data: rc})
		rc.Close()
		if errors.Is(err, repl.ErrExists) {
			continue
		}
		if err != nil {
			t.Fatalf("Library.Write(%q): %v", e.Handle, err)
		}
		if _, err := os.Stat(filepath.Join(lib.Dir(), filepath.FromSlash(w.Handle))); err == nil {
			written = append(written, w.Handle)
		}
	}
	sort.Strings(written)
	return written
}

// libraryFiles lists the files in the library folder.
func libraryFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestImportByDateOnceAndNeverBack(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2024, 8, 15, 9, 0, 0, 0, time.UTC)
	shot := photo(t, 1, "2019:07:04 10:20:30")
	put(t, filepath.Join(root, "DCIM/Camera/IMG_20190704_102030.jpg"), shot, mt)
	put(t, filepath.Join(root, "DCIM/Camera/copy-of-shot.jpg"), shot, mt) // the same picture twice
	put(t, filepath.Join(root, "DCIM/Camera/no-exif.png"), []byte("\x89PNG not really"), mt)
	put(t, filepath.Join(root, "DCIM/Camera/VID_0001.mp4"), []byte("video bytes"), mt)
	put(t, filepath.Join(root, "DCIM/Camera/DSC_0001.NEF"), []byte("raw bytes"), mt)
	put(t, filepath.Join(root, "DCIM/Camera/notes.txt"), []byte("not a picture"), mt)
	put(t, filepath.Join(root, "DCIM/.thumbnails/t.jpg"), []byte("thumb"), mt)
	put(t, filepath.Join(root, "Pictures/Screenshots/Screenshot_1.png"), []byte("screen"), mt)
	dev := storetest.OpenFolderDevice(t, root)
	src := newSource(t, dev, state, true)
	lib := newLibrary(t, pics, state, LibraryOptions{KeepOriginals: true})

	got := importAll(t, src, lib)
	want := []string{
		"2019/2019-07-04/IMG_20190704_102030.jpg", // EXIF date; of two copies the first in path order
		"2024/2024-08-15/DSC_0001.NEF",            // no EXIF: the modification time
		"2024/2024-08-15/VID_0001.mp4",
		"2024/2024-08-15/no-exif.png",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("first import wrote %q, want %q", got, want)
	}
	if files := libraryFiles(t, pics); strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("library holds %q, want %q (duplicates once, screenshots not asked for)", files, want)
	}
	fi, err := os.Stat(filepath.Join(pics, "2024/2024-08-15/VID_0001.mp4"))
	if err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("imported video: %v, time %v; want its time %v kept", err, fi.ModTime(), mt)
	}

	// A second import, even without the engine's memory, imports nothing.
	if again := importAll(t, src, lib); len(again) != 0 {
		t.Errorf("second import wrote %q, want nothing", again)
	}

	// A picture deleted on the computer is not imported again, even after a restart.
	if err := os.Remove(filepath.Join(pics, "2024/2024-08-15/VID_0001.mp4")); err != nil {
		t.Fatal(err)
	}
	lib.Close()
	src.Close()
	src = newSource(t, dev, state, true)
	lib = newLibrary(t, pics, state, LibraryOptions{KeepOriginals: true})
	if again := importAll(t, src, lib); len(again) != 0 {
		t.Errorf("import after deleting a picture on the computer wrote %q, want nothing", again)
	}
	if _, err := os.Stat(filepath.Join(pics, "2024/2024-08-15/VID_0001.mp4")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted video came back: %v", err)
	}

	// The same picture copied to another folder of the device later is not imported either.
	put(t, filepath.Join(root, "DCIM/Restored/IMG_restored.jpg"), shot, mt.Add(time.Hour))
	if again := importAll(t, src, lib); len(again) != 0 {
		t.Errorf("import of a copy of an imported picture wrote %q, want nothing", again)
	}
}

func TestScreenshotsOption(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	put(t, filepath.Join(root, "Pictures/Screenshots/Screenshot_1.png"), []byte("screen"), mt)
	dev := storetest.OpenFolderDevice(t, root)
	p, err := providers.Lookup("photos")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := p.Validate(map[string]string{OptDesktop: pics, OptScreenshots: "true"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.Open(context.Background(), providers.Env{Options: opts, Device: dev, StateDir: state})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer inst.Close()
	if got := importAll(t, inst.Device.(*Source), inst.Desktop.(*Library)); strings.Join(got, " ") != "2025/2025-02-03/Screenshot_1.png" {
		t.Errorf("import with screenshots = %q", got)
	}
	if p.SupportsDirection(providers.TwoWay) || !p.SupportsDirection(providers.ToDesktop) {
		t.Error("photos must support to-desktop only")
	}
}

func TestFreeTheDevice(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a := photo(t, 50, "2023:12:31 23:59:59")
	put(t, filepath.Join(root, "DCIM/Camera/A.jpg"), a, mt)
	put(t, filepath.Join(root, "DCIM/Camera/B.jpg"), photo(t, 60, ""), mt)
	dev := storetest.OpenFolderDevice(t, root)
	src := newSource(t, dev, state, true)
	lib := newLibrary(t, pics, state, LibraryOptions{KeepOriginals: true, Free: src.Free})
	before := map[string]repl.Entry{}
	it, _ := src.Enumerate(context.Background())
	for {
		e, err := it.Next(context.Background())
		if err != nil {
			break
		}
		before[e.Handle] = e
	}
	it.Close()

	got := importAll(t, src, lib)
	if len(got) != 2 {
		t.Fatalf("import wrote %q, want 2 pictures", got)
	}
	for _, name := range []string{"A.jpg", "B.jpg"} {
		if _, err := os.Stat(filepath.Join(root, "DCIM/Camera", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still on the device after a verified import with the free option: %v", name, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(pics, "2023/2023-12-31/A.jpg"))
	sum := sha256.Sum256(a)
	if err != nil || !bytes.Equal(b, a) {
		t.Errorf("imported A.jpg: %v, content equal %v (sha256 %s)", err, bytes.Equal(b, a), hex.EncodeToString(sum[:6]))
	}
	// The freed pictures are still reported as they were: nothing is deleted on the computer.
	it, err = src.Enumerate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		e, err := it.Next(context.Background())
		if err != nil {
			break
		}
		n++
		if ch, _ := src.IsItemChanged(context.Background(), e, before[e.Handle].Stamp()); ch {
			t.Errorf("freed picture %q looks changed to the engine", e.Handle)
		}
	}
	it.Close()
	if n != 2 {
		t.Errorf("after freeing the device the source reports %d pictures, want the 2 imported ones", n)
	}
	if files := libraryFiles(t, pics); len(files) != 2 {
		t.Errorf("library after freeing the device = %q", files)
	}
}

func TestFreeRefusesUnverifiedOrChanged(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	put(t, filepath.Join(root, "DCIM/A.jpg"), photo(t, 70, ""), mt)
	dev := storetest.OpenFolderDevice(t, root)
	src := newSource(t, dev, state, true)
	it, _ := src.Enumerate(context.Background())
	e, _ := it.Next(context.Background())
	it.Close()
	// The user edits the picture on the phone after the import started.
	put(t, filepath.Join(root, "DCIM/A.jpg"), photo(t, 71, ""), mt.Add(time.Minute))
	if err := src.Free(context.Background(), e.Hash); !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Free of a picture changed since = %v, want ErrChanged", err)
	}
	if _, err := os.Stat(filepath.Join(root, "DCIM/A.jpg")); err != nil {
		t.Errorf("the changed picture was deleted: %v", err)
	}
	if err := src.Free(context.Background(), strings.Repeat("0", 64)); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Free of an unknown hash = %v, want ErrNotFound", err)
	}
}

func TestCameraReusesNames(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2024, 6, 1, 8, 0, 0, 0, time.UTC)
	put(t, filepath.Join(root, "DCIM/100CANON/IMG_0001.JPG"), photo(t, 80, "2024:06:01 08:00:00"), mt)
	dev := storetest.OpenFolderDevice(t, root)
	src := newSource(t, dev, state, true)
	lib := newLibrary(t, pics, state, LibraryOptions{KeepOriginals: true})
	importAll(t, src, lib)
	ctx := context.Background()
	first, _ := lib.Stat(ctx, "2024/2024-06-01/IMG_0001.JPG")
	// The card is formatted and the camera starts at IMG_0001 again, the same day: the engine
	// sees the device item changed and updates the desktop one.
	put(t, filepath.Join(root, "DCIM/100CANON/IMG_0001.JPG"), photo(t, 90, "2024:06:01 17:00:00"), mt.Add(9*time.Hour))
	rc, err := src.Open(ctx, "DCIM/100CANON/IMG_0001.JPG")
	if err != nil {
		t.Fatal(err)
	}
	st := first.Stamp()
	fi, _ := os.Stat(filepath.Join(root, "DCIM/100CANON/IMG_0001.JPG"))
	_, err = lib.Write(ctx, repl.WriteRequest{Handle: "2024/2024-06-01/IMG_0001.JPG", Expected: &st, Name: "DCIM/100CANON/IMG_0001.JPG",
		Kind: repl.KindFile, Size: fi.Size(), ModTime: fi.ModTime(), Data: rc})
	rc.Close()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := libraryFiles(t, pics); strings.Join(got, " ") != "2024/2024-06-01/IMG_0001 (2).JPG 2024/2024-06-01/IMG_0001.JPG" {
		t.Errorf("library after a reused name = %q, want both pictures kept", got)
	}
}

func TestNameCollisionFromAnotherDevice(t *testing.T) {
	pics := t.TempDir()
	mt := time.Date(2024, 6, 1, 8, 0, 0, 0, time.UTC)
	ctx := context.Background()
	libA := newLibrary(t, pics, t.TempDir(), LibraryOptions{})
	libB := newLibrary(t, pics, t.TempDir(), LibraryOptions{}) // another phone's partnership, same folder
	a, b := photo(t, 1, ""), photo(t, 2, "")
	if _, err := libA.Write(ctx, repl.WriteRequest{Name: "DCIM/IMG_0001.JPG", Kind: repl.KindFile, Size: int64(len(a)), ModTime: mt, Data: bytes.NewReader(a)}); err != nil {
		t.Fatal(err)
	}
	w, err := libB.Write(ctx, repl.WriteRequest{Name: "DCIM/IMG_0001.JPG", Kind: repl.KindFile, Size: int64(len(b)), ModTime: mt, Data: bytes.NewReader(b)})
	if err != nil || w.Handle != "2024/2024-06-01/IMG_0001 (2).JPG" {
		t.Errorf("a different picture of the same name and day = %q, %v; want it beside as (2)", w.Handle, err)
	}
	// The same picture under the same name from the other phone joins the one there.
	j, err := libB.Write(ctx, repl.WriteRequest{Name: "DCIM/Camera/IMG_0001.JPG", Kind: repl.KindFile, Size: int64(len(a)), ModTime: mt, Data: bytes.NewReader(a)})
	if err != nil || j.Handle != "2024/2024-06-01/IMG_0001.JPG" || len(libraryFiles(t, pics)) != 2 {
		t.Errorf("the same picture again = %q, %v; library %q, want it joined", j.Handle, err, libraryFiles(t, pics))
	}
}
