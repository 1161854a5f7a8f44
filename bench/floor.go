package bench

import (
	"context"
	"time"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/bench/baseline"
)

// ReadyInterval is how often the floor (and the baseline) probe a new
// container: often enough that polling adds next to nothing.
const ReadyInterval = 5 * time.Millisecond

// RawRun is the physical floor of a cold ensure: one `docker run -d` of the
// identical container spec (baseline.RunArgs: the agent's defaults for
// cfg, env by an env file) and the wait until its port answers the
// agent's own readiness check (agent.Probe), polled every ReadyInterval.
func RawRun(ctx context.Context, cfg agent.Config, name, image string, port int, dataDir string, labels, env map[string]string) error {
	if err := baseline.Run(ctx, cfg, name, image, port, dataDir, labels, env); err != nil {
		return err
	}
	return baseline.WaitReady(ctx, cfg, port, ReadyInterval)
}
