package mtp

import "time"

// SetCreatedWait shortens the search for a new object the device does not show, for a test; the
// returned function restores it.
func SetCreatedWait(d time.Duration) (restore func()) {
	old := createdWait
	createdWait = d
	return func() { createdWait = old }
}
