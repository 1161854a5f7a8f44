package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// shim serves impl in-process over go-plugin's gRPC transport and returns
// the client shim that reaches it, and a func that breaks the connection.
func shim(t testing.TB, impl runtime.Runtime) (runtime.Runtime, func()) {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, runtime.PluginSet(impl))
	t.Cleanup(func() { client.Close() }) // which stops the server too
	raw, err := client.Dispense(runtime.PluginName)
	assert.NilError(t, err)
	return raw.(runtime.Runtime), server.Stop
}

// scripted is a Runtime whose methods do what a test sets; the methods a
// test does not set are not called (the nil embedded interface panics).
type scripted struct {
	runtime.Runtime

	mu   sync.Mutex
	got  []any // the arguments received, in order
	info runtime.Info
	ctr  runtime.Container
	list []runtime.Container
	err  error
	// wait, when set, runs first in every method: it sees the call's ctx.
	wait func(ctx context.Context) error
	// events and logs feed the streams.
	events []runtime.Event
	logs   string
	// closed is closed when a stream's server side is released.
	closed chan struct{}
}

func (s *scripted) record(ctx context.Context, args ...any) error {
	s.mu.Lock()
	s.got = append(s.got, args...)
	s.mu.Unlock()
	if s.wait != nil {
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
	return s.err
}

func (s *scripted) received() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]any(nil), s.got...)
}

func (s *scripted) Info(ctx context.Context) (runtime.Info, error) {
	return s.info, s.record(ctx)
}

func (s *scripted) ImageID(ctx context.Context, ref string) (string, error) {
	if ref == "present" {
		return "sha256:" + strings.Repeat("ab", 32), s.record(ctx, ref)
	}
	return "", s.record(ctx, ref)
}

func (s *scripted) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	for i := range 3 {
		progress(runtime.PullProgress{Ref: ref, Status: fmt.Sprintf("layer %d: done", i)})
	}
	return s.record(ctx, ref)
}

func (s *scripted) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	return s.record(ctx, spec)
}

func (s *scripted) RemoveNetwork(ctx context.Context, name string) error {
	return s.record(ctx, name)
}

func (s *scripted) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	return "id-" + spec.Name, s.record(ctx, spec)
}

func (s *scripted) Start(ctx context.Context, ref string) error { return s.record(ctx, ref) }

func (s *scripted) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	return s.record(ctx, refs, timeout)
}

func (s *scripted) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	return s.record(ctx, ref, timeout)
}

func (s *scripted) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	return s.record(ctx, refs, opts)
}

func (s *scripted) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	return s.ctr, s.record(ctx, ref)
}

func (s *scripted) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	return s.list, s.record(ctx, opts)
}

func (s *scripted) Exec(ctx context.Context, ref string, opts runtime.ExecOptions) (runtime.ExecResult, error) {
	res := runtime.ExecResult{ExitCode: 3, Stdout: []byte("out"), Stderr: []byte("err\xff"), StderrTruncated: true}
	return res, s.record(ctx, ref, opts)
}

func (s *scripted) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	if err := s.record(ctx, opts); err != nil {
		return nil, err
	}
	return &scriptedEvents{ctx: ctx, events: s.events, closed: s.closed}, nil
}

type scriptedEvents struct {
	ctx    context.Context
	events []runtime.Event
	closed chan struct{}
	once   sync.Once
}

func (e *scriptedEvents) Recv() (runtime.Event, error) {
	if len(e.events) > 0 {
		ev := e.events[0]
		e.events = e.events[1:]
		return ev, nil
	}
	<-e.ctx.Done() // then wait for the end, as a live stream does
	return runtime.Event{}, io.EOF
}

func (e *scriptedEvents) Close() error {
	e.once.Do(func() {
		if e.closed != nil {
			close(e.closed)
		}
	})
	return nil
}

func (s *scripted) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := s.record(ctx, ref, opts); err != nil {
		return nil, err
	}
	r := io.MultiReader(strings.NewReader(s.logs), ctxReader{ctx})
	return &scriptedLogs{Reader: r, closed: s.closed}, nil
}

// ctxReader blocks until ctx ends, then reads EOF: a followed log.
type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, io.EOF
}

type scriptedLogs struct {
	io.Reader
	closed chan struct{}
	once   sync.Once
}

func (l *scriptedLogs) Close() error {
	l.once.Do(func() {
		if l.closed != nil {
			close(l.closed)
		}
	})
	return nil
}

