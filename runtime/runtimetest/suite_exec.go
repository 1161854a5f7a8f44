package runtimetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testExec: Exec runs a command as the container's user and returns its
// exit code and output, each stream cut at the cap; a command past its
// timeout is ErrTimeout and is killed with what it started; a container
// not running is ErrConflict, a missing one ErrNotFound.
func (s *suite) testExec(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("exec")
	spec := s.simpleSpec(name, nil)
	spec.User = s.cfg.User
	s.create(t, spec)
	s.start(t, name)
	exec := func(t *testing.T, opts runtime.ExecOptions) runtime.ExecResult {
		t.Helper()
		if opts.Timeout == 0 {
			opts.Timeout = s.cfg.Timeout
		}
		res, err := s.rt.Exec(ctx, name, opts)
		if err != nil {
			t.Fatalf("exec %q in %s: %v", opts.Cmd, name, err)
		}
		return res
	}

	t.Run("Output", func(t *testing.T) {
		res := exec(t, runtime.ExecOptions{Cmd: StubCmd("echo", "hello", "$(world)")})
		if res.ExitCode != 0 || string(res.Stdout) != "hello $(world)\n" || len(res.Stderr) != 0 || res.StdoutTruncated || res.StderrTruncated {
			t.Errorf("exec echo: got %+v, want exit 0, stdout %q, no stderr", res, "hello $(world)\n")
		}
		res = exec(t, runtime.ExecOptions{Cmd: StubCmd("stderr", "oops")})
		if res.ExitCode != 0 || string(res.Stderr) != "oops\n" || len(res.Stdout) != 0 {
			t.Errorf("exec stderr: got %+v, want exit 0, stderr %q, no stdout", res, "oops\n")
		}
	})
	t.Run("ExitCode", func(t *testing.T) {
		if res := exec(t, runtime.ExecOptions{Cmd: StubCmd("exit", "3")}); res.ExitCode != 3 {
			t.Errorf("exec exit 3: got exit code %d, want 3", res.ExitCode)
		}
	})
	t.Run("User", func(t *testing.T) {
		if res := exec(t, runtime.ExecOptions{Cmd: StubCmd("id")}); strings.TrimSpace(string(res.Stdout)) != s.cfg.User {
			t.Errorf("exec id: got %q, want the container's user %s", res.Stdout, s.cfg.User)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		res := exec(t, runtime.ExecOptions{Cmd: StubCmd("spam", "5000"), MaxOutput: 1000})
		if len(res.Stdout) != 1000 || len(res.Stderr) != 1000 || !res.StdoutTruncated || !res.StderrTruncated || res.ExitCode != 0 {
			t.Errorf("exec spam 5000 capped at 1000: got exit %d, %d bytes of stdout (truncated %v), %d of stderr (truncated %v); want 1000 of each, both truncated",
				res.ExitCode, len(res.Stdout), res.StdoutTruncated, len(res.Stderr), res.StderrTruncated)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		start := time.Now()
		_, err := s.rt.Exec(ctx, name, runtime.ExecOptions{Cmd: StubCmd("tree", "300"), Timeout: time.Second})
		if !errors.Is(err, runtime.ErrTimeout) {
			t.Fatalf("exec tree 300 with a 1s timeout: got %v, want ErrTimeout", err)
		}
		if took := time.Since(start); took > s.cfg.Timeout {
			t.Errorf("exec with a 1s timeout took %v", took)
		}
		// Nothing of it is left: neither the command nor its child.
		s.waitFor(t, func(poll.LogT) poll.Result {
			res, err := s.rt.Exec(ctx, name, runtime.ExecOptions{Cmd: StubCmd("procs", "-exec"), Timeout: s.cfg.Timeout})
			if err != nil {
				return poll.Error(err)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != "0" {
				return poll.Continue("exec'd processes still running after the timeout: %s", got)
			}
			return poll.Success()
		})
	})
	t.Run("NotRunning", func(t *testing.T) {
		stopped := s.name("exec-created")
		s.create(t, s.simpleSpec(stopped, nil))
		_, err := s.rt.Exec(ctx, stopped, runtime.ExecOptions{Cmd: StubCmd("echo", "x"), Timeout: s.cfg.Timeout})
		if !errors.Is(err, runtime.ErrConflict) {
			t.Errorf("exec in a container never started: got %v, want ErrConflict", err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := s.rt.Exec(ctx, s.name("exec-missing"), runtime.ExecOptions{Cmd: StubCmd("echo", "x"), Timeout: s.cfg.Timeout})
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("exec in a missing container: got %v, want ErrNotFound", err)
		}
	})
	t.Run("InvalidArgument", func(t *testing.T) {
		for _, opts := range []runtime.ExecOptions{
			{Timeout: time.Second},
			{Cmd: []string{""}, Timeout: time.Second},
			{Cmd: StubCmd("echo"), Timeout: 0},
			{Cmd: StubCmd("echo"), Timeout: time.Second, MaxOutput: runtime.MaxExecOutput + 1},
		} {
			if _, err := s.rt.Exec(ctx, name, opts); !errors.Is(err, runtime.ErrInvalidArgument) {
				t.Errorf("exec %+v: got %v, want ErrInvalidArgument", opts, err)
			}
		}
	})
}
