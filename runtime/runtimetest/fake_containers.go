package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// fakeContainer is one container of the fake. Every field is guarded by
// Fake.mu.
type fakeContainer struct {
	id       string
	seq      int                   // creation order, for List
	given    runtime.ContainerSpec // as passed to Create, Env included
	spec     runtime.ContainerSpec // as an engine reads it back
	imageID  string
	state    runtime.State
	health   string
	exitCode int
	oom      bool
	restarts int
	created  time.Time
	started  time.Time
	finished time.Time
	removed  bool

	logs    []logLine
	logWake chan struct{} // closed and replaced when logs or state change

	sleeping int // exec'd "-exec sleep" and "-exec tree" processes running

	// node and nodeAddr: where a FakeCluster placed it ("" for a plain
	// Fake); lostWithNode: it was running when its node went down.
	node, nodeAddr string
	lostWithNode   bool
}

func (c *fakeContainer) running() bool { return c.state == runtime.StateRunning }

// alive reports whether the container's processes exist: running or
// paused.
func (c *fakeContainer) alive() bool { return c.running() || c.state == runtime.StatePaused }

// Create creates a container in state "created". Its image must be
// present and its network must exist (ErrNotFound otherwise); a taken name
// is ErrAlreadyExists.
func (f *Fake) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := f.begin(ctx, "Create", spec.ValidateOn(f.validationInfo()), spec.Name); err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", fmt.Errorf("create container %q: %w", spec.Name, errDown)
	}
	if _, ok := f.names[spec.Name]; ok {
		return "", fmt.Errorf("create container %q: %w", spec.Name,
			runtime.Errorf(runtime.ErrAlreadyExists, "the container name %q is already in use", spec.Name))
	}
	img, ok := f.images[normalizeImage(spec.Image)]
	if !ok {
		return "", fmt.Errorf("create container %q: %w", spec.Name,
			runtime.Errorf(runtime.ErrNotFound, "no such image %q", spec.Image))
	}
	if !f.hasNetwork(spec.Network) {
		return "", fmt.Errorf("create container %q: %w", spec.Name,
			runtime.Errorf(runtime.ErrNotFound, "network %q not found", spec.Network))
	}
	if spec.OCIRuntime != "" && !slices.Contains(FakeOCIRuntimes, spec.OCIRuntime) {
		return "", fmt.Errorf("create container %q: %w", spec.Name, runtime.UnknownOCIRuntime("fake", spec.OCIRuntime))
	}
	node, err := f.placeLocked(spec)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	addr := ""
	if node != "" {
		addr = f.nodes[node].Addr
	}
	back := readBack(spec)
	f.clearUnenforced(&back)
	f.seq++
	c := &fakeContainer{
		node:     node,
		nodeAddr: addr,
		id:       newID(),
		seq:      f.seq,
		given:    cloneSpec(spec),
		spec:     back,
		imageID:  img,
		state:    runtime.StateCreated,
		created:  f.now(),
		logWake:  make(chan struct{}),
	}
	f.containers[c.id] = c
	f.names[spec.Name] = c.id
	f.emit(c, runtime.EventCreate, 0, "")
	return c.id, nil
}

// Start starts a container; a running one is left alone. Its network must
// still exist.
func (f *Fake) Start(ctx context.Context, ref string) error {
	if err := f.begin(ctx, "Start", runtime.ValidateRef(ref), ref); err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	if c.running() {
		return nil
	}
	if c.state == runtime.StatePaused {
		return fmt.Errorf("start %q: %w", ref, runtime.Errorf(runtime.ErrConflict, "cannot start a paused container, resume it instead"))
	}
	if err := f.nodeUpLocked(c); err != nil {
		return fmt.Errorf("start %q: %w", ref, err)
	}
	if !f.hasNetwork(c.spec.Network) {
		return fmt.Errorf("start %q: %w", ref, runtime.Errorf(runtime.ErrNotFound, "network %q not found", c.spec.Network))
	}
	f.startLocked(c)
	return nil
}

// Stop stops the running (or paused) containers among refs: each exits 0
// at once (events kill, die, stop). Stopped and missing containers are
// skipped.
func (f *Fake) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	return f.batch(ctx, "Stop", refs, func(c *fakeContainer) error {
		if c.alive() {
			f.stopLocked(c)
		}
		return nil
	})
}