// fullSpec sets every field of ContainerSpec.
func fullSpec() runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:   "zaki-user-u1",
		Image:  "zaki/gateway-stub:latest",
		Cmd:    []string{"/gateway-stub", "-addr", ":18789"},
		Env:    map[string]string{"TOKEN": "s3cret", "EMPTY": ""},
		Labels: map[string]string{"zaki.instance": "1", "zaki.userId": "u1"},
		User:   "1000:1000",
		Init:   true,
		Resources: runtime.Resources{
			CPUs: 1.5, CPUShares: 512, Memory: "2g", MemorySwap: "2g", PidsLimit: 100,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}, {Path: "/run"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
			SeccompProfile:  "/etc/seccomp.json",
			ApparmorProfile: "zaki",
		},
		Restart: runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network: "zaki",
		Ports:   []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 18790, ContainerPort: 18789, Protocol: "tcp"}},
		Mounts:  []runtime.Mount{{Source: "/var/lib/zaki-agent/instances/u1", Target: "/home/node/.openclaw", ReadOnly: true}},
		Healthcheck: &runtime.Healthcheck{
			Test:     []string{"/gateway-stub", "-probe"},
			Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 1500 * time.Millisecond, Retries: 3,
		},
		StopTimeout: 7 * time.Second,
		Log:         runtime.LogConfig{MaxSize: "10m", MaxFiles: 3},
		OCIRuntime:  "runsc",
		Placement:   runtime.Placement{Node: "n1"},
	}
}

// fullContainer sets every field of Container.
func fullContainer() runtime.Container {
	spec := fullSpec()
	spec.Env = nil // never read back
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	return runtime.Container{
		ID: "0123456789ab", Name: "zaki-user-u1", Image: spec.Image, ImageID: "sha256:feed",
		State: runtime.StateExited, Health: "unhealthy", ExitCode: 137, OOMKilled: true, RestartCount: 4,
		CreatedAt: t0, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(time.Hour),
		Spec: spec, Node: "n1", NodeAddr: "10.0.0.1",
	}
}

func TestShimRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &scripted{
		info: runtime.Info{
			Runtime: "fake", EngineVersion: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "amd64",
			CgroupVersion: "1", SecurityOptions: []string{"seccomp", "apparmor"},
			ImageEvents: true, OCIRuntimes: []string{"runc", "runsc"},
			Unenforced:   []string{runtime.FieldNoNewPrivileges, runtime.FieldHostIP},
			Capabilities: []string{runtime.CapPlacement},
		},
		ctr:  fullContainer(),
		list: []runtime.Container{fullContainer(), {ID: "b", Name: "other", State: runtime.StateCreated}},
	}
	rt, _ := shim(t, impl)

	t.Run("Info", func(t *testing.T) {
		got, err := rt.Info(ctx)
		assert.NilError(t, err)
		assert.DeepEqual(t, got, impl.info)
	})
	t.Run("Create", func(t *testing.T) {
		impl.got = nil
		id, err := rt.Create(ctx, fullSpec())
		assert.NilError(t, err)
		assert.Equal(t, id, "id-zaki-user-u1")
		assert.DeepEqual(t, impl.received(), []any{fullSpec()})
	})
	t.Run("Inspect", func(t *testing.T) {
		got, err := rt.Inspect(ctx, "zaki-user-u1")
		assert.NilError(t, err)
		assert.DeepEqual(t, got, fullContainer())
		// Times are the same instants; their zero values stay zero.
		assert.Check(t, got.CreatedAt.Equal(fullContainer().CreatedAt))
	})
	t.Run("List", func(t *testing.T) {
		impl.got = nil
		sel := runtime.ListOptions{Labels: map[string]string{"zaki.instance": "1", "flag": ""}}
		got, err := rt.List(ctx, sel)
		assert.NilError(t, err)
		assert.DeepEqual(t, got, impl.list)
		assert.Check(t, got[1].CreatedAt.IsZero() && got[1].Spec.Healthcheck == nil)
		assert.DeepEqual(t, impl.received(), []any{sel})
	})
	t.Run("Calls", func(t *testing.T) {
		impl.got = nil
		net := runtime.NetworkSpec{Name: "zaki", Driver: "bridge", DisableICC: true, Labels: map[string]string{"a": "b"}}
		assert.NilError(t, rt.EnsureNetwork(ctx, net))
		assert.NilError(t, rt.RemoveNetwork(ctx, "zaki"))
		assert.NilError(t, rt.Start(ctx, "c1"))
		assert.NilError(t, rt.Stop(ctx, []string{"c1", "c2"}, 1500*time.Millisecond))
		assert.NilError(t, rt.Restart(ctx, "c1", 3*time.Second))
		assert.NilError(t, rt.Remove(ctx, []string{"c3"}, runtime.RemoveOptions{Force: true}))
		id, err := rt.ImageID(ctx, "present")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(id, "sha256:"+strings.Repeat("ab", 32)))
		id, err = rt.ImageID(ctx, "absent")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(id, ""))
		assert.DeepEqual(t, impl.received(), []any{
			net, "zaki", "c1",
			[]string{"c1", "c2"}, 1500 * time.Millisecond,
			"c1", 3 * time.Second,
			[]string{"c3"}, runtime.RemoveOptions{Force: true},
			"present", "absent",
		})
	})
	t.Run("PullImage", func(t *testing.T) {
		var got []runtime.PullProgress
		err := rt.PullImage(ctx, "alpine/openclaw:latest", func(p runtime.PullProgress) { got = append(got, p) })
		assert.NilError(t, err)
		assert.DeepEqual(t, got, []runtime.PullProgress{
			{Ref: "alpine/openclaw:latest", Status: "layer 0: done"},
			{Ref: "alpine/openclaw:latest", Status: "layer 1: done"},
			{Ref: "alpine/openclaw:latest", Status: "layer 2: done"},
		})
		assert.NilError(t, rt.PullImage(ctx, "x", nil)) // no progress func
	})
}

