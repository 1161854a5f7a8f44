//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestPluginKill SIGKILLs the runtime plugin while calls are in flight:
// each call either succeeds or fails with 503 runtime_unavailable (never
// anything else), the agent stays up and relaunches the plugin, the dead
// plugin's docker commands die with it, the calls that failed succeed when
// tried again, and the engine and the agent agree.
func TestPluginKill(t *testing.T) {
	l := newLedger(t, "plugin SIGKILL mid-operation")
	rounds := envInt("ZAKI_FAULTS_PLUGIN_KILLS", 10)
	p := testenv.StartAgent(t, testenv.AgentOptions{Args: loadTolerant})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	agentPid := p.Pid()
	for _, u := range []string{"pk-0", "pk-1", "pk-2"} {
		_, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
	}
	outcomes := map[string]int{}
	defer func() { t.Logf("calls in flight at the kills: %v", outcomes) }()

	for round := 1; round <= rounds; round++ {
		h0, err := p.Client.Health(ctx)
		assert.NilError(t, err)
		plugin := pluginPid(p)
		assert.Assert(t, plugin > 0, "no plugin process under the agent")

		// A burst: new users, and stops, restarts and ensures of old ones.
		type result struct {
			what string
			err  error
		}
		var mu sync.Mutex
		var results []result
		var wg sync.WaitGroup
		do := func(what string, call func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := call()
				mu.Lock()
				results = append(results, result{what, err})
				mu.Unlock()
			}()
		}
		newUser := fmt.Sprintf("pk-new-%d", round)
		do("ensure "+newUser, func() error { _, err := p.Client.Ensure(ctx, newUser, socketapi.InstanceSpec{}); return err })
		do("stop pk-1", func() error { _, err := p.Client.Stop(ctx, "pk-1"); return err })
		do("ensure pk-2 (new spec)", func() error {
			_, err := p.Client.Ensure(ctx, "pk-2", socketapi.InstanceSpec{Env: map[string]string{"ROUND": fmt.Sprint(round)}})
			return err
		})
		do("restart pk-0", func() error { _, err := p.Client.Restart(ctx, "pk-0"); return err })
		time.Sleep(time.Duration(50+rng.IntN(1500)) * time.Millisecond)
		kids := descendants(plugin)
		assert.NilError(t, syscall.Kill(plugin, syscall.SIGKILL))
		l.fault(1)
		wg.Wait()

		for _, r := range results {
			if r.err == nil {
				outcomes["ok"]++
			} else {
				outcomes["failed"]++
			}
			var apiErr *socketapi.Error
			l.check(r.err == nil || (errors.As(r.err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && apiErr.Code == socketapi.CodeRuntimeUnavailable),
				"round %d: %s: want success or 503 runtime_unavailable, got %v", round, r.what, r.err)
		}
		// The plugin's docker commands die with it.
		waitGone(t, l, kids)
		// The agent stays, and relaunches the plugin.
		l.check(p.Running() && p.Pid() == agentPid, "round %d: the agent died with its plugin", round)
		waitFor(t, 60*time.Second, "plugin relaunched", func() (bool, string) {
			h, err := p.Client.Health(ctx)
			return err == nil && h.Status == socketapi.HealthOK && h.Runtime.Restarts > h0.Runtime.Restarts, fmt.Sprintf("%+v %v", h.Runtime, err)
		})
		np := pluginPid(p)
		l.check(np > 0 && np != plugin, "round %d: plugin pid %d -> %d", round, plugin, np)

		// Everything works again, and the engine and the agent agree.
		for _, u := range []string{newUser, "pk-0", "pk-1", "pk-2"} {
			in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
			l.check(err == nil && in.State == socketapi.StateRunning, "round %d: ensure %s after the plugin's death: %v", round, u, err)
		}
		checkAgreement(t, l, p, fmt.Sprintf("round %d", round))
	}
}

// checkAgreement checks that the engine and the agent agree: at most one
// container per user, each labelled container listed with its ID and
// state, no host port twice. The agent learns of the engine through its
// event stream, a moment after the fact (and a stop whose answer died
// with the plugin may still be carried out by the engine), so a
// disagreement counts only when it outlasts agreeWithin.
func checkAgreement(t *testing.T, l *ledger, p *testenv.AgentProc, at string) {
	t.Helper()
	_, err := readRegistry(p.StateDir)
	l.check(err == nil, "%s: %v", at, err)
	const agreeWithin = 10 * time.Second
	deadline := time.Now().Add(agreeWithin)
	for {
		checks, bad := agreement(t, p, at)
		if len(bad) == 0 || time.Now().After(deadline) {
			for range checks - len(bad) {
				l.check(true, "")
			}
			for _, why := range bad {
				l.check(false, "%s (for %v)", why, agreeWithin)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agreement compares the agent's list with the engine once: it returns the
// number of checks made and the ones that failed.
func agreement(t *testing.T, p *testenv.AgentProc, at string) (checks int, bad []string) {
	t.Helper()
	check := func(ok bool, format string, args ...any) {
		checks++
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	list, err := p.Client.List(context.Background(), "")
	assert.NilError(t, err)
	listed := map[string]socketapi.Instance{}
	for _, in := range list {
		listed[in.UserID] = in
	}
	per := map[string]int{}
	ports := map[string]string{}
	for _, c := range labelled(t, p) {
		u := userOf(p, c)
		per[u]++
		in := listed[u]
		check(in.ContainerID == c.ID, "%s: %s's container %s is listed as %q", at, u, c.ID[:12], in.ContainerID)
		want := socketapi.StateStopped
		if c.State.Running {
			want = socketapi.StateRunning
		}
		check(in.State == want, "%s: %s is %s on the engine, %s in the API", at, u, c.State.Status, in.State)
		for _, b := range c.HostConfig.PortBindings[containerPort] {
			other, dup := ports[b.HostPort]
			check(!dup, "%s: host port %s for %s and %s", at, b.HostPort, u, other)
			ports[b.HostPort] = u
		}
	}
	for u, n := range per {
		check(n == 1, "%s: %s has %d containers", at, u, n)
	}
	return checks, bad
}
