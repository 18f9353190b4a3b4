// Package versions keeps what a sync replaces or deletes: a partnership's versions areas, where
// the old content of a file goes before Cradle overwrites or deletes it, with its path, the time
// and the reason, for 30 days by default.
//
// A partnership has up to three areas:
//
//   - Dir for the desktop's own content, in the desktop folder's .cradle/versions: on the same
//     file system as the files, so keeping a version is a hard link (or a rename), never a copy.
//   - Dir for the device's content kept on this computer, in .cradle/device-versions, where the
//     device has no room or cannot rename (the content is copied from the device first).
//   - DeviceDir for the device's content kept on the device, in the device folder's
//     .cradle/versions (a rename on the device), with a listing cached on this computer so that
//     the versions are listed while the device is away.
//
// Every kept file is named after the item, the time it was replaced and why:
// "Documents/report~20261121-101502~update.txt" (a second replacement in the same second gets
// "~20261121-101502-2~"). The name is the record: nothing else has to be written for a version
// to be listed, so a process killed at any point leaves each content either in its place or in
// an area, and an area is listed as it is. .cradle is never synced (fsstore.BuiltinIgnored).
//
// A Set is one partnership's areas: it lists them together, restores a version into the desktop
// folder (a normal change the next sync carries to the device), and removes what is older than the
// settings keep, or beyond their size cap, oldest first (Clean, at the end of a session).
package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/repl"
)

// Reason says why a version was kept.
type Reason string

// Reasons.
const (
	// Update: the other side's newer version replaced it.
	Update Reason = "update"
	// Delete: it was deleted on the other side.
	Delete Reason = "delete"
	// Conflict: the user resolved a conflict by keeping the other side's version.
	Conflict Reason = "conflict"
	// Policy: the partnership's conflict policy kept the other side's version.
	Policy Reason = "policy"
	// Restore: a restore put an older version in its place.
	Restore Reason = "restore"
)

var reasons = []Reason{Update, Delete, Conflict, Policy, Restore}

// ReasonOf is the reason a version kept for the engine's cause is recorded with ("" for
// repl.CauseNone: nothing is kept).
func ReasonOf(c repl.Cause) Reason {
	switch c {
	case repl.CauseUpdate:
		return Update
	case repl.CauseDelete:
		return Delete
	case repl.CauseConflict:
		return Conflict
	case repl.CausePolicy:
		return Policy
	}
	return ""
}

// Sides: whose content a version is.
const (
	Desktop = "desktop"
	Device  = "device"
)

// Version is one kept version of an item.
type Version struct {
	// ID names the version while it is kept (a hash of where it is kept), unique in its
	// partnership.
	ID string
	// Path is the item's path in the partnership when it was replaced, '/'-separated.
	Path string
	// Label names the item for people where its path does not (a contact's name); "" otherwise.
	Label string
	// Side is whose content it is: Desktop or Device.
	Side string
	// Time is when it was replaced, to the second.
	Time time.Time
	Size int64
	// Modified is the content's own modification time.
	Modified time.Time
	Reason   Reason
	// OnDevice is set for a version kept on the device: reading or restoring it needs the device.
	OnDevice bool

	stored string // its path inside its area, '/'-separated
}

// Stored returns where the version is inside its area ('/'-separated).
func (v Version) Stored() string { return v.stored }

// versionID is a version's ID: a short hash of where it is kept.
func versionID(where, stored string) string {
	h := sha256.Sum256([]byte(where + "\x00" + stored))
	return hex.EncodeToString(h[:5])
}

// timeLayout is how a stored name says when the version was kept.
const timeLayout = "20060102-150405"

