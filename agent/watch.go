package agent

import (
	"sync"
	"time"
)

// loopWatch records (on the wall clock, never an injected one) when each of the agent's loops began its current
// iteration, so that a loop stuck in one (a wedged resync, a prune that
// never returns) is noticed even though the socket still answers.
type loopWatch struct {
	mu   sync.Mutex
	busy map[string]time.Time
}

// begin marks loop as busy from now on and returns the function that ends
// the iteration.
func (w *loopWatch) begin(loop string) (end func()) {
	now := time.Now()
	w.mu.Lock()
	if w.busy == nil {
		w.busy = make(map[string]time.Time)
	}
	w.busy[loop] = now
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.busy, loop)
		w.mu.Unlock()
	}
}

// wedged names a loop busy for longer than bound, or returns "".
func (w *loopWatch) wedged(bound time.Duration) string {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for loop, since := range w.busy {
		if now.Sub(since) > bound {
			return loop + " loop wedged since " + since.UTC().Format(time.RFC3339)
		}
	}
	return ""
}
