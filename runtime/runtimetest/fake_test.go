package runtimetest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

func spec(name string, labels map[string]string) runtime.ContainerSpec {
	return runtime.ContainerSpec{Name: name, Image: testenv.StubImage, Labels: labels}
}

// started creates and starts a container of spec on f.
func started(t *testing.T, f *runtimetest.Fake, sp runtime.ContainerSpec) string {
	t.Helper()
	id, err := f.Create(t.Context(), sp)
	assert.NilError(t, err)
	assert.NilError(t, f.Start(t.Context(), id))
	return id
}

// subscribe opens an event stream closed when t ends.
func subscribe(t *testing.T, f *runtimetest.Fake, labels map[string]string) runtime.EventStream {
	t.Helper()
	s, err := f.Events(t.Context(), runtime.EventOptions{Labels: labels})
	assert.NilError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// recv reads n events, failing t when the stream ends first.
func recv(t *testing.T, s runtime.EventStream, n int) []string {
	t.Helper()
	var got []string
	for range n {
		ev, err := s.Recv()
		assert.NilError(t, err)
		a := string(ev.Action)
		switch ev.Action {
		case runtime.EventDie:
			a += fmt.Sprintf("(%d)", ev.ExitCode)
		case runtime.EventHealth:
			a += "(" + ev.Health + ")"
		}
		got = append(got, a)
	}
	return got
}

func TestFakeFailNext(t *testing.T) {
	f := runtimetest.NewFake()
	boom := runtime.Errorf(runtime.ErrUnavailable, "boom")
	f.FailNext("Create", 2, boom)
	for i := range 2 {
		_, err := f.Create(t.Context(), spec(fmt.Sprintf("c%d", i), nil))
		assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable), "call %d", i)
		assert.Check(t, is.ErrorContains(err, "boom"))
	}
	_, err := f.Create(t.Context(), spec("c2", nil))
	assert.NilError(t, err)
	assert.Equal(t, f.Calls("Create"), 3)
	assert.Equal(t, len(f.Containers()), 1)
}

func TestFakeFailUntilCleared(t *testing.T) {
	f := runtimetest.NewFake()
	f.Fail("Inspect", runtime.ErrTimeout)
	for range 3 {
		_, err := f.Inspect(t.Context(), "x")
		assert.Check(t, is.ErrorIs(err, runtime.ErrTimeout))
	}
	f.ClearFaults("Inspect")
	_, err := f.Inspect(t.Context(), "x")
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
	assert.Equal(t, f.Calls("Inspect"), 4)
	assert.DeepEqual(t, f.CallCounts(), map[string]int{"Inspect": 4})
	f.ResetCalls()
	assert.Equal(t, f.TotalCalls(), 0)
}

func TestFakeValidationComesFirst(t *testing.T) {
	f := runtimetest.NewFake()
	f.Fail("Create", errors.New("injected"))
	f.Down()
	sp := spec("ok", nil)
	sp.Resources.Memory = "2x"
	_, err := f.Create(t.Context(), sp)
	assert.Check(t, is.ErrorIs(err, runtime.ErrInvalidArgument))
	assert.Equal(t, f.Calls("Create"), 1)
}

