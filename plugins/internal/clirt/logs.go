package clirt

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Logs streams a container's output, stdout and stderr merged in the
// order the client writes them. The container is inspected first, so that
// a missing one is ErrNotFound here and not somewhere in the stream. The
// stream ends with io.EOF when the output does (and, with Follow, when
// the container stops); when ctx ends first, reading returns the ctx
// error.
func (e *Engine) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return nil, err
	}
	id, err := e.ContainerID(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	var s io.ReadCloser
	if e.d.FollowTail != nil && opts.Follow && opts.Tail != nil && *opts.Tail > 0 {
		s, err = e.d.FollowTail(ctx, id, opts)
	} else {
		s, err = e.LogStream(ctx, id, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	return s, nil
}

// ContainerID returns the full ID of the container ref names.
func (e *Engine) ContainerID(ctx context.Context, ref string) (string, error) {
	res, err := e.RunClient(ctx, slices.Concat(e.d.IDArgs, []string{"--", ref})...)
	if err != nil {
		return "", err
	}
	id := strings.Trim(strings.TrimSpace(string(res.Stdout)), `"`)
	if !ContainerIDRE.MatchString(id) {
		return "", fmt.Errorf("unexpected inspect output %q", res.Stdout)
	}
	return id, nil
}

// LogStream starts one `logs` of the container id, with the extra options
// before the "--". Since goes in RFC 3339 with nanoseconds, in UTC, which
// docker and podman both read to the nanosecond.
func (e *Engine) LogStream(ctx context.Context, id string, opts runtime.LogOptions, extra ...string) (*cli.Stream, error) {
	args := []string{"logs"}
	if opts.Tail != nil {
		args = append(args, "--tail="+strconv.Itoa(max(*opts.Tail, 0)))
	}
	if !opts.Since.IsZero() {
		args = append(args, "--since="+opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if opts.Follow {
		args = append(args, "--follow")
	}
	if opts.Timestamps {
		args = append(args, "--timestamps")
	}
	args = append(args, extra...)
	args = append(args, "--", id)
	return e.Stream(ctx, cli.StreamOptions{MergeStderr: true}, args...)
}
