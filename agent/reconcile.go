package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// liveState is the engine's view of one user's container. The agent keeps
// it in memory, fed by the runtime's event stream, and replaces it with a
// full resync from List at start, after every stream reconnect and at
// every prune interval. seq orders changes: a resync never overwrites an
// entry changed after the resync's List began.
type liveState struct {
	ID          string
	Name        string
	Image       string
	ImageID     string // the container's image; "" when unknown (seen by an event only)
	State       runtime.State
	Health      string
	Hash        string
	Port        int
	CreatedAtMs int64
	Labels      map[string]string // the caller's labels (the agent's own removed)
	FinishedAt  time.Time         // end of the last run (zero when unknown)
	OOMKilled   bool              // the last run was killed for lack of memory
	// Node and NodeAddr are where a cluster runtime runs the container
	// (Container.Node, NodeAddr); "" for a local runtime, and when known
	// from events only.
	Node, NodeAddr string
	seq            uint64
}

func (l liveState) exists() bool { return l.ID != "" }

func (l liveState) running() bool {
	return l.State == runtime.StateRunning || l.State == runtime.StateRestarting
}

// paused reports whether the container is frozen (the pause rule of
// pruning): not running for the agent's rules (never hot), but alive.
func (l liveState) paused() bool { return l.State == runtime.StatePaused }

// alive reports whether the container's processes exist: running or
// paused.
func (l liveState) alive() bool { return l.running() || l.paused() }

func (a *Agent) liveOf(userID string) liveState {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.live[userID]
}

func (a *Agent) setLive(userID string, ls liveState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls.seq = a.seq.Add(1)
	a.live[userID] = ls
}

// dropLive forgets userID's container when it is id.
func (a *Agent) dropLive(userID, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ls, ok := a.live[userID]; ok && (id == "" || ls.ID == id) {
		delete(a.live, userID)
		a.seq.Add(1)
		// Gone for the agent: the late events of that container must not
		// bring it back, or overwrite the user's next one.
		a.expectEchoLocked(ls.ID, runtime.EventDestroy)
		a.outage.forget(ls.ID)
	}
}

// liveFromLabels reads the agent's labels of a container.
func (a *Agent) liveFromLabels(id, name, image string, state runtime.State, labels map[string]string) (string, liveState, bool) {
	lk := a.labels
	userID := labels[lk.UserID]
	if labels[lk.Instance] != "1" || registry.ValidateUserID(userID) != nil {
		return "", liveState{}, false
	}
	port, _ := strconv.Atoi(labels[lk.Port])
	created, _ := strconv.ParseInt(labels[lk.CreatedAtMs], 10, 64)
	caller := map[string]string{}
	prefix := a.conf().Instance.LabelPrefix
	for k, v := range labels {
		if k != prefix && !hasPrefix(k, prefix+".") {
			caller[k] = v
		}
	}
	imageID, _ := a.containerImages.Load(id)
	return userID, liveState{
		ID: id, Name: name, Image: image, ImageID: imageID, State: state,
		Hash: labels[lk.ConfigHash], Port: port, CreatedAtMs: created, Labels: caller,
	}, true
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func (a *Agent) liveFromContainer(c runtime.Container) (string, liveState, bool) {
	image := c.Spec.Image
	if image == "" {
		image = c.Image
	}
	userID, ls, ok := a.liveFromLabels(c.ID, c.Name, image, c.State, c.Spec.Labels)
	ls.Health, ls.ImageID = c.Health, c.ImageID
	if ok && c.ImageID != "" {
		a.containerImages.Store(c.ID, c.ImageID)
	}
	ls.FinishedAt, ls.OOMKilled = c.FinishedAt, c.OOMKilled
	ls.Node, ls.NodeAddr = c.Node, c.NodeAddr
	return userID, ls, ok
}

// Run runs the agent's loops (runtime events, resyncs, pruning, the
// measurement of the users' data) until ctx
// ends. Ready is closed after the first successful reconciliation. Running
// instances are left alone when Run returns.
func (a *Agent) Run(ctx context.Context) error {
	defer a.bgCancel()
	var wg sync.WaitGroup
	wg.Add(4)
	if a.cluster != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.nodeLoop(ctx) }()
	}
	go func() { defer wg.Done(); a.eventLoop(ctx) }()
	go func() { defer wg.Done(); a.diskLoop(ctx) }()
	go func() { defer wg.Done(); a.images.refreshLoop(ctx) }()
	go func() { defer wg.Done(); a.pruneLoop(ctx) }()
	wg.Wait()
	a.recordStates()
	return nil
}

