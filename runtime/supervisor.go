package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// PluginConfig tells Launch how to run a runtime plugin.
type PluginConfig struct {
	Name string   // the runtime's name ("docker"), in logs and errors
	Path string   // the plugin binary, e.g. <pluginDir>/zaki-runtime-docker
	Args []string // its arguments, if any
	// Env is added to the plugin's environment, which is otherwise the
	// agent's own minus systemd's (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*,
	// INVOCATION_ID).
	// "KEY=value" entries.
	Env []string
	// Logger receives the plugin's log records (with attributes plugin and
	// pid) and the supervisor's; nil means slog.Default().
	Logger *slog.Logger

	// StartTimeout bounds each start, handshake included (default 10s).
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before each relaunch, which
	// doubles from MinBackoff (default 100ms) after each quick failure, up
	// to MaxBackoff (default 10s).
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a plugin must have run for the wait to start
	// again from MinBackoff (default 30s).
	StableAfter time.Duration

	// autoMTLS uses go-plugin's AutoMTLS instead of this agent's launch
	// keys (plugin_tls.go): the old path, for the benchmark that compares
	// the two (set by the tests only).
	autoMTLS bool
}

func (c PluginConfig) withDefaults() PluginConfig {
	if c.Name == "" {
		c.Name = strings.TrimPrefix(filepath.Base(c.Path), "zaki-runtime-")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.StableAfter <= 0 {
		c.StableAfter = 30 * time.Second
	}
	return c
}

// Plugin is a runtime plugin process under supervision, and the Runtime
// that reaches it. Calls go to the current plugin process; while there is
// none (it died and is not yet relaunched) they fail at once with
// ErrUnavailable, and calls in flight when it dies fail with
// ErrUnavailable too. A process that dies is relaunched in the background,
// after a backoff, until Close.
type Plugin struct {
	cfg PluginConfig
	log *slog.Logger

	mu       sync.Mutex
	cur      *generation // nil while the plugin is down
	closed   bool
	restarts int

	relaunched chan struct{} // one pending notice of a relaunch
	wake       chan struct{} // a call found the plugin unreachable: look now
	done       chan struct{} // closed by Close
	wg         sync.WaitGroup
}

var (
	_ Runtime = (*Plugin)(nil)
	_ Cluster = (*Plugin)(nil)
)

// generation is one plugin process and its client.
type generation struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	rt      Runtime
	pid     int
	started time.Time
	// The TLS of this launch (nil and 0 with AutoMTLS), for the tests:
	// the agent's config, and the inode of the pipe that took the plugin
	// its keys.
	clientTLS *tls.Config
	keysPipe  uint64
}

// exitPoll is how often the supervisor checks that the plugin process is
// alive (go-plugin tells exit only by polling Exited).
const exitPoll = 50 * time.Millisecond

// Launch starts the plugin binary cfg.Path, waits for its handshake and a
// first call over the channel (mutual TLS with keys made for this launch,
// plugin_tls.go), and supervises it until Close: when the process dies it is relaunched in the
// background. ctx's deadline bounds the first start (as StartTimeout does)
// and a ctx already done fails it; later relaunches are the supervisor's. A
// plugin that cannot start is an ErrUnavailable error. Launch never runs the plugin in the agent's process group,
// so a signal sent to the agent's group (Ctrl-C, a SIGTERM to the group)
// leaves it to the agent, which ends it with Close.
func Launch(ctx context.Context, cfg PluginConfig) (*Plugin, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, Errorf(ErrInvalidArgument, "launch runtime plugin: no path")
	}
	p := &Plugin{
		cfg:        cfg,
		log:        cfg.Logger.With("plugin", cfg.Name),
		relaunched: make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	g, err := p.start(ctx)
	if err != nil {
		return nil, err
	}
	p.cur = g
	p.wg.Add(1)
	go p.supervise(g)
	return p, nil
}

