package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// TestOCIRuntime: instance.ociRuntime reaches the runtime (none by
// default), is part of the config hash (a change recreates a cold
// instance under the new runtime), an OCI runtime the engine does not know
// fails the create clearly (unavailable, naming it), and a path or a flag
// is a config error naming the key.
func TestOCIRuntime(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("gv", InstanceSpec{})
	created, ok := e.fake.CreatedSpec(in.ContainerID)
	assert.Assert(t, ok)
	assert.Equal(t, created.OCIRuntime, "")

	next := e.a.Config()
	next.Instance.OCIRuntime = "runsc"
	_, applied, err := e.a.Reload(next)
	assert.NilError(t, err)
	assert.Assert(t, len(applied) > 0)
	e.clock.Add(10 * time.Minute) // past the hot window
	again := e.ensure("gv", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeRecreated)
	assert.Assert(t, again.ConfigHash != in.ConfigHash)
	created, _ = e.fake.CreatedSpec(again.ContainerID)
	assert.Equal(t, created.OCIRuntime, "runsc")
	c, err := e.fake.Inspect(context.Background(), again.ContainerID)
	assert.NilError(t, err)
	assert.Equal(t, c.Spec.OCIRuntime, "runsc")
	assert.Equal(t, e.ensure("gv", InstanceSpec{}).Outcome, OutcomeReused)
	// A prune pass may not ask for the pause tier the config refuses
	// under runsc, and pauses nothing.
	pause := 0.001
	_, err = e.a.Prune(context.Background(), PruneRequest{IdlePauseMinutes: &pause})
	assert.Assert(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
	assert.ErrorContains(t, err, `idlePauseMinutes 0.001: not with instance.ociRuntime = "runsc"`)
	assert.Equal(t, e.ensure("gv", InstanceSpec{}).Outcome, OutcomeReused)

	next.Instance.OCIRuntime = "kata" // the fake knows runc and runsc
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	_, err = e.a.Ensure(context.Background(), "new-user", InstanceSpec{}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrUnavailable), "%v", err)
	assert.ErrorContains(t, err, `the OCI runtime "kata" is not registered with fake`)

	for _, bad := range []string{"/usr/bin/runsc", "--privileged", "run sc"} {
		cfg := DefaultConfig()
		cfg.Instance.OCIRuntime = bad
		assert.ErrorContains(t, cfg.Validate(), "instance.ociRuntime: invalid OCI runtime")
	}
}
