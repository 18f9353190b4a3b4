package manager

import (
	"testing"
	"time"
)

// TestBusSlowSubscriber: a subscriber that never reads loses events (counted) while the publisher
// never waits and a subscriber that keeps up gets every event in order.
func TestBusSlowSubscriber(t *testing.T) {
	b := newBus()
	slow := b.subscribe(EventAll)
	fast := b.subscribe(SessionProgress)
	other := b.subscribe(DeviceConnected)
	const n = 10 * SubscriptionBuffer
	got := make(chan []uint64)
	go func() {
		var seqs []uint64
		for ev := range fast.C() {
			seqs = append(seqs, ev.Seq)
		}
		got <- seqs
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		b.publish(SessionProgress, "dev", "1", Progress{ItemsDone: i})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publishing %d events took %v: the publisher waited", n, d)
	}
	// Let the fast reader drain, then close it.
	deadline := time.Now().Add(5 * time.Second)
	for len(fast.ch) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	fast.Close()
	seqs := <-got
	if slow.Dropped() != n-SubscriptionBuffer {
		t.Errorf("slow subscriber dropped %d, want %d", slow.Dropped(), n-SubscriptionBuffer)
	}
	if len(slow.ch) != SubscriptionBuffer {
		t.Errorf("slow subscriber holds %d events, want %d", len(slow.ch), SubscriptionBuffer)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("fast subscriber got seq %d after %d", seqs[i], seqs[i-1])
		}
	}
	if int(fast.Dropped())+len(seqs) != n {
		t.Errorf("fast subscriber: %d received + %d dropped != %d published", len(seqs), fast.Dropped(), n)
	}
	if len(other.ch) != 0 || other.Dropped() != 0 {
		t.Errorf("a subscriber to other types received %d events", len(other.ch))
	}
	b.close()
	if _, ok := <-other.C(); ok {
		t.Errorf("channel still open after the bus closed")
	}
	slow.Close() // safe after close
	b.publish(Error, "", "", "ignored after close")
}

func TestEventTypeString(t *testing.T) {
	for _, tc := range []struct {
		t    EventType
		want string
	}{
		{DeviceConnected, "device-connected"},
		{SessionFinished | ConflictAdded, "session-finished|conflict-added"},
		{DeviceChanged, "device-changed"},
		{0, "none"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("EventType(%d).String() = %q, want %q", tc.t, got, tc.want)
		}
	}
	if EventAll&DeviceChanged == 0 || EventAll&DeviceConnected == 0 {
		t.Errorf("EventAll = %b misses types", EventAll)
	}
}