// recordStates writes each instance's state as the live view has it into
// the registry, in one write, so that the next start answers with them
// until its first reconciliation (a kill leaves those of the last
// resync). The users busy in a call are left as they are.
func (a *Agent) recordStates() {
	if !a.reconciled() {
		return
	}
	a.mu.RLock()
	found := make(map[string]liveState, len(a.live))
	for u, ls := range a.live {
		found[u] = ls
	}
	a.mu.RUnlock()
	held := heldLocks{locks: &a.locks}
	defer held.release()
	puts, _ := a.settleRecords(found, &held)
	if len(puts) == 0 {
		return
	}
	if err := a.reg.Put(puts...); err != nil {
		a.log.Warn("record the instances' states at stop", "err", err)
	}
}

// eventLoop follows the runtime's event stream, resyncing after every
// (re)connect: subscribe first, then List, so that nothing falls between.
func (a *Agent) eventLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		end := a.loops.begin("reconcile")
		stream, err := a.rt.Events(ctx, runtime.EventOptions{Labels: map[string]string{a.labels.Instance: "1"}, Images: true})
		if err == nil {
			// The echoes awaited were due on the stream just lost; the
			// resync below reads the engine after this one began.
			a.forgetEchoes()
			// Image events may have been missed too. The engine's Info
			// (does it stream image events? its OCI runtimes) is asked
			// beside the reconciliation, not before it: one engine round
			// trip less on the way to reconciled, seconds on a host
			// whose CPUs the instances fill.
			a.images.renew()
			learned := make(chan struct{})
			go func() { defer close(learned); a.learnImageEvents(ctx) }()
			err = a.reconcile(ctx)
			<-learned
			if err != nil {
				stream.Close()
			}
		}
		end()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.setRuntimeUp(false, err)
			if !ctxwait.Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		a.setRuntimeUp(true, nil)
		a.readyOnce.Do(func() { close(a.ready) })
		if since := a.outage.runtimeBack(); !since.IsZero() {
			a.restartAfterOutage(ctx, since)
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				stream.Close()
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					a.log.Warn("runtime event stream broke; reconnecting", "err", err)
				}
				break
			}
			a.apply(ev)
		}
		if ctx.Err() == nil {
			a.setRuntimeUp(false, errors.New("event stream ended"))
		}
	}
}

func (a *Agent) setRuntimeUp(up bool, err error) {
	if a.runtimeUp.Swap(up) == up {
		return
	}
	if up {
		a.log.Info("runtime up; state resynced")
		a.publish(Event{Type: EventRuntimeUp})
		return
	}
	a.outage.runtimeLost(a.now())
	a.log.Warn("runtime unavailable", "err", err)
	a.publish(Event{Type: EventRuntimeOut, Message: err.Error()})
}

// reconcile makes sure of the network, resyncs, and settles the registry
// with what the engine holds.
func (a *Agent) reconcile(ctx context.Context) error {
	// The network and the List side by side: each is an engine round
	// trip, seconds apiece on a host whose CPUs the instances fill, and
	// the agent's start-up waits for both.
	netErr := make(chan error, 1)
	go func() { netErr <- a.ensureNetwork(ctx) }()
	err := a.resync(ctx)
	if nerr := <-netErr; nerr != nil {
		a.log.Warn("network", "err", nerr)
	}
	return err
}

