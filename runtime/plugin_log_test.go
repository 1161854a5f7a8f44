package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLogHandlerFormat(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(&buf, slog.LevelInfo))
	t0 := time.Date(2025, 6, 7, 8, 9, 10, 123456000, time.UTC)

	log.Debug("hidden")
	log.With("conn", 7).WithGroup("req").Warn("slow call",
		"method", "Inspect",
		"took", 1500*time.Millisecond,
		"ok", false,
		"ratio", 0.5,
		"nan", math.NaN(),
		"at", t0,
		"err", errors.New("boom"),
		slog.Group("ctr", "id", "abc", "n", uint64(3)),
	)
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	assert.Assert(t, is.Len(lines, 1), "got %s", buf.String())
	var m map[string]any
	assert.NilError(t, json.Unmarshal(lines[0], &m))

	// go-plugin reads exactly these, with this layout.
	ts, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", m["@timestamp"].(string))
	assert.NilError(t, err)
	assert.Check(t, time.Since(ts) < time.Minute)
	delete(m, "@timestamp")
	assert.DeepEqual(t, m, map[string]any{
		"@level":     "warn",
		"@message":   "slow call",
		"conn":       float64(7),
		"req.method": "Inspect",
		"req.took":   "1.5s",
		"req.ok":     false,
		"req.ratio":  0.5,
		"req.nan":    "NaN",
		"req.at":     "2025-06-07T08:09:10.123456Z",
		"req.err":    "boom",
		"req.ctr.id": "abc",
		"req.ctr.n":  float64(3),
	})
}

func TestLogHandlerLevels(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "trace"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelInfo + 2, "info"},
		{slog.LevelWarn, "warn"},
		{slog.LevelError, "error"},
		{slog.LevelError + 4, "error"},
	} {
		var buf bytes.Buffer
		slog.New(NewLogHandler(&buf, slog.LevelDebug-4)).Log(context.Background(), tc.level, "m")
		var m map[string]any
		assert.NilError(t, json.Unmarshal(buf.Bytes(), &m))
		assert.Check(t, is.Equal(m["@level"], tc.want), "slog level %v", tc.level)
		// and hclog's name maps back to the same slog band
		back := slogLevel(hclog.LevelFromString(tc.want))
		assert.Check(t, back <= tc.level && hclogLevelName(back) == tc.want, "back %v", back)
	}
}

// capture is a slog.Handler that keeps the records at level and above.
type capture struct {
	mu      sync.Mutex
	level   slog.Level
	records []slog.Record
}

func (c *capture) Enabled(_ context.Context, l slog.Level) bool { return l >= c.level }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { panic("not used") }
func (c *capture) WithGroup(string) slog.Handler      { panic("not used") }

func attrs(r slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}

func TestHCLogAdapter(t *testing.T) {
	c := &capture{level: slog.LevelDebug}
	root := newHCLogAdapter(slog.New(c), "docker", "zaki-runtime-docker", func() int { return 42 })

	// What go-plugin does with a JSON line of the plugin's stderr.
	plugin := root.Named("zaki-runtime-docker")
	plugin.Warn("engine slow", "took_ms", float64(1500), "ratio", 0.25, "ref", "c1", "pid", float64(7),
		"timestamp", "2025-06-07T08:09:10.123Z")
	plugin.Trace("too fine") // below the handler's level
	// go-plugin's own chatter, whatever its level.
	root.Error("plugin process exited", "plugin", "/usr/lib/zaki-agent/plugins/zaki-runtime-docker", "id", "42")
	root.Named("stdio").Warn("stdio error")

	assert.Assert(t, is.Len(c.records, 3))
	r := c.records[0]
	assert.Check(t, is.Equal(r.Level, slog.LevelWarn))
	assert.Check(t, is.Equal(r.Message, "engine slow"))
	assert.Check(t, r.Time.Equal(time.Date(2025, 6, 7, 8, 9, 10, 123e6, time.UTC)), "time %v", r.Time)
	a := attrs(r)
	assert.Check(t, is.Equal(a["plugin"].String(), "docker"))
	assert.Check(t, is.Equal(a["pid"].Int64(), int64(42)))
	assert.Check(t, is.Equal(a["arg.pid"].Int64(), int64(7)))
	assert.Check(t, is.Equal(a["took_ms"].Kind(), slog.KindInt64))
	assert.Check(t, is.Equal(a["took_ms"].Int64(), int64(1500)))
	assert.Check(t, is.Equal(a["ratio"].Float64(), 0.25))
	assert.Check(t, is.Equal(a["ref"].String(), "c1"))
	_, hasTimestamp := a["timestamp"]
	assert.Check(t, !hasTimestamp)

	for _, r := range c.records[1:] {
		assert.Check(t, is.Equal(r.Level, slog.LevelDebug), "chatter %q", r.Message)
		assert.Check(t, is.Equal(attrs(r)["plugin"].String(), "docker"))
	}
	assert.Check(t, is.Equal(attrs(c.records[1])["arg.plugin"].String(), "/usr/lib/zaki-agent/plugins/zaki-runtime-docker"))

	// go-plugin skips parsing lines below the level the agent logs.
	assert.Check(t, is.Equal(plugin.GetLevel(), hclog.Debug))
	c.level = slog.LevelWarn
	assert.Check(t, is.Equal(plugin.GetLevel(), hclog.Warn))
	assert.Check(t, is.Equal(root.GetLevel(), hclog.Off), "chatter is debug: off at warn")
	assert.Check(t, !plugin.IsInfo() && plugin.IsWarn() && !root.IsWarn())
}
