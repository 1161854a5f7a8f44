package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// recorder is a slog.Handler that keeps every record, attributes (those
// of With included) flattened into a map.
type recorder struct {
	mu      *sync.Mutex
	records *[]logRecord
	attrs   []slog.Attr
}

type logRecord struct {
	Level   slog.Level
	Message string
	Time    time.Time
	Attrs   map[string]slog.Value
}

func newRecorder() *recorder {
	return &recorder{mu: new(sync.Mutex), records: new([]logRecord)}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{Level: rec.Level, Message: rec.Message, Time: rec.Time, Attrs: map[string]slog.Value{}}
	for _, a := range r.attrs {
		lr.Attrs[a.Key] = a.Value.Resolve()
	}
	rec.Attrs(func(a slog.Attr) bool {
		lr.Attrs[a.Key] = a.Value.Resolve()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.records = append(*r.records, lr)
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	r2 := *r
	r2.attrs = append(slices.Clip(r.attrs), attrs...)
	return &r2
}

func (r *recorder) WithGroup(string) slog.Handler { panic("not used") }

func (r *recorder) all() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.records)
}

// find returns the records whose message is msg.
func (r *recorder) find(msg string) []logRecord {
	var out []logRecord
	for _, rec := range r.all() {
		if rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

// launchFake launches the zaki-runtime-fake binary with cfg (Path, Name
// and Logger filled in when empty) and closes it when t ends.
func launchFake(t testing.TB, cfg runtime.PluginConfig) (*runtime.Plugin, *recorder) {
	t.Helper()
	rec := newRecorder()
	if cfg.Path == "" {
		cfg.Path = testenv.Binary(t, "zaki-runtime-fake")
	}
	if cfg.Name == "" {
		cfg.Name = "fake"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := runtime.Launch(ctx, cfg)
	assert.NilError(t, err)
	t.Cleanup(func() {
		pid := p.Pid()
		assert.Check(t, p.Close())
		if pid != 0 {
			assert.Check(t, gone(pid), "plugin process %d still there after Close", pid)
		}
		assert.Check(t, is.DeepEqual(childPlugins(), []int(nil)))
	})
	return p, rec
}

// gone reports whether no process pid exists (a zombie counts as one).
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// childPlugins lists this process's children that run zaki-runtime-fake.
func childPlugins() []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 {
			continue
		}
		comm, rest := s[open+1:end], strings.Fields(s[end+1:])
		if len(rest) < 2 || !strings.HasPrefix("zaki-runtime-fake", comm) {
			continue
		}
		if ppid, _ := strconv.Atoi(rest[1]); ppid == os.Getpid() {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestLaunchLogsAndEnv(t *testing.T) {
	// What systemd hands the agent must not reach the plugin.
	systemd := []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID"}
	for _, name := range systemd {
		t.Setenv(name, "3")
	}
	t.Setenv("ZAKI_TEST_INHERITED", "yes")
	p, rec := launchFake(t, runtime.PluginConfig{
		Env: []string{"ZAKI_TEST_EXTRA=1", "ZAKI_FAKE_DELAY=Inspect=10s"},
	})

	var serving logRecord
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		recs := rec.find("fake runtime serving")
		if len(recs) == 0 {
			return poll.Continue("no record from the plugin yet")
		}
		serving = recs[0]
		return poll.Success()
	}, poll.WithTimeout(5*time.Second))

	assert.Check(t, is.Equal(serving.Level, slog.LevelInfo))
	assert.Check(t, is.Equal(serving.Attrs["plugin"].String(), "fake"))
	assert.Check(t, is.Equal(serving.Attrs["pid"].Kind(), slog.KindInt64))
	assert.Check(t, is.Equal(serving.Attrs["pid"].Int64(), int64(p.Pid())), "the agent's pid attribute")
	// The plugin's own attributes, an integer still an integer.
	assert.Check(t, is.Len(rec.find("fake runtime serving"), 1))
	assert.Check(t, is.Equal(serving.Attrs["env_count"].Kind(), slog.KindInt64))
	assert.Check(t, time.Since(serving.Time) < time.Minute && time.Since(serving.Time) > 0, "record time %v", serving.Time)

	env := strings.Split(serving.Attrs["env_names"].String(), ",")
	assert.Check(t, is.Equal(serving.Attrs["env_count"].Int64(), int64(len(env))))
	for _, name := range systemd {
		assert.Check(t, !slices.Contains(env, name), "%s reached the plugin", name)
	}
	assert.Check(t, slices.Contains(env, "ZAKI_TEST_INHERITED"), "the agent's environment is inherited: %v", env)
	assert.Check(t, slices.Contains(env, "ZAKI_TEST_EXTRA"), "PluginConfig.Env is added: %v", env)

	// A debug record with its attributes: a string and a duration (as text).
	delayed := rec.find("fake runtime: calls delayed")
	assert.Assert(t, is.Len(delayed, 1))
	assert.Check(t, is.Equal(delayed[0].Level, slog.LevelDebug))
	assert.Check(t, is.Equal(delayed[0].Attrs["method"].String(), "Inspect"))
	assert.Check(t, is.Equal(delayed[0].Attrs["delay"].String(), "10s"))

	// No noise: above debug, only what the plugin itself said.
	for _, r := range rec.all() {
		if r.Level > slog.LevelDebug {
			assert.Check(t, is.Equal(r.Message, "fake runtime serving"), "record at %v: %q %v", r.Level, r.Message, r.Attrs)
		}
	}

	// The plugin runs in a process group of its own.
	pgid, err := syscall.Getpgid(p.Pid())
	assert.NilError(t, err)
	assert.Check(t, pgid != syscall.Getpgrp(), "plugin in the agent's process group %d", pgid)
}

func TestPluginIgnoresSIGINT(t *testing.T) {
	p, _ := launchFake(t, runtime.PluginConfig{})
	pid := p.Pid()
	assert.NilError(t, syscall.Kill(pid, syscall.SIGINT))
	time.Sleep(300 * time.Millisecond) // give a wrong exit the time to happen
	_, err := p.Info(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.Pid(), pid))
	assert.Check(t, is.Equal(p.Restarts(), 0))
}

func TestPluginDeadlineCrosses(t *testing.T) {
	p, _ := launchFake(t, runtime.PluginConfig{Env: []string{"ZAKI_FAKE_DELAY=Inspect=10s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Inspect(ctx, "c1")
	assert.Check(t, errors.Is(err, runtime.ErrTimeout), "got %v", err)
	assert.Check(t, is.Equal(p.Restarts(), 0))
}

func TestPluginRelaunch(t *testing.T) {
	p, rec := launchFake(t, runtime.PluginConfig{
		Env: []string{"ZAKI_FAKE_DELAY=Inspect=1m"},
		// Long enough to see the plugin down (on a loaded machine too),
		// short enough for a test.
		MinBackoff: 3 * time.Second,
		MaxBackoff: 3 * time.Second,
	})
	ctx := context.Background()
	info, err := p.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.Runtime, "fake"))
	pid := p.Pid()

	// A call in flight and an event stream open when the plugin dies.
	es, err := p.Events(ctx, runtime.EventOptions{})
	assert.NilError(t, err)
	defer es.Close()
	inflight := make(chan error, 1)
	go func() {
		_, err := p.Inspect(ctx, "c1") // delayed a minute by the fake
		inflight <- err
	}()
	time.Sleep(200 * time.Millisecond)

	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	select {
	case err := <-inflight:
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "in-flight call: got %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("the call in flight did not fail within the backoff after the plugin's death")
	}

	_, err = es.Recv()
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "event stream: got %v", err)

	// While it is down, calls fail at once.
	start := time.Now()
	_, err = p.Info(ctx)
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	assert.Check(t, time.Since(start) < 3*time.Second, "a call while down took %v", time.Since(start))
	assert.Check(t, time.Since(killed) < 3*time.Second, "MinBackoff too short for this check")

	// It comes back, and says so.
	select {
	case <-p.Relaunched():
	case <-time.After(10 * time.Second):
		t.Fatal("no relaunch notice")
	}
	_, err = p.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.Restarts(), 1))
	assert.Check(t, p.Pid() != pid && p.Pid() != 0, "pid %d after relaunch", p.Pid())
	assert.Check(t, gone(pid), "the killed plugin %d is not reaped", pid)
	assert.Check(t, is.Len(rec.find("runtime plugin exited; relaunching"), 1))
	assert.Check(t, is.Len(rec.find("runtime plugin relaunched"), 1))

	// And again: each death is a restart.
	pid = p.Pid()
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if _, err := p.Info(ctx); err != nil {
			return poll.Continue("info: %v", err)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
	assert.Check(t, is.Equal(p.Restarts(), 2))
}

