package manager

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EventType is a kind of event; types are bit flags, so a subscription takes a mask.
type EventType uint32

// Event types. Event.Data holds, per type:
//
//	DeviceConnected, DeviceDisconnected, DeviceNew, DeviceProblem,
//	DeviceChanged                                                    DeviceInfo
//	SessionStarted, SessionFinished                                  Session
//	SessionProgress                                                  Progress
//	ConflictAdded, ConflictResolved                                  Conflict
//	ProviderStopped, Error                                           string (what happened and what to do)
//	PartnershipChanged                                               Partnership (removed: only ID set)
//	SettingsChanged                                                  Settings
//	StatusChanged                                                    Status
//	VersionRestored                                                  Version
const (
	DeviceConnected EventType = 1 << iota
	DeviceDisconnected
	// DeviceNew is a connected device seen for the first time, without partnerships.
	DeviceNew
	// DeviceProblem is a device present but unusable (busy, no permission, locked).
	DeviceProblem
	SessionStarted
	// SessionProgress is coalesced: a few per second per session at most.
	SessionProgress
	SessionFinished
	ConflictAdded
	ConflictResolved
	// ProviderStopped is a provider plugin that exited; the next session restarts it.
	ProviderStopped
	PartnershipChanged
	SettingsChanged
	// StatusChanged is a partnership's Status that changed (state, counts, error).
	StatusChanged
	Error
	// DeviceChanged is a connected device whose information changed (free space after a
	// session, syncing or not).
	DeviceChanged
	// VersionRestored is a kept version put back (Restore, RestoreFolder).
	VersionRestored

	// EventAll matches every type.
	EventAll EventType = 1<<iota - 1
)

var eventNames = []string{
	"device-connected", "device-disconnected", "device-new", "device-problem",
	"session-started", "session-progress", "session-finished",
	"conflict-added", "conflict-resolved", "provider-stopped",
	"partnership-changed", "settings-changed", "status-changed", "error", "device-changed",
	"version-restored",
}

// String names the type ("session-finished"), or the set of types of a mask joined by "|".
func (t EventType) String() string {
	var names []string
	for i, n := range eventNames {
		if t&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Event is one thing that happened.
type Event struct {
	// Seq numbers events in the order they were published, from 1.
	Seq         uint64
	Time        time.Time
	Type        EventType
	Device      string // the device serial, when the event concerns one
	Partnership string // the partnership ID, when the event concerns one
	Data        any
}

// SubscriptionBuffer is how many events a subscriber may fall behind before it loses some.
const SubscriptionBuffer = 256

// Subscription receives the events of its mask. Close it when done.
type Subscription struct {
	bus     *bus
	mask    EventType
	ch      chan Event
	dropped atomic.Uint64
	once    sync.Once
}

// C returns the channel of events; it is closed by Close or when the Manager closes.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped returns how many events this subscriber lost because it did not keep up.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel. It is safe to call more than once.
func (s *Subscription) Close() {
	s.bus.unsubscribe(s)
}

// bus fans events out to subscribers without ever blocking the publisher (Syncthing's
// lib/events shape): each subscriber has a buffered channel, and an event that does not fit is
// dropped for that subscriber and counted.
type bus struct {
	mu     sync.Mutex
	seq    uint64
	subs   map[*Subscription]struct{}
	closed bool
	now    func() time.Time
}

func newBus() *bus {
	return &bus{subs: map[*Subscription]struct{}{}, now: time.Now}
}

func (b *bus) subscribe(mask EventType) *Subscription {
	s := &Subscription{bus: b, mask: mask, ch: make(chan Event, SubscriptionBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		s.once.Do(func() {})
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

func (b *bus) unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.once.Do(func() {
		delete(b.subs, s)
		close(s.ch)
	})
}

// publish delivers ev to every subscriber whose mask matches; it never blocks.
func (b *bus) publish(t EventType, dev, partnership string, data any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.seq++
	ev := Event{Seq: b.seq, Time: b.now(), Type: t, Device: dev, Partnership: partnership, Data: data}
	for s := range b.subs {
		if s.mask&t == 0 {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// close closes every subscription; later publishes are ignored.
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.once.Do(func() { close(s.ch) })
		delete(b.subs, s)
	}
}