// classes are the error classes as a caller tests them.
var classes = []error{
	runtime.ErrNotFound, runtime.ErrAlreadyExists, runtime.ErrInvalidArgument,
	runtime.ErrUnavailable, runtime.ErrTimeout, runtime.ErrConflict, context.Canceled,
}

func TestShimErrors(t *testing.T) {
	ctx := context.Background()
	impl := &scripted{}
	rt, _ := shim(t, impl)
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: no class
	}{
		{"not found", runtime.Errorf(runtime.ErrNotFound, "no container %q", "c1"), runtime.ErrNotFound},
		{"already exists", fmt.Errorf("create: %w", runtime.ErrAlreadyExists), runtime.ErrAlreadyExists},
		{"invalid", runtime.Errorf(runtime.ErrInvalidArgument, "bad name"), runtime.ErrInvalidArgument},
		{"unavailable", runtime.Errorf(runtime.ErrUnavailable, "engine down"), runtime.ErrUnavailable},
		{"timeout", runtime.Errorf(runtime.ErrTimeout, "docker stop took too long"), runtime.ErrTimeout},
		{"conflict", runtime.Errorf(runtime.ErrConflict, "container c1 is not running"), runtime.ErrConflict},
		{"deadline", fmt.Errorf("inspect: %w", context.DeadlineExceeded), runtime.ErrTimeout},
		{"canceled", fmt.Errorf("inspect: %w", context.Canceled), context.Canceled},
		{"none", errors.New("docker: exit status 125: something odd"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impl.err = tc.err
			defer func() { impl.err = nil }()
			err := rt.Start(ctx, "c1")
			assert.Error(t, err, tc.err.Error()) // the message travels as it is
			assert.Check(t, is.Equal(runtime.Class(err), runtime.Class(tc.err)))
			for _, c := range classes {
				assert.Check(t, is.Equal(errors.Is(err, c), c == tc.want), "errors.Is(err, %v)", c)
			}
		})
	}
}

