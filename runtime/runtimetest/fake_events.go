package runtimetest

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Events streams the container events whose labels match opts.Labels
// (and, with opts.Images, every image event), from now on. Each stream has an unbounded queue: the fake never blocks on
// a slow reader and never drops an event. The stream ends (Recv returns
// io.EOF, dropping what is queued) when ctx ends or Close is called; when
// the engine goes down (Down) or BreakEvents is called, Recv returns what
// was queued, then the error.
func (f *Fake) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	if err := f.begin(ctx, "Events", nil, ""); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	s := &eventStream{f: f, labels: cloneMap(opts.Labels), images: opts.Images}
	s.cond = sync.NewCond(&s.mu)
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return nil, fmt.Errorf("events: %w", errDown)
	}
	f.streams[s] = struct{}{}
	f.mu.Unlock()
	s.mu.Lock()
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Unlock()
	return s, nil
}

// BreakEvents ends every open event stream with err (after what each has
// queued), as a broken connection to the engine would. New streams work.
func (f *Fake) BreakEvents(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.breakStreamsLocked(err)
}

func (f *Fake) breakStreamsLocked(err error) {
	for s := range f.streams {
		s.fail(err)
	}
	f.streams = map[*eventStream]struct{}{}
}

// Subscribers returns the number of open event streams.
func (f *Fake) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// emit sends an event about c to every matching stream. f.mu must be held:
// it orders the events.
func (f *Fake) emit(c *fakeContainer, action runtime.EventAction, exitCode int, health string) {
	ev := runtime.Event{
		Action:   action,
		ID:       c.id,
		Name:     c.spec.Name,
		ExitCode: exitCode,
		Health:   health,
		Time:     f.now(),
	}
	for s := range f.streams {
		if matchLabels(c.spec.Labels, s.labels) {
			ev.Labels = cloneMap(c.spec.Labels)
			s.push(ev)
		}
	}
}

// emitImage sends an image event to every stream that wants them. f.mu
// must be held.
func (f *Fake) emitImage(action runtime.EventAction, ref, id string) {
	if f.noImageEvents {
		return
	}
	ev := runtime.Event{Action: action, Image: true, ID: id, Name: ref, Time: f.now()}
	for s := range f.streams {
		if s.images {
			s.push(ev)
		}
	}
}

// eventStream is one subscriber. Lock order: Fake.mu, then mu.
type eventStream struct {
	f      *Fake
	labels map[string]string
	images bool

	mu     sync.Mutex
	stop   func() bool // stops the ctx watch
	cond   *sync.Cond
	queue  []runtime.Event
	err    error // the end of the stream, once the queue is drained
	closed bool  // ended by Close or ctx: drop the queue
}

func (s *eventStream) push(ev runtime.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.queue = append(s.queue, ev)
		s.cond.Broadcast()
	}
}

// fail ends the stream with err once the queue is drained.
func (s *eventStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		s.cond.Broadcast()
	}
}

// Recv blocks for the next event.
func (s *eventStream) Recv() (runtime.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && s.err == nil {
		s.cond.Wait()
	}
	if s.closed || len(s.queue) == 0 {
		return runtime.Event{}, s.err
	}
	ev := s.queue[0]
	s.queue[0] = runtime.Event{}
	s.queue = s.queue[1:]
	return ev, nil
}

// Close ends the stream: Recv returns io.EOF.
func (s *eventStream) Close() error {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.f.mu.Lock()
	delete(s.f.streams, s)
	s.f.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = io.EOF
	s.closed = true
	s.queue = nil
	s.cond.Broadcast()
	return nil
}
