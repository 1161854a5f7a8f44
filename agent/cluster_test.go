package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// twoNodes are the nodes of the test cluster.
func twoNodes() []runtime.Node {
	return []runtime.Node{{Name: "n1", Addr: "10.0.0.1", Ready: true}, {Name: "n2", Addr: "10.0.0.2", Ready: true}}
}

// clusterConfig is a config a FakeCluster (which cannot enforce
// NoNewPrivileges nor CPU shares) accepts: no CPU shares, and
// NoNewPrivileges enforced by the nodes.
func clusterConfig(c *Config) {
	c.Instance.Resources.CPUShares = 0
	c.Instance.EnforcedByNodes = []string{runtime.FieldNoNewPrivileges}
}

// newClusterEnv starts an agent over a FakeCluster of nodes.
func newClusterEnv(t *testing.T, nodes []runtime.Node, mutate ...func(*Config)) (*fakeEnv, *runtimetest.FakeCluster) {
	t.Helper()
	cfg := testConfig(t)
	clusterConfig(&cfg.Config)
	for _, m := range mutate {
		m(&cfg.Config)
	}
	e := &fakeEnv{t: t, cfg: cfg, clock: newClock()}
	fc := runtimetest.NewFakeCluster(nodes, runtimetest.WithClock(e.clock.Now))
	e.fake, e.rt = fc.Fake, fc
	e.start()
	return e, fc
}

// reconcile runs one resync, as the reconcile loop does.
func (e *fakeEnv) reconcile() {
	e.t.Helper()
	assert.NilError(e.t, e.a.resync(context.Background()))
}

func TestClusterPinsSpreadUsers(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes())
	want := map[string]string{"alice": "n1", "bob": "n2", "carol": "n1", "dave": "n2"}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		in := e.ensure(u, InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeCreated)
		assert.Equal(t, in.State, StateRunning)
		assert.Equal(t, in.Node, want[u], "user %s", u)
		addr := map[string]string{"n1": "10.0.0.1", "n2": "10.0.0.2"}[want[u]]
		assert.Equal(t, in.URL, fmt.Sprintf("http://%s:%d", addr, in.Port))

		// The spec: placed on the pin, published on every address of the
		// node, no swap limit (the runtime cannot set one), the nodes'
		// NoNewPrivileges.
		created, ok := fc.CreatedSpec(in.ContainerID)
		assert.Assert(t, ok)
		assert.Equal(t, created.Placement.Node, want[u])
		assert.DeepEqual(t, created.Ports, []runtime.PortBinding{{HostPort: in.Port, ContainerPort: 18789, Protocol: "tcp"}})
		assert.Equal(t, created.Resources.MemorySwap, "")
		assert.Equal(t, created.Resources.CPUShares, int64(0))
		c, ok := fc.Container(in.ContainerID)
		assert.Assert(t, ok)
		assert.Equal(t, c.Node, want[u])

		// The data dir is made on the node, owned by the user's uid, and
		// not on this host.
		uid, _ := e.reg.UID(u)
		dir := filepath.Join(e.cfg.StateDir, "instances", u)
		assert.Check(t, is.Contains(fc.Dirs(want[u]), runtime.DirSpec{Node: want[u], Path: dir, UID: uid, GID: uid}))
		_, err := os.Lstat(dir)
		assert.Check(t, errors.Is(err, os.ErrNotExist), "local data dir: %v", err)
	}
	assert.DeepEqual(t, e.reg.Nodes(), want)

	// Listed with their nodes too.
	list, err := e.a.List(context.Background(), "")
	assert.NilError(t, err)
	for _, in := range list {
		assert.Check(t, is.Equal(in.Node, want[in.UserID]))
	}

	// A new agent on the same registry and engine keeps the pins, and
	// reuses the containers where they are.
	e.restart()
	assert.DeepEqual(t, e.reg.Nodes(), want)
	for u, node := range want {
		in := e.ensure(u, InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeReused)
		assert.Equal(t, in.Node, node)
	}
	data, err := os.ReadFile(filepath.Join(e.cfg.StateDir, registry.FileName))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(data), `"nodes":{`))

	// Removed, the user keeps its node: made again there, never
	// elsewhere, even with the other node emptier.
	assert.NilError(t, e.a.Remove(context.Background(), "alice", false))
	assert.NilError(t, e.a.Remove(context.Background(), "bob", false))
	assert.NilError(t, e.a.Remove(context.Background(), "dave", false))
	in := e.ensure("carol", InstanceSpec{})
	assert.Equal(t, in.Node, "n1")
	in = e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeCreated)
	assert.Equal(t, in.Node, "n1")
}

