package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin/internal/pb"
	"github.com/cradle-sync/cradle/repl"
)

// ErrNotPlugin is wrapped by the error of an executable that does not complete Cradle's plugin
// handshake: not a plugin at all, a plugin of another program, or one built for another version
// of the protocol.
var ErrNotPlugin = errors.New("not a Cradle provider plugin")

// DevicePathOption is the option that names the partnership's folder on the device. The host
// declares it for a plugin that does not, and opens the device side of the partnership there.
const DevicePathOption = providers.OptDevicePath

// DeviceStoreFunc opens the device side of a plugin partnership: the folder that
// env.Options[DevicePathOption] names on env.Device. env.Device is never nil here; env.StateDir
// is a folder for the device side alone.
type DeviceStoreFunc func(ctx context.Context, env providers.Env) (repl.Store, error)

// Config configures a Host. The zero value is usable.
type Config struct {
	// Logger receives the host's messages and every plugin's log lines (with a "plugin"
	// attribute); nil means slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds how long a plugin may take to complete the handshake; 0 means 10 s.
	StartTimeout time.Duration
	// DeviceStore opens the device side of each partnership; nil means a device folder store
	// (fsstore.DeviceStore, as the files provider's), filtered by the plugin store's
	// IsItemReplicated.
	DeviceStore DeviceStoreFunc
	// LogDir is where each plugin's log file is kept (LogFile): everything the plugin writes to
	// its stderr, a crash's traceback included. Empty means no log files: what is not a log record
	// goes to Logger at debug level only.
	LogDir string
}

// Host finds provider plugins, starts them and turns them into registered providers. Its methods
// are safe for concurrent use.
type Host struct {
	log          *slog.Logger
	startTimeout time.Duration
	deviceStore  DeviceStoreFunc
	logDir       string
}

// owners remembers which executable registered each plugin provider. It is process-wide, like the
// providers registry it guards: a later Discover (by any Host) may register the same executable
// again, but not take a name that a built-in provider or another executable has.
var owners = struct {
	sync.Mutex
	m map[string]string // provider name -> executable
}{m: map[string]string{}}

// NewHost returns a Host.
func NewHost(c Config) *Host {
	h := &Host{log: c.Logger, startTimeout: c.StartTimeout, deviceStore: c.DeviceStore, logDir: c.LogDir}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.startTimeout <= 0 {
		h.startTimeout = 10 * time.Second
	}
	return h
}

// Dir returns the folder in which Cradle looks for provider plugins: <configDir>/plugins.
func Dir(configDir string) string { return filepath.Join(configDir, "plugins") }

// Find returns the provider plugin executables in dir, sorted: files named cradle-provider-*
// (symbolic links followed) with an execute permission. A folder that does not exist holds none.
// Files with the prefix that are not executable are returned in skipped, with the reason.
func Find(dir string) (found []string, skipped []error, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look for provider plugins: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, ExecutablePrefix) || len(name) == len(ExecutablePrefix) {
			continue
		}
		if strings.HasSuffix(name, "~") || strings.HasPrefix(filepath.Ext(name), ".tmp") || filepath.Ext(name) == ".part" {
			continue // an editor's backup or a download in progress
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("provider plugin %s: %w", p, err))
			continue
		}
		if fi.IsDir() {
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			skipped = append(skipped, fmt.Errorf("provider plugin %s is not executable: run chmod +x on it", p))
			continue
		}
		found = append(found, p)
	}
	sort.Strings(found)
	return found, skipped, nil
}

