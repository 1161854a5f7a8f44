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
)

func TestReconcileAdoptsAfterRegistryLoss(t *testing.T) {
	e := newFakeEnv(t)
	want := map[string]Instance{}
	for _, u := range []string{"u1", "u2", "u3"} {
		want[u] = e.ensure(u, InstanceSpec{Labels: map[string]string{"plan": u}})
	}
	_, err := e.a.Stop(context.Background(), "u3")
	assert.NilError(t, err)
	e.waitState("u3", StateStopped)
	e.stop()
	assert.NilError(t, os.Remove(filepath.Join(e.cfg.StateDir, "registry.json")))
	e.fake.ResetCalls()
	e.start()

	for u, w := range want {
		got, err := e.a.Get(context.Background(), u)
		assert.NilError(t, err)
		assert.Equal(t, got.ContainerID, w.ContainerID)
		assert.Equal(t, got.Port, w.Port)
		assert.Equal(t, got.ConfigHash, w.ConfigHash)
		assert.Equal(t, got.CreatedAtMs, w.CreatedAtMs)
		assert.DeepEqual(t, got.Labels, map[string]string{"plan": u})
		p, ok := e.reg.Port(u)
		assert.Assert(t, ok)
		assert.Equal(t, p, w.Port)
	}
	got, _ := e.a.Get(context.Background(), "u3")
	assert.Equal(t, got.State, StateStopped)
	// Adoption starts and stops nothing.
	for _, m := range []string{"Start", "Stop", "Restart", "Create", "Remove"} {
		assert.Equal(t, e.fake.Calls(m), 0, m)
	}
	// An ensure with the same spec reuses the adopted container.
	in := e.ensure("u1", InstanceSpec{Labels: map[string]string{"plan": "u1"}})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Equal(t, in.ContainerID, want["u1"].ContainerID)
}

// TestLateContainerAdopted: a container a killed agent asked for, which
// the engine made only after this agent's resync, is adopted when its
// events arrive, not at the next periodic resync.
func TestLateContainerAdopted(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("late", InstanceSpec{Labels: map[string]string{"plan": "x"}})
	spec, ok := e.fake.CreatedSpec(in.ContainerID)
	assert.Assert(t, ok)
	e.stop()
	assert.NilError(t, e.fake.RemoveBehindBack(in.ContainerID))
	assert.NilError(t, os.Remove(filepath.Join(e.cfg.StateDir, "registry.json")))
	e.start()
	_, err := e.a.Get(context.Background(), "late")
	assert.Assert(t, errors.Is(err, errdefs.ErrNotFound), "got %v", err)
	sub := e.a.Subscribe(64)
	defer sub.Close()

	// The old agent's create and start land now.
	ctx := context.Background()
	id, err := e.fake.Create(ctx, spec)
	assert.NilError(t, err)
	assert.NilError(t, e.fake.Start(ctx, id))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		got, err := e.a.Get(ctx, "late")
		if err != nil || got.State != StateRunning {
			return poll.Continue("late: %+v, %v", got, err)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second), poll.WithDelay(10*time.Millisecond))
	got, _ := e.a.Get(ctx, "late")
	assert.Equal(t, got.ContainerID, id)
	assert.Equal(t, got.Port, in.Port)
	assert.DeepEqual(t, got.Labels, map[string]string{"plan": "x"})
	p, ok := e.reg.Port("late")
	assert.Assert(t, ok)
	assert.Equal(t, p, in.Port)
	waitEventOf(t, sub, EventAdopted, "late")
	// And an ensure reuses it.
	again := e.ensure("late", InstanceSpec{Labels: map[string]string{"plan": "x"}})
	assert.Equal(t, again.Outcome, OutcomeReused)
	assert.Equal(t, again.ContainerID, id)
}

func TestReconcileMarksMissing(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("gone", InstanceSpec{})
	e.stop()
	assert.NilError(t, e.fake.RemoveBehindBack(in.ContainerID))
	e.start()
	got, err := e.a.Get(context.Background(), "gone")
	assert.NilError(t, err)
	assert.Equal(t, got.State, StateMissing)
	assert.Equal(t, got.Port, in.Port)
	rec, _ := e.reg.Get("gone")
	assert.Equal(t, rec.State, StateMissing)
	// Ensure brings it back on its port.
	again := e.ensure("gone", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeCreated)
	assert.Equal(t, again.Port, in.Port)
}

func TestEventsFeedState(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.Restart = "no" })
	sub := e.a.Subscribe(64)
	defer sub.Close()
	in := e.ensure("ev", InstanceSpec{})
	assert.NilError(t, e.fake.Exit(in.ContainerID, 7))
	e.waitState("ev", StateStopped)
	assert.NilError(t, e.fake.RemoveBehindBack(in.ContainerID))
	e.waitState("ev", StateMissing)

	var types []string
	var exit *int
	timeout := time.After(5 * time.Second)
	for len(types) == 0 || types[len(types)-1] != EventMissing {
		select {
		case ev := <-sub.C:
			types = append(types, ev.Type)
			if ev.Type == EventDied {
				exit = ev.ExitCode
			}
		case <-timeout:
			t.Fatalf("events so far: %v", types)
		}
	}
	assert.Assert(t, exit != nil && *exit == 7, "exit code of the died event")
	// The engine's events come in order; the ensure's own event may come
	// before or after the start it caused.
	var engine []string
	ensured := 0
	for _, ty := range types {
		if ty == EventEnsured {
			ensured++
			continue
		}
		engine = append(engine, ty)
	}
	assert.Equal(t, ensured, 1)
	assert.DeepEqual(t, engine, []string{EventStarted, EventDied, EventDestroyed, EventMissing})
}