func TestClusterNodeDown(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes())
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		e.ensure(u, InstanceSpec{})
	}
	sub := e.a.Subscribe(64)
	defer sub.Close()

	assert.NilError(t, fc.SetNodeDown("n2", ""))
	e.reconcile()
	for _, u := range []string{"bob", "dave"} {
		in, err := e.a.Get(context.Background(), u)
		assert.NilError(t, err)
		assert.Equal(t, in.State, StateMissing, "user %s", u)
		assert.Equal(t, in.Reason, "node n2 is not ready: node n2 is down")
		assert.Equal(t, in.Node, "n2")
	}
	missing, err := e.a.List(context.Background(), StateMissing)
	assert.NilError(t, err)
	assert.Equal(t, len(missing), 2)
	assert.Equal(t, e.a.Counts().Missing, 2)
	seen := map[string]string{}
	for len(seen) < 2 {
		select {
		case ev := <-sub.C:
			if ev.Type == EventMissing {
				seen[ev.UserID] = ev.Message
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("missing events: got %v", seen)
		}
	}
	assert.DeepEqual(t, seen, map[string]string{"bob": "node n2 is not ready: node n2 is down", "dave": "node n2 is not ready: node n2 is down"})

	// An ensure of a user of n2 is refused, and nothing is made anywhere;
	// the others are served as before, a hot ensure with no runtime call.
	fc.ResetCalls()
	_, err = e.a.Ensure(context.Background(), "bob", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "%v", err)
	assert.Check(t, is.ErrorContains(err, "node n2 is not ready: node n2 is down"))
	assert.Equal(t, fc.Calls("Create")+fc.Calls("Start")+fc.Calls("Remove"), 0)
	_, err = e.a.Restart(context.Background(), "bob")
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "%v", err)
	assert.Equal(t, fc.Calls("Restart"), 0)
	fc.ResetCalls()
	in := e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, fc.TotalCalls(), 0, "%v", fc.CallCounts())

	// A user of n2 whose container went while the node was down.
	assert.NilError(t, fc.RemoveBehindBack("zaki-user-dave"))

	// Node back: after one reconcile its users run again where they were.
	assert.NilError(t, fc.SetNodeUp("n2"))
	e.reconcile()
	in, err = e.a.Get(context.Background(), "bob")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, in.Reason, "")
	in = e.ensure("bob", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Equal(t, in.Node, "n2")
	in = e.ensure("dave", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeCreated)
	assert.Equal(t, in.Node, "n2")
	created, _ := fc.CreatedSpec(in.ContainerID)
	assert.Equal(t, created.Placement.Node, "n2")
}

