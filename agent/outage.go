package agent

import (
	"context"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// After a runtime outage the agent starts again the instances that
// stopped during it. An engine that is stopped (or restarted, e.g. by a
// package upgrade) without live-restore stops every container first, with
// SIGTERM, and the on-failure restart policy does not bring back a
// container that exited 0 on it: left alone, every instance on the host
// would stay down until its user's next ensure. So when the runtime
// answers again, the instances whose container finished since shortly
// before the outage began are started, except:
//
//   - those the agent stopped itself (Stop, idle pruning): they stay down;
//   - those the kernel killed for lack of memory: the engine's policy
//     decides;
//   - users busy in a call: that call decides.
//
// Nothing waits for readiness: the engine's events report the starts. The
// agent knows of an outage only while it runs; one that it did not see
// (the agent started after the engine) leaves instances to their next
// ensure.

// outageGrace is how long before the agent noticed the outage an
// instance may have been stopped by it: the engine stops containers (each
// within its stop timeout) before its API goes away.
func outageGrace(stopTimeout time.Duration) time.Duration { return stopTimeout + 30*time.Second }

// outageState remembers when the runtime went away and which containers
// the agent stopped itself.
type outageState struct {
	mu        sync.Mutex
	downSince time.Time            // zero while the runtime answers
	stops     map[string]time.Time // container ID -> when the agent's stop of it returned
}

// runtimeLost records the start of an outage.
func (o *outageState) runtimeLost(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.downSince.IsZero() {
		o.downSince = now
	}
}

// runtimeBack ends the outage and returns when it began (zero when there
// was none).
func (o *outageState) runtimeBack() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	since := o.downSince
	o.downSince = time.Time{}
	return since
}

// stoppedByAgent records that the agent stopped container id at at.
func (o *outageState) stoppedByAgent(id string, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stops == nil {
		o.stops = map[string]time.Time{}
	}
	o.stops[id] = at
}

// forget drops what is known of a removed container.
func (o *outageState) forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.stops, id)
}

// agentStopped reports whether the agent's own stop is what ended the
// container's last run (finished at finished).
func (o *outageState) agentStopped(id string, finished time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.stops[id]
	return ok && !finished.After(at)
}

// restartAfterOutage starts the instances that stopped during the outage
// that began at since (see above).
func (a *Agent) restartAfterOutage(ctx context.Context, since time.Time) {
	from := since.Add(-outageGrace(seconds(a.conf().Instance.StopTimeoutSeconds)))
	type candidate struct{ user, id string }
	var cands []candidate
	a.mu.RLock()
	for user, ls := range a.live {
		if !ls.exists() || ls.alive() || ls.OOMKilled || ls.FinishedAt.IsZero() || ls.FinishedAt.Before(from) {
			continue
		}
		if a.outage.agentStopped(ls.ID, ls.FinishedAt) {
			continue
		}
		cands = append(cands, candidate{user, ls.ID})
	}
	a.mu.RUnlock()
	for _, c := range cands {
		if ctx.Err() != nil {
			return
		}
		if _, ok := a.reg.Get(c.user); !ok {
			continue
		}
		unlock, ok := a.locks.tryLock(c.user)
		if !ok {
			continue
		}
		if ls := a.liveOf(c.user); ls.ID != c.id || ls.alive() {
			unlock()
			continue
		}
		release, err := a.acquire(ctx)
		if err != nil {
			unlock()
			return
		}
		err = a.rt.Start(ctx, c.id)
		release()
		if err != nil {
			a.log.Warn("start an instance stopped during the runtime outage", "user", c.user, "container", c.id, "err", err)
		} else {
			a.markState(c.user, c.id, runtime.StateRunning, runtime.EventStart)
			a.log.Info("started an instance stopped during the runtime outage", "user", c.user, "container", c.id)
		}
		unlock()
	}
}