// resync replaces the live view with a full List, then settles the
// registry: labelled containers missing from it are adopted from their
// labels, entries whose container is gone become missing (port kept), and
// changed container IDs and states are recorded, in one durable write.
// Users busy in another call are left for the next resync.
func (a *Agent) resync(ctx context.Context) error {
	if a.cluster != nil {
		// The nodes first: a user whose node is lost is missing.
		if _, err := a.refreshNodes(ctx); err != nil {
			a.log.Warn("resync: nodes", "err", err)
		}
	}
	seq0 := a.seq.Load()
	found, err := a.listInstances(ctx)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	a.replaceLive(found, seq0)
	if a.cluster != nil {
		a.learnPins(found)
	}

	held := heldLocks{locks: &a.locks}
	defer held.release()
	puts, events := a.settleRecords(found, &held)
	if len(puts) > 0 {
		if err := a.reg.Put(puts...); err != nil {
			return fmt.Errorf("resync: record states: %w", err)
		}
	}
	for _, e := range events {
		a.publish(e)
	}
	a.adoptUnrecorded(found, &held)
	a.lastResync.Store(a.now().UnixMilli())
	return nil
}

// listInstances asks the engine for the labelled containers, by user. A
// container with an invalid label is ignored; of two claiming one user,
// the one with the user's container name wins.
func (a *Agent) listInstances(ctx context.Context) (map[string]liveState, error) {
	cs, err := a.rt.List(ctx, runtime.ListOptions{Labels: map[string]string{a.labels.Instance: "1"}})
	if err != nil {
		return nil, err
	}
	found := make(map[string]liveState, len(cs))
	for _, c := range cs {
		userID, ls, ok := a.liveFromContainer(c)
		if !ok {
			a.log.Warn("container with an invalid instance label ignored", "container", c.Name)
			continue
		}
		if prev, dup := found[userID]; dup && prev.Name == containerName(userID) {
			a.log.Warn("two containers claim one user; keeping the one with its name", "user", userID, "ignored", c.Name)
			continue
		}
		found[userID] = ls
	}
	return found, nil
}

// replaceLive makes found the live view, but for the users whose entry
// changed after seq0 (the List began): those changes are newer.
func (a *Agent) replaceLive(found map[string]liveState, seq0 uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for userID, ls := range found {
		if cur, ok := a.live[userID]; ok && cur.seq > seq0 {
			continue
		}
		ls.seq = a.seq.Add(1)
		a.live[userID] = ls
	}
	for userID, cur := range a.live {
		if _, ok := found[userID]; !ok && cur.seq <= seq0 {
			delete(a.live, userID)
		}
	}
}

// settleRecords returns the entries to rewrite so that the registry
// matches found (container IDs, states, and for a container made anew its
// hash, image and creation time; missing for a container gone), locking
// each such user, and the missing events to publish once they are written.
func (a *Agent) settleRecords(found map[string]liveState, held *heldLocks) (puts []registry.Record, events []Event) {
	for _, rec := range a.reg.List() {
		ls, ok := found[rec.UserID]
		want := rec
		if !ok {
			if a.liveOf(rec.UserID).exists() {
				continue // came into being after the List
			}
			want.State = StateMissing
		} else {
			want.ContainerID = ls.ID
			want.State = stateName(ls)
			if ls.ID != rec.ContainerID {
				want.ConfigHash, want.HashVersion = ls.Hash, parseHashVersion(ls.Hash)
				want.Image, want.CreatedAtMs = ls.Image, ls.CreatedAtMs
			}
		}
		if want.State == rec.State && want.ContainerID == rec.ContainerID && want.ConfigHash == rec.ConfigHash {
			continue
		}
		if !held.try(rec.UserID) {
			continue
		}
		if cur, ok := a.reg.Get(rec.UserID); !ok || cur.ContainerID != rec.ContainerID || cur.State != rec.State {
			continue // changed meanwhile
		}
		if want.State == StateMissing {
			events = append(events, Event{Type: EventMissing, UserID: rec.UserID, ContainerID: rec.ContainerID})
		}
		puts = append(puts, want)
	}
	return puts, events
}

