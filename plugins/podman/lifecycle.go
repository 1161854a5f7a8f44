package podman

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Start starts a container; a running one is left running (podman start
// succeeds on it).
func (p *Podman) Start(ctx context.Context, ref string) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	if _, err := p.run(ctx, "start", "--", ref); err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	return nil
}

// Stop stops the containers in one `podman stop --ignore -t N`; missing
// ones are not an error.
func (p *Podman) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	err := p.batch(ctx, []string{"stop", "--ignore", "--time=" + strconv.Itoa(cliargs.Seconds(timeout))}, refs)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// Restart restarts a container with `podman restart -t N`.
func (p *Podman) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := runtime.ValidateRef(ref); err != nil {
		return err
	}
	if _, err := p.run(ctx, "restart", "--time="+strconv.Itoa(cliargs.Seconds(timeout)), "--", ref); err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	return nil
}

// Remove removes the containers in one `podman rm --ignore`; missing
// ones are not an error. With Force, running ones are killed at once
// (--time=0), as docker's rm -f does, rather than stopped with their stop
// timeout, which is podman's default.
func (p *Podman) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	if err := runtime.ValidateRefs(refs); err != nil || len(refs) == 0 {
		return err
	}
	args := []string{"rm", "--ignore"}
	if opts.Force {
		args = append(args, "--force", "--time=0")
	}
	if err := p.batch(ctx, args, refs); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}

// batch runs a podman command over many containers (stop, rm) and sorts
// out which failed. Podman's batch commands differ from docker's:
// without --ignore one missing container fails the whole command before
// it touches any (so --ignore is always given, and a missing container is
// then neither printed nor an error); the containers handled are printed
// on stdout as given; each failure is an "Error: ..." line that names the
// container by its full ID, not as given. So when the command fails, the
// containers not printed are looked up once more (one inspect): those
// gone are done, the others get the error lines naming their ID or name,
// or, when none does, every line no container claims. When podman
// cannot run at all, the call fails as a whole rather than as a
// *BatchError.
func (p *Podman) batch(ctx context.Context, args, refs []string) error {
	refs = dedupe(refs)
	res, err := p.run(ctx, append(append(args, "--"), refs...)...)
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
	left, lerr := p.identify(ctx, pending)
	if lerr != nil {
		return err // the batch's own failure says more
	}
	return attribute(ee, pending, left, string(res.Stderr))
}

// idName is a container's full ID and name.
type idName struct{ ID, Name string }

// identify returns the ID and name of each ref that names a container
// (by name, ID or ID prefix); refs that name none are left out.
func (p *Podman) identify(ctx context.Context, refs []string) (map[string]idName, error) {
	out := map[string]idName{}
	if len(refs) == 0 {
		return out, nil
	}
	args := append([]string{"container", "inspect", "--format", "{{.Id}} {{.Name}}", "--"}, refs...)
	res, err := p.run(ctx, args...)
	if err != nil && !notFound(err) {
		return nil, err
	}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		id, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		for _, r := range refs {
			if r == name || strings.HasPrefix(id, r) {
				out[r] = idName{ID: id, Name: name}
			}
		}
	}
	return out, nil
}

// attribute turns a failed batch into a *BatchError: each ref still in
// left failed, with the stderr lines that name it (by the ref, its ID or
// its name), else the lines that name no pending container, else ee.
// Refs not in left are gone, which is success; nil when none failed.
func attribute(ee *cli.ExitError, pending []string, left map[string]idName, stderr string) error {
	own := map[string][]string{}
	var unowned []string
	for line := range strings.SplitSeq(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || logrusLine.MatchString(line) {
			continue // podman's notes, not a failure
		}
		toks := tokens(line)
		owner := ""
		for _, r := range pending {
			if c, ok := left[r]; ok && (toks[r] || toks[c.ID] || toks[c.Name]) {
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
			lines = unowned
		}
		if len(lines) == 0 {
			failed[r] = ee
			continue
		}
		text := strings.Join(lines, "\n")
		failed[r] = &cli.ExitError{Command: ee.Command, ExitCode: ee.ExitCode, Stderr: cli.TrimStderr([]byte(text)), Class: classify(text)}
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