// Discover loads the plugins in Dir(configDir) (skipped when configDir is "") and in extra
// (plugin executables, or folders holding them) and registers their providers. A plugin that
// cannot be loaded is skipped with an error in errs, logged, and the others load: a broken plugin
// never stops Cradle. It returns the names of the providers it registered.
func (h *Host) Discover(ctx context.Context, configDir string, extra ...string) (names []string, errs []error) {
	var paths []string
	addDir := func(dir string) {
		found, skipped, err := Find(dir)
		if err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, skipped...)
		paths = append(paths, found...)
	}
	if configDir != "" {
		addDir(Dir(configDir))
	}
	for _, x := range extra {
		fi, err := os.Stat(x)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("provider plugin %s: %w", x, err))
		case fi.IsDir():
			addDir(x)
		default:
			paths = append(paths, x)
		}
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		prov, err := h.Load(ctx, p)
		if err == nil {
			err = h.register(prov, p)
		}
		if err != nil {
			h.log.Warn("provider plugin skipped", "path", p, "err", err)
			errs = append(errs, err)
			continue
		}
		names = append(names, prov.Name)
	}
	return names, errs
}

// register registers a loaded provider unless its name belongs to another provider.
func (h *Host) register(p providers.Provider, path string) error {
	owners.Lock()
	defer owners.Unlock()
	prev, ok := owners.m[p.Name]
	if ok && prev != path {
		return fmt.Errorf("provider plugin %s declares provider %q, which %s already provides; remove or rename one of them", path, p.Name, prev)
	}
	if !ok {
		if _, err := providers.Lookup(p.Name); err == nil {
			return fmt.Errorf("provider plugin %s declares provider %q, which is a built-in provider; rename the plugin's provider", path, p.Name)
		}
	}
	owners.m[p.Name] = path
	providers.Register(p)
	return nil
}

// declareTimeout bounds the Declare call of a plugin that started.
const declareTimeout = 10 * time.Second

// Load starts the plugin at path, reads its declaration and stops it again. The returned
// provider (not registered) starts the plugin anew for each partnership it opens.
func (h *Host) Load(ctx context.Context, path string) (providers.Provider, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fi, err := os.Stat(path)
	if err != nil {
		return providers.Provider{}, fmt.Errorf("provider plugin %s: %w", path, err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return providers.Provider{}, fmt.Errorf("provider plugin %s is not an executable file", path)
	}
	log := h.log.With("plugin", filepath.Base(path))
	p, err := h.start(ctx, path, "", log)
	if err != nil {
		return providers.Provider{}, err
	}
	dctx, cancel := context.WithTimeout(ctx, declareTimeout)
	defer cancel()
	raw, err := p.rpc.Declare(dctx, &pb.DeclareRequest{})
	if err != nil {
		p.stop(ctx, nil)
		e, _ := fromStatus(err)
		return providers.Provider{}, fmt.Errorf("provider plugin %s: read its declaration: %w", path, e)
	}
	p.stop(ctx, p.rpc)
	decl := declarationFromPB(raw)
	deviceSide := raw.GetDeviceSide()
	if err := decl.check(); err != nil {
		return providers.Provider{}, fmt.Errorf("provider plugin %s: %w", path, err)
	}
	pluginOpts := map[string]bool{}
	for _, o := range decl.Options {
		pluginOpts[o.Name] = true
	}
	prov := providers.Provider{
		Name:        decl.Name,
		Description: decl.Description,
		Icon:        decl.Icon,
		Options:     append([]providers.Option(nil), decl.Options...),
		Directions:  decl.Directions,
		NoKeepBoth:  decl.NoKeepBoth,
	}
	if !pluginOpts[DevicePathOption] {
		prov.Options = append(prov.Options, providers.Option{
			Name:     DevicePathOption,
			Label:    "Folder on the device",
			Help:     "the folder on the device to sync with, as PATH on the first storage or STORAGE:PATH",
			Kind:     providers.KindDevicePath,
			Required: true,
		})
	}
	prov.Open = func(ctx context.Context, env providers.Env) (*providers.Instance, error) {
		return h.open(ctx, path, decl.Name, pluginOpts, deviceSide, env)
	}
	return prov, nil
}

// open opens one partnership of a plugin provider: the plugin's store on the desktop side; on the
// device side the plugin's own device store when it serves one (deviceSide), else the device
// folder store.
func (h *Host) open(ctx context.Context, path, name string, pluginOpts map[string]bool, deviceSide bool, env providers.Env) (*providers.Instance, error) {
	req := &pb.OpenRequest{Options: map[string]string{}}
	for k, v := range env.Options {
		if !pluginOpts[k] {
			continue // the host's own options (device-path) stay with the host
		}
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("provider %s: option %s is not valid UTF-8 text", name, k)
		}
		req.Options[k] = v
	}
	dir := ""
	if env.StateDir != "" {
		dir = filepath.Join(env.StateDir, pluginStateDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("provider %s: create its state folder: %w", name, err)
		}
		req.StateDir = dir
	}
	log := h.log.With("plugin", name)
	start := h.starter(path, name, dir, req, nil, log)
	c := newStoreClient(name, log, start)
	g, err := c.get(ctx, true)
	if err != nil {
		return nil, err
	}
	inst := &providers.Instance{Desktop: storeWith(c, g.caps)}
	var devClient *storeClient
	if env.Device != nil {
		denv := env
		if env.StateDir != "" {
			denv.StateDir = filepath.Join(env.StateDir, deviceStateDir)
		}
		var dev repl.Store
		switch {
		case h.deviceStore != nil:
			dev, err = h.deviceStore(ctx, denv)
		case deviceSide:
			dev, devClient, err = h.openDeviceSide(ctx, path, name, env, log)
		default:
			dev, err = filesDeviceStore(ctx, env, c.IsItemReplicated, log)
		}
		if err != nil {
			_ = c.close()
			if deviceSide {
				return nil, err
			}
			return nil, fmt.Errorf("provider %s: open the device folder: %w", name, err)
		}
		inst.Device = dev
	}
	var once sync.Once
	inst.Close = func() error {
		var err error
		once.Do(func() {
			err = c.close()
			if devClient != nil {
				err = errors.Join(err, devClient.close())
			} else if cl, ok := inst.Device.(io.Closer); ok {
				if cerr := cl.Close(); cerr != nil {
					err = errors.Join(err, fmt.Errorf("provider %s: close the device folder: %w", name, cerr))
				}
			}
		})
		return err
	}
	return inst, nil
}

