package manager

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/cradle-sync/cradle/internal/fsutil"
)

// SettingsFile is the name of the settings file in the config folder.
const SettingsFile = "settings.toml"

// settingsVersion is the format of the settings file this code writes and reads.
const settingsVersion = 1

// config is the content of the settings file: the global settings and the partnerships.
type config struct {
	Settings     Settings
	Partnerships []Partnership
	// NextID is the number the next partnership gets; IDs are never reused.
	NextID int
}

func (c *config) clone() *config {
	out := &config{Settings: c.Settings, NextID: c.NextID, Partnerships: make([]Partnership, len(c.Partnerships))}
	for i, p := range c.Partnerships {
		out.Partnerships[i] = p.clone()
	}
	return out
}

func (p Partnership) clone() Partnership {
	q := p
	q.Options = make(map[string]string, len(p.Options))
	for k, v := range p.Options {
		q.Options[k] = v
	}
	return q
}

// The file's shape, as BurntSushi/toml decodes it. Durations and the threshold are strings so
// that the messages about them are ours ("1h30m", "never", "50%").
type fileSettings struct {
	SyncOnConnect       *bool   `toml:"sync-on-connect"`
	Interval            *string `toml:"interval"`
	RetryInterval       *string `toml:"retry-interval"`
	MassDeleteThreshold *string `toml:"mass-delete-threshold"`
	KeepInTray          *bool   `toml:"keep-in-tray"`
	Language            *string `toml:"language"`
	VersionsDays        *int    `toml:"versions-days"`
	VersionsMaxSize     *string `toml:"versions-max-size"`
	ChangeDelay         *string `toml:"change-delay"`
	ChangeDelayMax      *string `toml:"change-delay-max"`
}

type filePartnership struct {
	ID         string            `toml:"id"`
	Name       string            `toml:"name"`
	Device     string            `toml:"device"`
	Provider   string            `toml:"provider"`
	Direction  string            `toml:"direction"`
	OnConflict string            `toml:"on-conflict"`
	Interval   string            `toml:"interval"`
	Created    time.Time         `toml:"created"`
	Options    map[string]string `toml:"options"`
}

type fileConfig struct {
	Version      int               `toml:"version"`
	NextID       int               `toml:"next-id"`
	Settings     fileSettings      `toml:"settings"`
	Partnerships []filePartnership `toml:"partnership"`
}

var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// loadConfig reads the settings file at path. A missing file gives the defaults; anything that
// cannot be read is a *SettingsError with the line, and the file is left alone.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &config{Settings: DefaultSettings(), NextID: 1}, nil
	}
	if err != nil {
		return nil, &SettingsError{Path: path, Err: fmt.Errorf("cannot read it: %w", err)}
	}
	return parseConfig(path, data)
}

