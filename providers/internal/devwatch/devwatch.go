// Package devwatch turns a device's events into a store's change notifications, for the
// providers whose device side lives on a device.Device (files, photos, contacts): the device or
// the store's storage going away is a Shutdown, lost events an Overflow, and what each provider
// makes of an event about an object is its own.
package devwatch

import (
	"context"
	"fmt"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/repl"
)

// Run reads events (from device.Subscribe) until ctx is done or the device or storage goes away,
// which it reports to notify as a Shutdown. Lost events are reported as an Overflow. Each event
// about an object of storage (or of an unnamed storage) goes to object, whose Path is "" when the
// device did not say which object. Run returns nil: it is what a repl.Notifier's Watch returns
// once watching has started.
func Run(ctx context.Context, events <-chan device.Event, storage device.StorageID, notify func(repl.Notification), object func(device.Event)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				notify(repl.Notification{Kind: repl.Shutdown, Err: fmt.Errorf("the device went away: %w", repl.ErrGone)})
				return nil
			}
			switch ev.Kind {
			case device.DeviceGone:
				notify(repl.Notification{Kind: repl.Shutdown, Err: fmt.Errorf("the device was disconnected: %w", repl.ErrGone)})
				return nil
			case device.StorageRemoved:
				if ev.Storage == storage {
					notify(repl.Notification{Kind: repl.Shutdown,
						Err: fmt.Errorf("storage %d was removed from the device: %w", storage, repl.ErrGone)})
					return nil
				}
			case device.EventOverflow:
				notify(repl.Notification{Kind: repl.Overflow})
			case device.ObjectAdded, device.ObjectRemoved, device.ObjectChanged:
				if ev.Storage == storage || ev.Storage == 0 {
					object(ev)
				}
			}
		}
	}
}

// Kind is the notification an object event is: created, deleted or modified.
func Kind(k device.EventKind) repl.NotifyKind {
	switch k {
	case device.ObjectAdded:
		return repl.ItemCreated
	case device.ObjectRemoved:
		return repl.ItemDeleted
	}
	return repl.ItemModified
}
