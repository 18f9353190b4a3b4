package mtp

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// The device's clock. Android and uMTP-Responder report dates as the phone's wall clock without a
// zone, and honour only a trailing 'Z' on dates they are sent. Cradle sends dates in UTC with 'Z'
// and learns the phone's zone: at Open, on phones (Android's and Samsung's MTP stacks), from a
// probe file it writes with a known date and deletes; later from any file it sends. A phone whose
// zone changed between two sessions so keeps every file's instant: a uniform shift of its wall
// clock is never taken for edits.

// phoneStack tells whether the device runs Android's MTP server (or Samsung's, which does not
// say android.com): those report dates in the phone's own zone and show files whose name starts
// with a dot, so a probe file can be written and found.
func phoneStack(di *DeviceInfo) bool {
	return di.Extension("android.com") || strings.Contains(strings.ToLower(di.Manufacturer), "samsung")
}

// metaFolder is the folder at a storage's root where Cradle keeps the device's sync state.
const metaFolder = ".cradle"

// probeZone runs under the lock, with the event loop running: a device whose event writes
// block until they are read (uMTP-Responder) raises one for the probe, and would otherwise never
// answer.
//
// probeZone learns the phone's zone from a probe file in Cradle's folder of the first storage (or
// its root): written with a known date, read back, deleted. Nothing is learned from a locked phone (no storage) or one that
// refuses; the first file Cradle sends teaches it then. It runs before the event loop starts.
func (d *Device) probeZone(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, _, err := d.conn.dataset(ctx, OpGetStorageIDs)
	if err != nil {
		return
	}
	ids, err := UnmarshalHandles(b)
	if err != nil {
		return
	}
	var sid uint32
	for _, id := range ids {
		if id&0xFFFF != 0 {
			sid = id
			break
		}
	}
	if sid == 0 {
		return
	}
	defer d.cache.reset()
	// The probe goes into Cradle's own folder (.cradle, where it keeps the device's sync state)
	// when there is one, so that nothing the user syncs is touched; before the first sync made
	// it, into the root (and is deleted there).
	root := d.cache.root(device.StorageID(sid))
	folder, err := d.child(ctx, root, metaFolder)
	if err != nil {
		d.log.Debug("mtp: no clock probe", "err", err)
		return
	}
	if folder == nil || !folder.dir {
		folder = root
	}
	// The probe is dated now: the phone's offset of this season.
	probeTime := time.Now().Truncate(time.Second)
	name := ".cradle-clock-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	oi := ObjectInfo{StorageID: sid, ObjectFormat: FormatUndefined, ParentObject: parentField(folder), Filename: name,
		ModificationDate: probeTime}
	h, err := d.sendObjectInfo(ctx, folder, &oi)
	if err != nil {
		d.log.Debug("mtp: no clock probe", "err", err)
		return
	}
	if _, err := d.conn.do(ctx, call{op: OpSendObject, send: bytes.NewReader(nil), sendSize: 0}); err != nil {
		d.log.Debug("mtp: no clock probe", "err", err)
	}
	// The probe is found behind its handle or by its name (a device may register it late);
	// only the object known to be the probe is ever deleted.
	e, found, _, err := d.find(ctx, folder, h, name, false, 3*time.Second, func(entry) bool { return true })
	if err != nil || !found {
		d.log.Warn("mtp: the clock probe cannot be found to delete it", "name", name, "err", err)
		return
	}
	if _, err := d.conn.do(ctx, call{op: OpDeleteObject, params: []uint32{e.handle, 0}}); err != nil {
		d.log.Warn("mtp: could not delete the clock probe", "name", name, "err", err)
	}
	d.learnZone(probeTime, &e)
}

// learnZone learns the device's time zone from the date it reports for an object Cradle just
// sent with modTime (in UTC, which devices honour): a device that reports dates as its own wall
// clock without a zone shows them shifted by whole quarter hours from what Cradle reads in the
// zone it assumed. e's date is corrected, and so is every date read from then on. A device that
// did not keep the date (it shows the time of the upload) teaches nothing. It runs under the lock.
func (d *Device) learnZone(modTime time.Time, e *entry) {
	const quarter = 15 * time.Minute
	diff := e.mtime.Sub(modTime.Truncate(time.Second))
	k := (diff + quarter/2).Truncate(quarter)
	if diff < 0 {
		k = (diff - quarter/2).Truncate(quarter)
	}
	if k == 0 || k.Abs() > 14*time.Hour || (diff-k).Abs() > 2*time.Second {
		return
	}
	_, off := e.mtime.In(d.zone).Zone()
	off += int(k / time.Second)
	name := fmt.Sprintf("device UTC%+03d:%02d", off/3600, (off%3600+3600)%3600/60)
	if _, local := modTime.In(time.Local).Zone(); local == off {
		// The phone keeps the computer's zone: its rules (daylight saving) apply all year.
		d.zone, name = time.Local, time.Local.String()
	} else {
		// Only the offset is known, not the zone's rules: dates of the other season read an
		// hour off, but consistently from one session to the next.
		d.zone = time.FixedZone(name, off)
	}
	e.mtime = e.mtime.Add(-k)
	d.log.Info("mtp: the device reports dates in another time zone than the computer's; reading them in its zone", "zone", name)
}
