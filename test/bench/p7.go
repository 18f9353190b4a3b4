package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/contacts"
	"github.com/cradle-sync/cradle/repl"
)

// newContacts is how many new contacts P7 sends to the phone.
const newContacts = 1000

// goalContactUploads is issue 16's goal: uploads of the contacts file for 1,000 new contacts.
const goalContactUploads = 2

// p7 measures 1,000 new contacts reaching the phone: the uploads of the contacts file, their
// bytes and the session's time, against the store writing every card through (the behaviour
// before deferred uploads); and the USB listing figure of make bench-usb.
func (b *bench) p7(ctx context.Context) error {
	s := &section{id: "P7", title: "1,000 new contacts reaching the phone; listing 10k objects over real USB"}
	s.intro = fmt.Sprintf(`%s new contacts (vCard 3.0, about 380 bytes each in the phone's file: name, two phone numbers, e-mail,
address, organisation, note) in the address book folder, a phone (the MTP emulator, in process,
serving an empty folder) and an empty handle file; one two-way session in process
(repl.HandleFile.Sync over the contacts provider's stores as the provider opens them). The
uploads of the contacts file are counted at the device layer (every Create of the file or of the
new file beside it), with their bytes. **Baseline**: the same session with the device's store
writing every card through (contacts.DeviceFile without DeferUploads, the behaviour before it):
one upload of the whole, growing file per card.`, thousands(newContacts))
	var (
		walls, baseWalls     durations
		uploads, baseUploads []int64
		sent, baseSent       []int64
	)
	for i := range b.c.runs {
		for _, deferred := range []bool{i%2 == 0, i%2 != 0} {
			r, err := b.contactsSession(ctx, deferred)
			if err != nil {
				return err
			}
			b.c.logf("P7: run %d, deferred %v: %d uploads, %d bytes, %s", i+1, deferred, r.uploads, r.bytes, fmtDur(r.wall))
			if deferred {
				walls, uploads, sent = append(walls, r.wall), append(uploads, int64(r.uploads)), append(sent, r.bytes)
			} else {
				baseWalls, baseUploads, baseSent = append(baseWalls, r.wall), append(baseUploads, int64(r.uploads)), append(baseSent, r.bytes)
			}
		}
	}
	mu, mb := medianInt(uploads), medianInt(baseUploads)
	s.rows = append(s.rows,
		row{
			what:     "1,000 new contacts reaching the phone: uploads of the contacts file",
			cradle:   fmt.Sprint(mu),
			baseline: fmt.Sprintf("%d (a card each)", mb),
			goal:     fmt.Sprintf("<= %d uploads", goalContactUploads),
			verdict:  verdict(slices.Max(uploads) <= goalContactUploads),
		},
		row{
			what:     "1,000 new contacts reaching the phone: bytes uploaded",
			cradle:   fmtKB(medianInt(sent)),
			baseline: fmtBytes(medianInt(baseSent)),
			ratio:    fmt.Sprintf("%.4fx", float64(medianInt(sent))/float64(medianInt(baseSent))),
		},
		row{
			what:     "1,000 new contacts reaching the phone: the session's time",
			cradle:   fmtDur(walls.median()),
			baseline: fmtDur(baseWalls.median()),
			ratio:    ratio(float64(walls.median()), float64(baseWalls.median())),
		})
	s.notes = append(s.notes,
		fmt.Sprintf("Uploads %v, baseline %v; the session took %s, the baseline %s. Every run ends with all %s cards in the phone's file.",
			uploads, baseUploads, walls.spread(), baseWalls.spread(), thousands(newContacts)),
		"Contacts: the device's store (providers/contacts, DeviceFile) takes the engine's cards in memory and in a journal in the partnership's state folder, synced before the engine commits each batch (repl.Flusher's Persist), and uploads the file once at the end of the session (Flush). A process killed or a phone unplugged before or during that upload loses nothing: the next session replays the journal over the file the phone has (providers/contacts/deferred_test.go).")
	// The USB listing takes minutes in a QEMU guest: its figures come from test/usbvm's usbbench
	// (make bench-usb), which lists 10,000 small files (100 folders of 100) with Cradle's walk
	// and with libmtp's mtp-files in the same guest, alternately.
	text, from := b.usbText, "measured in this run by usbbench (-usb)"
	if text == "" {
		raw, err := os.ReadFile(filepath.Join(b.c.root, "docs", "performance-usb.md"))
		if err != nil {
			return fmt.Errorf("docs/performance-usb.md: %w (run make bench-usb)", err)
		}
		text, from = string(raw), "from [docs/performance-usb.md](performance-usb.md)"
	}
	listing := strings.Join(usbBlocks(text, "listing"), "\n\n")
	if rows := listRows(listing); len(rows) == 0 {
		s.rows = append(s.rows, row{
			what:    "listing 10k objects over real USB against libmtp's `mtp-files`",
			cradle:  "not measured",
			goal:    ">= 2x faster",
			verdict: "not measured",
		})
		s.notes = append(s.notes, "USB listing: docs/performance-usb.md has no listing table yet; `make bench-usb` writes it.")
	} else {
		s.rows = append(s.rows, rows...)
		s.notes = append(s.notes, "USB listing, "+from+" (`make bench-usb`): whole operations (finding the device, the session, every object's metadata, closing); the ratio is `mtp-files`' time over Cradle's.")
		s.raw = listing
	}
	s.command = fmt.Sprintf("go run ./test/bench -only P7 -runs %d -out -; make bench-usb", b.c.runs)
	b.rep.add(s)
	return nil
}