// Logs, exec, touch and restart of a user whose node is not ready are
// refused as its ensure is (503 node_unavailable, the same message), not
// answered with what the runtime says; a touch reads the nodes as last
// asked only, and leaves the user's last use alone. The users of other
// nodes are served as before.
func TestClusterNodeDownRefusesCalls(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes())
	ctx := context.Background()
	e.ensure("c19alice", InstanceSpec{})
	bob := e.ensure("c19bob", InstanceSpec{})
	assert.Equal(t, bob.Node, "n2")
	assert.NilError(t, fc.SetNodeDown("n2", ""))
	e.reconcile()
	before, ok := e.reg.Get("c19bob")
	assert.Assert(t, ok)
	e.clock.Add(time.Minute)

	_, ensureErr := e.a.Ensure(ctx, "c19bob", InstanceSpec{}, EnsureOptions{})
	assert.Assert(t, errors.Is(ensureErr, errdefs.ErrNodeUnavailable), "%v", ensureErr)
	const want = `instance of user "c19bob": node n2 is not ready: node n2 is down (its data lives there: it is not made on another node; retry once the node is back)`
	assert.Check(t, is.ErrorContains(ensureErr, want))

	fc.ResetCalls()
	_, err := e.a.Touch(ctx, "c19bob")
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "touch: %v", err)
	assert.Check(t, is.Error(err, want))
	assert.Equal(t, fc.TotalCalls(), 0, "touch: %v", fc.CallCounts())
	after, _ := e.reg.Get("c19bob")
	assert.Equal(t, after.LastUsedAtMs, before.LastUsedAtMs)

	_, err = e.a.Logs(ctx, "c19bob", runtime.LogOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "logs: %v", err)
	assert.Check(t, is.Error(err, want))
	_, err = e.a.Exec(ctx, "c19bob", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", "x")})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "exec: %v", err)
	assert.Check(t, is.Error(err, want))
	_, err = e.a.Restart(ctx, "c19bob")
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "restart: %v", err)
	assert.Check(t, is.Error(err, want))
	assert.Equal(t, fc.Calls("Logs")+fc.Calls("Exec")+fc.Calls("Restart"), 0, "%v", fc.CallCounts())

	// An unknown user is still not found, whatever the nodes.
	_, err = e.a.Touch(ctx, "c19nobody")
	assert.Check(t, errors.Is(err, errdefs.ErrNotFound), "%v", err)

	// A user of a ready node: touch makes no runtime call, logs and exec
	// answer.
	fc.ResetCalls()
	in, err := e.a.Touch(ctx, "c19alice")
	assert.NilError(t, err)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, fc.TotalCalls(), 0, "%v", fc.CallCounts())
	rc, err := e.a.Logs(ctx, "c19alice", runtime.LogOptions{})
	assert.NilError(t, err)
	rc.Close()
	res, err := e.a.Exec(ctx, "c19alice", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", "x")})
	assert.NilError(t, err)
	assert.Equal(t, res.Stdout, "x\n")

	// Node back: served again.
	assert.NilError(t, fc.SetNodeUp("n2"))
	e.reconcile()
	_, err = e.a.Touch(ctx, "c19bob")
	assert.NilError(t, err)
	_, err = e.a.Exec(ctx, "c19bob", socketapi.ExecRequest{Cmd: runtimetest.StubCmd("echo", "x")})
	assert.NilError(t, err)
}

// A user whose container stopped on a node lost is refused too, and
// started where it is once the node is back.
func TestClusterNodeDownStopped(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes())
	e.ensure("alice", InstanceSpec{})
	bob := e.ensure("bob", InstanceSpec{})
	_, err := e.a.Stop(context.Background(), "bob")
	assert.NilError(t, err)
	assert.NilError(t, fc.SetNodeDown("n2", "node n2: heartbeat failure"))
	// No reconcile: the nodes as last asked say n2 is ready, the start
	// fails, and the nodes asked anew say why.
	fc.ResetCalls()
	_, err = e.a.Ensure(context.Background(), "bob", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "%v", err)
	assert.Check(t, is.ErrorContains(err, "node n2 is not ready: node n2: heartbeat failure"))
	assert.Equal(t, fc.Calls("Create")+fc.Calls("Remove"), 0)
	// Then refused before any start.
	fc.ResetCalls()
	_, err = e.a.Ensure(context.Background(), "bob", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "%v", err)
	assert.Equal(t, fc.Calls("Create")+fc.Calls("Start"), 0)
	assert.NilError(t, fc.SetNodeUp("n2"))
	e.reconcile()
	in := e.ensure("bob", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeStarted)
	assert.Equal(t, in.ContainerID, bob.ContainerID)
}

// No node ready: a new user is refused, and pinned nowhere.
func TestClusterNoNodeReady(t *testing.T) {
	e, fc := newClusterEnv(t, []runtime.Node{{Name: "n1", Addr: "10.0.0.1"}})
	fc.ResetCalls()
	_, err := e.a.Ensure(context.Background(), "alice", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrNodeUnavailable), "%v", err)
	_, ok := e.reg.Node("alice")
	assert.Check(t, !ok)
	assert.Equal(t, fc.Calls("Create"), 0)
}

