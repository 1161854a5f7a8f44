package agent

import (
	"fmt"
	"reflect"
	"sort"
)

// restartOnly lists the settings a running agent cannot change: they
// name its files, its socket, its plugin and its labels, or size what was
// built at start. A reload keeps their running values and reports them.
var restartOnly = []struct {
	key string
	get func(*Config) any
}{
	{"socket", func(c *Config) any { return c.Socket }},
	{"socketGroup", func(c *Config) any { return c.SocketGroup }},
	{"stateDir", func(c *Config) any { return c.StateDir }},
	{"runtime", func(c *Config) any { return c.Runtime }},
	{"pluginDir", func(c *Config) any { return c.PluginDir }},
	{"logFormat", func(c *Config) any { return c.LogFormat }},
	{"metricsAddress", func(c *Config) any { return c.MetricsAddress }},
	{"maxEngineOps", func(c *Config) any { return c.MaxEngineOps }},
	{"callTimeoutSeconds", func(c *Config) any { return c.CallTimeoutSeconds }},
	{"instance.labelPrefix", func(c *Config) any { return c.Instance.LabelPrefix }},
}

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
	cur := a.conf()
	for _, r := range restartOnly {
		if !reflect.DeepEqual(r.get(cur), r.get(&next)) {
			needRestart = append(needRestart, r.key)
		}
	}
	// Keep the running values of what cannot change live.
	next.Socket, next.SocketGroup, next.StateDir = cur.Socket, cur.SocketGroup, cur.StateDir
	next.Runtime, next.PluginDir, next.LogFormat = cur.Runtime, cur.PluginDir, cur.LogFormat
	next.MetricsAddress, next.MaxEngineOps, next.CallTimeoutSeconds = cur.MetricsAddress, cur.MaxEngineOps, cur.CallTimeoutSeconds
	next.Instance.LabelPrefix = cur.Instance.LabelPrefix

	applied = diffKeys("", reflect.ValueOf(*cur), reflect.ValueOf(next))
	if next.Instance.Network != cur.Instance.Network {
		a.netDone.Store(false)
	}
	a.cfg.Store(&next)
	sort.Strings(needRestart)
	return needRestart, applied, nil
}

// diffKeys lists the TOML keys whose values differ between two configs.
func diffKeys(prefix string, x, y reflect.Value) []string {
	var out []string
	t := x.Type()
	for i := 0; i < t.NumField(); i++ {
		key := t.Field(i).Tag.Get("toml")
		if key == "" {
			continue
		}
		if t.Field(i).Type.Kind() == reflect.Struct {
			out = append(out, diffKeys(prefix+key+".", x.Field(i), y.Field(i))...)
			continue
		}
		if !reflect.DeepEqual(x.Field(i).Interface(), y.Field(i).Interface()) {
			out = append(out, prefix+key)
		}
	}
	return out
}
