package plugin

import (
	"context"
	"time"

	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// The optional abilities of a plugin store on the host side. Notifier, UnitStore, Hasher and
// Stater change what the engine does by their mere presence, so the store the host hands out has
// exactly those the plugin's store has (storeWith). Atomicity, Clock and Monitoring have a default
// that equals their absence: every plugin store implements them, with the plugin store's answers
// when it has them and the defaults when not.

// abilityWait bounds a call for an ability that has no ctx of its own (Now, ContinueMonitoring).
const abilityWait = 5 * time.Second

// WritesAtomic implements repl.Atomicity with the plugin store's answer (true when it has no
// Atomicity: the interface's default).
func (s *storeClient) WritesAtomic() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.caps.GetWritesNotAtomic()
}

// TimeGranularity implements repl.Clock: the plugin store's granularity, or
// repl.DefaultGranularity when it has no Clock (the engine's assumption for such a store).
func (s *storeClient) TimeGranularity() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.caps.GetClock() {
		return repl.DefaultGranularity
	}
	return time.Duration(s.caps.GetTimeGranularity())
}

// Now implements repl.Clock: the time on the plugin store's clock when it has one, else (or when
// the plugin cannot answer) the computer's.
func (s *storeClient) Now() time.Time {
	s.mu.Lock()
	clock := s.caps.GetClock()
	s.mu.Unlock()
	if !clock {
		return time.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), abilityWait)
	defer cancel()
	g, err := s.get(ctx, false)
	if err != nil {
		return time.Now()
	}
	r, err := g.rpc.Now(ctx, &pb.NowRequest{})
	if err != nil {
		s.log.Warn("the plugin store's clock did not answer; using the computer's", "err", s.fail(ctx, g, "now", err))
		return time.Now()
	}
	t, err := timeFromPB(r.GetNow())
	if err != nil || t.IsZero() {
		return time.Now()
	}
	return t
}

// ContinueMonitoring implements repl.Monitoring: the plugin store's answer when it has one; true
// otherwise, and when the plugin cannot answer (a stopped plugin is restarted, not given up).
func (s *storeClient) ContinueMonitoring() bool {
	s.mu.Lock()
	mon := s.caps.GetMonitoring()
	s.mu.Unlock()
	if !mon {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), abilityWait)
	defer cancel()
	g, err := s.get(ctx, false)
	if err != nil {
		return true
	}
	r, err := g.rpc.ContinueMonitoring(ctx, &pb.ContinueMonitoringRequest{})
	if err != nil {
		s.log.Warn("the plugin store did not say whether to go on monitoring; going on", "err", s.fail(ctx, g, "continue monitoring", err))
		return true
	}
	return r.GetContinue()
}

// The optional abilities, as parts that the store types below combine.

type notifierPart struct{ c *storeClient }

func (p notifierPart) Watch(ctx context.Context, notify func(repl.Notification)) error {
	return p.c.watch(ctx, notify)
}

type unitPart struct{ c *storeClient }

func (p unitPart) ReadUnits(ctx context.Context, handle string) (repl.Units, error) {
	return p.c.readUnits(ctx, handle)
}

func (p unitPart) WriteUnits(ctx context.Context, req repl.WriteRequest, units repl.Units) (repl.Entry, error) {
	return p.c.write(ctx, req, units, true)
}

type hasherPart struct{ c *storeClient }

func (p hasherPart) Hash(ctx context.Context, handle string) (string, error) {
	return p.c.hash(ctx, handle)
}

type staterPart struct{ c *storeClient }

func (p staterPart) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	return p.c.stat(ctx, handle)
}

// storeWith returns a repl.Store with exactly the optional abilities the plugin's store has, so
// that the engine's type assertions see what it would see in process. (Every one is a
// repl.Atomicity, whose default the plugin's answer replaces.)
func storeWith(c *storeClient, caps *pb.OpenReply) repl.Store {
	type (
		sc = *storeClient
		np = notifierPart
		up = unitPart
		hp = hasherPart
		tp = staterPart
	)
	n, u, h, t := np{c}, up{c}, hp{c}, tp{c}
	var mask int
	for i, has := range []bool{caps.GetNotifier(), caps.GetUnitStore(), caps.GetHasher(), caps.GetStater()} {
		if has {
			mask |= 1 << i
		}
	}
	switch mask {
	case 0b0001:
		return struct {
			sc
			np
		}{c, n}
	case 0b0010:
		return struct {
			sc
			up
		}{c, u}
	case 0b0011:
		return struct {
			sc
			np
			up
		}{c, n, u}
	case 0b0100:
		return struct {
			sc
			hp
		}{c, h}
	case 0b0101:
		return struct {
			sc
			np
			hp
		}{c, n, h}
	case 0b0110:
		return struct {
			sc
			up
			hp
		}{c, u, h}
	case 0b0111:
		return struct {
			sc
			np
			up
			hp
		}{c, n, u, h}
	case 0b1000:
		return struct {
			sc
			tp
		}{c, t}
	case 0b1001:
		return struct {
			sc
			np
			tp
		}{c, n, t}
	case 0b1010:
		return struct {
			sc
			up
			tp
		}{c, u, t}
	case 0b1011:
		return struct {
			sc
			np
			up
			tp
		}{c, n, u, t}
	case 0b1100:
		return struct {
			sc
			hp
			tp
		}{c, h, t}
	case 0b1101:
		return struct {
			sc
			np
			hp
			tp
		}{c, n, h, t}
	case 0b1110:
		return struct {
			sc
			up
			hp
			tp
		}{c, u, h, t}
	case 0b1111:
		return struct {
			sc
			np
			up
			hp
			tp
		}{c, n, u, h, t}
	}
	return c
}

var _ interface {
	repl.Store
	repl.Atomicity
	repl.Clock
	repl.Monitoring
} = (*storeClient)(nil)
