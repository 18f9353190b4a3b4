package ui

import (
	_ "embed"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/cradle-sync/cradle/manager"
)

// Device icons fyne's theme does not have, drawn for Cradle (themed: they take the text colour).
var (
	//go:embed icons/phone.svg
	phoneSVG []byte
	//go:embed icons/camera.svg
	cameraSVG []byte
	//go:embed icons/ereader.svg
	ereaderSVG []byte

	phoneIcon   = theme.NewThemedResource(fyne.NewStaticResource("phone.svg", phoneSVG))
	cameraIcon  = theme.NewThemedResource(fyne.NewStaticResource("camera.svg", cameraSVG))
	ereaderIcon = theme.NewThemedResource(fyne.NewStaticResource("ereader.svg", ereaderSVG))
)

// deviceIcon is the icon of a kind of device; a device that cannot be used shows a warning.
func deviceIcon(d manager.DeviceInfo) fyne.Resource {
	switch d.State {
	case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked, manager.DeviceStateError:
		return theme.WarningIcon()
	}
	switch d.Kind {
	case "phone":
		return phoneIcon
	case "camera":
		return cameraIcon
	case "media-player":
		return theme.MediaMusicIcon()
	case "e-reader":
		return ereaderIcon
	case "storage":
		return theme.StorageIcon()
	}
	return phoneIcon
}

// providerIcon is the theme icon a provider declares ("folder", "media-photo", "account": the
// names of fyne's theme icons, in either spelling), or a document for none.
func providerIcon(name string) fyne.Resource {
	if name == "" {
		return theme.DocumentIcon()
	}
	parts := strings.Split(name, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = capitalize(parts[i])
	}
	if res := theme.Current().Icon(fyne.ThemeIconName(strings.Join(parts, ""))); res != nil {
		return res
	}
	return theme.DocumentIcon()
}

// toneIcon is the icon beside a status line of that tone.
func toneIcon(t tone) fyne.Resource {
	switch t {
	case toneBusy:
		return theme.ViewRefreshIcon()
	case toneWarning:
		return theme.WarningIcon()
	case toneError:
		return theme.ErrorIcon()
	case toneMuted:
		return theme.MediaPauseIcon()
	case toneOK:
		return theme.ConfirmIcon()
	}
	return theme.InfoIcon()
}
