package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// EnsureOptions tune one ensure.
type EnsureOptions struct {
	// Progress, when set, receives image pull progress while the call waits.
	Progress func(runtime.PullProgress)
	// Force applies a changed spec to a hot instance now, instead of
	// marking it stale until its next cold ensure.
	Force bool
}

// Ensure makes userID's instance exist, run and accept connections on its
// port, and returns it with its Outcome:
//
//   - no container: make sure of the image and the network (each asked
//     of the engine once, then remembered), prepare the data dir and
//     files, pick the user's port (a new user's is reserved with the
//     record, in one durable write after the create), create, start and
//     wait until ready: "created";
//   - a container made from the same effective spec: "reused" when
//     running (no runtime call at all), "resumed" when it was paused by
//     the pause rule of pruning (thawed, answered once its port answers:
//     at once, the gateway never stopped), "started" when it was stopped
//     (its files are not written again);
//   - a container made from another spec, or marked for renewal by the
//     age rule of pruning: kept and marked stale while it is hot (running
//     and used within the hot window; a paused one never is): "reused";
//     otherwise removed and made anew: "recreated". opts.Force treats a hot instance as cold:
//     the change is applied now (a same-spec instance is still reused).
//
// The effective spec includes the ID its image reference resolves to
// (imagePuller's cache, kept fresh by the engine's image events): a tag
// rebuilt or pulled anew is a changed spec.
//
// A user whose data was last found over instance.dataQuota is measured
// again and, while still over, refused (ErrQuotaExceeded; a running
// instance is stopped); a new user is refused while the state dir's file
// system has less free space than minFreeSpace (ErrResourceExhausted).
//
// Calls for one user are serialised; other users proceed in parallel. A
// failure after the container was created removes the container but keeps
// the user's port and data; a start refused because another process holds
// the user's port moves the user to a free port and tries once more.
func (a *Agent) Ensure(ctx context.Context, userID string, spec InstanceSpec, opts EnsureOptions) (Instance, error) {
	start := time.Now()
	in, err := a.ensure(ctx, userID, spec, opts)
	a.metrics.observeEnsure(in.Outcome, err, time.Since(start))
	if err != nil {
		return Instance{}, err
	}
	a.publish(Event{Type: EventEnsured, UserID: userID, ContainerID: in.ContainerID, Image: in.Image, Outcome: in.Outcome})
	return in, nil
}

func (a *Agent) ensure(ctx context.Context, userID string, spec InstanceSpec, opts EnsureOptions) (Instance, error) {
	if err := validateUserID(userID); err != nil {
		return Instance{}, err
	}
	e, err := a.conf().resolve(spec)
	if err != nil {
		return Instance{}, err
	}
	if a.cluster != nil && len(e.Files)+len(e.SeedFiles) > 0 {
		return Instance{}, invalid("files and seedFiles are written into the user's data dir on this host; with a cluster runtime the data dirs live on the nodes, where the agent cannot write files yet: send none (see docs/swarm.md)")
	}

	unlock := a.locks.lock(userID)
	defer unlock()

	if !a.runtimeUp.Load() {
		// Between a lost event stream and the resync that follows its
		// return, events may have been missed (a stop the engine finished
		// after the plugin died): the engine is asked first. When it does
		// not answer either, the live view stands (a hot instance is still
		// served; anything needing the engine fails as unavailable).
		vctx, cancel := context.WithTimeout(ctx, min(seconds(a.conf().CallTimeoutSeconds), 5*time.Second))
		err := a.resyncUser(vctx, userID)
		cancel()
		if err != nil && !unavailable(err) && !errors.Is(err, errdefs.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return Instance{}, err
		}
	}
	for attempt := 0; ; attempt++ {
		in, err := a.ensureLocked(ctx, userID, e, opts)
		if errors.Is(err, errdefs.ErrAlreadyExists) && attempt == 0 {
			// The engine has a container of that name we did not know of:
			// learn it, then decide again.
			if rerr := a.resyncUser(ctx, userID); rerr != nil {
				return Instance{}, rerr
			}
			continue
		}
		return in, err
	}
}

