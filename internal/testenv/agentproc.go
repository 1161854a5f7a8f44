package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// AgentCgroups are cgroup directories (absolute paths, no spaces) that
// every agent process started from now on joins before it runs; a suite's
// TestMain sets them to hold its agents to the unit's limits. Empty: the
// agents stay in the test's own cgroups.
var AgentCgroups []string

// AgentOptions tune StartAgent.
type AgentOptions struct {
	// StateDir is the agent's state dir; a new temp dir when empty.
	StateDir string
	// Config is TOML appended to the generated config file (top-level
	// keys first, then tables; it must not repeat generated keys).
	Config string
	// Instance is TOML added to the generated [instance] table (keys of
	// its own, not sub-tables: put those in Config).
	Instance string
	// Args are extra command-line flags.
	Args []string
	// Env is added to the agent's environment (e.g. a PATH with a stand-in
	// docker CLI).
	Env []string
	// Runtime is the runtime plugin ("docker" when empty).
	Runtime string
	// NoWait returns as soon as the process is started, without waiting for
	// the socket to answer.
	NoWait bool
	// Serving returns as soon as the agent answers, without waiting for
	// its first reconciliation with the engine (which it does after it
	// says READY=1).
	Serving bool
}

// AgentProc is a real zaki-agent process with the real runtime plugin,
// on its own state dir, socket, network and port window, with the
// stand-in image as its default. Everything it creates is removed when
// the test ends.
type AgentProc struct {
	t        testing.TB
	opts     AgentOptions
	Dir      string // holds the config, socket and (by default) the state dir
	StateDir string
	Socket   string
	Config   string // path of the config file
	Network  string
	// LabelPrefix is unique to this agent, so that agents of tests running
	// side by side never adopt each other's containers.
	LabelPrefix string
	PortLo      int
	PortHi      int
	Client      *socketapi.Client
	PluginDir   string

	mu        sync.Mutex
	cmd       *exec.Cmd
	log       *syncBuffer
	done      chan struct{}
	lastState *os.ProcessState
}

