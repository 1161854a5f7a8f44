package clirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Events streams container events, and image events with opts.Images.
// The stream starts at the moment of the call (--since now), not when the
// client has connected, so that an event right after Events returns is
// never lost. With image events, the client's label filter (which would
// drop them: images do not carry the selector's labels) is not used: the
// stream matches container events against the selector itself.
func (e *Engine) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	filters, err := cliargs.LabelFilters(opts.Labels)
	if err != nil {
		return nil, err
	}
	images := opts.Images && e.d.ImageEvents != nil
	var args []string
	if images {
		args = append(e.d.EventArgs(time.Now(), nil, nil), e.d.ImageEvents...)
	} else {
		args = e.d.EventArgs(time.Now(), opts.Labels, filters)
	}
	s, err := e.Stream(ctx, cli.StreamOptions{}, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	es := &eventStream{ctx: ctx, s: s, d: e.d}
	if e.d.MatchLabels || images {
		es.labels = maps.Clone(opts.Labels)
	}
	return es, nil
}

type eventStream struct {
	ctx    context.Context
	s      *cli.Stream
	d      Dialect
	labels map[string]string // matched here, with Dialect.MatchLabels
	closed atomic.Bool
}

// Recv returns the next event the runtime knows (exec, attach and the like
// are skipped) that matches the selector.
func (e *eventStream) Recv() (runtime.Event, error) {
	for {
		line, err := e.s.ReadLine()
		if errors.Is(err, cli.ErrLineTooLong) {
			continue
		}
		if err != nil {
			if e.closed.Load() || e.ctx.Err() != nil {
				return runtime.Event{}, io.EOF
			}
			// The stream ends only when it is closed: anything else means
			// the engine (or the client) went away.
			if errors.Is(err, io.EOF) {
				err = errors.New(e.d.Name + " events ended")
			}
			return runtime.Event{}, fmt.Errorf("events: %w", Unavailable(err))
		}
		// A line that is not an event the client would print is skipped.
		if ev, ok, err := e.d.ParseEvent(line); err == nil && ok && (ev.Image || MatchLabels(ev.Labels, e.labels)) {
			return ev, nil
		}
	}
}

func (e *eventStream) Close() error {
	e.closed.Store(true)
	return e.s.Close()
}

// MatchLabels reports whether labels carry every key of sel, with its
// value unless that is "".
func MatchLabels(labels, sel map[string]string) bool {
	for k, v := range sel {
		got, ok := labels[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
