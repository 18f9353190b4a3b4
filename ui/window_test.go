package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/demo"
)

// TestDemoWindowShowsDeviceAndPartnerships checks what the demo window shows before anything is
// tapped: the phone in the header with its storage, the three partnerships with their
// directions and status, and the waiting conflict on the Conflicts button.
func TestDemoWindowShowsDeviceAndPartnerships(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	if got := w.body.Objects[0]; got != w.mainView {
		t.Fatalf("the window shows the empty state with the demo phone connected")
	}
	if got, want := w.header.title.Text, emulator.Model; got != want {
		t.Errorf("header title = %q, want %q", got, want)
	}
	if got := w.header.subtitle.Text; !strings.Contains(got, emulator.Manufacturer) || !strings.Contains(got, h.demo.Serial()) {
		t.Errorf("header subtitle = %q, want the manufacturer %q and the serial %q", got, emulator.Manufacturer, h.demo.Serial())
	}
	if got := w.header.state.Text; got != "Connected" {
		t.Errorf("header state = %q, want Connected", got)
	}
	if len(w.header.storages.Objects) == 0 {
		t.Errorf("the header shows no storage bar")
	} else {
		bar := findProgressBar(w.header.storages.Objects[0])
		if bar == nil || bar.TextFormatter == nil || !strings.Contains(bar.TextFormatter(), "used of") {
			t.Errorf("the storage bar does not say how much is used")
		}
	}
	for _, c := range []struct{ name, direction string }{
		{demo.Documents, "Both ways"},
		{demo.Photos, "To this computer"},
		{demo.Contacts, "Both ways"},
	} {
		r := h.row(c.name)
		if r.name.Text != c.name || r.direction.Text != c.direction {
			t.Errorf("row %q shows name %q and direction %q, want %q", c.name, r.name.Text, r.direction.Text, c.direction)
		}
	}
	if got := h.row(demo.Documents).status.Text; !strings.Contains(got, "Synchronized just now") || !strings.Contains(got, "1 conflict needs you") {
		t.Errorf("Documents status = %q, want it synchronized just now with 1 conflict", got)
	}
	if got := h.row(demo.Photos).status.Text; got != "Not synchronized yet" {
		t.Errorf("Camera roll status = %q, want \"Not synchronized yet\"", got)
	}
	if got := w.conflictsButton.Text; got != "1 conflict" || w.conflictsButton.Disabled() {
		t.Errorf("Conflicts button = %q (disabled %v), want \"1 conflict\", enabled", got, w.conflictsButton.Disabled())
	}
	if got := w.syncButton.Text; got != "Sync Now" || w.syncButton.Disabled() {
		t.Errorf("Sync button = %q (disabled %v), want \"Sync Now\", enabled", got, w.syncButton.Disabled())
	}
}

func findProgressBar(o any) *widget.ProgressBar {
	var found *widget.ProgressBar
	walk(o, func(x any) {
		if b, ok := x.(*widget.ProgressBar); ok && found == nil {
			found = b
		}
	})
	return found
}

// TestSyncNowSyncs taps Sync Now on the demo and checks that the files arrive on both sides and
// the rows say so when they are done.
func TestSyncNowSyncs(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	ids := []string{h.part(demo.Documents), h.part(demo.Photos), h.part(demo.Contacts)}
	start := time.Now()
	test.Tap(w.syncButton)
	// (Stop shows while the sessions run, if that is longer than an update: TestStopStopsASync.)
	h.pump("the three partnerships to sync", func() bool { return h.syncedAfter(start, ids...) })
	h.pump("the button to come back", func() bool { return w.syncButton.Text == "Sync Now" })

	d := h.demo
	// Documents: the computer's new files reached the phone.
	for _, f := range []string{"Packing list.txt", "Budget 2026.csv", filepath.Join("Travel", "Lisbon.md")} {
		want := readFile(t, filepath.Join(d.DesktopDir, "Documents", f))
		if got := readFile(t, filepath.Join(d.DeviceDir, "Documents", f)); got != want {
			t.Errorf("phone's Documents/%s = %q, want the computer's %q", f, got, want)
		}
	}
	// Camera roll: every picture imported into a dated folder.
	var pics []string
	filepath.WalkDir(filepath.Join(d.DesktopDir, "Pictures"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".jpg") {
			pics = append(pics, p)
		}
		return nil
	})
	if len(pics) != 4 {
		t.Errorf("%d pictures imported into Pictures, want the phone's 4: %v", len(pics), pics)
	}
	// Contacts: the phone's cards became files of the address book.
	cards, _ := filepath.Glob(filepath.Join(d.DesktopDir, "Contacts", "*.vcf"))
	if len(cards) < 2 {
		t.Errorf("address book holds %d cards after the sync, want the phone's contacts added to the computer's one", len(cards))
	}
	for _, name := range []string{demo.Photos, demo.Contacts} {
		if got := h.row(name).status.Text; !strings.HasPrefix(got, "Synchronized just now") {
			t.Errorf("%s status = %q, want \"Synchronized just now\"", name, got)
		}
	}
	if !h.hasSent("synchronized") {
		t.Errorf("no notification says the sync finished; sent: %q", h.sentTitles())
	}
}