// StartAgent builds the binaries when needed, makes sure of the engine
// and the stand-in image, and starts an agent.
func StartAgent(t testing.TB, opts AgentOptions) *AgentProc {
	t.Helper()
	RequireDocker(t)
	EnsureStubImage(t)
	rt := opts.Runtime
	if rt == "" {
		rt = "docker"
	}
	agentBin := Binary(t, "zaki-agent")
	plugin := Binary(t, "zaki-runtime-"+rt)
	dir, err := os.MkdirTemp("", "zaki-agent-test-")
	if err != nil {
		t.Fatal(err)
	}
	p := &AgentProc{
		t:           t,
		opts:        opts,
		Dir:         dir,
		StateDir:    opts.StateDir,
		Socket:      filepath.Join(dir, "agent.sock"),
		Config:      filepath.Join(dir, "config.toml"),
		Network:     UniqueName("zaki-test-net"),
		LabelPrefix: fmt.Sprintf("zt%d%d", os.Getpid(), rand.IntN(1e6)),
		PluginDir:   filepath.Dir(plugin),
	}
	if p.StateDir == "" {
		p.StateDir = filepath.Join(dir, "state")
	}
	p.PortLo = 30000 + rand.IntN(300)*100
	p.PortHi = p.PortLo + 99
	cfg := fmt.Sprintf(`socket = %q
socketGroup = ""
stateDir = %q
runtime = %q
pluginDir = %q
logLevel = "debug"
%s
[instance]
image = %q
allowedImages = ["zaki/*"]
network = %q
labelPrefix = %q
portRange = "%d-%d"
healthCmd = ["/gateway-stub", "-probe"]
healthIntervalSeconds = 2
readinessTimeoutSeconds = 30
stopTimeoutSeconds = 2
%s
`, p.Socket, p.StateDir, rt, p.PluginDir, topLevel(opts.Config), StubImage, p.Network, p.LabelPrefix, p.PortLo, p.PortHi, opts.Instance)
	cfg += tables(opts.Config)
	if err := os.WriteFile(p.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = agentBin
	p.Client = &socketapi.Client{Socket: p.Socket}
	t.Cleanup(p.cleanup)
	p.Start()
	return p
}

// topLevel returns the lines of a TOML snippet before its first table.
func topLevel(s string) string {
	if strings.HasPrefix(s, "[") {
		return ""
	}
	if i := strings.Index(s, "\n["); i >= 0 {
		return s[:i+1]
	}
	return s
}

// tables returns the tables of a TOML snippet.
func tables(s string) string {
	if strings.HasPrefix(s, "[") {
		return s
	}
	if i := strings.Index(s, "\n["); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// Start starts the agent process (again) and waits until it answers.
func (p *AgentProc) Start() {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		p.t.Fatal("testenv: agent already running")
	}
	args := append([]string{"--config", p.Config}, p.opts.Args...)
	cmd := exec.Command(Binary(p.t, "zaki-agent"), args...)
	if len(AgentCgroups) > 0 {
		// A shell joins the cgroups, then execs the agent: the agent and
		// everything it starts (the plugin, the engine's CLI) are charged
		// there from their first instruction, as under systemd.
		cmd = exec.Command("/bin/sh", append([]string{"-c",
			`for d in $ZAKI_TEST_CGROUPS; do echo $$ >"$d/cgroup.procs" || exit 97; done; exec "$0" "$@"`,
			Binary(p.t, "zaki-agent")}, args...)...)
		cmd.Env = append(cmd.Env, "ZAKI_TEST_CGROUPS="+strings.Join(AgentCgroups, " "))
	}
	cmd.Env = append(append(os.Environ(), p.opts.Env...), cmd.Env...)
	if p.log == nil {
		p.log = &syncBuffer{}
	}
	fmt.Fprintf(p.log, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("start zaki-agent: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	if !p.opts.NoWait {
		p.WaitReady(60 * time.Second)
	}
}

// WaitReady waits until the agent answers its health check and, unless
// the options say Serving, has done its first reconciliation.
func (p *AgentProc) WaitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		h, err := p.Client.Health(ctx)
		cancel()
		if err == nil && (h.Agent.Ready || p.opts.Serving) {
			return
		}
		if err == nil {
			err = fmt.Errorf("not reconciled yet")
		}
		select {
		case <-p.exited():
			p.t.Fatalf("zaki-agent exited before it was ready:\n%s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("zaki-agent not ready within %v: %v\n%s", timeout, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *AgentProc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// Pid returns the agent's pid (0 when not running).
func (p *AgentProc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the agent process is alive.
func (p *AgentProc) Running() bool {
	select {
	case <-p.exited():
		return false
	default:
		return true
	}
}

// Signal sends sig to the agent process.
func (p *AgentProc) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Signal(sig)
	}
}

// Stop sends SIGTERM and waits for the agent to exit.
func (p *AgentProc) Stop() { p.end(syscall.SIGTERM) }

// Kill sends SIGKILL to the agent alone (not its plugin, which notices
// and exits on its own) and waits for it to exit.
func (p *AgentProc) Kill() { p.end(syscall.SIGKILL) }

func (p *AgentProc) end(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		p.t.Errorf("zaki-agent did not exit within 30s of %v", sig)
	}
	fmt.Fprintf(p.log, "=== exited (%v): %v\n", sig, cmd.ProcessState)
	p.mu.Lock()
	p.cmd, p.done, p.lastState = nil, nil, cmd.ProcessState
	p.mu.Unlock()
}

// ExitCode returns the exit status of the last run that ended, -1 when
// none has.
func (p *AgentProc) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastState == nil {
		return -1
	}
	return p.lastState.ExitCode()
}

// Restart stops the agent (SIGTERM) and starts it again.
func (p *AgentProc) Restart() {
	p.Stop()
	p.Start()
}

// Log returns everything the agent printed so far.
func (p *AgentProc) Log() string {
	if p.log == nil {
		return ""
	}
	return p.log.String()
}

// Containers returns the IDs of every container on the agent's network
// or carrying its users' label, running or not.
func (p *AgentProc) Containers(t testing.TB) []string {
	out := Docker(t, "ps", "-aq", "--no-trunc", "--filter", "network="+p.Network)
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

func (p *AgentProc) cleanup() {
	p.Stop()
	if p.t.Failed() {
		p.t.Logf("zaki-agent log:\n%s", p.Log())
	}
	if ids := p.Containers(p.t); len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	exec.Command("docker", "network", "rm", p.Network).Run()
	os.RemoveAll(p.Dir)
	if p.StateDir != filepath.Join(p.Dir, "state") && p.opts.StateDir == "" {
		os.RemoveAll(p.StateDir)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
