package runtimetest_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// pullRef is what the fake can pull in the suite's pull check.
const pullRef = "127.0.0.1:5000/zaki/gateway-stub:pull"

func fakeConfig(rt func(*runtimetest.Fake) runtime.Runtime) runtimetest.Config {
	return runtimetest.Config{
		New: func(t *testing.T) runtime.Runtime {
			return rt(runtimetest.NewFake(runtimetest.WithPullable(pullRef)))
		},
		Image:   testenv.StubImage,
		PullRef: pullRef,
		Timeout: 5 * time.Second,
	}
}

// TestFakeConforms runs the suite against the fake.
func TestFakeConforms(t *testing.T) {
	runtimetest.Run(t, fakeConfig(func(f *runtimetest.Fake) runtime.Runtime { return f }))
}

// brokenEnv names the broken runtime TestBrokenRuntime runs the suite
// against, in a child process of TestSuiteCatchesBrokenRuntimes.
const brokenEnv = "ZAKI_RUNTIMETEST_BROKEN"

// broken are runtimes that each break one rule of the contract, with the
// subtest of the suite that must fail and a word of its message.
var broken = map[string]struct {
	wrap     func(*runtimetest.Fake) runtime.Runtime
	subtest  string
	messages []string
}{
	"stop-missing-fails": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return stopMissingFails{f} },
		subtest: "Lifecycle", messages: []string{"stop missing"},
	},
	"inspect-drops-user": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return dropsUser{f} },
		subtest: "FullSpec", messages: []string{"Spec.User"},
	},
	"memory-not-normalized": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return memoryAsGiven{f} },
		subtest: "FullSpec", messages: []string{"Spec.Resources.Memory", "want a byte count"},
	},
	"env-read-back": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return envReadBack{f} },
		subtest: "FullSpec", messages: []string{"Env is never read back"},
	},
	"no-validation": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return noValidation{f} },
		subtest: "InvalidArgument/Memory", messages: []string{"want class invalid argument"},
	},
	"create-replaces": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return createReplaces{f} },
		subtest: "FullSpec", messages: []string{"want class already exists"},
	},
	"list-key-only": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return listKeyOnly{f} },
		subtest: "List/KeyValue", messages: []string{"got ["},
	},
	"events-no-die": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return eventsNoDie{f} },
		subtest: "Events", messages: []string{"want [create start die destroy]"},
	},
	"logs-ignore-tail": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return logsIgnoreTail{f} },
		subtest: "Logs", messages: []string{"tail 1"},
	},
	"logs-ignore-since": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return logsIgnoreSince{f} },
		subtest: "Logs/SinceAndTail0", messages: []string{"since"},
	},
	"logs-tail0-all": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return logsTail0All{f} },
		subtest: "Logs/SinceAndTail0", messages: []string{"tail 0"},
	},
	"ignores-ctx": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return ignoresCtx{f} },
		subtest: "Context/Canceled", messages: []string{"Info with a done ctx: got no error"},
	},
	"batch-not-batch-error": {
		wrap:    func(f *runtimetest.Fake) runtime.Runtime { return plainRemoveError{f} },
		subtest: "Batch", messages: []string{"want a *runtime.BatchError"},
	},
}

// TestBrokenRuntime runs the suite against the broken runtime named by
// $ZAKI_RUNTIMETEST_BROKEN, which TestSuiteCatchesBrokenRuntimes sets in
// its child processes; without it (or with "none"), against the fake
// itself.
func TestBrokenRuntime(t *testing.T) {
	name := os.Getenv(brokenEnv)
	wrap := func(f *runtimetest.Fake) runtime.Runtime { return f }
	if name != "" && name != "none" {
		b, ok := broken[name]
		if !ok {
			t.Fatalf("unknown broken runtime %q", name)
		}
		wrap = b.wrap
	}
	runtimetest.Run(t, fakeConfig(wrap))
}