func (a *Agent) ensureLocked(ctx context.Context, userID string, e effectiveSpec, opts EnsureOptions) (Instance, error) {
	nowMs := a.now().UnixMilli()
	rec, hasRec := a.reg.Get(userID)
	ls := a.liveOf(userID)
	// The container user is part of the spec: a user with no uid of its
	// own yet (one whose instance runs as a fixed user) has another spec,
	// and gets its uid when its instance is made anew.
	e.User = a.knownUser(userID)

	// A user whose data was found over its quota is not run (one atomic
	// load for everyone else).
	if err := a.checkQuota(ctx, userID); err != nil {
		return Instance{}, err
	}
	// With a cluster runtime, a user whose node is not ready is refused
	// (nil check only for a local runtime).
	if a.cluster != nil {
		if err := a.checkNode(ctx, userID, ls); err != nil {
			return Instance{}, err
		}
	}
	if ls.exists() {
		// An existing instance: its data dir's mode again (one lstat when
		// it is right; create sets it with the owner).
		a.fixUserDirMode(userID)
		if !hasRec || rec.ContainerID != ls.ID {
			// A container the registry does not know (yet): adopt it first.
			var err error
			if rec, err = a.adopt(userID, ls, rec, hasRec); err != nil {
				return Instance{}, err
			}
			hasRec = true
		}
		// Force treats a hot instance as cold: a change is applied now.
		hot := !opts.Force && ls.running() && time.Duration(nowMs-rec.LastUsedAtMs)*time.Millisecond < minutes(a.conf().Hot.WindowMinutes)
		// A paused instance resolves its image as a hot one does (from
		// the cache, with no engine call), so that a resume costs the
		// unpause and one probe; a change the cache did not know of yet
		// is seen at the next ensure.
		warm := hot || ls.paused()
		// What the image reference resolves to now is part of the spec
		// (hash version 2). It comes from the image cache, which costs a
		// reused ensure no engine call once known; when it is not known
		// and the engine cannot tell (down, or the image gone), the
		// container's own image stands: no sign of a change. A runtime
		// that streams no image events cannot tell of a tag rebuilt
		// behind the agent's back: a cold ensure asks it anew.
		if !warm && !a.imageEvents.Load() {
			a.images.forget(e.Image)
		}
		e.ImageID = a.resolvedImage(ctx, e.Image, ls.ImageID, warm)
		want := a.hash.current(e)
		// A container labelled with hash version 1, which does not cover
		// the image's ID, is compared with the image itself.
		same := a.hash.matches(rec.ConfigHash, want, e) && (ls.ImageID == "" || ls.ImageID == e.ImageID)
		if same && (!rec.Renew || hot) {
			if rec.DesiredHash != "" {
				rec.DesiredHash = ""
				rec.LastUsedAtMs = nowMs
				if err := a.reg.Put(rec); err != nil {
					return Instance{}, fmt.Errorf("record instance: %w", err)
				}
			} else {
				a.reg.Touch(userID, nowMs)
			}
			if ls.running() {
				in := a.instance(a.mustGet(userID, rec))
				in.Outcome = OutcomeReused
				return in, nil
			}
			if ls.paused() {
				return a.resume(ctx, rec, e, opts)
			}
			return a.startStopped(ctx, rec, e, opts)
		}
		if hot {
			rec.LastUsedAtMs = nowMs
			if rec.DesiredHash != want {
				rec.DesiredHash = want
				if err := a.reg.Put(rec); err != nil {
					return Instance{}, fmt.Errorf("record instance: %w", err)
				}
			} else {
				a.reg.Touch(userID, nowMs)
			}
			in := a.instance(a.mustGet(userID, rec))
			in.Outcome = OutcomeReused
			return in, nil
		}
		// Cold, with another config or past its age (Renew): make it
		// anew. The image comes first (asked of the engine, not
		// remembered) and the data dir is checked, so that an image that
		// cannot be had, or files that cannot be written, leave the old
		// container alone.
		a.images.forget(e.Image)
		if _, err := a.images.ensure(ctx, e.Image, opts.Progress); err != nil {
			return Instance{}, err
		}
		if err := a.checkUserDataDir(userID, e); err != nil {
			return Instance{}, err
		}
		if err := a.removeContainer(ctx, userID, ls.ID); err != nil {
			return Instance{}, fmt.Errorf("remove the outdated container of user %q: %w", userID, err)
		}
		return a.create(ctx, userID, e, OutcomeRecreated, opts)
	}
	if !hasRec {
		// A new instance needs room the host may not have: refused under
		// the free-space floor (an existing one, even one whose container
		// is missing, is made again).
		if err := a.checkFreeSpace(); err != nil {
			return Instance{}, err
		}
	}
	return a.create(ctx, userID, e, OutcomeCreated, opts)
}

