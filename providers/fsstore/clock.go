package fsstore

import (
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// How finely the stores keep modification times (repl.Clock): detection checks by content the
// items whose recorded time falls within that step of the moment it was recorded.

var (
	_ repl.Clock = (*DesktopStore)(nil)
	_ repl.Clock = (*DeviceStore)(nil)
)

// TimeGranularity is two seconds on a FAT file system (a memory card or a stick mounted as the
// desktop folder) and nanoseconds elsewhere (the engine adds a second of slack for kernels that
// stamp files from a coarse clock).
func (s *DesktopStore) TimeGranularity() time.Duration {
	s.granOnce.Do(func() { s.gran = fsGranularity(s.dir) })
	return s.gran
}

// Now is the computer's clock, which stamps the desktop folder's files.
func (s *DesktopStore) Now() time.Time { return time.Now() }

// msdosSuperMagic is the f_type statfs reports for FAT (vfat, msdos).
const msdosSuperMagic = 0x4d44

func fsGranularity(dir string) time.Duration {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Type == msdosSuperMagic {
		return 2 * time.Second
	}
	return 0
}

// TimeGranularity is two seconds: MTP dates keep seconds, and a device's memory card is often FAT,
// which keeps even seconds.
func (s *DeviceStore) TimeGranularity() time.Duration { return 2 * time.Second }

// Now is the computer's clock: the device layer gives times on it.
func (s *DeviceStore) Now() time.Time { return time.Now() }