func TestShimBatchError(t *testing.T) {
	ctx := context.Background()
	failed := map[string]error{
		"c1": runtime.Errorf(runtime.ErrTimeout, "c1 did not stop"),
		"c2": runtime.Errorf(runtime.ErrUnavailable, "engine went away"),
		"c3": errors.New("exit status 1: odd"),
		"c4": runtime.Errorf(runtime.ErrNotFound, "gone"),
		"c5": runtime.Errorf(runtime.ErrInvalidArgument, "bad"),
		"c6": runtime.Errorf(runtime.ErrAlreadyExists, "dup"),
		"c7": context.Canceled,
	}
	impl := &scripted{err: fmt.Errorf("stop: %w", &runtime.BatchError{Failed: failed})}
	rt, _ := shim(t, impl)
	for name, call := range map[string]func() error{
		"Stop": func() error {
			return rt.Stop(ctx, []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "ok"}, time.Second)
		},
		"Remove": func() error { return rt.Remove(ctx, []string{"c1", "ok"}, runtime.RemoveOptions{}) },
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			var be *runtime.BatchError
			assert.Assert(t, errors.As(err, &be), "got %v (%T)", err, err)
			assert.Equal(t, len(be.Failed), len(failed))
			for ref, want := range failed {
				got := be.Failed[ref]
				assert.Assert(t, got != nil, "ref %s missing", ref)
				assert.Check(t, is.Equal(got.Error(), want.Error()), "ref %s", ref)
				assert.Check(t, is.Equal(runtime.Class(got), runtime.Class(want)), "ref %s", ref)
				assert.Check(t, is.Equal(errors.Is(got, context.Canceled), errors.Is(want, context.Canceled)), "ref %s", ref)
			}
			assert.Check(t, errors.Is(err, runtime.ErrTimeout)) // errors.Is sees through
			assert.DeepEqual(t, sortedKeys(runtime.FailedRefs(err, nil)), sortedKeys(failed))
		})
	}

	t.Run("whole call", func(t *testing.T) {
		impl.err = runtime.Errorf(runtime.ErrUnavailable, "engine down")
		err := rt.Stop(ctx, []string{"c1"}, time.Second)
		var be *runtime.BatchError
		assert.Check(t, !errors.As(err, &be))
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable))
	})
}

func sortedKeys(m map[string]error) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func TestShimDeadlineCrosses(t *testing.T) {
	seen := make(chan time.Time, 1)
	impl := &scripted{wait: func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		seen <- dl
		<-ctx.Done()
		return ctx.Err()
	}}
	rt, _ := shim(t, impl)

	// Long enough for the call to reach the plugin on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	_, err := rt.Inspect(ctx, "c1")
	assert.Check(t, errors.Is(err, runtime.ErrTimeout), "got %v", err)
	assert.Check(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	dl := <-seen
	assert.Check(t, !dl.IsZero(), "the plugin saw no deadline")
	// The plugin's deadline is the caller's, less the time in transit.
	assert.Check(t, dl.Sub(want).Abs() < time.Second, "plugin deadline %v, caller's %v", dl, want)
}

func TestShimCancelCrosses(t *testing.T) {
	gone := make(chan error, 1)
	entered := make(chan struct{})
	impl := &scripted{wait: func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		gone <- ctx.Err()
		return ctx.Err()
	}}
	rt, _ := shim(t, impl)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }() // once the call is in the plugin
	err := rt.Start(ctx, "c1")
	assert.Check(t, errors.Is(err, context.Canceled), "got %v", err)
	assert.Check(t, runtime.Class(err) == nil, "a cancel is no class: %v", err)
	select {
	case err := <-gone:
		assert.Check(t, errors.Is(err, context.Canceled))
	case <-time.After(5 * time.Second):
		t.Fatal("the plugin's ctx did not end")
	}
}

func TestShimEvents(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	events := []runtime.Event{
		{Action: runtime.EventStart, ID: "a", Name: "zaki-user-a", Labels: map[string]string{"zaki.instance": "1"}, Time: t0},
		{Action: runtime.EventDie, ID: "a", Name: "zaki-user-a", ExitCode: 137, Time: t0.Add(time.Second)},
		{Action: runtime.EventHealth, ID: "b", Health: "healthy", Time: t0.Add(2 * time.Second)},
	}

	for _, end := range []string{"Close", "cancel"} {
		t.Run("ends on "+end, func(t *testing.T) {
			impl := &scripted{events: events, closed: make(chan struct{})}
			rt, _ := shim(t, impl)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := runtime.EventOptions{Labels: map[string]string{"zaki.instance": "1"}}
			es, err := rt.Events(ctx, opts)
			assert.NilError(t, err)
			assert.DeepEqual(t, impl.received(), []any{opts})
			for _, want := range events {
				got, err := es.Recv()
				assert.NilError(t, err)
				assert.DeepEqual(t, got, want)
			}
			if end == "Close" {
				assert.NilError(t, es.Close())
			} else {
				cancel()
			}
			_, err = es.Recv()
			assert.Check(t, is.Equal(err, io.EOF))
			waitClosed(t, impl.closed)
			es.Close()
		})
	}

	t.Run("open error", func(t *testing.T) {
		rt, _ := shim(t, &scripted{err: runtime.Errorf(runtime.ErrUnavailable, "engine down")})
		_, err := rt.Events(context.Background(), runtime.EventOptions{})
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	})

	t.Run("broken connection", func(t *testing.T) {
		rt, breakConn := shim(t, &scripted{})
		es, err := rt.Events(context.Background(), runtime.EventOptions{})
		assert.NilError(t, err)
		defer es.Close()
		breakConn()
		_, err = es.Recv()
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	})
}

