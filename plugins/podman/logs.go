package podman

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// tailMargin is how many lines more than asked the first half of a
// followed tail reads (see Logs).
const tailMargin = 1000

// followTail is a followed tail of the container id's output, cut at the
// moment of the call, not when podman gets round to reading the log (a
// second or two on a loaded host, in which a chatty container's new lines
// would push the ones it wrote after the call out of a --tail): the last
// Tail lines up to now (`podman logs --until=now`, read from Tail+1000
// lines back, as podman applies --tail before --until), then everything
// after now (`podman logs --follow --since=now`). A Since of the call's
// own bounds the first half, and the second when it is later than now.
// opts.Tail must be set and positive.
func (p *Podman) followTail(ctx context.Context, id string, opts runtime.LogOptions) (io.ReadCloser, error) {
	now := time.Now().UTC()
	head, err := p.LogStream(ctx, id, runtime.LogOptions{Tail: new(*opts.Tail + tailMargin), Since: opts.Since, Timestamps: opts.Timestamps}, "--until="+now.Format(time.RFC3339Nano))
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(head)
	head.Close()
	if err != nil {
		return nil, err
	}
	since := now.Add(time.Nanosecond)
	if opts.Since.After(since) {
		since = opts.Since
	}
	rest, err := p.LogStream(ctx, id, runtime.LogOptions{Follow: true, Since: since, Timestamps: opts.Timestamps})
	if err != nil {
		return nil, err
	}
	return &tailThenFollow{r: io.MultiReader(bytes.NewReader(lastLines(b, *opts.Tail)), rest), rest: rest}, nil
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
