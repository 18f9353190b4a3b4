package folder

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Mount is one line of /proc/self/mountinfo, as much of it as Cradle uses.
type Mount struct {
	Major, Minor uint32 // the file system's device number (st_dev)
	Point        string // the mount point, unescaped
	FSType       string // "vfat", "exfat", "ext4", ...
	Source       string // "/dev/sdb1", "tmpfs", ...
	ReadOnly     bool
}

// ReadMounts parses a mountinfo table (the format of /proc/self/mountinfo). Lines it cannot
// read are skipped: the kernel writes the file, and a line of a new format must not hide the
// others.
func ReadMounts(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		m, ok := parseMountLine(sc.Text())
		if ok {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// parseMountLine reads "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw".
func parseMountLine(line string) (Mount, bool) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return Mount{}, false
	}
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+2 >= len(f) {
		return Mount{}, false
	}
	majmin := strings.SplitN(f[2], ":", 2)
	if len(majmin) != 2 {
		return Mount{}, false
	}
	maj, err1 := strconv.ParseUint(majmin[0], 10, 32)
	min, err2 := strconv.ParseUint(majmin[1], 10, 32)
	if err1 != nil || err2 != nil {
		return Mount{}, false
	}
	ro := false
	for _, o := range strings.Split(f[5], ",") {
		if o == "ro" {
			ro = true
		}
	}
	return Mount{
		Major:    uint32(maj),
		Minor:    uint32(min),
		Point:    unescapeMount(f[4]),
		FSType:   f[sep+1],
		Source:   unescapeMount(f[sep+2]),
		ReadOnly: ro,
	}, true
}

// unescapeMount undoes the octal escapes (\040 for a space, \011, \012, \134) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsFile is the mount table the package reads; tests point it elsewhere.
var mountsFile = "/proc/self/mountinfo"

func currentMounts() ([]Mount, error) {
	f, err := os.Open(mountsFile)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return ReadMounts(f)
}

// mountAt returns the mount whose mount point is dir, if dir is one (the last such line wins, as
// a later mount hides an earlier one at the same point).
func mountAt(mounts []Mount, dir string) (Mount, bool) {
	var found Mount
	ok := false
	for _, m := range mounts {
		if m.Point == dir {
			found, ok = m, true
		}
	}
	return found, ok
}

// devNumber splits a Linux dev_t into major and minor numbers.
func devNumber(dev uint64) (major, minor uint32) {
	major = uint32((dev>>8)&0xfff | (dev>>32)&^uint64(0xfff))
	minor = uint32(dev&0xff | (dev>>12)&^uint64(0xff))
	return major, minor
}

// byIDLink finds the entry of a /dev/disk/by-* folder whose block device has the given number.
func byIDLink(folder string, major, minor uint32) string {
	entries, err := os.ReadDir(folder)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(folder, e.Name()), &st) != nil {
			continue
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFBLK {
			continue
		}
		if ma, mi := devNumber(st.Rdev); ma == major && mi == minor {
			return unescapeUdev(e.Name())
		}
	}
	return ""
}

// unescapeUdev undoes udev's \x20-style escapes in /dev/disk/by-label names.
func unescapeUdev(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sysfsAttr reads a block device's vendor or model from sysfs, trying the partition's parent
// disk too.
func sysfsAttr(major, minor uint32, attr string) string {
	base := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	for _, p := range []string{base + "/device/" + attr, base + "/../device/" + attr} {
		if b, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return s
			}
		}
	}
	return ""
}

// pathSerial is the serial of a folder that is not a mount point of its own: a stable hash of
// its absolute path.
func pathSerial(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return "folder-" + hex.EncodeToString(sum[:8])
}

// identify fills in what Cradle shows of a folder device. A mount point of a block device with a
// file system UUID gets that UUID as its serial (the same drive keeps its serial wherever it is
// mounted); anything else gets a hash of its absolute path.
func identify(abs string) (serial, manufacturer, model string) {
	serial, manufacturer, model = pathSerial(abs), "Folder", filepath.Base(abs)
	mounts, err := currentMounts()
	if err != nil {
		return serial, manufacturer, model
	}
	m, ok := mountAt(mounts, abs)
	if !ok {
		return serial, manufacturer, model
	}
	if uuid := byIDLink("/dev/disk/by-uuid", m.Major, m.Minor); uuid != "" {
		serial = uuid
	}
	if v := sysfsAttr(m.Major, m.Minor, "vendor"); v != "" {
		manufacturer = v
	}
	if label := byIDLink("/dev/disk/by-label", m.Major, m.Minor); label != "" {
		model = label
	} else if v := sysfsAttr(m.Major, m.Minor, "model"); v != "" {
		model = v
	}
	return serial, manufacturer, model
}