func TestShimLogs(t *testing.T) {
	// More than one chunk of output, with bytes of every value.
	var b strings.Builder
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, "line %d %c\n", i, rune(i%256))
	}
	output := b.String()

	t.Run("to the end", func(t *testing.T) {
		impl := &scripted{logs: output, closed: make(chan struct{})}
		rt, _ := shim(t, impl)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := runtime.LogOptions{Tail: new(10), Since: time.Unix(1764921600, 5), Follow: true, Timestamps: true}
		rc, err := rt.Logs(ctx, "c1", opts)
		assert.NilError(t, err)
		assert.DeepEqual(t, impl.received(), []any{"c1", opts})
		got := make([]byte, len(output))
		_, err = io.ReadFull(rc, got)
		assert.NilError(t, err)
		assert.Equal(t, string(got), output)
		// The stream follows: Close ends it, on both sides.
		assert.NilError(t, rc.Close())
		_, err = rc.Read(got)
		assert.Check(t, is.Equal(err, io.EOF))
		waitClosed(t, impl.closed)
	})

	t.Run("cancel", func(t *testing.T) {
		impl := &scripted{logs: "hello\n", closed: make(chan struct{})}
		rt, _ := shim(t, impl)
		ctx, cancel := context.WithCancel(context.Background())
		rc, err := rt.Logs(ctx, "c1", runtime.LogOptions{Follow: true})
		assert.NilError(t, err)
		defer rc.Close()
		got := make([]byte, len("hello\n"))
		_, err = io.ReadFull(rc, got)
		assert.NilError(t, err)
		cancel() // once the line is here
		rest, err := io.ReadAll(rc)
		assert.NilError(t, err) // io.EOF: a clean end
		assert.Equal(t, string(got)+string(rest), "hello\n")
		waitClosed(t, impl.closed)
	})

	t.Run("tail 0 and none", func(t *testing.T) {
		// A tail of 0 (no lines) is not lost as "all", nor "all" as 0.
		for _, opts := range []runtime.LogOptions{{Tail: new(0)}, {}} {
			impl := &scripted{logs: "x\n", closed: make(chan struct{})}
			rt, _ := shim(t, impl)
			rc, err := rt.Logs(context.Background(), "c1", opts)
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(impl.received(), []any{"c1", opts}))
			assert.NilError(t, rc.Close())
			waitClosed(t, impl.closed)
		}
	})

	t.Run("open error", func(t *testing.T) {
		rt, _ := shim(t, &scripted{err: runtime.Errorf(runtime.ErrNotFound, "no container %q", "c9")})
		_, err := rt.Logs(context.Background(), "c9", runtime.LogOptions{})
		assert.Check(t, errors.Is(err, runtime.ErrNotFound), "got %v", err)
		assert.Error(t, err, `no container "c9"`)
	})

	t.Run("broken connection", func(t *testing.T) {
		rt, breakConn := shim(t, &scripted{logs: "x"})
		rc, err := rt.Logs(context.Background(), "c1", runtime.LogOptions{Follow: true})
		assert.NilError(t, err)
		defer rc.Close()
		buf := make([]byte, 1)
		_, err = io.ReadFull(rc, buf)
		assert.NilError(t, err)
		breakConn()
		_, err = rc.Read(buf)
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	})
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the plugin side of the stream was not released")
	}
}

func sortStrings(s []string) { slices.Sort(s) }

// TestShimExec: Exec's options and result cross the boundary whole, bytes
// that are not UTF-8 included.
func TestShimExec(t *testing.T) {
	impl := &scripted{}
	rt, _ := shim(t, impl)
	opts := runtime.ExecOptions{Cmd: []string{"find", "/x", "-name", "*.lock"}, Timeout: 1500 * time.Millisecond, MaxOutput: 4096}
	res, err := rt.Exec(context.Background(), "c1", opts)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(res, runtime.ExecResult{ExitCode: 3, Stdout: []byte("out"), Stderr: []byte("err\xff"), StderrTruncated: true}))
	assert.Check(t, is.DeepEqual(impl.received(), []any{"c1", opts}))
}