func TestPluginRelaunchRetries(t *testing.T) {
	// The plugin binary goes missing while it is down: relaunches fail
	// until it is back.
	bin := filepath.Join(t.TempDir(), "zaki-runtime-fake")
	b, err := os.ReadFile(testenv.Binary(t, "zaki-runtime-fake"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(bin, b, 0o755))
	p, rec := launchFake(t, runtime.PluginConfig{
		Path:       bin,
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	})
	assert.NilError(t, os.Rename(bin, bin+".away"))
	assert.NilError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if n := len(rec.find("runtime plugin relaunch failed")); n < 3 {
			return poll.Continue("%d failed relaunches", n)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
	_, err = p.Info(context.Background())
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	failed := rec.find("runtime plugin relaunch failed")
	assert.Check(t, is.Equal(failed[0].Level, slog.LevelError))
	assert.Check(t, is.Equal(failed[len(failed)-1].Attrs["retry_in"].Duration(), 200*time.Millisecond), "backoff capped at MaxBackoff")

	assert.NilError(t, os.Rename(bin+".away", bin))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if _, err := p.Info(context.Background()); err != nil {
			return poll.Continue("info: %v", err)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
	assert.Check(t, is.Equal(p.Restarts(), 1))
}

func TestPluginClose(t *testing.T) {
	p, _ := launchFake(t, runtime.PluginConfig{Env: []string{"ZAKI_FAKE_DELAY=Inspect=1m"}})
	pid := p.Pid()
	inflight := make(chan error, 1)
	go func() {
		_, err := p.Inspect(context.Background(), "c1")
		inflight <- err
	}()
	time.Sleep(200 * time.Millisecond)
	assert.NilError(t, p.Close())
	assert.Check(t, gone(pid))
	select {
	case err := <-inflight:
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "in-flight call: got %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight did not end with Close")
	}
	_, err := p.Info(context.Background())
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	assert.Check(t, is.Equal(p.Pid(), 0))
	assert.NilError(t, p.Close()) // twice is fine
}

func TestLaunchFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"no path", "", runtime.ErrInvalidArgument},
		{"missing binary", filepath.Join(t.TempDir(), "zaki-runtime-none"), runtime.ErrUnavailable},
		{"not a plugin", "/bin/true", runtime.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := runtime.Launch(ctx, runtime.PluginConfig{Path: tc.path, Logger: slog.New(newRecorder())})
			assert.Check(t, errors.Is(err, tc.want), "got %v", err)
			assert.Check(t, p == nil)
			assert.Check(t, is.DeepEqual(childPlugins(), []int(nil)))
		})
	}
}