// adoptUnrecorded adopts the containers of found that have no entry, of
// the users not busy in another call.
func (a *Agent) adoptUnrecorded(found map[string]liveState, held *heldLocks) {
	for userID, ls := range found {
		if _, ok := a.reg.Get(userID); ok || !held.try(userID) {
			continue
		}
		if _, err := a.adopt(userID, ls, registry.Record{}, false); err != nil {
			a.log.Error("adopt container", "user", userID, "container", ls.Name, "err", err)
		}
	}
}

func stateName(ls liveState) string {
	switch {
	case !ls.exists():
		return StateMissing
	case ls.running():
		return StateRunning
	case ls.paused():
		return StatePaused
	default:
		return StateStopped
	}
}

// adopt records a labelled container in the registry, from its labels,
// keeping what the existing entry (when there is one) knows of its use.
// The port in its label is reserved for the user; a port that belongs to
// someone else is an error, and the container stays unadopted.
func (a *Agent) adopt(userID string, ls liveState, old registry.Record, hasOld bool) (registry.Record, error) {
	if !hasOld {
		a.reclaimAdoptedUID(userID)
	}
	now := a.now().UnixMilli()
	rec := registry.Record{
		UserID:        userID,
		ContainerName: ls.Name,
		ContainerID:   ls.ID,
		Image:         ls.Image,
		Port:          ls.Port,
		ConfigHash:    ls.Hash,
		HashVersion:   parseHashVersion(ls.Hash),
		State:         stateName(ls),
		Labels:        ls.Labels,
		CreatedAtMs:   ls.CreatedAtMs,
		LastUsedAtMs:  now,
	}
	if hasOld {
		rec.LastUsedAtMs, rec.UID = old.LastUsedAtMs, old.UID
	}
	if rec.CreatedAtMs == 0 {
		rec.CreatedAtMs = now
	}
	if err := a.reg.Put(rec); err != nil {
		return registry.Record{}, fmt.Errorf("adopt container %s of user %q: %w", ls.Name, userID, err)
	}
	if !hasOld {
		a.log.Info("adopted container", "user", userID, "container", ls.Name, "port", ls.Port)
		a.publish(Event{Type: EventAdopted, UserID: userID, ContainerID: ls.ID, Image: ls.Image})
	}
	return rec, nil
}

// confirmUser makes sure, before the first reconciliation, that the live
// view of userID came from the engine: the agent serves as soon as its
// plugin is up and reconciles in the background, so a call that acts on a
// user's container first asks the engine for that user's alone (one
// Inspect by name; later calls for the user then rely on it, the event
// stream and the reconciliation). After the first reconciliation it costs
// nothing. When the engine does not answer in time the call goes on with
// what is known, as it would while the event stream is down: anything
// that needs the engine then fails as unavailable. A container the agent
// does not manage under the user's name is an error (ErrConflict).
func (a *Agent) confirmUser(ctx context.Context, userID string) error {
	if a.reconciled() {
		return nil
	}
	if _, done := a.confirmed.Load(userID); done {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, min(seconds(a.conf().CallTimeoutSeconds), 5*time.Second))
	err := a.resyncUser(vctx, userID)
	cancel()
	switch {
	case err == nil:
		a.confirmed.Store(userID, struct{}{})
		return nil
	case unavailable(err) || errors.Is(err, errdefs.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return nil
	default:
		return err
	}
}

// awaitReconciled waits for the first reconciliation, for the calls that
// act on every user at once (prune, import): they need the whole engine's
// view, not one user's. It waits at most one call bound, then fails as
// unavailable.
func (a *Agent) awaitReconciled(ctx context.Context, what string) error {
	if a.reconciled() {
		return nil
	}
	t := time.NewTimer(seconds(a.conf().CallTimeoutSeconds))
	defer t.Stop()
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: the agent has not yet reconciled its registry with the engine (it started moments ago, or the engine does not answer); nothing was done: retry shortly", what)
	}
}

