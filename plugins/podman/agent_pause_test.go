package podman_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestAgentPause: the pause tier on podman, through the real agent: an
// idle instance is paused (podman says paused), survives the agent's
// SIGKILL paused and adopted as paused, is resumed by an ensure (outcome
// resumed, its data there), and a paused one is stopped by the stop rule
// (podman stops a paused container only once thawed: the plugin does it).
func TestAgentPause(t *testing.T) {
	engine(t)
	t.Parallel()
	p := testenv.StartAgent(t, testenv.AgentOptions{
		Runtime: "podman",
		Args:    []string{"--instance.user=" + agentUser},
		Config:  "[prune]\nintervalMinutes = 600\n",
	})
	t.Cleanup(func() { removeAgentObjects(t, p) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := p.Client

	in, err := c.Ensure(ctx, "pp", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	resp, err := http.Post(in.URL+"/files/notes.md", "text/plain", strings.NewReader("kept"))
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, 200)

	tiny, off := 1e-6, 0.0
	time.Sleep(10 * time.Millisecond)
	res, err := c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &tiny, IdleStopMinutes: &off, IdleHours: &off, MaxAgeDays: &off})
	assert.NilError(t, err)
	assert.Equal(t, len(res.Paused), 1, "prune: %+v", res)
	assert.Equal(t, strings.TrimSpace(podmanRun(t, "container", "inspect", "--format", "{{.State.Status}}", in.ContainerID)), "paused")

	p.Kill()
	assert.Equal(t, strings.TrimSpace(podmanRun(t, "container", "inspect", "--format", "{{.State.Status}}", in.ContainerID)), "paused")
	p.Start()
	got, err := c.Get(ctx, "pp")
	assert.NilError(t, err)
	assert.Equal(t, got.State, socketapi.StatePaused)

	again, err := c.Ensure(ctx, "pp", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	assert.Equal(t, again.Outcome, socketapi.OutcomeResumed)
	assert.Equal(t, again.ContainerID, in.ContainerID)
	assert.Equal(t, httpGet(t, in.URL+"/files/notes.md"), "kept")

	time.Sleep(10 * time.Millisecond)
	res, err = c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &tiny, IdleStopMinutes: &off, IdleHours: &off, MaxAgeDays: &off})
	assert.NilError(t, err)
	assert.Equal(t, len(res.Paused), 1, "prune: %+v", res)
	stop := 2e-6
	time.Sleep(10 * time.Millisecond)
	res, err = c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &tiny, IdleStopMinutes: &stop, IdleHours: &off, MaxAgeDays: &off})
	assert.NilError(t, err)
	assert.Equal(t, len(res.Stopped), 1, "prune: %+v", res)
	assert.Equal(t, strings.TrimSpace(podmanRun(t, "container", "inspect", "--format", "{{.State.Status}}", in.ContainerID)), "exited")
}