// resolvedImage returns what ref resolves to: from the image cache, else
// (or when the cached ID waits to be resolved again after an image event)
// asked of the engine while it is up, unless the instance is hot; the
// container's image (have) when neither tells.
func (a *Agent) resolvedImage(ctx context.Context, ref, have string, hot bool) string {
	id, known := a.images.idsView()[ref]
	if known && (hot || !a.images.due(ref)) {
		return cmp.Or(id, have)
	}
	if hot || !a.runtimeUp.Load() {
		// A hot instance is served without the engine, whatever the
		// answer would be (it could only mark the instance stale): the
		// reference is resolved in the background for the next ensure.
		if !known {
			a.images.resolveLater(ref)
		}
		return cmp.Or(id, have)
	}
	got, err := a.images.lookup(ctx, ref)
	if err != nil {
		a.log.Debug("resolve image", "image", ref, "err", err)
		return cmp.Or(id, have)
	}
	return cmp.Or(got, have)
}

// mustGet re-reads a record just written, falling back to rec.
func (a *Agent) mustGet(userID string, rec registry.Record) registry.Record {
	if r, ok := a.reg.Get(userID); ok {
		return r
	}
	return rec
}

// create makes, starts and waits for a new container for userID. Its
// config hash covers the ID its image reference resolves to now.
func (a *Agent) create(ctx context.Context, userID string, e effectiveSpec, outcome string, opts EnsureOptions) (Instance, error) {
	// Runtime first: while the engine is down nothing is written.
	id, err := a.images.ensure(ctx, e.Image, opts.Progress)
	if err != nil {
		return Instance{}, err
	}
	e.ImageID = id
	if err := a.ensureNetwork(ctx); err != nil {
		return Instance{}, err
	}
	// With a cluster runtime, the user's node: pinned now (durably) at its
	// first create, once the runtime has answered with its nodes.
	node := ""
	if a.cluster != nil {
		if node, err = a.pinNode(ctx, userID); err != nil {
			return Instance{}, err
		}
	}
	// The user's uid (reserved now for a user with none), which owns the
	// data dir and which the container runs as. Reserving one is a
	// registry write: only once the engine has answered (the image and
	// the network may have come from memory), so that an ensure while it
	// is down writes nothing. The engine is asked for the image's ID, its
	// cheapest question (docker: `image inspect`, a third of `info`'s
	// time on a busy host), straight, not from the cache.
	if _, has := a.reg.UID(userID); !has && !a.conf().Instance.fixedUser() {
		if _, err := a.rt.ImageID(ctx, e.Image); err != nil {
			return Instance{}, err
		}
	}
	uid, gid, err := a.tenantUser(userID)
	if err != nil {
		return Instance{}, err
	}
	e.User = a.knownUser(userID)
	hash := a.hash.current(e)
	var dir string
	if node != "" {
		dir, err = a.prepareNodeDir(ctx, node, userID, e, uid, gid)
	} else {
		dir, err = a.prepareDataDir(userID, e, uid, gid)
	}
	if err != nil {
		return Instance{}, err
	}
	for moved := false; ; moved = true {
		in, err := a.createOnce(ctx, userID, e, hash, dir, node, opts)
		if err == nil {
			in.Outcome = outcome
			return in, nil
		}
		if moved || !portTaken(err) {
			return Instance{}, err
		}
		// The failed start removed the container; port and data are kept.
		if err := a.movePort(userID, err); err != nil {
			return Instance{}, err
		}
	}
}

// createOnce creates and starts userID's container on the user's port (a
// new user's is held in memory and reserved by the record's Put below:
// see portHolds), on node with a cluster runtime, and waits until it is
// ready.
func (a *Agent) createOnce(ctx context.Context, userID string, e effectiveSpec, hash, dir, node string, opts EnsureOptions) (Instance, error) {
	ic := &a.conf().Instance
	lo, hi, _ := ic.Ports()
	port, releasePort, err := a.ports.pick(a.reg, userID, lo, hi, a.usablePort(ic))
	if err != nil {
		return Instance{}, err
	}
	defer releasePort()
	now := a.now()
	spec := a.containerSpec(userID, e, hash, port, now.UnixMilli(), dir, node)

	id, err := a.createContainer(ctx, spec, opts)
	if err != nil {
		return Instance{}, fmt.Errorf("create container for user %q: %w", userID, err)
	}
	rec := registry.Record{
		UserID:        userID,
		ContainerName: spec.Name,
		ContainerID:   id,
		Image:         e.Image,
		Port:          port,
		UID:           a.recordUID(userID),
		ConfigHash:    hash,
		HashVersion:   hashVersion,
		State:         StateStopped,
		Labels:        e.Labels,
		CreatedAtMs:   now.UnixMilli(),
		LastUsedAtMs:  now.UnixMilli(),
	}
	a.containerImages.Store(id, e.ImageID)
	a.setLive(userID, liveState{ID: id, Name: spec.Name, Image: e.Image, ImageID: e.ImageID, State: runtime.StateCreated,
		Hash: hash, Port: port, CreatedAtMs: rec.CreatedAtMs, Node: node, NodeAddr: a.nodeAddr(node)})
	if err := a.reg.Put(rec); err != nil {
		note := a.cleanup(userID, id)
		return Instance{}, fmt.Errorf("record instance of user %q: %w (%s)", userID, err, note)
	}
	if err := a.startAndWait(ctx, rec); err != nil {
		return Instance{}, err
	}
	return a.instance(a.mustGet(userID, rec)), nil
}

