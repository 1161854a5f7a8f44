// Package daemon is the zaki-agent process around the agent: it reads the
// config file and flags, opens the registry, takes the API socket (or
// systemd's), launches the runtime plugin, runs the agent and serves the
// API until SIGTERM, reloading on SIGHUP.
//
// Its Config is the whole config file: the daemon's own settings (socket,
// state dir, runtime plugin, logging, metrics address, API limits) with
// the agent's (agent.Config) embedded, so that both read as one flat file
// with one flag per key. The agent sees only its own part.
package daemon
