package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/demo"
)

// menuItem returns the item labelled text of partnership row r's menu.
func menuItem(t *testing.T, r *partnershipRow, text string) *fyne.MenuItem {
	t.Helper()
	for _, it := range r.menuItems() {
		if it.Label == text {
			return it
		}
	}
	t.Fatalf("the partnership's menu has no %q", text)
	return nil
}

// TestVersionsView: the conflict resolved for the device keeps this computer's notes; the
// Versions view (from the partnership's menu) finds them by name, says when, how big and why,
// previews them, and restores them; a folder the phone deleted is restored whole.
func TestVersionsView(t *testing.T) {
	h := newDemoHarness(t)
	w := h.w
	d := h.demo
	id := h.part(demo.Documents)
	notes := filepath.Join(d.DesktopDir, "Documents", demo.ConflictFile)
	mine := readFile(t, notes)
	cs, err := h.m.Conflicts()
	if err != nil || len(cs) != 1 {
		t.Fatalf("conflicts = %v, %v", cs, err)
	}
	if err := h.m.Resolve(testCtx(t), cs[0].ID, manager.KeepDevice); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Sync(testCtx(t), manager.SyncOptions{}, id); err != nil {
		t.Fatal(err)
	}
	if readFile(t, notes) == mine {
		t.Fatal("resolving for the device did not replace the computer's notes")
	}
	// The phone deletes the Travel folder; the sync deletes it here (kept as versions).
	if err := os.RemoveAll(filepath.Join(d.DeviceDir, "Documents", "Travel")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Sync(testCtx(t), manager.SyncOptions{}, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.DesktopDir, "Documents", "Travel", "Lisbon.md")); err == nil {
		t.Fatal("the folder deleted on the phone is still on the computer")
	}
	h.pump("the row", func() bool { return w.rows[id] != nil })

	// From the history: a session that replaced files leads to the versions.
	menuItem(t, w.rows[id], "History").Action()
	hd := w.historyDlg
	h.pump("the history", func() bool { return len(hd.sessions) > 0 })
	b := findButton(hd.box, "Versions…")
	if b == nil {
		t.Fatal("the history offers no Versions… for a session that replaced files")
	}
	test.Tap(b)
	if w.versionsDlg == nil {
		t.Fatal("the history's Versions… opened no dialog")
	}
	w.versionsDlg.dlg.Hide()

	menuItem(t, w.rows[id], "Versions…").Action()
	v := w.versionsDlg
	if v == nil || h.overlayTop() == nil {
		t.Fatal("Versions… opened no dialog")
	}
	h.pump("the versions", func() bool { return len(v.all) >= 2 })
	if !strings.Contains(v.status.Text, "2 files have versions") {
		t.Errorf("status = %q", v.status.Text)
	}
	v.search.SetText("meeting")
	if kids := v.kids[""]; len(kids) != 1 || kids[0] != demo.ConflictFile {
		t.Errorf("searching for \"meeting\" shows %v", v.kids[""])
	}
	v.search.SetText("nothing like it")
	if len(v.kids[""]) != 0 {
		t.Errorf("a search that matches nothing shows %v", v.kids[""])
	}
	v.search.SetText("")
	v.tree.Select(demo.ConflictFile)
	if v.chosen != 0 || !v.restore.Visible() || v.restore.Disabled() {
		t.Fatalf("choosing the notes: chosen %d, restore disabled %v", v.chosen, v.restore.Disabled())
	}
	line := versionLine(v.byPath[demo.ConflictFile][0])
	if !strings.Contains(line, "this computer's, replaced when you resolved a conflict") || !strings.Contains(line, " B") {
		t.Errorf("the version reads %q", line)
	}
	h.pump("the preview", func() bool {
		_, ok := v.preview.Objects[0].(*widget.RichText)
		return len(v.preview.Objects) == 1 && ok
	})
	if got := richText(v.preview.Objects[0].(*widget.RichText)); !strings.Contains(got, strings.SplitN(mine, "\n", 2)[0]) {
		t.Errorf("preview = %q, want the computer's notes", got)
	}
	test.Tap(v.restore)
	h.pump("the restore", func() bool { return strings.Contains(v.status.Text, "is back") })
	if readFile(t, notes) != mine {
		t.Errorf("after Restore the notes hold %q, want the computer's version back", readFile(t, notes))
	}
	if !v.syncNow.Visible() {
		t.Error("after a restore the dialog does not offer to sync")
	}

	// The folder: Restore all, confirmed.
	h.pump("the reload", func() bool { return v.kids["Travel"] != nil })
	v.tree.Select("Travel")
	if !v.isFolder || v.restore.Text != "Restore all" {
		t.Fatalf("choosing the folder: folder %v, button %q", v.isFolder, v.restore.Text)
	}
	test.Tap(v.restore)
	confirm := findButton(h.overlayTop(), "Restore all")
	if confirm == nil || confirm == v.restore {
		t.Fatal("Restore all asked nothing")
	}
	test.Tap(confirm)
	h.pump("the folder restored", func() bool {
		return strings.Contains(v.status.Text, "files restored") || strings.Contains(v.status.Text, "file restored")
	})
	if got := readFile(t, filepath.Join(d.DesktopDir, "Documents", "Travel", "Lisbon.md")); !strings.Contains(got, "Lisbon") {
		t.Errorf("after Restore all the folder's file holds %q", got)
	}
	test.Tap(v.syncNow)
	h.pump("the sync", func() bool {
		_, err := os.Stat(filepath.Join(d.DeviceDir, "Documents", "Travel", "Lisbon.md"))
		return err == nil
	})
}

