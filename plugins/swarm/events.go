package swarm

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Events streams create, start, die and destroy of the containers whose
// labels match opts.Labels. A swarm has no container events of its own
// for them: the manager's stream tells of services (created, updated,
// removed) but nothing of a task that ends on another node. So the
// stream compares what List reports, at each service event of the
// manager and every Config.Poll, with what it saw last, and says what
// changed: a new service is create, a task that runs start, one that
// stopped die (a task replaced by another one, die then start), a
// service gone destroy. A start and stop between two looks are not seen.
// There are no image events (Info.ImageEvents is false).
func (r *Runtime) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	es, err := r.api.Events(ctx, engineapi.EventsOptions{Filters: engineapi.Filters{"type": {"service"}}})
	if err != nil {
		cancel()
		return nil, wrap(err, "events")
	}
	seen, err := r.snapshot(ctx, opts.Labels)
	if err != nil {
		cancel()
		es.Close()
		return nil, err
	}
	s := &eventStream{events: make(chan runtime.Event, 64), cancel: cancel}
	poke := make(chan struct{}, 1)
	s.wg.Add(2)
	go func() { // the manager's service events: look now
		defer s.wg.Done()
		for {
			if _, err := es.Recv(); err != nil {
				if !errors.Is(err, io.EOF) {
					s.fail(err)
				}
				return
			}
			select {
			case poke <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		defer close(s.events)
		defer es.Close()
		tick := time.NewTicker(r.poll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poke:
			case <-tick.C:
			}
			now, err := r.snapshot(ctx, opts.Labels)
			if err != nil {
				if ctx.Err() == nil {
					s.fail(err)
				}
				return
			}
			for _, ev := range diff(seen, now, time.Now()) {
				select {
				case s.events <- ev:
				case <-ctx.Done():
					return
				}
			}
			seen = now
		}
	}()
	return s, nil
}

// seenContainer is what Events remembers of a container.
type seenContainer struct {
	name    string
	labels  map[string]string
	running bool
	task    string // the running task's start time: a new one is a restart
	exit    int
}

// snapshot lists the containers labels select, by ID.
func (r *Runtime) snapshot(ctx context.Context, labels map[string]string) (map[string]seenContainer, error) {
	cs, err := r.List(ctx, runtime.ListOptions{Labels: labels})
	if err != nil {
		return nil, err
	}
	out := make(map[string]seenContainer, len(cs))
	for _, c := range cs {
		sc := seenContainer{name: c.Name, labels: c.Spec.Labels, running: c.State == runtime.StateRunning, exit: c.ExitCode}
		if sc.running {
			sc.task = c.StartedAt.String()
		}
		out[c.ID] = sc
	}
	return out, nil
}

// diff returns the events that take a swarm from before to after, in
// order: per container create, die, start, destroy, as they apply.
func diff(before, after map[string]seenContainer, at time.Time) []runtime.Event {
	var out []runtime.Event
	ev := func(a runtime.EventAction, id string, c seenContainer) {
		out = append(out, runtime.Event{Action: a, ID: id, Name: c.name, Labels: c.labels, Time: at, ExitCode: c.exit})
	}
	for _, id := range sortedIDs(after) {
		c := after[id]
		b, existed := before[id]
		if !existed {
			ev(runtime.EventCreate, id, c)
		}
		if b.running && (!c.running || b.task != c.task) {
			ev(runtime.EventDie, id, c)
		}
		if c.running && (!b.running || b.task != c.task) {
			ev(runtime.EventStart, id, c)
		}
	}
	for _, id := range sortedIDs(before) {
		if _, ok := after[id]; ok {
			continue
		}
		b := before[id]
		if b.running {
			ev(runtime.EventDie, id, b)
		}
		ev(runtime.EventDestroy, id, b)
	}
	return out
}

func sortedIDs(m map[string]seenContainer) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// eventStream is one Events subscription.
type eventStream struct {
	events chan runtime.Event
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

// fail ends the stream with err (the first one wins).
func (s *eventStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *eventStream) Recv() (runtime.Event, error) {
	ev, ok := <-s.events
	if ok {
		return ev, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return runtime.Event{}, s.err
	}
	return runtime.Event{}, io.EOF
}

func (s *eventStream) Close() error {
	s.cancel()
	go func() { // let the reader drain what is in flight
		for range s.events {
		}
	}()
	s.wg.Wait()
	return nil
}
