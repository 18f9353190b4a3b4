package mtp

import (
	"slices"
	"strings"

	"github.com/cradle-sync/cradle/device"
)

// GuessKind tells what sort of handheld a DeviceInfo describes: an "android.com" vendor
// extension is a phone; an e-reader brand or model is an e-reader; a device offering PTP capture
// operations or capture formats is a camera; a phone brand or model is a phone; a device that
// plays audio formats is a media player. Anything else is device.KindUnknown.
func GuessKind(di *DeviceInfo) device.Kind {
	text := strings.ToLower(di.Manufacturer + " " + di.Model)
	has := func(words ...string) bool {
		return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(text, w) })
	}
	audio := []FormatCode{FormatMP3, FormatWMA, FormatAAC, FormatOGG, FormatFLAC, FormatWAV, FormatAIFF}
	switch {
	case di.Extension("android.com"):
		return device.KindPhone
	case has("kindle", "kobo", "pocketbook", "nook", "tolino", "boox", "remarkable", "e-reader", "ereader", "reader"):
		return device.KindEReader
	case di.Supports(OpInitiateCapture) || di.Supports(OpInitiateOpenCapture) || len(di.CaptureFormats) > 0:
		return device.KindCamera
	case has("phone", "nokia", "blackberry", "lumia"):
		return device.KindPhone
	case slices.ContainsFunc(di.PlaybackFormats, func(f FormatCode) bool { return slices.Contains(audio, f) }):
		return device.KindMediaPlayer
	}
	return device.KindUnknown
}
