package agent

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The reasons of a prune item.
const (
	ReasonIdlePause = socketapi.ReasonIdlePause
	ReasonIdleStop  = socketapi.ReasonIdleStop
	ReasonIdle      = socketapi.ReasonIdle
	ReasonMaxAge    = socketapi.ReasonMaxAge
)

// pruneLoop resyncs and prunes every intervalMinutes.
func (a *Agent) pruneLoop(ctx context.Context) {
	for {
		// Read the interval each time round: a reload may change it.
		if !ctxwait.Sleep(ctx, minutes(a.conf().Prune.IntervalMinutes)) {
			return
		}
		end := a.loops.begin("prune")
		if err := a.resync(ctx); err != nil {
			a.log.Warn("periodic resync", "err", err)
		} else if _, err := a.Prune(ctx, PruneRequest{}); err != nil {
			a.log.Warn("prune", "err", err)
		}
		end()
	}
}

// Prune runs one pruning pass: running instances idle past
// idlePauseMinutes are paused (frozen: memory kept, CPU freed; thawed by
// their next ensure or touch), instances idle past idleStopMinutes are
// stopped, paused ones too (each rule when it is on; when a pass's
// thresholds put the pause rule past the stop rule, the stop rule wins);
// instances idle past idleHours or older
// than maxAgeDays are removed with their entries, in one runtime call,
// except that an old instance used within the hot window is kept: it is
// marked stale (Renew) and made anew at its next cold moment (its next
// ensure once it is no longer hot, or a later pass once it is idle).
// User data is never deleted, and a user's port stays reserved. Users busy
// in another call are left for the next pass; a removal that fails keeps
// its entry, to be tried again.
func (a *Agent) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	rules, err := a.pruneRulesFor(req)
	if err != nil {
		return PruneResult{}, err
	}
	if err := a.awaitReconciled(ctx, "prune"); err != nil {
		return PruneResult{}, err
	}
	rules.now = a.now()
	res := PruneResult{DryRun: req.DryRun, Paused: []PruneItem{}, Stopped: []PruneItem{}, Removed: []PruneItem{}, Staled: []PruneItem{}, Failed: []PruneItem{}}
	candidates := a.pruneCandidates(rules)
	if req.DryRun {
		res.Paused, res.Stopped, res.Removed, res.Staled = splitByAction(candidates)
		return res, nil
	}
	held := heldLocks{locks: &a.locks}
	defer held.release()
	pause, stop, remove, stale := a.lockCandidates(rules, candidates, &held)
	a.pauseIdle(ctx, pause, &res)
	a.stopIdle(ctx, stop, &res)
	a.removeExpired(ctx, remove, &res)
	a.markStale(stale, &res)
	a.reportPrune(res)
	return res, nil
}

// pruneRules are the thresholds of one pass (0 turns a rule off) and the
// time it measures from.
type pruneRules struct {
	idlePauseMinutes, idleStopMinutes, idleHours, maxAgeDays float64
	hot                                                      time.Duration // the hot window
	now                                                      time.Time
}

// pruneRulesFor returns the config's thresholds with req's overrides.
func (a *Agent) pruneRulesFor(req PruneRequest) (pruneRules, error) {
	p := a.conf().Prune
	r := pruneRules{idlePauseMinutes: p.IdlePauseMinutes, idleStopMinutes: p.IdleStopMinutes, idleHours: p.IdleHours, maxAgeDays: p.MaxAgeDays,
		hot: minutes(a.conf().Hot.WindowMinutes)}
	for _, o := range []struct {
		v    *float64
		dst  *float64
		key  string
		unit time.Duration
	}{{req.IdlePauseMinutes, &r.idlePauseMinutes, "idlePauseMinutes", time.Minute}, {req.IdleStopMinutes, &r.idleStopMinutes, "idleStopMinutes", time.Minute}, {req.IdleHours, &r.idleHours, "idleHours", time.Hour}, {req.MaxAgeDays, &r.maxAgeDays, "maxAgeDays", 24 * time.Hour}} {
		if o.v == nil {
			continue
		}
		if err := checkSpan(*o.v, o.unit, spanOff); err != nil {
			return pruneRules{}, invalid("%s %g: %v (0 = off)", o.key, *o.v, err)
		}
		*o.dst = *o.v
	}
	// What the config refuses for the pause tier, a pass refuses too.
	if v := req.IdlePauseMinutes; v != nil && *v > 0 {
		if rf := a.facts.Load(); rf != nil && rf.cluster {
			return pruneRules{}, invalid("idlePauseMinutes %g: not with a runtime that places instances on nodes (it has no pause): use idleStopMinutes", *v)
		}
		if a.conf().Instance.OCIRuntime == "runsc" {
			return pruneRules{}, invalid("idlePauseMinutes %g: not with instance.ociRuntime = \"runsc\" (a paused gVisor container cannot be stopped or restarted and started again): use idleStopMinutes", *v)
		}
	}
	return r, nil
}