// openDeviceSide starts a second process of the plugin and opens its device side there, on
// env.Device. Its state folder is <state>/device, its options every option of the partnership.
func (h *Host) openDeviceSide(ctx context.Context, path, name string, env providers.Env, log *slog.Logger) (repl.Store, *storeClient, error) {
	req := &pb.OpenRequest{Options: map[string]string{}, Side: pb.Side_SIDE_DEVICE, Device: deviceInfoToPB(env.Device.Info())}
	for k, v := range env.Options {
		if !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("provider %s: option %s is not valid UTF-8 text", name, k)
		}
		req.Options[k] = v
	}
	dir := ""
	if env.StateDir != "" {
		dir = filepath.Join(env.StateDir, deviceStateDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("provider %s: create its device state folder: %w", name, err)
		}
		req.StateDir = dir
	}
	log = log.With("side", "device")
	c := newStoreClient(name, log, h.starter(path, name, dir, req, env.Device, log))
	g, err := c.get(ctx, true)
	if err != nil {
		return nil, nil, fmt.Errorf("provider %s: open the device side: %w", name, err)
	}
	return storeWith(c, g.caps), c, nil
}

// starter returns how to start a process of the plugin at path and open a store in it with req.
// With dev, the host serves dev to the process over go-plugin's broker, for a device side.
func (h *Host) starter(path, name, dir string, req *pb.OpenRequest, dev device.Device, log *slog.Logger) starter {
	return func(ctx context.Context) (*generation, error) {
		p, err := h.start(ctx, path, dir, log)
		if err != nil {
			return nil, err
		}
		if dev != nil {
			id := p.broker.NextId()
			go p.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
				opts = append(opts, grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))
				s := grpc.NewServer(opts...)
				pb.RegisterDeviceServer(s, &deviceServer{dev: dev})
				return s
			})
			req = proto.Clone(req).(*pb.OpenRequest)
			req.DeviceBroker = id
		}
		caps, err := p.rpc.Open(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				p.stop(ctx, nil)
				return nil, fmt.Errorf("provider %s: open the store: %w", name, ctx.Err())
			}
			e, transport := fromStatus(err)
			if transport { // it crashed while opening: say how
				select {
				case <-p.runner.done:
				case <-time.After(defaultStopWait):
				}
				status, last := p.exitReason()
				p.stop(ctx, nil)
				if status != "" {
					return nil, &StoppedError{Provider: name, Status: status, LastLog: last, Log: p.plog.where()}
				}
			}
			p.stop(ctx, nil)
			return nil, fmt.Errorf("provider %s: open the store: %w", name, e)
		}
		return &generation{proc: p, rpc: p.rpc, caps: caps, stopped: make(chan struct{})}, nil
	}
}

