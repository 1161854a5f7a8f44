package runtimetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testEvents: a stream filtered by label receives create, start, die and
// destroy, in that order, for a labelled container, and nothing for a
// container without the label.
func (s *suite) testEvents(t *testing.T) {
	ctx := s.ctx(t)
	const key = "zaki.conformance.events"
	w := s.watch(t, map[string]string{key: s.run})
	keyOnly := s.watch(t, map[string]string{key: ""})

	// A container without the label goes through its whole life first: had
	// the filter let its events through, they would come before the
	// labelled container's destroy.
	other := s.name("ev-other")
	otherID := s.create(t, s.simpleSpec(other, nil))
	s.start(t, other)
	if err := s.rt.Remove(ctx, []string{other}, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove %s: %v", other, err)
	}

	name := s.name("ev")
	id := s.create(t, s.simpleSpec(name, map[string]string{key: s.run}))
	s.start(t, name)
	// The start is seen before the stop: a runtime that synthesises its
	// events by looking (swarm) sees a container start only while it runs.
	seen := w.until(t, s.cfg.Timeout, "start of "+name, func(ev runtime.Event) bool {
		return ev.ID == id && ev.Action == runtime.EventStart
	})
	if err := s.rt.Stop(ctx, []string{name}, stopTimeout); err != nil {
		t.Fatalf("stop %s: %v", name, err)
	}
	if err := s.rt.Remove(ctx, []string{name}, runtime.RemoveOptions{}); err != nil {
		t.Fatalf("remove %s: %v", name, err)
	}

	seen = append(seen, w.until(t, s.cfg.Timeout, "destroy of "+name, func(ev runtime.Event) bool {
		return ev.ID == id && ev.Action == runtime.EventDestroy
	})...)
	var actions []runtime.EventAction
	for _, ev := range seen {
		switch {
		case ev.ID == otherID || ev.Name == other:
			t.Errorf("events %s=%s: got %s for %s, which lacks the label", key, s.run, ev.Action, other)
		case ev.ID != id:
			t.Errorf("events %s=%s: got %s for unexpected container %s (%s)", key, s.run, ev.Action, ev.Name, ev.ID)
		default:
			actions = append(actions, ev.Action)
			if ev.Name != name {
				t.Errorf("events: %s event for %s has Name %q, want %q", ev.Action, id, ev.Name, name)
			}
			if ev.Labels[key] != s.run {
				t.Errorf("events: %s event for %s has Labels %v, want %s=%s among them", ev.Action, name, ev.Labels, key, s.run)
			}
			if ev.Time.IsZero() {
				t.Errorf("events: %s event for %s has no Time", ev.Action, name)
			}
		}
	}
	want := []runtime.EventAction{runtime.EventCreate, runtime.EventStart, runtime.EventDie, runtime.EventDestroy}
	if !subsequence(actions, want) {
		t.Errorf("events for %s: got %v, want %v in this order (others may come between)", name, actions, want)
	}

	keyOnly.until(t, s.cfg.Timeout, "create of "+name+" (filter on the key alone)", func(ev runtime.Event) bool {
		return ev.ID == id && ev.Action == runtime.EventCreate
	})
}

// subsequence reports whether want appears in got in order.
func subsequence[T comparable](got, want []T) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// eventWatch reads an event stream into a channel, so that a check can
// wait for events with a timeout.
type eventWatch struct {
	events chan runtime.Event // closed when the stream ends
	end    chan error         // the error that ended the stream
	stop   chan struct{}
}

// watch subscribes to events and reads them until t ends.
func (s *suite) watch(t *testing.T, labels map[string]string) *eventWatch {
	t.Helper()
	return s.watchOpts(t, runtime.EventOptions{Labels: labels})
}

// watchOpts is watch with any options.
func (s *suite) watchOpts(t *testing.T, opts runtime.EventOptions) *eventWatch {
	t.Helper()
	stream, err := s.rt.Events(s.ctx(t), opts)
	if err != nil {
		t.Fatalf("events %+v: %v", opts, err)
	}
	w := &eventWatch{events: make(chan runtime.Event), end: make(chan error, 1), stop: make(chan struct{})}
	go func() {
		defer close(w.events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				w.end <- err
				return
			}
			select {
			case w.events <- ev:
			case <-w.stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(w.stop)
		stream.Close()
	})
	return w
}

// until returns the events received until one matches (included), and
// stops t when none does within timeout or the stream ends first.
func (w *eventWatch) until(t *testing.T, timeout time.Duration, what string, match func(runtime.Event) bool) []runtime.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []runtime.Event
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("events: the stream ended (%v) before the %s; got %s", <-w.end, what, formatEvents(seen))
			}
			seen = append(seen, ev)
			if match(ev) {
				return seen
			}
		case <-timer.C:
			t.Fatalf("events: no %s within %v; got %s", what, timeout, formatEvents(seen))
		}
	}
}

func formatEvents(evs []runtime.Event) string {
	if len(evs) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(evs))
	for _, ev := range evs {
		p := fmt.Sprintf("%s %s", ev.Action, ev.Name)
		if ev.Image {
			p = "image " + p
		}
		if ev.Action == runtime.EventDie {
			p += fmt.Sprintf(" (exit %d)", ev.ExitCode)
		}
		parts = append(parts, p)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
