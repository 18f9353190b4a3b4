package manager

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// refusingPhone is an emulated phone that refuses, when told to, to store anything in its
// Contacts folder (the file of the contacts provider), and stores everything else.
type refusingPhone struct {
	device.Device
	refuse atomic.Bool
}

func (d *refusingPhone) Create(ctx context.Context, s device.StorageID, path string, size int64, mt time.Time, r io.Reader) (device.Object, error) {
	if d.refuse.Load() && strings.HasPrefix(path, "Contacts/") {
		return device.Object{}, errors.New("the phone refused the file")
	}
	return d.Device.Create(ctx, s, path, size, mt, r)
}

// refusingMonitor attaches one refusingPhone.
type refusingMonitor struct {
	dir   string
	phone chan *refusingPhone
}

func (f *refusingMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	e, err := emulator.New(f.dir, emulator.Options{})
	if err != nil {
		return err
	}
	defer e.Close()
	d, err := mtp.Open(ctx, e, mtp.Options{Transport: "mtp-emulated"})
	if err != nil {
		return err
	}
	p := &refusingPhone{Device: d}
	f.phone <- p
	report(device.Presence{Key: emulator.Key(f.dir), Connected: true, Device: p, Label: emulator.Label(f.dir)})
	<-ctx.Done()
	d.Close()
	return nil
}

// metaFiles lists the files of the phone's metadata folder with their sizes and times.
func metaFiles(t *testing.T, phone string) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := filepath.Join(phone, metaDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime().String() + " " + info.Name()
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// TestUnflushedNotExported: when the contacts file cannot be written at the end of a session (its
// flush failed), the device replica's snapshot is not written to the phone: it would tell another
// computer the phone has cards its file does not hold. The next session writes both.
func TestUnflushedNotExported(t *testing.T) {
	w := newWorld(t)
	card := func(uid, tel string) string {
		return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nN:Silva;Ana;;;\r\nFN:Ana Silva\r\nTEL;TYPE=cell:" + tel + "\r\nEND:VCARD\r\n"
	}
	writeFile(t, filepath.Join(w.desktop, "ana-1.vcf"), card("ana-1", "+351 910 000 001"))
	mon := &refusingMonitor{dir: w.phone, phone: make(chan *refusingPhone, 1)}
	m := w.open(false, mon)
	w.waitDevice(m)
	phone := <-mon.phone
	p, err := m.AddPartnership(ctxT(t), Partnership{Name: "Contacts", Provider: "contacts", Device: w.serial(),
		Options: map[string]string{"desktop": w.desktop}})
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("first sync = %+v, %v", ss, err)
	}
	before := metaFiles(t, w.phone)
	if len(before) == 0 {
		t.Fatalf("no snapshot on the phone after the first sync")
	}

	writeFile(t, filepath.Join(w.desktop, "ana-2.vcf"), card("ana-2", "+351 910 000 002"))
	phone.refuse.Store(true)
	ss, _ := m.Sync(ctxT(t), SyncOptions{}, p.ID)
	if len(ss) != 1 || ss[0].Outcome == OutcomeOK {
		t.Fatalf("sync with the contacts file refused = %+v, want a failed session", ss)
	}
	if after := metaFiles(t, w.phone); !mapsEqual(before, after) {
		t.Errorf("the snapshot on the phone changed though the contacts file was not written:\nbefore %v\nafter  %v", before, after)
	}

	phone.refuse.Store(false)
	if ss, err := m.Sync(ctxT(t), SyncOptions{}, p.ID); err != nil || ss[0].Outcome != OutcomeOK {
		t.Fatalf("sync after = %+v, %v", ss, err)
	}
	if got := readFile(t, filepath.Join(w.phone, "Contacts", "contacts.vcf")); !strings.Contains(got, "ana-2") {
		t.Errorf("the phone's contacts file after the next sync:\n%s\nwant ana-2", got)
	}
	if after := metaFiles(t, w.phone); mapsEqual(before, after) {
		t.Errorf("the next sync wrote no new snapshot")
	}
	if _, err := os.Stat(filepath.Join(w.config, "state")); err != nil {
		t.Fatal(err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
