package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// TestClientEveryRoute drives every route through the Go client over the
// fake runtime, checking what each returns and what the engine saw.
func TestClientEveryRoute(t *testing.T) {
	e := start(t)
	c, ctx := e.Client, ctxT(t)

	h, err := c.Health(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(h.Status, socketapi.HealthOK))
	assert.Check(t, h.Runtime.Up)
	assert.Check(t, is.Equal(h.Runtime.Engine.EngineVersion, runtimetest.FakeEngineVersion))

	list, err := c.List(ctx, "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 0))

	spec := socketapi.InstanceSpec{
		Image:     testenv.StubImage,
		Env:       map[string]string{"OPENCLAW_TOKEN": "s3cret-value"},
		Files:     map[string]string{"openclaw.json": `{"a":1}`},
		Resources: &socketapi.Resources{CPUs: 1, Memory: "512m", Pids: 50},
		Labels:    map[string]string{"plan": "pro"},
	}
	in, err := c.Ensure(ctx, "alice", spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
	assert.Check(t, is.Equal(in.State, socketapi.StateRunning))
	assert.Check(t, is.Equal(in.ContainerName, "zaki-user-alice"))
	assert.Check(t, is.Equal(in.Labels["plan"], "pro"))
	cs, ok := e.Fake.CreatedSpec("zaki-user-alice")
	assert.Assert(t, ok)
	assert.Check(t, is.Equal(cs.Env["OPENCLAW_TOKEN"], "s3cret-value"))
	b, err := os.ReadFile(filepath.Join(e.StateDir, "instances", "alice", "openclaw.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), `{"a":1}`))

	again, err := c.Ensure(ctx, "alice", spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Outcome, socketapi.OutcomeReused))
	assert.Check(t, is.Equal(again.ContainerID, in.ContainerID))
	assert.Check(t, strings.HasPrefix(again.ImageID, "sha256:"), "imageId %q", again.ImageID)

	// A hot instance whose spec changed: kept and stale; with force,
	// recreated now; with force and nothing to apply, reused.
	changed := spec
	changed.Labels = map[string]string{"plan": "max"}
	kept, err := c.Ensure(ctx, "alice", changed)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(kept.Outcome, socketapi.OutcomeReused))
	assert.Check(t, kept.Stale)
	forced, err := c.EnsureWith(ctx, "alice", changed, socketapi.ClientEnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(forced.Outcome, socketapi.OutcomeRecreated))
	assert.Check(t, !forced.Stale)
	assert.Check(t, is.Equal(forced.Labels["plan"], "max"))
	forced, err = c.EnsureWith(ctx, "alice", changed, socketapi.ClientEnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(forced.Outcome, socketapi.OutcomeReused))
	in, err = c.EnsureWith(ctx, "alice", spec, socketapi.ClientEnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeRecreated))

	got, err := c.Get(ctx, "alice")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.ContainerID, in.ContainerID))
	assert.Check(t, is.Equal(got.Outcome, ""))

	touched, err := c.Touch(ctx, "alice")
	assert.NilError(t, err)
	assert.Check(t, touched.LastUsedAtMs >= in.LastUsedAtMs)

	assert.NilError(t, e.Fake.WriteLog("zaki-user-alice", "line one", "line two", "line three"))
	rc, err := c.Logs(ctx, "alice", socketapi.LogOptions{Tail: new(2)})
	assert.NilError(t, err)
	logs, err := io.ReadAll(rc)
	rc.Close()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(logs), "line two\nline three\n"))

	stopped, err := c.Stop(ctx, "alice")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(stopped.State, socketapi.StateStopped))
	running, err := c.List(ctx, socketapi.StateRunning)
	assert.NilError(t, err)
	assert.Check(t, is.Len(running, 0))
	stoppedList, err := c.List(ctx, socketapi.StateStopped)
	assert.NilError(t, err)
	assert.Check(t, is.Len(stoppedList, 1))

	restarted, err := c.Restart(ctx, "alice")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(restarted.State, socketapi.StateRunning))

	// The pause tier over the API: paused by a pass, listed as paused,
	// thawed by a touch (outcome resumed) and by an ensure.
	time.Sleep(5 * time.Millisecond)
	paused, err := c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: ptr(1e-6), IdleStopMinutes: ptr(0.0), IdleHours: ptr(0.0), MaxAgeDays: ptr(0.0)})
	assert.NilError(t, err)
	assert.Check(t, is.Len(paused.Paused, 1))
	pausedList, err := c.List(ctx, socketapi.StatePaused)
	assert.NilError(t, err)
	assert.Check(t, is.Len(pausedList, 1))
	thawed, err := c.Touch(ctx, "alice")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(thawed.Outcome, socketapi.OutcomeResumed))
	assert.Check(t, is.Equal(thawed.State, socketapi.StateRunning))
	time.Sleep(5 * time.Millisecond)
	_, err = c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: ptr(1e-6), IdleStopMinutes: ptr(0.0), IdleHours: ptr(0.0), MaxAgeDays: ptr(0.0)})
	assert.NilError(t, err)
	resumed, err := c.Ensure(ctx, "alice", spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resumed.Outcome, socketapi.OutcomeResumed))

	res, err := c.Prune(ctx, socketapi.PruneRequest{DryRun: true, IdleHours: ptr(0.0), MaxAgeDays: ptr(0.0), IdleStopMinutes: ptr(0.0)})
	assert.NilError(t, err)
	assert.Check(t, res.DryRun)
	assert.Check(t, is.Len(res.Removed, 0))
	// A threshold of a millisecond's fraction makes alice idle enough.
	time.Sleep(5 * time.Millisecond)
	res, err = c.Prune(ctx, socketapi.PruneRequest{DryRun: true, IdleHours: ptr(1e-7)})
	assert.NilError(t, err)
	assert.Check(t, is.Len(res.Removed, 1))
	assert.Check(t, is.Equal(res.Removed[0].UserID, "alice"))
	_, err = c.Get(ctx, "alice")
	assert.NilError(t, err, "a dry run removes nothing")

	doc, err := c.OpenAPI(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(doc, socketapi.OpenAPI))

	metrics, err := c.Metrics(ctx)
	assert.NilError(t, err)
	for _, name := range []string{"zaki_ensure_total", "zaki_ensure_duration_seconds", "zaki_runtime_call_duration_seconds",
		"zaki_instances", "zaki_plugin_restarts_total", "zaki_registry_write_duration_seconds",
		"zaki_api_requests_total", "zaki_api_request_duration_seconds"} {
		assert.Check(t, strings.Contains(string(metrics), "# TYPE "+name+" "), "metric %s missing", name)
	}
	assert.Check(t, strings.Contains(string(metrics), `zaki_ensure_total{outcome="created"} 1`), "ensure outcome not counted")

	assert.NilError(t, c.Remove(ctx, "alice", false))
	_, err = c.Get(ctx, "alice")
	assert.Check(t, errors.Is(err, socketapi.ErrNotFound), "got %v", err)
	_, ok = e.Fake.Container("zaki-user-alice")
	assert.Check(t, !ok, "container removed")
	_, err = os.Stat(filepath.Join(e.StateDir, "instances", "alice"))
	assert.NilError(t, err, "data kept without purge")
	assert.NilError(t, c.Remove(ctx, "alice", true))
	_, err = os.Stat(filepath.Join(e.StateDir, "instances", "alice"))
	assert.Check(t, errors.Is(err, os.ErrNotExist), "data purged")

	// A real prune removes an idle instance, and is counted.
	_, err = c.Ensure(ctx, "idle", socketapi.InstanceSpec{Image: testenv.StubImage})
	assert.NilError(t, err)
	time.Sleep(5 * time.Millisecond)
	res, err = c.Prune(ctx, socketapi.PruneRequest{IdleHours: ptr(1e-7)})
	assert.NilError(t, err)
	assert.Check(t, is.Len(res.Removed, 1))
	_, ok = e.Fake.Container("zaki-user-idle")
	assert.Check(t, !ok, "pruned container removed")
	metrics, err = c.Metrics(ctx)
	assert.NilError(t, err)
	assert.Check(t, strings.Contains(string(metrics), `zaki_prune_instances_total{action="removed"} 1`), "prune not counted")

	assert.Check(t, e.Contract.Checked() >= 20, "checked %d responses", e.Contract.Checked())
}