func TestEventStreamReconnectResyncs(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("rs", InstanceSpec{})
	e.fake.Down()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if e.a.runtimeUp.Load() {
			return poll.Continue("runtime still up")
		}
		return poll.Success()
	})
	// While down: calls fail with unavailable, the hot path still answers.
	_, err := e.a.Ensure(context.Background(), "new-user", InstanceSpec{}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrUnavailable), "got %v", err)
	hot := e.ensure("rs", InstanceSpec{})
	assert.Equal(t, hot.Outcome, OutcomeReused)
	// Something happens behind the agent's back while the stream is down.
	e.fake.Up()
	assert.NilError(t, e.fake.RemoveBehindBack(in.ContainerID))
	e.waitState("rs", StateMissing)
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	e := newFakeEnv(t)
	sub := e.a.Subscribe(1) // never read
	defer sub.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			e.ensure("chatty", InstanceSpec{})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ensures blocked on a slow subscriber")
	}
	ev := <-sub.C
	assert.Equal(t, ev.Dropped, uint64(0))
	e.ensure("chatty", InstanceSpec{})
	ev = <-sub.C
	assert.Assert(t, ev.Dropped > 0, "dropped count not reported")
}

func TestRemoveAndPurge(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	e.ensure("rm1", InstanceSpec{Files: map[string]string{"a.txt": "x"}})
	e.ensure("rm2", InstanceSpec{Files: map[string]string{"a.txt": "x"}})
	assert.NilError(t, e.a.Remove(ctx, "rm1", false))
	assert.NilError(t, e.a.Remove(ctx, "rm2", true))
	_, err := os.Stat(filepath.Join(e.cfg.StateDir, "instances", "rm1", "a.txt"))
	assert.NilError(t, err, "remove without purge deleted data")
	_, err = os.Stat(filepath.Join(e.cfg.StateDir, "instances", "rm2"))
	assert.Assert(t, os.IsNotExist(err), "purge kept data")
	assert.Equal(t, len(e.fake.Containers()), 0)
	err = e.a.Remove(ctx, "rm2", false)
	assert.Assert(t, errors.Is(err, errdefs.ErrNotFound))
	// Purge of a user with data but no instance.
	assert.NilError(t, e.a.Remove(ctx, "rm1", true))
	_, err = os.Stat(filepath.Join(e.cfg.StateDir, "instances", "rm1"))
	assert.Assert(t, os.IsNotExist(err))
}

func TestFilesNeverLeaveTheDataDir(t *testing.T) {
	e := newFakeEnv(t)
	outside := t.TempDir()
	target := filepath.Join(outside, "victim")
	assert.NilError(t, os.WriteFile(target, []byte("original"), 0o644))
	dir := filepath.Join(e.cfg.StateDir, "instances", "sym")
	assert.NilError(t, os.MkdirAll(dir, 0o700))
	// A symlink planted in the data dir, named as the file the spec writes.
	assert.NilError(t, os.Symlink(target, filepath.Join(dir, "openclaw.json")))
	assert.NilError(t, os.Symlink(outside, filepath.Join(dir, "sub")))
	e.ensure("sym", InstanceSpec{Files: map[string]string{"openclaw.json": "new"}})
	b, err := os.ReadFile(target)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "original", "write followed a symlink out of the data dir")
	fi, err := os.Lstat(filepath.Join(dir, "openclaw.json"))
	assert.NilError(t, err)
	assert.Assert(t, fi.Mode().IsRegular())

	// A data dir that is itself a symlink is refused.
	assert.NilError(t, os.Symlink(outside, filepath.Join(e.cfg.StateDir, "instances", "evil")))
	_, err = e.a.Ensure(context.Background(), "evil", InstanceSpec{Files: map[string]string{"x": "y"}}, EnsureOptions{})
	assert.ErrorContains(t, err, "not a directory")
	_, err = os.Stat(filepath.Join(outside, "x"))
	assert.Assert(t, os.IsNotExist(err))
}

// TestRestartStartsOnce: the engine says "start" then "restart" for one
// restart; subscribers hear one instance.started.
func TestRestartStartsOnce(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("rs", InstanceSpec{})
	sub := e.a.Subscribe(64)
	defer sub.Close()
	_, err := e.a.Restart(context.Background(), "rs")
	assert.NilError(t, err)
	// A marker after the restart's events: an explicit stop.
	_, err = e.a.Stop(context.Background(), "rs")
	assert.NilError(t, err)
	started := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			switch ev.Type {
			case EventStarted:
				started++
			case EventDied:
				if started > 0 {
					assert.Equal(t, started, 1, "instance.started events for one restart")
					return
				}
			}
		case <-timeout:
			t.Fatalf("no instance.started then instance.died; started=%d", started)
		}
	}
}
