package photos

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/rwcarlsen/goexif/exif"
)

// mediaExts are the extensions imported: pictures, camera RAW files and videos.
var mediaExts = map[string]bool{
	// pictures
	".jpg": true, ".jpeg": true, ".heic": true, ".heif": true, ".png": true, ".gif": true,
	".webp": true, ".avif": true, ".tif": true, ".tiff": true, ".bmp": true,
	// camera RAW
	".dng": true, ".cr2": true, ".cr3": true, ".nef": true, ".nrw": true, ".arw": true,
	".srf": true, ".sr2": true, ".raf": true, ".orf": true, ".rw2": true, ".pef": true,
	".srw": true, ".x3f": true, ".raw": true,
	// videos
	".mp4": true, ".mov": true, ".3gp": true, ".3g2": true, ".m4v": true, ".mkv": true,
	".avi": true, ".mts": true, ".m2ts": true, ".webm": true, ".mpg": true, ".mpeg": true,
}

// IsMedia tells whether a file name has the extension of a picture, a RAW file or a video
// (compared without case) and is not one of the names never synced (fsstore.BuiltinIgnored).
func IsMedia(name string) bool {
	b := path.Base(name)
	if fsstore.BuiltinIgnored(b) || strings.HasPrefix(b, ".") {
		return false // hidden files: thumbnails caches, trashed items (.trashed-*), pending (.pending-*)
	}
	return mediaExts[strings.ToLower(path.Ext(b))]
}

// exifDate returns the picture's EXIF DateTimeOriginal, as written by the camera (its local
// time, kept as wall-clock time in UTC so that the date does not shift with the computer's zone).
// ok is false when the file has no such field (videos, PNGs, edited images, HEIC).
func exifDate(p string) (time.Time, bool) {
	f, err := os.Open(p)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	x, err := exif.Decode(bufio.NewReaderSize(f, 64<<10))
	if err != nil || x == nil {
		return time.Time{}, false
	}
	tag, err := x.Get(exif.DateTimeOriginal)
	if err != nil {
		return time.Time{}, false
	}
	s, err := tag.StringVal()
	if err != nil {
		return time.Time{}, false
	}
	return parseExifTime(s)
}

// parseExifTime reads "2006:01:02 15:04:05" (with lenient trailing text, as some cameras write).
func parseExifTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(strings.TrimRight(s, "\x00"))
	if len(s) < 19 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006:01:02 15:04:05", s[:19])
	if err != nil || t.Year() < 1900 || strings.HasPrefix(s, "0000") {
		return time.Time{}, false
	}
	return t, true
}

// dateFolder is the library folder for a picture taken at t: "2024/2024-03-14".
func dateFolder(t time.Time) string {
	return fmt.Sprintf("%04d/%04d-%02d-%02d", t.Year(), t.Year(), int(t.Month()), t.Day())
}

// hashReader returns the hex SHA-256 of everything r yields.
func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hashCache remembers content hashes by (name, size, modification time), so that an unchanged
// file is never read again to learn its hash. It lives in a file of the partnership's state
// folder: one line per entry, appended as hashes are learned, rewritten by compact.
//
// Concurrency: safe for use from several goroutines.
type hashCache struct {
	path string
	mu   sync.Mutex
	m    map[string]cached
	used map[string]bool // names looked up or added since the last compact
	log  *os.File
}

type cached struct {
	size  int64
	mtime int64
	hash  string
}

func openHashCache(p string) (*hashCache, error) {
	c := &hashCache{path: p, m: map[string]cached{}, used: map[string]bool{}}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		head, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		fl := strings.Fields(head)
		if len(fl) != 3 {
			continue
		}
		size, err1 := strconv.ParseInt(fl[0], 10, 64)
		mt, err2 := strconv.ParseInt(fl[1], 10, 64)
		if err1 != nil || err2 != nil || len(fl[2]) != 64 {
			continue
		}
		c.m[name] = cached{size, mt, fl[2]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return c, nil
}

func (c *hashCache) get(name string, size int64, mt time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used[name] = true
	e, ok := c.m[name]
	if !ok || e.size != size || e.mtime != mt.UnixNano() {
		return "", false
	}
	return e.hash, true
}

func (c *hashCache) put(name string, size int64, mt time.Time, hash string) error {
	if strings.ContainsAny(name, "\n\t") {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used[name] = true
	e := cached{size, mt.UnixNano(), hash}
	if c.m[name] == e {
		return nil
	}
	c.m[name] = e
	if c.log == nil {
		f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("write %s: %w", c.path, err)
		}
		c.log = f
	}
	if _, err := fmt.Fprintf(c.log, "%d %d %s\t%s\n", e.size, e.mtime, e.hash, name); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	return nil
}

// compact rewrites the cache with only the names used since the last compact (after a full
// enumeration: the names that still exist).
func (c *hashCache) compact() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for name, e := range c.m {
		if !c.used[name] {
			delete(c.m, name)
			continue
		}
		fmt.Fprintf(&b, "%d %d %s\t%s\n", e.size, e.mtime, e.hash, name)
	}
	c.used = map[string]bool{}
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	if err := fsutil.WriteFileAtomic(c.path, []byte(b.String()), fsutil.WriteOptions{TempName: fsstore.TempName()}); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	return nil
}

func (c *hashCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return nil
	}
	err := c.log.Close()
	c.log = nil
	return err
}
