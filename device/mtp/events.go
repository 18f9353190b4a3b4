package mtp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// maxDepth bounds the walk up a parent chain when an event names an object in a folder Cradle
// has not listed (a device reporting a cycle must not hang the loop).
const maxDepth = 64

// eventQueue is how many events read from the interrupt pipe wait for the handler; past it they
// are dropped and listeners told to rescan.
const eventQueue = 1024

// loop reads events from the interrupt pipe until ctx ends (Close) or the device is gone. Each
// read has a short deadline and is re-submitted: QEMU's xHCI never completes a long one, and
// real devices do not mind. The reader never waits for anything else: events are handed to a
// second goroutine (handle), which turns handles into paths under the transaction lock. A device
// whose event write blocks until the host reads it (uMTP-Responder's holds a lock its command
// thread needs meanwhile) would otherwise never answer the transaction that holds Cradle's lock
// while an earlier event waits for it. The loop owns d.events and closes it when it returns,
// after the handler has finished.
func (d *Device) loop(ctx context.Context) {
	defer close(d.loopDone)
	queue := make(chan Container, eventQueue)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		d.handle(ctx, queue)
	}()
	defer func() {
		close(queue)
		<-handled
		if err := d.conn.gone(); err != nil && !errors.Is(err, errClosed) {
			d.emitGone()
		}
		close(d.events)
	}()
	buf := make([]byte, 512)
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.conn.goneCh:
			return
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, eventPoll)
		n, err := d.conn.t.Interrupt(rctx, buf)
		cancel()
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			continue
		case errors.Is(err, ErrTransportClosed):
			d.conn.markGone(err)
			return
		default:
			// A pipe error on the interrupt endpoint: events may have been lost, but the
			// device may still work. Listeners rescan; the loop retries more slowly.
			failures++
			if failures == 1 {
				d.log.Warn("mtp: reading device events failed", "err", err)
				d.queueLost.Store(true)
				d.wakeHandler(queue)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(failures)*eventPoll, 5*time.Second)):
			}
			continue
		}
		if n == 0 {
			continue
		}
		var ev Container
		if err := ev.UnmarshalBinary(buf[:n]); err != nil || ev.Type != ContainerEvent {
			d.log.Debug("mtp: ignoring a malformed event", "bytes", n, "err", err)
			continue
		}
		select {
		case queue <- ev:
		default:
			if d.lost.Add(1) == 1 {
				d.log.Warn("mtp: device events arrive faster than they can be resolved; some were dropped")
			}
			d.queueLost.Store(true)
		}
	}
}

// wakeHandler makes the handler notice queueLost even when no event follows.
func (d *Device) wakeHandler(queue chan<- Container) {
	select {
	case queue <- Container{}:
	default:
	}
}

// handle resolves the events the loop read, one at a time, until the queue is closed. It is the
// only goroutine that emits events.
func (d *Device) handle(ctx context.Context, queue <-chan Container) {
	for ev := range queue {
		if ctx.Err() != nil {
			continue // closing: what is left is dropped, not resolved
		}
		if d.queueLost.Swap(false) {
			d.emit(device.Event{Kind: device.EventOverflow})
		}
		if ev.Type == ContainerEvent {
			d.handleEvent(ctx, ev)
		}
	}
}

// handleEvent turns one MTP event into device events.
func (d *Device) handleEvent(ctx context.Context, ev Container) {
	code := EventCode(ev.Code)
	d.log.Debug("mtp: event", "code", code, "params", ev.Params)
	switch code {
	case EventObjectAdded, EventObjectRemoved, EventObjectInfoChanged, EventObjectPropChanged:
		if err := d.lock(ctx); err != nil {
			return
		}
		defer d.unlock()
		if err := d.objectEvent(ctx, code, ev.Param(0)); err != nil {
			d.log.Info("mtp: could not resolve an event; listeners will rescan", "event", code, "err", err)
			d.emit(device.Event{Kind: device.EventOverflow})
		}
	case EventStoreAdded:
		d.emit(device.Event{Kind: device.StorageAdded, Storage: device.StorageID(ev.Param(0))})
	case EventStoreRemoved:
		if err := d.lock(ctx); err != nil {
			return
		}
		d.cache.dropStorage(device.StorageID(ev.Param(0)))
		d.unlock()
		d.emit(device.Event{Kind: device.StorageRemoved, Storage: device.StorageID(ev.Param(0))})
	case EventDeviceReset, EventUnreportedStatus, EventDeviceInfoChanged:
		if err := d.lock(ctx); err != nil {
			return
		}
		d.cache.reset()
		d.unlock()
		d.emit(device.Event{Kind: device.EventOverflow})
	}
}