func TestFakeDelayAndBlock(t *testing.T) {
	f := runtimetest.NewFake()
	t.Run("DelayPastDeadline", func(t *testing.T) {
		f.Delay("Info", time.Hour)
		defer f.ClearFaults()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		_, err := f.Info(ctx)
		assert.Check(t, is.ErrorIs(err, runtime.ErrTimeout))
	})
	t.Run("ShortDelayProceeds", func(t *testing.T) {
		f.Delay("Info", time.Millisecond)
		defer f.ClearFaults()
		info, err := f.Info(t.Context())
		assert.NilError(t, err)
		assert.Equal(t, info.Runtime, "fake")
	})
	t.Run("BlockUntilCancel", func(t *testing.T) {
		f.Block("Start")
		defer f.ClearFaults()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		before := f.Calls("Start")
		go func() { done <- f.Start(ctx, "x") }()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if f.Calls("Start") == before+1 {
				return poll.Success()
			}
			return poll.Continue("Start not called yet")
		})
		select {
		case err := <-done:
			t.Fatalf("Start returned before its ctx ended: %v", err)
		default:
		}
		cancel()
		assert.Check(t, is.ErrorIs(<-done, context.Canceled))
	})
	t.Run("Gate", func(t *testing.T) {
		gate := make(chan struct{})
		f.Inject("Create", runtimetest.Fault{Gate: gate, Times: 1})
		done := make(chan error, 1)
		go func() {
			_, err := f.Create(t.Context(), spec("gated", nil))
			done <- err
		}()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if f.Calls("Create") == 1 {
				return poll.Success()
			}
			return poll.Continue("Create not called yet")
		})
		_, ok := f.Container("gated")
		assert.Assert(t, !ok, "created before the gate opened")
		close(gate)
		assert.NilError(t, <-done)
		_, ok = f.Container("gated")
		assert.Assert(t, ok)
	})
}

func TestFakeRefFaults(t *testing.T) {
	f := runtimetest.NewFake()
	a := started(t, f, spec("a", nil))
	started(t, f, spec("b", nil))
	boom := runtime.Errorf(runtime.ErrTimeout, "stuck")
	f.Inject("Stop", runtimetest.Fault{Ref: "a", Err: boom, Times: 1})

	err := f.Stop(t.Context(), []string{a, "b", "missing"}, time.Second)
	var be *runtime.BatchError
	assert.Assert(t, errors.As(err, &be), "got %v", err)
	assert.DeepEqual(t, slices.Sorted(maps.Keys(be.Failed)), []string{a})
	assert.Check(t, is.ErrorIs(be.Failed[a], runtime.ErrTimeout))
	ca, _ := f.Container("a")
	cb, _ := f.Container("b")
	assert.Check(t, ca.Running())
	assert.Check(t, !cb.Running())

	// Times: 1 is used up; a scoped fault on Inspect matches by ID or name.
	assert.NilError(t, f.Stop(t.Context(), []string{"a"}, time.Second))
	f.Inject("Inspect", runtimetest.Fault{Ref: a, Err: boom})
	_, err = f.Inspect(t.Context(), "a")
	assert.Check(t, is.ErrorIs(err, runtime.ErrTimeout))
	_, err = f.Inspect(t.Context(), "b")
	assert.NilError(t, err)
}

func TestFakeUnknownMethodPanics(t *testing.T) {
	f := runtimetest.NewFake()
	defer func() {
		r := recover()
		assert.Assert(t, r != nil)
		assert.Check(t, is.Contains(fmt.Sprint(r), `unknown method "Crate"`))
	}()
	f.Fail("Crate", errors.New("typo"))
}

func TestFakeDownUp(t *testing.T) {
	f := runtimetest.NewFake()
	id := started(t, f, spec("c", nil))
	stream := subscribe(t, f, nil)
	logs, err := f.Logs(t.Context(), id, runtime.LogOptions{Follow: true})
	assert.NilError(t, err)
	defer logs.Close()
	assert.NilError(t, f.WriteLog(id, "queued"))
	assert.NilError(t, f.Stop(t.Context(), []string{id}, time.Second)) // queued: kill, die, stop
	assert.NilError(t, f.Start(t.Context(), id))

	f.Down()
	assert.Check(t, f.IsDown())
	_, err = f.Info(t.Context())
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	err = f.Stop(t.Context(), []string{id}, time.Second)
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	_, err = f.Events(t.Context(), runtime.EventOptions{})
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))

	// What was queued comes first, then the break.
	assert.DeepEqual(t, recv(t, stream, 4), []string{"kill", "die(0)", "stop", "start"})
	_, err = stream.Recv()
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	_, err = io.ReadAll(logs)
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))

	f.Up()
	c, err := f.Inspect(t.Context(), id)
	assert.NilError(t, err)
	assert.Check(t, c.Running(), "containers keep running while the engine is down")
	stream = subscribe(t, f, nil)
	assert.NilError(t, f.Exit(id, 0))
	assert.DeepEqual(t, recv(t, stream, 1), []string{"die(0)"})
}

