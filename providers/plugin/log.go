package plugin

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Logging crosses the process boundary like this: in the plugin, Serve points slog's and the log
// package's default logger at stderr in hclog's JSON form; the host reads those lines (go-plugin
// hands them over raw: the plugin's own named hclog logger is muted), writes each to the plugin's
// log file and forwards the records, level and attributes kept, to the host's slog.Logger with a
// "plugin" attribute (logfile.go). Lines that are not JSON (a panic's stack, a print to the
// original stderr) go to the log file only. A lineTail keeps the last of them for the message of
// a crash.

// hclogTimeFormat is the timestamp layout go-plugin's host side parses in a plugin's JSON logs.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// newPluginLogHandler returns the slog handler a plugin logs through: JSON lines on w, keyed the
// way go-plugin's host side reads them (@timestamp, @level, @message).
func newPluginLogHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				l, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", hclogLevelName(l))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

func hclogLevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// hclogSlog is an hclog.Logger that writes to a slog.Logger. go-plugin logs through it: its own
// messages on the root logger (name ""), which all go to Debug (the host reports what matters
// itself: a failed start in its error, a crash as a warning). The sub-logger named mute (the
// plugin executable's name, on which go-plugin would log the plugin's stderr lines) is off: the
// host handles those lines itself.
type hclogSlog struct {
	l    *slog.Logger
	name string
	mute string
	args []any
}

var _ hclog.Logger = (*hclogSlog)(nil)

func newHCLogSlog(l *slog.Logger, mute string) *hclogSlog { return &hclogSlog{l: l, mute: mute} }

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *hclogSlog) Log(level hclog.Level, msg string, args ...any) {
	if h.muted() {
		return
	}
	lvl := slogLevel(level)
	if h.name == "" {
		lvl = min(lvl, slog.LevelDebug)
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, lvl) {
		return
	}
	all := make([]any, 0, len(h.args)+len(args))
	all = append(all, h.args...)
	all = append(all, args...)
	h.l.Log(ctx, lvl, msg, all...)
}

func (h *hclogSlog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogSlog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogSlog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogSlog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogSlog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogSlog) IsTrace() bool { return h.l.Enabled(context.Background(), slog.LevelDebug-4) }
func (h *hclogSlog) IsDebug() bool { return h.l.Enabled(context.Background(), slog.LevelDebug) }
func (h *hclogSlog) IsInfo() bool  { return h.l.Enabled(context.Background(), slog.LevelInfo) }
func (h *hclogSlog) IsWarn() bool  { return h.l.Enabled(context.Background(), slog.LevelWarn) }
func (h *hclogSlog) IsError() bool { return h.l.Enabled(context.Background(), slog.LevelError) }

func (h *hclogSlog) ImpliedArgs() []any { return h.args }

func (h *hclogSlog) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *hclogSlog) Name() string { return h.name }

func (h *hclogSlog) Named(name string) hclog.Logger {
	c := *h
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hclogSlog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

// SetLevel does nothing: the slog handler decides what is logged.
func (h *hclogSlog) SetLevel(hclog.Level) {}

// GetLevel returns Trace so that go-plugin hands every line over (slog filters), and Off for the
// muted logger.
func (h *hclogSlog) GetLevel() hclog.Level {
	if h.muted() {
		return hclog.Off
	}
	return hclog.Trace
}

func (h *hclogSlog) muted() bool { return h.mute != "" && h.name == h.mute }

func (h *hclogSlog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogSlog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{emit: func(line string) { h.Info(line) }}
}

// lineWriter calls emit for each complete line written to it (without the newline). It is safe
// for concurrent use.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		w.emit(line)
	}
	if len(w.buf) > 64<<10 { // a very long line without a newline: emit what we have
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// lineTail remembers the last lines a plugin wrote, to explain why it stopped.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 40

func (t *lineTail) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if m := jsonLogMessage(line); m != "" {
		line = m
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

// contains tells whether one of the last lines holds s.
func (t *lineTail) contains(s string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// last returns the line that best explains a stop: the first line of a panic or fatal error if
// one is among the last lines, else the last line.
func (t *lineTail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return truncate(l, 300)
		}
	}
	if len(t.lines) == 0 {
		return ""
	}
	return truncate(t.lines[len(t.lines)-1], 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// jsonLogMessage returns the @message of an hclog JSON line, or "".
func jsonLogMessage(line string) string {
	if !strings.HasPrefix(line, "{") {
		return ""
	}
	var entry struct {
		Message string `json:"@message"`
	}
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		return ""
	}
	return entry.Message
}