// Restart stops the container when it runs (events kill, die, stop), then
// starts it (events start, restart).
func (f *Fake) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	if err := f.begin(ctx, "Restart", runtime.ValidateRef(ref), ref); err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	if err := f.nodeUpLocked(c); err != nil {
		return fmt.Errorf("restart %q: %w", ref, err)
	}
	if c.alive() {
		f.stopLocked(c)
	}
	if !f.hasNetwork(c.spec.Network) {
		return fmt.Errorf("restart %q: %w", ref, runtime.Errorf(runtime.ErrNotFound, "network %q not found", c.spec.Network))
	}
	f.startLocked(c)
	f.emit(c, runtime.EventRestart, 0, "")
	return nil
}

// Pause freezes a running container (event pause); a paused one is left
// alone. ErrConflict when it is not running.
func (f *Fake) Pause(ctx context.Context, ref string) error {
	return f.freeze(ctx, "Pause", ref, runtime.StateRunning, runtime.StatePaused, runtime.EventPause)
}

// Resume thaws a paused container (event unpause); a running one is left
// alone. ErrConflict when it is neither.
func (f *Fake) Resume(ctx context.Context, ref string) error {
	return f.freeze(ctx, "Resume", ref, runtime.StatePaused, runtime.StateRunning, runtime.EventUnpause)
}

// freeze moves a container from state from to state to, emitting action;
// one already in state to is left alone.
func (f *Fake) freeze(ctx context.Context, method, ref string, from, to runtime.State, action runtime.EventAction) error {
	verb := map[string]string{"Pause": "pause", "Resume": "resume"}[method]
	if err := f.begin(ctx, method, runtime.ValidateRef(ref), ref); err != nil {
		return fmt.Errorf("%s %q: %w", verb, ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("%s %q: %w", verb, ref, err)
	}
	if err := f.nodeUpLocked(c); err != nil {
		return fmt.Errorf("%s %q: %w", verb, ref, err)
	}
	switch c.state {
	case to:
		return nil
	case from:
		c.state = to
		c.wakeLogs()
		f.emit(c, action, 0, "")
		return nil
	}
	return fmt.Errorf("%s %q: %w", verb, ref, runtime.Errorf(runtime.ErrConflict, "container %s is %s, not %s", c.spec.Name, c.state, from))
}

// Remove removes the containers among refs. A running container is
// removed only with Force (events kill, die with 137, destroy); without it
// that reference fails with ErrInvalidArgument in a *runtime.BatchError.
// Missing containers are skipped.
func (f *Fake) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	return f.batch(ctx, "Remove", refs, func(c *fakeContainer) error {
		if c.alive() && !opts.Force {
			return runtime.Errorf(runtime.ErrInvalidArgument,
				"container %s is running: stop it before removing it, or force the removal", c.spec.Name)
		}
		f.removeLocked(c)
		return nil
	})
}

// batch runs op on each existing container among refs, collecting the
// failures (op's, and per-reference faults) in a *runtime.BatchError.
func (f *Fake) batch(ctx context.Context, method string, refs []string, op func(*fakeContainer) error) error {
	verb := map[string]string{"Stop": "stop", "Remove": "remove"}[method]
	var verr error
	for _, r := range refs {
		if err := runtime.ValidateRef(r); err != nil {
			verr = err
			break
		}
	}
	if err := f.begin(ctx, method, verr, ""); err != nil {
		return fmt.Errorf("%s %q: %w", verb, refs, err)
	}
	failed := map[string]error{}
	for _, r := range refs {
		if err := f.refFault(ctx, method, r); err != nil {
			failed[r] = fmt.Errorf("%s %q: %w", verb, r, err)
			continue
		}
		f.mu.Lock()
		c, err := f.lookup(r)
		switch {
		case f.down:
			err = errDown
		case runtime.Class(err) == runtime.ErrNotFound:
			err = nil
		case err == nil:
			err = op(c)
		}
		f.mu.Unlock()
		if err != nil {
			failed[r] = fmt.Errorf("%s %q: %w", verb, r, err)
		}
	}
	if len(failed) > 0 {
		return &runtime.BatchError{Failed: failed}
	}
	return nil
}

