//go:build faults

package faults

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestKillWhilePaused: an agent SIGKILLed while an instance is paused
// (and while it pauses another) leaves the paused one paused; the agent
// started again adopts it as paused, never stopped or missing, with its
// entry lost too; an ensure resumes it.
func TestKillWhilePaused(t *testing.T) {
	l := newLedger(t, "agent SIGKILL while paused")
	ctx := context.Background()
	p := testenv.StartAgent(t, testenv.AgentOptions{Args: loadTolerant})
	users := []string{"pause-a", "pause-b"}
	ids := map[string]string{}
	for _, u := range users {
		in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
		if !l.checkT(t, err == nil, "ensure %s: %v", u, err) {
			return
		}
		ids[u] = in.ContainerID
	}
	time.Sleep(200 * time.Millisecond)
	idle := 0.001 // minutes: both are idle past it
	res, err := p.Client.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &idle})
	if !l.checkT(t, err == nil && len(res.Paused) == 2, "prune: %+v, %v", res, err) {
		return
	}
	for round, withRegistry := range []bool{true, false} {
		p.Kill()
		l.fault(1)
		for _, u := range users {
			c := inspectOne(t, ids[u])
			l.checkT(t, c.State.Status == "paused", "round %d: %s after the agent's death: %s, want paused", round, u, c.State.Status)
		}
		if !withRegistry {
			if err := os.Remove(filepath.Join(p.StateDir, "registry.json")); err != nil {
				t.Fatal(err)
			}
		}
		p.Start()
		for _, u := range users {
			in, err := p.Client.Get(ctx, u)
			l.checkT(t, err == nil && in.State == socketapi.StatePaused && in.ContainerID == ids[u],
				"round %d (registry kept: %v): %s after restart: %+v, %v; want paused, same container", round, withRegistry, u, in, err)
		}
		h, err := p.Client.Health(ctx)
		l.checkT(t, err == nil && h.Counts.Paused == 2 && h.Counts.Missing == 0, "round %d: counts %+v, %v", round, h.Counts, err)
	}
	for _, u := range users {
		in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
		l.checkT(t, err == nil && in.Outcome == socketapi.OutcomeResumed && in.ContainerID == ids[u], "ensure %s: %+v, %v; want resumed", u, in, err)
		if err == nil {
			body, gerr := get(in.URL + "/health")
			l.checkT(t, gerr == nil && strings.TrimSpace(body) == "ok", "%s resumed: /health %q, %v", u, body, gerr)
		}
	}
}
