package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// heldEvents is a runtime whose event stream never reaches the agent's
// event loop: the test plays the engine's events itself (lateEvents),
// in the engine's order, as late as it likes, which makes the race between
// the agent's own calls and the stream deterministic.
type heldEvents struct{ runtime.Runtime }

func (h heldEvents) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	s, err := h.Runtime.Events(ctx, opts)
	if err != nil {
		return nil, err
	}
	return heldStream{s}, nil
}

type heldStream struct{ runtime.EventStream }

// Recv swallows every event; it returns only when the stream ends.
func (s heldStream) Recv() (runtime.Event, error) {
	for {
		if _, err := s.EventStream.Recv(); err != nil {
			return runtime.Event{}, err
		}
	}
}

// lateEnv is a fakeEnv whose agent gets the engine's events only when the
// test plays them (play).
type lateEnv struct {
	*fakeEnv
	stream runtime.EventStream // the engine's events, as the agent would get them
}

func newLateEnv(t *testing.T, mutate ...func(*Config)) *lateEnv {
	t.Helper()
	e := unstartedFakeEnv(t, mutate...)
	e.rt = heldEvents{e.fake}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := e.fake.Events(ctx, runtime.EventOptions{Labels: map[string]string{newLabelKeys(e.cfg.Instance.LabelPrefix).Instance: "1"}})
	assert.NilError(t, err)
	e.start()
	return &lateEnv{fakeEnv: e, stream: s}
}

// play feeds the agent the engine's events sent so far about its
// instances, oldest first, through to the last one about container id
// with action last, and calls check after each.
func (e *lateEnv) play(id string, last runtime.EventAction, check func(runtime.Event)) {
	e.t.Helper()
	for {
		ev, err := e.stream.Recv()
		assert.NilError(e.t, err)
		e.a.apply(ev)
		check(ev)
		if ev.ID == id && ev.Action == last {
			return
		}
	}
}

// stateAfter returns a check that user's instance is in state (and, when
// id is not "", its container is id) after every event played.
func (e *lateEnv) stateAfter(user, id, state string) func(runtime.Event) {
	return func(ev runtime.Event) {
		e.t.Helper()
		in, err := e.a.Get(context.Background(), user)
		assert.NilError(e.t, err, "after %s of %.12s", ev.Action, ev.ID)
		assert.Equal(e.t, in.State, state, "after %s of %.12s", ev.Action, ev.ID)
		if id != "" {
			assert.Equal(e.t, in.ContainerID, id, "after %s of %.12s", ev.Action, ev.ID)
		}
	}
}

// echoCount is the number of containers with echoes awaited.
func (e *lateEnv) echoCount() int {
	e.a.mu.RLock()
	defer e.a.mu.RUnlock()
	return len(e.a.echo)
}

// The race of TestEnsureStartsStopped, made deterministic: the events of
// the first ensure and of the stop reach the agent only after the second
// ensure started the container again. None of them may move its state
// back: an ensure that answered "started" stays running.
func TestEventLateDoesNotUndoEnsure(t *testing.T) {
	e := newLateEnv(t)
	ctx := context.Background()
	in := e.ensure("carol", InstanceSpec{})
	_, err := e.a.Stop(ctx, "carol")
	assert.NilError(t, err)
	got, err := e.a.Get(ctx, "carol")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StateStopped)
	again := e.ensure("carol", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeStarted)
	assert.Equal(t, again.State, StateRunning)

	// create, start, kill, die, stop, start: all but the last are older
	// than the state the ensure recorded.
	e.play(in.ContainerID, runtime.EventStop, e.stateAfter("carol", in.ContainerID, StateRunning))
	e.play(in.ContainerID, runtime.EventStart, e.stateAfter("carol", in.ContainerID, StateRunning))
	assert.Equal(t, e.echoCount(), 0)

	// From here on the stream is news: a crash is seen.
	assert.NilError(t, e.fake.Exit(in.ContainerID, 3))
	e.play(in.ContainerID, runtime.EventDie, func(runtime.Event) {})
	got, err = e.a.Get(ctx, "carol")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StateStopped)
}

// A stop's late events do not bring a stopped instance back, nor do those
// of the ensure before it.
func TestEventLateDoesNotUndoStop(t *testing.T) {
	e := newLateEnv(t)
	ctx := context.Background()
	in := e.ensure("carol", InstanceSpec{})
	_, err := e.a.Stop(ctx, "carol")
	assert.NilError(t, err)
	e.play(in.ContainerID, runtime.EventStop, e.stateAfter("carol", in.ContainerID, StateStopped))
	assert.Equal(t, e.echoCount(), 0)

	// A stop of a stopped instance changes nothing and awaits no echo (the
	// engine sends none): what follows is news.
	_, err = e.a.Stop(ctx, "carol")
	assert.NilError(t, err)
	assert.Equal(t, e.echoCount(), 0)
	assert.NilError(t, e.fake.Start(ctx, in.ContainerID))
	e.play(in.ContainerID, runtime.EventStart, func(runtime.Event) {})
	got, err := e.a.Get(ctx, "carol")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StateRunning)
}

