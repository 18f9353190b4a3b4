// Package providers holds Cradle's desktop providers and their registry. A provider decides what a
// partnership syncs: it declares its options once (the command line, the settings file and the
// window's "add partnership" form are all generated from that declaration) and, for one
// partnership, opens the two repl.Stores that the engine syncs: the desktop side and the device
// side.
//
// Built-in providers (files, photos, contacts) register themselves from init(); import
// providers/all to get them. External providers are separate executables served over
// hashicorp/go-plugin (providers/plugin).
//
// Besides the registry, this package holds what every provider shares that is not a store: the
// device-path syntax (devicepath.go) and the mapping of file-system and device errors to the
// engine's sentinel errors (errors.go). The stores the file-based providers share are in
// providers/fsstore. The package map is in docs/design.md.
package providers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// OptionKind says what sort of value an option takes; forms and flags are built from it.
type OptionKind string

// Kinds of option value.
const (
	KindFolder     OptionKind = "folder"      // a desktop folder (a folder picker in the window)
	KindDevicePath OptionKind = "device-path" // a path on the device, "PATH" or "STORAGE:PATH"
	KindChoice     OptionKind = "choice"      // one of Choices
	KindBool       OptionKind = "bool"        // "true" or "false"
	KindString     OptionKind = "string"      // free text
	KindPatterns   OptionKind = "patterns"    // comma-separated glob patterns
	KindInt        OptionKind = "int"         // a whole number
)

// Option declares one setting of a provider.
type Option struct {
	Name     string // key in settings and flag name: "desktop", "ignore-device-deletes"
	Label    string // short label for the form: "Desktop folder"
	Help     string // one sentence for help texts and tooltips
	Kind     OptionKind
	Default  string
	Choices  []string // for KindChoice
	Required bool
	Advanced bool // shown behind "More options"
}

// Direction is which way a partnership syncs.
type Direction string

// Directions.
const (
	TwoWay    Direction = "two-way"
	ToDevice  Direction = "to-device"
	ToDesktop Direction = "to-desktop"
)

// Directions lists every direction, in the order forms show them.
var Directions = []Direction{TwoWay, ToDevice, ToDesktop}

// Env is what a provider gets to open one partnership's stores.
type Env struct {
	// Options are the partnership's option values, validated against the declaration and with
	// defaults filled in.
	Options map[string]string
	// Device is the connected device; nil when the partnership is opened without it (to list
	// what the desktop side holds, to resolve a conflict while the device is away).
	Device device.Device
	// StateDir is a folder that belongs to this partnership on this computer, for the provider's
	// own small files (an import log, a journal of unfinished device writes). Never the engine's
	// handle file.
	StateDir string
}

// Instance is one partnership's pair of stores, opened.
type Instance struct {
	Desktop repl.Store
	Device  repl.Store // nil when Env.Device was nil
	// Close releases what the provider holds (watchers, plugin processes). Safe to call once.
	Close func() error
	// Versions is where the stores keep the content they replace or delete for the engine
	// (providers/versions); nil when the provider keeps none.
	Versions *versions.Set
}

// NameSkipper is a store that leaves items out of its enumerations by their names (a name a
// device reports that must never become a desktop path): it says which, and why, so that the user
// sees them. The list is that of the last enumeration.
type NameSkipper interface {
	SkippedNames() []SkippedName
}

// SkippedName is an item a store left out, by its path in the partnership, and why.
type SkippedName struct {
	Path   string
	Reason string
}

// Provider is the declaration of one kind of data Cradle can sync.
type Provider struct {
	Name        string // "files", "photos", "contacts", or a plugin's name
	Description string // one sentence for the provider chooser
	Icon        string // name of a Fyne theme icon ("folder", "media-photo", "account"), or empty
	Options     []Option
	// Directions the provider supports; empty means all three.
	Directions []Direction
	// NoKeepBoth says the provider's stores cannot hold a conflict copy beside an item (a store
	// of one item): keeping both versions of a conflict is then refused, as a resolution and as
	// a policy.
	NoKeepBoth bool
	// Open opens the stores for one partnership.
	Open func(ctx context.Context, env Env) (*Instance, error)
}

// Option returns the declaration of the named option.
func (p Provider) Option(name string) (Option, bool) {
	for _, o := range p.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// SupportsDirection tells whether d is one of the provider's directions.
func (p Provider) SupportsDirection(d Direction) bool {
	if len(p.Directions) == 0 {
		for _, x := range Directions {
			if x == d {
				return true
			}
		}
		return false
	}
	for _, x := range p.Directions {
		if x == d {
			return true
		}
	}
	return false
}

// Validate checks option values against the declaration and returns them with defaults filled in.
// An unknown option, a missing required one or a bad value is an error that says what is valid.
func (p Provider) Validate(values map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(p.Options))
	for k, v := range values {
		o, ok := p.Option(k)
		if !ok {
			return nil, fmt.Errorf("provider %s has no option %q; its options are: %s", p.Name, k, p.optionNames())
		}
		if err := checkValue(o, v); err != nil {
			return nil, fmt.Errorf("option %s: %w", k, err)
		}
		out[k] = v
	}
	for _, o := range p.Options {
		if _, ok := out[o.Name]; ok {
			continue
		}
		if o.Required && o.Default == "" {
			return nil, fmt.Errorf("provider %s needs option %s (%s)", p.Name, o.Name, o.Help)
		}
		if o.Default != "" {
			out[o.Name] = o.Default
		}
	}
	return out, nil
}

func (p Provider) optionNames() string {
	names := make([]string, len(p.Options))
	for i, o := range p.Options {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

func checkValue(o Option, v string) error {
	switch o.Kind {
	case KindChoice:
		for _, c := range o.Choices {
			if v == c {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of: %s", v, strings.Join(o.Choices, ", "))
	case KindBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
	case KindInt:
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
	case KindFolder, KindDevicePath:
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("a path cannot contain a NUL byte")
		}
		if o.Required && strings.TrimSpace(v) == "" {
			return fmt.Errorf("a path is required")
		}
	}
	return nil
}

var (
	mu       sync.RWMutex
	registry = map[string]Provider{}
)

// Register adds a provider. Built-in providers call it from init(); the plugin host calls it for
// each external provider it finds. Registering a name twice replaces the earlier provider.
func Register(p Provider) {
	if p.Name == "" || p.Open == nil {
		panic("providers: Register needs a name and an Open function")
	}
	mu.Lock()
	defer mu.Unlock()
	registry[p.Name] = p
}

// Lookup returns the named provider, or an error that lists the known ones.
func Lookup(name string) (Provider, error) {
	mu.RLock()
	p, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return Provider{}, fmt.Errorf("unknown provider %q; known providers: %s", name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// Names lists the registered providers' names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the registered providers, sorted by name.
func All() []Provider {
	names := Names()
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Provider, len(names))
	for i, n := range names {
		out[i] = registry[n]
	}
	return out
}
