package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Defaults for Config's zero values.
const (
	DefaultMaxStdout = 16 << 20
	DefaultMaxStderr = 64 << 10
	DefaultMaxLine   = 1 << 20
	DefaultKillGrace = 2 * time.Second
	maxErrorText     = 512
)

// Config configures a Runner.
type Config struct {
	// Binary is the client to run: a bare name is looked up on PATH at
	// every call (so a PATH changed after New is honoured); a name with a
	// slash is used as it is. Required.
	Binary string
	// Env is added to the child's environment, which is otherwise this
	// process's own (read at each call); later entries win. It is never
	// logged and never part of an error.
	Env []string
	// MaxStdout and MaxStderr cap what Run keeps of each stream (zero:
	// DefaultMaxStdout, DefaultMaxStderr). Output past a cap is read and
	// dropped; stdout past its cap fails the call.
	MaxStdout int
	MaxStderr int
	// Classify maps the stderr of a failed command to an error class
	// (runtime.ErrNotFound, ...) or nil when it knows none. It may be nil.
	Classify func(stderr string) error
	// KillGrace bounds how long a killed command's output pipes are waited
	// for, should a process outside the killed group hold them open (zero:
	// DefaultKillGrace).
	KillGrace time.Duration
}

// Runner runs one command-line client. It is safe for concurrent use.
type Runner struct {
	cfg Config
}

// New returns a Runner for cfg.
func New(cfg Config) *Runner {
	if cfg.MaxStdout <= 0 {
		cfg.MaxStdout = DefaultMaxStdout
	}
	if cfg.MaxStderr <= 0 {
		cfg.MaxStderr = DefaultMaxStderr
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	cfg.Env = append([]string(nil), cfg.Env...)
	return &Runner{cfg: cfg}
}

// Result is what a finished command left.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int // -1 when the command did not exit by itself
	// StdoutTruncated and StderrTruncated report output dropped past a cap.
	StdoutTruncated bool
	StderrTruncated bool
}

// ExitError is a command that ran and exited with a non-zero status. It
// wraps the error class Classify found, so errors.Is(err,
// runtime.ErrNotFound) works on it.
type ExitError struct {
	// Command is the binary's base name and the first argument, e.g.
	// "docker create": never the environment, never the other arguments.
	Command  string
	ExitCode int
	// Stderr is the command's error output, trimmed to a few lines.
	Stderr string
	// Class is what Classify made of the full stderr, or nil.
	Class error
}

func (e *ExitError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Command, e.ExitCode, msg)
}

// Unwrap returns the error class, if any.
func (e *ExitError) Unwrap() error { return e.Class }

// ErrOutputTooLarge is wrapped by the error of a command whose stdout
// passed MaxStdout.
var ErrOutputTooLarge = errors.New("output too large")

// Name returns how errors name a command with these arguments: the
// binary's base name and the first argument.
func (r *Runner) Name(args []string) string {
	name := filepath.Base(r.cfg.Binary)
	if len(args) > 0 {
		name += " " + args[0]
	}
	return name
}

// Classify applies the Config's classifier to stderr.
func (r *Runner) Classify(stderr string) error {
	if r.cfg.Classify == nil {
		return nil
	}
	return r.cfg.Classify(stderr)
}

// Run runs the client with args and waits for it. A non-zero exit is an
// *ExitError; the Result is returned in every case where the command ran,
// so that a caller can still read what a partly failed command printed.
func (r *Runner) Run(ctx context.Context, args ...string) (*Result, error) {
	return r.RunFiles(ctx, nil, args...)
}

// RunCapped is Run keeping at most maxStdout and maxStderr bytes of each
// stream: output past a cap is dropped, which the Result reports, and is
// no error.
func (r *Runner) RunCapped(ctx context.Context, maxStdout, maxStderr int, args ...string) (*Result, error) {
	return r.run(ctx, maxStdout, maxStderr, nil, args)
}

