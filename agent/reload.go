package agent

import (
	"fmt"

	"github.com/zaki-platform/zaki-agent/internal/configkeys"
)

// restartOnly are the settings of Config a running agent cannot change:
// they size or name what New built (the engine bound, the call timeout,
// the labels). A reload keeps their running values and reports them, in
// this (sorted) order.
var restartOnly = []string{"callTimeoutSeconds", "instance.labelPrefix", "maxEngineOps"}

// Reload applies a new configuration to the running agent. Everything but
// the restart-only settings takes effect for the next call (instance
// defaults and ceilings, allowed images, pruning, the hot window, ...);
// a changed instance default changes the config hash, so instances pick it
// up at their next cold ensure. It returns the changed settings that need
// a restart (kept at their running values) and the ones applied.
func (a *Agent) Reload(next Config) (needRestart, applied []string, err error) {
	if err := next.Validate(); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	if err := next.checkRuntime(a.facts.Load()); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cur := a.conf()
	needRestart = configkeys.Keep(cur, &next, restartOnly)
	applied = configkeys.Diff(cur, &next)
	if next.Instance.Network != cur.Instance.Network {
		a.netDone.Store(false)
	}
	a.warnFixedUser(cur, &next)
	a.warnBindAddress(cur, &next)
	a.cfg.Store(&next)
	return needRestart, applied, nil
}