func TestFakeBreakEvents(t *testing.T) {
	f := runtimetest.NewFake()
	stream := subscribe(t, f, nil)
	f.BreakEvents(runtime.Errorf(runtime.ErrUnavailable, "connection reset"))
	_, err := stream.Recv()
	assert.Check(t, is.ErrorContains(err, "connection reset"))
	assert.Equal(t, f.Subscribers(), 0)
	_, err = f.Events(t.Context(), runtime.EventOptions{})
	assert.NilError(t, err)
}

func TestFakeBehindTheBack(t *testing.T) {
	withPolicy := func(name string, p runtime.RestartPolicy) runtime.ContainerSpec {
		sp := spec(name, nil)
		sp.Restart = p
		return sp
	}
	cases := []struct {
		name     string
		spec     runtime.ContainerSpec
		do       func(f *runtimetest.Fake, id string) error
		events   []string
		state    runtime.State
		exit     int
		oom      bool
		restarts int
	}{
		{
			name:   "KillNoPolicy",
			spec:   spec("c", nil),
			do:     func(f *runtimetest.Fake, id string) error { return f.Kill(id, 137) },
			events: []string{"kill", "die(137)"}, state: runtime.StateExited, exit: 137,
		},
		{
			name:   "ExitOnFailureRestarts",
			spec:   withPolicy("c", runtime.RestartPolicy{Name: "on-failure", MaxRetries: 2}),
			do:     func(f *runtimetest.Fake, id string) error { return f.Exit(id, 3) },
			events: []string{"die(3)", "start"}, state: runtime.StateRunning, restarts: 1,
		},
		{
			name: "OnFailureGivesUp",
			spec: withPolicy("c", runtime.RestartPolicy{Name: "on-failure", MaxRetries: 2}),
			do: func(f *runtimetest.Fake, id string) error {
				return errors.Join(f.Exit(id, 1), f.Exit(id, 1), f.Exit(id, 1))
			},
			events: []string{"die(1)", "start", "die(1)", "start", "die(1)"},
			state:  runtime.StateExited, exit: 1, restarts: 2,
		},
		{
			name:   "CleanExitOnFailure",
			spec:   withPolicy("c", runtime.RestartPolicy{Name: "on-failure"}),
			do:     func(f *runtimetest.Fake, id string) error { return f.Exit(id, 0) },
			events: []string{"die(0)"}, state: runtime.StateExited,
		},
		{
			name:   "CleanExitAlways",
			spec:   withPolicy("c", runtime.RestartPolicy{Name: "always"}),
			do:     func(f *runtimetest.Fake, id string) error { return f.Exit(id, 0) },
			events: []string{"die(0)", "start"}, state: runtime.StateRunning, restarts: 1,
		},
		{
			name:   "OOM",
			spec:   spec("c", nil),
			do:     func(f *runtimetest.Fake, id string) error { return f.OOM(id) },
			events: []string{"oom", "die(137)"}, state: runtime.StateExited, exit: 137, oom: true,
		},
		{
			name:   "Health",
			spec:   spec("c", nil),
			do:     func(f *runtimetest.Fake, id string) error { return f.SetHealth(id, "unhealthy") },
			events: []string{"health_status(unhealthy)"}, state: runtime.StateRunning,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := runtimetest.NewFake()
			id := started(t, f, tc.spec)
			stream := subscribe(t, f, nil)
			calls := f.TotalCalls()
			assert.NilError(t, tc.do(f, id))
			assert.DeepEqual(t, recv(t, stream, len(tc.events)), tc.events)
			c, ok := f.Container(id)
			assert.Assert(t, ok)
			assert.Check(t, is.Equal(c.State, tc.state))
			assert.Check(t, is.Equal(c.ExitCode, tc.exit))
			assert.Check(t, is.Equal(c.OOMKilled, tc.oom))
			assert.Check(t, is.Equal(c.RestartCount, tc.restarts))
			assert.Equal(t, f.TotalCalls(), calls, "hooks are not calls")
		})
	}
}

