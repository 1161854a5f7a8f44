package agent

// Tests of the lifecycle rules against the real Docker engine, through
// the real docker plugin, in process (so the clock can be injected).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

type engineEnv struct {
	t     *testing.T
	cfg   envConfig
	rt    *runtime.Plugin
	reg   *registry.Registry
	a     *Agent
	clock *clock
	stop  func()
}

// newEngineEnv runs an agent in process over the real docker plugin, on
// its own network and port window, with the stand-in image.
func newEngineEnv(t *testing.T, mutate ...func(*Config)) *engineEnv {
	t.Helper()
	testenv.RequireDocker(t)
	testenv.EnsureStubImage(t)
	cfg := testConfig(t)
	cfg.Instance.Network = testenv.UniqueName("zaki-agent-test")
	cfg.Instance.LabelPrefix = fmt.Sprintf("zt%d%d", os.Getpid(), rand.IntN(1e6))
	lo := 40000 + rand.IntN(150)*100
	cfg.Instance.PortRange = fmt.Sprintf("%d-%d", lo, lo+99)
	cfg.Instance.ReadinessTimeoutSeconds = 30
	cfg.Instance.StopTimeoutSeconds = 2
	cfg.Instance.HealthCmd = []string{"/gateway-stub", "-probe"}
	cfg.Instance.HealthIntervalSeconds = 2
	for _, m := range mutate {
		m(&cfg.Config)
	}
	e := &engineEnv{t: t, cfg: cfg, clock: newClock()}
	plugin, err := runtime.Launch(context.Background(), runtime.PluginConfig{
		Name: "docker", Path: testenv.Binary(t, "zaki-runtime-docker"), Logger: slog.New(slog.DiscardHandler),
	})
	assert.NilError(t, err)
	e.rt = plugin
	t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
		ids := strings.Fields(testenv.Docker(t, "ps", "-aq", "--filter", "network="+cfg.Instance.Network))
		if len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "network", "rm", cfg.Instance.Network).Run()
		plugin.Close()
	})
	e.start()
	return e
}

