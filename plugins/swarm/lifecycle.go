package swarm

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// waitPoll is how often the lifecycle calls look at the tasks while they
// wait for them.
const waitPoll = 200 * time.Millisecond

// pendingGrace is how long a task may stay pending with the scheduler's
// complaint (no node fits: the pinned node is down, say) before Start
// gives up.
const pendingGrace = 5 * time.Second

// Create makes the service of spec at 0 replicas and returns its ID. A
// name taken is ErrAlreadyExists.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := spec.ValidateOn(info()); err != nil {
		return "", err
	}
	svc, err := toService(spec)
	if err != nil {
		return "", err
	}
	if id, err := r.ImageID(ctx, spec.Image); err == nil && id != "" {
		svc.Labels[labelImageID] = id
	}
	created, err := r.api.CreateService(ctx, svc)
	if runtime.Class(err) == runtime.ErrConflict {
		return "", runtime.Errorf(runtime.ErrAlreadyExists, "container %q already exists", spec.Name)
	}
	if err != nil {
		return "", wrap(err, "create "+spec.Name)
	}
	for _, w := range created.Warnings {
		r.log.Warn("service created with a warning", "name", spec.Name, "warning", w)
	}
	return created.ID, nil
}

// Start scales the service to 1 replica (bumping ForceUpdate, see below)
// and returns once its task's container runs (task state starting or running: its health check may
// still be pending). A container that ended and is not restarted by its
// policy is started again with a new task. A task the swarm cannot run
// (rejected by its node, or no node fits for pendingGrace) is
// ErrUnavailable with the swarm's reason, and the service is scaled back
// to 0.
func (r *Runtime) Start(ctx context.Context, ref string) error {
	s, err := r.service(ctx, ref)
	if err != nil {
		return err
	}
	ts, err := r.tasks(ctx, s.ID)
	if err != nil {
		return err
	}
	c := container(s, ts[s.ID], nil)
	switch {
	case c.State == runtime.StateRunning:
		return nil
	case c.State == runtime.StateRestarting:
		before := map[string]bool{}
		for _, t := range ts[s.ID] {
			if final(t.Status.State) {
				before[t.ID] = true
			}
		}
		return r.waitStarted(ctx, s.ID, ref, before)
	}
	// ForceUpdate too, always: a task that ended for good (replicas 1)
	// is replaced only so, and after a Stop the old task lingers in state
	// shutdown, desired remove, for a minute or more, while the swarm
	// counts its slot as taken: scaling to 1 alone makes no task until
	// it is gone (seen on 20.10).
	return r.newTask(ctx, ref, s.ID, ts[s.ID])
}

// newTask scales service id (ref) to 1 replica with its ForceUpdate
// bumped, so that the swarm makes a new task whatever the old ones (ts)
// are doing, and returns once the new task's container runs.
func (r *Runtime) newTask(ctx context.Context, ref, id string, ts []engineapi.Task) error {
	before := map[string]bool{}
	for _, t := range ts {
		before[t.ID] = true
	}
	if _, err := r.update(ctx, ref, func(s *engineapi.Service) bool {
		s.Spec.Mode.Replicated = &engineapi.ReplicatedService{Replicas: 1}
		s.Spec.TaskTemplate.ForceUpdate++
		s.Spec.Labels[labelStarted] = now()
		delete(s.Spec.Labels, labelStopped)
		return true
	}); err != nil {
		return err
	}
	return r.waitStarted(ctx, id, ref, before)
}