// start runs one plugin process and connects to it.
func (p *Plugin) start(ctx context.Context) (*generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start runtime plugin %s: %w", p.cfg.Name, err)
	}
	timeout := p.cfg.StartTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	deadline := time.Now().Add(timeout)
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = pluginEnv(os.Environ(), p.cfg.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g := &generation{cmd: cmd}
	cc := &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginSet(nil),
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env is the whole environment
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     timeout,
		Logger:           newHCLogAdapter(p.cfg.Logger, p.cfg.Name, filepath.Base(p.cfg.Path), g.processID),
	}
	if p.cfg.autoMTLS {
		cc.AutoMTLS = true
	} else {
		// This launch's keys (plugin_tls.go): the plugin's half goes down
		// a pipe, written and closed before the plugin starts (it is a
		// few KB, far below a pipe's buffer), the read end its fd 3.
		keys, err := newLaunchKeys()
		if err != nil {
			return nil, Errorf(ErrUnavailable, "start runtime plugin %s: %w", p.cfg.Name, err)
		}
		r, err := sendLaunchKeys(keys.payload)
		if err != nil {
			return nil, Errorf(ErrUnavailable, "start runtime plugin %s: %w", p.cfg.Name, err)
		}
		defer r.Close() // the plugin holds its own copy once started
		g.keysPipe = pipeInode(r)
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", launchKeysEnv, launchKeysFD))
		cc.TLSConfig = keys.client
		g.clientTLS = keys.client
	}
	g.client = plugin.NewClient(cc)
	rpc, err := g.client.Client()
	if err != nil {
		g.client.Kill()
		return nil, Errorf(ErrUnavailable, "start runtime plugin %s: %w", p.cfg.Name, err)
	}
	if err := checkConn(ctx, rpc, deadline); err != nil {
		g.client.Kill()
		return nil, Errorf(ErrUnavailable, "start runtime plugin %s: %w", p.cfg.Name, err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		g.client.Kill()
		return nil, Errorf(ErrUnavailable, "start runtime plugin %s: %w", p.cfg.Name, err)
	}
	g.rt = raw.(Runtime)
	g.pid = g.processID()
	g.started = time.Now()
	p.log.Debug("runtime plugin started", "pid", g.pid, "path", p.cfg.Path)
	return g, nil
}

// checkConn makes one call over the plugin's gRPC connection, go-plugin's
// health check, by deadline. gRPC connects lazily: this call makes the
// TLS handshake happen now, so that a plugin this launch cannot
// authenticate (or that cannot authenticate the agent) fails the launch,
// and is relaunched, rather than every call made to it later.
func checkConn(ctx context.Context, rpc plugin.ClientProtocol, deadline time.Time) error {
	c, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return fmt.Errorf("not a gRPC client: %T", rpc)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	_, err := healthpb.NewHealthClient(c.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	return nil
}

// processID is the plugin's PID once started. go-plugin starts the process
// before it starts the goroutines that log its output, so they see it.
func (g *generation) processID() int {
	if g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// supervise waits for the plugin process g to die and relaunches it, until
// Close.
func (p *Plugin) supervise(g *generation) {
	defer p.wg.Done()
	backoff := p.cfg.MinBackoff
	tick := time.NewTicker(exitPoll)
	defer tick.Stop()
	for {
		for !g.client.Exited() {
			select {
			case <-p.done:
				return
			case <-tick.C:
			case <-p.wake:
			}
		}
		p.mu.Lock()
		if p.cur == g {
			p.cur = nil
		}
		p.mu.Unlock()
		uptime := time.Since(g.started)
		g.client.Kill() // the process is gone: this releases the client
		if uptime >= p.cfg.StableAfter {
			backoff = p.cfg.MinBackoff
		}
		p.log.Warn("runtime plugin exited; relaunching", "pid", g.pid, "uptime", uptime.Round(time.Millisecond), "after", backoff)

		for g = nil; g == nil; {
			t := time.NewTimer(backoff)
			select {
			case <-p.done:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, p.cfg.MaxBackoff)
			ng, err := p.start(context.Background())
			if err != nil {
				p.log.Error("runtime plugin relaunch failed", "err", err, "retry_in", backoff)
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				p.kill(ng)
				return
			}
			p.cur = ng
			p.restarts++
			restarts := p.restarts
			p.mu.Unlock()
			// Logged before the notice: whoever waits on Relaunched
			// finds the line already written.
			p.log.Info("runtime plugin relaunched", "pid", ng.pid, "restarts", restarts)
			select {
			case p.relaunched <- struct{}{}:
			default: // a notice is pending already
			}
			g = ng
		}
	}
}

// killGrace is how long Close lets go-plugin end the plugin (gracefully,
// then with SIGKILL) before it kills the process itself.
const killGrace = 5 * time.Second

// kill ends the plugin process of g and waits until it is gone.
func (p *Plugin) kill(g *generation) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.client.Kill()
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
		// go-plugin's graceful shutdown is stuck on an unresponsive
		// plugin: kill it, which lets go-plugin's Kill return.
		if g.cmd.Process != nil {
			_ = g.cmd.Process.Kill()
		}
		<-done
	}
}

