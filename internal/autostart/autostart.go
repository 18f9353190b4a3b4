// Package autostart starts Cradle at login, or stops doing so: an XDG autostart entry
// ($XDG_CONFIG_HOME/autostart/io.github.cradle_sync.cradle.desktop) that runs
// `cradle --background`, which desktops start when the user logs in (the XDG Autostart
// specification). It imports nothing of Cradle's.
package autostart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the entry's name: the application's ID, as the desktop file.
const FileName = "io.github.cradle_sync.cradle.desktop"

// Entry is the autostart entry of one program.
type Entry struct {
	// Path is the entry's file.
	Path string
	// Exec is the program to start (an absolute path).
	Exec string
}

// Default is the entry in this user's autostart folder that starts this executable.
func Default() (*Entry, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no home folder to keep the autostart entry in: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("where is this program: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return &Entry{Path: filepath.Join(dir, "autostart", FileName), Exec: exe}, nil
}

// Enabled tells whether the entry is there and not hidden (Hidden=true is how a desktop's
// settings turn an entry off).
func (e *Entry) Enabled() bool {
	b, err := os.ReadFile(e.Path)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && strings.TrimSpace(k) == "Hidden" && strings.TrimSpace(v) == "true" {
			return false
		}
	}
	return true
}

// SetEnabled writes the entry (on) or removes it (off).
func (e *Entry) SetEnabled(on bool) error {
	if !on {
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", e.Path, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(e.Path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(e.Path), err)
	}
	tmp := e.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(e.Content()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", e.Path, err)
	}
	if err := os.Rename(tmp, e.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", e.Path, err)
	}
	return nil
}

// Content is the entry's text.
func (e *Entry) Content() string {
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=Cradle\n" +
		"Comment=Syncs phones, cameras and players when they are plugged in\n" +
		"Exec=" + quoteExec(e.Exec) + " --background\n" +
		"Icon=io.github.cradle_sync.cradle\n" +
		"Terminal=false\n" +
		"NoDisplay=true\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// quoteExec quotes a program path for an Exec key, as the Desktop Entry specification says:
// in double quotes when it has a reserved character, with `"`, "`", `$` and `\` escaped; `%`
// doubled either way.
func quoteExec(p string) string {
	p = strings.ReplaceAll(p, "%", "%%")
	if !strings.ContainsAny(p, " \t\n\"'\\><~|&;$*?#()`") {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range p {
		if strings.ContainsRune("\"`$\\", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	// In a desktop file's string value, a backslash is itself escaped.
	return strings.ReplaceAll(b.String(), `\`, `\\`)
}