// waitStarted waits for a task of service id that is not in before to
// run (or to have run); see Start.
func (r *Runtime) waitStarted(ctx context.Context, id, ref string, before map[string]bool) error {
	var pendingSince time.Time
	for {
		ts, err := r.api.Tasks(ctx, engineapi.Filters{"service": {id}})
		if err != nil {
			return wrap(err, "start "+ref)
		}
		var fresh []engineapi.Task
		stopping := false // a task being replaced (a restart) still holds its host ports
		for _, t := range ts {
			if !before[t.ID] {
				fresh = append(fresh, t)
			} else if !final(t.Status.State) {
				stopping = true
			}
		}
		if t := newest(fresh); t != nil {
			switch {
			case up(*t), final(t.Status.State) && ran(*t):
				return nil
			case final(t.Status.State):
				return r.startFailed(ctx, ref, "the swarm could not run its task ("+string(t.Status.State)+"): "+taskErr(*t))
			case t.Status.State == engineapi.TaskPending && t.Status.Err != "" &&
				!(stopping && strings.Contains(t.Status.Err, "host-mode port already in use")):
				// The scheduler's complaint; not the port its own old
				// task holds until it has stopped (a gateway's stop may
				// take its whole grace period).
				if pendingSince.IsZero() {
					pendingSince = time.Now()
				} else if time.Since(pendingSince) > pendingGrace {
					return r.startFailed(ctx, ref, "no node can run it: "+t.Status.Err)
				}
			default:
				pendingSince = time.Time{}
			}
		}
		if err := sleep(ctx, waitPoll); err != nil {
			return wrap(err, "start "+ref)
		}
	}
}

// ran reports whether an ended task's container ran: a container that
// was made but failed to start (a port taken on the node, say) did not.
func ran(t engineapi.Task) bool {
	return started(t) && !strings.HasPrefix(t.Status.Err, "starting container failed")
}

// taskErr is what a task says of its failure.
func taskErr(t engineapi.Task) string {
	if t.Status.Err != "" {
		return t.Status.Err
	}
	return t.Status.Message
}

// startFailed scales the service of ref back to 0 (so that the swarm does
// not retry for ever) and returns the start's error.
func (r *Runtime) startFailed(ctx context.Context, ref, reason string) error {
	if _, err := r.update(ctx, ref, func(s *engineapi.Service) bool {
		s.Spec.Mode.Replicated = &engineapi.ReplicatedService{Replicas: 0}
		s.Spec.Labels[labelStopped] = now()
		return true
	}); err != nil {
		r.log.Warn("scale back a service that did not start", "ref", ref, "err", err)
	}
	return runtime.Errorf(runtime.ErrUnavailable, "start %s: %s", ref, reason)
}

// Stop scales the services to 0 and returns once their tasks have
// stopped. The swarm stops a task with its service's own grace period
// (ContainerSpec.StopTimeout, the engine's 10 s when unset): timeout is
// not used, since changing the period would change the spec read back.
// Scaling to 0 removes the tasks; the stop time is kept in a label.
func (r *Runtime) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	if err := runtime.ValidateRefs(refs); err != nil {
		return err
	}
	failed := map[string]error{}
	waiting := map[string]string{} // service ID -> ref
	for _, ref := range refs {
		s, err := r.update(ctx, ref, func(s *engineapi.Service) bool {
			if replicas(*s) == 0 {
				return false
			}
			s.Spec.Mode.Replicated = &engineapi.ReplicatedService{Replicas: 0}
			s.Spec.Labels[labelStopped] = now()
			return true
		})
		switch {
		case runtime.Class(err) == runtime.ErrNotFound:
		case err != nil:
			failed[ref] = err
		default:
			waiting[s.ID] = ref
		}
	}
	if err := r.waitGone(ctx, waiting); err != nil {
		for _, ref := range waiting {
			failed[ref] = wrap(err, "stop "+ref)
		}
	}
	return batch(failed)
}

