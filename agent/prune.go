package agent

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The reasons of a prune item.
const (
	ReasonIdleStop = socketapi.ReasonIdleStop
	ReasonIdle     = socketapi.ReasonIdle
	ReasonMaxAge   = socketapi.ReasonMaxAge
)

// pruneLoop resyncs and prunes every intervalMinutes.
func (a *Agent) pruneLoop(ctx context.Context) {
	for {
		// Read the interval each time round: a reload may change it.
		if !sleepCtx(ctx, minutes(a.conf().Prune.IntervalMinutes)) {
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

// Prune runs one pruning pass: instances idle past idleStopMinutes are
// stopped (when that rule is on); instances idle past idleHours or older
// than maxAgeDays are removed with their entries, in one runtime call.
// User data is never deleted, and a user's port stays reserved. Users busy
// in another call are left for the next pass; a removal that fails keeps
// its entry, to be tried again.
func (a *Agent) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	idleStop, idleH, maxAge := a.conf().Prune.IdleStopMinutes, a.conf().Prune.IdleHours, a.conf().Prune.MaxAgeDays
	for _, o := range []struct {
		v   *float64
		dst *float64
		key string
	}{{req.IdleStopMinutes, &idleStop, "idleStopMinutes"}, {req.IdleHours, &idleH, "idleHours"}, {req.MaxAgeDays, &maxAge, "maxAgeDays"}} {
		if o.v == nil {
			continue
		}
		if *o.v < 0 || math.IsNaN(*o.v) || math.IsInf(*o.v, 0) {
			return PruneResult{}, invalid("%s must be a number >= 0 (0 = off)", o.key)
		}
		*o.dst = *o.v
	}
	now := a.now()
	res := PruneResult{DryRun: req.DryRun, Stopped: []PruneItem{}, Removed: []PruneItem{}, Failed: []PruneItem{}}

	decide := func(rec registry.Record) (PruneItem, bool) {
		idle := now.Sub(time.UnixMilli(rec.LastUsedAtMs))
		age := now.Sub(time.UnixMilli(rec.CreatedAtMs))
		it := PruneItem{UserID: rec.UserID, ContainerID: rec.ContainerID,
			IdleMinutes: round2(idle.Minutes()), AgeDays: round2(age.Hours() / 24)}
		switch {
		case maxAge > 0 && age > time.Duration(maxAge*24*float64(time.Hour)):
			it.Reason = ReasonMaxAge
		case idleH > 0 && idle > time.Duration(idleH*float64(time.Hour)):
			it.Reason = ReasonIdle
		case idleStop > 0 && idle > minutes(idleStop) && a.liveOf(rec.UserID).running():
			it.Reason = ReasonIdleStop
		default:
			return it, false
		}
		return it, true
	}

	var candidates []PruneItem
	for _, rec := range a.reg.List() {
		if it, ok := decide(rec); ok {
			candidates = append(candidates, it)
		}
	}
	if req.DryRun {
		for _, it := range candidates {
			if it.Reason == ReasonIdleStop {
				res.Stopped = append(res.Stopped, it)
			} else {
				res.Removed = append(res.Removed, it)
			}
		}
		return res, nil
	}

	// Lock the candidates (skipping busy users), and decide again under
	// the lock: a touch may have come in between.
	var stop, remove []PruneItem
	for _, c := range candidates {
		unlock, ok := a.locks.tryLock(c.UserID)
		if !ok {
			continue
		}
		defer unlock()
		rec, ok := a.reg.Get(c.UserID)
		if !ok {
			continue
		}
		it, ok := decide(rec)
		if !ok {
			continue
		}
		if ls := a.liveOf(rec.UserID); ls.exists() {
			it.ContainerID = ls.ID
		} else {
			it.ContainerID = ""
		}
		if it.Reason == ReasonIdleStop {
			stop = append(stop, it)
		} else {
			remove = append(remove, it)
		}
	}

	if len(stop) > 0 {
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
			a.markState(it.UserID, it.ContainerID, runtime.StateExited)
			res.Stopped = append(res.Stopped, it)
			a.publish(Event{Type: EventStopped, UserID: it.UserID, ContainerID: it.ContainerID, Message: "idle"})
		}
	}

	if len(remove) > 0 {
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
		var gone []string
		var removed []PruneItem
		for _, it := range remove {
			if err := failed[it.ContainerID]; it.ContainerID != "" && err != nil {
				it.Error = err.Error()
				res.Failed = append(res.Failed, it)
				continue
			}
			gone = append(gone, it.UserID)
			removed = append(removed, it)
		}
		if len(gone) > 0 {
			if err := a.reg.Delete(gone...); err != nil {
				// The containers are gone; the entries stay and turn missing
				// at the next resync, to be pruned again.
				for _, it := range removed {
					it.Error = fmt.Sprintf("container removed, entry kept: %v", err)
					res.Failed = append(res.Failed, it)
				}
				removed = nil
			}
			for _, it := range removed {
				a.dropLive(it.UserID, "")
				res.Removed = append(res.Removed, it)
				a.publish(Event{Type: EventRemoved, UserID: it.UserID, ContainerID: it.ContainerID, Message: it.Reason})
			}
		}
	}
	a.metrics.observePrune(res)
	if n := len(res.Stopped) + len(res.Removed) + len(res.Failed); n > 0 {
		a.log.Info("pruned", "stopped", len(res.Stopped), "removed", len(res.Removed), "failed", len(res.Failed))
		a.publish(Event{Type: EventPruned, Message: fmt.Sprintf("stopped %d, removed %d, failed %d", len(res.Stopped), len(res.Removed), len(res.Failed))})
	}
	return res, nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
