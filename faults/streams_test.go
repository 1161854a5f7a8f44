//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The documented stream bounds (socketapi/server: MaxLogFollowers,
// MaxLogFollowersPerUser, MaxEventStreams).
const (
	followersMax        = 32
	followersPerUserMax = 2
	eventStreamsMax     = 64
)

// TestHeldStreams holds every stream a caller may hold at once, with the
// agent under the unit's MemoryMax= and TasksMax= (see unitlimits_test.go):
// all 32 log followers (2 for each of 16 users) and all 64 event streams,
// none of them read. One more of each is refused with 429; the agent keeps
// answering; the limits are not hit (checked when the suite ends); once
// the callers hang up, no engine command of theirs is left.
func TestHeldStreams(t *testing.T) {
	l := newLedger(t, "held streams (every bound at once)")
	p := testenv.StartAgent(t, testenv.AgentOptions{Args: loadTolerant})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	users := followersMax / followersPerUserMax
	errs := make(chan error, users+1)
	for i := 0; i <= users; i++ {
		go func() {
			_, err := p.Client.Ensure(ctx, fmt.Sprintf("held-%d", i), socketapi.InstanceSpec{})
			errs <- err
		}()
	}
	for i := 0; i <= users; i++ {
		assert.NilError(t, <-errs)
	}

	var open []io.Closer
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	l.fault(followersMax + eventStreamsMax)
	for i := 0; i < users; i++ {
		for j := 0; j < followersPerUserMax; j++ {
			rc, err := p.Client.Logs(ctx, fmt.Sprintf("held-%d", i), socketapi.LogOptions{Follow: true})
			if !l.check(err == nil, "log follower %d of held-%d: %v", j+1, i, err) {
				continue
			}
			open = append(open, rc)
		}
	}
	for i := 0; i < eventStreamsMax; i++ {
		es, err := p.Client.Events(ctx)
		if !l.check(err == nil, "event stream %d: %v", i+1, err) {
			continue
		}
		open = append(open, es)
	}

	refused := func(what string, err error) {
		var apiErr *socketapi.Error
		l.check(errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests,
			"%s past the bound: want 429, got %v", what, err)
	}
	l.fault(3)
	_, err := p.Client.Logs(ctx, fmt.Sprintf("held-%d", users), socketapi.LogOptions{Follow: true})
	refused("a log follower (all held)", err)
	_, err = p.Client.Logs(ctx, "held-0", socketapi.LogOptions{Follow: true})
	refused("a third log follower of one user", err)
	_, err = p.Client.Events(ctx)
	refused("an event stream", err)

	// The agent keeps serving everything else meanwhile.
	for i := 0; i <= users; i++ {
		in, err := p.Client.Ensure(ctx, fmt.Sprintf("held-%d", i), socketapi.InstanceSpec{})
		l.check(err == nil && in.Outcome == socketapi.OutcomeReused, "ensure held-%d with every stream held: %+v %v", i, in, err)
	}
	l.check(len(engineCommands(p)) >= followersMax, "the %d followers run %d engine commands: the test proves nothing", followersMax, len(engineCommands(p)))

	// Hung up: nothing of theirs is left.
	for _, c := range open {
		c.Close()
	}
	open = nil
	waitFor(t, 30*time.Second, "the followers' engine commands end", func() (bool, string) {
		left := engineCommands(p)
		return len(left) == 0, fmt.Sprintf("%d left: %v", len(left), left)
	})
	l.check(true, "no follower's engine command left")
	rc, err := p.Client.Logs(ctx, "held-0", socketapi.LogOptions{Follow: true})
	l.check(err == nil, "a log follower once the others hung up: %v", err)
	if err == nil {
		rc.Close()
	}
}

// engineCommands returns the pids of the `docker logs` commands running
// under the agent's plugin (not its own `docker events`).
func engineCommands(p *testenv.AgentProc) []int {
	var out []int
	if plugin := pluginPid(p); plugin > 0 {
		for _, pid := range descendants(plugin) {
			argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if args := strings.Split(string(argv), "\x00"); len(args) > 1 && filepath.Base(args[0]) == "docker" && args[1] == "logs" {
				out = append(out, pid)
			}
		}
	}
	return out
}
