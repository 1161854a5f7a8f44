package swarm

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// task is a task in state st, made at created, with a container when
// exit >= 0 (its exit code).
func task(id string, st engineapi.TaskState, created time.Time, exit int) engineapi.Task {
	t := engineapi.Task{ID: id, ServiceID: "svc", NodeID: "node2", CreatedAt: created, DesiredState: engineapi.TaskRunning}
	t.Status.State = st
	t.Status.Timestamp = created.Add(time.Second)
	if exit >= 0 {
		t.Status.ContainerStatus = &engineapi.ContainerStatus{ContainerID: "c-" + id, ExitCode: exit}
	}
	return t
}

func TestState(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	onFailure := &engineapi.RestartPolicy{Condition: "on-failure", MaxAttempts: 2}
	none := &engineapi.RestartPolicy{Condition: "none"}
	anyPolicy := &engineapi.RestartPolicy{Condition: "any"}
	ptr := func(t engineapi.Task) *engineapi.Task { return &t }
	for _, tc := range []struct {
		name     string
		replicas uint64
		policy   *engineapi.RestartPolicy
		task     *engineapi.Task
		failures int
		stopped  bool
		want     runtime.State
		health   string
	}{
		{"new", 0, none, nil, 0, false, runtime.StateCreated, ""},
		{"stopped", 0, none, nil, 0, true, runtime.StateExited, ""},
		{"stopping", 0, none, ptr(task("a", engineapi.TaskRunning, t0, 0)), 0, true, runtime.StateRunning, "healthy"},
		{"starting", 1, none, ptr(task("a", engineapi.TaskStarting, t0, 0)), 0, false, runtime.StateRunning, "starting"},
		{"running", 1, none, ptr(task("a", engineapi.TaskRunning, t0, 0)), 0, false, runtime.StateRunning, "healthy"},
		{"scheduled", 1, none, nil, 0, false, runtime.StateRestarting, ""},
		{"preparing", 1, none, ptr(task("a", engineapi.TaskPreparing, t0, -1)), 0, false, runtime.StateRestarting, ""},
		{"exited, no restart", 1, none, ptr(task("a", engineapi.TaskComplete, t0, 0)), 0, false, runtime.StateExited, ""},
		{"failed, no restart", 1, none, ptr(task("a", engineapi.TaskFailed, t0, 3)), 1, false, runtime.StateExited, ""},
		{"failed, on-failure", 1, onFailure, ptr(task("a", engineapi.TaskFailed, t0, 3)), 1, false, runtime.StateRestarting, ""},
		{"failed, on-failure at its bound", 1, onFailure, ptr(task("a", engineapi.TaskFailed, t0, 3)), 2, false, runtime.StateRestarting, ""},
		{"failed, on-failure past its bound", 1, onFailure, ptr(task("a", engineapi.TaskFailed, t0, 3)), 3, false, runtime.StateExited, ""},
		{"complete, on-failure", 1, onFailure, ptr(task("a", engineapi.TaskComplete, t0, 0)), 0, false, runtime.StateExited, ""},
		{"complete, always", 1, anyPolicy, ptr(task("a", engineapi.TaskComplete, t0, 0)), 0, false, runtime.StateRestarting, ""},
		{"complete, engine default", 1, nil, ptr(task("a", engineapi.TaskComplete, t0, 0)), 0, false, runtime.StateRestarting, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, health := state(tc.replicas, tc.policy, tc.task, tc.failures, tc.stopped)
			assert.Check(t, is.Equal(got, tc.want))
			assert.Check(t, is.Equal(health, tc.health))
		})
	}
}

