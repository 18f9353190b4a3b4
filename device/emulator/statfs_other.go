//go:build !(linux || darwin || freebsd)

package emulator

import "errors"

// diskSpace is not known on this system: the storage reports no capacity.
func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space is not known on this system")
}