func ptr[T any](v T) *T { return &v }

// TestEnsureStatus checks 201 on creation and 200 otherwise.
func TestEnsureStatus(t *testing.T) {
	e := start(t)
	r := raw(t, e.Socket, http.MethodPut, "/v1/instances/bob", "")
	assert.Equal(t, r.status, http.StatusCreated, r.body)
	assert.Check(t, is.Contains(r.body, `"outcome":"created"`))
	assert.Check(t, is.Equal(r.header.Get("Content-Type"), "application/json"))
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/bob", "{}")
	assert.Equal(t, r.status, http.StatusOK, r.body)
	assert.Check(t, is.Contains(r.body, `"outcome":"reused"`))
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/bob?force=true", "{}")
	assert.Equal(t, r.status, http.StatusOK, r.body)
	assert.Check(t, is.Contains(r.body, `"outcome":"reused"`))
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/bob?force=yes", "{}")
	assert.Equal(t, r.status, http.StatusBadRequest, r.body)
	assert.Check(t, is.Contains(r.body, "invalid force"))
	r = raw(t, e.Socket, http.MethodDelete, "/v1/instances/bob", "")
	assert.Equal(t, r.status, http.StatusNoContent, r.body)
	assert.Check(t, is.Equal(r.body, ""))
}

// TestErrorCodes answers every error code of the API, each with the
// documented status and error body, and the client maps each back to its
// class.
func TestErrorCodes(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Config = func(c *daemonConfig) { c.API.MaxBodyBytes = 4096 }
	})
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "carol", socketapi.InstanceSpec{})
	assert.NilError(t, err)

	type tc struct {
		name, method, path, body string
		headers                  []string
		setup                    func(t *testing.T)
		status                   int
		code                     string
		contains                 string
	}
	cases := []tc{
		{name: "bad user id", method: "GET", path: "/v1/instances/-bad", status: 400, code: "invalid_argument", contains: "invalid user id"},
		{name: "bad state", method: "GET", path: "/v1/instances?state=sleeping", status: 400, code: "invalid_argument", contains: "sleeping"},
		{name: "unknown field", method: "PUT", path: "/v1/instances/carol", body: `{"imag":"x"}`, status: 400, code: "invalid_argument", contains: `unknown field "imag"`},
		{name: "image not allowed", method: "PUT", path: "/v1/instances/carol", body: `{"image":"evil/miner:latest"}`, status: 403, code: "forbidden", contains: "not allowed"},
		{name: "browser", method: "GET", path: "/v1/health", headers: []string{"Origin: http://example.com"}, status: 403, code: "forbidden", contains: "Origin"},
		{name: "referer", method: "GET", path: "/v1/instances", headers: []string{"Referer: http://example.com/"}, status: 403, code: "forbidden", contains: "Referer"},
		{name: "sec-fetch", method: "GET", path: "/v1/instances", headers: []string{"Sec-Fetch-Site: same-origin"}, status: 403, code: "forbidden", contains: "Sec-Fetch-Site"},
		{name: "rebound host", method: "GET", path: "/v1/instances", headers: []string{"Host: evil.example"}, status: 403, code: "forbidden", contains: `Host "evil.example"`},
		{name: "rebound host with port", method: "PUT", path: "/v1/instances/carol", body: `{}`, headers: []string{"Host: evil.example:8080"}, status: 403, code: "forbidden", contains: "evil.example"},
		{name: "public address", method: "GET", path: "/v1/health", headers: []string{"Host: 10.0.0.7"}, status: 403, code: "forbidden", contains: "10.0.0.7"},
		{name: "mapped public address", method: "GET", path: "/v1/health", headers: []string{"Host: [::ffff:8.8.8.8]:80"}, status: 403, code: "forbidden", contains: "8.8.8.8"},
		{name: "no such user", method: "GET", path: "/v1/instances/nobody", status: 404, code: "not_found", contains: "nobody"},
		{name: "no such path", method: "GET", path: "/v2/instances", status: 404, code: "not_found"},
		{name: "wrong method", method: "PATCH", path: "/v1/instances/carol", status: 405, code: "method_not_allowed"},
		{name: "conflict", method: "PUT", path: "/v1/instances/dave", status: 409, code: "conflict",
			setup: func(t *testing.T) {
				e.Fake.FailNext("Create", 2, runtime.Errorf(runtime.ErrAlreadyExists, "container name in use"))
			}},
		{name: "too large", method: "PUT", path: "/v1/instances/carol", body: `{"env":{"A":"` + strings.Repeat("x", 5000) + `"}}`, status: 413, code: "too_large"},
		{name: "internal", method: "POST", path: "/v1/instances/carol/stop", status: 500, code: "internal",
			setup: func(t *testing.T) { e.Fake.FailNext("Stop", 1, errors.New("disk on fire")) }},
		{name: "runtime unavailable", method: "POST", path: "/v1/instances/carol/restart", status: 503, code: "runtime_unavailable",
			setup: func(t *testing.T) {
				e.Fake.FailNext("Restart", 1, runtime.Errorf(runtime.ErrUnavailable, "engine gone"))
			}},
		{name: "timeout", method: "PUT", path: "/v1/instances/erin", status: 504, code: "timeout",
			setup: func(t *testing.T) {
				e.Fake.FailNext("Create", 1, runtime.Errorf(runtime.ErrTimeout, "engine too slow"))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup(t)
			}
			r := raw(t, e.Socket, c.method, c.path, c.body, c.headers...)
			assert.Equal(t, r.status, c.status, r.body)
			assert.Check(t, is.Equal(r.errorCode(), c.code))
			assert.Check(t, is.Equal(r.header.Get("Content-Type"), "application/json"))
			assert.Check(t, is.Contains(r.message(), c.contains))
			if c.status == 405 {
				assert.Check(t, is.Equal(r.header.Get("Allow"), "DELETE, GET, HEAD, PUT"))
			}
		})
	}
	e.Fake.ClearFaults()

	// The client maps codes back to classes, with the server's message.
	_, err = e.Client.Get(ctx, "nobody")
	assert.Check(t, errors.Is(err, socketapi.ErrNotFound))
	assert.Check(t, errors.Is(err, errdefs.ErrNotFound))
	assert.Check(t, is.Equal(err.Error(), `no instance for user "nobody"`))
	_, err = e.Client.Ensure(ctx, "carol", socketapi.InstanceSpec{Image: "evil/miner:latest"})
	assert.Check(t, errors.Is(err, socketapi.ErrForbidden), "got %v", err)
	e.Fake.FailNext("Stop", 1, runtime.Errorf(runtime.ErrUnavailable, "engine gone"))
	_, err = e.Client.Stop(ctx, "carol")
	assert.Check(t, errors.Is(err, socketapi.ErrUnavailable), "got %v", err)
	e.Fake.FailNext("Stop", 1, errors.New("disk on fire"))
	_, err = e.Client.Stop(ctx, "carol")
	assert.Check(t, errors.Is(err, socketapi.ErrInternal), "got %v", err)
	var ae *socketapi.Error
	assert.Check(t, errors.As(err, &ae))
	assert.Check(t, is.Equal(ae.Status, 500))
	_, err = e.Client.Ensure(ctx, "carol", socketapi.InstanceSpec{Env: map[string]string{"A": strings.Repeat("x", 5000)}})
	assert.Check(t, errors.Is(err, socketapi.ErrTooLarge), "got %v", err)

	// A socket no one serves is unavailable.
	nobody := &socketapi.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
	_, err = nobody.Health(ctx)
	assert.Check(t, errors.Is(err, socketapi.ErrUnavailable), "got %v", err)
	assert.Check(t, is.Contains(err.Error(), "cannot reach zaki-agent at"))
}

