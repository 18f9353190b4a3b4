package ui

import (
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/cradle-sync/cradle/manager"
)

// banner shows a message the manager sent that concerns no partnership in particular.
type banner struct {
	box   *fyne.Container
	text  *widget.Label
	close *widget.Button
}

func newBanner() *banner {
	b := &banner{text: widget.NewLabel("")}
	b.text.Wrapping = fyne.TextWrapWord
	b.text.Importance = widget.WarningImportance
	b.close = widget.NewButtonWithIcon("", theme.CancelIcon(), func() { b.box.Hide() })
	b.close.Importance = widget.LowImportance
	b.box = container.NewBorder(nil, nil, widget.NewIcon(theme.WarningIcon()), b.close, b.text)
	b.box.Hide()
	return b
}

func (b *banner) show(msg string) {
	b.text.SetText(msg)
	b.box.Show()
}

// header shows the device: icon, model, manufacturer, serial, state and storage, or what is wrong
// with it and how to fix that.
type header struct {
	w        *Window
	box      *fyne.Container
	icon     *widget.Icon
	title    *widget.Label
	subtitle *widget.Label
	state    *widget.Label
	picker   *widget.Select
	pickerID map[string]string // picker option -> deviceID
	storages *fyne.Container
	problem  *widget.Label
	help     *fyne.Container
	helpText *widget.Label
	commands *widget.RichText
	copyCmds *widget.Button
}

func newHeader(w *Window) *header {
	h := &header{w: w, pickerID: map[string]string{}}
	h.icon = widget.NewIcon(phoneIcon)
	h.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	h.title.SizeName = theme.SizeNameSubHeadingText
	h.title.Truncation = fyne.TextTruncateEllipsis
	h.subtitle = widget.NewLabel("")
	h.subtitle.Truncation = fyne.TextTruncateEllipsis
	h.state = widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	h.picker = widget.NewSelect(nil, func(s string) {
		if id, ok := h.pickerID[s]; ok {
			w.selectDevice(id)
		}
	})
	h.storages = container.NewVBox()
	h.problem = widget.NewLabel("")
	h.problem.Wrapping = fyne.TextWrapWord
	h.helpText = widget.NewLabel("")
	h.helpText.Wrapping = fyne.TextWrapWord
	// The commands (in a fixed-width font, which costs fonts loaded) are made when first shown.
	h.commands = widget.NewRichText()
	h.copyCmds = widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		w.app.Clipboard().SetContent(udevCommands())
		h.copyCmds.SetText(tr("Copied"))
	})
	h.help = container.NewVBox(h.helpText, h.commands, container.NewHBox(h.copyCmds))
	h.help.Hide()
	h.problem.Hide()
	right := container.NewVBox(h.state, h.picker)
	h.box = container.NewPadded(container.NewBorder(nil, nil,
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(64), h.icon)),
		right,
		container.NewVBox(h.title, h.subtitle, h.storages, h.problem, h.help),
	))
	return h
}

func (h *header) setTexts() {
	h.helpText.SetText(tr("Linux lets only root open this device until a udev rule gives you access. Run these commands in a terminal, then unplug the device and plug it in again:"))
	h.copyCmds.SetText(tr("Copy commands"))
	h.picker.PlaceHolder = tr("Choose a device")
}

