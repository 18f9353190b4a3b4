package ui

import (
	"context"
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// addDialog is "Add partnership": choose a provider, then fill in a form generated from its
// option declaration, with the direction and the conflict policy. The manager checks the values;
// its messages are shown beside the field they concern.
type addDialog struct {
	w      *Window
	dlg    *dialog.CustomDialog
	holder *fyne.Container
	serial string
	prov   manager.Provider
	busy   bool

	// Step 1.
	providerButtons map[string]*widget.Button
	browser         *deviceBrowser // the device folder chooser last opened

	// Step 2.
	name        *widget.Entry
	nameErr     *widget.Label
	nameEdited  bool
	settingName bool
	device      *widget.Select
	deviceIDs   map[string]string // option -> serial
	deviceErr   *widget.Label
	fields      []*optionField
	direction   *widget.RadioGroup
	dirValues   map[string]manager.Direction
	dirErr      *widget.Label
	policy      *widget.Select
	policyVals  map[string]manager.ConflictPolicy
	policyErr   *widget.Label
	formErr     *widget.Label
	create      *widget.Button
	back        *widget.Button
	cancel      *widget.Button
}

// optionField is the form field of one provider option.
type optionField struct {
	opt    manager.Option
	entry  *widget.Entry
	check  *widget.Check
	choice *widget.Select
	browse *widget.Button
	errMsg *widget.Label
	obj    fyne.CanvasObject
}

// value is the field's value as the manager takes it.
func (f *optionField) value() string {
	switch {
	case f.check != nil:
		return strconv.FormatBool(f.check.Checked)
	case f.choice != nil:
		return f.choice.Selected
	}
	return strings.TrimSpace(f.entry.Text)
}

// showAdd opens "Add partnership" for the device with that serial ("" for the device shown).
func (w *Window) showAdd(serial string) {
	if w.addDlg != nil {
		w.addDlg.dlg.Show()
		return
	}
	if serial == "" {
		if d, ok := w.device(); ok && d.Connected() {
			serial = d.Serial
		}
	}
	d := &addDialog{w: w, serial: serial, providerButtons: map[string]*widget.Button{}}
	d.holder = container.NewStack()
	d.cancel = widget.NewButton(tr("Cancel"), func() { d.dlg.Hide() })
	d.back = widget.NewButtonWithIcon(tr("Back"), theme.NavigateBackIcon(), d.chooser)
	d.create = widget.NewButtonWithIcon(tr("Add partnership"), theme.ConfirmIcon(), d.submit)
	d.create.Importance = widget.HighImportance
	d.dlg = dialog.NewCustomWithoutButtons(tr("Add partnership"), d.holder, w.win)
	d.dlg.SetOnClosed(func() {
		if w.addDlg == d {
			w.addDlg = nil
		}
	})
	w.addDlg = d
	d.chooser()
	d.dlg.Show()
}

// chooser is step 1: the providers, each with its icon and description.
func (d *addDialog) chooser() {
	var rows []fyne.CanvasObject
	rows = append(rows, widget.NewLabel(tr("What do you want to keep in step with the device?")))
	provs := d.w.m.Providers()
	sort.SliceStable(provs, func(i, j int) bool { return provs[i].Name < provs[j].Name })
	for _, p := range provs {
		p := p
		b := widget.NewButtonWithIcon(providerTitle(p), providerIcon(p.Icon), func() { d.choose(p) })
		b.Alignment = widget.ButtonAlignLeading
		desc := widget.NewLabel(trDecl(p.Description))
		desc.Wrapping = fyne.TextWrapWord
		d.providerButtons[p.Name] = b
		rows = append(rows, container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(170, b.MinSize().Height), b), nil, desc))
	}
	d.holder.Objects = []fyne.CanvasObject{container.NewVScroll(container.NewVBox(rows...))}
	d.holder.Refresh()
	d.dlg.SetButtons([]fyne.CanvasObject{d.cancel})
	d.resize(660, 120+60*float32(len(provs)))
}

// resize makes the dialog w by h, within the window.
func (d *addDialog) resize(w, h float32) {
	c := d.w.win.Canvas().Size()
	d.dlg.Resize(fyne.NewSize(min(c.Width-20, w), min(c.Height-20, h)))
}

// providerTitle is a provider's name for people: "Files", "Photos".
func providerTitle(p manager.Provider) string {
	return trDecl(capitalize(p.Name))
}

