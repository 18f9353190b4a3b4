package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/repl"
)

// Set is one partnership's versions: the desktop's content (Desktop), the device's content kept
// on this computer (DeviceHere) and on the device (Device), any of them nil. A provider that
// keeps versions gives its partnership's Set in providers.Instance.Versions; the service
// manager lists, restores and cleans through it.
type Set struct {
	// Root is the desktop folder: a version is restored at its path there.
	Root       string
	Desktop    *Dir
	DeviceHere *Dir
	Device     *DeviceDir
	// TempName names the temporary file a restore writes in Root's folders before renaming it
	// into place: a name the desktop store skips (fsstore.TempName).
	TempName func() string
	// Label, when set, names a version for people from its content (a contact's name).
	Label func(content []byte) string
	// Units, when set, reads a version's change units from its content (a contact's fields),
	// for previews.
	Units func(content []byte) (repl.Units, error)
}

// List returns every version of the partnership, newest first. The device's are walked on the
// device when it is connected, else taken from the cached listing.
func (s *Set) List(ctx context.Context) ([]Version, error) {
	var out []Version
	for _, d := range []*Dir{s.Desktop, s.DeviceHere} {
		if d == nil {
			continue
		}
		vs, err := d.List()
		if err != nil {
			return nil, err
		}
		for i := range vs {
			vs[i].Label = s.label(d, vs[i])
		}
		out = append(out, vs...)
	}
	if s.Device != nil {
		vs, err := s.Device.List(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	sortVersions(out)
	return out, nil
}

func (s *Set) label(d *Dir, v Version) string {
	if s.Label == nil {
		return ""
	}
	f, err := os.Open(d.Path(v))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	return s.Label(b)
}

// Find returns the version with the ID given (ErrNotFound when none has it).
func (s *Set) Find(ctx context.Context, id string) (Version, error) {
	vs, err := s.List(ctx)
	if err != nil {
		return Version{}, err
	}
	for _, v := range vs {
		if v.ID == id {
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("version %s: %w", id, ErrNotFound)
}

// dir returns the area on this computer that holds v, nil for the device's.
func (s *Set) dir(v Version) *Dir {
	switch {
	case v.OnDevice:
		return nil
	case v.Side == Device:
		return s.DeviceHere
	}
	return s.Desktop
}

// Open returns a version's content.
func (s *Set) Open(ctx context.Context, v Version) (io.ReadCloser, error) {
	if v.OnDevice {
		if s.Device == nil {
			return nil, fmt.Errorf("read the version of %s: %w", v.Path, ErrDeviceAway)
		}
		return s.Device.Open(ctx, v)
	}
	d := s.dir(v)
	if d == nil {
		return nil, fmt.Errorf("read the version of %s: %w", v.Path, ErrNotFound)
	}
	return d.Open(v)
}

// Where returns the file that holds a version on this computer ("" for one kept on the device).
func (s *Set) Where(v Version) string {
	if d := s.dir(v); d != nil {
		return d.Path(v)
	}
	return ""
}

// ErrExists means a restore's target is taken.
var ErrExists = errors.New("already exists")

// Restore puts version v back and returns the file it wrote: at the version's path in the desktop
// folder, or at to (a file on this computer) when to is not "". What is at the version's path now
// is kept as a version first (reason Restore); a file at to is never replaced. The restored file
// has the version's content and modification time, written atomically; for the sync it is a
// change the user made, which the next sync carries to the device.
func (s *Set) Restore(ctx context.Context, v Version, to string) (string, error) {
	target, rel := to, ""
	if target == "" {
		if s.Root == "" {
			return "", fmt.Errorf("restore %s: the partnership has no desktop folder", v.Path)
		}
		target, rel = filepath.Join(s.Root, filepath.FromSlash(v.Path)), v.Path
	}
	fi, err := os.Lstat(target)
	switch {
	case err == nil && to != "":
		return "", fmt.Errorf("restore %s: %s %w; choose another name or move it away", v.Path, target, ErrExists)
	case err == nil && !fi.Mode().IsRegular():
		return "", fmt.Errorf("restore %s: a folder of that name %w (%s); rename it first", v.Path, ErrExists, target)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("restore %s: %w", v.Path, err)
	}
	replace := err == nil
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("restore %s: create %s (is a file in the way?): %w", v.Path, dir, err)
	}
	rc, err := s.Open(ctx, v)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	name := ".cradle-part-restore"
	if s.TempName != nil {
		name = s.TempName()
	}
	tmp := filepath.Join(dir, name)
	if err := writeTemp(ctx, tmp, rc, v.Modified); err != nil {
		return "", fmt.Errorf("restore %s: %w", v.Path, err)
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if replace && rel != "" && s.Desktop != nil {
		if err := s.Desktop.KeepReplaced(target, rel, Restore); err != nil {
			return "", fmt.Errorf("restore %s: %w", v.Path, err)
		}
	}
	if to != "" {
		// Never over a file that appeared meanwhile.
		if err := os.Link(tmp, target); err != nil {
			return "", fmt.Errorf("restore %s to %s: %w", v.Path, target, err)
		}
		os.Remove(tmp)
	} else if err := os.Rename(tmp, target); err != nil {
		return "", fmt.Errorf("restore %s: %w", v.Path, err)
	}
	done = true
	if err := fsutil.SyncDir(dir); err != nil {
		return "", fmt.Errorf("restore %s: %w", v.Path, err)
	}
	return target, nil
}

// writeTemp copies r into a new file at p, synced and dated mod.
func writeTemp(ctx context.Context, p string, r io.Reader, mod time.Time) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(p)
		}
	}()
	if _, err := copyAll(ctx, f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !mod.IsZero() {
		if err := os.Chtimes(p, mod, mod); err != nil {
			return err
		}
	}
	ok = true
	return nil
}

// Remove deletes a kept version.
func (s *Set) Remove(ctx context.Context, v Version) error {
	if v.OnDevice {
		if s.Device == nil {
			return fmt.Errorf("remove the version of %s: %w", v.Path, ErrDeviceAway)
		}
		return s.Device.Remove(ctx, v)
	}
	if d := s.dir(v); d != nil {
		return d.Remove(v)
	}
	return nil
}

// Clean removes the versions rule no longer keeps at now, oldest first, and returns how many. The
// device's are known from the cached listing (no walk of the device); those are removed only
// while the device is connected.
func (s *Set) Clean(ctx context.Context, rule Rule, now time.Time) (int, error) {
	var all []Version
	for _, d := range []*Dir{s.Desktop, s.DeviceHere} {
		if d == nil {
			continue
		}
		vs, err := d.List()
		if err != nil {
			return 0, err
		}
		all = append(all, vs...)
	}
	if s.Device != nil {
		vs, err := s.Device.Cached()
		if err != nil {
			return 0, err
		}
		all = append(all, vs...)
	}
	n := 0
	var errs []error
	for _, v := range rule.Expired(all, now) {
		if v.OnDevice && (s.Device == nil || s.Device.dev == nil) {
			continue
		}
		if err := s.Remove(ctx, v); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