// waitGone waits until no task of the services in ids (ID -> ref) runs
// or is about to; it returns ctx's error when it ends first.
func (r *Runtime) waitGone(ctx context.Context, ids map[string]string) error {
	for len(ids) > 0 {
		ts, err := r.tasks(ctx, sortedKeys(ids)...)
		if err != nil {
			return err
		}
		for id := range ids {
			busy := false
			for _, t := range ts[id] {
				busy = busy || !final(t.Status.State)
			}
			if !busy {
				delete(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		if err := sleep(ctx, waitPoll); err != nil {
			return err
		}
	}
	return nil
}

// Restart starts a stopped service; a running one gets new tasks (its
// ForceUpdate bumped: the swarm stops the old task, with the service's
// grace period, then starts a new one). It returns once the new task's
// container runs.
func (r *Runtime) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	s, err := r.service(ctx, ref)
	if err != nil {
		return err
	}
	if replicas(s) == 0 {
		return r.Start(ctx, ref)
	}
	ts, err := r.tasks(ctx, s.ID)
	if err != nil {
		return err
	}
	return r.newTask(ctx, ref, s.ID, ts[s.ID])
}

// Remove removes the services (force: running ones too). A running one
// is first scaled to 0 and waited for, as Stop does, so that its port is
// free when Remove returns (the engine removes a service's containers
// after it answered) and the tasks can still be looked up: the engine
// refuses a task filter naming a service that is gone. A running one
// without force is ErrConflict.
func (r *Runtime) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	if err := runtime.ValidateRefs(refs); err != nil {
		return err
	}
	failed := map[string]error{}
	remove := map[string]string{} // service ID -> ref
	for _, ref := range refs {
		s, err := r.service(ctx, ref)
		if runtime.Class(err) == runtime.ErrNotFound {
			continue
		}
		if err != nil {
			failed[ref] = err
			continue
		}
		ts, err := r.tasks(ctx, s.ID)
		if err != nil {
			failed[ref] = err
			continue
		}
		if !opts.Force && container(s, ts[s.ID], nil).Running() {
			failed[ref] = runtime.Errorf(runtime.ErrConflict, "container %q is running: stop it first, or remove it with force", ref)
			continue
		}
		if replicas(s) > 0 {
			if _, err := r.update(ctx, ref, func(s *engineapi.Service) bool {
				s.Spec.Mode.Replicated = &engineapi.ReplicatedService{Replicas: 0}
				return true
			}); err != nil && runtime.Class(err) != runtime.ErrNotFound {
				failed[ref] = err
				continue
			}
		}
		remove[s.ID] = ref
	}
	if err := r.waitGone(ctx, maps.Clone(remove)); err != nil {
		for _, ref := range remove {
			failed[ref] = wrap(err, "remove "+ref+": wait for its task to stop")
		}
		return batch(failed)
	}
	for id, ref := range remove {
		if err := r.api.RemoveService(ctx, id); err != nil && runtime.Class(err) != runtime.ErrNotFound {
			failed[ref] = wrap(err, "remove "+ref)
		}
	}
	return batch(failed)
}

// batch returns the *runtime.BatchError of failed, nil when empty.
func batch(failed map[string]error) error {
	if len(failed) == 0 {
		return nil
	}
	return &runtime.BatchError{Failed: failed}
}

// sortedKeys returns m's keys, sorted.
func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// errNoPause is why Pause and Resume fail.
const errNoPause = "the swarm runtime cannot pause a container: a swarm service has no pause (stop it instead; leave prune.idlePauseMinutes at 0 with this runtime)"

// Pause is ErrConflict for a container that exists: a swarm service
// cannot be paused (see errNoPause); ErrNotFound when there is none.
func (r *Runtime) Pause(ctx context.Context, ref string) error {
	if _, err := r.service(ctx, ref); err != nil {
		return err
	}
	return runtime.Errorf(runtime.ErrConflict, "pause %s: %s", ref, errNoPause)
}

// Resume is ErrConflict for a container that exists, as Pause;
// ErrNotFound when there is none.
func (r *Runtime) Resume(ctx context.Context, ref string) error {
	if _, err := r.service(ctx, ref); err != nil {
		return err
	}
	return runtime.Errorf(runtime.ErrConflict, "resume %s: %s", ref, errNoPause)
}

// Exec is ErrConflict for a container that exists: its task runs on a
// node whose engine the manager's API does not reach (the swarm has no
// exec). ErrNotFound when there is no such container, ErrInvalidArgument
// for bad options.
func (r *Runtime) Exec(ctx context.Context, ref string, opts runtime.ExecOptions) (runtime.ExecResult, error) {
	if err := opts.Validate(); err != nil {
		return runtime.ExecResult{}, err
	}
	c, err := r.Inspect(ctx, ref)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if !c.Running() {
		return runtime.ExecResult{}, runtime.Errorf(runtime.ErrConflict, "exec in %s: container is not running", ref)
	}
	return runtime.ExecResult{}, runtime.Errorf(runtime.ErrConflict,
		"exec in %s: the swarm runtime cannot exec: the container runs on node %s, whose engine the swarm manager's API does not reach", ref, c.Node)
}
