package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

func TestExecSlots(t *testing.T) {
	var s execSlots
	var releases []func()
	for range ExecPerInstance {
		r, err := s.take("a")
		assert.NilError(t, err)
		releases = append(releases, r)
	}
	_, err := s.take("a")
	assert.Check(t, errors.Is(err, errdefs.ErrTooManyRequests), "per instance: got %v", err)
	for i := ExecPerInstance; i < ExecTotal; i++ {
		r, err := s.take(string(rune('b' + i)))
		assert.NilError(t, err)
		releases = append(releases, r)
	}
	_, err = s.take("z")
	assert.Check(t, errors.Is(err, errdefs.ErrTooManyRequests), "in all: got %v", err)
	for _, r := range releases {
		r()
	}
	held, users := s.Held()
	assert.Check(t, is.Equal(held, 0))
	assert.Check(t, is.Equal(users, 0))
}

func TestExecTimeout(t *testing.T) {
	for secs, want := range map[float64]time.Duration{0: DefaultExecTimeout, 0.5: 500 * time.Millisecond, 600: MaxExecTimeout} {
		got, err := execTimeout(secs)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, want))
	}
	for _, secs := range []float64{-1, 600.5, 1e9} {
		_, err := execTimeout(secs)
		assert.Check(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v: got %v", secs, err)
	}
}

// TestExecRefusals: bad input, an unknown user and a stopped instance
// reach no engine exec, and no error quotes the command.
func TestExecRefusals(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	_, err := e.a.Ensure(ctx, "amy", InstanceSpec{}, EnsureOptions{})
	assert.NilError(t, err)
	const secret = "hunter2-exec"
	res, err := e.a.Exec(ctx, "amy", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", secret)})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Stdout, secret+"\n"))
	e.fake.ResetCalls()
	for name, tc := range map[string]struct {
		user  string
		req   socketapi.ExecRequest
		class error
	}{
		"no cmd":        {"amy", socketapi.ExecRequest{}, errdefs.ErrInvalidArgument},
		"nul":           {"amy", socketapi.ExecRequest{Cmd: []string{"x", secret + "\x00"}}, errdefs.ErrInvalidArgument},
		"too many args": {"amy", socketapi.ExecRequest{Cmd: make([]string, maxExecArgs+1)}, errdefs.ErrInvalidArgument},
		"timeout":       {"amy", socketapi.ExecRequest{Cmd: []string{secret}, TimeoutSeconds: 1e6}, errdefs.ErrInvalidArgument},
		"bad user":      {"bad!", socketapi.ExecRequest{Cmd: []string{secret}}, errdefs.ErrInvalidArgument},
		"unknown user":  {"bob", socketapi.ExecRequest{Cmd: []string{secret}}, errdefs.ErrNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.a.Exec(ctx, tc.user, tc.req)
			assert.Check(t, errors.Is(err, tc.class), "got %v, want %v", err, tc.class)
			assert.Check(t, !is.Contains(err.Error(), secret)().Success(), err.Error())
		})
	}
	_, err = e.a.Stop(ctx, "amy")
	assert.NilError(t, err)
	_, err = e.a.Exec(ctx, "amy", socketapi.ExecRequest{Cmd: []string{secret}})
	assert.Check(t, errors.Is(err, errdefs.ErrConflict), "got %v", err)
	assert.Check(t, is.Equal(e.fake.Calls("Exec"), 0))
}

// TestPullFailed: a pull the engine fails is ErrPullFailed with its
// reason, also when the client's words say "unavailable" of the registry
// while the engine answers; an engine that is down stays unavailable.
func TestPullFailed(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	_, err := e.a.Ensure(ctx, "pam", InstanceSpec{Image: "zaki/nowhere:1"}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrPullFailed), "got %v", err)
	assert.Check(t, errdefs.Class(err) == errdefs.ErrPullFailed, "got class %v", errdefs.Class(err))

	e.fake.FailNext("PullImage", 1, errdefs.Errorf(errdefs.ErrUnavailable, "dial tcp 127.0.0.1:1: connect: connection refused"))
	_, err = e.a.Ensure(ctx, "pam", InstanceSpec{Image: "zaki/nowhere:2"}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrPullFailed), "got %v", err)
	assert.Check(t, is.ErrorContains(err, "connection refused"))
}
