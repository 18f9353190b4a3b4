package plugin

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// TestStore opens a store through the plugin protocol, with both ends in the test's process: open
// runs on the plugin's side of a real gRPC connection (go-plugin's TestPluginGRPCConn), and the
// returned store is what Cradle would get from it, with the same abilities, errors, streams and
// cancellation. A plugin's tests run the conformance suite (repl/repltest) on it, to check a
// store the way the engine will see it.
//
// With env.Device set, open is called as the device side: its env.Device is the plugin's view of
// env.Device, served over go-plugin's broker as Cradle serves the connected device (a folder
// device from device/folder, or an emulated phone from device/emulator, make a test device).
// Without it, open is called as the desktop side. env.Options and env.StateDir are passed as they
// are. The store is closed, and the connection with it, when the test ends.
func TestStore(t testing.TB, open OpenFunc, env providers.Env) repl.Store {
	t.Helper()
	// go-plugin's test connection logs at debug level to hclog's default output: a line for every
	// stream that ends, which would bury the test's own output.
	quietOnce.Do(func() { hclog.DefaultOutput = io.Discard })
	srv := &server{decl: Declaration{Name: "test"}, open: open, openDevice: open}
	c, g, _ := connectInProcess(t, srv, env)
	return storeWith(c, g.caps)
}

var quietOnce sync.Once

// connectInProcess serves srv and connects a store client to it in this process, and opens the
// store: the desktop side, or the device side on env.Device when it is set.
func connectInProcess(t testing.TB, srv *server, env providers.Env) (*storeClient, *generation, *goplugin.GRPCServer) {
	t.Helper()
	gc, gs := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{pluginKey: &grpcPlugin{srv: srv}})
	raw, err := gc.Dispense(pluginKey)
	if err != nil {
		_ = gc.Close()
		t.Fatal(err)
	}
	d := raw.(*dispensed)
	req := &pb.OpenRequest{Options: env.Options, StateDir: env.StateDir}
	if env.Device != nil {
		id := d.broker.NextId()
		go d.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))
			s := grpc.NewServer(opts...)
			pb.RegisterDeviceServer(s, &deviceServer{dev: env.Device})
			return s
		})
		req.Side, req.DeviceBroker, req.Device = pb.Side_SIDE_DEVICE, id, deviceInfoToPB(env.Device.Info())
	}
	opened := false
	start := func(ctx context.Context) (*generation, error) {
		if opened {
			// In one process there is no plugin to restart: a lost connection stays lost.
			return nil, &StoppedError{Provider: srv.decl.Name, Status: "the in-process connection was lost"}
		}
		caps, err := d.rpc.Open(ctx, req)
		if err != nil {
			e, _ := fromStatus(err)
			return nil, e
		}
		opened = true
		return &generation{rpc: d.rpc, caps: caps, stopped: make(chan struct{})}, nil
	}
	c := newStoreClient(srv.decl.Name, slog.New(slog.DiscardHandler), start)
	c.stopWait = 300 * time.Millisecond
	g, err := c.get(context.Background(), true)
	if err != nil {
		_ = gc.Close()
		t.Fatalf("open the store through the plugin protocol: %v", err)
	}
	t.Cleanup(func() {
		_ = c.close()
		_ = gc.Close() // which asks the server to stop
	})
	return c, g, gs
}