func (e *engineEnv) start() {
	t := e.t
	reg, err := registry.Open(e.cfg.StateDir, registry.Options{Logger: slog.New(slog.DiscardHandler)})
	assert.NilError(t, err)
	a, err := New(e.cfg.Config, e.rt, reg, Options{StateDir: e.cfg.StateDir, RuntimeName: "docker", Now: e.clock.Now})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	select {
	case <-a.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	e.reg, e.a = reg, a
	e.stop = func() { cancel(); <-done; reg.Close(); e.stop = nil }
}

func (e *engineEnv) ensure(user string, spec InstanceSpec) Instance {
	e.t.Helper()
	in, err := e.a.Ensure(context.Background(), user, spec, EnsureOptions{})
	assert.NilError(e.t, err)
	return in
}

// httpDo calls the stand-in gateway of an instance.
func httpDo(t *testing.T, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	assert.NilError(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, 200, "%s %s: %s", method, url, b)
	return string(b)
}

func TestEngineConfigChangeHotAndCold(t *testing.T) {
	e := newEngineEnv(t)
	v1 := InstanceSpec{Env: map[string]string{"MODEL": "one"}}
	v2 := InstanceSpec{Env: map[string]string{"MODEL": "two"}}
	first := e.ensure("hotcold", v1)
	assert.Equal(t, first.Outcome, OutcomeCreated)
	httpDo(t, "POST", first.URL+"/files/notes.txt", "written by the instance")

	hot := e.ensure("hotcold", v2)
	assert.Equal(t, hot.Outcome, OutcomeReused)
	assert.Assert(t, hot.Stale)
	assert.Equal(t, hot.ContainerID, first.ContainerID)
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", first.ContainerID), "true")

	e.clock.Add(6 * time.Minute)
	cold := e.ensure("hotcold", v2)
	assert.Equal(t, cold.Outcome, OutcomeRecreated)
	assert.Assert(t, cold.ContainerID != first.ContainerID)
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", `{{index .Config.Labels "`+e.cfg.Instance.LabelPrefix+`.configHash"}}`, cold.ContainerID), cold.ConfigHash)
	assert.Assert(t, cold.ConfigHash != first.ConfigHash)
	assert.Equal(t, httpDo(t, "GET", cold.URL+"/files/notes.txt", ""), "written by the instance")
	assert.Equal(t, strings.TrimSpace(httpDo(t, "GET", cold.URL+"/env/MODEL", "")), "true")
}

func TestEnginePruneWithClock(t *testing.T) {
	e := newEngineEnv(t)
	ctx := context.Background()
	old := e.ensure("p-old", InstanceSpec{})
	e.clock.Add(8*24*time.Hour - 25*time.Hour)
	idle := e.ensure("p-idle", InstanceSpec{})
	e.clock.Add(25*time.Hour - 30*time.Minute)
	doze := e.ensure("p-doze", InstanceSpec{})
	e.clock.Add(30 * time.Minute)
	e.ensure("p-busy", InstanceSpec{})
	_, err := e.a.Touch(ctx, "p-old")
	assert.NilError(t, err)
	for _, in := range []Instance{old, idle, doze} {
		httpDo(t, "POST", in.URL+"/files/memory.db", "data of "+in.UserID)
	}
	running := func(id string) string { return testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", id) }

	// Idle stop alone.
	res, err := e.a.Prune(ctx, PruneRequest{IdleStopMinutes: f64(10), IdleHours: f64(0), MaxAgeDays: f64(0)})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Stopped), []string{"p-doze", "p-idle"})
	assert.DeepEqual(t, userIDs(res.Removed), []string{})
	assert.Equal(t, running(doze.ContainerID), "false")
	assert.Equal(t, running(idle.ContainerID), "false")
	assert.Equal(t, running(old.ContainerID), "true")

	// Max age alone: p-old, used a moment ago, is hot: kept and marked
	// stale. Once out of the hot window, it is removed (its data kept).
	res, err = e.a.Prune(ctx, PruneRequest{IdleHours: f64(0), MaxAgeDays: f64(7)})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Removed), []string{})
	assert.DeepEqual(t, userIDs(res.Staled), []string{"p-old"})
	assert.Equal(t, running(old.ContainerID), "true")
	in, err := e.a.Get(ctx, "p-old")
	assert.NilError(t, err)
	assert.Assert(t, in.Stale)
	e.clock.Add(6 * time.Minute)
	res, err = e.a.Prune(ctx, PruneRequest{IdleHours: f64(0), MaxAgeDays: f64(7)})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Removed), []string{"p-old"})
	_, err = e.rt.Inspect(ctx, old.ContainerID)
	assert.Assert(t, err != nil, "old container still there")

	// Idle removal alone (the defaults: 24 h, 7 days).
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Removed), []string{"p-idle"})
	assert.DeepEqual(t, userIDs(res.Stopped), []string{})

	// The data written by the instances before pruning is there after the
	// next ensure, on the same port.
	for _, in := range []Instance{old, idle} {
		again := e.ensure(in.UserID, InstanceSpec{})
		assert.Equal(t, again.Outcome, OutcomeCreated)
		assert.Equal(t, again.Port, in.Port)
		assert.Equal(t, httpDo(t, "GET", again.URL+"/files/memory.db", ""), "data of "+in.UserID)
	}
	again := e.ensure("p-doze", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeStarted)
	assert.Equal(t, httpDo(t, "GET", again.URL+"/files/memory.db", ""), "data of p-doze")
}

func TestEngineFilesAndDataDir(t *testing.T) {
	e := newEngineEnv(t)
	in := e.ensure("files", InstanceSpec{Files: map[string]string{"openclaw.json": `{"gateway":true}`}})
	// The instance reads the file the agent wrote, through its mount.
	assert.Equal(t, httpDo(t, "GET", in.URL+"/files/openclaw.json", ""), `{"gateway":true}`)
	// The stand-in wrote its marker into the data dir as uid 1000.
	fi, err := os.Stat(filepath.Join(e.cfg.StateDir, "instances", "files", "gateway-stub.started"))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))
}

// TestEngineDataDirModeReasserted: the instance's data dir chmod'ed 0777
// (its owner, the instance, may) is 0700 again after the next ensure,
// which reuses the running container, and the instance still writes in it.
// The container has the default log bound.
func TestEngineDataDirModeReasserted(t *testing.T) {
	e := newEngineEnv(t)
	in := e.ensure("modes", InstanceSpec{})
	dir := filepath.Join(e.cfg.StateDir, "instances", "modes")
	assert.NilError(t, os.Chmod(dir, 0o777))
	again := e.ensure("modes", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeReused)
	assert.Equal(t, again.ContainerID, in.ContainerID)
	fi, err := os.Stat(dir)
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o700))
	uid, _ := e.reg.UID("modes")
	assert.Equal(t, fi.Sys().(*syscall.Stat_t).Uid, uint32(uid))
	assert.Equal(t, httpDo(t, "POST", in.URL+"/files/after-chmod", "x"), "written\n")
	// The default log bound, as the engine has it.
	assert.Equal(t, strings.TrimSpace(testenv.Docker(t, "inspect", "--format", "{{json .HostConfig.LogConfig}}", in.ContainerID)),
		`{"Type":"json-file","Config":{"max-file":"3","max-size":"10485760"}}`)
}