// TestSyncNowAsASyncStarts: a tap on Sync Now in the moment a sync begins (an automatic one,
// started by a change) asks for a sync; it does not stop the one that began. (The window's
// button had turned into Stop before it was drawn so, and the demo's first automatic sync,
// started as the user pressed Sync Now, was stopped: the pictures never came.)
func TestSyncNowAsASyncStarts(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	big := filepath.Join(h.demo.DesktopDir, "Documents", "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	docs, photos := h.part(demo.Documents), h.part(demo.Photos)
	start := time.Now()
	test.Tap(h.row(demo.Documents).syncButton)
	h.pump("the sync to begin", func() bool { return w.statuses[docs].State == manager.StateSyncing })
	test.Tap(w.syncButton) // as it turns into Stop
	h.pump("the photos the tap asked for", func() bool { return h.syncedAfter(start, photos) })
	if st := w.statuses[docs]; st.State != manager.StateSyncing && st.LastOutcome == manager.OutcomeStopped {
		t.Fatalf("the tap on Sync Now stopped the sync that had just begun: %+v", st)
	}
	time.Sleep(stopGrace)
	test.Tap(w.syncButton)
	h.pump("the documents' session to stop", func() bool { return w.statuses[docs].State != manager.StateSyncing })
}

// TestStopStopsASync taps Sync Now with a big file to send, then Stop, and checks that the
// session ends stopped and the row says so.
func TestStopStopsASync(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	big := filepath.Join(h.demo.DesktopDir, "Documents", "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	id := h.part(demo.Documents)
	r := h.row(demo.Documents)
	test.Tap(r.syncButton)
	h.pump("the row to show the sync", func() bool {
		return w.statuses[id].State == manager.StateSyncing && r.syncButton.Text == "Stop"
	})
	if w.syncButton.Text != "Stop" {
		t.Errorf("Sync Now reads %q while a partnership of the device syncs, want Stop", w.syncButton.Text)
	}
	h.pump("bytes to move", func() bool {
		p := w.statuses[id].Progress
		return p != nil && p.BytesDone > 0 && r.progress.Visible()
	})
	if got := r.status.Text; !strings.HasPrefix(got, "Syncing: ") || !strings.Contains(got, " of 1.1 GB") {
		t.Errorf("status while syncing = %q, want \"Syncing: … of 1.1 GB…\"", got)
	}
	time.Sleep(stopGrace) // Stop has shown long enough to be what the user taps
	test.Tap(w.syncButton)
	h.pump("the session to stop", func() bool {
		st := w.statuses[id]
		return st.State != manager.StateSyncing && st.LastOutcome == manager.OutcomeStopped
	})
	if got := r.status.Text; !strings.HasPrefix(got, "Stopped just now before it finished") {
		t.Errorf("status after Stop = %q, want it to say the sync stopped", got)
	}
	if r.progress.Visible() {
		t.Errorf("the progress bar is still shown after the sync stopped")
	}
}

// TestConflictDialogActions opens the demo's conflict, checks both versions are shown side by
// side with a text diff, and checks that each choice resolves it as the user expects.
func TestConflictDialogActions(t *testing.T) {
	for _, c := range []struct {
		keep   manager.Keep
		button func(*conflictDialog) *widget.Button
	}{
		{manager.KeepDesktop, func(d *conflictDialog) *widget.Button { return d.keepDesktop }},
		{manager.KeepDevice, func(d *conflictDialog) *widget.Button { return d.keepDevice }},
		{manager.KeepBoth, func(d *conflictDialog) *widget.Button { return d.keepBoth }},
	} {
		t.Run(string(c.keep), func(t *testing.T) {
			h := newDemoHarness(t)
			w := h.w
			d := h.demo
			deskPath := filepath.Join(d.DesktopDir, "Documents", demo.ConflictFile)
			devPath := filepath.Join(d.DeviceDir, "Documents", demo.ConflictFile)
			deskText, devText := readFile(t, deskPath), readFile(t, devPath)

			test.Tap(w.conflictsButton)
			dlg := w.conflictDlg
			if dlg == nil || h.overlayTop() == nil {
				t.Fatalf("tapping Conflicts opened no dialog")
			}
			if got := dlg.path.Text; got != demo.ConflictFile {
				t.Errorf("dialog title path = %q, want %q", got, demo.ConflictFile)
			}
			for side, s := range map[string]*conflictSide{"desktop": dlg.desktop, "device": dlg.device} {
				if s.name.Text != demo.ConflictFile {
					t.Errorf("%s side name = %q, want %q", side, s.name.Text, demo.ConflictFile)
				}
				if !strings.HasSuffix(s.size.Text, " B") && !strings.HasSuffix(s.size.Text, "kB") {
					t.Errorf("%s side size = %q, want a size", side, s.size.Text)
				}
				if s.modified.Text == "" || s.modified.Text == "—" {
					t.Errorf("%s side shows no modification time", side)
				}
			}
			if !strings.Contains(dlg.device.modified.Text, "(newer)") || strings.Contains(dlg.desktop.modified.Text, "(newer)") {
				t.Errorf("modified: desktop %q, device %q; want the device's (edited later) marked newer",
					dlg.desktop.modified.Text, dlg.device.modified.Text)
			}
			if !strings.HasSuffix(dlg.desktop.where.Text, filepath.Join("computer", "Documents")) {
				t.Errorf("desktop side where = %q, want the Documents folder", dlg.desktop.where.Text)
			}
			if !strings.Contains(dlg.device.where.Text, "Documents") {
				t.Errorf("device side where = %q, want the phone's Documents", dlg.device.where.Text)
			}
			for side, s := range map[string]*conflictSide{"desktop": dlg.desktop, "device": dlg.device} {
				rt, ok := s.preview.Objects[0].(*widget.RichText)
				if !ok {
					t.Fatalf("%s side preview is a %T, want the text", side, s.preview.Objects[0])
				}
				text := richText(rt)
				if !strings.Contains(text, "\n+ ") && !strings.HasPrefix(text, "+ ") {
					t.Errorf("%s preview marks no line as differing:\n%s", side, text)
				}
			}
			if dlg.applyAll.Visible() {
				t.Errorf("\"apply to all\" is offered with a single conflict")
			}

			resolveStart := time.Now()
			test.Tap(c.button(dlg))
			h.pump("the dialog to close", func() bool { return w.conflictDlg == nil || !dlg.dlg.MinSize().IsZero() && h.overlayTop() == nil })
			id := h.part(demo.Documents)
			h.pump("the resolution to be applied", func() bool {
				return len(w.pendingConflicts()) == 0 && h.syncedAfter(resolveStart, id) && w.statuses[id].Conflicts == 0
			})
			if w.conflictsButton.Text != "No conflicts" || !w.conflictsButton.Disabled() {
				t.Errorf("Conflicts button = %q after resolving, want \"No conflicts\", disabled", w.conflictsButton.Text)
			}
			switch c.keep {
			case manager.KeepDesktop:
				if got := readFile(t, devPath); got != deskText {
					t.Errorf("phone's copy = %q, want the computer's %q", got, deskText)
				}
			case manager.KeepDevice:
				if got := readFile(t, deskPath); got != devText {
					t.Errorf("computer's copy = %q, want the phone's %q", got, devText)
				}
			case manager.KeepBoth:
				for _, dir := range []string{filepath.Join(d.DesktopDir, "Documents"), filepath.Join(d.DeviceDir, "Documents")} {
					texts := map[string]bool{}
					entries, _ := os.ReadDir(dir)
					for _, e := range entries {
						if strings.HasPrefix(e.Name(), "Meeting notes") {
							texts[readFile(t, filepath.Join(dir, e.Name()))] = true
						}
					}
					if !texts[deskText] || !texts[devText] {
						t.Errorf("%s holds %d versions of the notes, want both", dir, len(texts))
					}
				}
			}
		})
	}
}

// TestConflictDialogApplyToAll makes three conflicts and settles them with one choice.
func TestConflictDialogApplyToAll(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	d := h.demo
	id := h.part(demo.Documents)
	start := time.Now()
	if _, err := h.m.Sync(testCtx(t), manager.SyncOptions{}, id); err != nil {
		t.Fatal(err)
	}
	// Change two more documents differently on both sides.
	later := time.Now().Add(time.Hour)
	for i, f := range []string{"Budget 2026.csv", filepath.Join("Travel", "Lisbon.md")} {
		writeFile(t, filepath.Join(d.DesktopDir, "Documents", f), fmt.Sprintf("computer edit %d\n", i), later)
		writeFile(t, filepath.Join(d.DeviceDir, "Documents", f), fmt.Sprintf("phone edit number %d\n", i), later.Add(time.Minute))
	}
	if _, err := h.m.Sync(testCtx(t), manager.SyncOptions{}, id); err != nil {
		t.Fatal(err)
	}
	h.pump("three conflicts", func() bool { return len(w.pendingConflicts()) == 3 && h.syncedAfter(start, id) })
	if got := w.conflictsButton.Text; got != "3 conflicts" {
		t.Errorf("Conflicts button = %q, want \"3 conflicts\"", got)
	}
	test.Tap(w.conflictsButton)
	dlg := w.conflictDlg
	if dlg == nil {
		t.Fatal("no conflict dialog")
	}
	if got := dlg.counter.Text; got != "1 of 3" {
		t.Errorf("counter = %q, want \"1 of 3\"", got)
	}
	first := dlg.path.Text
	test.Tap(dlg.next)
	if dlg.path.Text == first || dlg.counter.Text != "2 of 3" {
		t.Errorf("Next shows %q (%s), want the second conflict", dlg.path.Text, dlg.counter.Text)
	}
	if !dlg.applyAll.Visible() || dlg.applyAll.Text != "Do the same for all 3 conflicts" {
		t.Errorf("apply to all = %q (shown %v), want \"Do the same for all 3 conflicts\"", dlg.applyAll.Text, dlg.applyAll.Visible())
	}
	dlg.applyAll.SetChecked(true)
	resolveStart := time.Now()
	test.Tap(dlg.keepDevice)
	h.pump("every conflict to be settled", func() bool {
		return w.conflictDlg == nil && len(w.pendingConflicts()) == 0 && h.syncedAfter(resolveStart, id) && w.statuses[id].Conflicts == 0
	})
	for i, f := range []string{"Budget 2026.csv", filepath.Join("Travel", "Lisbon.md")} {
		if got, want := readFile(t, filepath.Join(d.DesktopDir, "Documents", f)), fmt.Sprintf("phone edit number %d\n", i); got != want {
			t.Errorf("computer's %s = %q, want the phone's %q", f, got, want)
		}
	}
	if got, want := readFile(t, filepath.Join(d.DesktopDir, "Documents", demo.ConflictFile)), readFile(t, filepath.Join(d.DeviceDir, "Documents", demo.ConflictFile)); got != want {
		t.Errorf("the meeting notes differ after keeping the phone's for all")
	}
}

// TestAddPartnershipForm fills in the add-partnership form: empty required fields and a folder
// that does not exist are reported beside their fields, and a good form creates the
// partnership, which the list then shows.
func TestAddPartnershipForm(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	test.Tap(w.addButton)
	d := w.addDlg
	if d == nil {
		t.Fatal("Add partnership opened no dialog")
	}
	for _, name := range []string{"files", "photos", "contacts"} {
		if d.providerButtons[name] == nil {
			t.Errorf("the provider chooser does not offer %q", name)
		}
	}
	test.Tap(d.providerButtons["files"])
	field := func(name string) *optionField {
		for _, f := range d.fields {
			if f.opt.Name == name {
				return f
			}
		}
		t.Fatalf("the form has no field for option %q", name)
		return nil
	}
	desktop, devPath := field("desktop"), field("device-path")
	if desktop.browse == nil || devPath.browse == nil {
		t.Errorf("folder options have no Choose/Browse button")
	}
	if got := d.direction.Options; !slices.Equal(got, []string{"Both ways", "To the device", "To this computer"}) {
		t.Errorf("directions offered = %q, want all three", got)
	}

	// Nothing filled in: the required folders are reported, the manager is not asked.
	test.Tap(d.create)
	if !desktop.errMsg.Visible() || desktop.errMsg.Text != "Choose a folder." {
		t.Errorf("desktop folder error = %q (shown %v), want \"Choose a folder.\"", desktop.errMsg.Text, desktop.errMsg.Visible())
	}
	if !devPath.errMsg.Visible() || devPath.errMsg.Text != "Choose a folder on the device." {
		t.Errorf("device folder error = %q (shown %v), want \"Choose a folder on the device.\"", devPath.errMsg.Text, devPath.errMsg.Visible())
	}

	// A folder that does not exist: the manager's message, beside the field.
	missing := filepath.Join(t.TempDir(), "no such folder")
	test.Type(desktop.entry, missing)
	test.Type(devPath.entry, "Music")
	if d.name.Text != "Music" {
		t.Errorf("name = %q after choosing the device folder Music, want it suggested as \"Music\"", d.name.Text)
	}
	test.Tap(d.create)
	h.pump("the manager's answer", func() bool { return !d.busy })
	if !desktop.errMsg.Visible() || !strings.Contains(desktop.errMsg.Text, "does not exist") {
		t.Errorf("desktop folder error = %q (shown %v), want the folder reported missing", desktop.errMsg.Text, desktop.errMsg.Visible())
	}
	if devPath.errMsg.Visible() {
		t.Errorf("the device folder is still reported: %q", devPath.errMsg.Text)
	}
	if len(h.m.Partnerships()) != 3 {
		t.Fatalf("a partnership was added with a missing folder")
	}

	// A good form.
	music := filepath.Join(t.TempDir(), "Music")
	if err := os.Mkdir(music, 0o755); err != nil {
		t.Fatal(err)
	}
	desktop.entry.SetText(music)
	d.direction.SetSelected("To the device")
	test.Tap(d.create)
	h.pump("the partnership to be added and shown", func() bool {
		return w.addDlg == nil && len(w.rows) == 4
	})
	p, err := h.m.Partnership("Music")
	if err != nil {
		t.Fatalf("the new partnership: %v", err)
	}
	if p.Provider != "files" || p.Options["desktop"] != music || p.Options["device-path"] != "Music" || p.Direction != manager.ToDevice || p.OnConflict != manager.PolicyAsk {
		t.Errorf("partnership added = %+v, want files, %s <-> Music, to the device, ask", p, music)
	}
	if r := w.rows[p.ID]; r == nil || r.direction.Text != "To the device" {
		t.Errorf("the new partnership's row is missing or shows the wrong direction")
	}
}

// TestAddPartnershipFormFollowsDeclaration checks that the form follows a provider's
// declaration: the photos provider syncs only to the computer, and its advanced option is behind
// "More options" as a check box.
func TestAddPartnershipFormFollowsDeclaration(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	test.Tap(w.addButton)
	d := w.addDlg
	test.Tap(d.providerButtons["photos"])
	if got := d.direction.Options; !slices.Equal(got, []string{"To this computer"}) || !d.direction.Disabled() {
		t.Errorf("photos directions = %q (disabled %v), want only \"To this computer\", fixed", got, d.direction.Disabled())
	}
	var kinds []string
	for _, f := range d.fields {
		switch {
		case f.check != nil:
			kinds = append(kinds, f.opt.Name+":check")
		case f.entry != nil:
			kinds = append(kinds, f.opt.Name+":entry:"+f.entry.Text)
		}
	}
	want := []string{"desktop:entry:", "device-path:entry:DCIM", "screenshots:check", "delete-after-import:check"}
	if !slices.Equal(kinds, want) {
		t.Errorf("photos form fields = %q, want %q", kinds, want)
	}
	test.Tap(d.back)
	if d.providerButtons["contacts"] == nil {
		t.Errorf("Back does not return to the provider chooser")
	}
}

// TestDeviceFolderChooser browses the phone's folders from the add-partnership form.
func TestDeviceFolderChooser(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	test.Tap(w.addButton)
	d := w.addDlg
	test.Tap(d.providerButtons["files"])
	var devPath *optionField
	for _, f := range d.fields {
		if f.opt.Name == "device-path" {
			devPath = f
		}
	}
	test.Tap(devPath.browse)
	b := d.browser
	if b == nil {
		t.Fatal("Browse opened no chooser")
	}
	names := func() []string {
		var out []string
		for _, o := range b.objs {
			out = append(out, o.Name)
		}
		return out
	}
	h.pump("the phone's top folders", func() bool { return slices.Contains(names(), "DCIM") })
	if !slices.Contains(names(), "Documents") {
		t.Errorf("top of the phone lists %q, want Documents too", names())
	}
	b.list.Select(slices.Index(names(), "DCIM"))
	h.pump("DCIM to open", func() bool { return b.dir == "DCIM" && slices.Contains(names(), "Camera") })
	b.list.Select(slices.Index(names(), "Camera") + 1) // after "Up"
	h.pump("Camera to open", func() bool { return b.dir == "DCIM/Camera" })
	test.Tap(b.useThis)
	if got := devPath.entry.Text; got != "DCIM/Camera" {
		t.Errorf("device folder = %q after choosing DCIM/Camera", got)
	}
}

// TestNoDevice checks the empty state: what to do when no device is connected.
func TestNoDevice(t *testing.T) {
	h := newHarness(t, manager.Config{Dir: t.TempDir(), Service: true, NoPlugins: true})
	w := h.w
	if got := w.body.Objects[0]; got != w.emptyState {
		t.Fatalf("with no device the window does not show the empty state")
	}
	if w.emptyTitle.Text != "No device connected" {
		t.Errorf("empty state title = %q", w.emptyTitle.Text)
	}
	for _, want := range []string{"Plug", "Unlock", "File transfer"} {
		if !strings.Contains(w.emptySteps.Text, want) {
			t.Errorf("empty state steps do not mention %q:\n%s", want, w.emptySteps.Text)
		}
	}
	if !w.syncButton.Disabled() || !w.addButton.Disabled() {
		t.Errorf("Sync Now or Add partnership is enabled with no device")
	}
}

// TestDeviceProblems checks what the window says about a device present but unusable, as the
// USB monitor reports it.
func TestDeviceProblems(t *testing.T) {
	for _, c := range []struct {
		err       error
		state     string
		explains  string
		udevHelp  bool
		notifying bool
	}{
		{
			err: fmt.Errorf("%w: Google Pixel 7 (18d1:4ee1): cannot open /dev/bus/usb/001/005; it is owned by root:root with mode crw-rw-r-- (permission denied)",
				device.ErrPermission),
			state: "No permission", explains: "does not let Cradle open the device", udevHelp: true, notifying: true,
		},
		{
			err:   fmt.Errorf("%w: Google Pixel 7 (18d1:4ee1): another program holds its MTP interface (gvfsd-mtp, pid 1234); close it", device.ErrBusy),
			state: "Busy", explains: "Another program is using this device", notifying: true,
		},
		{
			err:   fmt.Errorf("%w: Google Pixel 7 (18d1:4ee1): unlock it and choose File transfer", device.ErrLocked),
			state: "Locked", explains: "Unlock the device", notifying: true,
		},
	} {
		t.Run(c.state, func(t *testing.T) {
			mon := newDiagnosedMonitor()
			h := newHarness(t, manager.Config{Dir: t.TempDir(), Service: true, NoPlugins: true, Monitors: []device.Monitor{mon}})
			w := h.w
			mon.presences <- device.Presence{Key: "usb:1-2", Connected: true, Err: c.err, Label: "Google Pixel 7 (18d1:4ee1)"}
			h.pump("the device to be shown", func() bool { return w.body.Objects[0] == w.mainView })
			if got := w.header.state.Text; got != c.state {
				t.Errorf("header state = %q, want %q", got, c.state)
			}
			if got := w.header.problem.Text; !w.header.problem.Visible() || !strings.Contains(got, c.explains) || !strings.Contains(got, "18d1:4ee1") {
				t.Errorf("header problem = %q (shown %v), want it to explain %q and quote the diagnosis", got, w.header.problem.Visible(), c.explains)
			}
			if w.header.help.Visible() != c.udevHelp {
				t.Errorf("udev help shown = %v, want %v", w.header.help.Visible(), c.udevHelp)
			}
			if c.udevHelp {
				cmds := richText(w.header.commands)
				for _, want := range []string{"sudo tee /etc/udev/rules.d/69-cradle-mtp.rules", `TAG+="uaccess"`, "udevadm control --reload-rules"} {
					if !strings.Contains(cmds, want) {
						t.Errorf("udev commands lack %q:\n%s", want, cmds)
					}
				}
				test.Tap(w.header.copyCmds)
				if got := h.app.Clipboard().Content(); got != cmds {
					t.Errorf("Copy commands put %q on the clipboard", got)
				}
			}
			if !w.syncButton.Disabled() || !w.addButton.Disabled() {
				t.Errorf("Sync Now or Add partnership is enabled for a device that cannot be used")
			}
			if c.notifying {
				h.pump("a notification", func() bool { return h.hasSent(c.state) })
			}
		})
	}
}

// TestPartnershipError checks that a session error shows in the row with its fix: the
// computer's folder of a partnership went away (an unmounted drive must not look like "every
// file was deleted").
func TestPartnershipError(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	id := h.part(demo.Documents)
	docs := filepath.Join(h.demo.DesktopDir, "Documents")
	if err := os.Rename(docs, docs+".away"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := h.row(demo.Documents)
	test.Tap(r.syncButton)
	h.pump("the failed session", func() bool { return h.syncedAfter(start, id) && w.statuses[id].State == manager.StateError })
	if r.status.Importance != widget.DangerImportance || !strings.Contains(r.status.Text, "Documents") {
		t.Errorf("row status = %q (importance %v), want the error about the missing folder in red", r.status.Text, r.status.Importance)
	}
	h.pump("the failure notification", func() bool { return h.hasSent("Sync of Documents failed") })
	if _, err := os.Stat(filepath.Join(h.demo.DeviceDir, "Documents", demo.ConflictFile)); err != nil {
		t.Errorf("the phone's documents were touched after the computer's folder went away: %v", err)
	}
}

// TestNewDeviceOffersSetUp plugs in a phone seen for the first time: the window offers to set
// it up and opens the form for it.
func TestNewDeviceOffersSetUp(t *testing.T) {
	mon := emulator.NewMonitor(emulator.Options{})
	h := newHarness(t, manager.Config{Dir: t.TempDir(), Service: true, NoPlugins: true, Monitors: []device.Monitor{mon}})
	w := h.w
	phone := t.TempDir()
	if err := mon.Attach(phone); err != nil {
		t.Fatal(err)
	}
	h.pump("the offer to set the phone up", func() bool { return w.offerDlg != nil })
	if w.header.title.Text != emulator.Model {
		t.Errorf("header = %q, want the new phone", w.header.title.Text)
	}
	if len(w.rowBox.Objects) != 1 || w.rowBox.Objects[0] != w.noParts || !w.noPartsButton.Visible() {
		t.Errorf("the partnership list does not invite to add one")
	}
	confirm := findButton(h.overlayTop(), "Set it up")
	if confirm == nil {
		t.Fatalf("the offer has no \"Set it up\" button")
	}
	test.Tap(confirm)
	if w.addDlg == nil || w.addDlg.serial != emulator.Serial(phone) {
		t.Fatalf("Set it up did not open the form for the new phone")
	}
}

// TestHistoryShowsSessions syncs and checks the history lists the session with its counts.
func TestHistoryShowsSessions(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	id := h.part(demo.Photos)
	if _, err := h.m.Sync(testCtx(t), manager.SyncOptions{}, id); err != nil {
		t.Fatal(err)
	}
	test.Tap(w.historyButton)
	d := w.historyDlg
	h.pump("the history", func() bool { return len(d.sessions) >= 2 })
	text := allLabels(d.box)
	for _, want := range []string{"Camera roll · Synchronized", "4 new on this computer", "Documents · Synchronized, conflicts wait for you", "1 conflict needs you"} {
		if !strings.Contains(text, want) {
			t.Errorf("history lacks %q:\n%s", want, text)
		}
	}
}

// TestSettingsDialog changes settings and the language.
func TestSettingsDialog(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	t.Cleanup(func() { SetLanguage("") })
	test.Tap(w.settingsButton)
	d := w.settingsDlg
	if d == nil {
		t.Fatal("Settings opened no dialog")
	}
	d.syncOnConnect.SetChecked(true)
	d.interval.SetSelected("Every 15 minutes")
	d.retry.SetSelected("Do not retry")
	d.changeDelay.SetSelected("Sync 1 s after the last change")
	d.changeMax.SetSelected("While changes keep coming, wait at most 1 min")
	d.threshold.SetValue(25)
	if !strings.Contains(d.thresholdText.Text, "25 %") {
		t.Errorf("threshold text = %q, want 25 %%", d.thresholdText.Text)
	}
	d.language.SetSelected("Português")
	test.Tap(d.save)
	h.pump("the settings to be saved", func() bool { return w.settingsDlg == nil })
	h.quiet() // a 15-minute schedule makes the partnerships never synced due now
	s := h.m.Settings()
	want := manager.Settings{SyncOnConnect: true, Interval: 15 * time.Minute, RetryInterval: 0, MassDeleteThreshold: 0.25, KeepInTray: s.KeepInTray, Language: "pt",
		VersionsDays: s.VersionsDays, VersionsMaxSize: s.VersionsMaxSize, ChangeDelay: time.Second, ChangeDelayMax: time.Minute}
	if s != want {
		t.Errorf("settings = %+v, want %+v", s, want)
	}
	if got := w.syncButton.Text; got != "Sincronizar agora" {
		t.Errorf("Sync Now in Portuguese = %q", got)
	}
	if got := w.historyButton.Text; got != "Histórico" {
		t.Errorf("History in Portuguese = %q", got)
	}
	if got := h.row(demo.Documents).status.Text; !strings.Contains(got, "1 conflito") {
		t.Errorf("Documents status in Portuguese = %q", got)
	}
}

// TestUpdatesAreCoalesced syncs a few thousand files and checks that the window took at most a
// few updates a second from the manager's events, and lost none of them.
func TestUpdatesAreCoalesced(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	id := h.part(demo.Documents)
	h.settle(300 * time.Millisecond)
	before := h.applied
	start := time.Now()
	docs := filepath.Join(h.demo.DesktopDir, "Documents", "many")
	for i := range 3000 {
		writeFile(t, filepath.Join(docs, fmt.Sprintf("d%02d", i%30), fmt.Sprintf("f%04d.txt", i)), fmt.Sprintf("file %d\n", i), time.Time{})
	}
	// The manager may start on its own (the folder is watched); if it does not, Sync does.
	h.pump("a session to start", func() bool {
		st := w.statuses[id].State
		return st == manager.StateSyncing || st == manager.StateQueued || time.Since(start) > 3*time.Second
	})
	if st := w.statuses[id].State; st != manager.StateSyncing && st != manager.StateQueued {
		test.Tap(h.row(demo.Documents).syncButton)
	}
	onPhone := func() int {
		n, _ := filepath.Glob(filepath.Join(h.demo.DeviceDir, "Documents", "many", "d*", "*.txt"))
		return len(n)
	}
	h.pump("the 3000 files on the phone", func() bool {
		st := w.statuses[id].State
		return onPhone() == 3000 && st != manager.StateSyncing && st != manager.StateQueued
	})
	elapsed := time.Since(start)
	updates := h.applied - before
	limit := int(elapsed/FlushInterval) + 3
	t.Logf("%d updates in %v (limit %d)", updates, elapsed.Round(time.Millisecond), limit)
	if updates > limit {
		t.Errorf("%d updates of the window in %v, want at most one per %v (%d)", updates, elapsed, FlushInterval, limit)
	}
	if n := w.sub.Dropped(); n != 0 {
		t.Errorf("the window's subscription lost %d events", n)
	}
}

// findButton finds a button with that text below o.
func findButton(o any, text string) *widget.Button {
	var found *widget.Button
	walk(o, func(x any) {
		if b, ok := x.(*widget.Button); ok && b.Text == text && found == nil {
			found = b
		}
	})
	return found
}

// allLabels joins the texts of the labels below o.
func allLabels(o any) string {
	var out []string
	walk(o, func(x any) {
		if l, ok := x.(*widget.Label); ok {
			out = append(out, l.Text)
		}
	})
	return strings.Join(out, "\n")
}

// walk calls fn for o and every object below it: a container's objects, a widget's renderer's.
func walk(o any, fn func(any)) {
	if o == nil {
		return
	}
	fn(o)
	switch v := o.(type) {
	case *fyne.Container:
		for _, x := range v.Objects {
			walk(x, fn)
		}
	case fyne.Widget:
		for _, x := range test.WidgetRenderer(v).Objects() {
			walk(x, fn)
		}
	}
}

// TestConflictPreviews makes a picture and a contact conflict and checks what the dialog shows
// of each: thumbnails of both pictures, and the contact's fields as a table with the differing
// one marked.
func TestConflictPreviews(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	d := h.demo
	docs, contacts := h.part(demo.Documents), h.part(demo.Contacts)
	ctx := testCtx(t)
	picture := func(path string, c color.NRGBA, mod time.Time) {
		img := image.NewNRGBA(image.Rect(0, 0, 320, 200))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, buf.String(), mod)
	}
	picture(filepath.Join(d.DesktopDir, "Documents", "photo.png"), color.NRGBA{200, 30, 30, 255}, time.Time{})
	if _, err := h.m.Sync(ctx, manager.SyncOptions{}, docs, contacts); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	picture(filepath.Join(d.DesktopDir, "Documents", "photo.png"), color.NRGBA{30, 200, 30, 255}, later)
	picture(filepath.Join(d.DeviceDir, "Documents", "photo.png"), color.NRGBA{30, 30, 200, 255}, later.Add(time.Minute))

	// Ana's mobile number, changed differently on both sides.
	var card string
	cards, _ := filepath.Glob(filepath.Join(d.DesktopDir, "Contacts", "*.vcf"))
	for _, c := range cards {
		if strings.Contains(readFile(t, c), "demo-ana-silva") {
			card = c
		}
	}
	if card == "" {
		t.Fatalf("Ana's card did not reach the address book: %v", cards)
	}
	phoneFile := filepath.Join(d.DeviceDir, "Contacts", "contacts.vcf")
	writeFile(t, card, strings.Replace(readFile(t, card), "+351912345678", "+351911111111", 1), later)
	writeFile(t, phoneFile, strings.Replace(readFile(t, phoneFile), "+351912345678", "+351922222222", 1), later.Add(time.Minute))
	start := time.Now()
	if _, err := h.m.Sync(ctx, manager.SyncOptions{}, docs, contacts); err != nil {
		t.Fatal(err)
	}
	h.pump("the picture and the contact conflicts", func() bool {
		n := 0
		for _, c := range w.pendingConflicts() {
			if c.Path == "photo.png" || strings.Contains(c.Path, "ana-silva") {
				n++
			}
		}
		return n == 2 && h.syncedAfter(start, docs, contacts)
	})
	test.Tap(w.conflictsButton)
	dlg := w.conflictDlg
	seen := map[string]bool{}
	for range dlg.list {
		c := dlg.list[dlg.index]
		switch {
		case c.Path == "photo.png":
			seen["picture"] = true
			for side, s := range map[string]*conflictSide{"desktop": dlg.desktop, "device": dlg.device} {
				img, ok := s.preview.Objects[0].(*canvas.Image)
				if !ok || img.Resource == nil || len(img.Resource.Content()) == 0 {
					t.Errorf("%s side of the picture shows a %T, want its thumbnail", side, s.preview.Objects[0])
				}
			}
		case strings.Contains(c.Path, "ana-silva"):
			seen["contact"] = true
			if dlg.path.Text != "Ana Silva" {
				t.Errorf("the contact's conflict is titled %q, want her name", dlg.path.Text)
			}
			for side, s := range map[string]*conflictSide{"desktop": dlg.desktop, "device": dlg.device} {
				table, ok := s.preview.Objects[0].(*fyne.Container)
				if !ok {
					t.Fatalf("%s side of the contact shows a %T, want a table of fields", side, s.preview.Objects[0])
				}
				var marked, plain, labels []string
				for i := 1; i < len(table.Objects); i += 2 {
					labels = append(labels, table.Objects[i-1].(*widget.Label).Text)
					v := table.Objects[i].(*widget.Label)
					if v.TextStyle.Bold {
						marked = append(marked, v.Text)
					} else {
						plain = append(plain, v.Text)
					}
				}
				if !slices.Contains(labels, "Phone (cell)") || !slices.Contains(labels, "E-mail (home)") {
					t.Errorf("%s side of the contact labels its fields %q, want \"Phone (cell)\" and \"E-mail (home)\"", side, labels)
				}
				want := map[string]string{"desktop": "+351911111111", "device": "+351922222222"}[side]
				if !slices.Contains(marked, want) {
					t.Errorf("%s side of the contact marks %q, want the number %s marked", side, marked, want)
				}
				if !slices.Contains(plain, "ana.silva@example.org") {
					t.Errorf("%s side of the contact shows %q unmarked, want the e-mail (the same on both) among them", side, plain)
				}
			}
		}
		test.Tap(dlg.next)
	}
	if !seen["picture"] || !seen["contact"] {
		t.Errorf("the dialog showed %v, want the picture and the contact", seen)
	}
}

// TestUnplugDuringSync unplugs the phone in the middle of a sync: the header says it is not
// connected and the row says what happened and what to do.
func TestUnplugDuringSync(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	big := filepath.Join(h.demo.DesktopDir, "Documents", "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	id := h.part(demo.Documents)
	r := h.row(demo.Documents)
	test.Tap(r.syncButton)
	h.pump("bytes to move", func() bool {
		p := w.statuses[id].Progress
		return p != nil && p.BytesDone > 0
	})
	h.demo.Monitor.Detach(h.demo.DeviceDir)
	h.pump("the row to say the phone went away", func() bool {
		st := w.statuses[id]
		return st.State != manager.StateSyncing && st.State != manager.StateQueued && strings.Contains(r.status.Text, "disconnected")
	})
	if !strings.Contains(r.status.Text, "\nPlug ") || !strings.Contains(r.status.Text, "resumes where it stopped") {
		t.Errorf("row status = %q, want what happened and that plugging it in again resumes the sync", r.status.Text)
	}
	if got := w.header.state.Text; got != "Not connected" {
		t.Errorf("header state = %q, want Not connected", got)
	}
	if !w.syncButton.Disabled() {
		t.Errorf("Sync Now is enabled with the phone unplugged")
	}
}

// failingMonitor stands for a kind of device that cannot be watched at all (libusb missing): its
// Run fails when told to.
type failingMonitor struct{ fail chan error }

func (m failingMonitor) Run(ctx context.Context, _ func(device.Presence)) error {
	select {
	case err := <-m.fail:
		return err
	case <-ctx.Done():
		return nil
	}
}

// TestManagerErrorBanner checks that an error the manager reports about no partnership in
// particular shows above the window until dismissed.
func TestManagerErrorBanner(t *testing.T) {
	mon := failingMonitor{fail: make(chan error, 1)}
	h := newHarness(t, manager.Config{Dir: t.TempDir(), Service: true, NoPlugins: true, Monitors: []device.Monitor{mon}})
	w := h.w
	if w.banner.box.Visible() {
		t.Fatalf("the banner shows before anything went wrong")
	}
	mon.fail <- errors.New("libusb cannot be initialised: no USB support in this kernel")
	h.pump("the banner", func() bool { return w.banner.box.Visible() })
	if !strings.Contains(w.banner.text.Text, "libusb cannot be initialised") {
		t.Errorf("banner = %q, want the manager's message", w.banner.text.Text)
	}
	test.Tap(w.banner.close)
	if w.banner.box.Visible() {
		t.Errorf("the banner is still shown after closing it")
	}
}

// TestRemovePartnership removes a partnership from its row's menu: after confirming, the row is
// gone and the files stay on both sides.
func TestRemovePartnership(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	id := h.part(demo.Photos)
	w.removePartnership(id)
	confirm := findButton(h.overlayTop(), "Remove")
	if confirm == nil {
		t.Fatal("removing asks nothing")
	}
	test.Tap(confirm)
	h.pump("the row to go", func() bool { return w.rows[id] == nil && len(w.rows) == 2 })
	if _, err := h.m.Partnership(demo.Photos); err == nil {
		t.Errorf("the manager still has the partnership")
	}
	if n := countPictures(filepath.Join(h.demo.DeviceDir, "DCIM")); n != 4 {
		t.Errorf("%d pictures left on the phone, want the 4 untouched", n)
	}
}

func countPictures(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".jpg") {
			n++
		}
		return nil
	})
	return n
}