// show fills the header with device d; all are the devices the picker offers.
func (h *header) show(d manager.DeviceInfo, all []manager.DeviceInfo) {
	h.icon.SetResource(deviceIcon(d))
	title := d.Model
	if title == "" {
		title = d.Label
	}
	h.title.SetText(title)
	var sub []string
	if d.Manufacturer != "" {
		sub = append(sub, d.Manufacturer)
	}
	if d.Kind != "" && d.Kind != "unknown" {
		sub = append(sub, kindText(d.Kind))
	}
	if d.Serial != "" {
		sub = append(sub, tr("serial {{.Serial}}", map[string]any{"Serial": d.Serial}))
	}
	if d.State == manager.DeviceStateDisconnected && !d.LastSeen.IsZero() {
		sub = append(sub, tr("last seen {{.When}}", map[string]any{"When": ago(d.LastSeen, h.w.now())}))
	}
	h.subtitle.SetText(strings.Join(sub, " · "))
	h.subtitle.Hidden = len(sub) == 0
	state, t := deviceStateText(d)
	h.state.SetText(state)
	h.state.Importance = toneImportance(t)
	h.state.Refresh()

	// The picker, when there is more than one device.
	if len(all) > 1 {
		clear(h.pickerID)
		opts := make([]string, 0, len(all))
		sel := ""
		for _, o := range all {
			name := o.Label
			if name == "" {
				name = o.Model
			}
			if o.Serial != "" {
				name += " (" + o.Serial + ")"
			}
			if _, dup := h.pickerID[name]; dup {
				name += " " + o.Key
			}
			h.pickerID[name] = deviceID(o)
			opts = append(opts, name)
			if deviceID(o) == deviceID(d) {
				sel = name
			}
		}
		if !slices.Equal(opts, h.picker.Options) {
			h.picker.SetOptions(opts)
		}
		if h.picker.Selected != sel {
			h.picker.SetSelected(sel)
		}
		h.picker.Show()
	} else {
		h.picker.Hide()
	}

	// Storage bars.
	var rows []fyne.CanvasObject
	if d.Connected() {
		for _, s := range d.Storages {
			rows = append(rows, storageRow(s))
		}
	}
	h.storages.Objects = rows
	h.storages.Hidden = len(rows) == 0

	// What is wrong, and what to do.
	switch d.State {
	case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked, manager.DeviceStateError:
		h.problem.SetText(problemText(d))
		h.problem.Importance = widget.DangerImportance
		h.problem.Show()
	case manager.DeviceStateDisconnected:
		h.problem.SetText(tr("Plug it in and unlock it to sync; Cradle starts on its own when it sees it."))
		h.problem.Importance = widget.MediumImportance
		h.problem.Show()
	default:
		h.problem.Hide()
	}
	if d.State == manager.DeviceStateNoPermission {
		if len(h.commands.Segments) == 0 {
			h.commands.Segments = []widget.RichTextSegment{&widget.TextSegment{Style: widget.RichTextStyleCodeBlock, Text: udevCommands()}}
		}
		h.help.Hidden = false
	} else {
		h.help.Hidden = true
	}
	// What is shown changed: lay the header out again.
	h.box.Refresh()
}

// problemText is what the header says about a device that cannot be used.
func problemText(d manager.DeviceInfo) string {
	var msg string
	switch d.State {
	case manager.DeviceStateBusy:
		msg = tr("Another program is using this device, often the file manager or a photo importer. Close it, or eject the device in the file manager without unplugging it; Cradle tries again on its own.")
	case manager.DeviceStateNoPermission:
		msg = tr("This computer does not let Cradle open the device.")
	case manager.DeviceStateLocked:
		msg = tr("Unlock the device, then choose \"File transfer\" in its USB notification.")
	default:
		msg = tr("The device is connected but could not be opened. Unplug it and plug it in again.")
	}
	if d.Problem != "" {
		msg += "\n" + sentence(d.Problem)
	}
	return msg
}

// storageRow is one storage's name and a bar of how full it is.
func storageRow(s manager.StorageInfo) fyne.CanvasObject {
	name := s.Description
	if name == "" {
		name = tr("Storage")
	}
	bar := widget.NewProgressBar()
	if s.Capacity > 0 {
		used := s.Capacity - min(s.Free, s.Capacity)
		bar.SetValue(float64(used) / float64(s.Capacity))
		text := tr("{{.Used}} used of {{.Capacity}} ({{.Free}} free)", map[string]any{
			"Used": humanBytes(int64(used)), "Capacity": humanBytes(int64(s.Capacity)), "Free": humanBytes(int64(s.Free))})
		bar.TextFormatter = func() string { return text }
	} else {
		bar.TextFormatter = func() string { return tr("size unknown") }
	}
	label := widget.NewLabel(name)
	if s.ReadOnly {
		label.SetText(name + " (" + tr("read-only") + ")")
	}
	return container.NewBorder(nil, nil, label, nil, bar)
}

// toneImportance is the importance (colour) of a label of that tone.
func toneImportance(t tone) widget.Importance {
	switch t {
	case toneBusy:
		return widget.HighImportance
	case toneWarning:
		return widget.WarningImportance
	case toneError:
		return widget.DangerImportance
	case toneOK:
		return widget.SuccessImportance
	}
	return widget.MediumImportance
}
