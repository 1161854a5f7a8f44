package daemon

import (
	"sort"
	"strings"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/internal/configkeys"
)

// restartOnly are the daemon's settings that a running daemon cannot
// change: they name its socket, its files and its plugin, shape its log,
// or were handed to the API server at start. (The agent keeps a list of
// its own; see agent.Reload.) logLevel changes live.
var restartOnly = []string{
	"api.allowGids", "api.allowUids", "api.maxBodyBytes",
	"legacyRegistry", "logFormat", "metricsAddress", "pluginDir", "runtime", "socket", "socketGroup", "stateDir",
}

// reload re-reads the config file (flags still win) and applies what can
// change live; the restart-only settings keep their running values and
// are logged as needing a restart.
func (p *process) reload(a *agent.Agent) {
	p.sd.reloading()
	defer p.sd.ready(statusLine(a))
	next, _, err := ConfigFromArgs("zaki-agent", p.args, nil)
	if err != nil {
		p.log.Error("reload refused; the running config stays", "config", p.file, "err", err)
		return
	}
	needRestart := configkeys.Keep(&p.cfg, &next, restartOnly)
	agentNeeds, _, err := a.Reload(next.Config)
	if err != nil {
		p.log.Error("reload refused; the running config stays", "config", p.file, "err", err)
		return
	}
	next.Config = a.Config() // as the agent runs it now
	applied := configkeys.Diff(&p.cfg, &next)
	p.cfg = next
	p.level.Set(parseLevel(next.LogLevel))
	needRestart = append(needRestart, agentNeeds...)
	sort.Strings(needRestart)
	p.log.Info("config reloaded", "config", p.file, "applied", strings.Join(applied, ","), "needRestart", strings.Join(needRestart, ","))
}
