package device

import "sync"

// A device has one Events channel, and a receive takes an event from every other reader. Every
// store that watches a device (several partnerships can share one phone) reads through Subscribe,
// which fans the channel out.

var (
	hubsMu sync.Mutex
	hubs   = map[Device]*hub{}
)

// hub reads one device's Events and copies each event to every subscriber.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]bool
}

type subscriber struct {
	ch       chan Event
	overflow bool // an EventOverflow is owed
	closed   bool
}

// subscriberBuffer is each subscriber's channel capacity; a subscriber that falls further behind
// loses events and then receives EventOverflow.
const subscriberBuffer = 1024

// Subscribe returns a channel that receives every event of dev from now on, and a function
// that ends the subscription (safe to call more than once). The channel is closed after the
// device's own Events channel closes (after DeviceGone) or when the subscription ends. Anything
// else in the process that reads dev.Events() directly competes with the subscribers for events:
// read through Subscribe instead.
func Subscribe(dev Device) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	hubsMu.Lock()
	h := hubs[dev]
	if h == nil {
		h = &hub{subs: map[*subscriber]bool{}}
		hubs[dev] = h
		go h.run(dev)
	}
	h.mu.Lock()
	h.subs[s] = true
	h.mu.Unlock()
	hubsMu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.subs[s] {
				delete(h.subs, s)
				s.closed = true
				close(s.ch)
			}
		})
	}
}

// run forwards events until the device's channel closes, then closes every subscriber.
func (h *hub) run(dev Device) {
	for ev := range dev.Events() {
		h.mu.Lock()
		for s := range h.subs {
			s.send(ev)
		}
		h.mu.Unlock()
	}
	hubsMu.Lock()
	if hubs[dev] == h {
		delete(hubs, dev)
	}
	hubsMu.Unlock()
	h.mu.Lock()
	for s := range h.subs {
		delete(h.subs, s)
		s.closed = true
		close(s.ch)
	}
	h.mu.Unlock()
}

// send delivers without blocking (the caller holds the hub's lock).
func (s *subscriber) send(ev Event) {
	if s.closed {
		return
	}
	if s.overflow {
		select {
		case s.ch <- Event{Kind: EventOverflow}:
			s.overflow = false
		default:
			return
		}
	}
	select {
	case s.ch <- ev:
	default:
		s.overflow = true
	}
}