func TestPluginBackoff(t *testing.T) {
	p, rec := launchFake(t, runtime.PluginConfig{
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  time.Second,
		StableAfter: 5 * time.Second, // far above the quick deaths' gaps
	})
	// killAndWait kills the plugin, waits for its relaunch and returns the
	// wait the supervisor announced.
	killAndWait := func() time.Duration {
		t.Helper()
		n := len(rec.find("runtime plugin exited; relaunching"))
		assert.NilError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))
		select {
		case <-p.Relaunched():
		case <-time.After(10 * time.Second):
			t.Fatal("no relaunch")
		}
		exits := rec.find("runtime plugin exited; relaunching")
		assert.Assert(t, is.Len(exits, n+1))
		return exits[n].Attrs["after"].Duration()
	}
	// Quick deaths double the wait; a plugin that ran StableAfter resets it.
	assert.Check(t, is.Equal(killAndWait(), 50*time.Millisecond))
	assert.Check(t, is.Equal(killAndWait(), 100*time.Millisecond))
	assert.Check(t, is.Equal(killAndWait(), 200*time.Millisecond))
	time.Sleep(5200 * time.Millisecond)
	assert.Check(t, is.Equal(killAndWait(), 50*time.Millisecond))
	assert.Check(t, is.Equal(p.Restarts(), 4))
}

func TestPluginExitsWithAgent(t *testing.T) {
	// A plugin whose agent dies must not linger: start one from a shell
	// that exits a moment later, as a killed agent would.
	bin := testenv.Binary(t, "zaki-runtime-fake")
	cmd := exec.Command("sh", "-c", `"$BIN" >/dev/null 2>&1 & echo $!; sleep 1`)
	cmd.Env = append(os.Environ(), "BIN="+bin,
		runtime.Handshake.MagicCookieKey+"="+runtime.Handshake.MagicCookieValue)
	out, err := cmd.Output()
	assert.NilError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	assert.NilError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if exited(pid) {
			return poll.Success()
		}
		return poll.Continue("plugin %d still runs without its agent", pid)
	}, poll.WithTimeout(10*time.Second), poll.WithDelay(100*time.Millisecond))
}

// exited reports whether process pid has exited (reaped or a zombie).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}