// TestConflictDialogOffersWhatTheStoreCanDo: the dialog shows only the choices a conflict's
// partnership can carry out (no "Keep both" for a store of one item), and says why a choice made
// earlier could not be carried out.
func TestConflictDialogOffersWhatTheStoreCanDo(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	h.pump("the demo's conflict", func() bool { return len(w.pendingConflicts()) == 1 })
	c := w.pendingConflicts()[0]
	c.Choices = []manager.Keep{manager.KeepDesktop, manager.KeepDevice}
	c.ResolutionError = "keep both could not be carried out: this store holds only one file"
	w.conflicts = []manager.Conflict{c}
	w.showConflicts()
	dlg := w.conflictDlg
	if dlg == nil {
		t.Fatal("no conflict dialog")
	}
	if dlg.keepBoth.Visible() || !dlg.keepDesktop.Visible() || !dlg.keepDevice.Visible() {
		t.Errorf("buttons shown: desktop %v, device %v, both %v; want desktop and device only",
			dlg.keepDesktop.Visible(), dlg.keepDevice.Visible(), dlg.keepBoth.Visible())
	}
	if got := dlg.errText.Text; !dlg.errText.Visible() || !strings.Contains(got, "Keep both could not be carried out") || !strings.Contains(got, "Choose again") {
		t.Errorf("error line = %q (shown: %v), want why keep-both failed and to choose again", got, dlg.errText.Visible())
	}
}