// movePort moves userID, whose start failed with cause because another
// process holds its port on the host, to a new port, and tells.
func (a *Agent) movePort(userID string, cause error) error {
	old, ok := a.reg.Port(userID)
	if !ok {
		return cause // a new user's port was only held: it was never the user's
	}
	ic := &a.conf().Instance
	lo, hi, _ := ic.Ports()
	port, err := a.ports.move(a.reg, userID, old, lo, hi, a.usablePort(ic))
	if err != nil {
		return fmt.Errorf("%w (after: %v)", err, cause)
	}
	a.log.Warn("port taken on the host: user moved to a new port", "user", userID, "oldPort", old, "port", port)
	a.publish(Event{Type: EventPortChanged, UserID: userID, OldPort: old, Port: port,
		Message: "port taken on the host"})
	return nil
}

// createContainer creates spec's container. A create that finds its image
// or its network missing (both are remembered as present: someone removed
// one behind the agent's back) makes sure of both again, pulling the image
// when it is gone, and tries once more.
func (a *Agent) createContainer(ctx context.Context, spec runtime.ContainerSpec, opts EnsureOptions) (string, error) {
	create := func() (string, error) {
		release, err := a.acquire(ctx)
		if err != nil {
			return "", err
		}
		defer release()
		return a.rt.Create(ctx, spec)
	}
	id, err := create()
	if !errors.Is(err, errdefs.ErrNotFound) {
		return id, err
	}
	a.images.forget(spec.Image)
	a.netDone.Store(false)
	if _, err := a.images.ensure(ctx, spec.Image, opts.Progress); err != nil {
		return "", err
	}
	if err := a.ensureNetwork(ctx); err != nil {
		return "", err
	}
	return create()
}

// startStopped starts an existing stopped container. Its files are left
// as they are: the instance may have changed them, and the managed ones
// are written at every create. When its port is taken on the host, the
// user moves to a new port and the container is made anew on it.
func (a *Agent) startStopped(ctx context.Context, rec registry.Record, e effectiveSpec, opts EnsureOptions) (Instance, error) {
	if err := a.startAndWait(ctx, rec); err != nil {
		if !portTaken(err) {
			return Instance{}, err
		}
		if _, ok := a.reg.Get(rec.UserID); ok {
			return Instance{}, err // the container could not be removed
		}
		if err := a.movePort(rec.UserID, err); err != nil {
			return Instance{}, err
		}
		return a.create(ctx, rec.UserID, e, OutcomeRecreated, opts)
	}
	in := a.instance(a.mustGet(rec.UserID, rec))
	in.Outcome = OutcomeStarted
	return in, nil
}

// resume thaws rec's paused container and waits until its port answers;
// one stopped meanwhile is started instead ("started").
func (a *Agent) resume(ctx context.Context, rec registry.Record, e effectiveSpec, opts EnsureOptions) (Instance, error) {
	thawed, err := a.thaw(ctx, rec)
	if err != nil {
		return Instance{}, err
	}
	if !thawed {
		return a.startStopped(ctx, rec, e, opts)
	}
	in := a.instance(a.mustGet(rec.UserID, rec))
	in.Outcome = OutcomeResumed
	return in, nil
}