func TestFakeRemoveBehindBack(t *testing.T) {
	f := runtimetest.NewFake()
	id := started(t, f, spec("c", nil))
	stream := subscribe(t, f, nil)
	assert.NilError(t, f.RemoveBehindBack("c"))
	assert.DeepEqual(t, recv(t, stream, 3), []string{"kill", "die(137)", "destroy"})
	_, err := f.Inspect(t.Context(), id)
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
	assert.Check(t, is.ErrorIs(f.RemoveBehindBack("c"), runtime.ErrNotFound))
	assert.Check(t, is.ErrorIs(f.Kill("c", 1), runtime.ErrNotFound))

	_, err = f.Create(t.Context(), spec("stopped", nil))
	assert.NilError(t, err)
	assert.Check(t, is.ErrorContains(f.Exit("stopped", 1), "not running"))
}

func TestFakeEventsFilterAndOrder(t *testing.T) {
	f := runtimetest.NewFake()
	mine := subscribe(t, f, map[string]string{"app": "zaki"})
	keyOnly := subscribe(t, f, map[string]string{"app": ""})
	started(t, f, spec("other", map[string]string{"app": "other"}))
	id := started(t, f, spec("mine", map[string]string{"app": "zaki"}))
	assert.NilError(t, f.Restart(t.Context(), id, time.Second))
	assert.NilError(t, f.Remove(t.Context(), []string{id}, runtime.RemoveOptions{Force: true}))

	assert.DeepEqual(t, recv(t, mine, 10), []string{
		"create", "start", "kill", "die(0)", "stop", "start", "restart", "kill", "die(137)", "destroy",
	})
	assert.DeepEqual(t, recv(t, keyOnly, 3), []string{"create", "start", "create"})
}

func TestFakeEventsNeverBlock(t *testing.T) {
	f := runtimetest.NewFake()
	stream := subscribe(t, f, nil) // nobody reads it while the fake works
	const n = 2000
	for i := range n {
		id := started(t, f, spec(fmt.Sprintf("c%d", i), nil))
		assert.NilError(t, f.Remove(t.Context(), []string{id}, runtime.RemoveOptions{Force: true}))
	}
	got := recv(t, stream, 5*n)
	assert.DeepEqual(t, got[:5], []string{"create", "start", "kill", "die(137)", "destroy"})
	assert.DeepEqual(t, got[len(got)-5:], []string{"create", "start", "kill", "die(137)", "destroy"})
}

func TestFakeEventsEnd(t *testing.T) {
	f := runtimetest.NewFake()
	t.Run("Close", func(t *testing.T) {
		s := subscribe(t, f, nil)
		started(t, f, spec("close", nil)) // queued, then dropped by Close
		assert.NilError(t, s.Close())
		_, err := s.Recv()
		assert.Check(t, is.ErrorIs(err, io.EOF))
	})
	t.Run("Ctx", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := f.Events(ctx, runtime.EventOptions{})
		assert.NilError(t, err)
		done := make(chan error, 1)
		go func() { _, err := s.Recv(); done <- err }()
		cancel()
		assert.Check(t, is.ErrorIs(<-done, io.EOF))
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if f.Subscribers() == 0 {
				return poll.Success()
			}
			return poll.Continue("%d subscribers left", f.Subscribers())
		})
	})
}