func parseConfig(path string, data []byte) (*config, error) {
	fail := func(line int, format string, args ...any) error {
		return &SettingsError{Path: path, Line: line, Err: fmt.Errorf(format, args...)}
	}
	if !utf8.Valid(data) {
		return nil, fail(invalidUTF8Line(data), "the file is not valid UTF-8 text")
	}
	var fc fileConfig
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fail(pe.Position.Line, "%s", pe.Message)
		}
		// Type errors come as "toml: line 8 (last key "a.b"): incompatible types: ...".
		if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, fail(line, "%s: %s", m[2], m[3])
		}
		return nil, fail(0, "%s", strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, fail(keyLine(data, k), "unknown setting %q", k.String())
	}
	if fc.Version > settingsVersion {
		return nil, fail(keyLine(data, toml.Key{"version"}), "written by a newer Cradle (format %d); update Cradle", fc.Version)
	}
	c := &config{Settings: DefaultSettings(), NextID: fc.NextID}
	s := fc.Settings
	if s.SyncOnConnect != nil {
		c.Settings.SyncOnConnect = *s.SyncOnConnect
	}
	if s.KeepInTray != nil {
		c.Settings.KeepInTray = *s.KeepInTray
	}
	if s.Language != nil {
		c.Settings.Language = *s.Language
	}
	if s.Interval != nil {
		d, err := parseInterval(*s.Interval)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "interval"}), "interval: %v", err)
		}
		c.Settings.Interval = d
	}
	if s.RetryInterval != nil {
		d, err := parseInterval(*s.RetryInterval)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "retry-interval"}), "retry-interval: %v", err)
		}
		c.Settings.RetryInterval = d
	}
	if s.MassDeleteThreshold != nil {
		f, err := parseThreshold(*s.MassDeleteThreshold)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "mass-delete-threshold"}), "mass-delete-threshold: %v", err)
		}
		c.Settings.MassDeleteThreshold = f
	}
	if s.VersionsDays != nil {
		if *s.VersionsDays < 0 {
			return nil, fail(keyLine(data, toml.Key{"settings", "versions-days"}), "versions-days: %d is not a number of days (0 or more)", *s.VersionsDays)
		}
		c.Settings.VersionsDays = *s.VersionsDays
	}
	if s.VersionsMaxSize != nil {
		n, err := parseSize(*s.VersionsMaxSize)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "versions-max-size"}), "versions-max-size: %v", err)
		}
		c.Settings.VersionsMaxSize = n
	}
	if s.ChangeDelay != nil {
		d, err := parseDelay(*s.ChangeDelay)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "change-delay"}), "change-delay: %v", err)
		}
		c.Settings.ChangeDelay = d
	}
	if s.ChangeDelayMax != nil {
		d, err := parseDelay(*s.ChangeDelayMax)
		if err != nil {
			return nil, fail(keyLine(data, toml.Key{"settings", "change-delay-max"}), "change-delay-max: %v", err)
		}
		c.Settings.ChangeDelayMax = d
	}
	seen := map[string]bool{}
	maxID := 0
	for i, fp := range fc.Partnerships {
		line := tableLine(data, "partnership", i)
		p := Partnership{
			ID: fp.ID, Name: fp.Name, Device: fp.Device, Provider: fp.Provider,
			Direction: Direction(fp.Direction), OnConflict: ConflictPolicy(fp.OnConflict),
			Created: fp.Created, Options: fp.Options,
		}
		if p.Options == nil {
			p.Options = map[string]string{}
		}
		if p.Direction == "" {
			p.Direction = TwoWay
		}
		if p.OnConflict == "" {
			p.OnConflict = PolicyAsk
		}
		if fp.Interval != "" {
			d, err := parseInterval(fp.Interval)
			if err != nil {
				return nil, fail(line, "partnership %q: interval: %v", p.ID, err)
			}
			if d == 0 {
				d = -1 // "never" in a partnership means no schedule; 0 means the global one
			}
			p.Interval = d
		}
		if err := checkPartnershipFields(p); err != nil {
			return nil, fail(line, "partnership %q: %v", p.ID, err)
		}
		if seen[p.ID] {
			return nil, fail(line, "partnership ID %q is used twice", p.ID)
		}
		seen[p.ID] = true
		if n, err := strconv.Atoi(p.ID); err == nil && n > maxID {
			maxID = n
		}
		c.Partnerships = append(c.Partnerships, p)
	}
	if c.NextID <= maxID {
		c.NextID = maxID + 1
	}
	return c, nil
}

// checkPartnershipFields checks what the settings file must hold for a partnership, independent of
// the provider (which may be a plugin that is not installed right now).
func checkPartnershipFields(p Partnership) error {
	switch {
	case p.ID == "":
		return fmt.Errorf("the id is missing")
	case strings.ContainsAny(p.ID, " \t./\\:"):
		return fmt.Errorf("the id %q may not contain spaces, dots, slashes or colons", p.ID)
	case strings.TrimSpace(p.Name) == "":
		return fmt.Errorf("the name is missing")
	case p.Device == "":
		return fmt.Errorf("the device serial is missing")
	case p.Provider == "":
		return fmt.Errorf("the provider is missing")
	}
	if !slices.Contains(providersDirections(), p.Direction) {
		return fmt.Errorf("direction %q is not one of: two-way, to-device, to-desktop", p.Direction)
	}
	if !slices.Contains(ConflictPolicies, p.OnConflict) {
		return fmt.Errorf("on-conflict %q is not one of: ask, desktop, device, newest, keep-both", p.OnConflict)
	}
	return nil
}

func providersDirections() []Direction { return []Direction{TwoWay, ToDevice, ToDesktop} }

// parseInterval reads "1h", "90m", "1h30m", "never" or "0".
// parseDelay reads a change delay: a duration from 10 ms to an hour.
func parseDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 10*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("%q is not a duration from \"10ms\" to \"1h\" such as \"300ms\" or \"10s\"", s)
	}
	return d, nil
}

func parseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "never" || s == "0" || s == "off" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as \"30m\", \"1h\" or \"never\"", s)
	}
	if d < time.Minute {
		return 0, fmt.Errorf("%q is shorter than a minute", s)
	}
	return d, nil
}

func formatInterval(d time.Duration) string {
	if d <= 0 {
		return "never"
	}
	s := d.String() // "1h30m0s", "2h0m0s", "45m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseThreshold reads "50%" or "0.5".
func parseThreshold(s string) (float64, error) {
	t := strings.TrimSpace(s)
	var f float64
	var err error
	if strings.HasSuffix(t, "%") {
		f, err = strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
		f /= 100
	} else {
		f, err = strconv.ParseFloat(t, 64)
	}
	if err != nil || f <= 0 || f > 1 {
		return 0, fmt.Errorf("%q is not a percentage between 1%% and 100%% such as \"50%%\"", s)
	}
	return f, nil
}

// parseSize reads "none", "0", "500 MB", "10GB", "1.5 GiB", "2048" (bytes).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	if t == "NONE" || t == "0" || t == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as \"500 MB\", \"10 GB\" or \"none\"", s)
	}
	return int64(f * mult), nil
}

// formatSize writes a size parseSize reads back: "none", whole GB or MB, or bytes.
func formatSize(n int64) string {
	switch {
	case n <= 0:
		return "none"
	case n%1e9 == 0:
		return strconv.FormatInt(n/1e9, 10) + " GB"
	case n%1e6 == 0:
		return strconv.FormatInt(n/1e6, 10) + " MB"
	}
	return strconv.FormatInt(n, 10)
}

func formatThreshold(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
}

// checkSettings validates settings set through the API.
func checkSettings(s Settings) error {
	if s.Interval < 0 || s.Interval > 0 && s.Interval < time.Minute {
		return kindf(ErrInvalid, "the sync interval must be at least a minute, or 0 for never")
	}
	if s.RetryInterval < 0 || s.RetryInterval > 0 && s.RetryInterval < time.Minute {
		return kindf(ErrInvalid, "the retry interval must be at least a minute, or 0 for never")
	}
	if s.MassDeleteThreshold <= 0 || s.MassDeleteThreshold > 1 {
		return kindf(ErrInvalid, "the mass-delete threshold must be between 1%% and 100%%")
	}
	if s.VersionsDays < 0 || s.VersionsMaxSize < 0 {
		return kindf(ErrInvalid, "versions are kept 0 days or more, with a size cap of 0 (none) or more")
	}
	for _, d := range []time.Duration{s.ChangeDelay, s.ChangeDelayMax} {
		if d != 0 && (d < 10*time.Millisecond || d > time.Hour) {
			return kindf(ErrInvalid, "the change delays must be from 10 ms to an hour (0: the default)")
		}
	}
	if strings.ContainsAny(s.Language, "\"\\\n") {
		return kindf(ErrInvalid, "language %q is not a language code such as \"en\" or \"pt\"", s.Language)
	}
	return nil
}