// process is one running plugin executable, connected.
type process struct {
	path   string
	client *goplugin.Client
	runner *procRunner
	tail   *lineTail
	plog   *pluginLog
	rpc    pb.ProviderClient
	broker *goplugin.GRPCBroker
	log    *slog.Logger

	cleanOnce sync.Once
}

// start starts the plugin at path and completes the handshake. ctx cancels the start.
func (h *Host) start(ctx context.Context, path, dir string, log *slog.Logger) (*process, error) {
	r := newProcRunner(path, dir)
	tail := &lineTail{}
	plog := openPluginLog(h.logDir, path, log)
	// Every line goes to the log file; Cradle's log gets the plugin's log records only.
	output := func(stream string) func(string) {
		return func(l string) {
			tail.add(l)
			if stream != "" {
				plog.line(stream + ": " + l)
				log.Debug(l, "stream", stream)
				return
			}
			plog.line(l)
			if !forwardRecord(log, l) {
				log.Debug(l)
			}
		}
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{pluginKey: &grpcPlugin{}},
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
			r.env = append(cmd.Env, envParentWatch+"=1")
			return r, nil
		},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           newHCLogSlog(log, filepath.Base(path)),
		StartTimeout:     h.startTimeout,
		Stderr:           &lineWriter{emit: output("")},
		SyncStdout:       &lineWriter{emit: output("stdout")},
		SyncStderr:       &lineWriter{emit: output("stderr")},
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage))},
	})
	p := &process{path: path, client: client, runner: r, tail: tail, plog: plog, log: log}

	type result struct {
		cp  goplugin.ClientProtocol
		err error
	}
	ch := make(chan result, 1)
	go func() {
		cp, err := client.Client()
		ch <- result{cp, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		r.cancel()
		<-ch
		p.cleanup()
		return nil, fmt.Errorf("start provider plugin %s: %w", path, ctx.Err())
	}
	if res.err != nil {
		err := p.explainStart(res.err, h.startTimeout)
		p.cleanup()
		return nil, err
	}
	raw, err := res.cp.Dispense(pluginKey)
	if err != nil {
		p.cleanup()
		return nil, fmt.Errorf("provider plugin %s: %w", path, err)
	}
	d, ok := raw.(*dispensed)
	if !ok {
		p.cleanup()
		return nil, fmt.Errorf("provider plugin %s: unexpected client type %T", path, raw)
	}
	p.rpc, p.broker = d.rpc, d.broker
	log.Debug("provider plugin started", "pid", r.pid())
	return p, nil
}

var (
	reUnrecognized = regexp.MustCompile(`(?s)^Unrecognized remote plugin message: ?(.*?)(\n|$)`)
	reAPIVersion   = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)
)