// Inspect returns one container; ErrNotFound when there is none.
func (f *Fake) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	if err := f.begin(ctx, "Inspect", runtime.ValidateRef(ref), ref); err != nil {
		return runtime.Container{}, fmt.Errorf("inspect %q: %w", ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("inspect %q: %w", ref, err)
	}
	return c.snapshot(), nil
}

// List returns the containers whose labels match, in creation order.
func (f *Fake) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	if err := f.begin(ctx, "List", nil, ""); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listLocked(opts.Labels), nil
}

func (f *Fake) listLocked(labels map[string]string) []runtime.Container {
	var cs []*fakeContainer
	for _, c := range f.containers {
		if matchLabels(c.spec.Labels, labels) {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.snapshot())
	}
	return out
}

// Container returns a container as Inspect would, without counting a call
// or being affected by faults or a down engine.
func (f *Fake) Container(ref string) (runtime.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return runtime.Container{}, false
	}
	return c.snapshot(), true
}

// Containers returns every container, in creation order, as List would,
// without counting a call.
func (f *Fake) Containers() []runtime.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listLocked(nil)
}

// CreatedSpec returns a container's spec exactly as it was passed to
// Create, Env included (which no engine reads back), so that a test can
// check what its caller asked for.
func (f *Fake) CreatedSpec(ref string) (runtime.ContainerSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return runtime.ContainerSpec{}, false
	}
	return cloneSpec(c.given), true
}

func (c *fakeContainer) snapshot() runtime.Container {
	return runtime.Container{
		ID:           c.id,
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      c.imageID,
		State:        c.state,
		Health:       c.health,
		ExitCode:     c.exitCode,
		OOMKilled:    c.oom,
		RestartCount: c.restarts,
		CreatedAt:    c.created,
		StartedAt:    c.started,
		FinishedAt:   c.finished,
		Spec:         cloneSpec(c.spec),
		Node:         c.node,
		NodeAddr:     c.nodeAddr,
	}
}

// startLocked runs a container: state running, a log line, events start
// (and health_status healthy when it has a healthcheck). f.mu must be held.
func (f *Fake) startLocked(c *fakeContainer) {
	c.state = runtime.StateRunning
	c.started = f.now()
	c.exitCode = 0
	c.oom = false
	c.health = ""
	f.logLocked(c, "fake: "+c.spec.Name+" started")
	f.emit(c, runtime.EventStart, 0, "")
	if c.spec.Healthcheck != nil {
		c.health = "healthy"
		f.emit(c, runtime.EventHealth, 0, c.health)
	}
}

// stopLocked stops a running container as the caller asked: events kill,
// die (exit code 0), stop; no restart. f.mu must be held.
func (f *Fake) stopLocked(c *fakeContainer) {
	f.emit(c, runtime.EventKill, 0, "")
	f.exitLocked(c, 0, false)
	f.emit(c, runtime.EventStop, 0, "")
}

// exitLocked records that a running container's process ended and emits
// die. f.mu must be held.
func (f *Fake) exitLocked(c *fakeContainer, code int, oom bool) {
	c.state = runtime.StateExited
	c.exitCode = code
	c.oom = oom
	c.health = ""
	c.finished = f.now()
	c.wakeLogs()
	f.emit(c, runtime.EventDie, code, "")
}

// diedLocked is a death the caller did not ask for: die, then the restart
// policy. f.mu must be held.
func (f *Fake) diedLocked(c *fakeContainer, code int, oom bool) {
	f.exitLocked(c, code, oom)
	if restartWanted(c.spec.Restart, code, c.restarts) {
		c.restarts++
		f.startLocked(c)
	}
}

// restartWanted applies a restart policy to a process that exited with
// code after restarts policy restarts.
func restartWanted(p runtime.RestartPolicy, code, restarts int) bool {
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// removeLocked removes a container, killing it first when it runs (exit
// code 137). f.mu must be held.
func (f *Fake) removeLocked(c *fakeContainer) {
	if c.alive() {
		f.emit(c, runtime.EventKill, 0, "")
		f.exitLocked(c, 137, false)
	}
	c.removed = true
	c.wakeLogs()
	delete(f.containers, c.id)
	delete(f.names, c.spec.Name)
	f.emit(c, runtime.EventDestroy, 0, "")
}