// resyncUser refreshes one user's live state from the engine.
func (a *Agent) resyncUser(ctx context.Context, userID string) error {
	c, err := a.rt.Inspect(ctx, containerName(userID))
	if err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			a.dropLive(userID, "")
			return nil
		}
		return fmt.Errorf("inspect container of user %q: %w", userID, err)
	}
	id, ls, ok := a.liveFromContainer(c)
	switch {
	case !ok:
		return errdefs.Errorf(errdefs.ErrConflict, "container %s exists but is not managed by zaki-agent (it lacks the label %s=1 or a valid %s): a container of the Zaki platform's router is brought over, with its data and port, by `zakictl import --user %s` (POST /v1/import); anything else: remove or rename it", c.Name, a.labels.Instance, a.labels.UserID, userID)
	case id != userID:
		return errdefs.Errorf(errdefs.ErrConflict, "container %s is the instance of user %q, not of %q: remove or rename it", c.Name, id, userID)
	}
	a.setLive(userID, ls)
	if a.cluster != nil {
		a.learnPins(map[string]liveState{userID: ls})
	}
	return nil
}

// apply feeds one runtime event into the live view and the event stream.
func (a *Agent) apply(ev runtime.Event) {
	if ev.Image {
		a.images.imageEvent(ev)
		return
	}
	userID, evLive, ok := a.liveFromLabels(ev.ID, ev.Name, "", "", ev.Labels)
	if !ok {
		return
	}
	a.mu.Lock()
	// An event older than a state the agent recorded itself is told to
	// subscribers (it happened), but changes no state.
	outdated := a.outdatedLocked(ev)
	ls, known := a.live[userID]
	cur := ls
	if !known || ls.ID != ev.ID {
		if ev.Action == runtime.EventDestroy {
			a.mu.Unlock()
			return // an old container of the user's
		}
		ls = evLive
		if rec, ok := a.reg.Get(userID); ok && rec.ContainerID == ev.ID {
			ls.Image = rec.Image
		}
	}
	changed := true
	out := Event{UserID: userID, ContainerID: ev.ID, TimeMs: ev.Time.UnixMilli()}
	switch ev.Action {
	case runtime.EventCreate:
		ls.State = runtime.StateCreated
	case runtime.EventStart, runtime.EventRestart:
		// Docker says "start" then "restart" for one restart: one
		// instance.started, whichever comes first. An outdated restart
		// follows a start that was told (the state the agent recorded
		// need not be running).
		if ev.Action == runtime.EventRestart && (outdated || known && ls.ID == ev.ID && ls.State == runtime.StateRunning) {
			changed = false
			break
		}
		ls.State = runtime.StateRunning
		out.Type = EventStarted
	case runtime.EventDie:
		ls.State = runtime.StateExited
		ls.FinishedAt = ev.Time
		code := ev.ExitCode
		out.Type, out.ExitCode = EventDied, &code
	case runtime.EventPause:
		ls.State = runtime.StatePaused
	case runtime.EventUnpause:
		ls.State = runtime.StateRunning
	case runtime.EventStop, runtime.EventKill:
		changed = false
	case runtime.EventOOM:
		changed = false
		out.Type = EventOOM
	case runtime.EventHealth:
		ls.Health = ev.Health
		out.Type, out.Message = EventHealth, ev.Health
	case runtime.EventDestroy:
		a.containerImages.Delete(ev.ID)
		delete(a.live, userID)
		a.seq.Add(1)
		changed = false
		out.Type = EventDestroyed
	default:
		changed = false
	}
	if changed && outdated {
		changed = false
		if ev.Action == runtime.EventDie && known && cur.ID == ev.ID && ev.Time.After(cur.FinishedAt) {
			// Still the end of the container's last run.
			cur.FinishedAt = ev.Time
			cur.seq = a.seq.Add(1)
			a.live[userID] = cur
		}
	}
	if changed {
		ls.seq = a.seq.Add(1)
		a.live[userID] = ls
	}
	a.mu.Unlock()
	if out.Type != "" {
		if out.TimeMs <= 0 {
			out.TimeMs = a.now().UnixMilli()
		}
		a.publish(out)
	}
	switch ev.Action {
	case runtime.EventDestroy:
		a.markMissing(userID, ev.ID)
	case runtime.EventCreate, runtime.EventStart:
		if _, ok := a.reg.Get(userID); !ok {
			a.adoptLate(userID)
		}
	}
}

