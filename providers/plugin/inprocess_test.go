package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// These tests wire the host's store client and the plugin's server together in this process
// (go-plugin's TestPluginGRPCConn, a real gRPC connection over a socket), for fast checks of what
// crosses the boundary. host_test.go runs the same code across a real process boundary.

type conn struct {
	store  repl.Store
	client *storeClient
	server *goplugin.GRPCServer
}

func connect(t *testing.T, st repl.Store) *conn {
	t.Helper()
	srv := &server{decl: Declaration{Name: "probe"}, open: func(context.Context, Env) (repl.Store, error) { return st, nil }}
	c, g, gs := connectInProcess(t, srv, providers.Env{})
	return &conn{store: storeWith(c, g.caps), client: c, server: gs}
}

func TestErrorsCrossWithTheirSentinels(t *testing.T) {
	c := connect(t, newProbe())
	ctx := context.Background()
	calls := map[string]func(handle string) error{
		"Open": func(h string) error {
			_, err := c.store.Open(ctx, h)
			return err
		},
		"Delete": func(h string) error { return c.store.Delete(ctx, h, repl.Stamp{}) },
		"IsItemChanged": func(h string) error {
			_, err := c.store.IsItemChanged(ctx, repl.Entry{Handle: h}, repl.Stamp{})
			return err
		},
		"Write": func(h string) error {
			_, err := c.store.Write(ctx, repl.WriteRequest{Name: h, Data: strings.NewReader("x"), Size: 1})
			return err
		},
	}
	all := make([]error, 0, len(probeErrors))
	for _, e := range probeErrors {
		all = append(all, e)
	}
	for call, do := range calls {
		for name, want := range probeErrors {
			handle := "err:" + name
			err := do(handle)
			if !errors.Is(err, want) {
				t.Errorf("%s(%q) = %v, want an error wrapping %v", call, handle, err, want)
			}
			for _, other := range all {
				if other != want && errors.Is(err, other) {
					t.Errorf("%s(%q) = %v, which also wraps %v", call, handle, err, other)
				}
			}
			if err != nil && !strings.Contains(err.Error(), "probe failed on "+handle) {
				t.Errorf("%s(%q) = %q, want the plugin's message in it", call, handle, err)
			}
		}
		err := do("err:joined")
		if !errors.Is(err, repl.ErrChanged) || !errors.Is(err, repl.ErrPermission) {
			t.Errorf("%s(err:joined) = %v, want it to wrap both ErrChanged and ErrPermission", call, err)
		}
		err = do("err:plain")
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("%s(err:plain) = %v, want the plugin's message", call, err)
		}
		for _, s := range all {
			if errors.Is(err, s) {
				t.Errorf("%s(err:plain) = %v, wraps %v; want no sentinel", call, err, s)
			}
		}
	}
}

// A plugin in another language may set only status codes.
func TestBareStatusCodesMapToSentinels(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.NotFound, repl.ErrNotFound},
		{codes.Aborted, repl.ErrChanged},
		{codes.AlreadyExists, repl.ErrExists},
		{codes.ResourceExhausted, repl.ErrNoSpace},
		{codes.PermissionDenied, repl.ErrPermission},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
		{codes.Unknown, nil},
		{codes.FailedPrecondition, nil},
	}
	for _, tt := range tests {
		err, transport := fromStatus(status.Error(tt.code, "the plugin says no"))
		if transport {
			t.Errorf("fromStatus(%v) is a transport failure, want an answer of the plugin", tt.code)
		}
		if err.Error() != "the plugin says no" {
			t.Errorf("fromStatus(%v) = %q, want the plugin's message", tt.code, err)
		}
		for _, s := range sentinels {
			if got := errors.Is(err, s.err); got != (s.err == tt.want) {
				t.Errorf("fromStatus(%v) wraps %v: %v, want %v", tt.code, s.err, got, !got)
			}
		}
	}
	// Without a detail, Unavailable is gRPC losing the connection.
	if err, transport := fromStatus(status.Error(codes.Unavailable, "connection refused")); !transport || !errors.Is(err, repl.ErrGone) {
		t.Errorf("fromStatus(Unavailable) = %v, %v; want a transport failure wrapping ErrGone", err, transport)
	}
	// With a detail, it is the plugin's own ErrGone.
	if err, transport := fromStatus(toStatus(fmt.Errorf("network share: %w", repl.ErrGone))); transport || !errors.Is(err, repl.ErrGone) {
		t.Errorf("fromStatus(toStatus(ErrGone)) = %v, %v; want the plugin's answer wrapping ErrGone", err, transport)
	}
}

