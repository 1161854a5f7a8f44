package swarm

import (
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// replicas returns a service's desired task count (0 or 1 for ours).
func replicas(s engineapi.Service) uint64 {
	if r := s.Spec.Mode.Replicated; r != nil {
		return r.Replicas
	}
	return 0
}

// final reports whether a task has ended for good (it never runs again:
// the swarm makes a new task instead).
func final(st engineapi.TaskState) bool {
	switch st {
	case engineapi.TaskComplete, engineapi.TaskShutdown, engineapi.TaskFailed, engineapi.TaskRejected,
		engineapi.TaskRemove, engineapi.TaskOrphaned:
		return true
	}
	return false
}

// up reports whether a task's container runs: "starting" is a container
// that runs while its health check has not passed yet.
func up(t engineapi.Task) bool {
	return t.Status.State == engineapi.TaskRunning || t.Status.State == engineapi.TaskStarting
}

// started reports whether a task got as far as a container.
func started(t engineapi.Task) bool {
	return t.Status.ContainerStatus != nil && t.Status.ContainerStatus.ContainerID != ""
}

// newest returns the most recently created of tasks, nil when none.
func newest(tasks []engineapi.Task) *engineapi.Task {
	var n *engineapi.Task
	for i := range tasks {
		if n == nil || tasks[i].CreatedAt.After(n.CreatedAt) {
			n = &tasks[i]
		}
	}
	return n
}

// nodeInfo is what a container reads of its node.
type nodeInfo struct{ name, addr string }

// container reads a service, its tasks and the swarm's nodes (by node
// ID) as the container it stands for.
//
// A service at 1 replica is running while its newest task's container
// runs (task states starting and running), restarting while the swarm
// brings a task up or replaces one that ended, and exited once a task
// ended that its restart policy does not replace. At 0 replicas it is
// exited once it has been stopped (labelStopped: scaling to 0 removes
// the tasks, their exit codes with them) and created before. StartedAt
// and FinishedAt come from the labels Start and Stop set, or from the
// newest task where it says more.
func container(s engineapi.Service, tasks []engineapi.Task, nodes map[string]nodeInfo) runtime.Container {
	spec := fromService(s)
	c := runtime.Container{
		ID:        s.ID,
		Name:      spec.Name,
		Image:     spec.Image,
		ImageID:   s.Spec.Labels[labelImageID],
		CreatedAt: s.CreatedAt,
		Spec:      spec,
	}
	c.StartedAt = labelTime(s.Spec.Labels[labelStarted])
	stoppedAt := labelTime(s.Spec.Labels[labelStopped])
	for _, t := range tasks {
		if t.Status.State == engineapi.TaskFailed && started(t) {
			c.RestartCount++
		}
	}
	t := newest(tasks)
	if t != nil {
		if n, ok := nodes[t.NodeID]; ok {
			c.Node, c.NodeAddr = n.name, n.addr
		}
		if started(*t) && t.CreatedAt.After(c.StartedAt) {
			c.StartedAt = t.CreatedAt
		}
	}
	if c.Node == "" && spec.Placement.Node != "" {
		c.Node = spec.Placement.Node
		for _, n := range nodes {
			if n.name == c.Node {
				c.NodeAddr = n.addr
			}
		}
	}
	c.State, c.Health = state(replicas(s), s.Spec.TaskTemplate.RestartPolicy, t, c.RestartCount, !stoppedAt.IsZero())
	if c.State == runtime.StateRunning && spec.Healthcheck == nil {
		c.Health = ""
	}
	switch {
	case t != nil && final(t.Status.State):
		if t.Status.ContainerStatus != nil {
			c.ExitCode = t.Status.ContainerStatus.ExitCode
		}
		c.FinishedAt = t.Status.Timestamp
	case c.State == runtime.StateExited:
		c.FinishedAt = stoppedAt
	}
	if c.State == runtime.StateCreated {
		c.StartedAt, c.FinishedAt = time.Time{}, time.Time{}
	}
	return c
}

// state is the container state (and health) of a service at replicas
// whose newest task is t (nil: none), with policy its restart policy,
// failures its failed tasks still in the swarm's history and stopped set
// once Stop scaled it to 0.
func state(replicas uint64, policy *engineapi.RestartPolicy, t *engineapi.Task, failures int, stopped bool) (runtime.State, string) {
	switch {
	case t != nil && t.Status.State == engineapi.TaskRunning:
		return runtime.StateRunning, "healthy"
	case t != nil && t.Status.State == engineapi.TaskStarting:
		return runtime.StateRunning, "starting"
	case replicas == 0 && (stopped || t != nil):
		return runtime.StateExited, ""
	case replicas == 0:
		return runtime.StateCreated, ""
	case t == nil || !final(t.Status.State):
		return runtime.StateRestarting, "" // scheduled, or being brought up
	case restarts(policy, t, failures):
		return runtime.StateRestarting, ""
	}
	return runtime.StateExited, ""
}

// restarts reports whether the swarm replaces the ended task t under
// policy, failures failed tasks on. The count is what the swarm keeps of
// its history (5 tasks by default), so a long crash loop under a bound
// above it reads as restarting until the swarm gives up.
func restarts(policy *engineapi.RestartPolicy, t *engineapi.Task, failures int) bool {
	if policy == nil {
		return true // "any", the engine's default
	}
	switch policy.Condition {
	case "none":
		return false
	case "on-failure":
		failed := t.Status.State == engineapi.TaskFailed || t.Status.State == engineapi.TaskRejected
		return failed && (policy.MaxAttempts == 0 || uint64(failures) <= policy.MaxAttempts)
	}
	return true
}

// labelTime parses a time label, zero when absent or broken.
func labelTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