// fakeAutostart records the start at login the settings set.
type fakeAutostart struct {
	on  bool
	set []bool
}

func (f *fakeAutostart) Enabled() bool { return f.on }
func (f *fakeAutostart) SetEnabled(on bool) error {
	f.on = on
	f.set = append(f.set, on)
	return nil
}

// TestSettingsStartAtLogin: the settings offer the start at login when the window has one, show
// its state, and turn it on when saved checked.
func TestSettingsStartAtLogin(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	fa := &fakeAutostart{}
	w.opts.Autostart = fa
	test.Tap(w.settingsButton)
	d := w.settingsDlg
	if d == nil || d.autostart == nil {
		t.Fatal("the settings offer no start at login")
	}
	if d.autostart.Checked {
		t.Error("start at login is checked while it is off")
	}
	if dir := os.Getenv("CRADLE_UI_SHOTS"); dir != "" {
		w.Window().Resize(fyne.NewSize(900, 660))
		writePNG(t, filepath.Join(dir, "settings.png"), w.Window().Canvas().Capture())
	}
	d.autostart.SetChecked(true)
	test.Tap(d.save)
	h.pump("the settings to be saved", func() bool { return w.settingsDlg == nil })
	if len(fa.set) != 1 || !fa.set[0] || !fa.on {
		t.Errorf("start at login set %v, want [true]", fa.set)
	}
	// Saving again without a change leaves it alone.
	test.Tap(w.settingsButton)
	if d = w.settingsDlg; !d.autostart.Checked {
		t.Error("start at login is not checked while it is on")
	}
	test.Tap(d.save)
	h.pump("the settings to be saved", func() bool { return w.settingsDlg == nil })
	if len(fa.set) != 1 {
		t.Errorf("start at login set %v on a save that did not change it", fa.set)
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
