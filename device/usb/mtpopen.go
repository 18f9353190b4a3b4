package usb

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/mtp"
)

// quirks are initiator options for devices that need them, by USB vendor and product ID.
var quirks = map[[2]uint16]func(*mtp.Options){
	// QEMU's usb-mtp stalls on a zero-length packet that would end a data phase to it.
	{0x46f4, 0x0004}: func(o *mtp.Options) { o.NoZeroLengthOut = true },
}

// OpenMTP opens an MTP session over t with device/mtp's initiator: Monitor's default Open. The
// USB serial number stands in when the device reports none. It owns t: a failed open closes it.
func OpenMTP(ctx context.Context, t *Transport, f Found) (device.Device, error) {
	return openMTP(ctx, t, f, nil)
}

func openMTP(ctx context.Context, t *Transport, f Found, log *slog.Logger) (device.Device, error) {
	opts := mtp.Options{Transport: "mtp-usb", Serial: f.Serial, Location: f.dev.portPath(), Logger: log}
	// CRADLE_MTP_TIMEOUT (a Go duration, "90s") changes how long a phone may stay silent in the
	// middle of a transaction: longer for a slow one, shorter for tests.
	if d, err := time.ParseDuration(os.Getenv("CRADLE_MTP_TIMEOUT")); err == nil && d > 0 {
		opts.Timeout = d
	}
	if q, ok := quirks[[2]uint16{f.Vendor, f.Product}]; ok {
		q(&opts)
	}
	d, err := mtp.Open(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}
