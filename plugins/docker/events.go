package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Events streams container events with `docker events`. The stream starts
// at the moment of the call (--since now), not when the client has
// connected, so that an event right after Events returns is never lost.
func (d *Docker) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	filters, err := cliargs.LabelFilters(opts.Labels)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	args := append([]string{"events", "--format", "{{json .}}", "--filter=type=container",
		fmt.Sprintf("--since=%d.%09d", now.Unix(), now.Nanosecond())}, filters...)
	s, err := d.cli.Stream(ctx, cli.StreamOptions{}, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &eventStream{ctx: ctx, s: s}, nil
}

type eventStream struct {
	ctx    context.Context
	s      *cli.Stream
	closed atomic.Bool
}

// Recv returns the next event the runtime knows (exec_*, attach, rename
// and the like are skipped).
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
				err = errors.New("docker events ended")
			}
			if runtime.Class(err) == nil {
				err = runtime.Errorf(runtime.ErrUnavailable, "%w", err)
			}
			return runtime.Event{}, fmt.Errorf("events: %w", err)
		}
		// A line that is not an event docker would print is skipped.
		if ev, ok, err := parseEvent(line); err == nil && ok {
			return ev, nil
		}
	}
}

func (e *eventStream) Close() error {
	e.closed.Store(true)
	return e.s.Close()
}

// The event attributes docker adds beside the container's labels.
var eventAttributes = map[string]bool{"name": true, "image": true, "exitCode": true, "signal": true, "execID": true}

var knownActions = map[runtime.EventAction]bool{
	runtime.EventCreate: true, runtime.EventStart: true, runtime.EventDie: true, runtime.EventStop: true,
	runtime.EventKill: true, runtime.EventOOM: true, runtime.EventDestroy: true, runtime.EventRestart: true,
	runtime.EventHealth: true,
}

// parseEvent reads one line of `docker events --format '{{json .}}'`; ok is
// false for events the runtime does not follow. A label named like one of
// docker's own attributes (name, image, exitCode, signal, execID) cannot
// be told apart from it and is not reported.
func parseEvent(line []byte) (ev runtime.Event, ok bool, err error) {
	var raw struct {
		Type   string
		Action string
		Actor  struct {
			ID         string
			Attributes map[string]string
		}
		TimeNano int64 `json:"timeNano"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return ev, false, fmt.Errorf("parse %q: %w", line, err)
	}
	if raw.Type != "container" {
		return ev, false, nil
	}
	action, detail, _ := strings.Cut(raw.Action, ":")
	ev.Action = runtime.EventAction(action)
	if !knownActions[ev.Action] {
		return ev, false, nil
	}
	attrs := raw.Actor.Attributes
	ev.ID = raw.Actor.ID
	ev.Name = attrs["name"]
	ev.Time = time.Unix(0, raw.TimeNano)
	for k, v := range attrs {
		if !eventAttributes[k] {
			if ev.Labels == nil {
				ev.Labels = map[string]string{}
			}
			ev.Labels[k] = v
		}
	}
	switch ev.Action {
	case runtime.EventDie:
		ev.ExitCode, _ = strconv.Atoi(attrs["exitCode"])
	case runtime.EventHealth:
		ev.Health = strings.TrimSpace(detail)
	}
	return ev, true, nil
}
