package agent

import (
	"context"
	"errors"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// A container that failed to start and that the engine then does not
// remove either (a hung engine) stays known to the agent, record and all:
// no labelled container is left without an entry, and the next ensure
// starts it. (Found by the fault suite: faults/hang_test.go.)
func TestCleanupKeepsWhatItCannotRemove(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	e.fake.FailNext("Start", 1, errors.New("boom: cannot start"))
	e.fake.FailNext("Remove", 1, runtime.Errorf(runtime.ErrTimeout, "docker rm: hung"))
	_, err := e.a.Ensure(ctx, "gus", InstanceSpec{}, EnsureOptions{})
	assert.ErrorContains(t, err, "boom")
	assert.ErrorContains(t, err, "removing the container failed too")
	cs := e.fake.Containers()
	assert.Equal(t, len(cs), 1)
	in, err := e.a.Get(ctx, "gus")
	assert.NilError(t, err, "the container is on the engine but the agent forgot it")
	assert.Equal(t, in.ContainerID, cs[0].ID)
	assert.Equal(t, in.State, StateStopped)

	in, err = e.a.Ensure(ctx, "gus", InstanceSpec{}, EnsureOptions{})
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, OutcomeStarted)
	assert.Equal(t, in.ContainerID, cs[0].ID)
}