// TestHealthUnavailable answers 503 with the health document while the
// engine is down, and the client returns both.
func TestHealthUnavailable(t *testing.T) {
	e := start(t)
	e.Fake.Down()
	defer e.Fake.Up()
	r := raw(t, e.Socket, http.MethodGet, "/v1/health", "")
	assert.Equal(t, r.status, http.StatusServiceUnavailable, r.body)
	assert.Check(t, is.Contains(r.body, `"status":"unavailable"`))
	h, err := e.Client.Health(ctxT(t))
	assert.Check(t, errors.Is(err, socketapi.ErrUnavailable), "got %v", err)
	assert.Check(t, is.Equal(h.Status, socketapi.HealthUnavailable))
	assert.Check(t, !h.Runtime.Up)
	assert.Check(t, is.Contains(err.Error(), "runtime unavailable"))
}

// TestEventsStream follows GET /v1/events: NDJSON, flushed per event.
func TestEventsStream(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	es, err := e.Client.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()
	_, err = e.Client.Ensure(ctx, "frank", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	var types []string
	for {
		ev, err := es.Recv()
		assert.NilError(t, err)
		assert.Check(t, ev.TimeMs > 0)
		types = append(types, ev.Type)
		if ev.Type == socketapi.EventEnsured {
			assert.Check(t, is.Equal(ev.UserID, "frank"))
			assert.Check(t, is.Equal(ev.Outcome, socketapi.OutcomeCreated))
			break
		}
	}
	assert.Check(t, is.Contains(types, socketapi.EventPull), "the default image is pulled first: %v", types)
}

// TestEventsSlowReader shows that a reader that does not read never holds
// up the agent: thousands of events go by and calls keep completing while
// it sleeps, and when it reads again it is told how many events it lost.
func TestEventsSlowReader(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Server = func(c *serverConfig) { c.EventBuffer = 4 }
	})
	ctx := ctxT(t)
	in, err := e.Client.Ensure(ctx, "gina", socketapi.InstanceSpec{Image: testenv.StubImage})
	assert.NilError(t, err)
	es, err := e.Client.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()

	// 20,000 health changes, some 4 MB of events, far more than the
	// socket buffers hold, while nobody reads the stream.
	const n = 20000
	health := func(i int) string {
		if i%2 == 0 {
			return "healthy"
		}
		return "unhealthy"
	}
	for i := 0; i < n; i++ {
		assert.NilError(t, e.Fake.SetHealth(in.ContainerID, health(i)))
	}
	// The fake delivers in order: once the agent shows the marker, it has
	// published every event before it.
	assert.NilError(t, e.Fake.SetHealth(in.ContainerID, "marker"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		got, err := e.Client.Get(ctx, "gina")
		if err != nil {
			return poll.Error(err)
		}
		if got.Health != "marker" {
			return poll.Continue("health %q", got.Health)
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second))
	_, err = e.Client.Touch(ctx, "gina")
	assert.NilError(t, err, "calls complete while the reader sleeps")

	var got, dropped atomic.Uint64
	go func() {
		for {
			ev, err := es.Recv()
			if err != nil {
				return
			}
			got.Add(1)
			dropped.Add(ev.Dropped)
		}
	}()
	// What was lost is counted in the next event delivered: in the end
	// every event is either read or counted.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if got.Load()+dropped.Load() >= n {
			return poll.Success()
		}
		if err := e.Fake.SetHealth(in.ContainerID, "starting"); err != nil {
			return poll.Error(err)
		}
		return poll.Continue("read %d + dropped %d < %d published", got.Load(), dropped.Load(), n)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(50*time.Millisecond))
	assert.Check(t, dropped.Load() > 0, "the slow reader was told it lost events")
	assert.Check(t, got.Load() < n, "the reader got %d events: it lost some", got.Load())
}

