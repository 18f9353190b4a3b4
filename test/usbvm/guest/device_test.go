//go:build usbvmguest

package guest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/test/usbvm"
)

// fixtureTime is the modification time the host gives its fixtures (see test/usbvm).
var fixtureTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// openDevice opens QEMU's device through discovery, the transport and the MTP initiator, as the
// Monitor does, and closes it when the test ends.
func openDevice(t *testing.T) device.Device {
	t.Helper()
	f := findQEMU(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := usb.OpenTransport(ctx, f, "")
	if err != nil {
		t.Fatalf("OpenTransport: %v", err)
	}
	d, err := usb.OpenMTP(ctx, tr, f)
	if err != nil {
		t.Fatalf("OpenMTP: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// storage returns the device's only storage.
func storage(t *testing.T, d device.Device) device.StorageID {
	t.Helper()
	ss, err := d.Storages(context.Background())
	if err != nil {
		t.Fatalf("Storages: %v", err)
	}
	if len(ss) != 1 {
		t.Fatalf("Storages = %+v, want QEMU's one", ss)
	}
	return ss[0].ID
}

func names(objs []device.Object) []string {
	var ns []string
	for _, o := range objs {
		n := o.Name
		if o.Dir {
			n += "/"
		}
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func readAll(t *testing.T, d device.Device, s device.StorageID, p string, off int64) []byte {
	t.Helper()
	r, err := d.Open(context.Background(), s, p, off)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", p, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s from %d: %v", p, off, err)
	}
	return b
}

func contentOf(t *testing.T, name string, size int64) []byte {
	t.Helper()
	b, err := io.ReadAll(usbvm.Content(name, size))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the device contract against QEMU's responder over real USB: device info
// and storage, list, stat, get, partial get, send into the root and into new subfolders, the
// errors a user meets (missing, existing, not empty, rename unsupported), delete, and the
// modification times QEMU reports.
func TestConformance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := openDevice(t)
	const dir = "Conformance"

	info := d.Info()
	if info.Manufacturer != "QEMU" || info.Model != "QEMU filesharing" || info.Serial == "" || info.Transport != "mtp-usb" {
		t.Errorf("Info() = %+v, want QEMU / QEMU filesharing over mtp-usb with a serial", info)
	}
	ss, err := d.Storages(ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("Storages = %+v, %v, want one", ss, err)
	}
	st := ss[0]
	if st.Description != "Storage" || st.Capacity == 0 || st.Free > st.Capacity || st.ReadOnly {
		t.Errorf("storage = %+v, want \"Storage\", writable, 0 < free <= capacity", st)
	}
	s := st.ID

	t.Run("List", func(t *testing.T) {
		objs, err := d.List(ctx, s, dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a.txt", "b.bin", "empty.txt", "sub/"}
		if got := names(objs); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("List(%s) = %v, want %v (dot files hidden)", dir, got, want)
		}
		for _, o := range objs {
			if o.Path != dir+"/"+o.Name || o.Storage != s {
				t.Errorf("object %+v: want path %s/%s on storage %d", o, dir, o.Name, s)
			}
			if o.Name == "b.bin" && o.Size != 3<<20+7 {
				t.Errorf("b.bin size = %d, want %d", o.Size, 3<<20+7)
			}
			if !o.Dir && !o.ModTime.Equal(fixtureTime) {
				t.Errorf("%s modified %v, want the host's %v", o.Name, o.ModTime, fixtureTime)
			}
		}
		var walked []string
		if err := d.Walk(ctx, s, dir, func(o device.Object) error {
			walked = append(walked, o.Path)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(walked)
		wantWalk := []string{dir + "/a.txt", dir + "/b.bin", dir + "/empty.txt", dir + "/sub", dir + "/sub/deep", dir + "/sub/deep/c.txt"}
		if strings.Join(walked, " ") != strings.Join(wantWalk, " ") {
			t.Errorf("Walk(%s) = %v, want %v", dir, walked, wantWalk)
		}
	})

	t.Run("Stat", func(t *testing.T) {
		o, err := d.Stat(ctx, s, dir+"/sub/deep/c.txt")
		if err != nil || o.Size != 11 || o.Dir || o.Name != "c.txt" {
			t.Errorf("Stat(c.txt) = %+v, %v, want an 11-byte file", o, err)
		}
		if o, err := d.Stat(ctx, s, dir+"/sub"); err != nil || !o.Dir {
			t.Errorf("Stat(sub) = %+v, %v, want a folder", o, err)
		}
		if _, err := d.Stat(ctx, s, dir+"/missing.txt"); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("Get", func(t *testing.T) {
		for _, c := range []struct {
			name string
			size int64
		}{{"a.txt", 5}, {"b.bin", 3<<20 + 7}, {"empty.txt", 0}, {"sub/deep/c.txt", 11}} {
			got := readAll(t, d, s, dir+"/"+c.name, 0)
			if !bytes.Equal(got, contentOf(t, dir+"/"+c.name, c.size)) {
				t.Errorf("Open(%s) read %d bytes that differ from the host's %d", c.name, len(got), c.size)
			}
		}
	})

	t.Run("PartialGet", func(t *testing.T) {
		whole := contentOf(t, dir+"/b.bin", 3<<20+7)
		for _, off := range []int64{1, 512, 1 << 20, 3<<20 + 6, 3<<20 + 7} {
			got := readAll(t, d, s, dir+"/b.bin", off)
			if !bytes.Equal(got, whole[off:]) {
				t.Errorf("Open(b.bin, %d) read %d bytes, want the %d from there", off, len(got), int64(len(whole))-off)
			}
		}
	})

	t.Run("SendRoot", func(t *testing.T) {
		const p = "Conformance-root.bin"
		size := int64(700<<10 + 3)
		o, err := d.Create(ctx, s, p, size, fixtureTime, usbvm.Content(p, size))
		if err != nil {
			t.Fatalf("Create(%s): %v", p, err)
		}
		if o.Path != p || o.Size != size || o.Dir {
			t.Errorf("Create(%s) = %+v, want a %d-byte file", p, o, size)
		}
		if got, want := hostHash(t, p), usbvm.ContentHash(p, size)+" "+itoa(size); got != want {
			t.Errorf("host sees %s as %s, want %s", p, got, want)
		}
	})

	t.Run("SendSubfolder", func(t *testing.T) {
		// Into an existing folder two levels down. New folders: TestNewFolders.
		p := dir + "/sub/deep/e.bin"
		size := int64(2<<20 + 9)
		if _, err := d.Create(ctx, s, p, size, fixtureTime, usbvm.Content(p, size)); err != nil {
			t.Fatalf("Create(%s): %v", p, err)
		}
		if got, want := hostHash(t, p), usbvm.ContentHash(p, size)+" "+itoa(size); got != want {
			t.Errorf("host sees %s as %s, want %s", p, got, want)
		}
		if got := readAll(t, d, s, p, 0); !bytes.Equal(got, contentOf(t, p, size)) {
			t.Errorf("reading back %s differs", p)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		if _, err := d.Create(ctx, s, dir+"/a.txt", 3, time.Now(), strings.NewReader("new")); !errors.Is(err, device.ErrExists) {
			t.Errorf("Create(existing a.txt) = %v, want ErrExists", err)
		}
		if got := hostHash(t, dir+"/a.txt"); got != usbvm.ContentHash(dir+"/a.txt", 5)+" 5" {
			t.Errorf("a.txt changed on the host after a refused Create: %s", got)
		}
		if _, err := d.Open(ctx, s, dir+"/nope.txt", 0); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Open(missing) = %v, want ErrNotFound", err)
		}
		if err := d.Delete(ctx, s, dir+"/sub"); !errors.Is(err, device.ErrNotEmpty) {
			t.Errorf("Delete(non-empty sub) = %v, want ErrNotEmpty", err)
		}
		if err := d.Rename(ctx, s, dir+"/a.txt", dir+"/renamed.txt"); !errors.Is(err, device.ErrUnsupported) {
			t.Errorf("Rename on QEMU (no SetObjectPropValue) = %v, want ErrUnsupported", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if err := d.Delete(ctx, s, dir+"/empty.txt"); err != nil {
			t.Fatalf("Delete(empty.txt): %v", err)
		}
		if got := hostHash(t, dir+"/empty.txt"); got != "absent" {
			t.Errorf("host still has empty.txt: %s", got)
		}
		if _, err := d.Stat(ctx, s, dir+"/empty.txt"); !errors.Is(err, device.ErrNotFound) {
			t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
		}
		for _, f := range []string{"c.txt", "e.bin"} {
			if err := d.Delete(ctx, s, dir+"/sub/deep/"+f); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Delete(ctx, s, dir+"/sub/deep"); err != nil {
			t.Errorf("Delete(emptied folder): %v", err)
		}
		if got := call(t, "list", dir+"/sub"); got != "" {
			t.Errorf("host lists sub/ as %q, want it empty", got)
		}
	})

	t.Run("NewSession", func(t *testing.T) {
		// Handles are renumbered at every session: paths must still work after a new one.
		f := findQEMU(t, 10*time.Second)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		tr, err := usb.OpenTransport(ctx, f, "")
		if err != nil {
			t.Fatal(err)
		}
		d2, err := usb.OpenMTP(ctx, tr, f)
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Close()
		if got := readAll(t, d2, s, dir+"/b.bin", 3<<20); !bytes.Equal(got, contentOf(t, dir+"/b.bin", 3<<20+7)[3<<20:]) {
			t.Errorf("the end of b.bin differs in a new session")
		}
		objs, err := d2.List(ctx, s, "")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, o := range objs {
			found = found || o.Name == path.Base("Conformance-root.bin")
		}
		if !found {
			t.Errorf("List(root) in a new session = %v, want Conformance-root.bin in it", names(objs))
		}
	})
}

// TestNewFolders makes folders on the device, with Mkdir and as the missing parents of Create, one
// and two levels at a time, and sends files into them, as a sync of a desktop tree does.
func TestNewFolders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := openDevice(t)
	s := storage(t, d)
	const dir = "NewFolders"
	if _, err := d.List(ctx, s, dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    string
		size int64
	}{{dir + "/one/a.bin", 1<<20 + 3}, {dir + "/two/levels/b.bin", 300<<10 + 1}, {dir + "/one/again/c.txt", 3}} {
		o, err := d.Create(ctx, s, c.p, c.size, fixtureTime, usbvm.Content(c.p, c.size))
		if err != nil {
			t.Errorf("Create(%s): %v", c.p, err)
			continue
		}
		if o.Path != c.p || o.Size != c.size {
			t.Errorf("Create(%s) = %+v, want a %d-byte file there", c.p, o, c.size)
		}
		if got, want := hostHash(t, c.p), usbvm.ContentHash(c.p, c.size)+" "+itoa(c.size); got != want {
			t.Errorf("host sees %s as %s, want %s", c.p, got, want)
		}
		if got := readAll(t, d, s, c.p, 0); !bytes.Equal(got, contentOf(t, c.p, c.size)) {
			t.Errorf("reading back %s differs", c.p)
		}
	}
	// QEMU matches a new name against the start of existing names (its lookup compares only the
	// new name's length): "pre" meets "pre-existing.txt", "Docs" meets "Docs-old". Such objects
	// must still be found.
	for _, c := range []struct {
		p    string
		size int64
	}{{dir + "/pre", 7}, {dir + "/Docs/x.txt", 4}} {
		o, err := d.Create(ctx, s, c.p, c.size, fixtureTime, usbvm.Content(c.p, c.size))
		if err != nil || o.Size != c.size || o.Path != c.p {
			t.Errorf("Create(%s) next to a name it starts = %+v, %v; want a %d-byte file", c.p, o, err, c.size)
			continue
		}
		if got := readAll(t, d, s, c.p, 0); !bytes.Equal(got, contentOf(t, c.p, c.size)) {
			t.Errorf("reading back %s differs", c.p)
		}
	}
	if got := readAll(t, d, s, dir+"/pre-existing.txt", 0); !bytes.Equal(got, contentOf(t, dir+"/pre-existing.txt", 9)) {
		t.Errorf("pre-existing.txt reads differently after pre was created next to it")
	}
	for _, p := range []string{dir + "/made", dir + "/made/here/and/there"} {
		if o, err := d.Mkdir(ctx, s, p); err != nil || !o.Dir || o.Path != p {
			t.Errorf("Mkdir(%s) = %+v, %v, want the folder", p, o, err)
		}
		if o, err := d.Stat(ctx, s, p); err != nil || !o.Dir {
			t.Errorf("Stat(%s) after Mkdir = %+v, %v, want a folder", p, o, err)
		}
	}
	if got := call(t, "list", dir+"/made/here"); got != "and/" {
		t.Errorf("host lists made/here as %q, want and/", got)
	}
	objs, err := d.List(ctx, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(objs), " "), "Docs-old/ Docs/ made/ one/ pre pre-existing.txt two/"; got != want {
		t.Errorf("List(%s) = %s, want %s", dir, got, want)
	}
}

// TestEvents: files the host adds to and removes from a folder the session listed arrive as
// device events with their paths.
func TestEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := openDevice(t)
	s := storage(t, d)
	const dir = "Events"
	if _, err := d.List(ctx, s, dir); err != nil {
		t.Fatal(err)
	}
	wait := func(kind device.EventKind, p string) {
		t.Helper()
		start := time.Now()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ev, ok := <-d.Events():
				if !ok {
					t.Fatalf("Events closed while waiting for %s %s", kind, p)
				}
				if ev.Kind == kind && ev.Path == p {
					t.Logf("%s %s after %s", kind, p, time.Since(start).Round(time.Millisecond))
					return
				}
				t.Logf("event %s %q (waiting for %s %s)", ev.Kind, ev.Path, kind, p)
			case <-timeout:
				t.Fatalf("no %s event for %s within 20s", kind, p)
			}
		}
	}
	call(t, "write", dir+"/arrived.txt", "1234")
	wait(device.ObjectAdded, dir+"/arrived.txt")
	if got := readAll(t, d, s, dir+"/arrived.txt", 0); !bytes.Equal(got, contentOf(t, dir+"/arrived.txt", 1234)) {
		t.Errorf("the file the event announced reads differently")
	}
	call(t, "remove", dir+"/old.txt")
	wait(device.ObjectRemoved, dir+"/old.txt")
	if _, err := d.Stat(ctx, s, dir+"/old.txt"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("Stat(old.txt) after its removal event = %v, want ErrNotFound", err)
	}
}