// objectEvent handles an event about object h; it runs under the lock.
func (d *Device) objectEvent(ctx context.Context, code EventCode, h uint32) error {
	old := d.cache.byHandle[h]
	if code == EventObjectRemoved {
		if old == nil {
			// Not seen in this session (handles change between sessions): the listener
			// cannot be told which object went; it rescans.
			d.emit(device.Event{Kind: device.ObjectRemoved})
			return nil
		}
		s, p := old.storage, old.path()
		d.cache.remove(old)
		d.emit(device.Event{Kind: device.ObjectRemoved, Storage: s, Path: p})
		return nil
	}
	e, err := d.objectInfo(ctx, h)
	if isResponse(err, RespInvalidObjectHandle) {
		if old != nil {
			s, p := old.storage, old.path()
			d.cache.remove(old)
			d.emit(device.Event{Kind: device.ObjectRemoved, Storage: s, Path: p})
		}
		return nil
	}
	if err != nil {
		return err
	}
	parent, p, err := d.pathOf(ctx, e)
	if err != nil {
		if errors.Is(err, device.ErrUnsafeName) {
			d.skip(h, "mtp: ignoring an event about an object with an unsafe name", "err", err)
			return nil
		}
		return err
	}
	kind := device.ObjectChanged
	if code == EventObjectAdded {
		kind = device.ObjectAdded
	}
	if old != nil {
		if oldPath := old.path(); oldPath != p || old.storage != e.storage {
			d.cache.remove(old)
			d.emit(device.Event{Kind: device.ObjectRemoved, Storage: old.storage, Path: oldPath})
			kind = device.ObjectAdded
		}
	}
	if parent != nil && parent.children != nil {
		if ch := parent.children.get(e.name); ch == nil || ch.handle == h {
			d.cache.add(parent, e)
		}
	}
	d.emit(device.Event{Kind: kind, Storage: e.storage, Path: p})
	return nil
}

// pathOf builds the path of the object e describes, walking up its parents: through the cache
// where it knows them, asking the device where it does not. It returns the parent's node when
// the cache holds it. Every name must pass device.CheckName.
func (d *Device) pathOf(ctx context.Context, e entry) (*node, string, error) {
	if err := device.CheckName(e.name); err != nil {
		return nil, "", err
	}
	p := e.name
	h := e.parent
	var parent *node
	for depth := 0; ; depth++ {
		if isRootParent(h) {
			if parent == nil && depth == 0 {
				parent = d.cache.root(e.storage)
			}
			return parent, p, nil
		}
		if n := d.cache.byHandle[h]; n != nil {
			if depth == 0 {
				parent = n
			}
			return parent, joinPath(n.path(), p), nil
		}
		if depth >= maxDepth {
			return nil, "", fmt.Errorf("%w: object %08X is more than %d folders deep", ErrProtocol, e.handle, maxDepth)
		}
		up, err := d.objectInfo(ctx, h)
		if err != nil {
			return nil, "", err
		}
		if err := device.CheckName(up.name); err != nil {
			return nil, "", err
		}
		p = up.name + "/" + p
		h = up.parent
	}
}

// emit sends an event without ever blocking the handler: when the reader is slow, events are
// dropped and counted, and the next one that fits is EventOverflow. Only the handler calls it.
func (d *Device) emit(ev device.Event) {
	if d.overflow {
		select {
		case d.events <- device.Event{Kind: device.EventOverflow}:
			d.overflow = false
		default:
			d.lost.Add(1)
			return
		}
	}
	select {
	case d.events <- ev:
	default:
		if d.lost.Add(1) == 1 {
			d.log.Warn("mtp: device events are not read fast enough; some were dropped")
		}
		d.overflow = true
	}
}

// emitGone sends DeviceGone even when the channel is full, making room by dropping the oldest
// events (the listener must rescan after a reconnection anyway).
func (d *Device) emitGone() {
	gone := device.Event{Kind: device.DeviceGone}
	select {
	case d.events <- gone:
		return
	default:
	}
	for range 2 {
		select {
		case <-d.events:
			d.lost.Add(1)
		default:
		}
	}
	d.events <- device.Event{Kind: device.EventOverflow}
	d.events <- gone
}