// storedName is the name a version of the item named base gets: the stem, "~", the time, "-n"
// for the n-th of one second (n > 1), "~", the reason, then the extension, so that the kept file
// still opens with the program that opens the item.
func storedName(base string, t time.Time, r Reason, n int) string {
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	tag := t.UTC().Format(timeLayout)
	if n > 1 {
		tag += "-" + strconv.Itoa(n)
	}
	suffix := "~" + tag + "~" + string(r)
	if len(ext) > maxName/4 {
		stem, ext = base, "" // not an extension anyone would open it by
	}
	if over := len(stem) + len(suffix) + len(ext) - maxName; over > 0 {
		// Names have at most 255 bytes on the computer and on devices: a version of a name
		// near that length is kept under a shorter one (cut at a character's boundary), or it
		// could not be kept at all and the sync that replaces it would stop.
		stem = stem[:max(len(stem)-over, 0)]
		for len(stem) > 0 && !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
	}
	return stem + suffix + ext
}

// maxName is the longest name, in bytes, the file systems and devices Cradle writes to take.
const maxName = 255

var storedRE = regexp.MustCompile(`^(.*)~(\d{8}-\d{6})(?:-(\d+))?~(update|delete|conflict|policy|restore)(\.[^.]*)?$`)

// parseStored reads a stored name back: the item's name, when, the n-th in that second, why.
func parseStored(name string) (base string, t time.Time, n int, r Reason, ok bool) {
	m := storedRE.FindStringSubmatch(name)
	if m == nil {
		return "", time.Time{}, 0, "", false
	}
	t, err := time.ParseInLocation(timeLayout, m[2], time.UTC)
	if err != nil {
		return "", time.Time{}, 0, "", false
	}
	n = 1
	if m[3] != "" {
		if n, err = strconv.Atoi(m[3]); err != nil || n < 2 {
			return "", time.Time{}, 0, "", false
		}
	}
	base = m[1] + m[5]
	if base == "" {
		return "", time.Time{}, 0, "", false
	}
	return base, t, n, Reason(m[4]), true
}

// versionAt builds the Version of the file stored at rel in an area (where: "computer" or
// "device"); ok is false for a name that is no version's.
func versionAt(where, side, rel string, size int64, mod time.Time) (Version, bool) {
	dir, name := path.Split(rel)
	base, t, _, r, ok := parseStored(name)
	if !ok || !slices.Contains(reasons, r) {
		return Version{}, false
	}
	return Version{ID: versionID(where, rel), Path: dir + base, Side: side, Time: t, Size: size, Modified: mod,
		Reason: r, OnDevice: where == "device", stored: rel}, true
}

// sortVersions orders versions newest first (ties by path).
func sortVersions(vs []Version) {
	slices.SortFunc(vs, func(a, b Version) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(b.stored, a.stored)
	})
}

// Rule is how long versions are kept.
type Rule struct {
	// MaxAge is how long a version is kept; 0 keeps none past the session that made it.
	MaxAge time.Duration
	// MaxBytes caps the partnership's versions (all areas together): beyond it the oldest go
	// first. 0 means no cap.
	MaxBytes int64
}

// DefaultMaxAge is how long versions are kept unless the settings say otherwise.
const DefaultMaxAge = 30 * 24 * time.Hour

// Expired returns the versions Clean removes under rule at now: those older than MaxAge, then,
// while the rest is over MaxBytes, the oldest of them.
func (r Rule) Expired(vs []Version, now time.Time) []Version {
	var out, keep []Version
	for _, v := range vs {
		if now.Sub(v.Time) > r.MaxAge {
			out = append(out, v)
		} else {
			keep = append(keep, v)
		}
	}
	if r.MaxBytes <= 0 {
		return out
	}
	var total int64
	for _, v := range keep {
		total += v.Size
	}
	sortVersions(keep)
	for i := len(keep) - 1; i >= 0 && total > r.MaxBytes; i-- {
		out = append(out, keep[i])
		total -= keep[i].Size
	}
	return out
}

// ErrNotFound means no kept version has the ID given.
var ErrNotFound = errors.New("no such version")

// ErrDeviceAway means a version is kept on the device, which is not connected.
var ErrDeviceAway = errors.New("the version is kept on the device, which is not connected")

// Under tells whether a version's item is at p or below it (a folder); "" is everything.
func Under(v Version, p string) bool {
	p = strings.Trim(p, "/")
	return p == "" || v.Path == p || strings.HasPrefix(v.Path, p+"/")
}

// copyAll copies r to w, honouring ctx between chunks.
func copyAll(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
