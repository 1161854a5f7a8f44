package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestEngineExec: POST /v1/instances/{userId}/exec on the real engine,
// through the real docker plugin: exit codes, stdout and stderr, the
// output cap, a timeout that kills the command and what it started, 429
// past the per-instance bound, 409 once stopped, 404 for an unknown user,
// zakictl exec's exit code; and the command's arguments in no log line of
// the agent, the server or the plugin.
func TestEngineExec(t *testing.T) {
	en := startEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := en.Client
	u := en.user("exec")
	t.Cleanup(func() { c.Remove(context.Background(), u, true) })
	_, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
	assert.NilError(t, err)
	secret := fmt.Sprintf("s3cr3t-exec-arg-%d", time.Now().UnixNano())
	run := func(timeout float64, verb string, args ...string) (socketapi.ExecResult, error) {
		return c.Exec(ctx, u, socketapi.ExecRequest{Cmd: runtimetest.StubCmd(verb, args...), TimeoutSeconds: timeout})
	}

	t.Run("output and exit codes", func(t *testing.T) {
		res, err := run(0, "echo", "hello", secret)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(res, socketapi.ExecResult{ExitCode: 0, Stdout: "hello " + secret + "\n"}))
		res, err = run(0, "stderr", "oops", secret)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(res, socketapi.ExecResult{ExitCode: 0, Stderr: "oops " + secret + "\n"}))
		res, err = run(0, "exit", "3")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(res.ExitCode, 3))
		res, err = run(0, "id")
		assert.NilError(t, err)
		uid, ok := en.Registry.UID(u)
		assert.Check(t, ok, "the user has a uid of its own")
		assert.Check(t, is.Equal(res.Stdout, fmt.Sprintf("%d:%d\n", uid, uid)), "runs as the instance's user")
	})

	t.Run("output cap", func(t *testing.T) {
		res, err := run(0, "spam", fmt.Sprint(3<<20/2))
		assert.NilError(t, err)
		assert.Check(t, res.Truncated)
		assert.Check(t, is.Equal(len(res.Stdout), 1<<20))
		assert.Check(t, is.Equal(len(res.Stderr), 1<<20))
		res, err = run(0, "spam", "1000")
		assert.NilError(t, err)
		assert.Check(t, !res.Truncated)
	})

	t.Run("timeout kills", func(t *testing.T) {
		start := time.Now()
		_, err := run(1, "tree", "300", secret)
		wantAPIError(t, err, http.StatusGatewayTimeout, socketapi.CodeTimeout, socketapi.ErrTimeout)
		assert.Check(t, time.Since(start) < 30*time.Second, "took %v", time.Since(start))
		assert.Check(t, !strings.Contains(err.Error(), secret), err.Error())
		// Neither the command nor its child runs on: not as the container
		// sees it, nor as the engine does.
		res, err := run(0, "procs", "-exec")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(res.Stdout, "0\n"))
		top, err := exec.Command("docker", "top", "zaki-user-"+u, "-eo", "pid,args").CombinedOutput()
		assert.NilError(t, err, "%s", top)
		assert.Check(t, !strings.Contains(string(top), "-exec"), "left running:\n%s", top)
	})

	t.Run("429 past the bound", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := run(0, "sleep", "8")
				errs <- err
			}()
		}
		// Both run in the container, so both hold their slot.
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			top, err := exec.Command("docker", "top", "zaki-user-"+u, "-eo", "pid,args").CombinedOutput()
			if err != nil {
				return poll.Error(fmt.Errorf("docker top: %v: %s", err, top))
			}
			if n := strings.Count(string(top), "-exec sleep 8"); n < 2 {
				return poll.Continue("%d of the 2 sleeps run", n)
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second), poll.WithDelay(100*time.Millisecond))
		_, err := run(0, "echo", "x")
		wantAPIError(t, err, http.StatusTooManyRequests, socketapi.CodeTooManyRequests, socketapi.ErrTooManyRequests)
		wg.Wait()
		close(errs)
		for err := range errs {
			assert.Check(t, err)
		}
	})

	t.Run("zakictl", func(t *testing.T) {
		ctl := testenv.Binary(t, "zakictl")
		out, err := exec.Command(ctl, "--socket", en.Socket, "exec", u, "--", "/gateway-stub", "-exec", "echo", "hi").Output()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(out), "hi\n"))
		cmd := exec.Command(ctl, "--socket", en.Socket, "exec", "--timeout", "10", u, "--", "/gateway-stub", "-exec", "exit", "4")
		err = cmd.Run()
		var ee *exec.ExitError
		assert.Assert(t, errors.As(err, &ee), "got %v, want exit status 4", err)
		assert.Check(t, is.Equal(ee.ExitCode(), 4))
	})

	t.Run("404 and 409", func(t *testing.T) {
		_, err := c.Exec(ctx, en.user("nobody"), socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo")})
		wantAPIError(t, err, http.StatusNotFound, socketapi.CodeNotFound, socketapi.ErrNotFound)
		_, err = c.Stop(ctx, u)
		assert.NilError(t, err)
		_, err = run(0, "echo", secret)
		wantAPIError(t, err, http.StatusConflict, socketapi.CodeConflict, socketapi.ErrConflict)
	})

	for what, log := range map[string]string{"agent and server": en.Logs.String(), "plugin": en.log.String()} {
		assert.Check(t, strings.Contains(log, "msg=exec") || strings.Contains(log, `cmd="docker exec"`), "the %s log has no exec line:\n%s", what, tail(log, 2000))
		assert.Check(t, !strings.Contains(log, secret), "the %s log holds an exec'd argument:\n%s", what, tail(log, 4000))
	}
}

// TestEngineImageErrors: an image the engine cannot pull is 502
// pull_failed with the engine's reason; an image outside allowedImages is
// 403 forbidden. Nothing reaches a public registry: the pull is from a
// closed port on the loopback.
func TestEngineImageErrors(t *testing.T) {
	unpullable := fmt.Sprintf("127.0.0.1:%d/zaki/nowhere:latest", testenv.ClosedPort(t))
	en := startEngineWith(t, 10, func(c *daemon.Config) {
		c.Instance.AllowedImages = append(c.Instance.AllowedImages, unpullable)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	u := en.user("pull")
	t.Cleanup(func() { en.Client.Remove(context.Background(), u, true) })
	_, err := en.Client.Ensure(ctx, u, socketapi.InstanceSpec{Image: unpullable})
	wantAPIError(t, err, http.StatusBadGateway, socketapi.CodePullFailed, socketapi.ErrPullFailed)
	assert.Check(t, is.ErrorContains(err, "connection refused"), "the engine's reason")

	_, err = en.Client.Ensure(ctx, en.user("other"), socketapi.InstanceSpec{Image: "zaki/not-allowed:latest"})
	wantAPIError(t, err, http.StatusForbidden, socketapi.CodeForbidden, socketapi.ErrForbidden)
	assert.Check(t, is.ErrorContains(err, "not allowed"))
}
