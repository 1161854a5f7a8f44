package agent

import (
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The event types (see socketapi).
const (
	EventEnsured    = socketapi.EventEnsured
	EventStarted    = socketapi.EventStarted
	EventDied       = socketapi.EventDied
	EventOOM        = socketapi.EventOOM
	EventStopped    = socketapi.EventStopped
	EventPaused     = socketapi.EventPaused
	EventResumed    = socketapi.EventResumed
	EventRestarted  = socketapi.EventRestarted
	EventRemoved    = socketapi.EventRemoved
	EventDestroyed  = socketapi.EventDestroyed
	EventAdopted    = socketapi.EventAdopted
	EventMissing    = socketapi.EventMissing
	EventHealth     = socketapi.EventHealth
	EventPull       = socketapi.EventPull
	EventPruned     = socketapi.EventPruned
	EventRuntimeUp  = socketapi.EventRuntimeUp
	EventRuntimeOut = socketapi.EventRuntimeOut
)

// EventPortChanged: a user moved off a port taken on the host.
const EventPortChanged = socketapi.EventPortChanged

// broker fans events out to subscribers without ever blocking the agent: a
// subscriber whose buffer is full loses events, and is told how many with
// the next one it gets.
type broker struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription is a stream of events; see Agent.Subscribe.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	b       *broker
	dropped uint64 // guarded by b.mu
	closed  bool   // guarded by b.mu
}

func (b *broker) subscribe(buf int) *Subscription {
	if buf < 1 {
		buf = 1
	}
	c := make(chan Event, buf)
	s := &Subscription{C: c, c: c, b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[*Subscription]struct{})
	}
	b.subs[s] = struct{}{}
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	delete(s.b.subs, s)
	close(s.c)
}

func (b *broker) publish(e Event) {
	if e.TimeMs == 0 {
		e.TimeMs = time.Now().UnixMilli()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		ev := e
		ev.Dropped = s.dropped
		select {
		case s.c <- ev:
			s.dropped = 0
		default:
			s.dropped++
		}
	}
}
