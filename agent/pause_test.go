package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// pauseRules turns the pause rule on at 10 minutes and the stop rule at
// 30, the removal rules off.
func pauseRules(c *Config) {
	c.Prune.IdlePauseMinutes, c.Prune.IdleStopMinutes, c.Prune.IdleHours, c.Prune.MaxAgeDays = 10, 30, 0, 0
}

// fakeState is the engine's state of user's container.
func (e *fakeEnv) fakeState(user string) runtime.State {
	e.t.Helper()
	c, ok := e.fake.Container(containerName(user))
	assert.Assert(e.t, ok, "no container for %s", user)
	return c.State
}

func TestPauseTier(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t, pauseRules)
	e.ensure("alice", InstanceSpec{})
	e.ensure("bob", InstanceSpec{})
	e.clock.Add(11 * time.Minute)
	e.ensure("bob", InstanceSpec{})

	dry, err := e.a.Prune(ctx, PruneRequest{DryRun: true})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(dry.Paused), []string{"alice"})
	assert.Equal(t, e.fakeState("alice"), runtime.StateRunning)

	res, err := e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice"})
	assert.DeepEqual(t, userIDs(res.Stopped), []string{})
	assert.Equal(t, res.Paused[0].Reason, ReasonIdlePause)
	assert.Equal(t, e.fakeState("alice"), runtime.StatePaused)
	assert.Equal(t, e.fakeState("bob"), runtime.StateRunning)
	in, err := e.a.Get(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StatePaused)
	c := e.a.Counts()
	assert.DeepEqual(t, c, Counts{Total: 2, Running: 1, Paused: 1})
	assert.Equal(t, gauge(t, e.a, "zaki_instances", "paused"), 1.0)
	assert.Equal(t, gauge(t, e.a, "zaki_instances", "running"), 1.0)
	list, err := e.a.List(ctx, StatePaused)
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1)

	// A second pass leaves it paused: nothing to do.
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{})

	// Exec on a paused instance is a conflict that says what to do.
	_, err = e.a.Exec(ctx, "alice", socketapi.ExecRequest{Cmd: []string{"/gateway-stub", "-exec", "echo", "x"}})
	assert.Assert(t, errors.Is(err, errdefs.ErrConflict), "exec: %v", err)
	assert.ErrorContains(t, err, "paused")

	// An ensure thaws it, without a start.
	starts := e.fake.Calls("Start")
	in = e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeResumed)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, e.fakeState("alice"), runtime.StateRunning)
	assert.Equal(t, e.fake.Calls("Start"), starts)
	assert.Equal(t, e.fake.Calls("Resume"), 1)
	// and the next one is a plain reuse.
	assert.Equal(t, e.ensure("alice", InstanceSpec{}).Outcome, OutcomeReused)
	// The engine's unpause event reaches the agent after its own thaw
	// (here at once; in life minutes before the next pause): the health
	// events sent after it mark when it has been applied.
	e.drainEvents("alice", in.ContainerID)

	// A touch thaws it too.
	e.clock.Add(11 * time.Minute)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice", "bob"})
	in, err = e.a.Touch(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, OutcomeResumed)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, e.fakeState("alice"), runtime.StateRunning)

	// Past idleStopMinutes, a paused instance is stopped.
	e.clock.Add(25 * time.Minute)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Stopped), []string{"bob"})
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice"})
	assert.Equal(t, e.fakeState("bob"), runtime.StateExited)
	in, err = e.a.Get(ctx, "bob")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StateStopped)
	// A stopped one is started, as before.
	assert.Equal(t, e.ensure("bob", InstanceSpec{}).Outcome, OutcomeStarted)
}

func TestPauseRuleBeforeStopRule(t *testing.T) {
	for _, tc := range []struct {
		pause, stop float64
		ok          bool
	}{{10, 30, true}, {10, 0, true}, {0, 30, true}, {30, 30, false}, {40, 30, false}, {-1, 0, false}} {
		cfg := DefaultConfig()
		cfg.Prune.IdlePauseMinutes, cfg.Prune.IdleStopMinutes = tc.pause, tc.stop
		err := cfg.Validate()
		if tc.ok {
			assert.NilError(t, err, "pause %g stop %g", tc.pause, tc.stop)
		} else {
			assert.ErrorContains(t, err, "prune.idlePauseMinutes", "pause %g stop %g", tc.pause, tc.stop)
		}
	}
	// A reload is checked the same way, and a refused one changes nothing.
	e := newFakeEnv(t, pauseRules)
	next := e.a.Config()
	next.Prune.IdlePauseMinutes = 30
	_, _, err := e.a.Reload(next)
	assert.ErrorContains(t, err, "prune.idlePauseMinutes")
	assert.Equal(t, e.a.Config().Prune.IdlePauseMinutes, 10.0)

	// A pass whose thresholds put the pause rule past the stop rule:
	// the stop rule wins.
	e.ensure("alice", InstanceSpec{})
	e.clock.Add(11 * time.Minute)
	res, err := e.a.Prune(context.Background(), PruneRequest{IdleStopMinutes: f64(5)})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Stopped), []string{"alice"})
	assert.DeepEqual(t, userIDs(res.Paused), []string{})
}