func TestContainer(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	spec := swarmSpec()
	svcSpec, err := toService(spec)
	assert.NilError(t, err)
	svcSpec.Mode.Replicated.Replicas = 1
	svcSpec.Labels[labelStarted] = t0.Format(time.RFC3339Nano)
	svcSpec.Labels[labelImageID] = "sha256:abc"
	s := engineapi.Service{ID: "svc", CreatedAt: t0.Add(-time.Minute), Spec: svcSpec}
	nodes := map[string]nodeInfo{"node1": {"n1", "10.77.0.11"}, "node2": {"n2", "10.77.0.12"}}

	old := task("old", engineapi.TaskFailed, t0.Add(time.Second), 137)
	cur := task("cur", engineapi.TaskRunning, t0.Add(5*time.Second), 0)
	c := container(s, []engineapi.Task{cur, old}, nodes)
	assert.Check(t, is.Equal(c.ID, "svc"))
	assert.Check(t, is.Equal(c.Name, "zaki-user-u1"))
	assert.Check(t, is.Equal(c.Image, "zaki/gateway-stub:latest"))
	assert.Check(t, is.Equal(c.ImageID, "sha256:abc"))
	assert.Check(t, is.Equal(c.State, runtime.StateRunning))
	assert.Check(t, is.Equal(c.Health, "healthy"))
	assert.Check(t, is.Equal(c.Node, "n2"))
	assert.Check(t, is.Equal(c.NodeAddr, "10.77.0.12"))
	assert.Check(t, is.Equal(c.RestartCount, 1))
	assert.Check(t, c.StartedAt.Equal(cur.CreatedAt), "StartedAt %v", c.StartedAt)
	assert.Check(t, c.FinishedAt.IsZero())
	assert.Check(t, c.CreatedAt.Equal(s.CreatedAt))
	assert.Check(t, is.Equal(c.Spec.Placement.Node, "n2"))

	// Stopped: no task left, the stop time from the label; the node is
	// the placement's.
	stoppedAt := t0.Add(time.Hour)
	s.Spec.Mode.Replicated.Replicas = 0
	s.Spec.Labels[labelStopped] = stoppedAt.Format(time.RFC3339Nano)
	c = container(s, nil, nodes)
	assert.Check(t, is.Equal(c.State, runtime.StateExited))
	assert.Check(t, c.FinishedAt.Equal(stoppedAt))
	assert.Check(t, c.StartedAt.Equal(t0))
	assert.Check(t, is.Equal(c.Node, "n2"))
	assert.Check(t, is.Equal(c.NodeAddr, "10.77.0.12"))

	// Never started.
	delete(s.Spec.Labels, labelStopped)
	delete(s.Spec.Labels, labelStarted)
	c = container(s, nil, nodes)
	assert.Check(t, is.Equal(c.State, runtime.StateCreated))
	assert.Check(t, c.StartedAt.IsZero() && c.FinishedAt.IsZero())

	// Ended by itself, not restarted: its exit code and end.
	s.Spec.Mode.Replicated.Replicas = 1
	s.Spec.TaskTemplate.RestartPolicy = &engineapi.RestartPolicy{Condition: "none"}
	done := task("done", engineapi.TaskFailed, t0, 3)
	c = container(s, []engineapi.Task{done}, nodes)
	assert.Check(t, is.Equal(c.State, runtime.StateExited))
	assert.Check(t, is.Equal(c.ExitCode, 3))
	assert.Check(t, c.FinishedAt.Equal(done.Status.Timestamp))
}

func TestDiff(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	l := map[string]string{"k": "v"}
	actions := func(evs []runtime.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID+":"+string(e.Action))
			assert.Check(t, is.DeepEqual(e.Labels, l))
			assert.Check(t, e.Time.Equal(at))
		}
		return out
	}
	c := func(running bool, task string) seenContainer {
		return seenContainer{name: "x", labels: l, running: running, task: task}
	}
	for _, tc := range []struct {
		name          string
		before, after map[string]seenContainer
		want          []string
	}{
		{"nothing", map[string]seenContainer{"a": c(false, "")}, map[string]seenContainer{"a": c(false, "")}, nil},
		{"created", nil, map[string]seenContainer{"a": c(false, "")}, []string{"a:create"}},
		{"created running", nil, map[string]seenContainer{"a": c(true, "1")}, []string{"a:create", "a:start"}},
		{"started", map[string]seenContainer{"a": c(false, "")}, map[string]seenContainer{"a": c(true, "1")}, []string{"a:start"}},
		{"stopped", map[string]seenContainer{"a": c(true, "1")}, map[string]seenContainer{"a": c(false, "")}, []string{"a:die"}},
		{"restarted", map[string]seenContainer{"a": c(true, "1")}, map[string]seenContainer{"a": c(true, "2")}, []string{"a:die", "a:start"}},
		{"removed running", map[string]seenContainer{"a": c(true, "1")}, nil, []string{"a:die", "a:destroy"}},
		{"removed", map[string]seenContainer{"a": c(false, ""), "b": c(false, "")}, map[string]seenContainer{"b": c(false, "")}, []string{"a:destroy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.DeepEqual(actions(diff(tc.before, tc.after, at)), tc.want))
		})
	}
}

func TestLabelFilters(t *testing.T) {
	f := labelFilters(map[string]string{"b": "", "a": "1"})
	assert.Check(t, is.DeepEqual(f, engineapi.Filters{"label": {LabelName, "a=1", "b"}}))
}

func TestRan(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	exited := task("a", engineapi.TaskFailed, t0, 3)
	exited.Status.Err = "task: non-zero exit (3)"
	assert.Check(t, ran(exited))
	notStarted := task("b", engineapi.TaskFailed, t0, 128)
	notStarted.Status.Err = "starting container failed: driver failed programming external connectivity: port is already allocated"
	assert.Check(t, !ran(notStarted))
	rejected := task("c", engineapi.TaskRejected, t0, -1)
	assert.Check(t, !ran(rejected))
}