// adoptLate adopts a labelled container with no entry that the event
// stream tells of after the resync: one a killed agent asked for, which
// the engine made only after this agent's start-up resync. Without it the
// container would be unknown until the next periodic resync. A user busy
// in a call is left to that call (the agent's own creates are recorded
// under the user's lock).
func (a *Agent) adoptLate(userID string) {
	unlock, ok := a.locks.tryLock(userID)
	if !ok {
		return
	}
	defer unlock()
	if _, ok := a.reg.Get(userID); ok {
		return
	}
	ctx, cancel := context.WithTimeout(a.bg, 10*time.Second)
	defer cancel()
	if err := a.resyncUser(ctx, userID); err != nil {
		a.log.Warn("adopt a late container", "user", userID, "err", err)
		return // left to the next resync
	}
	ls := a.liveOf(userID)
	if !ls.exists() {
		return // gone already
	}
	if _, err := a.adopt(userID, ls, registry.Record{}, false); err != nil {
		a.log.Error("adopt container", "user", userID, "container", ls.Name, "err", err)
	}
}

// markMissing records that userID's container id is gone, unless someone
// is working on the user right now (then that call records the outcome).
func (a *Agent) markMissing(userID, id string) {
	unlock, ok := a.locks.tryLock(userID)
	if !ok {
		return
	}
	defer unlock()
	rec, ok := a.reg.Get(userID)
	if !ok || rec.ContainerID != id || rec.State == StateMissing || a.liveOf(userID).exists() {
		return
	}
	rec.State = StateMissing
	if err := a.reg.Put(rec); err != nil {
		a.log.Warn("record missing instance", "user", userID, "err", err)
		return
	}
	a.publish(Event{Type: EventMissing, UserID: userID, ContainerID: id})
}

// learnImageEvents asks the runtime whether it streams image events; when
// it cannot tell, what was known stands. The same answer says whether the
// engine knows instance.ociRuntime (checkOCIRuntime).
func (a *Agent) learnImageEvents(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, seconds(a.conf().CallTimeoutSeconds))
	defer cancel()
	if info, err := a.rt.Info(ctx); err == nil {
		a.imageEvents.Store(info.ImageEvents)
		a.checkOCIRuntime(info)
		if a.cluster != nil {
			a.learnUnenforced(info)
		}
	}
}

// checkOCIRuntime logs an error when the engine, which lists its OCI
// runtimes, lacks instance.ociRuntime: every create would then fail (with
// runtime.UnknownOCIRuntime's error) until it is registered.
func (a *Agent) checkOCIRuntime(info runtime.Info) {
	name := a.conf().Instance.OCIRuntime
	if name == "" || info.OCIRuntimes == nil || slices.Contains(info.OCIRuntimes, name) {
		return
	}
	a.log.Error("the engine has no OCI runtime of instance.ociRuntime: no instance can be created until it is registered with the engine (see the README's Runtimes section)",
		"ociRuntime", name, "engineRuntimes", strings.Join(info.OCIRuntimes, ","))
}
