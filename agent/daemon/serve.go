package daemon

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
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"golang.org/x/net/netutil"

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

// process is one run of the daemon: what its steps share.
type process struct {
	cfg   Config // as running: restart-only settings keep their start values
	file  string // the config file read
	args  []string
	level *slog.LevelVar
	log   *slog.Logger
	sd    *notifier
	sigs  chan os.Signal
	prof  *profiler // nil unless ZAKI_AGENT_PROFILE_DIR is set
}

// serve runs the agent until SIGTERM or SIGINT: it takes the signals, opens
// the registry, takes the socket, launches the runtime plugin, starts the
// agent, serves the API and says READY=1 (the first reconciliation runs in
// the background: until it is done the agent answers from its registry and
// asks the engine about a user before acting on it), then handles signals
// until told to stop. Each step's cleanup runs in reverse order.
func serve(ctx context.Context, cfg Config, file string, args []string, stderr io.Writer) error {
	begun := time.Now()
	p := newProcess(cfg, file, args, stderr)
	defer p.sd.close(2 * time.Second)
	defer p.catchSignals()()

	metrics := agent.NewMetrics()
	reg, err := p.openRegistry(metrics)
	if err != nil {
		return err
	}
	defer p.closeRegistry(reg)

	// Take systemd's socket before anything is started, so that neither
	// the fd nor LISTEN_* reach a child.
	ln, activated, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()

	launched := time.Now()
	plugin, err := p.launchPlugin(ctx)
	if err != nil {
		return err
	}
	launchTook := time.Since(launched)
	defer plugin.Close()

	a, err := agent.New(cfg.Config, plugin, reg, agent.Options{
		StateDir: cfg.StateDir, RuntimeName: cfg.Runtime,
		Logger: p.log, PluginRestarts: plugin.Restarts, Metrics: metrics,
	})
	if err != nil {
		return err
	}
	defer p.runLoops(a)()
	reconciling := time.Now()

	srv := p.newServer(a, metrics)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	stopMetrics, err := serveMetrics(cfg.MetricsAddress, srv)
	if err != nil {
		return err
	}
	defer stopMetrics()

	c := a.Counts()
	// Where the start-up went: launching the plugin (the first
	// reconciliation is logged when it ends: "reconciled").
	p.log.Info("zaki-agent ready", "version", version.Version, "socket", cfg.Socket, "socketActivated", activated,
		"runtime", cfg.Runtime, "config", file, "instances", c.Total, "running", c.Running,
		"took", time.Since(begun), "plugin", launchTook)
	p.sd.ready(statusLine(a))
	p.prof.stop()

	return p.handleSignals(a, srv, serveErr, activated, reconciling)
}

// newProcess sets up logging (its level changes on reload) and the
// notifier to systemd.
func newProcess(cfg Config, file string, args []string, stderr io.Writer) *process {
	p := &process{cfg: cfg, file: file, args: args, level: new(slog.LevelVar)}
	p.level.Set(parseLevel(cfg.LogLevel))
	p.log = newLogger(cfg.LogFormat, p.level, stderr)
	p.sd = newNotifier(p.log)
	return p
}

// catchSignals takes the signals first, so that a SIGTERM during start-up
// is not fatal before the state is safe, and starts profiling the start-up
// when asked to. It returns the cleanup.
func (p *process) catchSignals() (release func()) {
	p.sigs = make(chan os.Signal, 4)
	signal.Notify(p.sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	p.prof = newProfiler(p.log)
	if p.prof != nil {
		signal.Notify(p.sigs, syscall.SIGUSR1)
		p.prof.start(fmt.Sprintf("startup-%d.pprof", os.Getpid()), "")
	}
	return func() {
		p.prof.stop()
		signal.Stop(p.sigs)
	}
}

func (p *process) openRegistry(metrics *agent.Metrics) (*registry.Registry, error) {
	return registry.Open(p.cfg.StateDir, registry.Options{
		Logger:       p.log.With("component", "registry"),
		LegacyPath:   p.cfg.LegacyRegistry,
		ObserveWrite: metrics.ObserveRegistryWrite,
	})
}

func (p *process) closeRegistry(reg *registry.Registry) {
	if err := reg.Close(); err != nil {
		p.log.Error("registry close", "err", err)
	}
}

// launchPlugin starts zaki-runtime-<runtime> from pluginDir.
func (p *process) launchPlugin(ctx context.Context) (*runtime.Plugin, error) {
	cfg := p.cfg
	pluginPath := filepath.Join(cfg.PluginDir, "zaki-runtime-"+cfg.Runtime)
	if _, err := os.Stat(pluginPath); err != nil {
		return nil, fmt.Errorf("runtime plugin for runtime %q: %w (pluginDir = %q)", cfg.Runtime, err, cfg.PluginDir)
	}
	p.sd.status("starting runtime plugin " + cfg.Runtime)
	launchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	plugin, err := runtime.Launch(launchCtx, runtime.PluginConfig{Name: cfg.Runtime, Path: pluginPath, Logger: p.log})
	if err != nil {
		return nil, fmt.Errorf("start runtime plugin: %w", err)
	}
	return plugin, nil
}

// runLoops runs the agent's loops; the returned stop ends them, waiting
// a little for them to return.
func (p *process) runLoops(a *agent.Agent) (stop func()) {
	runCtx, stopLoops := context.WithCancel(context.Background())
	loopsDone := make(chan struct{})
	go func() { defer close(loopsDone); a.Run(runCtx) }()
	return func() {
		stopLoops()
		select {
		case <-loopsDone:
		case <-time.After(loopsGrace):
			p.log.Warn("agent loops did not end in time")
		}
	}
}

func (p *process) newServer(a *agent.Agent, metrics *agent.Metrics) *server.Server {
	return server.New(server.Config{
		Agent:        APIAgent(a),
		Logger:       p.log,
		MaxBodyBytes: p.cfg.API.MaxBodyBytes,
		AllowUIDs:    p.cfg.API.AllowUids,
		AllowGIDs:    allowedGids(p.cfg, p.log),
		Metrics:      metrics.Gatherer(),
	})
}

// The metrics listener's bounds. Any local process may connect to it, so
// none may hold it: a request is read within metricsReadTimeout and
// answered within metricsWriteTimeout, an idle connection is closed after
// metricsIdleTimeout, and at most metricsMaxConns are open at once (more
// wait in the kernel's backlog, costing the agent nothing).
var (
	metricsReadTimeout  = 10 * time.Second
	metricsWriteTimeout = 30 * time.Second
	metricsIdleTimeout  = 30 * time.Second
	metricsMaxConns     = 16
)

// serveMetrics also serves /metrics on addr, a loopback TCP address,
// unless it is "".
func serveMetrics(addr string, srv *server.Server) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	mln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	ms := &http.Server{
		Handler:           server.MetricsHandler(srv.Gatherer()),
		ReadHeaderTimeout: metricsReadTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    8 << 10,
	}
	go ms.Serve(netutil.LimitListener(mln, metricsMaxConns))
	return func() { ms.Close() }, nil
}

