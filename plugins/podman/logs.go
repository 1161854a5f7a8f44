package podman

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// tailMargin is how many lines more than asked the first half of a
// followed tail reads (see Logs).
const tailMargin = 1000

// Logs streams a container's output with `podman logs`, stdout and stderr
// merged in the order podman writes them. The container is inspected
// first, so that a missing one is ErrNotFound here and not somewhere in
// the stream. The stream ends with io.EOF when the output does (and, with
// Follow, when the container stops); when ctx ends first, reading returns
// the ctx error.
//
// A followed tail is cut at the moment of the call, not when podman gets
// round to reading the log (a second or two on a loaded host, in which a
// chatty container's new lines would push the ones it wrote after the
// call out of a --tail): the last Tail lines up to now (`podman logs
// --until=now`, read from Tail+1000 lines back, as podman applies --tail
// before --until), then everything after now (`podman logs --follow
// --since=now`).
func (p *Podman) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return nil, err
	}
	res, err := p.run(ctx, "container", "inspect", "--format", "{{.Id}}", "--", ref)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	id := strings.TrimSpace(string(res.Stdout))
	if !containerIDRE.MatchString(id) {
		return nil, fmt.Errorf("logs %q: unexpected inspect output %q", ref, res.Stdout)
	}
	if !opts.Follow || opts.Tail <= 0 {
		return p.logs(ctx, id, opts, "")
	}
	now := time.Now().UTC()
	head, err := p.logs(ctx, id, runtime.LogOptions{Tail: opts.Tail + tailMargin, Timestamps: opts.Timestamps}, "--until="+now.Format(time.RFC3339Nano))
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	b, err := io.ReadAll(head)
	head.Close()
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	rest, err := p.logs(ctx, id, runtime.LogOptions{Follow: true, Timestamps: opts.Timestamps}, "--since="+now.Add(time.Nanosecond).Format(time.RFC3339Nano))
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	return &tailThenFollow{r: io.MultiReader(bytes.NewReader(lastLines(b, opts.Tail)), rest), rest: rest}, nil
}

// logs starts one `podman logs` of id.
func (p *Podman) logs(ctx context.Context, id string, opts runtime.LogOptions, extra string) (io.ReadCloser, error) {
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
	if extra != "" {
		args = append(args, extra)
	}
	args = append(args, "--", id)
	s, err := p.stream(ctx, cli.StreamOptions{MergeStderr: true}, args...)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", id, err)
	}
	return s, nil
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// tailThenFollow is the stream of a followed tail: the tail, then the
// follow, closed together.
type tailThenFollow struct {
	r    io.Reader
	rest io.Closer
}

func (t *tailThenFollow) Read(p []byte) (int, error) { return t.r.Read(p) }
func (t *tailThenFollow) Close() error               { return t.rest.Close() }
