package engineapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Event is one message of the engine's event stream.
type Event struct {
	Type   string // "container", "service", "node", "image", ...
	Action string // "create", "update", "remove", "start", "die", ...
	Actor  struct {
		ID string
		// Attributes are the object's labels and more: "name", "image",
		// "exitCode"; for a service update "replicas.old"/"replicas.new",
		// "image.old"/"image.new"; for a node "state.old"/"state.new".
		Attributes map[string]string
	}
	// Scope is "local" for an engine's own objects, "swarm" for the
	// cluster's (services, nodes), which only a manager reports.
	Scope    string `json:"scope"`
	TimeNano int64  `json:"timeNano"`
}

// Time returns when the event happened.
func (e Event) Time() time.Time { return time.Unix(0, e.TimeNano) }

// EventsOptions select events.
type EventsOptions struct {
	// Filters: "type", "event", "label", "container", "service", "node",
	// "scope", ...
	Filters Filters
	// Since replays past events first (zero: only new ones); Until ends
	// the stream at that time (zero: never).
	Since, Until time.Time
}

// maxEvent bounds one event's JSON (with what the decoder reads ahead).
const maxEvent = 1 << 20

// EventStream is an open event stream.
type EventStream struct {
	ctx    context.Context
	body   io.ReadCloser
	lim    *resetLimit
	dec    *json.Decoder
	until  bool // the stream ends at Until: its end is no failure
	closed atomic.Bool
}

// Events opens the engine's event stream; its events come through Recv.
// The stream lives until ctx ends, Until passes or Close.
func (c *Client) Events(ctx context.Context, opts EventsOptions) (*EventStream, error) {
	q := url.Values{}
	opts.Filters.query(q)
	if !opts.Since.IsZero() {
		q.Set("since", unixTime(opts.Since))
	}
	if !opts.Until.IsZero() {
		q.Set("until", unixTime(opts.Until))
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/events", query: q})
	if err != nil {
		return nil, err
	}
	lim := &resetLimit{r: resp.Body}
	return &EventStream{ctx: ctx, body: resp.Body, lim: lim, dec: json.NewDecoder(lim), until: !opts.Until.IsZero()}, nil
}

// Recv blocks for the next event. It returns io.EOF when the stream ended
// as asked: ctx done, Close called, or Until reached. Any other end (the
// engine stopped or gone, a broken or oversized message) is an
// ErrUnavailable error.
func (s *EventStream) Recv() (Event, error) {
	s.lim.n = maxEvent
	var e Event
	err := s.dec.Decode(&e)
	switch {
	case err == nil:
		return e, nil
	case s.ctx.Err() != nil, s.closed.Load(), s.until && errors.Is(err, io.EOF):
		return Event{}, io.EOF
	case errors.Is(err, io.EOF):
		return Event{}, errdefs.Errorf(errdefs.ErrUnavailable, "events: the engine ended the stream")
	default:
		return Event{}, errdefs.Errorf(errdefs.ErrUnavailable, "events: %w", err)
	}
}

// Close ends the stream.
func (s *EventStream) Close() error {
	s.closed.Store(true)
	return s.body.Close()
}

// resetLimit reads at most n bytes of r between resets of n.
type resetLimit struct {
	r io.Reader
	n int64
}

var errEventTooLong = errors.New("event longer than 1 MiB")

func (l *resetLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errEventTooLong
	}
	n, err := l.r.Read(p[:min(int64(len(p)), l.n)])
	l.n -= int64(n)
	return n, err
}
