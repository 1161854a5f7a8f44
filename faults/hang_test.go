//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The bound on one runtime call in TestHangingEngine, and what an API
// call may take on top of its runtime calls' bounds (a loaded machine).
const (
	hangCallTimeout = 5 * time.Second
	hangSlack       = 5 * time.Second
)

// TestHangingEngine puts a docker CLI that never answers on the agent's
// PATH: every call that needs the engine ends within its bound (504
// timeout, or 503 when the runtime is declared gone), no hung docker
// command outlives its bound, and the agent keeps serving what needs no
// engine call, for every user. Once the engine answers again, so does the
// agent.
func TestHangingEngine(t *testing.T) {
	l := newLedger(t, "hanging engine (CLI never answers)")
	shim := dockerShim(t)
	// The instances are made with the default call bound, then the agent
	// restarts with a short one.
	p := testenv.StartAgent(t, testenv.AgentOptions{Env: shimEnv(shim), Args: loadTolerant})
	ctx := context.Background()
	for _, u := range []string{"hang-hot-1", "hang-hot-2", "hang-cold"} {
		_, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
	}
	_, err := p.Client.Stop(ctx, "hang-cold")
	assert.NilError(t, err)
	hot, err := p.Client.Get(ctx, "hang-hot-1")
	assert.NilError(t, err)
	assert.Assert(t, hot.ContainerName != "" && len(hot.ContainerID) >= 12, "%+v", hot)
	cfg, err := os.ReadFile(p.Config)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(p.Config, append([]byte(fmt.Sprintf("callTimeoutSeconds = %g\n", hangCallTimeout.Seconds())), cfg...), 0o600))
	p.Restart()
	watch := watchHung(t, l, p)

	for _, mode := range []struct{ name, hang string }{
		{"every command", "*"},
		{"start only", "start"},
		{"start and rm", "start\nrm"},
		{"inspect and ps only", "inspect\nps"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			assert.NilError(t, os.WriteFile(filepath.Join(shim, "hang"), []byte(mode.hang+"\n"), 0o644))
			l.fault(1)
			// Calls that need the engine, in parallel: each ends within its
			// bound. An ensure makes a few calls in a row, each bounded.
			calls := map[string]struct {
				bound time.Duration
				call  func(context.Context) error
			}{
				"ensure a new user": {4*hangCallTimeout + hangSlack, func(ctx context.Context) error {
					_, err := p.Client.Ensure(ctx, "hang-new-"+fmt.Sprint(time.Now().UnixNano()%1e6), socketapi.InstanceSpec{})
					return err
				}},
				"ensure a stopped user": {4*hangCallTimeout + hangSlack, func(ctx context.Context) error {
					_, err := p.Client.Ensure(ctx, "hang-cold", socketapi.InstanceSpec{})
					return err
				}},
				"restart": {2*hangCallTimeout + 2*time.Second + hangSlack, func(ctx context.Context) error {
					_, err := p.Client.Restart(ctx, "hang-hot-2")
					return err
				}},
				"health": {hangCallTimeout + hangSlack, func(ctx context.Context) error {
					_, err := p.Client.Health(ctx)
					return err
				}},
			}
			var wg sync.WaitGroup
			for what, c := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					err := c.call(ctx)
					took := time.Since(start)
					l.checkT(t, took <= c.bound, "%s with a hanging engine took %v, bound %v (err %v)", what, took, c.bound, err)
					var apiErr *socketapi.Error
					if err != nil {
						l.checkT(t, errors.As(err, &apiErr) && (apiErr.Status == http.StatusGatewayTimeout || apiErr.Status == http.StatusServiceUnavailable),
							"%s with a hanging engine: want 504 or 503, got %v", what, err)
					}
				}()
			}
			// Meanwhile, what needs no engine call answers at once, for
			// every user.
			// The other calls and the agent's background work (resyncs,
			// image lookups) may run docker meanwhile: what counts is that
			// no command names hang-hot-1's container.
			time.Sleep(500 * time.Millisecond)
			before := len(shimLines(shim))
			for _, u := range []string{"hang-hot-1"} {
				start := time.Now()
				in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
				l.checkT(t, err == nil && in.Outcome == socketapi.OutcomeReused && time.Since(start) < 2*time.Second,
					"hot ensure of %s with a hanging engine: %+v %v after %v", u, in, err, time.Since(start))
				_, err = p.Client.Touch(ctx, u)
				l.checkT(t, err == nil, "touch %s: %v", u, err)
				_, err = p.Client.Get(ctx, u)
				l.checkT(t, err == nil, "get %s: %v", u, err)
			}
			start := time.Now()
			list, err := p.Client.List(ctx, "")
			l.checkT(t, err == nil && len(list) >= 3 && time.Since(start) < 2*time.Second, "list with a hanging engine: %d %v after %v", len(list), err, time.Since(start))
			for _, line := range shimLines(shim)[before:] {
				l.checkT(t, !strings.Contains(line, hot.ContainerName) && !strings.Contains(line, hot.ContainerID[:12]),
					"the hot path ran docker for hang-hot-1: docker %s", line)
			}
			wg.Wait()
			l.checkT(t, p.Running(), "the agent died")

			// The engine answers again: so does the agent.
			assert.NilError(t, os.Remove(filepath.Join(shim, "hang")))
			waitFor(t, 60*time.Second, "health ok once the engine answers", func() (bool, string) {
				h, err := p.Client.Health(ctx)
				return err == nil && h.Status == socketapi.HealthOK, fmt.Sprintf("%+v %v", h.Runtime, err)
			})
			// (A loaded machine may take longer than the short bound for a
			// start: the agent recovers when a call succeeds again.)
			for _, u := range []string{"hang-cold", "hang-hot-2"} {
				waitFor(t, 60*time.Second, "ensure "+u+" once the engine answers", func() (bool, string) {
					in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
					return err == nil && in.State == socketapi.StateRunning, fmt.Sprint(err)
				})
				l.checkT(t, true, "%s ensured", u)
			}
			waitFor(t, 60*time.Second, "stop hang-cold", func() (bool, string) {
				_, err := p.Client.Stop(ctx, "hang-cold")
				return err == nil, fmt.Sprint(err)
			})
			checkAgreement(t, l, p, mode.name)
		})
	}
	watch()
}

// watchHung watches the docker commands under the agent's plugin until the
// returned function is called: none may live longer than the call bound
// plus a margin (a hung command is killed when its call's deadline
// passes). Each hung command seen is one check.
func watchHung(t *testing.T, l *ledger, p *testenv.AgentProc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	firstSeen := map[int]time.Time{}
	seen := 0
	limit := hangCallTimeout + 2*time.Second + hangSlack
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now()
			alive := map[int]bool{}
			if plugin := pluginPid(p); plugin > 0 {
				for _, pid := range descendants(plugin) {
					if _, comm := procPPID(pid); comm != "sleep" {
						continue // the stand-in's hung command is `sleep infinity`
					}
					alive[pid] = true
					if _, ok := firstSeen[pid]; !ok {
						firstSeen[pid] = now
						seen++
					}
				}
			}
			for pid, first := range firstSeen {
				age := now.Sub(first)
				switch {
				case !alive[pid]:
					l.check(age <= limit, "hung docker command %d lived %v, bound %v", pid, age, limit)
					delete(firstSeen, pid)
				case age > limit:
					l.check(false, "hung docker command %d still alive after %v, bound %v", pid, age, limit)
					delete(firstSeen, pid)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		l.check(seen > 0, "no hung docker command was seen: the test proved nothing")
		t.Logf("%d hung docker commands seen", seen)
	}
}