// A paused instance outlives the agent: a new agent finds it paused
// (adopted as paused when its entry is gone too), never stopped or
// missing, and its next ensure resumes it.
func TestPausedAdoptedAfterRestart(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t, pauseRules)
	e.ensure("alice", InstanceSpec{})
	e.clock.Add(11 * time.Minute)
	res, err := e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice"})

	e.restart()
	in, err := e.a.Get(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StatePaused)
	assert.Equal(t, e.fakeState("alice"), runtime.StatePaused)
	rec, _ := e.reg.Get("alice")
	assert.Equal(t, rec.State, StatePaused)

	// Registry lost: adopted from the labels, as paused.
	e.stop()
	assert.NilError(t, os.Remove(filepath.Join(e.cfg.StateDir, "registry.json")))
	e.start()
	in, err = e.a.Get(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StatePaused)
	assert.Equal(t, e.a.Counts(), Counts{Total: 1, Paused: 1})
	assert.Equal(t, e.fakeState("alice"), runtime.StatePaused)

	assert.Equal(t, e.ensure("alice", InstanceSpec{}).Outcome, OutcomeResumed)
	assert.Equal(t, e.fakeState("alice"), runtime.StateRunning)
}

// The engine's pause and unpause events, whoever caused them, feed the
// live view; stop, restart, logs and remove work on a paused instance.
func TestPausedInstanceLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t)
	e.ensure("alice", InstanceSpec{})
	assert.NilError(t, e.fake.Pause(ctx, containerName("alice")))
	e.waitState("alice", StatePaused)
	assert.NilError(t, e.fake.Resume(ctx, containerName("alice")))
	e.waitState("alice", StateRunning)

	assert.NilError(t, e.fake.Pause(ctx, containerName("alice")))
	e.waitState("alice", StatePaused)
	rc, err := e.a.Logs(ctx, "alice", runtime.LogOptions{})
	assert.NilError(t, err)
	rc.Close()
	in, err := e.a.Restart(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, e.fakeState("alice"), runtime.StateRunning)

	assert.NilError(t, e.fake.Pause(ctx, containerName("alice")))
	e.waitState("alice", StatePaused)
	in, err = e.a.Stop(ctx, "alice")
	assert.NilError(t, err)
	assert.Equal(t, e.fakeState("alice"), runtime.StateExited)
	e.waitState("alice", StateStopped)

	e.ensure("alice", InstanceSpec{})
	assert.NilError(t, e.fake.Pause(ctx, containerName("alice")))
	e.waitState("alice", StatePaused)
	assert.NilError(t, e.a.Remove(ctx, "alice", false))
	_, ok := e.fake.Container(containerName("alice"))
	assert.Assert(t, !ok, "container of a removed paused instance still there")
}

// gauge reads the metric name{state=state} of the agent.
func gauge(t *testing.T, a *Agent, name, state string) float64 {
	t.Helper()
	mfs, err := a.metrics.Gatherer().Gather()
	assert.NilError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{state=%q}", name, state)
	return 0
}

// A paused instance is idle for the removal rules: past idleHours it is
// removed (force: the engine kills a paused container), its data kept.
func TestPausedRemovedWhenIdle(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t, pauseRules, func(c *Config) { c.Prune.IdleHours = 1 })
	e.ensure("alice", InstanceSpec{})
	e.clock.Add(11 * time.Minute)
	res, err := e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice"})
	e.clock.Add(2 * time.Hour)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Removed), []string{"alice"})
	_, ok := e.fake.Container(containerName("alice"))
	assert.Assert(t, !ok, "the paused container is still there")
	_, err = os.Stat(filepath.Join(e.cfg.StateDir, "instances", "alice"))
	assert.NilError(t, err, "data dir of alice")
}

// drainEvents waits until the agent has applied every engine event of
// user's container id emitted so far: events come in order, so two
// health changes sent now mark the point.
func (e *fakeEnv) drainEvents(user, id string) {
	e.t.Helper()
	for _, status := range []string{"unhealthy", "healthy"} {
		assert.NilError(e.t, e.fake.SetHealth(id, status))
		poll.WaitOn(e.t, func(poll.LogT) poll.Result {
			in, err := e.a.Get(context.Background(), user)
			if err != nil {
				return poll.Error(err)
			}
			if in.Health != status {
				return poll.Continue("health %q, want %q", in.Health, status)
			}
			return poll.Success()
		}, poll.WithTimeout(5*time.Second), poll.WithDelay(time.Millisecond))
	}
}