// RunFiles is Run with files open in the child as descriptors 3, 4, ...
// (a client reads the first as /dev/fd/3). The caller keeps and closes
// them.
func (r *Runner) RunFiles(ctx context.Context, files []*os.File, args ...string) (*Result, error) {
	res, err := r.run(ctx, r.cfg.MaxStdout, r.cfg.MaxStderr, files, args)
	if err == nil && res.StdoutTruncated {
		return res, fmt.Errorf("%s: %w: more than %d bytes on stdout", r.Name(args), ErrOutputTooLarge, r.cfg.MaxStdout)
	}
	return res, err
}

func (r *Runner) run(ctx context.Context, maxStdout, maxStderr int, files []*os.File, args []string) (*Result, error) {
	cmd, err := r.command(ctx, args)
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = files
	stdout := &capBuffer{max: maxStdout}
	stderr := &capBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	res := &Result{
		Stdout:          stdout.buf.Bytes(),
		Stderr:          stderr.buf.Bytes(),
		ExitCode:        exitCode(cmd),
		StdoutTruncated: stdout.dropped,
		StderrTruncated: stderr.dropped,
	}
	if err := r.endError(ctx, args, cmd, runErr, stderr.buf.Bytes()); err != nil {
		return res, err
	}
	return res, nil
}

// command prepares the child: resolved binary, environment, own process
// group, killed with its group when ctx ends.
func (r *Runner) command(ctx context.Context, args []string) (*exec.Cmd, error) {
	if err := ctx.Err(); err != nil {
		return nil, r.ctxError(args, err)
	}
	if r.cfg.Binary == "" {
		return nil, runtime.Errorf(runtime.ErrUnavailable, "%s: no binary configured", r.Name(args))
	}
	path, err := exec.LookPath(r.cfg.Binary)
	if err != nil {
		return nil, runtime.Errorf(runtime.ErrUnavailable, "%s: %w", r.Name(args), err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Args[0] = r.cfg.Binary
	cmd.Env = append(os.Environ(), r.cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// The child dies with this process, so that a killed plugin leaves
		// no `docker events` behind. (Pdeathsig follows the thread that
		// forked; the Go runtime does not end threads of unlocked
		// goroutines, so it stays armed.)
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		// The whole group: the client and anything it started.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = r.cfg.KillGrace
	return cmd, nil
}

// endError turns what Wait returned into the package's errors.
func (r *Runner) endError(ctx context.Context, args []string, cmd *exec.Cmd, waitErr error, stderr []byte) error {
	if waitErr == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return r.ctxError(args, ctxErr)
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) && ee.Exited() {
		return &ExitError{
			Command:  r.Name(args),
			ExitCode: ee.ExitCode(),
			Stderr:   TrimStderr(stderr),
			Class:    r.Classify(string(stderr)),
		}
	}
	if errors.As(waitErr, &ee) {
		// Killed by a signal that was not ours.
		return &ExitError{
			Command:  r.Name(args),
			ExitCode: -1,
			Stderr:   strings.TrimSpace(ee.String() + ": " + TrimStderr(stderr)),
			Class:    r.Classify(string(stderr)),
		}
	}
	if errors.Is(waitErr, exec.ErrWaitDelay) {
		// Exited, but something outside its group still held its output.
		return nil
	}
	return runtime.Errorf(runtime.ErrUnavailable, "%s: %w", r.Name(args), waitErr)
}

func (r *Runner) ctxError(args []string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return runtime.Errorf(runtime.ErrTimeout, "%s: %w", r.Name(args), err)
	}
	return fmt.Errorf("%s: %w", r.Name(args), err)
}

func exitCode(cmd *exec.Cmd) int {
	if cmd.ProcessState == nil {
		return -1
	}
	return cmd.ProcessState.ExitCode()
}

// TrimStderr shortens a command's error output for an error message: blank
// lines and usage help dropped, lines joined with "; ", at most 512 bytes.
func TrimStderr(b []byte) string {
	var parts []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "Usage:") {
			break
		}
		parts = append(parts, line)
	}
	s := strings.Join(parts, "; ")
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// capBuffer keeps the first max bytes written to it and drops the rest,
// always reporting success so that the child is never blocked or failed
// by a full buffer.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if room >= len(p) {
		return c.buf.Write(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped = true
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