// Close kills the plugin process, stops relaunching it and waits until the
// process and the supervisor are gone. Calls after Close fail with
// ErrUnavailable.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	g := p.cur
	p.cur = nil
	close(p.done)
	p.mu.Unlock()
	if g != nil {
		p.kill(g)
	}
	p.wg.Wait()
	return nil
}

// Restarts returns how many times the plugin was relaunched.
func (p *Plugin) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Relaunched delivers a value after each successful relaunch (notices not
// yet received merge into one), so that the agent can resync its view of
// the engine.
func (p *Plugin) Relaunched() <-chan struct{} { return p.relaunched }

// Pid returns the PID of the current plugin process, 0 while there is none.
func (p *Plugin) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.client.Exited() {
		return 0
	}
	return p.cur.pid
}

// runtime returns the Runtime of the live plugin process, or ErrUnavailable
// at once when there is none.
func (p *Plugin) runtime() (Runtime, error) {
	p.mu.Lock()
	g, closed := p.cur, p.closed
	p.mu.Unlock()
	switch {
	case closed:
		return nil, Errorf(ErrUnavailable, "runtime plugin %s is closed", p.cfg.Name)
	case g == nil || g.client.Exited():
		p.nudge()
		return nil, Errorf(ErrUnavailable, "runtime plugin %s is down", p.cfg.Name)
	}
	return g.rt, nil
}

// nudge asks the supervisor to check on the plugin now.
func (p *Plugin) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// check passes err on, nudging the supervisor when it says that the
// plugin is unreachable.
func (p *Plugin) check(err error) error {
	if errors.Is(err, ErrUnavailable) {
		p.nudge()
	}
	return err
}

// pluginEnv is the plugin's environment: environ without the variables
// systemd hands the agent (they describe the agent's sockets and watchdog,
// and would mislead a child) and without those that tell a plugin where
// its TLS keys are, plus extra.
func pluginEnv(environ, extra []string) []string {
	env := make([]string, 0, len(environ)+len(extra))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if systemdEnv[name] || name == launchKeysEnv || name == "PLUGIN_CLIENT_CERT" {
			continue // launch sets the last two itself when it needs them
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// systemdEnv names what systemd hands the agent's unit and no child must
// act on. INVOCATION_ID is among them because podman reads it as "I am
// this unit's work": it then leaves each container's conmon in the
// caller's cgroup, the agent's unit, where stopping the agent kills it
// (KillMode=mixed); without it, conmon goes to a scope of its own.
var systemdEnv = map[string]bool{
	"LISTEN_PID": true, "LISTEN_FDS": true, "LISTEN_FDNAMES": true,
	"NOTIFY_SOCKET": true, "WATCHDOG_USEC": true, "WATCHDOG_PID": true,
	"INVOCATION_ID": true,
}

// The Runtime methods forward to the current plugin process.

func (p *Plugin) Info(ctx context.Context) (Info, error) {
	rt, err := p.runtime()
	if err != nil {
		return Info{}, err
	}
	info, err := rt.Info(ctx)
	return info, p.check(err)
}

func (p *Plugin) ImageID(ctx context.Context, ref string) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	id, err := rt.ImageID(ctx, ref)
	return id, p.check(err)
}

func (p *Plugin) PullImage(ctx context.Context, ref string, progress func(PullProgress)) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.PullImage(ctx, ref, progress))
}

