// Package plugin runs Cradle providers as separate executables, over hashicorp/go-plugin and gRPC.
//
// A provider plugin is an executable named cradle-provider-NAME that serves the stores of a
// partnership (repl.Stores) to Cradle. A plugin author writes a main package that calls Serve:
//
//	func main() {
//		plugin.Serve(plugin.Declaration{Name: "notes", ...}, func(ctx context.Context, env plugin.Env) (repl.Store, error) {
//			return openNotes(env.Options["desktop"])
//		})
//	}
//
// Cradle (the host) finds such executables in <config>/plugins/ (Host.Discover), starts each once
// to read its declaration, and registers a providers.Provider for it. Opening a partnership starts
// the plugin process, sends it the partnership's options, and pairs the store it serves with a
// device-side store: by default an fsstore.DeviceStore, as the files provider uses; with the
// DeviceSide option of Serve, a store the plugin opens in a second process of its own, on the
// device that the host serves it over go-plugin's broker (Env.Device, a device.Device like the
// built-in providers get). The plugin never sees Cradle's own state: it gets its options and a
// private state folder.
//
// Everything a repl.Store does crosses the process boundary: ctx deadlines and cancellation (a
// cancelled host ctx cancels the plugin's call), item data streamed in chunks both ways, the
// optional abilities (Notifier as a stream from plugin to host, UnitStore, Hasher, Stater, Clock,
// Monitoring, Atomicity), and errors mapped both ways so that errors.Is(err, repl.ErrChanged)
// works on either side. The same holds for the device a device side uses: its errors wrap the
// device sentinels (device.ErrNotFound, ...) in the plugin as they do in Cradle.
//
// A plugin process that exits or crashes is the store's shutdown: every call fails with a
// *StoppedError (which wraps repl.ErrGone), an active Watch delivers repl.Shutdown, and the store
// starts a new process at the next sync (its next Enumerate, Watch or Open). The error is one line
// (how the process ended, its last log line, the place of its log file); everything the plugin
// wrote to its stderr, a traceback included, is in its log file (Config.LogDir, LogFile), and
// Cradle's log gets only its log records.
//
// The wire contract is internal/pb/provider.proto, for plugins written in other languages.
// docs/providers.md builds a plugin step by step; docs/design.md has the package map.
package plugin

import (
	"context"
	"fmt"
	"regexp"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// ProtocolVersion is the version of the provider plugin protocol. A plugin built against another
// version is refused with a message that says to rebuild it.
const ProtocolVersion = 1

// Handshake is what host and plugin check before they talk: go-plugin passes the magic cookie in
// the plugin's environment and the plugin answers with the protocol version.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "CRADLE_PROVIDER_PLUGIN",
	MagicCookieValue: "8c1f0b5e-cradle-provider-d47a2e93",
}

// ExecutablePrefix starts the file name of every provider plugin executable.
const ExecutablePrefix = "cradle-provider-"

// pluginKey is the one entry of the plugin map that host and plugin share.
const pluginKey = "provider"

// maxMessage bounds one gRPC message both ways. Item data travels in chunks of chunkSize, so only
// change units (a contact with a photo) and large enumeration batches come near it.
const (
	maxMessage = 64 << 20
	chunkSize  = 64 << 10
)

// Declaration is what a plugin tells Cradle about itself: the fields of providers.Provider that
// the provider chooser, the command line and the "add partnership" form are built from.
type Declaration struct {
	// Name is the provider's name, as in `cradle partner add --provider NAME`: lower-case letters,
	// digits and dashes, starting with a letter.
	Name string
	// Description is one sentence for the provider chooser.
	Description string
	// Icon is the name of a Fyne theme icon ("document", "folder"), or empty.
	Icon string
	// Options are the settings a partnership of this provider takes. The host adds a "device-path"
	// option (the folder on the device) when the plugin does not declare one.
	Options []providers.Option
	// Directions the provider supports; empty means all three.
	Directions []providers.Direction
	// NoKeepBoth says the provider's stores cannot hold a conflict copy beside an item (a store
	// of one item, such as one settings file): Cradle then never offers to keep both versions of
	// a conflict, and refuses the keep-both policy.
	NoKeepBoth bool
}

// Env is what a plugin gets to open one store of a partnership.
type Env struct {
	// Options are the partnership's values of the options the plugin declared, with defaults
	// filled in. The device side also gets the device-path option (DevicePathOption), declared
	// or not.
	Options map[string]string
	// StateDir is a folder that belongs to this partnership and this side, for the plugin's own
	// small files (an ID map, a journal); empty when Cradle gave none. It exists when the plugin
	// starts.
	StateDir string
	// Device is the connected device, served by Cradle: set for the device side (see DeviceSide),
	// nil for the desktop side. Its errors wrap the device package's sentinels. Closing it ends
	// the plugin's use of it, not Cradle's.
	Device device.Device
}