// TestSuiteCatchesBrokenRuntimes proves that the suite can fail: against
// each broken runtime, the subtest that checks the broken rule fails
// (with a real *testing.T, in a child process), while the fake passes.
func TestSuiteCatchesBrokenRuntimes(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in a child process")
	}
	run := func(name string) *icmd.Result {
		return icmd.RunCmd(icmd.Command(os.Args[0], "-test.run=^TestBrokenRuntime$", "-test.v", "-test.count=1"),
			icmd.WithEnv(append(os.Environ(), brokenEnv+"="+name)...),
			icmd.WithTimeout(2*time.Minute))
	}
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		res := run("none")
		assert.Equal(t, res.ExitCode, 0, "the fake fails the suite:\n%s", res.Combined())
		assert.Assert(t, strings.Contains(res.Stdout(), "--- PASS: TestBrokenRuntime"), res.Combined())
	})
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := run(name)
			out := res.Combined()
			assert.Equal(t, res.ExitCode, 1, "the suite passed a runtime that breaks the contract (%s):\n%s", name, out)
			assert.Assert(t, strings.Contains(out, "--- FAIL: TestBrokenRuntime/"+b.subtest+" "),
				"want subtest %s to fail:\n%s", b.subtest, out)
			for _, m := range b.messages {
				assert.Assert(t, strings.Contains(out, m), "want %q in the output:\n%s", m, out)
			}
		})
	}
}

// The broken runtimes: the fake with one rule of the contract broken.

type stopMissingFails struct{ *runtimetest.Fake }

func (r stopMissingFails) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	for _, ref := range refs {
		if _, ok := r.Container(ref); !ok {
			return runtime.Errorf(runtime.ErrNotFound, "no such container %q", ref)
		}
	}
	return r.Fake.Stop(ctx, refs, timeout)
}

type dropsUser struct{ *runtimetest.Fake }

func (r dropsUser) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	c, err := r.Fake.Inspect(ctx, ref)
	c.Spec.User = ""
	return c, err
}

type memoryAsGiven struct{ *runtimetest.Fake }

func (r memoryAsGiven) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	c, err := r.Fake.Inspect(ctx, ref)
	if given, ok := r.CreatedSpec(ref); ok {
		c.Spec.Resources.Memory = given.Resources.Memory
	}
	return c, err
}

type envReadBack struct{ *runtimetest.Fake }

func (r envReadBack) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	c, err := r.Fake.Inspect(ctx, ref)
	if given, ok := r.CreatedSpec(ref); ok {
		c.Spec.Env = given.Env
	}
	return c, err
}

type noValidation struct{ *runtimetest.Fake }

func (r noValidation) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if _, err := runtime.ParseBytes(spec.Resources.Memory); spec.Resources.Memory != "" && err != nil {
		spec.Resources.Memory = "" // an engine that ignores what it cannot parse
	}
	return r.Fake.Create(ctx, spec)
}

type createReplaces struct{ *runtimetest.Fake }

func (r createReplaces) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	r.Fake.Remove(ctx, []string{spec.Name}, runtime.RemoveOptions{Force: true})
	return r.Fake.Create(ctx, spec)
}

type listKeyOnly struct{ *runtimetest.Fake }

func (r listKeyOnly) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	sel := map[string]string{}
	for k := range opts.Labels {
		sel[k] = ""
	}
	return r.Fake.List(ctx, runtime.ListOptions{Labels: sel})
}

type eventsNoDie struct{ *runtimetest.Fake }

func (r eventsNoDie) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	s, err := r.Fake.Events(ctx, opts)
	if err != nil {
		return nil, err
	}
	return noDieStream{s}, nil
}

type noDieStream struct{ runtime.EventStream }

func (s noDieStream) Recv() (runtime.Event, error) {
	for {
		ev, err := s.EventStream.Recv()
		if err != nil || ev.Action != runtime.EventDie {
			return ev, err
		}
	}
}

type logsIgnoreTail struct{ *runtimetest.Fake }

func (r logsIgnoreTail) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	r.WriteLog(ref, "another line") // so that "all" differs from "the last one"
	opts.Tail = nil
	return r.Fake.Logs(ctx, ref, opts)
}

type logsIgnoreSince struct{ *runtimetest.Fake }

func (r logsIgnoreSince) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	opts.Since = time.Time{}
	return r.Fake.Logs(ctx, ref, opts)
}

// logsTail0All reads a tail of 0 as all, as zakictl and the API once did.
type logsTail0All struct{ *runtimetest.Fake }

func (r logsTail0All) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if opts.Tail != nil && *opts.Tail == 0 {
		opts.Tail = nil
	}
	return r.Fake.Logs(ctx, ref, opts)
}

type ignoresCtx struct{ *runtimetest.Fake }

func (r ignoresCtx) Info(ctx context.Context) (runtime.Info, error) {
	return r.Fake.Info(context.WithoutCancel(ctx))
}

type plainRemoveError struct{ *runtimetest.Fake }

func (r plainRemoveError) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	if err := r.Fake.Remove(ctx, refs, opts); err != nil {
		return fmt.Errorf("remove: %s", err) // flattened: no *BatchError, no class
	}
	return nil
}
