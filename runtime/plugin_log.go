package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A plugin's log records reach the agent's *slog.Logger by way of
// go-plugin: the plugin writes them on its standard error as hclog JSON
// lines (LogHandler), go-plugin on the agent side parses each line and
// calls its hclog.Logger, which is an hclogAdapter forwarding into slog with
// the level, message, attributes and time of the record.

// hclogTimeFormat is the @timestamp layout that go-plugin parses.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// LogHandler is the slog.Handler of a plugin process: it writes each record
// as one hclog JSON line ({"@level", "@message", "@timestamp", attrs...}),
// the format the agent's go-plugin client reads from the plugin's stderr.
// Groups flatten into dotted keys; durations and times travel as text.
type LogHandler struct {
	mu     *sync.Mutex
	w      io.Writer
	level  slog.Leveler
	prefix string         // group prefix of the attributes to come: "g." ...
	attrs  map[string]any // from WithAttrs
}

var _ slog.Handler = (*LogHandler)(nil)

// NewLogHandler returns a LogHandler writing to w (a plugin passes the
// os.Stderr it started with) the records at level and above (nil: debug,
// as the agent filters).
func NewLogHandler(w io.Writer, level slog.Leveler) *LogHandler {
	if level == nil {
		level = slog.LevelDebug
	}
	return &LogHandler{mu: new(sync.Mutex), w: w, level: level}
}

// Enabled reports whether l is at or above the handler's level.
func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle writes r as one JSON line.
func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	m := make(map[string]any, len(h.attrs)+r.NumAttrs()+3)
	for k, v := range h.attrs {
		m[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(m, h.prefix, a)
		return true
	})
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	m["@level"] = hclogLevelName(r.Level)
	m["@message"] = r.Message
	m["@timestamp"] = t.Format(hclogTimeFormat)
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode log record: %w", err)
	}
	b = append(b, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err = h.w.Write(b)
	return err
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = make(map[string]any, len(h.attrs)+len(attrs))
	for k, v := range h.attrs {
		h2.attrs[k] = v
	}
	for _, a := range attrs {
		addAttr(h2.attrs, h.prefix, a)
	}
	return &h2
}

// WithGroup returns a handler whose attributes to come are in group name.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// addAttr adds a to m under prefix, flattening groups, as slog's built-in
// handlers do: empty attributes and empty groups are dropped.
func addAttr(m map[string]any, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, ga := range v.Group() {
			addAttr(m, p, ga)
		}
		return
	}
	m[prefix+a.Key] = jsonValue(v)
}

// jsonValue turns v into something encoding/json encodes without failing.
func jsonValue(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return f
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	a := v.Any()
	switch a := a.(type) {
	case nil:
		return nil
	case error:
		return a.Error()
	case fmt.Stringer:
		return a.String()
	}
	if _, err := json.Marshal(a); err != nil {
		return fmt.Sprintf("%+v", a)
	}
	return a
}

// slogLevel and hclogLevelName map levels between slog and hclog: hclog's
// trace is slog's debug-4.
func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Trace:
		return slog.LevelDebug - 4
	case l == hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
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
	default:
		return "error"
	}
}

// hclogAdapter is the hclog.Logger that go-plugin on the agent side logs
// to. The plugin's stderr lines arrive on the logger go-plugin names after
// the plugin binary: those are forwarded with their own level, message,
// attributes and time, plus plugin=<name> and pid=<pid> (an attribute of
// the record named plugin or pid becomes arg.plugin or arg.pid).
// Everything else is go-plugin's own chatter, filed at debug level.
type hclogAdapter struct {
	h       slog.Handler
	name    string // the plugin's name, attribute "plugin" on every record
	binary  string // base name of the plugin binary: go-plugin's name for the stderr logger
	pid     func() int
	forward bool   // this logger carries the plugin's own records
	named   string // hclog name, for Name
	args    []any  // hclog implied args
}

var _ hclog.Logger = (*hclogAdapter)(nil)

// newHCLogAdapter returns the root logger for go-plugin's client of the
// plugin name, binary its file's base name, pid its process ID once started.
func newHCLogAdapter(l *slog.Logger, name, binary string, pid func() int) *hclogAdapter {
	return &hclogAdapter{h: l.Handler(), name: name, binary: binary, pid: pid}
}

func (a *hclogAdapter) level(l hclog.Level) slog.Level {
	if a.forward {
		return slogLevel(l)
	}
	if l <= hclog.Trace {
		return slog.LevelDebug - 4
	}
	return slog.LevelDebug
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	l := a.level(level)
	ctx := context.Background()
	if !a.h.Enabled(ctx, l) {
		return
	}
	args = append(append([]any(nil), a.args...), args...)
	t := time.Now()
	// go-plugin appends the record's time as a last "timestamp" pair.
	if n := len(args); a.forward && n >= 2 && args[n-2] == "timestamp" {
		if s, ok := args[n-1].(string); ok {
			if pt, err := time.Parse(hclog.TimeFormat, s); err == nil {
				t = pt
				args = args[:n-2]
			}
		}
	}
	r := slog.NewRecord(t, l, msg, 0)
	r.AddAttrs(slog.String("plugin", a.name))
	if a.forward && a.pid != nil {
		if pid := a.pid(); pid > 0 {
			r.AddAttrs(slog.Int("pid", pid))
		}
	}
	for i := 0; i < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok || i+1 == len(args) {
			r.AddAttrs(slog.Any("!BADKEY", args[i]))
			i--
			continue
		}
		if key == "plugin" || key == "pid" {
			key = "arg." + key // the adapter's own attributes win
		}
		r.AddAttrs(slogAttr(key, args[i+1]))
	}
	_ = a.h.Handle(ctx, r)
}

// slogAttr makes an attribute of a value decoded from JSON: a whole number
// becomes an integer again.
func slogAttr(key string, v any) slog.Attr {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return slog.Int64(key, int64(v))
		}
		return slog.Float64(key, v)
	case hclog.Format:
		if f, ok := v[0].(string); ok && len(v) > 0 {
			return slog.String(key, fmt.Sprintf(f, v[1:]...))
		}
	}
	return slog.Any(key, v)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	return a.h.Enabled(context.Background(), a.level(l))
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.args }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	a2 := *a
	a2.args = append(append([]any(nil), a.args...), args...)
	return &a2
}

func (a *hclogAdapter) Name() string { return a.named }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	a2 := *a
	if a.named == "" {
		a2.named = name
		// go-plugin logs the plugin's stderr on the logger it names after
		// the binary.
		a2.forward = name == a.binary
	} else {
		a2.named = a.named + "." + name
	}
	return &a2
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	a2 := *a
	a2.named = ""
	a2.forward = false
	return a2.Named(name)
}

// SetLevel does nothing: the agent's slog handler decides.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel returns the lowest level that reaches the agent's handler, so
// that go-plugin skips parsing lines nobody would see.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &lineLogger{a: a, level: level}
}

// lineLogger logs each write as one record.
type lineLogger struct {
	a     *hclogAdapter
	level hclog.Level
}

func (w *lineLogger) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(bytes.TrimRight(p, "\n")))
	if msg != "" {
		w.a.Log(w.level, msg)
	}
	return len(p), nil
}
