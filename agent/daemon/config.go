package daemon

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/zaki-platform/zaki-agent/agent"
)

// DefaultConfigPath is where the packaged config file lives.
const DefaultConfigPath = "/etc/zaki-agent/config.toml"

// Config is the configuration of zaki-agent: the TOML file at
// DefaultConfigPath, every key of which is also a flag (flags win). Keys
// are camelCase as in the file; flags are the same paths in kebab case
// (--instance.resources.cpu-shares), and the camelCase spelling is
// accepted too. The fields' order is the order of the flags in --help.
type Config struct {
	Socket      string `toml:"socket" help:"the API's Unix socket (unless systemd passes one)"`
	SocketGroup string `toml:"socketGroup" help:"group owning the socket when the agent creates it (\"\" = the agent's own)"`
	StateDir    string `toml:"stateDir" help:"registry.json, hash.key and instances/<userId>/ (the users' data)"`
	Runtime     string `toml:"runtime" help:"runtime plugin: zaki-runtime-<runtime> in pluginDir"`
	PluginDir   string `toml:"pluginDir" help:"where runtime plugins live"`
	LogFormat   string `toml:"logFormat" help:"log format: text or json"`
	LogLevel    string `toml:"logLevel" help:"log level: debug, info, warn or error"`
	// MetricsAddress, when set, also serves /metrics on this loopback TCP address.
	MetricsAddress string `toml:"metricsAddress" help:"also serve /metrics on this loopback TCP address, e.g. 127.0.0.1:9464 (\"\" = off)"`
	// LegacyRegistry names the registry file of the platform's seed
	// format, imported once when the state dir has no registry yet.
	LegacyRegistry string `toml:"legacyRegistry" help:"registry file of the seed's format, imported when stateDir has no registry yet (\"\" = none)"`

	// The agent's own settings: top-level keys, then [instance], [prune]
	// and [hot].
	agent.Config

	API APIConfig `toml:"api"`
}

// APIConfig holds the socket API's settings.
type APIConfig struct {
	AllowUids    []int `toml:"allowUids" help:"uids allowed to call besides root and the agent's own"`
	AllowGids    []int `toml:"allowGids" help:"gids allowed to call"`
	MaxBodyBytes int64 `toml:"maxBodyBytes" help:"largest request body"`
}

// DefaultConfig returns the built-in defaults of every key; the packaged
// packaging/config.toml lists each with its default.
func DefaultConfig() Config {
	return Config{
		Socket:      "/run/zaki-agent/agent.sock",
		SocketGroup: "zaki",
		StateDir:    "/var/lib/zaki-agent",
		Runtime:     "docker",
		PluginDir:   "/usr/lib/zaki-agent/plugins",
		LogFormat:   "text",
		LogLevel:    "info",
		Config:      agent.DefaultConfig(),
		API:         APIConfig{AllowUids: []int{}, AllowGids: []int{}, MaxBodyBytes: 1 << 20},
	}
}

// Validate checks the configuration as a whole, the agent's part included;
// every problem is named.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.checkPlaces(bad)
	c.checkOutputs(bad)
	return errors.Join(append(errs, c.Config.Validate())...)
}

// checkPlaces checks where the daemon finds its socket, state and plugin.
func (c *Config) checkPlaces(bad func(string, ...any)) {
	if !path.IsAbs(c.Socket) {
		bad("socket %q: want an absolute path", c.Socket)
	}
	if !path.IsAbs(c.StateDir) {
		bad("stateDir %q: want an absolute path", c.StateDir)
	}
	if !validPluginName(c.Runtime) {
		bad("runtime %q: want a plugin name like \"docker\"", c.Runtime)
	}
	if c.PluginDir == "" {
		bad("pluginDir is empty")
	}
	if c.LegacyRegistry != "" && !path.IsAbs(c.LegacyRegistry) {
		bad("legacyRegistry %q: want an absolute path", c.LegacyRegistry)
	}
}

// checkOutputs checks what the daemon serves and writes: logs, metrics,
// the API's limit.
func (c *Config) checkOutputs(bad func(string, ...any)) {
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("logFormat %q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.MetricsAddress != "" && !loopback(c.MetricsAddress) {
		bad("metricsAddress %q: want a loopback address", c.MetricsAddress)
	}
	if c.API.MaxBodyBytes < 1024 {
		bad("api.maxBodyBytes %d: want at least 1024", c.API.MaxBodyBytes)
	}
}

// loopback reports whether a host:port address is on the loopback
// interface, where only this host can reach the metrics.
func loopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "[::1]") || strings.HasPrefix(addr, "localhost:")
}

// validPluginName reports whether s can name a plugin binary,
// zaki-runtime-<s>, without leaving pluginDir.
func validPluginName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