// choose is step 2: the form for provider p.
func (d *addDialog) choose(p manager.Provider) {
	d.prov = p
	d.fields = nil
	d.nameEdited = false

	d.name = widget.NewEntry()
	d.name.OnChanged = func(string) {
		if !d.settingName {
			d.nameEdited = true
		}
	}
	d.setName(providerTitle(p))
	d.nameErr = errLabel()

	d.device = widget.NewSelect(nil, func(s string) { d.serial = d.deviceIDs[s] })
	d.deviceErr = errLabel()
	d.devicesChanged()

	basic := []fyne.CanvasObject{
		fieldLabel(tr("Name")), container.NewVBox(d.name, d.nameErr),
		fieldLabel(tr("Device")), container.NewVBox(d.device, d.deviceErr),
	}
	var advanced []fyne.CanvasObject
	for _, o := range p.Options {
		f := d.newField(o)
		d.fields = append(d.fields, f)
		row := []fyne.CanvasObject{fieldLabel(trDecl(o.Label)), f.obj}
		if o.Advanced {
			advanced = append(advanced, row...)
		} else {
			basic = append(basic, row...)
		}
	}

	d.dirValues = map[string]manager.Direction{}
	var dirOpts []string
	dirs := p.Directions
	if len(dirs) == 0 {
		dirs = []manager.Direction{manager.TwoWay, manager.ToDevice, manager.ToDesktop}
	}
	for _, dir := range dirs {
		t := directionText(dir)
		d.dirValues[t] = dir
		dirOpts = append(dirOpts, t)
	}
	d.direction = widget.NewRadioGroup(dirOpts, nil)
	d.direction.Required = true
	d.direction.SetSelected(dirOpts[0])
	d.dirErr = errLabel()
	dirBox := container.NewVBox(d.direction, d.dirErr)
	if len(dirOpts) == 1 {
		d.direction.Disable()
		dirBox.Add(hintLabel(tr("This provider syncs only this way.")))
	}

	d.policyVals = map[string]manager.ConflictPolicy{}
	var polOpts []string
	for _, pol := range manager.ConflictPolicies {
		t := policyText(pol)
		d.policyVals[t] = pol
		polOpts = append(polOpts, t)
	}
	d.policy = widget.NewSelect(polOpts, nil)
	d.policy.SetSelected(polOpts[0])
	d.policyErr = errLabel()
	basic = append(basic,
		fieldLabel(tr("Direction")), dirBox,
		fieldLabel(tr("When both sides changed")), container.NewVBox(d.policy, hintLabel(tr("\"Ask me\" keeps both versions until you choose.")), d.policyErr),
	)

	d.formErr = errLabel()
	objs := []fyne.CanvasObject{
		container.NewHBox(widget.NewIcon(providerIcon(p.Icon)), widget.NewLabelWithStyle(providerTitle(p), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})),
		container.New(layout.NewFormLayout(), basic...),
	}
	if len(advanced) > 0 {
		objs = append(objs, widget.NewAccordion(widget.NewAccordionItem(tr("More options"), container.New(layout.NewFormLayout(), advanced...))))
	}
	objs = append(objs, d.formErr)
	d.holder.Objects = []fyne.CanvasObject{container.NewVScroll(container.NewVBox(objs...))}
	d.holder.Refresh()
	d.dlg.SetButtons([]fyne.CanvasObject{d.back, d.cancel, d.create})
	d.resize(680, 600)
	d.setBusy(false)
}