func TestFakeLogs(t *testing.T) {
	f := runtimetest.NewFake()
	id := started(t, f, spec("web", nil))
	assert.NilError(t, f.WriteLog(id, "one", "two\nthree"))

	read := func(opts runtime.LogOptions) string {
		rc, err := f.Logs(t.Context(), "web", opts)
		assert.NilError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		assert.NilError(t, err)
		return string(b)
	}
	assert.Equal(t, read(runtime.LogOptions{}), "fake: web started\none\ntwo\nthree\n")
	assert.Equal(t, read(runtime.LogOptions{Tail: new(2)}), "two\nthree\n")
	assert.Equal(t, read(runtime.LogOptions{Tail: new(100)}), "fake: web started\none\ntwo\nthree\n")
	stamped := read(runtime.LogOptions{Tail: new(1), Timestamps: true})
	ts, text, _ := strings.Cut(stamped, " ")
	_, err := time.Parse(time.RFC3339Nano, ts)
	assert.NilError(t, err)
	assert.Equal(t, text, "three\n")

	t.Run("Follow", func(t *testing.T) {
		rc, err := f.Logs(t.Context(), id, runtime.LogOptions{Follow: true, Tail: new(1)})
		assert.NilError(t, err)
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		assert.Assert(t, sc.Scan())
		assert.Equal(t, sc.Text(), "three")
		assert.NilError(t, f.WriteLog(id, "four"))
		assert.Assert(t, sc.Scan())
		assert.Equal(t, sc.Text(), "four")
		assert.NilError(t, f.Stop(t.Context(), []string{id}, time.Second))
		assert.Assert(t, !sc.Scan(), "follow goes on after the container stopped")
		assert.NilError(t, sc.Err())
	})
	t.Run("FollowClose", func(t *testing.T) {
		assert.NilError(t, f.Start(t.Context(), id))
		rc, err := f.Logs(t.Context(), id, runtime.LogOptions{Follow: true, Tail: new(1)})
		assert.NilError(t, err)
		_, err = io.ReadFull(rc, make([]byte, len("fake: web started\n")))
		assert.NilError(t, err)
		done := make(chan error, 1)
		go func() { _, err := rc.Read(make([]byte, 1)); done <- err }()
		assert.NilError(t, rc.Close())
		assert.Check(t, is.ErrorIs(<-done, io.EOF))
	})
	t.Run("Missing", func(t *testing.T) {
		_, err := f.Logs(t.Context(), "nope", runtime.LogOptions{})
		assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
	})
}

func TestFakeRefs(t *testing.T) {
	f := runtimetest.NewFake()
	id, err := f.Create(t.Context(), spec("named", nil))
	assert.NilError(t, err)
	assert.Check(t, is.Len(id, 64))
	for _, ref := range []string{id, "named", id[:12], id[:1] + id[1:5]} {
		c, err := f.Inspect(t.Context(), ref)
		assert.NilError(t, err, ref)
		assert.Check(t, is.Equal(c.ID, id), ref)
		assert.Check(t, is.Equal(c.Name, "named"), ref)
	}
	_, err = f.Inspect(t.Context(), "nope")
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
	_, err = f.Create(t.Context(), spec("named", nil))
	assert.Check(t, is.ErrorIs(err, runtime.ErrAlreadyExists))
}

