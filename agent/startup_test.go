package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// TestAnswersBeforeReconciled holds the first reconciliation (the engine's
// List) and calls the agent meanwhile: reads answer from the registry
// without the engine, calls that act on a user ask the engine for that
// user alone and never make a second container or call a running one
// missing, and the calls about every user wait for the reconciliation.
func TestAnswersBeforeReconciled(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.CallTimeoutSeconds = 1 })
	ctx := context.Background()
	alice := e.ensure("alice", InstanceSpec{})
	bob := e.ensure("bob", InstanceSpec{})
	carol := e.ensure("carol", InstanceSpec{})
	_, err := e.a.Stop(ctx, "bob")
	assert.NilError(t, err)
	e.waitState("bob", StateStopped)
	e.stop()

	gate := make(chan struct{})
	e.fake.Inject("List", runtimetest.Fault{Gate: gate})
	e.fake.ResetCalls()
	e.startNoWait()
	assert.Assert(t, !e.a.reconciled())

	// List: the states last recorded (the last agent wrote them as it
	// stopped), no engine call.
	list, err := e.a.List(ctx, "")
	assert.NilError(t, err)
	states := map[string]string{}
	for _, in := range list {
		states[in.UserID] = in.State
	}
	assert.DeepEqual(t, states, map[string]string{"alice": StateRunning, "bob": StateStopped, "carol": StateRunning})
	c := e.a.Counts()
	assert.Equal(t, c.Running, 2)
	assert.Equal(t, c.Stopped, 1)
	assert.Equal(t, e.fake.Calls("Inspect"), 0)
	// Get: the engine is asked about that user alone, once.
	assert.NilError(t, e.fake.Exit(carol.ContainerID, 0)) // exited since the last agent stopped
	for range 2 {
		for user, want := range map[string]string{"alice": StateRunning, "bob": StateStopped, "carol": StateStopped} {
			in, err := e.a.Get(ctx, user)
			assert.NilError(t, err)
			assert.Equal(t, in.State, want, user)
		}
	}
	assert.Equal(t, e.fake.Calls("Inspect"), 3)

	// A stop of a running one (not yet in the live view) stops it: its
	// container is not "missing".
	_, err = e.a.Stop(ctx, "alice")
	assert.NilError(t, err)
	got, _ := e.fake.Container(alice.ContainerID)
	assert.Assert(t, !got.Running(), "%+v", got)
	assert.Equal(t, e.fake.Calls("Stop"), 1)
	// An ensure of a stopped one: started, the same container, and of a
	// running one: reused.
	for _, u := range []Instance{alice, bob} {
		in := e.ensure(u.UserID, InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeStarted)
		assert.Equal(t, in.ContainerID, u.ContainerID)
	}
	in := e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Assert(t, e.fake.Calls("Inspect") >= 3, "each user asked of the engine: %v", e.fake.CallCounts())
	assert.Equal(t, e.fake.Calls("Create"), 0)

	// Prune acts on every user: it waits for the reconciliation, and
	// gives up after one call bound.
	_, err = e.a.Prune(ctx, PruneRequest{DryRun: true})
	assert.Assert(t, errors.Is(err, errdefs.ErrUnavailable), "%v", err)

	close(gate)
	select {
	case <-e.a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not reconciled once the engine lists")
	}
	_, err = e.a.Prune(ctx, PruneRequest{DryRun: true})
	assert.NilError(t, err)
	// One container each, in the states the calls left.
	assert.Equal(t, len(e.fake.Containers()), 3)
	for user, want := range map[string]string{"alice": StateRunning, "bob": StateRunning, "carol": StateStopped} {
		in, err := e.a.Get(ctx, user)
		assert.NilError(t, err)
		assert.Equal(t, in.State, want, user)
	}
}