// newField builds the field of option o.
func (d *addDialog) newField(o manager.Option) *optionField {
	f := &optionField{opt: o, errMsg: errLabel()}
	help := hintLabel(capitalize(trDecl(o.Help)))
	switch o.Kind {
	case "bool":
		on, _ := strconv.ParseBool(o.Default)
		// A check box's own text does not wrap: the help goes beside it, in a label that does.
		f.check = widget.NewCheck("", nil)
		f.check.SetChecked(on)
		help := widget.NewLabel(capitalize(trDecl(o.Help)))
		help.Wrapping = fyne.TextWrapWord
		f.obj = container.NewVBox(container.NewBorder(nil, nil, f.check, nil, help), f.errMsg)
		return f
	case "choice":
		f.choice = widget.NewSelect(o.Choices, nil)
		if o.Default != "" {
			f.choice.SetSelected(o.Default)
		}
		f.obj = container.NewVBox(f.choice, help, f.errMsg)
		return f
	}
	f.entry = widget.NewEntry()
	f.entry.SetText(o.Default)
	var field fyne.CanvasObject = f.entry
	switch o.Kind {
	case "folder":
		f.entry.SetPlaceHolder("~/" + tr("Documents"))
		f.browse = widget.NewButtonWithIcon(tr("Choose…"), theme.FolderOpenIcon(), func() { d.chooseFolder(f) })
		field = container.NewBorder(nil, nil, nil, f.browse, f.entry)
	case "device-path":
		f.entry.SetPlaceHolder(tr("Documents"))
		f.browse = widget.NewButtonWithIcon(tr("Browse…"), theme.SearchIcon(), func() { d.browseDevice(f) })
		field = container.NewBorder(nil, nil, nil, f.browse, f.entry)
		if o.Default == "" {
			f.entry.OnChanged = func(s string) {
				if !d.nameEdited {
					if base := path.Base(strings.Trim(strings.ReplaceAll(afterStorage(s), "\\", "/"), "/")); base != "" && base != "." {
						d.setName(base)
					}
				}
			}
		}
	}
	f.obj = container.NewVBox(field, help, f.errMsg)
	return f
}

