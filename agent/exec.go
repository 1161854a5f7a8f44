package agent

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/slots"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// Bounds of Exec.
const (
	// DefaultExecTimeout is an exec's timeout when the caller gives none;
	// MaxExecTimeout the most a caller may give.
	DefaultExecTimeout = 30 * time.Second
	MaxExecTimeout     = 10 * time.Minute
	// ExecOutputCap is what is kept of each of an exec's streams.
	ExecOutputCap = runtime.DefaultExecOutput
	// ExecPerInstance and ExecTotal bound the execs running at once, in
	// one instance and in all; past them an exec is refused (429) rather
	// than queued, so that a caller that loops cannot pile them up.
	ExecPerInstance = 2
	ExecTotal       = 8
	// maxExecArgs and maxExecArgBytes bound a command line.
	maxExecArgs     = 256
	maxExecArgBytes = 64 << 10
)

// execSlots counts the execs running, in all and per user.
type execSlots struct{ slots.Counter }

// take holds a slot for userID, or fails with ErrTooManyRequests.
func (s *execSlots) take(userID string) (release func(), err error) {
	release, full, _ := s.Take(userID, ExecTotal, ExecPerInstance)
	switch full {
	case slots.PerKey:
		return nil, errdefs.Errorf(errdefs.ErrTooManyRequests, "user %q already has %d commands running (the most at once); retry when one ends", userID, ExecPerInstance)
	case slots.Total:
		return nil, errdefs.Errorf(errdefs.ErrTooManyRequests, "%d commands already running on this host (the most at once); retry when one ends", ExecTotal)
	}
	return release, nil
}

// Exec runs a command in userID's running instance (see
// socketapi.ExecRequest): 404 without an instance, 409 when it is not
// running, 429 past the bounds of execs at once, 504 (the command killed)
// past its timeout, 503 node_unavailable while its node is not ready (a
// cluster runtime). The command's arguments are never logged nor quoted
// in an error: they may hold secrets.
func (a *Agent) Exec(ctx context.Context, userID string, req socketapi.ExecRequest) (socketapi.ExecResult, error) {
	if err := validateUserID(userID); err != nil {
		return socketapi.ExecResult{}, err
	}
	timeout, err := execTimeout(req.TimeoutSeconds)
	if err != nil {
		return socketapi.ExecResult{}, err
	}
	if err := validateExecCmd(req.Cmd); err != nil {
		return socketapi.ExecResult{}, err
	}
	if _, ok := a.reg.Get(userID); !ok {
		return socketapi.ExecResult{}, notFound(userID)
	}
	if err := a.confirmUser(ctx, userID); err != nil {
		return socketapi.ExecResult{}, err
	}
	ls := a.liveOf(userID)
	if a.cluster != nil {
		if err := a.checkNode(ctx, userID, ls); err != nil {
			return socketapi.ExecResult{}, err
		}
	}
	switch {
	case !ls.exists():
		return socketapi.ExecResult{}, errdefs.Errorf(errdefs.ErrConflict, "instance of user %q is not running: its container is missing; ensure it first", userID)
	case ls.paused():
		return socketapi.ExecResult{}, errdefs.Errorf(errdefs.ErrConflict, "instance of user %q is paused (idle): ensure or touch it first, which thaws it", userID)
	case ls.State != runtime.StateRunning:
		return socketapi.ExecResult{}, errdefs.Errorf(errdefs.ErrConflict, "instance of user %q is not running (%s); ensure it first", userID, ls.State)
	}
	release, err := a.execs.take(userID)
	if err != nil {
		return socketapi.ExecResult{}, err
	}
	defer release()

	start := time.Now()
	res, err := a.rt.Exec(ctx, ls.ID, runtime.ExecOptions{Cmd: req.Cmd, Timeout: timeout, MaxOutput: ExecOutputCap})
	err = a.nodeUnavailable(ctx, userID, err)
	if err != nil {
		a.log.Warn("exec failed", "user", userID, "seconds", time.Since(start).Seconds(), "err", err)
		return socketapi.ExecResult{}, fmt.Errorf("exec in instance of user %q: %w", userID, err)
	}
	truncated := res.StdoutTruncated || res.StderrTruncated
	a.log.Info("exec", "user", userID, "exit", res.ExitCode, "truncated", truncated, "seconds", time.Since(start).Seconds())
	return socketapi.ExecResult{
		ExitCode:  res.ExitCode,
		Stdout:    string(res.Stdout),
		Stderr:    string(res.Stderr),
		Truncated: truncated,
	}, nil
}

// execTimeout turns the caller's timeoutSeconds into a timeout: 0 is the
// default, others must be within (0, MaxExecTimeout].
func execTimeout(secs float64) (time.Duration, error) {
	if secs == 0 {
		return DefaultExecTimeout, nil
	}
	if math.IsNaN(secs) || secs < 0 || secs > MaxExecTimeout.Seconds() {
		return 0, invalid("timeoutSeconds %v out of range (0, %v]", secs, MaxExecTimeout.Seconds())
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// validateExecCmd checks a command line without quoting it.
func validateExecCmd(cmd []string) error {
	if len(cmd) == 0 || cmd[0] == "" {
		return invalid("cmd: empty command")
	}
	if len(cmd) > maxExecArgs {
		return invalid("cmd: %d arguments, more than %d", len(cmd), maxExecArgs)
	}
	n := 0
	for i, arg := range cmd {
		if strings.ContainsRune(arg, 0) {
			return invalid("cmd: argument %d holds a NUL byte", i)
		}
		n += len(arg)
	}
	if n > maxExecArgBytes {
		return invalid("cmd: %d bytes of arguments, more than %d", n, maxExecArgBytes)
	}
	return nil
}
