package agent

import (
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// echoWait bounds how long the agent waits for the echo of its own call on
// a container (see echoes). The engine sends it within milliseconds; the
// bound only matters when it never comes (a call the engine carried out
// as a no-op, an event stream lost in between), and then the events of
// that container within it are not applied to its state (the next resync
// corrects it).
const echoWait = 10 * time.Second

// echoes are the events the engine owes the agent for its own calls on one
// container (start, stop, pause, resume, remove), oldest first.
//
// The agent records the state a call brought about as soon as the call
// returns (markState), ahead of the engine's event stream, which reaches
// the event loop a little later: anything the stream still holds about the
// container from before the call is older than that state. Such a late
// event (the die of the stop before a start, the pause before a resume)
// must not move the state back. The engine sends its events in order, so
// every event about the container up to the echo of the agent's last call
// is older than the state the agent recorded: those change nothing but
// the end of the last run, and the echo itself, and what follows it, are
// applied as usual.
type echoes struct {
	want  []runtime.EventAction // the echoes still due, oldest first
	until time.Time             // on the wall clock: past it, none is awaited any more
}

// echoMatches reports whether got is the echo want. A restart says start,
// then restart: either is the echo of a start or of a restart.
func echoMatches(want, got runtime.EventAction) bool {
	starts := func(a runtime.EventAction) bool { return a == runtime.EventStart || a == runtime.EventRestart }
	return got == want || (starts(want) && starts(got))
}

// stateChanging reports whether an event of action moves a container's
// state (those are the ones that can be out of date).
func stateChanging(action runtime.EventAction) bool {
	switch action {
	case runtime.EventCreate, runtime.EventStart, runtime.EventRestart, runtime.EventDie,
		runtime.EventPause, runtime.EventUnpause:
		return true
	}
	return false
}

// expectEchoLocked records that the engine owes the echo want for a call
// of the agent's on container id. A destroy (the agent removed the
// container, or learned it is gone) replaces whatever was awaited: every
// event of the container but its destroy is then out of date. a.mu must
// be held.
func (a *Agent) expectEchoLocked(id string, want runtime.EventAction) {
	now := time.Now()
	for cid, q := range a.echo {
		if now.After(q.until) {
			delete(a.echo, cid)
		}
	}
	q := a.echo[id]
	if q == nil {
		q = &echoes{}
		a.echo[id] = q
	}
	if want == runtime.EventDestroy {
		q.want = q.want[:0]
	}
	q.want = append(q.want, want)
	q.until = now.Add(a.echoWait)
}

// outdatedLocked reports whether ev, about a container, predates a state
// the agent recorded itself and so must not change it; it consumes the
// echoes ev answers. A destroy is never outdated: it is the last event of
// its container. a.mu must be held.
func (a *Agent) outdatedLocked(ev runtime.Event) bool {
	q := a.echo[ev.ID]
	if q == nil {
		return false
	}
	if ev.Action == runtime.EventDestroy {
		delete(a.echo, ev.ID)
		return false
	}
	if time.Now().After(q.until) {
		delete(a.echo, ev.ID)
		return false
	}
	if q.want[0] == runtime.EventDestroy {
		return true // a container the agent let go of: only its end is news
	}
	if !stateChanging(ev.Action) {
		return false
	}
	if echoMatches(q.want[0], ev.Action) {
		q.want = q.want[1:]
		if len(q.want) == 0 {
			// The echo of the agent's last call: what it says is the
			// state the agent recorded, and from here on the stream is
			// newer than that.
			delete(a.echo, ev.ID)
			return false
		}
	}
	return true
}

// expectEcho records, before a call that always changes the container
// (a restart), the echo it will have: recorded after the call, the echo
// could have been applied already and would then be awaited in vain.
// cancel withdraws it when the call fails.
func (a *Agent) expectEcho(id string, want runtime.EventAction) (cancel func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expectEchoLocked(id, want)
	q := a.echo[id]
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.echo[id] == q && len(q.want) > 0 && q.want[len(q.want)-1] == want {
			q.want = q.want[:len(q.want)-1]
			if len(q.want) == 0 {
				delete(a.echo, id)
			}
		}
	}
}

// forgetEchoes drops every echo awaited: the event stream they were due on
// is gone, and the resync that follows a new stream reads the engine
// anew.
func (a *Agent) forgetEchoes() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.echo)
}