// afterStorage drops a "STORAGE:" prefix from a device path.
func afterStorage(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (d *addDialog) setName(s string) {
	d.settingName = true
	d.name.SetText(s)
	d.settingName = false
}

// devicesChanged updates the device choice with the devices connected now.
func (d *addDialog) devicesChanged() {
	if d.device == nil {
		return
	}
	d.deviceIDs = map[string]string{}
	var opts []string
	sel := ""
	for _, dev := range d.w.devices {
		if !dev.Connected() {
			continue
		}
		name := dev.Label
		if _, dup := d.deviceIDs[name]; dup || name == "" {
			name += " (" + dev.Serial + ")"
		}
		d.deviceIDs[name] = dev.Serial
		opts = append(opts, name)
		if dev.Serial == d.serial {
			sel = name
		}
	}
	d.device.SetOptions(opts)
	if sel == "" && len(opts) > 0 {
		sel = opts[0]
	}
	if sel != "" {
		d.device.SetSelected(sel)
		d.deviceErr.Hide()
	} else {
		d.device.ClearSelected()
		d.serial = ""
		d.deviceErr.SetText(tr("No device is connected. Plug one in, unlock it and choose \"File transfer\"."))
		d.deviceErr.Show()
	}
	d.holder.Refresh()
}

// clearErrors hides every message.
func (d *addDialog) clearErrors() {
	for _, l := range []*widget.Label{d.nameErr, d.deviceErr, d.dirErr, d.policyErr, d.formErr} {
		l.Hide()
	}
	for _, f := range d.fields {
		f.errMsg.Hide()
	}
}

// partnership is the partnership the form describes.
func (d *addDialog) partnership() manager.Partnership {
	opts := map[string]string{}
	for _, f := range d.fields {
		if v := f.value(); v != "" {
			opts[f.opt.Name] = v
		}
	}
	return manager.Partnership{
		Name:       strings.TrimSpace(d.name.Text),
		Device:     d.serial,
		Provider:   d.prov.Name,
		Options:    opts,
		Direction:  d.dirValues[d.direction.Selected],
		OnConflict: d.policyVals[d.policy.Selected],
	}
}

// check finds what the form can tell without the manager: empty required fields, a name
// already used on the device, numbers that are not. It shows the messages and reports whether
// all is well.
func (d *addDialog) check() bool {
	ok := true
	fail := func(l *widget.Label, msg string) {
		l.SetText(msg)
		l.Show()
		ok = false
	}
	name := strings.TrimSpace(d.name.Text)
	if name == "" {
		fail(d.nameErr, tr("Give the partnership a name."))
	}
	for _, p := range d.w.parts {
		if p.Device == d.serial && strings.EqualFold(p.Name, name) && name != "" {
			fail(d.nameErr, tr("The device already has a partnership with this name."))
		}
	}
	if d.serial == "" {
		fail(d.deviceErr, tr("No device is connected. Plug one in, unlock it and choose \"File transfer\"."))
	}
	for _, f := range d.fields {
		v := f.value()
		switch {
		case f.opt.Required && f.opt.Default == "" && v == "":
			switch f.opt.Kind {
			case "folder":
				fail(f.errMsg, tr("Choose a folder."))
			case "device-path":
				fail(f.errMsg, tr("Choose a folder on the device."))
			default:
				fail(f.errMsg, tr("This is required."))
			}
		case f.opt.Kind == "int" && v != "":
			if _, err := strconv.Atoi(v); err != nil {
				fail(f.errMsg, tr("Enter a whole number."))
			}
		}
	}
	return ok
}

// submit checks the form and asks the manager to add the partnership.
func (d *addDialog) submit() {
	if d.busy {
		return
	}
	d.clearErrors()
	ok := d.check()
	d.holder.Refresh() // messages shown or hidden: lay the form out again
	if !ok {
		return
	}
	p := d.partnership()
	d.setBusy(true)
	w := d.w
	w.background(func(ctx context.Context) func() {
		q, err := w.m.AddPartnership(ctx, p)
		return func() {
			d.setBusy(false)
			if err != nil {
				d.showError(err)
				return
			}
			d.dlg.Hide()
			w.selected, w.userPicked = q.Device, true
			w.requestRefresh(true)
		}
	})
}

func (d *addDialog) setBusy(b bool) {
	d.busy = b
	if b {
		d.create.Disable()
	} else {
		d.create.Enable()
	}
}

// showError puts the manager's message beside the field it concerns.
func (d *addDialog) showError(err error) {
	msg := err.Error()
	text := sentence(msg)
	lower := strings.ToLower(msg)
	var target *widget.Label
	// The manager says which field its error concerns; a provider's own validation may only
	// name the option in its words, found below.
	switch field := manager.InvalidField(err); {
	case field == "name":
		target = d.nameErr
	case field == "direction":
		target = d.dirErr
	case field == "on-conflict":
		target = d.policyErr
	case strings.HasPrefix(field, "option:"):
		for _, f := range d.fields {
			if "option:"+f.opt.Name == field {
				target = f.errMsg
				if key := "option " + strings.ToLower(f.opt.Name) + ": "; strings.HasPrefix(lower, key) {
					text = sentence(msg[len(key):])
				}
			}
		}
	}
	// Options with the longest labels first: "device folder" before "folder".
	fields := append([]*optionField(nil), d.fields...)
	sort.SliceStable(fields, func(i, j int) bool { return len(fields[i].opt.Label) > len(fields[j].opt.Label) })
	for _, f := range fields {
		if target != nil {
			break
		}
		key := "option " + strings.ToLower(f.opt.Name)
		if i := strings.Index(lower, key+": "); i >= 0 {
			target, text = f.errMsg, sentence(msg[i+len(key)+2:])
			break
		}
		if strings.Contains(lower, key) || f.opt.Label != "" && strings.Contains(lower, strings.ToLower(f.opt.Label)+" ") {
			target = f.errMsg
			break
		}
	}
	if target == nil {
		switch {
		case errors.Is(err, manager.ErrUnknownDevice), errors.Is(err, manager.ErrNotConnected):
			target = d.deviceErr
		case strings.Contains(lower, "needs a name"):
			target = d.nameErr
		case strings.Contains(lower, "direction") || strings.Contains(lower, "syncs only"):
			target = d.dirErr
		case strings.Contains(lower, "conflict policy"):
			target = d.policyErr
		default:
			target = d.formErr
		}
	}
	target.SetText(text)
	target.Show()
	d.holder.Refresh()
}

// chooseFolder opens the desktop folder picker for a folder option.
func (d *addDialog) chooseFolder(f *optionField) {
	fd := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil || u == nil {
			return
		}
		f.entry.SetText(u.Path())
	}, d.w.win)
	if v := strings.TrimSpace(f.entry.Text); v != "" {
		if u, err := storage.ListerForURI(storage.NewFileURI(v)); err == nil {
			fd.SetLocation(u)
		}
	}
	fd.Resize(fyne.NewSize(min(d.w.win.Canvas().Size().Width-20, 760), min(d.w.win.Canvas().Size().Height-20, 560)))
	fd.Show()
}

func errLabel() *widget.Label {
	l := widget.NewLabel("")
	l.Importance = widget.DangerImportance
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

func hintLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	l.SizeName = theme.SizeNameCaptionText
	return l
}

// ---- the device folder chooser ----