// explainStart turns go-plugin's start errors into messages that say what is wrong with the file
// and what to do.
func (p *process) explainStart(err error, timeout time.Duration) error {
	msg := err.Error()
	// go-plugin kills the process when the handshake fails: wait for it, to say how it ended.
	select {
	case <-p.runner.done:
	case <-time.After(2 * time.Second):
	}
	status, last := p.exitReason()
	why := status
	if last != "" {
		if why != "" {
			why += ": "
		}
		why += last
	}
	printed := ""
	if m := reUnrecognized.FindStringSubmatch(msg); m != nil {
		printed = m[1]
	}
	switch {
	case printed != "":
		return fmt.Errorf("%s is %w: it printed %q where a plugin prints its handshake; remove it from the plugins folder", p.path, ErrNotPlugin, truncate(printed, 120))
	case reAPIVersion.MatchString(msg):
		v := reAPIVersion.FindStringSubmatch(msg)[1]
		return fmt.Errorf("%s is %w of this version: it speaks provider protocol %s and this Cradle speaks %d; rebuild it against this Cradle's providers/plugin package", p.path, ErrNotPlugin, v, ProtocolVersion)
	case strings.Contains(msg, "incompatible core API version"):
		return fmt.Errorf("%s is %w of this version: it was built with an incompatible go-plugin; rebuild it against this Cradle's providers/plugin package", p.path, ErrNotPlugin)
	case strings.Contains(msg, "unsupported plugin protocol"):
		return fmt.Errorf("%s is %w: it speaks go-plugin's net/rpc, and Cradle's provider plugins speak gRPC", p.path, ErrNotPlugin)
	case p.tail.contains("This binary is a plugin"):
		return fmt.Errorf("%s is %w: it is a go-plugin plugin of another program (its magic cookie is not Cradle's); remove it from the plugins folder", p.path, ErrNotPlugin)
	case strings.Contains(msg, "plugin exited before we could connect"), reUnrecognized.MatchString(msg):
		if status == "" {
			return fmt.Errorf("%s is %w: it closed its output without the plugin handshake (%s); remove it from the plugins folder", p.path, ErrNotPlugin, orUnknown(last))
		}
		return fmt.Errorf("%s exited before the plugin handshake (%s): it is %w, or it failed at start", p.path, why, ErrNotPlugin)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("%s did not complete the plugin handshake within %s: it is %w, or it hangs at start", p.path, timeout, ErrNotPlugin)
	}
	return fmt.Errorf("start provider plugin %s: %w", p.path, err)
}

func orUnknown(s string) string {
	if s == "" {
		return "no output"
	}
	return s
}

// exitReason says how the process ended and the line that best explains it, once its stderr is
// fully read (or a second has passed: a child of the plugin may hold stderr open).
func (p *process) exitReason() (status, last string) {
	select {
	case <-p.runner.done:
	default:
		return "", p.tail.last()
	}
	select {
	case <-p.runner.errEOF:
	case <-time.After(time.Second):
	}
	// go-plugin hands a line to the tail right after reading it; give the last one a moment.
	time.Sleep(10 * time.Millisecond)
	return p.runner.exitStatus(), p.tail.last()
}

// stop ends a running plugin: the store is closed (when rpc is not nil), then go-plugin asks the
// process to exit and kills it if it does not within two seconds.
func (p *process) stop(ctx context.Context, rpc pb.ProviderClient) {
	if rpc != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := rpc.Close(cctx, &pb.CloseRequest{}); err != nil {
			p.log.Debug("close the plugin's store", "err", err)
		}
		cancel()
	}
	p.cleanup()
}

// cleanup makes sure the process is gone and releases what the host held for it.
func (p *process) cleanup() {
	p.cleanOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			p.client.Kill()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			// A child of the plugin holds its pipes open: closing our ends unblocks go-plugin.
			p.runner.release()
			<-done
		}
		p.runner.release()
		p.plog.close()
	})
}
