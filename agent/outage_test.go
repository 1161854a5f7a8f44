package agent

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// An engine restart stops every container (exit 0 on SIGTERM, which the
// on-failure policy leaves down): once the runtime answers again the agent
// starts them, but not the one it had stopped itself.
func TestOutageBringsInstancesBack(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, u := range []string{"a", "b", "kept-down"} {
		ids[u] = e.ensure(u, InstanceSpec{}).ContainerID
	}
	_, err := e.a.Stop(ctx, "kept-down")
	assert.NilError(t, err)
	e.waitState("kept-down", StateStopped)
	e.clock.Add(time.Second)
	starts := e.fake.Calls("Start")

	// The engine goes: it stops its containers, then its API goes away.
	assert.NilError(t, e.fake.Stop(ctx, []string{ids["a"], ids["b"]}, 0))
	e.waitState("a", StateStopped)
	down := runtime.Errorf(runtime.ErrUnavailable, "cannot connect to the engine")
	for _, m := range []string{"Events", "List", "Start", "Info"} {
		e.fake.Fail(m, down)
	}
	e.fake.BreakEvents(down)
	waitRuntimeUp(t, e.a, false)
	e.clock.Add(10 * time.Second)

	// It comes back.
	e.fake.ClearFaults()
	e.waitState("a", StateRunning)
	e.waitState("b", StateRunning)
	in, err := e.a.Get(ctx, "kept-down")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StateStopped, "the agent's own stop was undone by the outage recovery")
	assert.Equal(t, e.fake.Calls("Start"), starts+2)
}

// An outage during which no container stopped starts nothing.
func TestOutageWithoutStopsStartsNothing(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("a", InstanceSpec{})
	starts := e.fake.Calls("Start")
	down := runtime.Errorf(runtime.ErrUnavailable, "plugin gone")
	e.fake.Fail("Events", down)
	e.fake.BreakEvents(down)
	waitRuntimeUp(t, e.a, false)
	e.fake.ClearFaults()
	waitRuntimeUp(t, e.a, true)
	assert.Equal(t, e.fake.Calls("Start"), starts)
}

// waitRuntimeUp waits until the agent sees the runtime up (or down).
func waitRuntimeUp(t *testing.T, a *Agent, up bool) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if a.runtimeUp.Load() != up {
			return poll.Continue("the agent does not see the runtime up=%v yet", up)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
}

// While the event stream is down, an ensure asks the engine instead of
// trusting what it last heard: a container stopped meanwhile is started,
// not reported running.
func TestEnsureAsksTheEngineWhileEventsAreDown(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	id := e.ensure("u", InstanceSpec{}).ContainerID
	down := runtime.Errorf(runtime.ErrUnavailable, "plugin gone")
	e.fake.Fail("Events", down)
	e.fake.BreakEvents(down)
	waitRuntimeUp(t, e.a, false)
	assert.NilError(t, e.fake.Stop(ctx, []string{id}, 0))
	in := e.ensure("u", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeStarted)
	assert.Equal(t, in.State, StateRunning)
	c, err := e.fake.Inspect(ctx, id)
	assert.NilError(t, err)
	assert.Equal(t, c.State, runtime.StateRunning)
}
