package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// conflictDialog shows the pending conflicts one at a time: both versions side by side, with a
// preview, and the choice to keep one, the other or both (for this one or all the rest).
type conflictDialog struct {
	w     *Window
	dlg   *dialog.CustomDialog
	list  []manager.Conflict
	index int
	done  map[string]bool // resolved here; hidden even if a snapshot read before still lists them
	busy  bool

	counter     *widget.Label
	path        *widget.Label
	partnership *widget.Label
	prev, next  *widget.Button
	nav         *fyne.Container
	content     *fyne.Container
	desktop     *conflictSide
	device      *conflictSide
	legend      *widget.Label
	applyAll    *widget.Check
	keepDesktop *widget.Button
	keepDevice  *widget.Button
	keepBoth    *widget.Button
	choices     *fyne.Container // the choice buttons, in a row
	errText     *widget.Label
}

// conflictSide is one version's card.
type conflictSide struct {
	title    *widget.Label
	name     *widget.Label
	size     *widget.Label
	modified *widget.Label
	where    *widget.Label
	preview  *fyne.Container
	head     fyne.CanvasObject // title and fields
	scroll   fyne.CanvasObject // the preview
}

func newConflictSide() *conflictSide {
	s := &conflictSide{
		title:    widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		name:     widget.NewLabel(""),
		size:     widget.NewLabel(""),
		modified: widget.NewLabel(""),
		where:    widget.NewLabel(""),
		preview:  container.NewStack(),
	}
	s.name.Truncation = fyne.TextTruncateEllipsis
	s.name.TextStyle.Bold = true
	s.where.Truncation = fyne.TextTruncateEllipsis
	s.where.SizeName = theme.SizeNameCaptionText
	s.title.SizeName = theme.SizeNameSubHeadingText
	// Compact: the previews get the room.
	meta := container.New(layout.NewCustomPaddedHBoxLayout(0), s.size, widget.NewLabel("·"), s.modified)
	scroll := container.NewScroll(s.preview)
	scroll.SetMinSize(fyne.NewSize(340, 170))
	s.head = container.New(layout.NewCustomPaddedVBoxLayout(0), s.title, s.name, meta, s.where)
	s.scroll = scroll
	return s
}

