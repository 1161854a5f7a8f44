package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Events streams container events with `podman events`. The stream starts
// at the moment of the call (--since now, which makes podman's file
// backend read its log from the start and skip what came before), not
// when the client has started, so that an event right after Events
// returns is never lost.
//
// Podman's label filter is not docker's: several label filters match any
// one of them, and a key alone matches nothing. So podman is given one
// key=value label of the selector (fewer lines to read) and the selector
// is matched here, exactly, on each event's labels.
func (p *Podman) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	if _, err := cliargs.LabelFilters(opts.Labels); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	args := []string{"events", "--format", "json", "--filter=type=container", "--since=" + now.Format(time.RFC3339Nano)}
	for _, k := range slices.Sorted(maps.Keys(opts.Labels)) {
		if v := opts.Labels[k]; v != "" {
			args = append(args, "--filter=label="+k+"="+v)
			break
		}
	}
	s, err := p.stream(ctx, cli.StreamOptions{}, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &eventStream{ctx: ctx, s: s, labels: maps.Clone(opts.Labels)}, nil
}

type eventStream struct {
	ctx    context.Context
	s      *cli.Stream
	labels map[string]string
	closed atomic.Bool
}

// Recv returns the next event the runtime knows (init, cleanup, exec and
// the like are skipped) whose labels match the selector.
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
			// podman (or its event log) went away.
			if errors.Is(err, io.EOF) {
				err = errors.New("podman events ended")
			}
			if runtime.Class(err) == nil {
				err = runtime.Errorf(runtime.ErrUnavailable, "%w", err)
			}
			return runtime.Event{}, fmt.Errorf("events: %w", err)
		}
		// A line that is not an event podman would print is skipped.
		if ev, ok, err := parseEvent(line); err == nil && ok && matchLabels(ev.Labels, e.labels) {
			return ev, nil
		}
	}
}

func (e *eventStream) Close() error {
	e.closed.Store(true)
	return e.s.Close()
}

// podmanActions maps podman's event statuses onto the runtime's actions.
// Podman says "died" for docker's "die" and "remove" for "destroy"; it
// has no oom event (an OOM kill is a died event with exit code 137; on
// runc and cgroup v1, inspect's OOMKilled stays false too), and `podman
// stop` emits no stop event, only died.
var podmanActions = map[string]runtime.EventAction{
	"create":        runtime.EventCreate,
	"start":         runtime.EventStart,
	"died":          runtime.EventDie,
	"stop":          runtime.EventStop,
	"kill":          runtime.EventKill,
	"remove":        runtime.EventDestroy,
	"restart":       runtime.EventRestart,
	"health_status": runtime.EventHealth,
}

// parseEvent reads one line of `podman events --format json`; ok is false
// for events the runtime does not follow. The attributes of a container
// event are its labels, nothing else.
func parseEvent(line []byte) (ev runtime.Event, ok bool, err error) {
	var raw struct {
		ID                string
		Name              string
		Status            string
		Type              string
		Time              time.Time
		ContainerExitCode int
		HealthStatus      string `json:"health_status"`
		Attributes        map[string]string
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return ev, false, fmt.Errorf("parse %q: %w", line, err)
	}
	if raw.Type != "container" {
		return ev, false, nil
	}
	action, known := podmanActions[raw.Status]
	if !known {
		return ev, false, nil
	}
	ev = runtime.Event{Action: action, ID: raw.ID, Name: raw.Name, Time: raw.Time}
	if len(raw.Attributes) > 0 {
		ev.Labels = raw.Attributes
	}
	switch action {
	case runtime.EventDie:
		ev.ExitCode = raw.ContainerExitCode
	case runtime.EventHealth:
		ev.Health = raw.HealthStatus
	}
	return ev, true, nil
}

// matchLabels reports whether labels carry every key of sel, with its
// value unless that is "".
func matchLabels(labels, sel map[string]string) bool {
	for k, v := range sel {
		got, ok := labels[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