// What a pass does with an instance.
type pruneAction int

const (
	pruneStop pruneAction = iota + 1
	prunePause
	pruneRemove
	pruneStale // past the maximum age but hot: kept, renewed when cold
)

// pruneCandidate is an instance a pass acts on, and how.
type pruneCandidate struct {
	PruneItem
	act pruneAction
}

// pruneDecision tells whether rec is due, and for what.
func (a *Agent) pruneDecision(r pruneRules, rec registry.Record) (pruneCandidate, bool) {
	idle := r.now.Sub(time.UnixMilli(rec.LastUsedAtMs))
	age := r.now.Sub(time.UnixMilli(rec.CreatedAtMs))
	c := pruneCandidate{PruneItem: PruneItem{UserID: rec.UserID, ContainerID: rec.ContainerID,
		IdleMinutes: round2(idle.Minutes()), AgeDays: roundSig(age.Hours()/24, 3)}}
	switch {
	case r.maxAgeDays > 0 && age > time.Duration(r.maxAgeDays*24*float64(time.Hour)):
		c.Reason, c.act = ReasonMaxAge, pruneRemove
		if idle < r.hot {
			c.act = pruneStale
		}
	case r.idleHours > 0 && idle > time.Duration(r.idleHours*float64(time.Hour)):
		c.Reason, c.act = ReasonIdle, pruneRemove
	case r.idleStopMinutes > 0 && idle > minutes(r.idleStopMinutes) && a.liveOf(rec.UserID).alive():
		c.Reason, c.act = ReasonIdleStop, pruneStop
	case r.idlePauseMinutes > 0 && idle > minutes(r.idlePauseMinutes) && a.liveOf(rec.UserID).State == runtime.StateRunning:
		c.Reason, c.act = ReasonIdlePause, prunePause
	default:
		return c, false
	}
	return c, true
}

// pruneCandidates lists the entries due, as the registry has them now.
func (a *Agent) pruneCandidates(r pruneRules) []pruneCandidate {
	var candidates []pruneCandidate
	for _, rec := range a.reg.List() {
		if c, ok := a.pruneDecision(r, rec); ok {
			candidates = append(candidates, c)
		}
	}
	return candidates
}

// splitByAction parts candidates into those to pause, stop, remove and
// mark.
func splitByAction(cs []pruneCandidate) (pause, stop, remove, stale []PruneItem) {
	pause, stop, remove, stale = []PruneItem{}, []PruneItem{}, []PruneItem{}, []PruneItem{}
	for _, c := range cs {
		switch c.act {
		case prunePause:
			pause = append(pause, c.PruneItem)
		case pruneStop:
			stop = append(stop, c.PruneItem)
		case pruneRemove:
			remove = append(remove, c.PruneItem)
		case pruneStale:
			stale = append(stale, c.PruneItem)
		}
	}
	return pause, stop, remove, stale
}

// lockCandidates locks the candidates (skipping busy users) and decides
// again under the lock, since a touch may have come in between; each item
// names the container the engine has now.
func (a *Agent) lockCandidates(r pruneRules, candidates []pruneCandidate, held *heldLocks) (pause, stop, remove, stale []PruneItem) {
	var due []pruneCandidate
	for _, c := range candidates {
		if !held.try(c.UserID) {
			continue
		}
		rec, ok := a.reg.Get(c.UserID)
		if !ok {
			continue
		}
		it, ok := a.pruneDecision(r, rec)
		if !ok {
			continue
		}
		if it.act != pruneStale {
			it.ContainerID = a.liveOf(rec.UserID).ID
		}
		due = append(due, it)
	}
	return splitByAction(due)
}

// pauseIdle pauses the idle instances, one runtime call each (the engine
// has no batch pause), each engine slot taken in turn.
func (a *Agent) pauseIdle(ctx context.Context, pause []PruneItem, res *PruneResult) {
	for _, it := range pause {
		release, err := a.acquire(ctx)
		if err == nil {
			err = a.rt.Pause(ctx, it.ContainerID)
			release()
		}
		if err != nil {
			it.Error = err.Error()
			res.Failed = append(res.Failed, it)
			continue
		}
		a.markState(it.UserID, it.ContainerID, runtime.StatePaused, runtime.EventPause)
		res.Paused = append(res.Paused, it)
		a.publish(Event{Type: EventPaused, UserID: it.UserID, ContainerID: it.ContainerID, Message: "idle"})
	}
}

