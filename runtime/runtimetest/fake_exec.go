package runtimetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// StubCmd is the stand-in's exec-test command: "/gateway-stub -exec"
// followed by a verb and its arguments (see gateway-stub's doc).
func StubCmd(verb string, args ...string) []string {
	return append([]string{"/gateway-stub", "-exec", verb}, args...)
}

// Exec runs a command in a running container. The fake knows only the
// stand-in's exec-test verbs (StubCmd), which it plays: echo, stderr,
// exit, sleep and tree (which take time, bounded by opts.Timeout), spam,
// id (the container's user) and procs (the sleeps running). Any other
// command exits 127, as an engine's "executable file not found" does.
func (f *Fake) Exec(ctx context.Context, ref string, opts runtime.ExecOptions) (runtime.ExecResult, error) {
	verr := runtime.ValidateRef(ref)
	if verr == nil {
		verr = opts.Validate()
	}
	if err := f.begin(ctx, "Exec", verr, ref); err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, err)
	}
	f.mu.Lock()
	c, err := f.lookup(ref)
	if err == nil {
		err = f.nodeUpLocked(c)
	}
	if err == nil && !c.running() {
		err = runtime.Errorf(runtime.ErrConflict, "container %s is not running", c.spec.Name)
	}
	if err != nil {
		f.mu.Unlock()
		return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, err)
	}
	user := c.given.User
	f.mu.Unlock()

	max := opts.MaxOutput
	if max == 0 {
		max = runtime.DefaultExecOutput
	}
	var out, errOut strings.Builder
	code := 0
	cmd := opts.Cmd
	if len(cmd) < 3 || cmd[0] != "/gateway-stub" || cmd[1] != "-exec" {
		fmt.Fprintf(&errOut, "exec: %q: executable file not found\n", cmd[0])
		code = 127
	} else {
		verb, rest := cmd[2], cmd[3:]
		num := 0.0
		if len(rest) > 0 {
			num, _ = strconv.ParseFloat(rest[0], 64)
		}
		switch verb {
		case "echo":
			fmt.Fprintln(&out, strings.Join(rest, " "))
		case "stderr":
			fmt.Fprintln(&errOut, strings.Join(rest, " "))
		case "exit":
			code = int(num)
		case "sleep", "tree":
			if err := f.execSleep(ctx, c, time.Duration(num*float64(time.Second)), opts.Timeout); err != nil {
				return runtime.ExecResult{}, fmt.Errorf("exec in %q: %w", ref, err)
			}
		case "spam":
			out.WriteString(strings.Repeat("x", int(num)))
			errOut.WriteString(strings.Repeat("y", int(num)))
		case "id":
			if user == "" {
				user = "0:0"
			}
			fmt.Fprintln(&out, user)
		case "procs":
			f.mu.Lock()
			n := c.sleeping
			f.mu.Unlock()
			fmt.Fprintln(&out, n)
		default:
			fmt.Fprintf(&errOut, "gateway-stub -exec: unknown verb %q\n", verb)
			code = 2
		}
	}
	res := runtime.ExecResult{ExitCode: code}
	res.Stdout, res.StdoutTruncated = capped(out.String(), max)
	res.Stderr, res.StderrTruncated = capped(errOut.String(), max)
	return res, nil
}

// execSleep is a sleeping exec: it counts in c.sleeping while it runs,
// and is killed (ErrTimeout) when timeout passes first.
func (f *Fake) execSleep(ctx context.Context, c *fakeContainer, d, timeout time.Duration) error {
	f.mu.Lock()
	c.sleeping++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		c.sleeping--
		f.mu.Unlock()
	}()
	t := time.NewTimer(min(d, timeout))
	defer t.Stop()
	select {
	case <-t.C:
		if d > timeout {
			return runtime.Errorf(runtime.ErrTimeout, "command killed after %v", timeout)
		}
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

func capped(s string, max int) ([]byte, bool) {
	if len(s) > max {
		return []byte(s[:max]), true
	}
	return []byte(s), false
}