// fieldLabel is the name of a field in a form.
func fieldLabel(s string) *widget.Label {
	return widget.NewLabelWithStyle(s, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
}

// showConflicts opens the conflict dialog (or brings the open one back).
func (w *Window) showConflicts() {
	if w.conflictDlg != nil {
		w.conflictDlg.dlg.Show()
		return
	}
	list := w.pendingConflicts()
	if len(list) == 0 {
		return
	}
	d := &conflictDialog{w: w, done: map[string]bool{}}
	d.counter = widget.NewLabel("")
	d.partnership = widget.NewLabel("")
	d.partnership.SizeName = theme.SizeNameCaptionText
	d.path = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	d.path.Truncation = fyne.TextTruncateEllipsis
	d.prev = widget.NewButtonWithIcon("", theme.NavigateBackIcon(), func() { d.move(-1) })
	d.next = widget.NewButtonWithIcon("", theme.NavigateNextIcon(), func() { d.move(1) })
	d.desktop, d.device = newConflictSide(), newConflictSide()
	d.legend = widget.NewLabel("")
	d.legend.SizeName = theme.SizeNameCaptionText
	d.legend.Wrapping = fyne.TextWrapWord
	d.applyAll = widget.NewCheck("", nil)
	d.keepDesktop = widget.NewButtonWithIcon(tr("Keep this computer's"), theme.ComputerIcon(), func() { d.resolve(manager.KeepDesktop) })
	d.keepDevice = widget.NewButtonWithIcon(tr("Keep the device's"), phoneIcon, func() { d.resolve(manager.KeepDevice) })
	d.keepBoth = widget.NewButtonWithIcon(tr("Keep both"), theme.ContentCopyIcon(), func() { d.resolve(manager.KeepBoth) })
	d.keepBoth.Importance = widget.HighImportance
	d.errText = widget.NewLabel("")
	d.errText.Importance = widget.DangerImportance
	d.errText.Wrapping = fyne.TextWrapWord
	d.errText.Hide()

	d.nav = container.NewHBox(d.counter, d.prev, d.next)
	top := container.NewBorder(nil, nil, nil, container.NewCenter(d.nav),
		container.NewVBox(d.path, d.partnership))
	// Fields and previews in two rows, so that both previews start at the same height.
	heads := container.NewGridWithColumns(2, d.desktop.head, d.device.head)
	previews := container.NewGridWithColumns(2, d.desktop.scroll, d.device.scroll)
	d.choices = container.NewGridWithColumns(3, d.keepDesktop, d.keepDevice, d.keepBoth)
	bottom := container.NewVBox(widget.NewSeparator(), d.legend, d.errText, d.applyAll, d.choices)
	content := container.NewBorder(container.NewVBox(top, widget.NewSeparator(), heads, widget.NewSeparator()), bottom, nil, nil, previews)
	d.content = content
	d.dlg = dialog.NewCustom(tr("Conflicts"), tr("Close"), content, w.win)
	d.dlg.SetOnClosed(func() {
		if w.conflictDlg == d {
			w.conflictDlg = nil
		}
	})
	w.conflictDlg = d
	d.list = list
	d.render()
	d.dlg.Resize(fyne.NewSize(min(w.win.Canvas().Size().Width-20, 860), min(w.win.Canvas().Size().Height-20, 600)))
	d.dlg.Show()
}

// update takes a new list of pending conflicts: the one shown stays shown while it is pending;
// the dialog closes when none is left.
func (d *conflictDialog) update(list []manager.Conflict) {
	cur := ""
	if d.index < len(d.list) {
		cur = d.list[d.index].ID
	}
	for _, c := range list {
		if c.ResolutionError != "" {
			delete(d.done, c.ID) // the choice could not be carried out: the conflict waits again
		}
	}
	list = slices.DeleteFunc(slices.Clone(list), func(c manager.Conflict) bool { return d.done[c.ID] })
	d.list = list
	if len(list) == 0 {
		d.dlg.Hide()
		return
	}
	if i := slices.IndexFunc(list, func(c manager.Conflict) bool { return c.ID == cur }); i >= 0 {
		d.index = i
	} else {
		d.index = min(d.index, len(list)-1)
	}
	d.render()
}

// move shows the previous (-1) or next (+1) conflict.
func (d *conflictDialog) move(delta int) {
	if n := len(d.list); n > 0 {
		d.index = (d.index + delta + n) % n
		d.render()
	}
}

// render shows the conflict at index.
func (d *conflictDialog) render() {
	if len(d.list) == 0 {
		return
	}
	c := d.list[d.index]
	d.counter.SetText(tr("{{.N}} of {{.Total}}", map[string]any{"N": d.index + 1, "Total": len(d.list)}))
	if len(d.list) > 1 {
		d.nav.Show()
	} else {
		d.nav.Hide()
	}
	d.path.SetText(conflictTitle(c))
	p, _ := d.w.partnership(c.Partnership)
	d.partnership.SetText(tr("Partnership \"{{.Name}}\" · changed on both sides since the last sync", map[string]any{"Name": c.PartnershipName}))
	devLabel := d.w.deviceLabel(c.DeviceSerial)
	d.desktop.title.SetText(tr("On this computer"))
	d.device.title.SetText(tr("On {{.Device}}", map[string]any{"Device": devLabel}))
	d.desktop.show(c.Desktop, c.Device, d.w.desktopWhere(p))
	d.device.show(c.Device, c.Desktop, d.w.deviceWhere(p, devLabel))
	text := c.Desktop.Preview != nil && c.Desktop.Preview.Text != "" || c.Device.Preview != nil && c.Device.Preview.Text != ""
	fields := c.Desktop.Preview != nil && len(c.Desktop.Preview.Fields) > 0 || c.Device.Preview != nil && len(c.Device.Preview.Fields) > 0
	switch {
	case text:
		d.legend.SetText(tr("Lines marked + are only in that version."))
		d.legend.Show()
	case fields:
		d.legend.SetText(tr("Fields in bold differ between the two versions."))
		d.legend.Show()
	default:
		d.legend.Hide()
	}
	rest := len(d.list)
	d.applyAll.SetText(trN("Do the same for all {{.Count}} conflicts", rest))
	if rest > 1 {
		d.applyAll.Show()
	} else {
		d.applyAll.SetChecked(false)
		d.applyAll.Hide()
	}
	keepBoth := tr("Keep both")
	if c.Desktop.Kind == "folder" || c.Device.Kind == "folder" {
		keepBoth = tr("Keep both (merge)")
	}
	d.keepBoth.SetText(keepBoth)
	// Only the choices the partnership's stores can carry out (a store of one item has no room
	// for a copy: no keep-both).
	show := func(b *widget.Button, ok bool) {
		if ok {
			b.Show()
		} else {
			b.Hide()
		}
	}
	canBoth := slices.Contains(c.Choices, manager.KeepBoth)
	show(d.keepBoth, canBoth)
	show(d.keepDesktop, slices.Contains(c.Choices, manager.KeepDesktop))
	show(d.keepDevice, slices.Contains(c.Choices, manager.KeepDevice))
	if canBoth {
		d.choices.Layout = layout.NewGridLayoutWithColumns(3)
	} else {
		d.choices.Layout = layout.NewGridLayoutWithColumns(2)
	}
	switch {
	case c.ResolutionError != "":
		d.errText.SetText(sentence(c.ResolutionError) + ". " + tr("Choose again."))
		d.errText.Show()
	default:
		d.errText.Hide()
	}
	d.setBusy(d.busy)
	if d.content != nil {
		d.content.Refresh() // parts shown or hidden: lay the dialog out again
	}
}

func (d *conflictDialog) setBusy(b bool) {
	d.busy = b
	for _, btn := range []*widget.Button{d.keepDesktop, d.keepDevice, d.keepBoth} {
		if b {
			btn.Disable()
		} else {
			btn.Enable()
		}
	}
}

// resolve hands the choice to the manager, for the conflict shown or (apply to all) for every
// pending one, and moves on.
func (d *conflictDialog) resolve(keep manager.Keep) {
	if d.busy || len(d.list) == 0 {
		return
	}
	targets := []manager.Conflict{d.list[d.index]}
	if d.applyAll.Checked {
		targets = append(targets, d.list[d.index+1:]...)
		targets = append(targets, d.list[:d.index]...)
	}
	d.setBusy(true)
	d.errText.Hide()
	w := d.w
	w.background(func(ctx context.Context) func() {
		var resolved []string
		var failed error
		for _, c := range targets {
			err := w.m.Resolve(ctx, c.ID, keep)
			if err != nil && !errors.Is(err, manager.ErrNoConflict) {
				failed = err
				break
			}
			resolved = append(resolved, c.ID)
		}
		return func() {
			d.setBusy(false)
			for _, id := range resolved {
				d.done[id] = true
			}
			d.update(d.list)
			if failed != nil {
				d.errText.SetText(sentence(failed.Error()))
				d.errText.Show()
				d.content.Refresh()
			}
			w.requestRefresh(true)
		}
	})
}

// show fills a side's card with version s; other is the other side's version (for the diff).
func (s *conflictSide) show(v, other manager.ConflictSide, where string) {
	s.where.SetText(where)
	if !v.Exists {
		s.name.SetText("—")
		s.size.SetText(tr("Deleted on this side"))
		s.modified.SetText("—")
		s.setPreview(mutedLabel(tr("This version was deleted. Keeping it deletes the other one too.")))
		return
	}
	s.name.SetText(v.Name)
	if v.Kind == "folder" {
		s.size.SetText(tr("Folder"))
	} else {
		s.size.SetText(humanBytes(v.Size))
	}
	mod := tr("modified {{.Time}}", map[string]any{"Time": formatTime(v.Modified)})
	if other.Exists && !v.Modified.IsZero() && v.Modified.After(other.Modified) {
		mod += " (" + tr("newer") + ")"
	}
	s.modified.SetText(mod)
	s.setPreview(previewView(v.Preview, other.Preview))
}

func (s *conflictSide) setPreview(o fyne.CanvasObject) {
	s.preview.Objects = []fyne.CanvasObject{o}
	s.preview.Refresh()
}

// previewView shows a version's preview, with what differs from the other version marked: a
// text with its lines, a contact with its fields, a picture as a thumbnail.
func previewView(p, other *manager.Preview) fyne.CanvasObject {
	switch {
	case p == nil:
		return mutedLabel(tr("No preview for this item."))
	case len(p.Image) > 0:
		img := canvas.NewImageFromResource(fyne.NewStaticResource("thumbnail.png", p.Image))
		img.FillMode = canvas.ImageFillContain
		img.SetMinSize(fyne.NewSquareSize(manager.ThumbnailSize))
		return img
	case len(p.Fields) > 0:
		return fieldsView(p.Fields, otherFields(other))
	case p.Text != "":
		var otherLines []string
		if other != nil {
			otherLines = splitLines(other.Text)
		}
		return textView(splitLines(p.Text), otherLines, p.Truncated)
	}
	return mutedLabel(tr("The file is empty."))
}

func otherFields(p *manager.Preview) []manager.Field {
	if p == nil {
		return nil
	}
	return p.Fields
}

// textView shows lines in a fixed-width font; lines the other version lacks are marked.
func textView(lines, other []string, truncated bool) fyne.CanvasObject {
	common, _ := diffLines(lines, other)
	segs := make([]widget.RichTextSegment, 0, len(lines)+1)
	for i, l := range lines {
		style := widget.RichTextStyle{TextStyle: fyne.TextStyle{Monospace: true}}
		prefix := "  "
		if !common[i] && other != nil {
			prefix = "+ "
			style.ColorName = theme.ColorNamePrimary
		}
		segs = append(segs, &widget.TextSegment{Style: style, Text: prefix + l})
	}
	if truncated {
		segs = append(segs, &widget.TextSegment{Style: widget.RichTextStyle{ColorName: theme.ColorNameDisabled},
			Text: tr("(only the beginning is shown)")})
	}
	rt := widget.NewRichText(segs...)
	rt.Wrapping = fyne.TextWrapWord
	return rt
}

// fieldsView shows a contact's fields as a table; fields the other version lacks (or has with
// another value) are in bold.
func fieldsView(fields, other []manager.Field) fyne.CanvasObject {
	has := map[manager.Field]int{}
	for _, f := range other {
		has[f]++
	}
	objs := make([]fyne.CanvasObject, 0, 2*len(fields))
	for _, f := range fields {
		label, text := contactField(f)
		name := fieldLabel(label)
		value := widget.NewLabel(text)
		value.Wrapping = fyne.TextWrapBreak
		if has[f] > 0 {
			has[f]--
		} else if other != nil {
			value.TextStyle.Bold = true
			value.Importance = widget.HighImportance
		}
		objs = append(objs, name, value)
	}
	return container.New(layout.NewFormLayout(), objs...)
}

// contactField shows a contact's field for people: ("TEL", "TEL;TYPE=cell:+351 91…") is
// "Phone (cell)" and "+351 91…".
func contactField(f manager.Field) (label, value string) {
	value = f.Value
	var params []string
	if head, rest, ok := cutUnquoted(value, ':'); ok {
		parts := strings.Split(head, ";")
		if strings.EqualFold(parts[0], f.Name) || strings.HasSuffix(strings.ToUpper(parts[0]), "."+strings.ToUpper(f.Name)) {
			value, params = rest, parts[1:]
		}
	}
	var types []string
	for _, p := range params {
		k, v, hasValue := strings.Cut(p, "=")
		switch {
		case !hasValue: // vCard 2.1: TEL;CELL
			types = append(types, strings.ToLower(k))
		case strings.EqualFold(k, "TYPE"):
			for _, t := range strings.Split(strings.Trim(v, "\""), ",") {
				types = append(types, strings.ToLower(t))
			}
		}
	}
	switch strings.ToUpper(f.Name) {
	case "N", "ADR":
		value = joinNonEmpty(strings.Split(value, ";"), ", ")
	}
	label = fieldName(f.Name)
	if len(types) > 0 {
		label += " (" + strings.Join(types, ", ") + ")"
	}
	return label, value
}

// cutUnquoted cuts s at the first sep outside double quotes.
func cutUnquoted(s string, sep byte) (before, after string, found bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// fieldName names a vCard property for people.
func fieldName(name string) string {
	switch strings.ToUpper(name) {
	case "FN":
		return tr("Name")
	case "N":
		return tr("Name parts")
	case "TEL":
		return tr("Phone")
	case "EMAIL":
		return tr("E-mail")
	case "ADR":
		return tr("Address")
	case "ORG":
		return tr("Organisation")
	case "TITLE":
		return tr("Job title")
	case "NOTE":
		return tr("Note")
	case "BDAY":
		return tr("Birthday")
	case "URL":
		return tr("Web page")
	case "PHOTO":
		return tr("Photo")
	case "NICKNAME":
		return tr("Nickname")
	}
	return name
}

// conflictTitle is how the dialog names a conflicting item: a contact by its name, anything
// else by its path.
func conflictTitle(c manager.Conflict) string {
	for _, p := range []*manager.Preview{c.Desktop.Preview, c.Device.Preview} {
		if p == nil {
			continue
		}
		for _, f := range p.Fields {
			if strings.EqualFold(f.Name, "FN") {
				if _, v := contactField(f); v != "" {
					return v
				}
			}
		}
	}
	return c.Path
}

func mutedLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	return l
}

// partnership returns the partnership with ID id.
func (w *Window) partnership(id string) (manager.Partnership, bool) {
	for _, p := range w.parts {
		if p.ID == id {
			return p, true
		}
	}
	return manager.Partnership{}, false
}

// deviceLabel names the device with that serial.
func (w *Window) deviceLabel(serial string) string {
	for _, d := range w.devices {
		if d.Serial == serial && d.Label != "" {
			return d.Label
		}
	}
	return tr("the device")
}

// desktopWhere says where a partnership's desktop side is: its folder options' values.
func (w *Window) desktopWhere(p manager.Partnership) string {
	return shortPath(w.optionValues(p, "folder"))
}

// maxPathLen is how long a path the window shows whole; longer ones keep their last folders.
const maxPathLen = 44

// shortPath shows a desktop path for people: the home folder as "~", and only the last folders
// of a long path ("…/computer/Documents").
func shortPath(p string) string {
	if p == "" {
		return ""
	}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		if p == home {
			return "~"
		}
		if rest, ok := strings.CutPrefix(p, home+string(filepath.Separator)); ok {
			p = "~" + string(filepath.Separator) + rest
		}
	}
	if utf8.RuneCountInString(p) <= maxPathLen {
		return p
	}
	parts := strings.Split(p, string(filepath.Separator))
	out := parts[len(parts)-1]
	for i := len(parts) - 2; i > 0; i-- {
		next := parts[i] + string(filepath.Separator) + out
		if utf8.RuneCountInString(next)+2 > maxPathLen {
			break
		}
		out = next
	}
	return "…" + string(filepath.Separator) + out
}

// deviceWhere says where a partnership's device side is: the device and its device-path
// options' values.
func (w *Window) deviceWhere(p manager.Partnership, devLabel string) string {
	v := w.optionValues(p, "device-path")
	if v == "" {
		return devLabel
	}
	return devLabel + ": " + v
}

func (w *Window) optionValues(p manager.Partnership, kind manager.OptionKind) string {
	prov, ok := w.providers[p.Provider]
	if !ok {
		return ""
	}
	var out []string
	for _, o := range prov.Options {
		if o.Kind == kind && p.Options[o.Name] != "" {
			out = append(out, p.Options[o.Name])
		}
	}
	return joinNonEmpty(out, ", ")
}

func joinNonEmpty(s []string, sep string) string {
	out := s[:0:0]
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return ""
	}
	r := out[0]
	for _, x := range out[1:] {
		r += sep + x
	}
	return r
}