// deviceBrowser lists folders on the device so the user can pick one for a device-path option.
type deviceBrowser struct {
	d       *addDialog
	f       *optionField
	dlg     *dialog.CustomDialog
	dir     string
	objs    []manager.DeviceObject
	where   *widget.Label
	list    *widget.List
	status  *widget.Label
	useThis *widget.Button
	seq     int
}

// browseDevice opens the device folder chooser for field f.
func (d *addDialog) browseDevice(f *optionField) {
	if d.serial == "" {
		d.deviceErr.SetText(tr("No device is connected. Plug one in, unlock it and choose \"File transfer\"."))
		d.deviceErr.Show()
		return
	}
	b := &deviceBrowser{d: d, f: f}
	d.browser = b
	b.where = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	b.status = widget.NewLabel("")
	b.status.Wrapping = fyne.TextWrapWord
	b.list = widget.NewList(
		func() int { return len(b.rows()) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.FolderIcon()), widget.NewLabel("template name"))
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			rows := b.rows()
			if i >= len(rows) {
				return
			}
			box := o.(*fyne.Container)
			icon, label := box.Objects[0].(*widget.Icon), box.Objects[1].(*widget.Label)
			r := rows[i]
			switch {
			case r.Name == "..":
				icon.SetResource(theme.NavigateBackIcon())
				label.SetText(tr("Up"))
			case r.Dir:
				icon.SetResource(theme.FolderIcon())
				label.SetText(r.Name)
			default:
				icon.SetResource(theme.FileIcon())
				label.SetText(r.Name)
			}
		})
	b.list.OnSelected = func(i widget.ListItemID) {
		b.list.UnselectAll()
		rows := b.rows()
		if i >= len(rows) {
			return
		}
		r := rows[i]
		switch {
		case r.Name == "..":
			b.open(path.Dir(b.dir))
		case r.Dir:
			b.open(r.Path)
		default:
			// A file: options such as the contacts file name one.
			f.entry.SetText(r.Path)
			b.dlg.Hide()
		}
	}
	b.useThis = widget.NewButtonWithIcon(tr("Use this folder"), theme.ConfirmIcon(), func() {
		f.entry.SetText(b.dir)
		b.dlg.Hide()
	})
	b.useThis.Importance = widget.HighImportance
	content := container.NewBorder(container.NewVBox(b.where, b.status), nil, nil, nil, b.list)
	b.dlg = dialog.NewCustomWithoutButtons(tr("Choose a folder on the device"), content, d.w.win)
	b.dlg.SetButtons([]fyne.CanvasObject{widget.NewButton(tr("Cancel"), func() { b.dlg.Hide() }), b.useThis})
	b.dlg.Resize(fyne.NewSize(480, 440))
	start := strings.Trim(afterStorage(strings.TrimSpace(f.entry.Text)), "/")
	b.dlg.Show()
	b.open(start)
}

// rows are the list's entries: ".." first below the top, then folders, then files.
func (b *deviceBrowser) rows() []manager.DeviceObject {
	if b.dir == "" || b.dir == "." {
		return b.objs
	}
	return append([]manager.DeviceObject{{Name: ".."}}, b.objs...)
}

// open lists folder dir on the device (in the background).
func (b *deviceBrowser) open(dir string) {
	if dir == "." || dir == "/" {
		dir = ""
	}
	b.seq++
	seq := b.seq
	b.status.SetText(tr("Reading the device…"))
	b.status.Show()
	w := b.d.w
	serial := b.d.serial
	w.background(func(ctx context.Context) func() {
		objs, err := w.m.BrowseDevice(ctx, serial, 0, dir)
		return func() {
			if seq != b.seq {
				return
			}
			if err != nil {
				if dir != "" {
					// A folder that does not exist yet (it is created at the first sync):
					// show the top instead.
					b.status.SetText(sentence(err.Error()))
					b.dir = dir
					b.objs = nil
					b.where.SetText("/" + dir)
					b.list.Refresh()
					return
				}
				b.status.SetText(sentence(err.Error()))
				return
			}
			sort.SliceStable(objs, func(i, j int) bool {
				if objs[i].Dir != objs[j].Dir {
					return objs[i].Dir
				}
				return strings.ToLower(objs[i].Name) < strings.ToLower(objs[j].Name)
			})
			b.dir, b.objs = dir, objs
			b.where.SetText("/" + dir)
			b.status.Hide()
			b.list.Refresh()
		}
	})
}
