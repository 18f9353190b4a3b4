package manager

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSettingsRoundTrip(t *testing.T) {
	c := &config{
		Settings: Settings{SyncOnConnect: false, Interval: 90 * time.Minute, RetryInterval: 0,
			MassDeleteThreshold: 0.25, KeepInTray: true, Language: "pt", VersionsDays: 7, VersionsMaxSize: 2e9,
			ChangeDelay: 250 * time.Millisecond, ChangeDelayMax: 5 * time.Second},
		NextID: 7,
		Partnerships: []Partnership{{
			ID: "3", Name: "Fotos \"do\" telemóvel\t", Device: "SER 1", Provider: "photos",
			Options:   map[string]string{"desktop": `C:\odd "path"` + "\n", "device-path": "SD card:DCIM", "x.y": "1"},
			Direction: ToDesktop, OnConflict: PolicyKeepBoth, Interval: -1,
			Created: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		}, {
			ID: "6", Name: "Docs", Device: "S2", Provider: "files", Options: map[string]string{},
			Direction: TwoWay, OnConflict: PolicyAsk, Interval: 2 * time.Hour,
		}},
	}
	data := c.encode()
	got, err := parseConfig("settings.toml", data)
	if err != nil {
		t.Fatalf("parse what encode wrote: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v\nfile:\n%s", got, c, data)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"none": 0, "0": 0, "500 MB": 500e6, "10GB": 10e9, "1.5 GiB": 3 << 29, "2048": 2048, " 1 tb ": 1e12} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1 GB", "ten", "5 XB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) took it", in)
		}
	}
	for _, n := range []int64{0, 500e6, 10e9, 1234567} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", n, got, err)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	good := string((&config{Settings: DefaultSettings(), NextID: 2, Partnerships: []Partnership{{
		ID: "1", Name: "Docs", Device: "S", Provider: "files", Options: map[string]string{"desktop": "/d"},
		Direction: TwoWay, OnConflict: PolicyAsk,
	}}}).encode())
	lineOf := func(s, prefix string) int {
		for i, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line starts with %q", prefix)
		return 0
	}
	for _, tc := range []struct {
		name     string
		from, to string // a replacement in the good file
		line     string // the prefix of the line the error must name
		want     string
	}{
		{"syntax", `name = "Docs"`, `name = "Docs`, "name =", "newlines"},
		{"unknown key", `keep-in-tray = true`, `keep-in-tray = true` + "\nsync-on-conect = false", "sync-on-conect", "unknown setting"},
		{"bad interval", `interval = "1h"`, `interval = "soon"`, "interval =", "soon"},
		{"short retry", `retry-interval = "5m"`, `retry-interval = "5s"`, "retry-interval", "shorter than a minute"},
		{"bad threshold", `mass-delete-threshold = "50%"`, `mass-delete-threshold = "150%"`, "mass-delete", "150%"},
		{"bad direction", `direction = "two-way"`, `direction = "both"`, "[[partnership]]", `"both"`},
		{"bad policy", `on-conflict = "ask"`, `on-conflict = "coin"`, "[[partnership]]", `"coin"`},
		{"wrong type", `sync-on-connect = true`, `sync-on-connect = "yes"`, "sync-on-connect", "settings.sync-on-connect: incompatible types"},
		{"newer", "version = 1", "version = 9", "version", "newer Cradle"},
		{"no id", `id = "1"`, `id = ""`, "[[partnership]]", "id is missing"},
		{"negative days", `versions-days = 30`, `versions-days = -1`, "versions-days", "-1 is not a number of days"},
		{"bad size", `versions-max-size = "none"`, `versions-max-size = "lots"`, "versions-max-size", `"lots" is not a size`},
		{"bad change delay", `change-delay = "300ms"`, `change-delay = "soon"`, "change-delay", `"soon" is not a duration`},
		{"long change delay", `change-delay-max = "20s"`, `change-delay-max = "2h"`, "change-delay-max", `"2h" is not a duration`},
	} {
		bad := strings.Replace(good, tc.from, tc.to, 1)
		if bad == good {
			t.Fatalf("%s: %q not in the file", tc.name, tc.from)
		}
		_, err := parseConfig("/cfg/settings.toml", []byte(bad))
		var se *SettingsError
		if !errors.As(err, &se) || !errors.Is(err, ErrSettings) {
			t.Errorf("%s: parseConfig = %v, want a *SettingsError", tc.name, err)
			continue
		}
		if want := lineOf(bad, tc.line); se.Line != want {
			t.Errorf("%s: error names line %d, want %d (%v)", tc.name, se.Line, want, err)
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "/cfg/settings.toml") || strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q should name the file, say %q and be one line", tc.name, msg, tc.want)
		}
	}
	if _, err := parseConfig("f", []byte("version = 1\n\xff\xfe = 2\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("invalid UTF-8: %v, want line 2", err)
	}
}

// TestSettingsFileCorruptUntouched: New refuses a corrupt settings file and leaves it byte for
// byte; SetSettings and AddPartnership write atomically and leave no temporary files.
func TestSettingsFileCorruptUntouched(t *testing.T) {
	w := newWorld(t)
	m := w.open(false)
	w.waitDevice(m)
	s := m.Settings()
	s.Interval = 3 * time.Hour
	if err := m.SetSettings(s); err != nil {
		t.Fatal(err)
	}
	if err := m.SetSettings(Settings{MassDeleteThreshold: 2}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetSettings(threshold 200%%) = %v, want ErrInvalid", err)
	}
	m.Close()
	path := filepath.Join(w.config, SettingsFile)
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), `interval = "3h"`) {
		t.Fatalf("settings file = %q, %v", data, err)
	}
	ents, _ := os.ReadDir(w.config)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	bad := append([]byte(nil), data...)
	bad = append(bad, "\n[[partnership]\n"...)
	os.WriteFile(path, bad, 0o600)
	_, err = New(ctxT(t), Config{Dir: w.config, NoPlugins: true})
	var se *SettingsError
	if !errors.As(err, &se) || se.Line == 0 {
		t.Fatalf("New with a corrupt file = %v, want a *SettingsError with a line", err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(bad) {
		t.Errorf("the corrupt settings file was changed")
	}
	// The folder is free again after the failure: a fixed file opens.
	os.WriteFile(path, data, 0o600)
	m2, err := New(ctxT(t), Config{Dir: w.config, NoPlugins: true})
	if err != nil {
		t.Fatalf("New after the fix: %v", err)
	}
	if m2.Settings().Interval != 3*time.Hour {
		t.Errorf("interval = %v after reopening", m2.Settings().Interval)
	}
	m2.Close()
}

// TestAlreadyRunning: a second manager on the same folder fails at once with the first one's pid.
func TestAlreadyRunning(t *testing.T) {
	w := newWorld(t)
	w.open(false)
	start := time.Now()
	_, err := New(ctxT(t), Config{Dir: w.config, NoPlugins: true})
	var re *RunningError
	if !errors.As(err, &re) || re.PID != os.Getpid() {
		t.Fatalf("second New = %v, want a *RunningError with pid %d", err, os.Getpid())
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Errorf("message %q", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second New waited %v", d)
	}
}