// encode writes the settings file: comments for a person who opens it, one table per
// partnership, stable order.
func (c *config) encode() []byte {
	var b bytes.Buffer
	b.WriteString("# Cradle settings. Cradle rewrites this file when settings or partnerships change;\n")
	b.WriteString("# you may edit it while Cradle is not running.\n")
	fmt.Fprintf(&b, "version = %d\n", settingsVersion)
	fmt.Fprintf(&b, "next-id = %d\n\n", c.NextID)
	s := c.Settings
	b.WriteString("[settings]\n")
	b.WriteString("# Sync a device's partnerships when it is plugged in.\n")
	fmt.Fprintf(&b, "sync-on-connect = %t\n", s.SyncOnConnect)
	b.WriteString("# Sync connected devices this often (\"30m\", \"2h\", \"never\").\n")
	fmt.Fprintf(&b, "interval = %s\n", quoteTOML(formatInterval(s.Interval)))
	b.WriteString("# After a failed sync, try again after this long (\"never\" to wait for the next trigger).\n")
	fmt.Fprintf(&b, "retry-interval = %s\n", quoteTOML(formatInterval(s.RetryInterval)))
	b.WriteString("# Ask before a sync deletes more than this share of a folder's items.\n")
	fmt.Fprintf(&b, "mass-delete-threshold = %s\n", quoteTOML(formatThreshold(s.MassDeleteThreshold)))
	fmt.Fprintf(&b, "keep-in-tray = %t\n", s.KeepInTray)
	b.WriteString("# The window's language (\"en\", \"pt\"); empty follows the system.\n")
	fmt.Fprintf(&b, "language = %s\n", quoteTOML(s.Language))
	b.WriteString("# Keep what a sync replaces or deletes this many days (\"cradle versions\" lists it).\n")
	fmt.Fprintf(&b, "versions-days = %d\n", s.VersionsDays)
	b.WriteString("# At most this much per partnership (\"500 MB\", \"10 GB\"; \"none\": no cap); the oldest go first.\n")
	fmt.Fprintf(&b, "versions-max-size = %s\n", quoteTOML(formatSize(s.VersionsMaxSize)))
	if s.ChangeDelay != 0 || s.ChangeDelayMax != 0 {
		b.WriteString("# After a change, wait this long without another before syncing it (\"300ms\"), and no\n")
		b.WriteString("# longer than change-delay-max under a stream of changes (a burst syncs as one session).\n")
	}
	if s.ChangeDelay != 0 {
		fmt.Fprintf(&b, "change-delay = %s\n", quoteTOML(s.ChangeDelay.String()))
	}
	if s.ChangeDelayMax != 0 {
		fmt.Fprintf(&b, "change-delay-max = %s\n", quoteTOML(s.ChangeDelayMax.String()))
	}
	for _, p := range c.Partnerships {
		b.WriteString("\n[[partnership]]\n")
		fmt.Fprintf(&b, "id = %s\n", quoteTOML(p.ID))
		fmt.Fprintf(&b, "name = %s\n", quoteTOML(p.Name))
		fmt.Fprintf(&b, "device = %s\n", quoteTOML(p.Device))
		fmt.Fprintf(&b, "provider = %s\n", quoteTOML(p.Provider))
		fmt.Fprintf(&b, "direction = %s\n", quoteTOML(string(p.Direction)))
		fmt.Fprintf(&b, "on-conflict = %s\n", quoteTOML(string(p.OnConflict)))
		if p.Interval != 0 {
			fmt.Fprintf(&b, "interval = %s\n", quoteTOML(formatInterval(p.Interval)))
		}
		if !p.Created.IsZero() {
			fmt.Fprintf(&b, "created = %s\n", p.Created.UTC().Format(time.RFC3339))
		}
		if len(p.Options) > 0 {
			b.WriteString("[partnership.options]\n")
			keys := make([]string, 0, len(p.Options))
			for k := range p.Options {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s = %s\n", tomlKey(k), quoteTOML(p.Options[k]))
			}
		}
	}
	return b.Bytes()
}

// tomlKey writes a key bare when TOML allows it, quoted otherwise.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return quoteTOML(k)
		}
	}
	return k
}

// quoteTOML quotes s as a TOML basic string (s must be valid UTF-8).
func quoteTOML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// saveConfig writes the settings file atomically: a temporary file in the same folder, fsync,
// rename over the old one, fsync of the folder.
func saveConfig(path string, c *config) error {
	if err := fsutil.WriteFileAtomic(path, c.encode(), fsutil.WriteOptions{Perm: 0o600}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// keyLine finds the line of a key in the file (best effort: the first line that sets the key's
// last part inside the key's table); 0 when not found.
func keyLine(data []byte, k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	table := strings.Join(k[:len(k)-1], ".")
	last := k[len(k)-1]
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			cur = strings.Trim(line, "[] \t")
			continue
		}
		if cur != table && !strings.HasPrefix(table, "partnership") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if ok && strings.Trim(strings.TrimSpace(name), `"'`) == last {
			return n
		}
	}
	return 0
}

// tableLine finds the line of the i-th [[name]] header; 0 when not found.
func tableLine(data []byte, name string, i int) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[[") && strings.Trim(line, "[] \t") == name {
			if seen == i {
				return n
			}
			seen++
		}
	}
	return 0
}

// invalidUTF8Line returns the line of the first invalid UTF-8 sequence.
func invalidUTF8Line(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return 0
}
