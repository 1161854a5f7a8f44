package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Logs streams a container's output with `docker logs`, stdout and stderr
// merged in the order the client writes them. The container is inspected
// first, so that a missing one is ErrNotFound here and not somewhere in
// the stream. The stream ends with io.EOF when the output does (and, with
// Follow, when the container stops); when ctx ends first, reading returns
// the ctx error.
func (d *Docker) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return nil, err
	}
	res, err := d.run(ctx, "inspect", "--type=container", "--format", "{{json .Id}}", "--", ref)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	ids, err := jsonLines[string]("logs", res.Stdout)
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("logs %q: unexpected inspect output %q", ref, res.Stdout)
	}
	id := ids[0]
	args := []string{"logs"}
	if opts.Tail > 0 {
		args = append(args, "--tail="+strconv.Itoa(opts.Tail))
	}
	if opts.Follow {
		args = append(args, "--follow")
	}
	if opts.Timestamps {
		args = append(args, "--timestamps")
	}
	args = append(args, "--", id)
	s, err := d.cli.Stream(ctx, cli.StreamOptions{MergeStderr: true}, args...)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	return s, nil
}