// contactsRun is one P7 session.
type contactsRun struct {
	uploads int
	bytes   int64
	wall    time.Duration
}

// contactsSession runs one session of newContacts new cards to an empty emulated phone.
func (b *bench) contactsSession(ctx context.Context, deferred bool) (contactsRun, error) {
	dir, err := os.MkdirTemp(b.c.work, "p7-")
	if err != nil {
		return contactsRun{}, err
	}
	defer os.RemoveAll(dir)
	vdir, phoneDir, state := filepath.Join(dir, "addressbook"), filepath.Join(dir, "phone"), filepath.Join(dir, "state")
	for _, d := range []string{vdir, phoneDir, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return contactsRun{}, err
		}
	}
	for i := range newContacts {
		if err := os.WriteFile(filepath.Join(vdir, fmt.Sprintf("%04d.vcf", i)), benchCard(i), 0o644); err != nil {
			return contactsRun{}, err
		}
	}
	dev, err := emulator.OpenDevice(ctx, phoneDir, emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return contactsRun{}, err
	}
	defer dev.Close()
	cd := &uploadCounter{Device: dev}
	var desk, phone repl.Store
	if deferred {
		p, err := providers.Lookup(contacts.Provider.Name)
		if err != nil {
			return contactsRun{}, err
		}
		inst, err := p.Open(ctx, providers.Env{Device: cd, StateDir: state,
			Options: map[string]string{contacts.OptDesktop: vdir, contacts.OptDevicePath: contacts.DefaultDevicePath}})
		if err != nil {
			return contactsRun{}, err
		}
		defer inst.Close()
		desk, phone = inst.Desktop, inst.Device
	} else {
		if desk, err = contacts.NewDesktop(vdir, func(string, ...any) {}); err != nil {
			return contactsRun{}, err
		}
		if phone, err = contacts.NewDeviceFile(cd, contacts.DefaultDevicePath, state, func(string, ...any) {}); err != nil {
			return contactsRun{}, err
		}
	}
	hf, err := repl.Open(filepath.Join(dir, "p7.repl"), repl.Options{})
	if err != nil {
		return contactsRun{}, err
	}
	defer hf.Close()
	t0 := time.Now()
	rep, err := hf.Sync(ctx, repl.Side{Name: "desktop", Store: desk}, repl.Side{Name: "device", Store: phone}, repl.Config{})
	wall := time.Since(t0)
	if err != nil {
		return contactsRun{}, fmt.Errorf("sync %d contacts: %w", newContacts, err)
	}
	if c := rep.Applied["device"]; c == nil || c.Created != newContacts || !rep.Complete {
		return contactsRun{}, fmt.Errorf("sync %d contacts: created %+v on the phone, complete %v", newContacts, c, rep.Complete)
	}
	data, err := os.ReadFile(filepath.Join(phoneDir, filepath.FromSlash(contacts.DefaultDevicePath)))
	if err != nil {
		return contactsRun{}, err
	}
	if n := bytes.Count(data, []byte("BEGIN:VCARD")); n != newContacts {
		return contactsRun{}, fmt.Errorf("the phone's contacts file holds %d cards, want %d", n, newContacts)
	}
	return contactsRun{uploads: cd.uploads, bytes: cd.bytes, wall: wall}, nil
}

// benchCard is the i-th new contact.
func benchCard(i int) []byte {
	return []byte(fmt.Sprintf("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:urn:uuid:4a7e0c36-bench-4000-8000-%012d\r\n"+
		"N:Person;Number %d;;;\r\nFN:Number %d Person\r\nTEL;TYPE=cell:+44 7700 9%05d\r\nTEL;TYPE=work:+44 20 7946 %04d\r\n"+
		"EMAIL;TYPE=home:number.%d@example.org\r\nADR;TYPE=home:;;%d High Street;Bristol;;BS1 %dAA;United Kingdom\r\n"+
		"ORG:Example Ltd\r\nNOTE:met at the conference\\, table %d\r\nEND:VCARD\r\n", i, i, i, i, i%10000, i, i%300, i%10, i%40))
}

// uploadCounter counts the uploads of the contacts file at the device layer: every Create of
// the file or of the new file beside it, and their bytes.
type uploadCounter struct {
	device.Device
	mu      sync.Mutex
	uploads int
	bytes   int64
}

func (d *uploadCounter) Create(ctx context.Context, s device.StorageID, path string, size int64, mt time.Time, r io.Reader) (device.Object, error) {
	if strings.HasPrefix(path, contacts.DefaultDevicePath) {
		d.mu.Lock()
		d.uploads++
		d.bytes += size
		d.mu.Unlock()
	}
	return d.Device.Create(ctx, s, path, size, mt, r)
}

// fmtKB formats a byte count in kB (10^3).
func fmtKB(n int64) string { return fmt.Sprintf("%.0f kB", float64(n)/1e3) }
