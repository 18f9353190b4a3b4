package versions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
)

// DeviceDir is a versions area in a folder on a device. Keeping a version there is a rename on
// the device: the old content never leaves the device and costs no transfer. What the area holds
// is also listed in a cache on this computer (in the partnership's state folder), written before
// each rename, so that the versions are listed while the device is away and Clean removes what
// expired without walking the device.
//
// Concurrency: safe for use from several goroutines.
type DeviceDir struct {
	dev     device.Device // nil while the device is away: only the cache is read
	storage device.StorageID
	root    string // the area's device path
	cache   string // the cached listing on this computer; "" for none
	now     func() time.Time
	mu      sync.Mutex
}

// cachedVersion is one version in the cache.
type cachedVersion struct {
	Stored   string    `json:"stored"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// NewDeviceDir returns the area at the device path root of storage on dev (nil while the device
// is away), with its listing cached in the file cache.
func NewDeviceDir(dev device.Device, storage device.StorageID, root, cache string) *DeviceDir {
	return &DeviceDir{dev: dev, storage: storage, root: strings.Trim(root, "/"), cache: cache, now: time.Now}
}

// SetClock replaces the clock that dates the versions kept (tests).
func (d *DeviceDir) SetClock(now func() time.Time) { d.now = now }

func (d *DeviceDir) full(stored string) string { return d.root + "/" + stored }

// Keep moves the device's object at devPath (the item rel, of size bytes, modified mod) into the
// area with a rename on the device. It is listed in the cache first: a process killed before the
// rename leaves the object in its place and an entry the next listing drops.
func (d *DeviceDir) Keep(ctx context.Context, devPath, rel string, r Reason, size int64, mod time.Time) error {
	if d.dev == nil {
		return fmt.Errorf("keep a version of %s on the device: %w", rel, ErrDeviceAway)
	}
	if rel == "" || badRel(rel) {
		return fmt.Errorf("keep a version of %q: not a relative path", rel)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, base := path.Split(rel)
	t := d.now()
	var stored string
	for n := 1; ; n++ {
		if n == 1000 {
			return fmt.Errorf("keep a version of %s: a thousand versions in one second", rel)
		}
		stored = dir + storedName(base, t, r, n)
		_, err := d.dev.Stat(ctx, d.storage, d.full(stored))
		if errors.Is(err, device.ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("keep a version of %s on the device: %w", rel, err)
		}
	}
	if _, err := d.dev.Mkdir(ctx, d.storage, path.Dir(d.full(stored))); err != nil {
		return fmt.Errorf("keep a version of %s on the device: create its folder: %w", rel, err)
	}
	list, err := d.readCache()
	if err != nil {
		return err
	}
	if err := d.writeCache(append(list, cachedVersion{Stored: stored, Size: size, Modified: mod})); err != nil {
		return err
	}
	if err := d.dev.Rename(ctx, d.storage, devPath, d.full(stored)); err != nil {
		return fmt.Errorf("keep a version of %s on the device: %w", rel, err)
	}
	return nil
}

// List returns the versions in the area, newest first: walked on the device when it is here
// (which refreshes the cache), else as the cache has them.
func (d *DeviceDir) List(ctx context.Context) ([]Version, error) {
	if d.dev == nil {
		return d.Cached()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var found []cachedVersion
	err := d.dev.Walk(ctx, d.storage, d.root, func(o device.Object) error {
		if o.Dir {
			return nil
		}
		rel, ok := strings.CutPrefix(o.Path, d.root+"/")
		if !ok {
			return nil
		}
		found = append(found, cachedVersion{Stored: rel, Size: o.Size, Modified: o.ModTime})
		return nil
	})
	if errors.Is(err, device.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the versions on the device: %w", err)
	}
	if err := d.writeCache(found); err != nil {
		return nil, err
	}
	return d.versions(found), nil
}

// Cached returns the versions the cache lists, newest first.
func (d *DeviceDir) Cached() ([]Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list, err := d.readCache()
	if err != nil {
		return nil, err
	}
	return d.versions(list), nil
}

func (d *DeviceDir) versions(list []cachedVersion) []Version {
	var out []Version
	for _, c := range list {
		if v, ok := versionAt("device", Device, c.Stored, c.Size, c.Modified); ok {
			out = append(out, v)
		}
	}
	sortVersions(out)
	return out
}

// Open returns a version's content from the device.
func (d *DeviceDir) Open(ctx context.Context, v Version) (io.ReadCloser, error) {
	if d.dev == nil {
		return nil, fmt.Errorf("read the version of %s: %w", v.Path, ErrDeviceAway)
	}
	rc, err := d.dev.Open(ctx, d.storage, d.full(v.stored), 0)
	if err != nil {
		return nil, fmt.Errorf("read the version of %s on the device: %w", v.Path, err)
	}
	return rc, nil
}

// Remove deletes a version from the device and the cache, and the area's folders it leaves
// empty.
func (d *DeviceDir) Remove(ctx context.Context, v Version) error {
	if d.dev == nil {
		return fmt.Errorf("remove the version of %s: %w", v.Path, ErrDeviceAway)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.full(v.stored)
	if err := d.dev.Delete(ctx, d.storage, p); err != nil && !errors.Is(err, device.ErrNotFound) {
		return fmt.Errorf("remove the version %s on the device: %w", p, err)
	}
	for dir := path.Dir(p); dir != d.root && strings.HasPrefix(dir, d.root+"/"); dir = path.Dir(dir) {
		if d.dev.Delete(ctx, d.storage, dir) != nil {
			break // not empty
		}
	}
	list, err := d.readCache()
	if err != nil {
		return err
	}
	out := list[:0]
	for _, c := range list {
		if c.Stored != v.stored {
			out = append(out, c)
		}
	}
	return d.writeCache(out)
}

func (d *DeviceDir) readCache() ([]cachedVersion, error) {
	if d.cache == "" {
		return nil, nil
	}
	b, err := os.ReadFile(d.cache)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of versions on the device %s: %w", d.cache, err)
	}
	var list []cachedVersion
	if err := json.Unmarshal(b, &list); err != nil {
		// Only a cache: the next listing with the device walks the area again.
		return nil, nil
	}
	return list, nil
}

func (d *DeviceDir) writeCache(list []cachedVersion) error {
	if d.cache == "" {
		return nil
	}
	if len(list) == 0 {
		if err := os.Remove(d.cache); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write the list of versions on the device %s: %w", d.cache, err)
		}
		return nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(d.cache, b, fsutil.WriteOptions{}); err != nil {
		return fmt.Errorf("write the list of versions on the device %s: %w", d.cache, err)
	}
	return nil
}
