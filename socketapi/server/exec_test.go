package server_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestExec: POST /v1/instances/{userId}/exec over the fake runtime: the
// result, each refusal with its status and code (every answer checked
// against the OpenAPI document), and the command's arguments in no log.
func TestExec(t *testing.T) {
	e := start(t)
	c, ctx := e.Client, ctxT(t)
	_, err := c.Ensure(ctx, "carol", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	const secret = "exec-secret-4242"

	res, err := c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", secret)})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(res, socketapi.ExecResult{Stdout: secret + "\n"}))
	res, err = c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("exit", "7")})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.ExitCode, 7))
	res, err = c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("spam", "1100000")})
	assert.NilError(t, err)
	assert.Check(t, res.Truncated)
	assert.Check(t, is.Equal(len(res.Stdout), 1<<20))

	for _, tc := range []struct {
		name, user, body string
		status           int
		code             string
	}{
		{"no cmd", "carol", `{"cmd": []}`, 400, "invalid_argument"},
		{"empty first", "carol", `{"cmd": [""]}`, 400, "invalid_argument"},
		{"timeout over", "carol", `{"cmd": ["x"], "timeoutSeconds": 601}`, 400, "invalid_argument"},
		{"timeout negative", "carol", `{"cmd": ["x"], "timeoutSeconds": -1}`, 400, "invalid_argument"},
		{"unknown field", "carol", `{"cmd": ["x"], "user": "root"}`, 400, "invalid_argument"},
		{"unknown user", "nobody", `{"cmd": ["x"]}`, 404, "not_found"},
		{"bad user", "bad!id", `{"cmd": ["x"]}`, 400, "invalid_argument"},
		{"timed out", "carol", `{"cmd": ["/gateway-stub", "-exec", "sleep", "5", "` + secret + `"], "timeoutSeconds": 0.2}`, 504, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := raw(t, e.Socket, "POST", "/v1/instances/"+tc.user+"/exec", tc.body)
			assert.Check(t, is.Equal(r.status, tc.status), r.body)
			assert.Check(t, is.Equal(r.errorCode(), tc.code), r.body)
			assert.Check(t, !strings.Contains(r.body, secret), r.body)
		})
	}

	// Two at once in one instance; a third is refused, not queued. A
	// sleep that meets the probe's echo in a slot is refused too, so each
	// tries again until it runs: the two end up holding both slots however
	// slowly this machine starts them.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("sleep", "3")})
				if !errors.Is(err, socketapi.ErrTooManyRequests) {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		_, err := c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo")})
		switch {
		case err == nil:
			return poll.Continue("the sleeps hold no slot yet")
		case errors.Is(err, socketapi.ErrTooManyRequests):
			var ae *socketapi.Error
			if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != socketapi.CodeTooManyRequests {
				return poll.Error(err)
			}
			return poll.Success()
		default:
			return poll.Error(err)
		}
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(20*time.Millisecond))
	wg.Wait()

	_, err = c.Stop(ctx, "carol")
	assert.NilError(t, err)
	_, err = c.Exec(ctx, "carol", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", secret)})
	assert.Check(t, errors.Is(err, socketapi.ErrConflict), "got %v", err)

	assert.Check(t, strings.Contains(e.Logs.String(), "exec"))
	assert.Check(t, !strings.Contains(e.Logs.String(), secret), e.Logs.String())
}
