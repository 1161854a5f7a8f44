package clirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
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
// with SIGKILL from the host, with everything they started (only those in
// the container's cgroup). Two identical commands running at once in one
// container are killed together. Under gVisor (the main process is its
// sandbox), the command's processes are gVisor's, not the host's: runsc
// itself finds and kills them (killGVisorExec).
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
	if sb, ok := gvisorSandbox(main); ok {
		return e.killGVisorExec(ctx, sb, ref, cmd)
	}
	res, err = e.RunClient(ctx, slices.Concat([]string{"top", "--", ref}, e.d.TopArgs)...)
	if err != nil {
		return err
	}
	procs, err := parseTop(res.Stdout, e.d.TopHostPID)
	if err != nil {
		return err
	}
	// Only processes of the container's own cgroup: a host PID that top
	// lists and that is not in it is not the container's (an engine whose
	// OCI runtime keeps its own PIDs lists those as if they were the
	// host's).
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", main))
	if err != nil {
		return fmt.Errorf("cgroup of the main process of %q: %w", ref, err)
	}
	var errs []error
	for _, host := range execTree(procs, main, strings.Join(strings.Fields(strings.Join(cmd, " ")), " ")) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", host)); err != nil || !bytes.Equal(b, cg) {
			continue // gone, or not the container's
		}
		if err := syscall.Kill(host, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", host, err))
		}
	}
	return errors.Join(errs...)
}

// gVisorSandbox is a container's gVisor sandbox, as its host process (the
// engine's main PID of a container under runsc) shows it.
type gVisorSandbox struct {
	runsc string // the runsc binary
	root  string // its --root, the state dir of the engine's containers
}

// gvisorSandbox reports whether the host process pid is a gVisor sandbox
// (runsc-sandbox), and how to reach it with runsc.
func gvisorSandbox(pid int) (gVisorSandbox, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return gVisorSandbox{}, false
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if argv[0] != "runsc-sandbox" {
		return gVisorSandbox{}, false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return gVisorSandbox{}, false
	}
	sb := gVisorSandbox{runsc: exe}
	for _, a := range argv[1:] {
		if v, ok := strings.CutPrefix(a, "--root="); ok {
			sb.root = v
		}
	}
	return sb, sb.root != ""
}

// killGVisorExec kills what is left of a timed-out exec of cmd in ref, a
// container under gVisor: its processes are not the host's (the engine's
// top lists gVisor's own PIDs), so they are found and killed with runsc
// itself (`runsc ps`, `runsc kill --pid`): those whose parent is outside
// the container (PPID 0) other than its first process, whose name is the
// command's, with everything they started.
func (e *Engine) killGVisorExec(ctx context.Context, sb gVisorSandbox, ref string, cmd []string) error {
	id, err := e.ContainerID(ctx, ref)
	if err != nil {
		if NotFound(err) {
			return nil
		}
		return err
	}
	runsc := func(args ...string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, sb.runsc, append([]string{"--root=" + sb.root}, args...)...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("runsc %s: %w: %s", args[0], err, cli.TrimStderr(out))
		}
		return out, nil
	}
	out, err := runsc("ps", id)
	if err != nil {
		return err
	}
	// UID PID PPID C TTY STIME TIME CMD; CMD is the process's name (its
	// first 15 bytes).
	var procs []proc
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		pid, err1 := strconv.Atoi(f[1])
		ppid, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("runsc ps: parse output: %q", line)
		}
		procs = append(procs, proc{host: pid, pid: pid, ppid: ppid, args: f[7]})
	}
	name := path.Base(cmd[0])
	if len(name) > 15 {
		name = name[:15]
	}
	var errs []error
	for _, pid := range execTree(procs, 1, name) {
		if _, err := runsc("kill", "--pid="+strconv.Itoa(pid), id, "KILL"); err != nil {
			errs = append(errs, err)
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
