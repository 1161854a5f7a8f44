package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Start starts a container; a running one is left running (docker start
// succeeds on it).
func (d *Docker) Start(ctx context.Context, ref string) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	if _, err := d.run(ctx, "start", "--", ref); err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	return nil
}

// Stop stops the containers in one `docker stop -t N`; missing ones are
// not an error.
func (d *Docker) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	err := d.batch(ctx, []string{"stop", "-t", strconv.Itoa(seconds(timeout))}, refs)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// Restart restarts a container with `docker restart -t N`.
func (d *Docker) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	if _, err := d.run(ctx, "restart", "-t", strconv.Itoa(seconds(timeout)), "--", ref); err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	return nil
}

// Remove removes the containers in one `docker rm [-f]`; missing ones are
// not an error. With Force, running ones are first stopped (killed), in
// one `docker stop -t 0` (see below).
func (d *Docker) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	args := []string{"rm"}
	if opts.Force {
		// Stop first, then remove. A bare `rm --force` of a running
		// container SIGKILLs it while the engine still runs its restart
		// policy and health probes: engine 20.10 then panics in a probe's
		// exec start once the container is gone (seen by the fault suite,
		// faults/kill_test.go, and by the benchmarks). A container stopped
		// by `docker stop` has neither. -t 0 kills at once, as rm --force
		// did: Remove takes no longer than before. A stop that fails is
		// left to rm --force.
		if err := d.batch(ctx, []string{"stop", "-t", "0"}, refs); err != nil && (errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil) {
			return fmt.Errorf("remove: stop first: %w", err)
		}
		args = append(args, "--force")
	}
	if err := d.batch(ctx, args, refs); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}

// batch runs a docker command over many containers (stop, rm) and sorts
// out which failed. The client prints each container it handled on stdout,
// as it was given, and one error line per failure on stderr, which names
// the container (as given, or by its ID). A failure that says the
// container does not exist is success. When the engine cannot be reached
// at all, the call fails as a whole rather than as a *BatchError.
func (d *Docker) batch(ctx context.Context, args, refs []string) error {
	refs = dedupe(refs)
	args = append(append(args, "--"), refs...)
	res, err := d.run(ctx, args...)
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
	// Give each error line to the pending container it names.
	own := map[string][]string{}
	var unowned []string
	for line := range strings.SplitSeq(string(res.Stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "WARNING") || strings.Contains(line, "has been deprecated") {
			continue // the client's notes, not a failure
		}
		toks := tokens(line)
		owner := ""
		for _, r := range pending {
			if toks[r] {
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
		lines := own[r]
		if len(lines) == 0 {
			lines = unowned // named by ID, or a general failure
		}
		text := strings.Join(lines, "\n")
		ferr := &cli.ExitError{Command: ee.Command, ExitCode: ee.ExitCode, Stderr: cli.TrimStderr([]byte(text)), Class: classify(text)}
		if len(lines) == 0 {
			ferr = ee
		}
		if notFound(ferr) {
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