func TestCancellationCrossesTheBoundary(t *testing.T) {
	p := newProbe()
	c := connect(t, p)
	calls := map[string]func(ctx context.Context) error{
		"Open": func(ctx context.Context) error {
			_, err := c.store.Open(ctx, "block")
			return err
		},
		"IsItemChanged": func(ctx context.Context) error {
			_, err := c.store.IsItemChanged(ctx, repl.Entry{Handle: "block"}, repl.Stamp{})
			return err
		},
	}
	for name, call := range calls {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- call(ctx) }()
		select {
		case <-p.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the plugin's call never started", name)
		}
		<-p.sawDeadline
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s after cancel = %v, want context.Canceled", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return after its ctx was cancelled", name)
		}
		select {
		case err := <-p.sawCtx:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: the plugin's ctx ended with %v, want context.Canceled", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the plugin's ctx was not cancelled", name)
		}
	}
}

func TestDeadlineCrossesTheBoundary(t *testing.T) {
	p := newProbe()
	c := connect(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	_, err := c.store.NaturalKey(ctx, repl.Entry{Handle: "block"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NaturalKey past its deadline = %v, want context.DeadlineExceeded", err)
	}
	got := <-p.sawDeadline
	if got.IsZero() || got.Sub(want).Abs() > time.Second {
		t.Errorf("the plugin's ctx had deadline %v, want about %v", got, want)
	}
	// The host abandons the call at its deadline, which the plugin may see first as a cancel.
	if err := <-p.sawCtx; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("the plugin's ctx ended with %v, want its deadline exceeded or cancelled", err)
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestItemDataStreamsInChunks(t *testing.T) {
	p := newProbe()
	c := connect(t, p)
	ctx := context.Background()
	content := randomBytes(3<<20 + 123)

	// Host to plugin.
	e, err := c.store.Write(ctx, repl.WriteRequest{Name: "big.bin", Data: bytes.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatalf("Write(big.bin) = %v", err)
	}
	if e.Size != int64(len(content)) {
		t.Errorf("Write(big.bin) entry size = %d, want %d", e.Size, len(content))
	}
	sight := <-p.writeSaw
	if sight.err != nil || sight.total != len(content) {
		t.Errorf("the plugin read %d bytes, error %v; want %d bytes and EOF", sight.total, sight.err, len(content))
	}
	if sight.maxRead > chunkSize {
		t.Errorf("the plugin got %d bytes in one read, want chunks of at most %d", sight.maxRead, chunkSize)
	}

	// Plugin to host.
	rc, err := c.store.Open(ctx, "big.bin")
	if err != nil {
		t.Fatalf("Open(big.bin) = %v", err)
	}
	defer rc.Close()
	var got []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := rc.Read(buf)
		if n > chunkSize {
			t.Errorf("Read returned %d bytes at once, want chunks of at most %d", n, chunkSize)
		}
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read = %v", err)
		}
	}
	if !bytes.Equal(got, content) {
		t.Errorf("Open(big.bin) gave %d bytes, want the %d written", len(got), len(content))
	}

	// An empty item, and a missing one reported by Open itself.
	if _, err := c.store.Write(ctx, repl.WriteRequest{Name: "empty", Data: strings.NewReader(""), Size: 0}); err != nil {
		t.Fatal(err)
	}
	rc, err = c.store.Open(ctx, "empty")
	if err != nil {
		t.Fatalf("Open(empty) = %v", err)
	}
	if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
		t.Errorf("Open(empty) read %d bytes, %v; want 0, nil", len(b), err)
	}
	if _, err := c.store.Open(ctx, "missing"); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// A source that fails mid-item (a device unplugged) cancels the write: the plugin's store sees an
// error, never EOF, so it commits nothing.
func TestWriteAbortedWhenTheSourceFails(t *testing.T) {
	p := newProbe()
	c := connect(t, p)
	unplugged := errors.New("device unplugged")
	_, err := c.store.Write(context.Background(), repl.WriteRequest{
		Name: "half.bin", Size: 1 << 20, Data: &failingReader{data: randomBytes(300 << 10), err: unplugged},
	})
	if !errors.Is(err, unplugged) {
		t.Errorf("Write with a failing source = %v, want the source's error", err)
	}
	select {
	case sight := <-p.writeSaw:
		if sight.err == nil {
			t.Errorf("the plugin read the data to EOF (%d bytes), want an error", sight.total)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's Write never ended")
	}
	if p.has("half.bin") {
		t.Error("the plugin's store committed half.bin")
	}
}

func TestEnumerateInBatchesWithReplicatedAnswers(t *testing.T) {
	p := newProbe()
	base := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	for i := range 2000 {
		e := repl.Entry{Handle: fmt.Sprintf("dir/item-%04d.txt", i), Size: int64(i), ModTime: base.Add(time.Duration(i) * time.Second)}
		switch i {
		case 7:
			e.Handle = "bad-\xff\xfe-utf8"
		case 8:
			e.Handle = "skip.tmp"
		case 9:
			e.Kind, e.Size, e.ModTime = repl.KindFolder, 0, time.Time{}
		case 10:
			e.Hash = "sha256:abc"
		}
		p.entries = append(p.entries, e)
	}
	c := connect(t, p)
	ctx := context.Background()
	it, err := c.store.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []repl.Entry
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next = %v", err)
		}
		got = append(got, e)
	}
	if len(got) != len(p.entries) {
		t.Fatalf("Enumerate gave %d entries, want %d", len(got), len(p.entries))
	}
	for i, e := range got {
		w := p.entries[i]
		if e.Handle != w.Handle || e.Kind != w.Kind || e.Size != w.Size || !e.ModTime.Equal(w.ModTime) || e.Hash != w.Hash || e.Stamp() != w.Stamp() {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	asked := p.replicatedAsk.Load()
	for _, e := range got {
		if want := e.Handle != "skip.tmp"; c.store.IsItemReplicated(e) != want {
			t.Errorf("IsItemReplicated(%q) = %v, want %v", e.Handle, !want, want)
		}
	}
	if n := p.replicatedAsk.Load(); n != asked {
		t.Errorf("IsItemReplicated of enumerated entries asked the plugin %d times, want 0", n-asked)
	}
	changed := got[3]
	changed.Size++
	c.store.IsItemReplicated(changed)
	if n := p.replicatedAsk.Load(); n != asked+1 {
		t.Errorf("IsItemReplicated of a changed entry asked the plugin %d times, want 1", n-asked)
	}
}

func TestEnumerateFailureIsNotTheEnd(t *testing.T) {
	p := newProbe()
	for i := range 1000 {
		p.entries = append(p.entries, repl.Entry{Handle: fmt.Sprintf("f%d", i)})
	}
	p.failAt, p.failErr = 700, fmt.Errorf("read dir: %w", repl.ErrPermission)
	c := connect(t, p)
	ctx := context.Background()
	it, err := c.store.Enumerate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for {
		_, err = it.Next(ctx)
		if err != nil {
			break
		}
		n++
	}
	if err == io.EOF || !errors.Is(err, repl.ErrPermission) {
		t.Errorf("Next after %d entries = %v, want an error wrapping ErrPermission (not EOF)", n, err)
	}
	if n != 700 {
		t.Errorf("Enumerate gave %d entries before failing, want 700", n)
	}
	if _, err := it.Next(ctx); err == io.EOF || err == nil {
		t.Errorf("Next after the failure = %v, want the failure again", err)
	}

	// A store that cannot enumerate at all fails at Enumerate.
	p.failAt = 0
	if _, err := c.store.Enumerate(ctx); !errors.Is(err, repl.ErrPermission) {
		t.Errorf("Enumerate of an unreadable store = %v, want ErrPermission", err)
	}
}

func TestNotificationsStreamFromThePlugin(t *testing.T) {
	sent := []repl.Notification{
		{Kind: repl.ItemCreated, Handle: "a.md"},
		{Kind: repl.ItemModified, Handle: "b.md"},
		{Kind: repl.ItemDeleted, Handle: "c/\xff.md"},
		{Kind: repl.Overflow},
	}
	p := &probeNotifier{probe: newProbe(), send: sent, watchCtx: make(chan error, 1)}
	c := connect(t, p)
	n, ok := c.store.(repl.Notifier)
	if !ok {
		t.Fatal("the host store of a Notifier is not a repl.Notifier")
	}
	if _, ok := c.store.(repl.UnitStore); ok {
		t.Error("the host store of a store without units is a repl.UnitStore")
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan repl.Notification, 10)
	done := make(chan error, 1)
	go func() { done <- n.Watch(ctx, func(x repl.Notification) { got <- x }) }()
	for i, want := range sent {
		select {
		case x := <-got:
			if x.Kind != want.Kind || x.Handle != want.Handle {
				t.Errorf("notification %d = %v %q, want %v %q", i, x.Kind, x.Handle, want.Kind, want.Handle)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("notification %d never came", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
	// The store's Watch runs until the store is closed.
	select {
	case err := <-p.watchCtx:
		t.Fatalf("the plugin's Watch ended (%v) with the host's Watch; want it to run until Close", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.client.close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.watchCtx:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the plugin's Watch ended with ctx %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin's Watch did not end when the store was closed")
	}
}

// Changes between Open and the host's Watch, and between two Watch calls, are not lost.
func TestNotificationsBetweenWatchesAreKept(t *testing.T) {
	p := &probeNotifier{probe: newProbe(), send: []repl.Notification{{Kind: repl.ItemCreated, Handle: "early.md"}}, watchCtx: make(chan error, 1)}
	c := connect(t, p)
	n := c.store.(repl.Notifier)
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan repl.Notification, 10)
		done := make(chan error, 1)
		go func() { done <- n.Watch(ctx, func(x repl.Notification) { got <- x }) }()
		if round == 0 {
			select {
			case x := <-got:
				if x.Handle != "early.md" {
					t.Errorf("first notification = %v %q, want created early.md", x.Kind, x.Handle)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the notification from before Watch was lost")
			}
		} else {
			select {
			case x := <-got:
				t.Errorf("second Watch got %v %q again", x.Kind, x.Handle)
			case <-time.After(100 * time.Millisecond):
			}
		}
		cancel()
		<-done
	}
}

func TestWatchThatCannotStartFailsAtOnce(t *testing.T) {
	p := &probeNotifier{probe: newProbe(), startErr: fmt.Errorf("no inotify watches left: %w", repl.ErrNoSpace)}
	c := connect(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.store.(repl.Notifier).Watch(ctx, func(repl.Notification) {})
	if !errors.Is(err, repl.ErrNoSpace) || ctx.Err() != nil {
		t.Errorf("Watch that cannot start = %v, want ErrNoSpace at once", err)
	}
}

func TestUnitsAndHashesCross(t *testing.T) {
	p := &probeUnits{probe: newProbe(), units: map[string]repl.Units{}}
	c := connect(t, p)
	us, ok := c.store.(repl.UnitStore)
	if !ok {
		t.Fatal("the host store of a UnitStore is not a repl.UnitStore")
	}
	h, ok := c.store.(repl.Hasher)
	if !ok {
		t.Fatal("the host store of a Hasher is not a repl.Hasher")
	}
	if _, ok := c.store.(repl.Notifier); ok {
		t.Error("the host store of a store without notifications is a repl.Notifier")
	}
	ctx := context.Background()
	units := repl.Units{"TEL": []byte("+33 1 23 45 67 89"), "EMAIL": []byte("ada@example.org"), "PHOTO": randomBytes(2 << 20)}
	if _, err := us.WriteUnits(ctx, repl.WriteRequest{Name: "ada", Data: strings.NewReader("BEGIN:VCARD"), Size: 11}, units); err != nil {
		t.Fatalf("WriteUnits = %v", err)
	}
	got, err := us.ReadUnits(ctx, "ada")
	if err != nil {
		t.Fatalf("ReadUnits = %v", err)
	}
	if len(got) != len(units) {
		t.Errorf("ReadUnits gave %d units, want %d", len(got), len(units))
	}
	for k, v := range units {
		if !bytes.Equal(got[k], v) {
			t.Errorf("unit %s = %d bytes, want %d", k, len(got[k]), len(v))
		}
	}
	if sum, err := h.Hash(ctx, "ada"); err != nil || sum != "units:EMAIL,PHOTO,TEL" {
		t.Errorf("Hash(ada) = %q, %v; want units:EMAIL,PHOTO,TEL", sum, err)
	}
	if _, err := us.ReadUnits(ctx, "err:notfound"); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("ReadUnits(err:notfound) = %v, want ErrNotFound", err)
	}
	if _, ok := connect(t, newProbe()).store.(repl.Hasher); ok {
		t.Error("the host store of a plain store is a repl.Hasher")
	}
}

// When the connection goes (the in-process stand-in for a dead process), calls fail with ErrGone
// and a Watch delivers Shutdown.
func TestLostConnectionIsGone(t *testing.T) {
	p := &probeNotifier{probe: newProbe(), watchCtx: make(chan error, 1)}
	c := connect(t, p)
	got := make(chan repl.Notification, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.store.(repl.Notifier).Watch(context.Background(), func(x repl.Notification) { got <- x })
	}()
	time.Sleep(100 * time.Millisecond) // let the stream start
	c.server.Stop()
	_, err := c.store.IsItemChanged(context.Background(), repl.Entry{Handle: "x"}, repl.Stamp{})
	if !errors.Is(err, repl.ErrGone) {
		t.Errorf("IsItemChanged after the connection went = %v, want ErrGone", err)
	}
	var stop *StoppedError
	if !errors.As(err, &stop) || !strings.Contains(err.Error(), "provider probe stopped") {
		t.Errorf("IsItemChanged after the connection went = %q, want a *StoppedError", err)
	}
	select {
	case x := <-got:
		if x.Kind != repl.Shutdown || !errors.Is(x.Err, repl.ErrGone) {
			t.Errorf("notification = %v (%v), want Shutdown wrapping ErrGone", x.Kind, x.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Shutdown notification")
	}
	if err := <-done; err != nil {
		t.Errorf("Watch after the shutdown = %v, want nil", err)
	}
}

// probeClock is a probe with a clock of its own (a device's, an hour ahead) that asks for no more
// automatic sessions.
type probeClock struct {
	*probe
	ahead time.Duration
}

func (p *probeClock) TimeGranularity() time.Duration { return 2 * time.Second }
func (p *probeClock) Now() time.Time                 { return time.Now().Add(p.ahead) }
func (p *probeClock) ContinueMonitoring() bool       { return false }

// repl.Clock and repl.Monitoring cross the boundary: the engine sees the plugin store's clock and
// its wish to stop monitoring, and a store without them gets the engine's defaults.
func TestClockAndMonitoringCross(t *testing.T) {
	st := connect(t, &probeClock{probe: newProbe(), ahead: time.Hour}).store
	c, ok := st.(repl.Clock)
	if !ok {
		t.Fatal("the host store of a repl.Clock is no repl.Clock")
	}
	if g := c.TimeGranularity(); g != 2*time.Second {
		t.Errorf("TimeGranularity = %v, want the plugin store's 2s", g)
	}
	if d := time.Until(c.Now()); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("Now is %v from the computer's clock, want the plugin store's hour ahead", d)
	}
	if m, ok := st.(repl.Monitoring); !ok || m.ContinueMonitoring() {
		t.Errorf("ContinueMonitoring of a store that asks to stop = %v (a Monitoring: %v), want false", ok && m.ContinueMonitoring(), ok)
	}
	plain := connect(t, newProbe()).store
	if c, ok := plain.(repl.Clock); ok && (c.TimeGranularity() != repl.DefaultGranularity || time.Since(c.Now()).Abs() > time.Minute) {
		t.Errorf("a store without a clock reports %v and %v, want the engine's default granularity and the computer's time", c.TimeGranularity(), c.Now())
	}
	if m, ok := plain.(repl.Monitoring); ok && !m.ContinueMonitoring() {
		t.Error("a store without Monitoring asks for no more sessions")
	}
}

// probeCauses records why it is told an item is replaced or deleted.
type probeCauses struct {
	*probe
	mu     sync.Mutex
	writes []repl.Cause
	dels   []repl.Cause
}

func (p *probeCauses) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	p.mu.Lock()
	p.writes = append(p.writes, req.Cause)
	p.mu.Unlock()
	return p.probe.Write(ctx, req)
}

func (p *probeCauses) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	p.mu.Lock()
	p.dels = append(p.dels, cause)
	p.mu.Unlock()
	return p.probe.Delete(ctx, handle, expected)
}

// Why an item is replaced or deleted crosses the boundary, so a plugin's store can keep what a
// sync replaces, as the built-in stores keep versions.
func TestCausesCross(t *testing.T) {
	pc := &probeCauses{probe: newProbe()}
	st := connect(t, pc).store
	d, ok := st.(repl.CauseDeleter)
	if !ok {
		t.Fatal("the host store of a plugin is no repl.CauseDeleter")
	}
	ctx := context.Background()
	for _, c := range []repl.Cause{repl.CauseNone, repl.CauseConflict} {
		if _, err := st.Write(ctx, repl.WriteRequest{Name: "a.txt", Kind: repl.KindFile, Data: strings.NewReader("x"), Size: 1, Cause: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteFor(ctx, "a.txt", repl.Stamp{}, repl.CauseDelete); err != nil {
		t.Fatal(err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if !slices.Equal(pc.writes, []repl.Cause{repl.CauseNone, repl.CauseConflict}) || !slices.Equal(pc.dels, []repl.Cause{repl.CauseDelete}) {
		t.Errorf("the plugin's store was told writes %v and deletes %v, want [none conflict] and [delete]", pc.writes, pc.dels)
	}
}