// thaw resumes rec's paused container and waits until its port answers
// (the gateway never stopped: the first probe answers, as a rule).
// thawed is false, with no error, when the container was neither paused
// nor running any more (stopped behind the agent's back). A thawed
// instance that does not answer is left running, not removed: its
// process was there all along.
func (a *Agent) thaw(ctx context.Context, rec registry.Record) (thawed bool, err error) {
	release, err := a.acquire(ctx)
	if err != nil {
		return false, err
	}
	err = a.rt.Resume(ctx, rec.ContainerID)
	release()
	if errors.Is(err, errdefs.ErrConflict) {
		a.markState(rec.UserID, rec.ContainerID, runtime.StateExited, "")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resume container of user %q: %w", rec.UserID, err)
	}
	a.markState(rec.UserID, rec.ContainerID, runtime.StateRunning, runtime.EventUnpause)
	a.publish(Event{Type: EventResumed, UserID: rec.UserID, ContainerID: rec.ContainerID})
	if err := a.waitReady(ctx, rec); err != nil {
		return false, fmt.Errorf("instance of user %q, resumed: %w", rec.UserID, err)
	}
	return true, nil
}

// startAndWait starts rec's container and waits until its port accepts
// connections. On failure the container is removed (port and data kept),
// unless the runtime itself is unavailable.
func (a *Agent) startAndWait(ctx context.Context, rec registry.Record) error {
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	err = a.rt.Start(ctx, rec.ContainerID)
	release()
	err = a.nodeUnavailable(ctx, rec.UserID, err)
	if err != nil {
		if !unavailable(err) && !errors.Is(err, errdefs.ErrNodeUnavailable) {
			note := a.cleanup(rec.UserID, rec.ContainerID)
			return fmt.Errorf("start container of user %q: %w (%s; port %d and data kept)", rec.UserID, err, note, rec.Port)
		}
		return fmt.Errorf("start container of user %q: %w", rec.UserID, err)
	}
	a.markState(rec.UserID, rec.ContainerID, runtime.StateRunning, runtime.EventStart)
	if err := a.waitReady(ctx, rec); err != nil {
		if !unavailable(err) {
			note := a.cleanup(rec.UserID, rec.ContainerID)
			return fmt.Errorf("instance of user %q: %w (%s; port %d and data kept)", rec.UserID, err, note, rec.Port)
		}
		return fmt.Errorf("instance of user %q: %w", rec.UserID, err)
	}
	return nil
}

// cleanup removes a container that failed half-way, with the record that
// names it; the port reservation and the data dir stay. When the engine
// does not remove it (a hung or vanished engine), the container, its live
// state and its record are kept, so that no labelled container is left
// without an entry: the next ensure starts it again. It returns what it
// did, for the caller's error.
func (a *Agent) cleanup(userID, id string) (note string) {
	ctx, cancel := context.WithTimeout(a.bg, seconds(a.conf().CallTimeoutSeconds))
	defer cancel()
	if err := a.rt.Remove(ctx, []string{id}, runtime.RemoveOptions{Force: true}); err != nil {
		a.log.Warn("remove failed container", "user", userID, "container", id, "err", err)
		return fmt.Sprintf("removing the container failed too, so it is kept: %v", err)
	}
	a.dropLive(userID, id)
	if rec, ok := a.reg.Get(userID); ok && rec.ContainerID == id {
		if err := a.reg.Delete(userID); err != nil {
			a.log.Warn("delete registry entry", "user", userID, "err", err)
		}
	}
	return "container removed"
}

// removeContainer removes userID's container (force) and forgets it.
func (a *Agent) removeContainer(ctx context.Context, userID, id string) error {
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := a.rt.Remove(ctx, []string{id}, runtime.RemoveOptions{Force: true}); err != nil {
		return err
	}
	a.dropLive(userID, id)
	return nil
}

// acquire takes a slot of the engine operation bound.
func (a *Agent) acquire(ctx context.Context) (release func(), err error) {
	select {
	case a.engine <- struct{}{}:
		return func() { <-a.engine }, nil
	case <-ctx.Done():
		return nil, errdefs.Errorf(errdefs.ErrTimeout, "waiting for an engine slot: %v", ctx.Err())
	}
}

// ensureNetwork makes sure the instance network exists (once per agent,
// again after it was found missing).
func (a *Agent) ensureNetwork(ctx context.Context) error {
	if a.netDone.Load() {
		return nil
	}
	// One at a time: the engine makes two networks of one name when two
	// creates race (the first reconciliation runs beside the first
	// calls), and then refuses to start containers on either.
	a.netMu.Lock()
	defer a.netMu.Unlock()
	if a.netDone.Load() {
		return nil
	}
	err := a.rt.EnsureNetwork(ctx, runtime.NetworkSpec{
		Name:       a.conf().Instance.Network,
		DisableICC: true,
		Labels:     map[string]string{a.conf().Instance.LabelPrefix + ".network": "1"},
	})
	if err != nil {
		return fmt.Errorf("ensure network %q: %w", a.conf().Instance.Network, err)
	}
	a.netDone.Store(true)
	return nil
}