// TestPreviewDialog: Preview lists what a sync would do grouped by action, changes nothing, and
// Sync now from it does what it listed; when the mass-delete guard would stop the sync it says
// so with the rule, and the row says it too.
func TestPreviewDialog(t *testing.T) {
	// The demo without the service: no sync starts on its own between the preview and the sync.
	d, err := demo.Setup(testCtx(t), filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := d.Config()
	cfg.Service = false
	h := newHarness(t, cfg, d.DeviceKey())
	h.demo = d
	w := h.w
	id := h.part(demo.Documents)
	h.pump("the row", func() bool { return w.rows[id] != nil && w.statuses[id].Connected })
	menuItem(t, w.rows[id], "Preview…").Action()
	p := w.previewDlg
	if p == nil {
		t.Fatal("Preview… opened no dialog")
	}
	h.pump("the plan", func() bool { return p.plan != nil })
	text := allLabels(p.box)
	for _, want := range []string{"New (", "Packing list.txt — to the device", "new on this computer"} {
		if !strings.Contains(text, want) {
			t.Errorf("the preview lacks %q:\n%s", want, text)
		}
	}
	if _, err := os.Stat(filepath.Join(d.DeviceDir, "Documents", "Packing list.txt")); err == nil {
		t.Fatal("the preview copied a file")
	}
	if p.syncNow.Disabled() || p.allow.Visible() {
		t.Errorf("Sync now disabled %v, allow shown %v", p.syncNow.Disabled(), p.allow.Visible())
	}
	test.Tap(p.syncNow)
	h.pump("the sync from the preview", func() bool {
		_, err := os.Stat(filepath.Join(d.DeviceDir, "Documents", "Packing list.txt"))
		return err == nil && w.statuses[id].State == manager.StateIdle
	})

	// More than half of the documents deleted on the phone.
	entries, _ := os.ReadDir(filepath.Join(d.DeviceDir, "Documents"))
	for _, e := range entries {
		if e.Name() != demo.ConflictFile && e.Name() != ".cradle" {
			os.RemoveAll(filepath.Join(d.DeviceDir, "Documents", e.Name()))
		}
	}
	menuItem(t, w.rows[id], "Preview…").Action()
	p = w.previewDlg
	h.pump("the plan", func() bool { return p.plan != nil })
	if !p.warning.Visible() || !strings.Contains(p.warning.Text, "more than half of them") || !p.allow.Visible() || !p.syncNow.Disabled() {
		t.Errorf("a mass delete in the preview: warning %q (shown %v), allow shown %v", p.warning.Text, p.warning.Visible(), p.allow.Visible())
	}
	p.dlg.Hide()
	if err := w.m.SyncNow(id); err != nil {
		t.Fatal(err)
	}
	h.pump("the guard in the row", func() bool { return w.statuses[id].MassDelete != nil })
	h.settle(300e6)
	if s := w.rows[id].status.Text; !strings.Contains(s, "more than half") || !strings.Contains(s, "Preview") {
		t.Errorf("the row says %q", s)
	}
	menuItem(t, w.rows[id], "Preview…").Action()
	p = w.previewDlg
	h.pump("the plan", func() bool { return p.plan != nil })
	test.Tap(p.allow)
	h.pump("the allowed sync", func() bool { return w.statuses[id].MassDelete == nil && w.statuses[id].State == manager.StateIdle })
	if _, err := os.Stat(filepath.Join(d.DesktopDir, "Documents", "Travel")); err == nil {
		t.Error("the allowed sync left the deleted folder on the computer")
	}
}