// A restart's late die does not show the restarted instance stopped, and
// its late start and restart tell one instance.started even when a stop
// came before them.
func TestEventLateDoesNotUndoRestart(t *testing.T) {
	e := newLateEnv(t)
	ctx := context.Background()
	sub := e.a.Subscribe(64)
	defer sub.Close()
	in := e.ensure("carol", InstanceSpec{})
	_, err := e.a.Restart(ctx, "carol")
	assert.NilError(t, err)
	// create, start, then the restart's kill, die, stop, start, restart.
	e.play(in.ContainerID, runtime.EventRestart, e.stateAfter("carol", in.ContainerID, StateRunning))
	assert.Equal(t, e.echoCount(), 0)

	_, err = e.a.Restart(ctx, "carol")
	assert.NilError(t, err)
	_, err = e.a.Stop(ctx, "carol")
	assert.NilError(t, err)
	e.play(in.ContainerID, runtime.EventStop, e.stateAfter("carol", in.ContainerID, StateStopped))
	e.play(in.ContainerID, runtime.EventStop, e.stateAfter("carol", in.ContainerID, StateStopped))
	assert.Equal(t, e.echoCount(), 0)
	started := 0
	for len(sub.C) > 0 {
		if ev := <-sub.C; ev.Type == EventStarted {
			started++
		}
	}
	assert.Equal(t, started, 3, "instance.started: the ensure's and one per restart")
}

// The race of TestPauseTier: the pause of an idle instance reaches the
// agent after an ensure thawed it, and the pause of another after a prune
// stopped it.
func TestEventLatePauseAndStop(t *testing.T) {
	e := newLateEnv(t, pauseRules)
	ctx := context.Background()
	alice := e.ensure("alice", InstanceSpec{})
	bob := e.ensure("bob", InstanceSpec{})

	e.clock.Add(11 * time.Minute)
	res, err := e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"alice", "bob"})
	in := e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeResumed)
	e.clock.Add(20 * time.Minute)
	assert.Equal(t, e.ensure("alice", InstanceSpec{}).Outcome, OutcomeReused)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Stopped), []string{"bob"})
	assert.DeepEqual(t, userIDs(res.Paused), []string{})

	// Their creates and starts, the pauses, the unpause of alice, the
	// stop of bob: none moves either back.
	check := func(ev runtime.Event) {
		e.stateAfter("alice", alice.ContainerID, StateRunning)(ev)
		e.stateAfter("bob", bob.ContainerID, StateStopped)(ev)
	}
	e.play(bob.ContainerID, runtime.EventStop, check)
	assert.Equal(t, e.echoCount(), 0)
}

// A recreated instance: the late events of its old container (removed by
// the agent) neither replace the new container in the live view nor, with
// the old one's destroy, drop it.
func TestEventLateOfRemovedContainer(t *testing.T) {
	e := newLateEnv(t)
	first := e.ensure("dave", InstanceSpec{Env: map[string]string{"MODEL": "a"}})
	e.clock.Add(6 * time.Minute)
	cold := e.ensure("dave", InstanceSpec{Env: map[string]string{"MODEL": "b"}})
	assert.Equal(t, cold.Outcome, OutcomeRecreated)
	assert.Assert(t, cold.ContainerID != first.ContainerID)
	e.play(cold.ContainerID, runtime.EventStart, e.stateAfter("dave", cold.ContainerID, StateRunning))
	assert.Equal(t, e.echoCount(), 0)
}

// An echo that never comes is awaited no longer than echoWait: then the
// container's events are applied again.
func TestEventEchoWaitBounded(t *testing.T) {
	e := newLateEnv(t)
	ctx := context.Background()
	in := e.ensure("erin", InstanceSpec{})
	e.play(in.ContainerID, runtime.EventStart, func(runtime.Event) {})
	// The agent's view says paused, but the engine sends no pause.
	e.a.markState("erin", in.ContainerID, runtime.StatePaused, runtime.EventPause)
	assert.NilError(t, e.fake.Exit(in.ContainerID, 1))
	e.play(in.ContainerID, runtime.EventDie, func(runtime.Event) {})
	got, err := e.a.Get(ctx, "erin")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StatePaused, "die applied while the pause is awaited")

	e.a.mu.Lock()
	e.a.echoWait = -time.Second // every echo awaited from now on is overdue
	e.a.mu.Unlock()
	e.a.markState("erin", in.ContainerID, runtime.StateRunning, runtime.EventUnpause)
	assert.NilError(t, e.fake.Start(ctx, in.ContainerID))
	assert.NilError(t, e.fake.Exit(in.ContainerID, 2))
	e.play(in.ContainerID, runtime.EventDie, func(runtime.Event) {})
	got, err = e.a.Get(ctx, "erin")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StateStopped)
}

// A new event stream forgets the echoes due on the one lost.
func TestEventEchoesForgottenOnReconnect(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("frank", InstanceSpec{})
	e.waitState("frank", StateRunning)
	e.a.markState("frank", in.ContainerID, runtime.StatePaused, runtime.EventPause)
	assert.Equal(t, (&lateEnv{fakeEnv: e}).echoCount(), 1)
	e.fake.BreakEvents(errors.New("connection reset"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		e.a.mu.RLock()
		defer e.a.mu.RUnlock()
		if len(e.a.echo) != 0 {
			return poll.Continue("echoes still awaited: %d", len(e.a.echo))
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
	// and the resync that follows reads the engine: running.
	e.waitState("frank", StateRunning)
}