func TestFakeReadBack(t *testing.T) {
	f := runtimetest.NewFake()
	sp := spec("full", map[string]string{"a": "b"})
	sp.Env = map[string]string{"SECRET": "s3cret"}
	sp.Resources = runtime.Resources{Memory: "2g", MemorySwap: "-1"}
	sp.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp"}, {Path: "/run", Options: "size=1m"}}
	sp.Ports = []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 20000, ContainerPort: 18789}}
	_, err := f.Create(t.Context(), sp)
	assert.NilError(t, err)
	noSwap := spec("noswap", nil)
	noSwap.Resources.Memory = "64m"
	_, err = f.Create(t.Context(), noSwap)
	assert.NilError(t, err)
	c, _ := f.Container("noswap")
	assert.Check(t, is.Equal(c.Spec.Resources.MemorySwap, "134217728"), "docker's default: twice the memory")

	c, err = f.Inspect(t.Context(), "full")
	assert.NilError(t, err)
	assert.Check(t, is.Len(c.Spec.Env, 0))
	assert.Check(t, is.Equal(c.Spec.Resources.Memory, "2147483648"))
	assert.Check(t, is.Equal(c.Spec.Resources.MemorySwap, "-1"))
	assert.Check(t, is.DeepEqual(c.Spec.Security.Tmpfs, []runtime.Tmpfs{{Path: "/run", Options: "size=1m"}, {Path: "/tmp"}}))
	assert.Check(t, is.Equal(c.Spec.Ports[0].Protocol, "tcp"))
	assert.Check(t, is.Equal(c.State, runtime.StateCreated))
	assert.Check(t, c.StartedAt.IsZero())
	assert.Check(t, strings.HasPrefix(c.ImageID, "sha256:"))

	given, ok := f.CreatedSpec("full")
	assert.Assert(t, ok)
	assert.DeepEqual(t, given, sp)

	// What the fake hands out is a copy.
	c.Spec.Labels["a"] = "changed"
	given.Env["SECRET"] = "changed"
	sp.Labels["a"] = "changed too"
	again, _ := f.Container("full")
	assert.Check(t, is.Equal(again.Spec.Labels["a"], "b"))
	given, _ = f.CreatedSpec("full")
	assert.Check(t, is.Equal(given.Env["SECRET"], "s3cret"))
}

func TestFakeImages(t *testing.T) {
	f := runtimetest.NewFake()
	id, err := f.ImageID(t.Context(), testenv.StubImage)
	assert.NilError(t, err)
	assert.Check(t, strings.HasPrefix(id, "sha256:"))
	id, err = f.ImageID(t.Context(), "alpine/openclaw")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id, ""))
	_, err = f.Create(t.Context(), runtime.ContainerSpec{Name: "c", Image: "alpine/openclaw"})
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))

	var lines []runtime.PullProgress
	assert.NilError(t, f.PullImage(t.Context(), "docker.io/alpine/openclaw", func(p runtime.PullProgress) { lines = append(lines, p) }))
	assert.Check(t, len(lines) >= 3)
	assert.Check(t, is.Equal(lines[0].Ref, "docker.io/alpine/openclaw"))
	assert.Check(t, is.Contains(lines[len(lines)-1].Status, "Downloaded newer image"))
	id, err = f.ImageID(t.Context(), "alpine/openclaw:latest")
	assert.NilError(t, err)
	assert.Check(t, id != "")
	_, err = f.Create(t.Context(), runtime.ContainerSpec{Name: "c", Image: "alpine/openclaw"})
	assert.NilError(t, err)

	err = f.PullImage(t.Context(), "zaki/not-anywhere:1", nil)
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))

	ctx, cancel := context.WithCancel(t.Context())
	f.AddPullable("zaki/cancelled")
	err = f.PullImage(ctx, "zaki/cancelled", func(runtime.PullProgress) { cancel() })
	assert.Check(t, is.ErrorIs(err, context.Canceled))
	id, _ = f.ImageID(t.Context(), "zaki/cancelled")
	assert.Check(t, id == "", "a cancelled pull adds the image")

	g := runtimetest.NewFake(runtimetest.WithImages("zaki/other:1"), runtimetest.WithPullable())
	id, _ = g.ImageID(t.Context(), testenv.StubImage)
	assert.Check(t, id == "", "WithImages replaces the defaults")
	assert.Check(t, is.ErrorIs(g.PullImage(t.Context(), "alpine/openclaw", nil), runtime.ErrNotFound))
	events, err := g.Events(t.Context(), runtime.EventOptions{Images: true})
	assert.NilError(t, err)
	defer events.Close()
	g.AddImage(testenv.StubImage)
	id, _ = g.ImageID(t.Context(), testenv.StubImage)
	assert.Check(t, id != "")
	rebuilt := g.RebuildImage(testenv.StubImage)
	assert.Check(t, rebuilt != id)
	now, _ := g.ImageID(t.Context(), testenv.StubImage)
	assert.Check(t, is.Equal(now, rebuilt))
	for _, want := range []string{id, rebuilt} {
		ev, err := events.Recv()
		assert.NilError(t, err)
		assert.Check(t, ev.Image && ev.Action == runtime.EventImageTag && ev.ID == want, "%+v", ev)
	}
}

