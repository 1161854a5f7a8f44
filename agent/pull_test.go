package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// TestPullImageJoinsAndRefreshes: PullImage joins the pull an ensure
// started (one engine pull for both, its progress passed on), pulls a
// present image again, and forgets it as present, so that the next
// ensure asks the engine.
func TestPullImageJoinsAndRefreshes(t *testing.T) {
	e := newFakeEnv(t)
	const img = "alpine/openclaw:2"
	e.fake.AddPullable(img)
	gate := make(chan struct{})
	e.fake.Inject("PullImage", runtimetest.Fault{Gate: gate})

	ensured := make(chan error, 1)
	go func() {
		_, err := e.a.Ensure(context.Background(), "puller", InstanceSpec{Image: img}, EnsureOptions{})
		ensured <- err
	}()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if e.fake.Calls("PullImage") == 1 {
			return poll.Success()
		}
		return poll.Continue("the ensure's pull has not begun")
	})
	var mu sync.Mutex
	var lines []string
	pulled := make(chan error, 1)
	go func() {
		_, err := e.a.PullImage(context.Background(), img, func(pp runtime.PullProgress) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, pp.Status)
		})
		pulled <- err
	}()
	// The refresh has joined before the pull goes on.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		e.a.images.mu.Lock()
		p := e.a.images.inflight[img]
		e.a.images.mu.Unlock()
		if p == nil {
			return poll.Error(errors.New("the pull is gone"))
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.watchers) == 1 {
			return poll.Success()
		}
		return poll.Continue("%d watchers", len(p.watchers))
	})
	close(gate)
	assert.NilError(t, <-pulled)
	assert.NilError(t, <-ensured)
	assert.Check(t, is.Equal(e.fake.Calls("PullImage"), 1), "one pull for both")
	mu.Lock()
	assert.Check(t, len(lines) >= 3, "%q", lines)
	mu.Unlock()

	// Present: pulled again all the same. A local build had moved the
	// tag; the pull brings it back to the registry's image, whose ID is
	// answered and remembered.
	local := e.fake.RebuildImage(img)
	id, err := e.a.PullImage(context.Background(), img, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.fake.Calls("PullImage"), 2))
	assert.Check(t, id != "" && id != local, "pulled %s, the local build was %s", id, local)
	// Remembered, though maybe only once the pull's own image event has
	// been handled (it may land while the ID is read, which then is not
	// stored but resolved again in the background).
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if got := e.a.images.idsView()[img]; got != id {
			return poll.Continue("image ID remembered: %q", got)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
}

// TestPullImageRefuses: an invalid reference, an image not allowed, and
// one the engine cannot pull, each with its class; the first two never
// reach the engine.
func TestPullImageRefuses(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	for ref, class := range map[string]error{
		"":                  errdefs.ErrInvalidArgument,
		"Bad Ref":           errdefs.ErrInvalidArgument,
		"evil/miner:latest": errdefs.ErrForbidden,
	} {
		_, err := e.a.PullImage(ctx, ref, nil)
		assert.Check(t, errors.Is(err, class), "%q: %v", ref, err)
	}
	assert.Check(t, is.Equal(e.fake.Calls("PullImage"), 0))
	_, err := e.a.PullImage(ctx, "alpine/openclaw:nope", nil)
	assert.Check(t, errors.Is(err, errdefs.ErrPullFailed), "%v", err)
	assert.Check(t, is.ErrorContains(err, "not found"))

	// The caller giving up: a timeout; the pull goes on for the others.
	e.fake.AddPullable("alpine/openclaw:slow")
	gate := make(chan struct{})
	e.fake.Inject("PullImage", runtimetest.Fault{Gate: gate})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.a.PullImage(cctx, "alpine/openclaw:slow", nil)
	assert.Check(t, errors.Is(err, errdefs.ErrTimeout), "%v", err)
	close(gate)
}