// TestLogsFollow streams a container's output as it is written, and ends
// when the caller hangs up.
func TestLogsFollow(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "hank", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	rc, err := e.Client.Logs(ctx, "hank", socketapi.LogOptions{Follow: true})
	assert.NilError(t, err)
	br := bufio.NewReader(rc)
	line, err := br.ReadString('\n')
	assert.NilError(t, err)
	assert.Check(t, is.Contains(line, "started"))
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("live %d", i)
		assert.NilError(t, e.Fake.WriteLog("zaki-user-hank", want))
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, want+"\n"))
	}
	rc.Close()
	// The server's stream ends: the fake has no more log readers blocked.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(e.Logs.String(), `path=/v1/instances/hank/logs status=200`) {
			return poll.Success()
		}
		return poll.Continue("logs call not finished")
	}, poll.WithTimeout(5*time.Second))
}

// TestShutdownEndsStreams: Shutdown ends event and log streams promptly
// and waits for a call in flight.
func TestShutdownEndsStreams(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "ivan", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	es, err := e.Client.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()
	rc, err := e.Client.Logs(ctx, "ivan", socketapi.LogOptions{Follow: true})
	assert.NilError(t, err)
	defer rc.Close()

	// A stop held in the engine for a moment is in flight at Shutdown.
	gate := make(chan struct{})
	e.Fake.Inject("Stop", runtimetest.Fault{Gate: gate, Times: 1})
	stopDone := make(chan error, 1)
	go func() { _, err := e.Client.Stop(ctx, "ivan"); stopDone <- err }()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if e.Fake.Calls("Stop") > 0 {
			return poll.Success()
		}
		return poll.Continue("stop not in the engine yet")
	})
	shutDone := make(chan error, 1)
	go func() {
		sctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		shutDone <- e.Server.Shutdown(sctx)
	}()
	streamsEnded := make(chan struct{})
	go func() {
		for {
			if _, err := es.Recv(); err != nil {
				break
			}
		}
		io.Copy(io.Discard, rc)
		close(streamsEnded)
	}()
	select {
	case <-streamsEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("streams did not end at shutdown")
	}
	select {
	case <-shutDone:
		t.Fatal("shutdown returned with a call in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	assert.NilError(t, <-stopDone, "the call in flight finished")
	assert.NilError(t, <-shutDone)
}

// TestMutatingCallsLogged: every mutating call is logged with uid, pid,
// method, path and outcome, at info level; routine ones (a touch, an
// ensure that reuses the running instance) at debug; never a body or an
// env value.
func TestMutatingCallsLogged(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "judy", socketapi.InstanceSpec{Env: map[string]string{"API_KEY": "do-not-log-me"}})
	assert.NilError(t, err)
	_, err = e.Client.Ensure(ctx, "judy", socketapi.InstanceSpec{Env: map[string]string{"API_KEY": "do-not-log-me\n"}})
	assert.Check(t, errors.Is(err, socketapi.ErrInvalidArgument))
	_ = raw(t, e.Socket, http.MethodPut, "/v1/instances/judy", `{"env":{"API_KEY":"do-not-log-me"},"bogus":1}`)
	in, err := e.Client.Ensure(ctx, "judy", socketapi.InstanceSpec{Env: map[string]string{"API_KEY": "do-not-log-me"}})
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, socketapi.OutcomeReused)
	_, err = e.Client.Touch(ctx, "judy")
	assert.NilError(t, err)
	_, err = e.Client.Stop(ctx, "judy")
	assert.NilError(t, err)
	logs := e.Logs.String()
	assert.Check(t, !strings.Contains(logs, "do-not-log-me"), "an env value was logged:\n%s", logs)
	for _, want := range []string{
		`level=INFO msg="api call" method=PUT path=/v1/instances/judy status=201 outcome=ok`,
		`level=INFO msg="api call" method=PUT path=/v1/instances/judy status=400 outcome=invalid_argument`,
		`level=DEBUG msg="api call" method=PUT path=/v1/instances/judy status=200 outcome=ok`,
		`level=DEBUG msg="api call" method=POST path=/v1/instances/judy/touch status=200 outcome=ok`,
		`level=INFO msg="api call" method=POST path=/v1/instances/judy/stop status=200 outcome=ok`,
	} {
		assert.Check(t, is.Contains(logs, want))
	}
	assert.Check(t, !strings.Contains(logs, `level=INFO msg="api call" method=PUT path=/v1/instances/judy status=200`), "a reused ensure logged at info:\n%s", logs)
	assert.Check(t, is.Contains(logs, fmt.Sprintf("uid=%d pid=%d", os.Geteuid(), os.Getpid())))
}

