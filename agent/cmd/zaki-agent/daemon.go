package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/internal/version"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// How long shutdown waits for calls in flight, and for the agent's loops.
const (
	shutdownGrace = 20 * time.Second
	loopsGrace    = 5 * time.Second
)

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "zaki-agent %s\n", version.Version)
	return err
}

func loadConfig(args []string, stdout io.Writer) (agent.Config, string, error) {
	return agent.ConfigFromArgs("zaki-agent", args, func(fset *pflag.FlagSet) {
		fmt.Fprintf(stdout, `Usage: zaki-agent [--config FILE] [--KEY=VALUE ...]

zaki-agent owns the per-user OpenClaw gateway containers of this host and
serves the API (HTTP/1.1 + JSON) on a Unix socket. It normally runs under
systemd (zaki-agent.service, started by zaki-agent.socket).

Settings come from the config file (TOML, every key documented in the
packaged %s) and from flags, which win. Each flag is a config
key by its path, in kebab or camel case: --instance.resources.cpu-shares=256
is [instance.resources] cpuShares = 256.

Flags:
%s
Examples:
  zaki-agent                                  # /etc/zaki-agent/config.toml
  zaki-agent --config ./dev.toml --log-level debug
  zaki-agent --version

Signals: SIGTERM/SIGINT stop the agent (instances keep running); SIGHUP
reloads the config file. With ZAKI_AGENT_PROFILE_DIR set (a debugging aid),
the start-up is CPU-profiled into that directory and each SIGUSR1 starts or
ends a CPU profile there.
`, agent.DefaultConfigPath, fset.FlagUsages())
	})
}

func newLogger(format string, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// serve runs the agent until SIGTERM or SIGINT.
func serve(ctx context.Context, cfg agent.Config, file string, args []string, stderr io.Writer) error {
	begun := time.Now()
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.LogLevel))
	log := newLogger(cfg.LogFormat, level, stderr)
	sd := newNotifier(log)
	defer sd.close(2 * time.Second)

	// Signals first, so that a SIGTERM during start-up is not fatal
	// before the state is safe.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	prof := newProfiler(log) // nil unless ZAKI_AGENT_PROFILE_DIR is set
	if prof != nil {
		signal.Notify(sigs, syscall.SIGUSR1)
		prof.start(fmt.Sprintf("startup-%d.pprof", os.Getpid()), "")
		defer prof.stop()
	}

	metrics := agent.NewMetrics()
	reg, err := registry.Open(cfg.StateDir, registry.Options{
		Logger:       log.With("component", "registry"),
		ObserveWrite: metrics.ObserveRegistryWrite,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := reg.Close(); err != nil {
			log.Error("registry close", "err", err)
		}
	}()

	// Take systemd's socket before anything is started, so that neither
	// the fd nor LISTEN_* reach a child.
	ln, activated, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()

	pluginPath := filepath.Join(cfg.PluginDir, "zaki-runtime-"+cfg.Runtime)
	if _, err := os.Stat(pluginPath); err != nil {
		return fmt.Errorf("runtime plugin for runtime %q: %w (pluginDir = %q)", cfg.Runtime, err, cfg.PluginDir)
	}
	sd.status("starting runtime plugin " + cfg.Runtime)
	launchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	launched := time.Now()
	plugin, err := runtime.Launch(launchCtx, runtime.PluginConfig{Name: cfg.Runtime, Path: pluginPath, Logger: log})
	cancel()
	if err != nil {
		return fmt.Errorf("start runtime plugin: %w", err)
	}
	launchTook := time.Since(launched)
	defer plugin.Close()

	a, err := agent.New(cfg, plugin, reg, agent.Options{Logger: log, PluginRestarts: plugin.Restarts, Metrics: metrics})
	if err != nil {
		return err
	}
	runCtx, stopLoops := context.WithCancel(context.Background())
	loopsDone := make(chan struct{})
	go func() { defer close(loopsDone); a.Run(runCtx) }()
	defer func() {
		stopLoops()
		select {
		case <-loopsDone:
		case <-time.After(loopsGrace):
			log.Warn("agent loops did not end in time")
		}
	}()

	sd.status("reconciling")
	reconciling := time.Now()
	for ready := false; !ready; {
		select {
		case <-a.Ready():
			ready = true
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				continue // the start-up is being profiled
			}
			if sig != syscall.SIGHUP {
				log.Info("stopping before ready", "signal", sig.String())
				sd.stopping()
				return nil
			}
		case <-time.After(10 * time.Second):
			log.Warn("waiting for the runtime to answer before serving", "runtime", cfg.Runtime)
			sd.status("waiting for the runtime " + cfg.Runtime)
		}
	}

	srv := server.New(server.Config{
		Agent:        a,
		Logger:       log,
		MaxBodyBytes: cfg.API.MaxBodyBytes,
		AllowUIDs:    cfg.API.AllowUids,
		AllowGIDs:    allowedGids(cfg, log),
		Metrics:      metrics.Gatherer(),
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.MetricsAddress != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return fmt.Errorf("metrics address: %w", err)
		}
		ms := &http.Server{Handler: server.MetricsHandler(srv.Gatherer()), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
		defer ms.Close()
	}

	c := a.Counts()
	// Where the start-up went: launching the plugin, then the first
	// reconciliation (the event stream and one List of the engine).
	log.Info("zaki-agent ready", "version", version.Version, "socket", cfg.Socket, "socketActivated", activated,
		"runtime", cfg.Runtime, "config", file, "instances", c.Total, "running", c.Running,
		"took", time.Since(begun), "plugin", launchTook, "reconcile", time.Since(reconciling))
	sd.ready(statusLine(a))
	prof.stop()

	watchdog := sd.watchdogInterval()
	tick := 10 * time.Second
	if watchdog > 0 && watchdog/3 < tick {
		tick = watchdog / 3
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	lastStatus := ""
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(a, args, file, level, log, sd)
				continue
			}
			if sig == syscall.SIGUSR1 {
				prof.toggle()
				continue
			}
			log.Info("stopping", "signal", sig.String())
			sd.stopping()
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("calls still in flight at shutdown", "err", err)
			}
			cancel()
			if !activated {
				os.Remove(cfg.Socket)
			}
			log.Info("stopped; instances keep running")
			return nil
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-ticker.C:
			if alive := a.Alive(); alive {
				sd.watchdog()
			} else {
				log.Error("watchdog withheld: an agent loop is wedged", "health", a.Health(context.Background()).Agent.Loops)
			}
			if s := statusLine(a); s != lastStatus {
				sd.status(s)
				lastStatus = s
			}
		}
	}
}

