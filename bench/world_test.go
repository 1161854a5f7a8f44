package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/bench/baseline"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// spec is what every scenario ensures: the stand-in image (the agent's
// default) with one secret in its env.
var spec = socketapi.InstanceSpec{Env: map[string]string{"OPENCLAW_GATEWAY_TOKEN": "bench-token-not-a-secret"}}

// The host ports of one bench process: a block of 1000 above the kernel's
// ephemeral range and testenv's windows (30000-59999), so that nothing
// else on the machine binds them.
var portBase = 61000 + rand.IntN(4)*1000

// Port blocks within portBase.
const (
	agentPorts    = 0   // +0..299: the agents of the scenarios
	baselinePorts = 300 // +300..599: the baseline engine
	floorPorts    = 600 // +600..999: raw docker run
)

// world is one scenario's agent (the real binary and plugin, via testenv),
// a baseline engine, and a network and label prefix for the baseline's and
// the floor's containers. Everything is removed when the benchmark ends.
type world struct {
	b       *testing.B
	agent   *testenv.AgentProc
	cfg     agent.Config // the agent's config, as it runs
	base    *baseline.Engine
	prefix  string // label prefix of the baseline's and floor's containers
	network string // their network (inter-container traffic off, like the agent's)
	dir     string
	profDir string      // ZAKI_BENCH_PROFILE_DIR ("" when profiling is off; profile_test.go)
	profN   map[int]int // SIGUSR1 profiles started, by agent pid
}

type worldOptions struct {
	stateDir  string
	portRange string // the agent's; agentPorts.. when empty
	env       []string
	noWait    bool
}

func newWorld(b *testing.B, o worldOptions) *world {
	b.Helper()
	testenv.RequireDocker(b)
	testenv.EnsureStubImage(b)
	if o.portRange == "" {
		o.portRange = fmt.Sprintf("%d-%d", portBase+agentPorts, portBase+baselinePorts-1)
	}
	// The production health interval (30 s), not testenv's 2 s: 400
	// containers probed every 2 s load the engine with health execs, and
	// docker 20.10 has been seen to panic in its health monitor when one
	// is removed mid-exec (BENCHMARKS.md). The default ulimits as they
	// are (no nproc: see agent.DefaultConfig).
	args := []string{"--log-level=info", "--instance.port-range=" + o.portRange, "--instance.health-interval-seconds=30",
		// A loaded machine then measures instead of failing a 200-container
		// call at the default 60 s.
		"--call-timeout-seconds=600"}
	// ZAKI_BENCH_AGENT_ENV adds to the agents' environment, for looking
	// inside them (e.g. GODEBUG=gctrace=1); ZAKI_BENCH_AGENT_ARGS to their
	// flags, for trying settings (e.g. --max-engine-ops=16).
	o.env = append(o.env, strings.Fields(os.Getenv("ZAKI_BENCH_AGENT_ENV"))...)
	args = append(args, strings.Fields(os.Getenv("ZAKI_BENCH_AGENT_ARGS"))...)
	w := &world{b: b, prefix: fmt.Sprintf("zb%d%d", os.Getpid(), rand.IntN(1e6)),
		network: testenv.UniqueName("zaki-bench-net"), dir: b.TempDir(), profDir: profileDir(), profN: map[int]int{}}
	if w.profDir != "" {
		if err := os.MkdirAll(w.agentProfDir(), 0o755); err != nil {
			b.Fatal(err)
		}
		o.env = append(o.env, "ZAKI_AGENT_PROFILE_DIR="+w.agentProfDir())
	}
	p := testenv.StartAgent(b, testenv.AgentOptions{StateDir: o.stateDir, Args: args, Env: o.env, NoWait: o.noWait})
	cfg, _, err := daemon.ConfigFromArgs("zaki-agent", append([]string{"--config", p.Config}, args...), nil)
	if err != nil {
		b.Fatal(err)
	}
	w.agent, w.cfg = p, cfg.Config
	b.Cleanup(func() {
		if os.Getenv("ZAKI_BENCH_AGENT_LOG") != "" {
			b.Logf("agent log:\n%s", p.Log())
		}
		if ids := w.containers(w.prefix); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "network", "rm", w.network).Run()
	})
	testenv.Docker(b, "network", "create", "--label", w.prefix+".network=1",
		"-o", "com.docker.network.bridge.enable_icc=false", w.network)
	bc := cfg.Config
	bc.Instance.Network = w.network
	bc.Instance.PortRange = fmt.Sprintf("%d-%d", portBase+baselinePorts, portBase+floorPorts-1)
	w.base, err = baseline.New(baseline.Config{Dir: filepath.Join(w.dir, "baseline"), Agent: bc, LabelPrefix: w.prefix, ReadyInterval: ReadyInterval})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// containers returns the IDs of the containers labelled prefix.instance=1.