// handleSignals is the daemon's main loop once it serves: SIGHUP reloads,
// SIGUSR1 toggles a profile, SIGTERM and SIGINT stop; a tick feeds
// systemd's watchdog while the agent's loops are alive and refreshes the
// status line.
func (p *process) handleSignals(a *agent.Agent, srv *server.Server, serveErr <-chan error, activated bool, reconciling time.Time) error {
	ticker := time.NewTicker(p.tick())
	defer ticker.Stop()
	lastStatus := ""
	reconciled := a.Ready()
	for {
		select {
		case <-reconciled:
			reconciled = nil
			c := a.Counts()
			p.log.Info("reconciled", "instances", c.Total, "running", c.Running, "stopped", c.Stopped, "missing", c.Missing,
				"took", time.Since(reconciling))
			lastStatus = statusLine(a)
			p.sd.status(lastStatus)
		case sig := <-p.sigs:
			switch sig {
			case syscall.SIGHUP:
				p.reload(a)
			case syscall.SIGUSR1:
				p.prof.toggle()
			default:
				p.shutdown(sig, srv, activated)
				return nil
			}
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-ticker.C:
			p.feedWatchdog(a)
			if reconciled != nil && time.Since(reconciling) > 10*time.Second {
				p.log.Warn("the first reconciliation waits for the runtime to answer; serving from the registry meanwhile", "runtime", p.cfg.Runtime)
			}
			if s := statusLine(a); s != lastStatus {
				p.sd.status(s)
				lastStatus = s
			}
		}
	}
}

// tick is how often the main loop checks on the agent: every 10s, or
// three times per systemd watchdog interval when that is shorter.
func (p *process) tick() time.Duration {
	watchdog := p.sd.watchdogInterval()
	tick := 10 * time.Second
	if watchdog > 0 && watchdog/3 < tick {
		tick = watchdog / 3
	}
	return tick
}

func (p *process) feedWatchdog(a *agent.Agent) {
	if a.Alive() {
		p.sd.watchdog()
		return
	}
	p.log.Error("watchdog withheld: an agent loop is wedged", "health", a.Health(context.Background()).Agent.Loops)
}

// shutdown stops serving, waiting for the calls in flight, and removes the
// socket the daemon made. Instances keep running.
func (p *process) shutdown(sig os.Signal, srv *server.Server, activated bool) {
	p.log.Info("stopping", "signal", sig.String())
	p.sd.stopping()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		p.log.Warn("calls still in flight at shutdown", "err", err)
	}
	if !activated {
		os.Remove(p.cfg.Socket)
	}
	p.log.Info("stopped; instances keep running")
}

// allowedGids are the groups that may call: api.allowGids, plus the
// socket's own group, whose members the socket's mode (0660) lets in.
func allowedGids(cfg Config, log *slog.Logger) []int {
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
	line := fmt.Sprintf("%d instances: %d running, %d stopped, %d missing", c.Total, c.Running, c.Stopped, c.Missing)
	select {
	case <-a.Ready():
		return line
	default:
		return "reconciling with the runtime; as last recorded, " + line
	}
}

// listen returns systemd's socket when the agent was socket-activated,
// or creates cfg.Socket itself.
func listen(cfg Config) (net.Listener, bool, error) {
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