func (p *Plugin) EnsureNetwork(ctx context.Context, spec NetworkSpec) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.EnsureNetwork(ctx, spec))
}

func (p *Plugin) RemoveNetwork(ctx context.Context, name string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.RemoveNetwork(ctx, name))
}

func (p *Plugin) Create(ctx context.Context, spec ContainerSpec) (string, error) {
	rt, err := p.runtime()
	if err != nil {
		return "", err
	}
	id, err := rt.Create(ctx, spec)
	return id, p.check(err)
}

func (p *Plugin) Start(ctx context.Context, ref string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Start(ctx, ref))
}

func (p *Plugin) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Stop(ctx, refs, timeout))
}

func (p *Plugin) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Restart(ctx, ref, timeout))
}

func (p *Plugin) Pause(ctx context.Context, ref string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Pause(ctx, ref))
}

func (p *Plugin) Resume(ctx context.Context, ref string) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Resume(ctx, ref))
}

func (p *Plugin) Remove(ctx context.Context, refs []string, opts RemoveOptions) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	return p.check(rt.Remove(ctx, refs, opts))
}

func (p *Plugin) Inspect(ctx context.Context, ref string) (Container, error) {
	rt, err := p.runtime()
	if err != nil {
		return Container{}, err
	}
	c, err := rt.Inspect(ctx, ref)
	return c, p.check(err)
}

func (p *Plugin) List(ctx context.Context, opts ListOptions) ([]Container, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	cs, err := rt.List(ctx, opts)
	return cs, p.check(err)
}

func (p *Plugin) Events(ctx context.Context, opts EventOptions) (EventStream, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	es, err := rt.Events(ctx, opts)
	return es, p.check(err)
}

func (p *Plugin) Logs(ctx context.Context, ref string, opts LogOptions) (io.ReadCloser, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	rc, err := rt.Logs(ctx, ref, opts)
	return rc, p.check(err)
}

func (p *Plugin) Exec(ctx context.Context, ref string, opts ExecOptions) (ExecResult, error) {
	rt, err := p.runtime()
	if err != nil {
		return ExecResult{}, err
	}
	res, err := rt.Exec(ctx, ref, opts)
	return res, p.check(err)
}

// Nodes and PrepareDir forward to the plugin's Cluster calls:
// ErrUnimplemented when its runtime has no nodes.

func (p *Plugin) Nodes(ctx context.Context) ([]Node, error) {
	rt, err := p.runtime()
	if err != nil {
		return nil, err
	}
	cl, ok := rt.(Cluster)
	if !ok {
		return nil, Errorf(ErrUnimplemented, "runtime plugin %s has no nodes", p.cfg.Name)
	}
	nodes, err := cl.Nodes(ctx)
	return nodes, p.check(err)
}

func (p *Plugin) PrepareDir(ctx context.Context, spec DirSpec) error {
	rt, err := p.runtime()
	if err != nil {
		return err
	}
	cl, ok := rt.(Cluster)
	if !ok {
		return Errorf(ErrUnimplemented, "runtime plugin %s has no nodes", p.cfg.Name)
	}
	return p.check(cl.PrepareDir(ctx, spec))
}