// TestSlowClients: a client that sends its headers or its body too slowly
// is cut off (headers) or answered 400 (body), and nothing happens.
func TestSlowClients(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Server = func(c *serverConfig) {
			c.ReadHeaderTimeout = 300 * time.Millisecond
			c.BodyTimeout = 300 * time.Millisecond
			// Each write's deadline runs until net/http flushes the
			// answer, after the handler: a second on a loaded machine.
			c.WriteTimeout = time.Second
		}
	})
	t.Run("keep-alive past the write timeout", func(t *testing.T) {
		c, err := net.Dial("unix", e.Socket)
		assert.NilError(t, err)
		defer c.Close()
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			_, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
			assert.NilError(t, err)
			resp, err := http.ReadResponse(br, nil)
			assert.NilError(t, err, "response %d on one connection", i+1)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Check(t, is.Equal(resp.StatusCode, 200))
			time.Sleep(2 * time.Second) // past the write timeout
		}
	})
	t.Run("headers", func(t *testing.T) {
		c, err := net.Dial("unix", e.Socket)
		assert.NilError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n")
		assert.NilError(t, err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		assert.NilError(t, err, "the server closes the connection")
		assert.Check(t, time.Since(start) < 5*time.Second)
	})
	t.Run("body", func(t *testing.T) {
		c, err := net.Dial("unix", e.Socket)
		assert.NilError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "PUT /v1/instances/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"image\":")
		assert.NilError(t, err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		assert.NilError(t, err)
		b, _ := io.ReadAll(resp.Body)
		assert.Check(t, is.Equal(resp.StatusCode, http.StatusBadRequest), string(b))
		assert.Check(t, is.Contains(string(b), "read request body"))
	})
	assert.Check(t, is.Len(e.Registry.List(), 0))
	assert.Check(t, is.Equal(e.Fake.Calls("Create"), 0))
}

// TestLocalHostsServed: the hosts a local client sends keep working
// (curl --unix-socket sends the URL's host, Node's http sends "localhost",
// HTTP/1.0 may send none); only a name a browser could have reached by DNS
// is refused (TestErrorCodes).
func TestLocalHostsServed(t *testing.T) {
	e := start(t)
	for _, host := range []string{"localhost", "localhost:80", "zaki", "d", "LOCALHOST.", "agent.localhost", "127.0.0.1", "127.1.2.3:9", "[::1]", "[::1]:80", "[::ffff:127.0.0.1]"} {
		t.Run(host, func(t *testing.T) {
			r := raw(t, e.Socket, "GET", "/v1/health", "", "Host: "+host)
			assert.Check(t, is.Equal(r.status, 200), r.body)
		})
	}
	t.Run("HTTP/1.0 without Host", func(t *testing.T) {
		conn, err := net.Dial("unix", e.Socket)
		assert.NilError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /v1/health HTTP/1.0\r\n\r\n")
		assert.NilError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		assert.NilError(t, err)
		defer resp.Body.Close()
		assert.Check(t, is.Equal(resp.StatusCode, 200))
	})
}
