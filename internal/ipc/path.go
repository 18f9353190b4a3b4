package ipc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// RuntimeDir returns the folder of this user's Cradle sockets: cradle/ in $XDG_RUNTIME_DIR
// (private to the user, emptied at logout), or /tmp/cradle-UID when the session has none (over
// ssh, in a container). It does not create it.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		if st, err := os.Stat(d); err == nil && st.IsDir() && owner(st) == os.Getuid() {
			return filepath.Join(d, "cradle")
		}
	}
	return filepath.Join("/tmp", "cradle-"+strconv.Itoa(os.Getuid()))
}

// SocketPath returns the socket of the Cradle that owns the config folder configDir (an
// absolute path): one per config folder, so that Cradles with other --config folders do not
// meet.
func SocketPath(configDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(configDir)))
	return filepath.Join(RuntimeDir(), "cradle-"+hex.EncodeToString(sum[:8])+".sock")
}

// maxSocketPath is the longest path a unix socket address holds (sun_path less its NUL).
const maxSocketPath = 107

// privateDir creates dir (mode 0700) when missing and checks that it is a folder of this user's
// that no one else may enter: another user's folder at that place could otherwise catch the
// commands.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	switch {
	case !st.IsDir():
		return fmt.Errorf("%s is not a folder; remove it", dir)
	case owner(st) != os.Getuid():
		return fmt.Errorf("%s belongs to another user (uid %d); remove it", dir, owner(st))
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s may be entered by other users (mode %04o); make it private with chmod 700", dir, st.Mode().Perm())
	}
	return nil
}

func owner(st os.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid)
	}
	return -1
}