func (w *world) containers(prefix string) []string {
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label="+prefix+".instance=1").Output()
	if err != nil {
		w.b.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

// agentContainers returns the IDs of the agent's containers.
func (w *world) agentContainers() []string { return w.containers(w.cfg.Instance.LabelPrefix) }

// removeAll force-removes ids in one call.
func (w *world) removeAll(ids []string) {
	if len(ids) == 0 {
		return
	}
	if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		w.b.Fatalf("docker rm -f: %v: %s", err, out)
	}
}

// floorConfig is the agent's config with the floor's network.
func (w *world) floorConfig() agent.Config {
	c := w.cfg
	c.Instance.Network = w.network
	return c
}

// floorRun is one raw `docker run -d` + readiness wait of the identical
// spec, port floorPorts+i (mod 400).
func (w *world) floorRun(ctx context.Context, name string, i int) error {
	name = w.user("f", name)
	cfg := w.floorConfig()
	port := portBase + floorPorts + i%400
	dir := filepath.Join(w.dir, "floor", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	uid, gid := baseline.User(cfg.Instance)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	labels := baseline.Labels(w.prefix, name, "floor", port, time.Now().UnixMilli())
	env := map[string]string{"ZAKI_USER_ID": name}
	for k, v := range spec.Env {
		env[k] = v
	}
	return RawRun(ctx, cfg, baseline.ContainerName(name), cfg.Instance.Image, port, dir, labels, env)
}

// user is the user ID of name for a variant ("a" the agent, "b" the
// baseline, "f" the floor): container names are global on the engine, so
// they are unique to this world.
func (w *world) user(variant, name string) string { return w.prefix + "-" + variant + "-" + name }

// ensure is an agent ensure over the socket that must have outcome want.
func (w *world) ensure(ctx context.Context, name, want string) error {
	userID := w.user("a", name)
	in, err := w.agent.Client.Ensure(ctx, userID, spec)
	if err != nil {
		return fmt.Errorf("agent ensure %s: %w", userID, err)
	}
	if want != "" && in.Outcome != want {
		return fmt.Errorf("agent ensure %s: outcome %q, want %q", userID, in.Outcome, want)
	}
	return nil
}

// remove removes the agent's instance of name over the socket.
func (w *world) remove(ctx context.Context, name string) error {
	return w.agent.Client.Remove(ctx, w.user("a", name), false)
}

// baseEnsure is a baseline ensure that must have outcome want.
func (w *world) baseEnsure(ctx context.Context, name, want string) error {
	userID := w.user("b", name)
	in, err := w.base.Ensure(ctx, userID, spec)
	if err != nil {
		return fmt.Errorf("baseline ensure %s: %w", userID, err)
	}
	if want != "" && in.Outcome != want {
		return fmt.Errorf("baseline ensure %s: outcome %q, want %q", userID, in.Outcome, want)
	}
	return nil
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns
// the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// rawGet is one GET over the agent's socket, the whole body read: what a
// caller waits for, without the caller's own JSON decoding.
func rawGet(ctx context.Context, hc *http.Client, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://zaki-agent"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return int(n), err
}

// metrics are one variant's results, by unit.
type metrics map[string]float64

// report prints a variant's results as the sub-benchmark name: its
// metrics and no ns/op (the scenario ran once; its figures are inside).
func report(b *testing.B, name string, m metrics) {
	b.Helper()
	b.Run(name, func(b *testing.B) {
		for unit, v := range m {
			b.ReportMetric(v, unit)
		}
		b.ReportMetric(0, "ns/op")
	})
}

// envInt reads a knob from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// vmKB reads a field of /proc/<pid>/status, in kB.
func vmKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// breakdown reads the agent's /metrics and returns the mean time of each
// runtime call, registry write and ensure outcome, with counts: where a
// cold ensure's time goes, from the agent's own histograms.
func (w *world) breakdown(ctx context.Context) string {
	text, err := w.agent.Client.Metrics(ctx)
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	sums, counts := map[string]float64{}, map[string]float64{}
	var order []string
	for line := range strings.SplitSeq(string(text), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		for _, h := range []string{"zaki_runtime_call_duration_seconds", "zaki_registry_write_duration_seconds", "zaki_ensure_duration_seconds"} {
			if key, ok := strings.CutPrefix(name, h+"_sum"); ok {
				key = strings.TrimPrefix(h, "zaki_") + key
				if _, seen := sums[key]; !seen {
					order = append(order, key)
				}
				sums[key] = v
			} else if key, ok := strings.CutPrefix(name, h+"_count"); ok {
				counts[strings.TrimPrefix(h, "zaki_")+key] = v
			}
		}
	}
	var b strings.Builder
	for _, k := range order {
		if counts[k] > 0 {
			fmt.Fprintf(&b, "\n\t%-70s n=%-5.0f mean %8.2f ms", k, counts[k], 1000*sums[k]/counts[k])
		}
	}
	return b.String()
}
