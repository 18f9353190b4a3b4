package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// What a plugin writes to its stderr goes to two places. Every line, as written, goes to the
// plugin's log file (LogFile), so that a crash's traceback and whatever else the plugin printed
// can be read afterwards. Cradle's own log gets the plugin's log records (the JSON lines of
// slog and log, at their level, tagged plugin=NAME) and nothing else: a traceback is the crash's
// one line there (the *StoppedError, with its first line and the log file's place), not twenty.

// maxLogSize is the size past which a plugin's log file is started afresh when a process of the
// plugin starts; the previous one is kept as FILE.1.
const maxLogSize = 1 << 20

// LogFile returns the log file of the plugin executable exe in logDir: logDir/cradle-provider-NAME.log.
// Both processes of a plugin (its desktop and device sides) write to it.
func LogFile(logDir, exe string) string {
	return filepath.Join(logDir, filepath.Base(exe)+".log")
}

// pluginLog appends lines to a plugin's log file. A nil *pluginLog writes nothing. It is safe for
// concurrent use.
type pluginLog struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openPluginLog opens the log file of the plugin at exe in dir, or returns nil when dir is "" or
// the file cannot be opened (the plugin then runs without one; log says why).
func openPluginLog(dir, exe string, log *slog.Logger) *pluginLog {
	if dir == "" {
		return nil
	}
	path := LogFile(dir, exe)
	f, err := func() (*os.File, error) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogSize {
			if err := os.Rename(path, path+".1"); err != nil {
				return nil, err
			}
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}()
	if err != nil {
		log.Warn("the plugin's log file cannot be written; its output goes to Cradle's debug log only", "file", path, "err", err)
		return nil
	}
	return &pluginLog{path: path, f: f}
}

// where returns the file's path, or "" for no file.
func (l *pluginLog) where() string {
	if l == nil {
		return ""
	}
	return l.path
}

// line appends one line, stamped with the time.
func (l *pluginLog) line(s string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		fmt.Fprintf(l.f, "%s %s\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), s)
	}
}

func (l *pluginLog) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// forwardRecord logs a JSON log line of the plugin (as newPluginLogHandler writes it) to log at
// its level, with its attributes. It returns false for a line that is not one (a traceback, a
// print), which it leaves alone.
func forwardRecord(log *slog.Logger, line string) bool {
	if !strings.HasPrefix(line, "{") {
		return false
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		return false
	}
	msg, ok := rec["@message"].(string)
	if !ok {
		return false
	}
	level := slog.LevelInfo
	switch rec["@level"] {
	case "trace":
		level = slog.LevelDebug - 4
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	var keys []string
	for k := range rec {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, rec[k])
	}
	log.Log(context.Background(), level, msg, args...)
	return true
}