// A registry that lost its pins (an older copy), with the containers
// still running: the pins come back from the containers' nodes, never
// chosen anew.
func TestClusterPinsRebuiltFromContainers(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes())
	for _, u := range []string{"alice", "bob", "carol"} {
		e.ensure(u, InstanceSpec{})
	}
	want := e.reg.Nodes()
	assert.DeepEqual(t, want, map[string]string{"alice": "n1", "bob": "n2", "carol": "n1"})
	e.stop()

	// Drop "nodes" from registry.json.
	file := filepath.Join(e.cfg.StateDir, registry.FileName)
	data, err := os.ReadFile(file)
	assert.NilError(t, err)
	var doc map[string]json.RawMessage
	assert.NilError(t, json.Unmarshal(data, &doc))
	delete(doc, "nodes")
	data, err = json.Marshal(doc)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(file, data, 0o600))

	e.start()
	assert.DeepEqual(t, e.reg.Nodes(), want)
	fc.ResetCalls()
	for u, node := range want {
		in := e.ensure(u, InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeReused)
		assert.Equal(t, in.Node, node)
	}
	assert.Equal(t, fc.Calls("Create"), 0)

	// And with no registry at all: adopted, pinned where they run.
	e.stop()
	assert.NilError(t, os.Remove(file))
	e.start()
	assert.DeepEqual(t, e.reg.Nodes(), want)
	// A new user goes to the node with the fewest pins.
	in := e.ensure("dave", InstanceSpec{})
	assert.Equal(t, in.Node, "n2")
}

// The config is checked against what the runtime cannot enforce, at
// start and at reload.
func TestClusterConfigRefusesUnenforced(t *testing.T) {
	newAgent := func(t *testing.T, rt runtime.Runtime, mutate ...func(*Config)) (*Agent, error) {
		cfg := testConfig(t)
		for _, m := range mutate {
			m(&cfg.Config)
		}
		reg, err := registry.Open(cfg.StateDir, registry.Options{Logger: slog.New(slog.DiscardHandler)})
		assert.NilError(t, err)
		t.Cleanup(func() { reg.Close() })
		return New(cfg.Config, rt, reg, Options{StateDir: cfg.StateDir, NodePoll: 1 << 62})
	}
	cluster := func() runtime.Runtime { return runtimetest.NewFakeCluster(twoNodes()) }

	// The defaults set NoNewPrivileges and CPU shares: refused, each
	// named with its key.
	_, err := newAgent(t, cluster())
	assert.Check(t, is.ErrorContains(err, "instance.security.noNewPrivileges is set, but the runtime fake cannot enforce it"))
	assert.Check(t, is.ErrorContains(err, "instance.resources.cpuShares is set"))
	assert.Check(t, is.ErrorContains(err, `list "resources.cpuShares" in instance.enforcedByNodes`))
	// Not a word of what the agent sets on its own.
	assert.Check(t, !strings.Contains(err.Error(), "memorySwap") && !strings.Contains(err.Error(), "hostIP"), "%v", err)

	// Accepted when the nodes enforce them (or they are unset).
	_, err = newAgent(t, cluster(), func(c *Config) {
		c.Instance.EnforcedByNodes = []string{runtime.FieldNoNewPrivileges, runtime.FieldCPUShares}
	})
	assert.NilError(t, err)
	a, err := newAgent(t, cluster(), clusterConfig)
	assert.NilError(t, err)

	// An unknown key is refused, whatever the runtime.
	_, err = newAgent(t, runtimetest.NewFake(), func(c *Config) { c.Instance.EnforcedByNodes = []string{"placement.node"} })
	assert.Check(t, is.ErrorContains(err, `instance.enforcedByNodes: unknown field "placement.node"`))

	// dataQuota and minFreeSpace: their defaults are off with a cluster
	// runtime, anything else but off is refused.
	_, err = newAgent(t, cluster(), clusterConfig, func(c *Config) { c.Instance.DataQuota, c.MinFreeSpace = "5g", "2g" })
	assert.Check(t, is.ErrorContains(err, `instance.dataQuota "5g": not with a runtime that places instances on nodes`))
	assert.Check(t, is.ErrorContains(err, `minFreeSpace "2g"`))
	_, err = newAgent(t, cluster(), clusterConfig, func(c *Config) { c.Instance.DataQuota, c.MinFreeSpace = "0", "" })
	assert.NilError(t, err)

	// The pause tier: a cluster runtime has no pause (the swarm plugin
	// answers ErrConflict to Pause), refused by its key.
	_, err = newAgent(t, cluster(), clusterConfig, func(c *Config) { c.Prune.IdlePauseMinutes, c.Prune.IdleStopMinutes = 10, 60 })
	assert.Check(t, is.ErrorContains(err, "prune.idlePauseMinutes 10: not with a runtime that places instances on nodes (it has no pause"))
	assert.Check(t, is.ErrorContains(err, "set it to 0"))

	// A reload is checked the same way, and the running config stays.
	next := a.Config()
	next.Instance.Resources.CPUShares = 256
	_, _, err = a.Reload(next)
	assert.Check(t, is.ErrorContains(err, "instance.resources.cpuShares is set"))
	assert.Equal(t, a.Config().Instance.Resources.CPUShares, int64(0))
	next.Instance.EnforcedByNodes = append(next.Instance.EnforcedByNodes, runtime.FieldCPUShares)
	_, _, err = a.Reload(next)
	assert.NilError(t, err)
	// So is the pause tier at reload, and nothing changes.
	before := a.Config()
	next = before
	next.Prune.IdlePauseMinutes, next.Prune.IdleStopMinutes = 10, 60
	needRestart, applied, err := a.Reload(next)
	assert.Check(t, is.ErrorContains(err, "prune.idlePauseMinutes 10: not with a runtime that places instances on nodes"))
	assert.Check(t, needRestart == nil && applied == nil)
	assert.DeepEqual(t, a.Config(), before)

	// A prune pass that asks for the pause tier is refused the same way,
	// and pauses nothing.
	pause := 0.001
	_, err = a.Prune(context.Background(), PruneRequest{IdlePauseMinutes: &pause})
	assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument))
	assert.Check(t, is.ErrorContains(err, "idlePauseMinutes 0.001: not with a runtime that places instances on nodes"))

	// A local runtime is not concerned: the defaults stand as they are.
	_, err = newAgent(t, runtimetest.NewFake())
	assert.NilError(t, err)
	_, err = newAgent(t, runtimetest.NewFake(), func(c *Config) { c.Prune.IdlePauseMinutes, c.Prune.IdleStopMinutes = 10, 60 })
	assert.NilError(t, err)
}

