package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// TestEnginePauseResume: on docker, an instance idle past
// idlePauseMinutes is paused (State.Paused, its processes frozen in the
// cgroup freezer, its port not answering), its data kept; the agent's
// live view says paused; an ensure resumes it with outcome resumed and
// its gateway answers at once, with what it wrote before.
func TestEnginePauseResume(t *testing.T) {
	ctx := context.Background()
	e := newEngineEnv(t, pauseRules)
	in := e.ensure("pz", InstanceSpec{})
	assert.Equal(t, httpDo(t, "POST", in.URL+"/files/notes.md", "kept while frozen"), "written\n")

	e.clock.Add(11 * time.Minute)
	res, err := e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"pz"})
	assert.DeepEqual(t, userIDs(res.Failed), []string{})

	state := strings.TrimSpace(testenv.Docker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", in.ContainerID))
	assert.Equal(t, state, "paused true")
	// cgroup v1 (this host): the freezer says so; v2 has no such file.
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer/docker", in.ContainerID, "freezer.state")); err == nil {
		assert.Equal(t, strings.TrimSpace(string(b)), "FROZEN")
	}
	// The gateway does not answer while frozen.
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	assert.Assert(t, Probe(pctx, strings.TrimPrefix(in.URL, "http://")) != nil, "a paused gateway answered")
	cancel()
	b, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "instances", "pz", "notes.md"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "kept while frozen")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		got, err := e.a.Get(ctx, "pz")
		if err != nil {
			return poll.Error(err)
		}
		if got.State != StatePaused {
			return poll.Continue("state %s", got.State)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))

	again := e.ensure("pz", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeResumed)
	assert.Equal(t, again.ContainerID, in.ContainerID)
	assert.Equal(t, again.State, StateRunning)
	state = strings.TrimSpace(testenv.Docker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", in.ContainerID))
	assert.Equal(t, state, "running false")
	assert.Equal(t, httpDo(t, "GET", in.URL+"/files/notes.md", ""), "kept while frozen")

	// Paused again, then past idleStopMinutes: stopped (docker stops a
	// paused container).
	e.clock.Add(11 * time.Minute)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Paused), []string{"pz"})
	e.clock.Add(30 * time.Minute)
	res, err = e.a.Prune(ctx, PruneRequest{})
	assert.NilError(t, err)
	assert.DeepEqual(t, userIDs(res.Stopped), []string{"pz"})
	state = strings.TrimSpace(testenv.Docker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", in.ContainerID))
	assert.Equal(t, state, "exited false")
	assert.Equal(t, e.ensure("pz", InstanceSpec{}).Outcome, OutcomeStarted)
}