// stopIdle stops the idle instances (paused ones too) in one runtime call.
func (a *Agent) stopIdle(ctx context.Context, stop []PruneItem, res *PruneResult) {
	if len(stop) == 0 {
		return
	}
	ids := make([]string, len(stop))
	for i, it := range stop {
		ids[i] = it.ContainerID
	}
	failed := runtime.FailedRefs(a.rt.Stop(ctx, ids, seconds(a.conf().Instance.StopTimeoutSeconds)), ids)
	for _, it := range stop {
		if err := failed[it.ContainerID]; err != nil {
			it.Error = err.Error()
			res.Failed = append(res.Failed, it)
			continue
		}
		a.outage.stoppedByAgent(it.ContainerID, a.now())
		a.markState(it.UserID, it.ContainerID, runtime.StateExited, runtime.EventDie)
		res.Stopped = append(res.Stopped, it)
		a.publish(Event{Type: EventStopped, UserID: it.UserID, ContainerID: it.ContainerID, Message: "idle"})
	}
}

// removeExpired removes the containers of the expired instances in one
// runtime call, then their entries in one registry write.
func (a *Agent) removeExpired(ctx context.Context, remove []PruneItem, res *PruneResult) {
	if len(remove) == 0 {
		return
	}
	var ids []string
	for _, it := range remove {
		if it.ContainerID != "" {
			ids = append(ids, it.ContainerID)
		}
	}
	var failed map[string]error
	if len(ids) > 0 {
		failed = runtime.FailedRefs(a.rt.Remove(ctx, ids, runtime.RemoveOptions{Force: true}), ids)
	}
	var removed []PruneItem
	for _, it := range remove {
		if err := failed[it.ContainerID]; it.ContainerID != "" && err != nil {
			it.Error = err.Error()
			res.Failed = append(res.Failed, it)
			continue
		}
		removed = append(removed, it)
	}
	a.deleteEntries(removed, res)
}

// deleteEntries deletes the entries of instances whose containers are
// gone, in one registry write.
func (a *Agent) deleteEntries(removed []PruneItem, res *PruneResult) {
	if len(removed) == 0 {
		return
	}
	gone := make([]string, len(removed))
	for i, it := range removed {
		gone[i] = it.UserID
	}
	if err := a.reg.Delete(gone...); err != nil {
		// The containers are gone; the entries stay and turn missing at
		// the next resync, to be pruned again.
		for _, it := range removed {
			it.Error = fmt.Sprintf("container removed, entry kept: %v", err)
			res.Failed = append(res.Failed, it)
		}
		return
	}
	for _, it := range removed {
		a.dropLive(it.UserID, "")
		res.Removed = append(res.Removed, it)
		a.publish(Event{Type: EventRemoved, UserID: it.UserID, ContainerID: it.ContainerID, Message: it.Reason})
	}
}

// markStale marks the old but hot instances for renewal at their next
// cold moment, in one registry write.
func (a *Agent) markStale(stale []PruneItem, res *PruneResult) {
	var recs []registry.Record
	var items []PruneItem
	for _, it := range stale {
		rec, ok := a.reg.Get(it.UserID)
		if !ok {
			continue
		}
		if !rec.Renew { // else marked by an earlier pass
			rec.Renew = true
			recs = append(recs, rec)
		}
		items = append(items, it)
	}
	if err := a.reg.Put(recs...); err != nil {
		for _, it := range items {
			it.Error = fmt.Sprintf("mark stale: %v", err)
			res.Failed = append(res.Failed, it)
		}
		return
	}
	res.Staled = append(res.Staled, items...)
}

// reportPrune counts a pass in the metrics and, when it did anything,
// logs it and publishes its summary.
func (a *Agent) reportPrune(res PruneResult) {
	a.metrics.observePrune(res)
	if n := len(res.Paused) + len(res.Stopped) + len(res.Removed) + len(res.Staled) + len(res.Failed); n > 0 {
		a.log.Info("pruned", "paused", len(res.Paused), "stopped", len(res.Stopped), "removed", len(res.Removed), "staled", len(res.Staled), "failed", len(res.Failed))
		a.publish(Event{Type: EventPruned, Message: fmt.Sprintf("paused %d, stopped %d, removed %d, staled %d, failed %d", len(res.Paused), len(res.Stopped), len(res.Removed), len(res.Staled), len(res.Failed))})
	}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// roundSig rounds f to n significant digits: an age of minutes is a
// small number of days, not 0.
func roundSig(f float64, n int) float64 {
	if f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(f))))
	return math.Round(f*p) / p
}
