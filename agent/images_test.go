package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// waitStale polls until user's instance reports stale, and returns it.
func (e *fakeEnv) waitStale(user string) Instance {
	e.t.Helper()
	var in Instance
	poll.WaitOn(e.t, func(poll.LogT) poll.Result {
		var err error
		if in, err = e.a.Get(context.Background(), user); err != nil {
			return poll.Error(err)
		}
		if !in.Stale {
			return poll.Continue("not stale yet")
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
	return in
}

// A tag rebuilt behind the agent's back (an image event) makes the
// running instance stale with no ensure in between; a hot ensure keeps it
// with no engine call; force recreates it on the new image; with force, a
// same-spec instance is reused.
func TestImageRebuiltMakesStale(t *testing.T) {
	e := newFakeEnv(t)
	first := e.ensure("ann", InstanceSpec{})
	id0, _ := e.fake.ImageID(t.Context(), testenv.StubImage)
	assert.Equal(t, first.ImageID, id0)
	assert.Assert(t, !first.Stale)

	id1 := e.fake.RebuildImage(testenv.StubImage)
	stale := e.waitStale("ann")
	assert.Equal(t, stale.ImageID, id0, "the container still runs the old image")

	// The hot path: reused, stale, and no engine call (the background
	// refresh after the event filled the cache again).
	e.fake.ResetCalls()
	in := e.ensure("ann", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Equal(t, in.ContainerID, first.ContainerID)
	assert.Assert(t, in.Stale)
	assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)

	in, err := e.a.Ensure(t.Context(), "ann", InstanceSpec{}, EnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Assert(t, in.ContainerID != first.ContainerID)
	assert.Equal(t, in.ImageID, id1)
	assert.Assert(t, !in.Stale)
	assert.Equal(t, in.Port, first.Port)

	again, err := e.a.Ensure(t.Context(), "ann", InstanceSpec{}, EnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Equal(t, again.Outcome, OutcomeReused, "force with nothing to apply")
	assert.Equal(t, again.ContainerID, in.ContainerID)
}

// A hot instance whose spec changed is recreated with force, not marked
// stale.
func TestEnsureForceAppliesChangedSpec(t *testing.T) {
	e := newFakeEnv(t)
	first := e.ensure("bea", InstanceSpec{Env: map[string]string{"K": "1"}})
	kept := e.ensure("bea", InstanceSpec{Env: map[string]string{"K": "2"}})
	assert.Equal(t, kept.Outcome, OutcomeReused)
	assert.Assert(t, kept.Stale)
	in, err := e.a.Ensure(t.Context(), "bea", InstanceSpec{Env: map[string]string{"K": "2"}}, EnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Assert(t, in.ContainerID != first.ContainerID)
	assert.Assert(t, !in.Stale)
	created, _ := e.fake.CreatedSpec(in.ContainerID)
	assert.Equal(t, created.Env["K"], "2")
}

// A container labelled with hash version 1 (an agent before image IDs)
// is not recreated for the version change alone: a cold ensure starts it
// again. Once its tag moves to another image, the next cold ensure
// recreates it (version 1 does not cover the ID: the container's image is
// compared with the tag's).
func TestHashV1ContainerKeptOnUpgrade(t *testing.T) {
	e := newFakeEnv(t)
	spec := InstanceSpec{Env: map[string]string{"K": "v"}}
	cur := e.ensure("cid", spec)
	assert.Assert(t, strings.HasPrefix(cur.ConfigHash, "v2-"))

	// Replace the container with one as the previous agent labelled it.
	eff, err := e.a.conf().resolve(spec)
	assert.NilError(t, err)
	eff.User = e.a.knownUser("cid")
	v1 := e.a.hash.sum(1, eff)
	created, ok := e.fake.CreatedSpec(cur.ContainerID)
	assert.Assert(t, ok)
	created.Labels[e.a.labels.ConfigHash] = v1
	e.stop()
	assert.NilError(t, e.fake.Remove(t.Context(), []string{cur.ContainerID}, runtime.RemoveOptions{Force: true}))
	id, err := e.fake.Create(t.Context(), created)
	assert.NilError(t, err)
	e.start()
	got, err := e.a.Get(t.Context(), "cid")
	assert.NilError(t, err)
	assert.Equal(t, got.ContainerID, id)
	assert.Equal(t, got.ConfigHash, v1)

	in := e.ensure("cid", spec)
	assert.Equal(t, in.Outcome, OutcomeStarted, "a v1 container is recreated for the upgrade alone")
	assert.Equal(t, in.ContainerID, id)
	assert.Equal(t, in.ConfigHash, v1)
	assert.Assert(t, !in.Stale)

	// Its tag moves: stale at once, recreated at the next cold ensure.
	e.fake.RebuildImage(testenv.StubImage)
	e.waitStale("cid")
	_, err = e.a.Stop(t.Context(), "cid")
	assert.NilError(t, err)
	e.waitState("cid", StateStopped)
	in = e.ensure("cid", spec)
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Assert(t, strings.HasPrefix(in.ConfigHash, "v2-"))
}

// An image removed behind the agent's back: its absence is remembered
// (until the next image event), so that a reused ensure still makes no
// engine call; the instance, still running the old image, is not stale.
func TestImageRemovedHotPathEngineFree(t *testing.T) {
	e := newFakeEnv(t)
	first := e.ensure("dan", InstanceSpec{})
	e.fake.RemoveImage(testenv.StubImage)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if id, ok := e.a.images.idsView()[testenv.StubImage]; !ok || id != "" {
			return poll.Continue("absence not resolved yet")
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
	e.fake.ResetCalls()
	for range 10 {
		in := e.ensure("dan", InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeReused)
		assert.Equal(t, in.ContainerID, first.ContainerID)
		assert.Assert(t, !in.Stale)
	}
	assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)
}

// A runtime that streams no image events: a rebuilt tag goes unnoticed
// while the instance is hot (no engine call on the reused path), and is
// found at the next cold ensure, which asks the engine anew.
func TestImageRebuiltWithoutImageEvents(t *testing.T) {
	e := &fakeEnv{t: t, cfg: testConfig(t), clock: newClock()}
	e.fake = runtimetest.NewFake(runtimetest.WithClock(e.clock.Now), runtimetest.WithoutImageEvents())
	e.start()
	first := e.ensure("eve", InstanceSpec{})
	id1 := e.fake.RebuildImage(testenv.StubImage)

	e.fake.ResetCalls()
	in := e.ensure("eve", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Assert(t, !in.Stale, "no event: the agent cannot know yet")
	assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)

	_, err := e.a.Stop(t.Context(), "eve")
	assert.NilError(t, err)
	e.waitState("eve", StateStopped)
	in = e.ensure("eve", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Assert(t, in.ContainerID != first.ContainerID)
	assert.Equal(t, in.ImageID, id1)
}

// TestHotEnsureNeverWaitsForTheImage: after an image event every known
// reference is resolved again in the background; meanwhile a hot ensure
// keeps the last known ID and answers without waiting for the engine
// (which here never answers ImageID).
func TestHotEnsureNeverWaitsForTheImage(t *testing.T) {
	e := newFakeEnv(t)
	first := e.ensure("hotimg", InstanceSpec{})
	gate := make(chan struct{})
	defer close(gate)
	e.fake.Inject("ImageID", runtimetest.Fault{Gate: gate})
	before := e.fake.Calls("ImageID")
	e.fake.AddImage("zaki/unrelated:1") // an image event
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if e.fake.Calls("ImageID") > before {
			return poll.Success() // the background resolution hangs in the engine
		}
		return poll.Continue("no background resolution yet")
	})
	done := make(chan Instance, 1)
	go func() {
		in, err := e.a.Ensure(context.Background(), "hotimg", InstanceSpec{}, EnsureOptions{})
		assert.Check(t, err)
		done <- in
	}()
	select {
	case in := <-done:
		assert.Check(t, is.Equal(in.Outcome, OutcomeReused))
		assert.Check(t, is.Equal(in.ContainerID, first.ContainerID))
		assert.Check(t, !in.Stale)
	case <-time.After(20 * time.Second):
		t.Fatal("a hot ensure waited for the engine to resolve its image")
	}
}
