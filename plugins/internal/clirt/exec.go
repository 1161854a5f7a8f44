package clirt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// killTimeout bounds the clean-up of a timed-out exec (top, then kill).
const killTimeout = 10 * time.Second

// Exec runs `exec -- REF CMD...`: as the container's own user (no
// --user), with no TTY and no stdin, each stream kept up to the cap. The
// command's arguments never reach a log line or an error.
//
// Neither docker nor podman ends an exec'd process when the client that
// started it dies, and neither has a way to signal one. So when the
// timeout passes (or ctx ends), the client is killed and then the
// command's own processes: the engine's `top` lists the container's
// processes with their host PIDs; those whose parent is outside the
// container (exec'd, not descended from the main process), that are not
// the main process, and whose arguments are the command's, are killed
// with SIGKILL from the host, with everything they started. Two identical
// commands running at once in one container are killed together.
func (e *Engine) Exec(ctx context.Context, ref string, opts runtime.ExecOptions) (runtime.ExecResult, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return runtime.ExecResult{}, err
	}
	if err := opts.Validate(); err != nil {
		return runtime.ExecResult{}, err
	}
	max := opts.MaxOutput
	if max == 0 {
		max = runtime.DefaultExecOutput
	}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	args := slices.Concat([]string{"exec", "--", ref}, opts.Cmd)
	start := time.Now()
	res, err := e.cli.RunCapped(rctx, max, max, e.argv(args)...)
	e.logCommand(ctx, args[:1], start, res, err)

	if rctx.Err() != nil {
		kerr := e.killExec(ctx, ref, opts.Cmd)
		if ctx.Err() != nil {
			return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, errors.Join(ctx.Err(), kerr))
		}
		if kerr != nil {
			return runtime.ExecResult{}, runtime.Errorf(runtime.ErrTimeout, "exec in %q: command not done within %v, and killing it failed: %v", ref, opts.Timeout, kerr)
		}
		return runtime.ExecResult{}, runtime.Errorf(runtime.ErrTimeout, "exec in %q: command not done within %v: killed", ref, opts.Timeout)
	}
	var ee *cli.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode >= 0:
		if xerr := e.execRefused(ee.ExitCode, string(res.Stderr)); xerr != nil {
			return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, xerr)
		}
	default:
		return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, Unavailable(err))
	}
	return runtime.ExecResult{
		ExitCode:        res.ExitCode,
		Stdout:          res.Stdout,
		Stderr:          res.Stderr,
		StdoutTruncated: res.StdoutTruncated,
		StderrTruncated: res.StderrTruncated,
	}, nil
}

// execRefused returns the error of an exec the client refused, or nil
// for a command that ran and failed (see ExecRefusal).
func (e *Engine) execRefused(code int, stderr string) error {
	r := e.d.ExecRefused
	if !slices.Contains(r.Codes, code) || !slices.ContainsFunc(r.Prefixes, func(p string) bool { return strings.HasPrefix(stderr, p) }) {
		return nil
	}
	msg := cli.TrimStderr([]byte(stderr))
	if slices.ContainsFunc(r.NotRunning, func(s string) bool { return strings.Contains(stderr, s) }) {
		return runtime.Errorf(runtime.ErrConflict, "%s", msg)
	}
	if c := e.d.Classify(stderr); c != nil {
		return runtime.Errorf(c, "%s", msg)
	}
	return errors.New(msg)
}

// proc is one process of a container, as `top` lists it.
type proc struct {
	host, pid, ppid int
	args            string
}

// killExec kills what is left of a timed-out exec of cmd in ref (see
// Exec). It runs on its own bound, even when ctx has ended.
func (e *Engine) killExec(ctx context.Context, ref string, cmd []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	res, err := e.RunClient(ctx, slices.Concat(e.d.MainPIDArgs, []string{"--", ref})...)
	if err != nil {
		if NotFound(err) {
			return nil // the container went, and its processes with it
		}
		return err
	}
	main, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if err != nil {
		return fmt.Errorf("main PID of %q: %w", ref, err)
	}
	if main == 0 {
		return nil // not running: nothing of it runs either
	}
	res, err = e.RunClient(ctx, slices.Concat([]string{"top", "--", ref}, e.d.TopArgs)...)
	if err != nil {
		return err
	}
	procs, err := parseTop(res.Stdout, e.d.TopHostPID)
	if err != nil {
		return err
	}
	var errs []error
	for _, host := range execTree(procs, main, strings.Join(strings.Fields(strings.Join(cmd, " ")), " ")) {
		if err := syscall.Kill(host, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", host, err))
		}
	}
	return errors.Join(errs...)
}

// execTree returns the host PIDs of the exec'd processes whose arguments
// are args (those whose parent is not in the container, other than the
// main process), and of all their descendants.
func execTree(procs []proc, main int, args string) []int {
	inside := map[int]bool{}
	children := map[int][]proc{}
	for _, p := range procs {
		inside[p.pid] = true
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []int
	var walk func(p proc)
	walk = func(p proc) {
		out = append(out, p.host)
		for _, c := range children[p.pid] {
			walk(c)
		}
	}
	for _, p := range procs {
		if !inside[p.ppid] && p.host != main && p.args == args {
			walk(p)
		}
	}
	return out
}

// parseTop reads `top` output: a header line, then per process its host
// PID (when withHost), PID, parent PID and arguments.
func parseTop(out []byte, withHost bool) ([]proc, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 1 {
		return nil, nil
	}
	n := 2
	if withHost {
		n = 3
	}
	var procs []proc
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < n {
			continue
		}
		var nums [3]int
		for i := range n {
			v, err := strconv.Atoi(f[i])
			if err != nil {
				return nil, fmt.Errorf("top: parse output: %w", err)
			}
			nums[i] = v
		}
		p := proc{host: nums[0], pid: nums[0], ppid: nums[1], args: strings.Join(f[n:], " ")}
		if withHost {
			p.pid, p.ppid = nums[1], nums[2]
		}
		procs = append(procs, p)
	}
	return procs, nil
}
