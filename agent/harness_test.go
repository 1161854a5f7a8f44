package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeEnv is an agent over the in-memory runtime, its registry in a temp
// state dir.
type fakeEnv struct {
	t    *testing.T
	cfg  envConfig
	fake *runtimetest.Fake
	// rt, when set, is the runtime the agent drives instead of fake (a
	// FakeCluster whose Fake is fake, say).
	rt     runtime.Runtime
	reg    *registry.Registry
	a      *Agent
	clock  *clock
	cancel context.CancelFunc
	done   chan struct{}
	// fault, when set, fails the registry's writes (registry.Options.Fault).
	fault atomic.Pointer[func(file string, step registry.WriteStep) error]
}

// envConfig is the agent's config and the state dir the daemon would
// give it.
type envConfig struct {
	Config
	StateDir string
}

func testConfig(t *testing.T) envConfig {
	cfg := envConfig{Config: DefaultConfig(), StateDir: t.TempDir()}
	cfg.Instance.Image = testenv.StubImage
	cfg.Instance.AllowedImages = []string{"zaki/*", "alpine/openclaw:*"}
	cfg.Instance.PortRange = "20000-20099"
	cfg.Instance.ReadinessTimeoutSeconds = 2
	return cfg
}

// newFakeEnv starts an agent over a new fake, with probes that always
// succeed, and waits until it is ready.
func newFakeEnv(t *testing.T, mutate ...func(*Config)) *fakeEnv {
	t.Helper()
	e := unstartedFakeEnv(t, mutate...)
	e.start()
	return e
}

// unstartedFakeEnv is newFakeEnv's env before its agent starts.
func unstartedFakeEnv(t *testing.T, mutate ...func(*Config)) *fakeEnv {
	cfg := testConfig(t)
	for _, m := range mutate {
		m(&cfg.Config)
	}
	e := &fakeEnv{t: t, cfg: cfg, clock: newClock()}
	e.fake = runtimetest.NewFake(runtimetest.WithClock(e.clock.Now))
	return e
}

// start opens the registry and starts an agent on the env's state dir,
// and waits for its first reconciliation.
func (e *fakeEnv) start() {
	e.t.Helper()
	e.startNoWait()
	select {
	case <-e.a.Ready():
	case <-time.After(10 * time.Second):
		e.t.Fatal("agent not ready within 10s")
	}
}

// startNoWait starts an agent as start does, without waiting for its
// first reconciliation.
func (e *fakeEnv) startNoWait() {
	t := e.t
	t.Helper()
	reg, err := registry.Open(e.cfg.StateDir, registry.Options{Logger: slog.New(slog.DiscardHandler),
		Fault: func(file string, step registry.WriteStep) error {
			if f := e.fault.Load(); f != nil {
				return (*f)(file, step)
			}
			return nil
		}})
	assert.NilError(t, err)
	e.reg = reg
	var rt runtime.Runtime = e.fake
	if e.rt != nil {
		rt = e.rt
	}
	// The node loop of a cluster runtime is driven by the tests (resync).
	a, err := New(e.cfg.Config, rt, reg, Options{StateDir: e.cfg.StateDir, Now: e.clock.Now, NodePoll: time.Hour})
	assert.NilError(t, err)
	a.probe = func(ctx context.Context, addr string) error { return nil }
	e.a = a
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan struct{})
	go func() { defer close(e.done); a.Run(ctx) }()
	t.Cleanup(e.stop)
}

// stop ends the agent's loops and closes the registry (idempotent).
func (e *fakeEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.cancel = nil
	e.reg.Close()
}

// restart stops the agent and starts a new one on the same state dir and
// the same fake engine.
func (e *fakeEnv) restart() {
	e.stop()
	e.start()
}

func (e *fakeEnv) ensure(user string, spec InstanceSpec) Instance {
	e.t.Helper()
	in, err := e.a.Ensure(context.Background(), user, spec, EnsureOptions{})
	assert.NilError(e.t, err)
	return in
}

// waitState polls until user's instance is in state.
func (e *fakeEnv) waitState(user, state string) {
	e.t.Helper()
	poll.WaitOn(e.t, func(poll.LogT) poll.Result {
		in, err := e.a.Get(context.Background(), user)
		if err != nil {
			return poll.Error(err)
		}
		if in.State != state {
			return poll.Continue("state %s, want %s", in.State, state)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
}
