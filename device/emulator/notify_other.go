//go:build !linux

package emulator

import "errors"

// openNotifier has no implementation off Linux: the watcher polls.
func openNotifier() (notifier, error) {
	return nil, errors.New("inotify is Linux-only")
}