// Files are written on this host, purge and import act on it: refused
// with a cluster runtime.
func TestClusterRefusesLocalDataWork(t *testing.T) {
	e, _ := newClusterEnv(t, twoNodes())
	_, err := e.a.Ensure(context.Background(), "alice", InstanceSpec{Files: map[string]string{"a.json": "{}"}}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
	assert.Check(t, is.ErrorContains(err, "files and seedFiles"))
	e.ensure("alice", InstanceSpec{})
	err = e.a.Remove(context.Background(), "alice", true)
	assert.Check(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
	assert.Check(t, is.ErrorContains(err, `its data lives on node "n1"`))
	_, err = e.a.Import(context.Background(), ImportRequest{})
	assert.Check(t, errors.Is(err, errdefs.ErrInvalidArgument), "%v", err)
	// Remove without purge keeps the pin, as the uid.
	assert.NilError(t, e.a.Remove(context.Background(), "alice", false))
	n, ok := e.reg.Node("alice")
	assert.Check(t, ok && n == "n1")
}

// localPlugin is a local runtime as the plugin shim is one: it implements
// runtime.Cluster, and answers ErrUnimplemented (counting the calls).
type localPlugin struct {
	*runtimetest.Fake
	nodes atomic.Int64
}

func (p *localPlugin) Nodes(context.Context) ([]runtime.Node, error) {
	p.nodes.Add(1)
	return nil, runtime.Errorf(runtime.ErrUnimplemented, "runtime plugin docker has no nodes")
}

func (p *localPlugin) PrepareDir(context.Context, runtime.DirSpec) error {
	return runtime.Errorf(runtime.ErrUnimplemented, "runtime plugin docker has no nodes")
}

// A local runtime answering ErrUnimplemented is asked once, at start;
// ensures, cold and hot, never ask for nodes, and nothing changes.
func TestLocalRuntimeIsNotACluster(t *testing.T) {
	cfg := testConfig(t)
	e := &fakeEnv{t: t, cfg: cfg, clock: newClock()}
	e.fake = runtimetest.NewFake(runtimetest.WithClock(e.clock.Now))
	lp := &localPlugin{Fake: e.fake}
	e.rt = lp
	e.start()
	assert.Equal(t, lp.nodes.Load(), int64(1))
	assert.Check(t, e.a.cluster == nil)
	in := e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeCreated)
	assert.Equal(t, in.Node, "")
	assert.Equal(t, in.URL, fmt.Sprintf("http://127.0.0.1:%d", in.Port))
	created, _ := e.fake.CreatedSpec(in.ContainerID)
	assert.Equal(t, created.Placement.Node, "")
	assert.Equal(t, created.Ports[0].HostIP, "127.0.0.1")
	assert.Equal(t, created.Resources.MemorySwap, created.Resources.Memory)
	in = e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	e.reconcile()
	assert.Equal(t, lp.nodes.Load(), int64(1))
	_, ok := e.reg.Node("alice")
	assert.Check(t, !ok)
	assert.Equal(t, len(e.reg.Nodes()), 0)
}

// Through the plugin process: the supervisor's Cluster calls reach the
// fake's cluster mode (ZAKI_FAKE_NODES); without it the plugin answers
// ErrUnimplemented, and the agent is local.
func TestClusterThroughPlugin(t *testing.T) {
	for _, tc := range []struct {
		name, node, host string
		env              []string
	}{
		{name: "cluster", node: "n1", host: "10.0.0.1", env: []string{"ZAKI_FAKE_NODES=n1=10.0.0.1,n2=10.0.0.2"}},
		{name: "local", node: "", host: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := testenv.Binary(t, "zaki-runtime-fake")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := runtime.Launch(ctx, runtime.PluginConfig{Name: "fake", Path: bin, Env: tc.env, Logger: slog.New(slog.DiscardHandler)})
			assert.NilError(t, err)
			t.Cleanup(func() { p.Close() }) // after the agent's stop (cleanups run last first)
			cfg := testConfig(t)
			clusterConfig(&cfg.Config)
			e := &fakeEnv{t: t, cfg: cfg, clock: newClock(), rt: p}
			e.start()
			assert.Equal(t, e.a.cluster != nil, tc.node != "")
			in := e.ensure("alice", InstanceSpec{})
			assert.Equal(t, in.Outcome, OutcomeCreated)
			assert.Equal(t, in.Node, tc.node)
			assert.Equal(t, in.URL, fmt.Sprintf("http://%s:%d", tc.host, in.Port))
			c, err := p.Inspect(ctx, in.ContainerID)
			assert.NilError(t, err)
			assert.Equal(t, c.Spec.Placement.Node, tc.node)
			node, pinned := e.reg.Node("alice")
			assert.Equal(t, pinned, tc.node != "")
			assert.Equal(t, node, tc.node)
		})
	}
}

// With instance.mounts, each mounted sub-dir is made on the node too.
func TestClusterPreparesMountedDirs(t *testing.T) {
	e, fc := newClusterEnv(t, twoNodes(), func(c *Config) {
		c.Instance.Mounts = []string{".openclaw:/home/node/.openclaw", "workspace/a:/home/node/workspace"}
	})
	in := e.ensure("alice", InstanceSpec{})
	uid, _ := e.reg.UID("alice")
	dir := filepath.Join(e.cfg.StateDir, "instances", "alice")
	assert.DeepEqual(t, fc.Dirs(in.Node), []runtime.DirSpec{
		{Node: "n1", Path: dir, UID: uid, GID: uid},
		{Node: "n1", Path: filepath.Join(dir, ".openclaw"), UID: uid, GID: uid},
		{Node: "n1", Path: filepath.Join(dir, "workspace/a"), UID: uid, GID: uid},
	})
	created, _ := fc.CreatedSpec(in.ContainerID)
	assert.DeepEqual(t, created.Mounts, []runtime.Mount{
		{Source: filepath.Join(dir, ".openclaw"), Target: "/home/node/.openclaw"},
		{Source: filepath.Join(dir, "workspace/a"), Target: "/home/node/workspace"},
	})
}
