package ui

import (
	"context"
	"image/color"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// versionsDialog is a partnership's kept versions: a tree of the files that have some (search by
// name), the versions of the file chosen with why each was kept and a preview, restore one or
// the newest of each file of a folder, open the folder that holds them.
type versionsDialog struct {
	w    *Window
	dlg  *dialog.CustomDialog
	part manager.Partnership
	seq  int // loads; an older answer is dropped

	all      []manager.Version
	byPath   map[string][]manager.Version // newest first
	kids     map[string][]string          // folder ("" the top) -> children shown
	selected string                       // the path chosen in the tree
	isFolder bool
	chosen   int    // the version chosen in the list; -1 none
	keepID   string // the version to choose again after a reload
	note     string // what the last restore did, shown after the reload

	search   *widget.Entry
	tree     *widget.Tree
	status   *widget.Label
	title    *widget.Label
	subtitle *widget.Label
	list     *widget.List
	preview  *fyne.Container
	restore  *widget.Button
	openDir  *widget.Button
	syncNow  *widget.Button
	detail   *fyne.Container
}

// showVersions opens the versions of partnership id.
func (w *Window) showVersions(id string) {
	p, ok := w.partnership(id)
	if !ok {
		return
	}
	if w.versionsDlg != nil {
		w.versionsDlg.dlg.Hide()
	}
	d := &versionsDialog{w: w, part: p, chosen: -1}
	d.search = widget.NewEntry()
	d.search.SetPlaceHolder(tr("Search by name"))
	d.search.OnChanged = func(string) { d.filter() }
	d.status = widget.NewLabel(tr("Reading the versions…"))
	d.status.Wrapping = fyne.TextWrapWord
	d.tree = widget.NewTree(
		func(uid widget.TreeNodeID) []widget.TreeNodeID { return d.kids[uid] },
		func(uid widget.TreeNodeID) bool { return uid == "" || d.kids[uid] != nil },
		func(bool) fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(uid widget.TreeNodeID, branch bool, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(d.nodeText(uid, branch))
		},
	)
	d.tree.OnSelected = func(uid widget.TreeNodeID) { d.choose(uid) }
	d.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	d.title.Truncation = fyne.TextTruncateEllipsis
	d.subtitle = widget.NewLabel("")
	d.subtitle.Wrapping = fyne.TextWrapWord
	d.list = widget.NewList(
		func() int { return len(d.byPath[d.selected]) * boolInt(!d.isFolder) },
		func() fyne.CanvasObject {
			when := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			why := widget.NewLabel("")
			why.Truncation = fyne.TextTruncateEllipsis
			why.SizeName = theme.SizeNameCaptionText
			return container.New(layout.NewCustomPaddedVBoxLayout(0), when, why)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if vs := d.byPath[d.selected]; i < len(vs) {
				box := o.(*fyne.Container)
				box.Objects[0].(*widget.Label).SetText(formatTime(vs[i].Time) + " · " + humanBytes(vs[i].Size))
				box.Objects[1].(*widget.Label).SetText(capitalize(versionReason(vs[i])))
			}
		},
	)
	d.list.OnSelected = func(i widget.ListItemID) { d.pick(i) }
	d.preview = container.NewStack()
	d.restore = widget.NewButtonWithIcon(tr("Restore"), theme.HistoryIcon(), d.restoreTapped)
	d.restore.Importance = widget.HighImportance
	d.openDir = widget.NewButtonWithIcon(tr("Open folder"), theme.FolderOpenIcon(), d.openTapped)
	d.syncNow = widget.NewButtonWithIcon(tr("Sync now"), theme.ViewRefreshIcon(), func() {
		if err := w.m.SyncNow(d.part.ID); err != nil {
			w.showError(tr("Cannot sync"), err)
		}
		d.syncNow.Hide()
	})
	d.syncNow.Hide()
	previewScroll := container.NewScroll(d.preview)
	previewScroll.SetMinSize(fyne.NewSize(300, 150))
	tall := canvas.NewRectangle(color.Transparent)
	tall.SetMinSize(fyne.NewSize(300, 150))
	listBox := container.NewStack(tall, d.list)
	d.detail = container.NewBorder(container.NewVBox(d.title, d.subtitle, listBox),
		container.NewHBox(d.restore, d.openDir), nil, nil, previewScroll)
	d.showNothing()
	left := container.NewBorder(d.search, nil, nil, nil, d.tree)
	split := container.NewHSplit(left, d.detail)
	split.Offset = 0.42
	body := container.NewBorder(container.NewBorder(nil, nil, nil, d.syncNow, d.status), nil, nil, nil, split)
	d.dlg = dialog.NewCustom(tr("Versions of {{.Name}}", map[string]any{"Name": p.Name}), tr("Close"), body, w.win)
	d.dlg.SetOnClosed(func() {
		if w.versionsDlg == d {
			w.versionsDlg = nil
		}
	})
	w.versionsDlg = d
	d.dlg.Resize(fyne.NewSize(min(w.win.Canvas().Size().Width-20, 860), min(w.win.Canvas().Size().Height-20, 600)))
	d.dlg.Show()
	d.load()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// load reads the versions again (in the background).
func (d *versionsDialog) load() {
	d.seq++
	seq := d.seq
	w := d.w
	id := d.part.ID
	w.background(func(ctx context.Context) func() {
		vs, err := w.m.Versions(ctx, id, "")
		return func() {
			if seq != d.seq {
				return
			}
			if err != nil {
				d.status.SetText(sentence(err.Error()))
				d.status.Importance = widget.DangerImportance
				d.status.Refresh()
				return
			}
			d.show(vs)
		}
	})
}

// show takes a new list of versions.
func (d *versionsDialog) show(vs []manager.Version) {
	d.all = vs
	d.byPath = map[string][]manager.Version{}
	for _, v := range vs {
		d.byPath[v.Path] = append(d.byPath[v.Path], v)
	}
	if len(vs) == 0 {
		d.status.SetText(tr("Nothing is kept: no sync has replaced or deleted a file of this partnership lately."))
	} else {
		d.status.SetText(trN("{{.Count}} files have versions. A sync keeps what it replaces or deletes for {{.Days}} days.", len(d.byPath),
			map[string]any{"Days": d.w.m.Settings().VersionsDays}))
	}
	d.status.Importance = widget.MediumImportance
	if d.note != "" {
		d.status.SetText(d.note)
		d.status.Importance = widget.SuccessImportance
		d.note = ""
	}
	d.status.Refresh()
	d.filter()
	switch {
	case d.selected != "":
		d.choose(d.selected)
	case len(vs) > 0:
		// The file replaced last is shown first.
		d.reveal(vs[0].Path)
	}
}

// reveal opens the folders of p in the tree and chooses it.
func (d *versionsDialog) reveal(p string) {
	for dir := path.Dir(p); dir != "." && dir != ""; dir = path.Dir(dir) {
		d.tree.OpenBranch(dir)
	}
	d.tree.Select(p)
	d.tree.ScrollTo(p)
}

// filter builds the tree of the files whose path or name matches the search, with their folders.
func (d *versionsDialog) filter() {
	q := strings.ToLower(strings.TrimSpace(d.search.Text))
	kids := map[string][]string{"": {}}
	seen := map[string]bool{}
	for p, vs := range d.byPath {
		if q != "" && !strings.Contains(strings.ToLower(p), q) && !strings.Contains(strings.ToLower(vs[0].Label), q) {
			continue
		}
		child := p
		for {
			parent := path.Dir(child)
			if parent == "." {
				parent = ""
			}
			if !seen[child] {
				seen[child] = true
				kids[parent] = append(kids[parent], child)
			}
			if parent == "" {
				break
			}
			if kids[parent] == nil {
				kids[parent] = []string{}
			}
			child = parent
		}
	}
	for k := range kids {
		slices.Sort(kids[k])
	}
	d.kids = kids
	d.tree.Refresh()
	if q != "" {
		d.tree.OpenAllBranches()
	}
}

// nodeText labels a tree node: a file's name with its number of versions, a folder's name.
func (d *versionsDialog) nodeText(uid string, branch bool) string {
	name := path.Base(uid)
	if branch {
		return name + "/"
	}
	vs := d.byPath[uid]
	if len(vs) > 0 && vs[0].Label != "" {
		name = vs[0].Label
	}
	return trN("{{.Name}} ({{.Count}} versions)", len(vs), map[string]any{"Name": name})
}

// choose shows the file or folder uid.
func (d *versionsDialog) choose(uid string) {
	d.selected = uid
	d.isFolder = d.kids[uid] != nil
	d.chosen = -1
	d.list.UnselectAll()
	d.list.Refresh()
	d.preview.Objects = nil
	d.preview.Refresh()
	if d.isFolder {
		n := 0
		for p := range d.byPath {
			if strings.HasPrefix(p, uid+"/") {
				n++
			}
		}
		d.title.SetText(uid + "/")
		d.subtitle.SetText(trN("{{.Count}} files in this folder have versions. Restore all puts back the newest version of each; what is there now is kept as a version first.", n))
		d.restore.SetText(tr("Restore all"))
		d.restore.Enable()
		d.openDir.Disable()
		return
	}
	vs := d.byPath[uid]
	title := uid
	if len(vs) > 0 && vs[0].Label != "" {
		title = vs[0].Label + " (" + uid + ")"
	}
	d.title.SetText(title)
	d.subtitle.SetText(trN("{{.Count}} versions, newest first. Choose one to see it.", len(vs)))
	d.restore.SetText(tr("Restore"))
	d.restore.Disable()
	d.openDir.Disable()
	at := 0
	for i, v := range vs {
		if v.ID == d.keepID {
			at = i // the one chosen before a reload
		}
	}
	d.keepID = ""
	if len(vs) > 0 {
		d.list.Select(at)
	}
}

// showNothing is the detail pane before a choice.
func (d *versionsDialog) showNothing() {
	d.title.SetText(tr("Choose a file or a folder"))
	d.subtitle.SetText("")
	d.restore.Disable()
	d.openDir.Disable()
}

// pick shows version i of the chosen file, with its preview.
func (d *versionsDialog) pick(i int) {
	vs := d.byPath[d.selected]
	if i < 0 || i >= len(vs) {
		return
	}
	d.chosen = i
	v := vs[i]
	d.restore.Enable()
	if v.File != "" {
		d.openDir.Enable()
	} else {
		d.openDir.Disable()
	}
	d.preview.Objects = []fyne.CanvasObject{mutedLabel(tr("Reading…"))}
	d.preview.Refresh()
	seq := d.seq
	w := d.w
	w.background(func(ctx context.Context) func() {
		pv, err := w.m.VersionPreview(ctx, v.ID)
		return func() {
			if seq != d.seq || d.chosen != i || d.selected != v.Path {
				return
			}
			var o fyne.CanvasObject
			if err != nil {
				o = mutedLabel(sentence(err.Error()))
			} else {
				o = previewView(pv, nil)
			}
			d.preview.Objects = []fyne.CanvasObject{o}
			d.preview.Refresh()
		}
	})
}

// restoreTapped restores the chosen version, or the newest of each file of the chosen folder
// (after asking).
func (d *versionsDialog) restoreTapped() {
	w := d.w
	if d.isFolder {
		folder := d.selected
		msg := tr("Put back the newest version of each file kept in {{.Folder}}? Files there now are kept as versions first, and the next sync brings the restored files to the device.", map[string]any{"Folder": folder + "/"})
		c := dialog.NewConfirm(tr("Restore the folder?"), msg, func(ok bool) {
			if !ok {
				return
			}
			d.run(func(ctx context.Context) (string, error) {
				n, err := w.m.RestoreFolder(ctx, d.part.ID, folder)
				return trN("{{.Count}} files restored. The next sync brings them to the device.", n), err
			})
		}, w.win)
		c.SetConfirmText(tr("Restore all"))
		c.SetDismissText(tr("Cancel"))
		c.Show()
		return
	}
	vs := d.byPath[d.selected]
	if d.chosen < 0 || d.chosen >= len(vs) {
		return
	}
	v := vs[d.chosen]
	d.keepID = v.ID // chosen again once the list is read again
	d.run(func(ctx context.Context) (string, error) {
		_, _, err := w.m.Restore(ctx, v.ID, "")
		return tr("{{.Path}} is back as it was on {{.Time}}. The next sync brings it to the device.",
			map[string]any{"Path": v.Path, "Time": formatTime(v.Modified)}), err
	})
}

// run carries out a restore in the background and says how it went.
func (d *versionsDialog) run(fn func(ctx context.Context) (string, error)) {
	w := d.w
	d.restore.Disable()
	w.background(func(ctx context.Context) func() {
		msg, err := fn(ctx)
		return func() {
			d.restore.Enable()
			if err != nil {
				d.status.SetText(sentence(err.Error()))
				d.status.Importance = widget.DangerImportance
				d.status.Refresh()
				return
			}
			d.note = msg
			d.status.SetText(msg)
			d.status.Importance = widget.SuccessImportance
			d.status.Refresh()
			d.load()
			if st := w.statuses[d.part.ID]; st.Connected {
				d.syncNow.Show()
			}
			w.requestRefresh(false)
		}
	})
}

// openTapped opens the folder that holds the chosen version in the file manager.
func (d *versionsDialog) openTapped() {
	vs := d.byPath[d.selected]
	if d.chosen < 0 || d.chosen >= len(vs) || vs[d.chosen].File == "" {
		return
	}
	u := &url.URL{Scheme: "file", Path: filepath.Dir(vs[d.chosen].File)}
	if err := fyne.CurrentApp().OpenURL(u); err != nil {
		d.w.showError(tr("Cannot open the folder"), err)
	}
}

// versionLine is one version in the list: when it was kept, its size, why.
func versionLine(v manager.Version) string {
	return formatTime(v.Time) + " · " + humanBytes(v.Size) + " · " + versionReason(v)
}

// versionReason says why a version was kept, and whose it was.
func versionReason(v manager.Version) string {
	var s string
	device := v.Side == "device"
	switch {
	case v.Reason == "update" && device:
		s = tr("the device's, replaced by this computer's newer version")
	case v.Reason == "update":
		s = tr("this computer's, replaced by the device's newer version")
	case v.Reason == "delete" && device:
		s = tr("the device's, deleted on this computer")
	case v.Reason == "delete":
		s = tr("this computer's, deleted on the device")
	case v.Reason == "conflict" && device:
		s = tr("the device's, replaced when you resolved a conflict")
	case v.Reason == "conflict":
		s = tr("this computer's, replaced when you resolved a conflict")
	case v.Reason == "policy" && device:
		s = tr("the device's, replaced by the partnership's conflict rule")
	case v.Reason == "policy":
		s = tr("this computer's, replaced by the partnership's conflict rule")
	case v.Reason == "restore":
		s = tr("replaced by a restore")
	default:
		s = v.Reason
	}
	if v.OnDevice {
		s += " " + tr("(kept on the device)")
	}
	return s
}