// OpenFunc opens one store of a partnership: its desktop side, or with DeviceSide its device side.
// The returned store may also implement repl.Notifier, repl.UnitStore, repl.Hasher, repl.Stater,
// repl.Clock, repl.Monitoring and repl.Atomicity; the host offers exactly the abilities it has. A Notifier's Watch is called once, right after OpenFunc, and runs
// until the store is closed: the host's Watch calls receive its notifications, and none is lost
// between them. If the store implements io.Closer, it is closed when the partnership is closed or
// the plugin exits.
type OpenFunc func(ctx context.Context, env Env) (repl.Store, error)

// grpcPlugin is the go-plugin glue: on the plugin side it registers the server, on the host side
// it returns the raw gRPC client with the connection's broker.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv *server // nil on the host side
}

var _ goplugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	if p.srv == nil {
		return fmt.Errorf("provider plugin: no server to register")
	}
	p.srv.setBroker(b)
	pb.RegisterProviderServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, b *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &dispensed{rpc: pb.NewProviderClient(c), broker: b}, nil
}

// dispensed is what the host gets from go-plugin for one process: the Provider client, and the
// broker on which it serves the device to a device side.
type dispensed struct {
	rpc    pb.ProviderClient
	broker *goplugin.GRPCBroker
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

var optionKinds = map[providers.OptionKind]bool{
	providers.KindFolder: true, providers.KindDevicePath: true, providers.KindChoice: true,
	providers.KindBool: true, providers.KindString: true, providers.KindPatterns: true, providers.KindInt: true,
}

// check validates a declaration, on the plugin side before serving it and on the host side after
// reading it, so that a faulty plugin is refused with a message that names the fault.
func (d Declaration) check() error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("provider name %q is not valid: use 1 to 40 lower-case letters, digits and dashes, starting with a letter", d.Name)
	}
	seen := map[string]bool{}
	for _, o := range d.Options {
		if !nameRE.MatchString(o.Name) {
			return fmt.Errorf("option name %q is not valid: use lower-case letters, digits and dashes, starting with a letter", o.Name)
		}
		if seen[o.Name] {
			return fmt.Errorf("option %s is declared twice", o.Name)
		}
		seen[o.Name] = true
		if !optionKinds[o.Kind] {
			return fmt.Errorf("option %s has unknown kind %q", o.Name, o.Kind)
		}
		if o.Kind == providers.KindChoice && len(o.Choices) == 0 {
			return fmt.Errorf("option %s is a choice without choices", o.Name)
		}
		if o.Default != "" {
			if _, err := (providers.Provider{Name: d.Name, Options: []providers.Option{o}}).Validate(map[string]string{o.Name: o.Default}); err != nil {
				return fmt.Errorf("default of option %s: %w", o.Name, err)
			}
		}
	}
	for _, dir := range d.Directions {
		if !(providers.Provider{}).SupportsDirection(dir) {
			return fmt.Errorf("unknown direction %q (valid: two-way, to-device, to-desktop)", dir)
		}
	}
	return nil
}

func declarationToPB(d Declaration) *pb.Declaration {
	out := &pb.Declaration{Name: d.Name, Description: d.Description, Icon: d.Icon}
	for _, o := range d.Options {
		out.Options = append(out.Options, &pb.Option{
			Name: o.Name, Label: o.Label, Help: o.Help, Kind: string(o.Kind), Default: o.Default,
			Choices: o.Choices, Required: o.Required, Advanced: o.Advanced,
		})
	}
	for _, dir := range d.Directions {
		out.Directions = append(out.Directions, string(dir))
	}
	out.NoKeepBoth = d.NoKeepBoth
	return out
}

func declarationFromPB(p *pb.Declaration) Declaration {
	d := Declaration{Name: p.GetName(), Description: p.GetDescription(), Icon: p.GetIcon(), NoKeepBoth: p.GetNoKeepBoth()}
	for _, o := range p.GetOptions() {
		d.Options = append(d.Options, providers.Option{
			Name: o.GetName(), Label: o.GetLabel(), Help: o.GetHelp(), Kind: providers.OptionKind(o.GetKind()),
			Default: o.GetDefault(), Choices: o.GetChoices(), Required: o.GetRequired(), Advanced: o.GetAdvanced(),
		})
	}
	for _, dir := range p.GetDirections() {
		d.Directions = append(d.Directions, providers.Direction(dir))
	}
	return d
}