// allowedGids are the groups that may call: api.allowGids, plus the
// socket's own group, whose members the socket's mode (0660) lets in.
func allowedGids(cfg agent.Config, log *slog.Logger) []int {
	gids := append([]int(nil), cfg.API.AllowGids...)
	if cfg.SocketGroup == "" {
		return gids
	}
	g, err := user.LookupGroup(cfg.SocketGroup)
	if err != nil {
		log.Warn("socket group not found; its members cannot call", "group", cfg.SocketGroup, "err", err)
		return gids
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return gids
	}
	return append(gids, gid)
}

func statusLine(a *agent.Agent) string {
	c := a.Counts()
	return fmt.Sprintf("%d instances: %d running, %d stopped, %d missing", c.Total, c.Running, c.Stopped, c.Missing)
}

// listen returns systemd's socket when the agent was socket-activated,
// or creates cfg.Socket itself.
func listen(cfg agent.Config) (net.Listener, bool, error) {
	lns, err := activation.Listeners() // unsets LISTEN_* as it reads them
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	var got []net.Listener
	for _, l := range lns {
		if l != nil {
			got = append(got, l)
		}
	}
	switch len(got) {
	case 0:
	case 1:
		return got[0], true, nil
	default:
		for _, l := range got {
			l.Close()
		}
		return nil, false, fmt.Errorf("socket activation passed %d sockets, want 1", len(got))
	}
	ln, err := server.Listen(cfg.Socket, cfg.SocketGroup)
	if err != nil {
		return nil, false, err
	}
	return ln, false, nil
}

// reload re-reads the config file (flags still win) and applies what can
// change live.
func reload(a *agent.Agent, args []string, file string, level *slog.LevelVar, log *slog.Logger, sd *notifier) {
	sd.reloading()
	defer sd.ready(statusLine(a))
	next, _, err := agent.ConfigFromArgs("zaki-agent", args, nil)
	if err != nil {
		log.Error("reload refused; the running config stays", "config", file, "err", err)
		return
	}
	needRestart, applied, err := a.Reload(next)
	if err != nil {
		log.Error("reload refused; the running config stays", "config", file, "err", err)
		return
	}
	level.Set(parseLevel(next.LogLevel))
	var api []string
	for _, k := range applied {
		if strings.HasPrefix(k, "api.") {
			api = append(api, k)
		}
	}
	if len(api) > 0 {
		needRestart = append(needRestart, api...)
	}
	log.Info("config reloaded", "config", file, "applied", strings.Join(applied, ","), "needRestart", strings.Join(needRestart, ","))
}