func TestFakeNetworks(t *testing.T) {
	f := runtimetest.NewFake()
	sp := spec("c", nil)
	sp.Network = "zaki"
	_, err := f.Create(t.Context(), sp)
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))

	assert.NilError(t, f.EnsureNetwork(t.Context(), runtime.NetworkSpec{Name: "zaki", DisableICC: true}))
	assert.NilError(t, f.EnsureNetwork(t.Context(), runtime.NetworkSpec{Name: "zaki"}))
	assert.DeepEqual(t, f.Networks(), []runtime.NetworkSpec{{Name: "zaki", Driver: "bridge", DisableICC: true}})
	_, err = f.Create(t.Context(), sp)
	assert.NilError(t, err)

	assert.NilError(t, f.RemoveNetwork(t.Context(), "zaki"))
	assert.NilError(t, f.RemoveNetwork(t.Context(), "zaki"))
	assert.Check(t, is.ErrorIs(f.Start(t.Context(), "c"), runtime.ErrNotFound))
	assert.Check(t, is.ErrorIs(f.RemoveNetwork(t.Context(), "bridge"), runtime.ErrInvalidArgument))
}

func TestFakeRemoveRunningNeedsForce(t *testing.T) {
	f := runtimetest.NewFake()
	started(t, f, spec("run", nil))
	err := f.Remove(t.Context(), []string{"run", "gone"}, runtime.RemoveOptions{})
	var be *runtime.BatchError
	assert.Assert(t, errors.As(err, &be), "got %v", err)
	assert.DeepEqual(t, slices.Sorted(maps.Keys(be.Failed)), []string{"run"})
	assert.Check(t, is.ErrorIs(err, runtime.ErrInvalidArgument))
	assert.NilError(t, f.Remove(t.Context(), []string{"run"}, runtime.RemoveOptions{Force: true}))
}

// TestFakeConcurrent drives the fake from many goroutines (run with -race):
// of concurrent creates of one name exactly one wins, and nothing else
// interferes.
func TestFakeConcurrent(t *testing.T) {
	f := runtimetest.NewFake()
	stream := subscribe(t, f, nil)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners int
	)
	for g := range 8 {
		wg.Go(func() {
			ctx := t.Context()
			if _, err := f.Create(ctx, spec("contended", nil)); err == nil {
				mu.Lock()
				winners++
				mu.Unlock()
			} else if !errors.Is(err, runtime.ErrAlreadyExists) {
				t.Errorf("create contended: %v", err)
			}
			for i := range 50 {
				name := fmt.Sprintf("g%d-%d", g, i)
				if _, err := f.Create(ctx, spec(name, map[string]string{"g": fmt.Sprint(g)})); err != nil {
					t.Error(err)
					return
				}
				f.Start(ctx, name)
				f.Inspect(ctx, name)
				f.List(ctx, runtime.ListOptions{Labels: map[string]string{"g": fmt.Sprint(g)}})
				if rc, err := f.Logs(ctx, name, runtime.LogOptions{}); err == nil {
					io.ReadAll(rc)
					rc.Close()
				}
				f.Exit(name, 1)
				f.Stop(ctx, []string{name}, 0)
				if err := f.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, winners, 1)
	assert.Equal(t, len(f.Containers()), 1)
	assert.Equal(t, f.Calls("Create"), 8*51)
}
