package clirt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Start starts a container; a running one is left running (both clients'
// start succeeds on it).
func (e *Engine) Start(ctx context.Context, ref string) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	if _, err := e.RunClient(ctx, "start", "--", ref); err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	return nil
}

// Stop stops the containers in one command; missing ones are not an
// error.
func (e *Engine) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	err := e.batch(ctx, e.stopArgs(timeout), refs)
	if failed, ok := errors.AsType[*runtime.BatchError](err); ok && e.d.ThawBeforeStop {
		// Paused ones among the failed: thawed, then stopped again.
		again := slices.Sorted(maps.Keys(failed.Failed))
		if e.thaw(ctx, again) {
			err = e.batch(ctx, e.stopArgs(timeout), again)
		}
	}
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// thaw unpauses those of refs that are paused, for a client that neither
// stops nor restarts a paused container (Dialect.ThawBeforeStop), and
// reports whether any was.
func (e *Engine) thaw(ctx context.Context, refs []string) bool {
	res, _ := e.RunClient(ctx, append([]string{"unpause", "--"}, refs...)...)
	return len(strings.TrimSpace(string(res.Stdout))) > 0
}

// Pause freezes a running container; a paused one is left paused.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.freeze(ctx, "pause", ref, runtime.StatePaused)
}

// Resume thaws a paused container; a running one is left running.
func (e *Engine) Resume(ctx context.Context, ref string) error {
	return e.freeze(ctx, "unpause", ref, runtime.StateRunning)
}

// freeze runs pause or unpause. Neither client has a word of its own for
// "already done" or "not running" that holds across versions, so a
// failure asks the container's state: already in want is success,
// neither running nor paused is runtime.ErrConflict, anything else is
// the command's own failure.
func (e *Engine) freeze(ctx context.Context, verb, ref string, want runtime.State) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	_, err := e.RunClient(ctx, verb, "--", ref)
	if err == nil || NotFound(err) || errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil {
		if err != nil {
			return fmt.Errorf("%s %q: %w", verb, ref, err)
		}
		return nil
	}
	c, ierr := e.Inspect(ctx, ref)
	switch {
	case ierr != nil && NotFound(ierr):
		return fmt.Errorf("%s %q: %w", verb, ref, ierr)
	case ierr != nil:
		return fmt.Errorf("%s %q: %w", verb, ref, err)
	case c.State == want:
		return nil
	case c.State != runtime.StateRunning && c.State != runtime.StatePaused:
		return fmt.Errorf("%s %q: %w", verb, ref, runtime.Errorf(runtime.ErrConflict, "container %s is %s, not running", c.Name, c.State))
	}
	return fmt.Errorf("%s %q: %w", verb, ref, err)
}

// Restart restarts a container.
func (e *Engine) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	args := slices.Concat([]string{"restart"}, e.d.Timeout(cliargs.Seconds(timeout)), []string{"--", ref})
	_, err := e.RunClient(ctx, args...)
	if err != nil && !NotFound(err) && !errors.Is(err, runtime.ErrUnavailable) && e.d.ThawBeforeStop && e.thaw(ctx, []string{ref}) {
		_, err = e.RunClient(ctx, args...)
	}
	if err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	return nil
}

// Remove removes the containers in one command; missing ones are not an
// error. With Force, running ones go too: stopped first in one command
// when the dialect says so; a stop that fails for another reason than the
// engine being unreachable is left to the forced remove.
func (e *Engine) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	if opts.Force && e.d.StopBeforeForceRemove {
		if err := e.batch(ctx, e.stopArgs(0), refs); err != nil && (errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil) {
			return fmt.Errorf("remove: stop first: %w", err)
		}
	}
	args := slices.Concat([]string{"rm"}, e.d.Ignore)
	if opts.Force {
		args = append(args, e.d.ForceRemove...)
	}
	if err := e.batch(ctx, args, refs); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}

// stopArgs is the stop command, up to the "--".
func (e *Engine) stopArgs(timeout time.Duration) []string {
	return slices.Concat([]string{"stop"}, e.d.Ignore, e.d.Timeout(cliargs.Seconds(timeout)))
}

// batch runs a command over many containers (stop, rm) and sorts out
// which failed. Both clients print each container they handled on
// stdout, as it was given, and one error line per failure on stderr. The
// containers not printed are identified (Dialect.Identify): those gone
// are done, the others get the error lines that name them, or, when none
// does, every line no container claims. A failure that says the container
// does not exist is success. When the engine cannot be reached at all,
// the call fails as a whole rather than as a *runtime.BatchError.
func (e *Engine) batch(ctx context.Context, args, refs []string) error {
	refs = dedupe(refs)
	res, err := e.RunClient(ctx, append(append(args, "--"), refs...)...)
	if err == nil {
		return nil
	}
	var ee *cli.ExitError
	if !errors.As(err, &ee) || errors.Is(err, runtime.ErrUnavailable) {
		return err
	}
	handled := map[string]bool{}
	for _, l := range strings.Fields(string(res.Stdout)) {
		handled[l] = true
	}
	var pending []string
	for _, r := range refs {
		if !handled[r] {
			pending = append(pending, r)
		}
	}
	left := make(map[string]Identity, len(pending))
	if e.d.Identify != nil {
		if left, err = e.d.Identify(ctx, pending); err != nil {
			return ee // the batch's own failure says more
		}
	} else {
		for _, r := range pending {
			left[r] = Identity{}
		}
	}
	return e.attribute(ee, pending, left, string(res.Stderr))
}

// attribute turns a failed batch into a *runtime.BatchError: each pending
// ref still in left failed, with the stderr lines that name it (as given,
// by its ID or by its name), else the lines that name no pending
// container, else ee. Refs not in left are gone, which is success; nil
// when none failed.
func (e *Engine) attribute(ee *cli.ExitError, pending []string, left map[string]Identity, stderr string) error {
	own := map[string][]string{}
	var unowned []string
	for line := range strings.SplitSeq(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || (e.d.Note != nil && e.d.Note(line)) {
			continue
		}
		toks := tokens(line)
		owner := ""
		for _, r := range pending {
			if c, ok := left[r]; ok && (toks[r] || c.ID != "" && toks[c.ID] || c.Name != "" && toks[c.Name]) {
				owner = r
				break
			}
		}
		if owner == "" {
			unowned = append(unowned, line)
		} else {
			own[owner] = append(own[owner], line)
		}
	}
	failed := map[string]error{}
	for _, r := range pending {
		if _, ok := left[r]; !ok {
			continue
		}
		lines := own[r]
		if len(lines) == 0 {
			lines = unowned // named by ID, or a general failure
		}
		var ferr error = ee
		if len(lines) > 0 {
			text := strings.Join(lines, "\n")
			ferr = &cli.ExitError{Command: ee.Command, ExitCode: ee.ExitCode, Stderr: cli.TrimStderr([]byte(text)), Class: e.d.Classify(text)}
		}
		if NotFound(ferr) {
			continue
		}
		failed[r] = ferr
	}
	if len(failed) == 0 {
		return nil
	}
	return &runtime.BatchError{Failed: failed}
}

// tokens splits an error line into the words a container reference can
// be, so that "x1" is not found in "x10".
func tokens(line string) map[string]bool {
	t := map[string]bool{}
	for f := range strings.FieldsFuncSeq(line, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
	}) {
		t[f] = true
		t[strings.TrimRight(f, ".")] = true
	}
	return t
}

func dedupe(refs []string) []string {
	seen := make(map[string]bool, len(refs))
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
