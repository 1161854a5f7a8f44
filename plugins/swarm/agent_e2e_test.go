//go:build swarm

package swarm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// swarmAgent is a real zaki-agent with the real zaki-runtime-swarm on the
// harness: n1 only manages (its zaki.node label is taken off for the
// test), n2 and n3 run the instances. The agent's state dir is under
// testenv.SwarmNodePath, so that each user's data dir (state dir /
// instances / user) is on its node's own disk; provisioning made
// <stateDir>/instances on each node.
type swarmAgent struct {
	*testenv.AgentProc
	nodes    []testenv.SwarmNode // the harness's, the manager first
	zaki     []testenv.SwarmNode // the nodes instances run on: n2, n3
	api      *engineapi.Client   // the manager's Engine API
	stateDir string
}

func startSwarmAgent(t *testing.T) *swarmAgent {
	nodes, _ := setup(t)
	mgr := nodes[0]
	if len(nodes) != 3 {
		t.Fatalf("the harness has %d nodes, want 3 (scripts/swarm-harness.sh up 3)", len(nodes))
	}
	s := &swarmAgent{nodes: nodes, zaki: nodes[1:], api: engineapi.New(engineapi.Config{Socket: mgr.Socket})}
	t.Cleanup(func() { s.api.Close() })

	// n1 manages only: four users then spread two and two.
	nodeLabel(t, mgr, "--label-rm", "zaki.node")
	t.Cleanup(func() { nodeLabel(t, mgr, "--label-add", "zaki.node=true") })

	name := testenv.UniqueName("zaki-swa")
	s.stateDir = filepath.Join(testenv.SwarmNodePath, name, "state")
	for _, n := range s.zaki {
		assert.NilError(t, os.MkdirAll(n.HostPath(filepath.Join(s.stateDir, "instances")), 0o711))
	}
	// Registered before the agent's own clean-up, so run after it: the
	// agent is stopped first, then its services go.
	t.Cleanup(func() {
		if s.AgentProc != nil {
			for _, svc := range s.services(t) {
				s.api.RemoveService(context.Background(), svc.ID)
			}
		}
		for _, n := range nodes {
			os.RemoveAll(n.HostPath(filepath.Dir(s.stateDir)))
		}
		os.RemoveAll(filepath.Dir(s.stateDir))
	})
	s.AgentProc = testenv.StartAgent(t, testenv.AgentOptions{
		Runtime:  "swarm",
		StateDir: s.stateDir,
		Env:      []string{"ZAKI_SWARM_SOCKET=" + mgr.Socket, "ZAKI_SWARM_PREPARE_IMAGE=" + prepareImage(), "ZAKI_SWARM_POLL=500ms"},
		// The nodes' engines run with --no-new-privileges; a service
		// cannot set CPU shares.
		Instance: `enforcedByNodes = ["security.noNewPrivileges"]`,
		Config:   "[instance.resources]\ncpuShares = 0\n[prune]\nintervalMinutes = 60\n",
	})
	return s
}

// nodeLabel runs `docker node update <flag> <label>` for the manager
// itself.
func nodeLabel(t *testing.T, mgr testenv.SwarmNode, flag, label string) {
	t.Helper()
	out, err := exec.Command("docker", "-H", mgr.Host, "node", "update", flag, label, mgr.NodeID).CombinedOutput()
	if err != nil {
		t.Errorf("node update %s %s %s: %v: %s", flag, label, mgr.Name, err, out)
	}
}

// services returns the agent's services on the manager (by its label).
func (s *swarmAgent) services(t *testing.T) []engineapi.Service {
	t.Helper()
	svcs, err := s.api.Services(context.Background(), engineapi.Filters{"label": {s.LabelPrefix + ".instance"}}, false)
	assert.NilError(t, err)
	return svcs
}

// node returns the harness node named name.
func (s *swarmAgent) node(t *testing.T, name string) testenv.SwarmNode { return node(t, s.nodes, name) }

// dataDir is where the host sees user's data dir on node n.
func (s *swarmAgent) dataDir(n testenv.SwarmNode, user string) string {
	return n.HostPath(filepath.Join(s.stateDir, "instances", user))
}

// addr splits an instance's URL into its host and port.
func addr(t *testing.T, in socketapi.Instance) (string, int) {
	t.Helper()
	u, err := url.Parse(in.URL)
	assert.NilError(t, err)
	port, err := strconv.Atoi(u.Port())
	assert.NilError(t, err)
	return u.Hostname(), port
}

// call does method on in's URL + path and returns the body.
func call(method string, in socketapi.Instance, path, body string) (string, error) {
	req, err := http.NewRequest(method, strings.TrimSuffix(in.URL, "/")+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b.String(), fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b.String())
	}
	return b.String(), nil
}

// identity checks that in's URL answers with its own user's identity.
func identity(t *testing.T, in socketapi.Instance) {
	t.Helper()
	body, err := call(http.MethodGet, in, "/", "")
	assert.NilError(t, err)
	assert.Check(t, is.Contains(body, fmt.Sprintf("user %q", in.UserID)), "%s", in.URL)
}

// runtimeCalls reads the agent's count of runtime calls by method.
func runtimeCalls(t *testing.T, c *socketapi.Client) map[string]int {
	t.Helper()
	b, err := c.Metrics(context.Background())
	assert.NilError(t, err)
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	const prefix = `zaki_runtime_call_duration_seconds_count{method="`
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		method, rest, ok := strings.Cut(line, `"} `)
		assert.Assert(t, ok, "metric line %q", sc.Text())
		n, err := strconv.ParseFloat(rest, 64)
		assert.NilError(t, err)
		out[method] = int(n)
	}
	return out
}

// fileKept checks that in's stand-in reads back the file its user wrote.
func fileKept(t *testing.T, in socketapi.Instance) {
	t.Helper()
	body, err := call(http.MethodGet, in, "/files/owned.txt", "")
	assert.Check(t, err)
	assert.Check(t, is.Equal(body, "data of "+in.UserID))
}

// taskIP is the container address of user's task on node n.
func taskIP(t *testing.T, n testenv.SwarmNode, user string) string {
	t.Helper()
	out, err := exec.Command("docker", "-H", n.Host, "ps", "-q", "--filter",
		"label=com.docker.swarm.service.name=zaki-user-"+user).Output()
	assert.NilError(t, err)
	ids := strings.Fields(string(out))
	assert.Assert(t, is.Len(ids, 1), "tasks of %s on %s", user, n.Name)
	out, err = exec.Command("docker", "-H", n.Host, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", ids[0]).Output()
	assert.NilError(t, err)
	ip := strings.TrimSpace(string(out))
	assert.Assert(t, ip != "", "no address for %s's task on %s", user, n.Name)
	return ip
}

// TestAgentOnSwarm: the agent with the swarm runtime, end to end on the
// harness: four users spread two and two over n2 and n3, each URL (on
// its node's address) answering with its own user; hot ensures that make
// no runtime call; files on the user's node only, kept across stop,
// start, restart and prune; tenants apart by container address, by node
// port and across nodes while the host (the backend) reaches every port;
// a node's engine killed, another node's power cut, each node back; an
// agent SIGKILL, with and without its registry, rebuilt from the services
// with no duplicate and no re-pin. The cold ensure, start and stop times
// are logged (BENCHMARKS.md), not asserted.
func TestAgentOnSwarm(t *testing.T) {
	s := startSwarmAgent(t)
	c := s.Client
	ctx := context.Background()
	tag := strings.TrimPrefix(filepath.Base(filepath.Dir(s.stateDir)), "zaki-swa-")
	users := make([]string, 4)
	for i := range users {
		users[i] = fmt.Sprintf("swa%d-%s", i, strings.ReplaceAll(tag, "-", ""))
	}
	insts := map[string]socketapi.Instance{}
	byNode := map[string][]string{}
	var coldTimes []time.Duration

	t.Run("spread", func(t *testing.T) {
		for _, u := range users {
			start := time.Now()
			in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
			took := time.Since(start)
			assert.NilError(t, err, "ensure %s", u)
			coldTimes = append(coldTimes, took)
			assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
			assert.Check(t, is.Equal(in.State, "running"))
			host, _ := addr(t, in)
			assert.Check(t, is.Equal(host, s.node(t, in.Node).Address), "%s's URL %s is not on its node %s", u, in.URL, in.Node)
			insts[u] = in
			byNode[in.Node] = append(byNode[in.Node], u)
			identity(t, in)
		}
		assert.Check(t, is.Len(byNode["n2"], 2), "%v", byNode)
		assert.Check(t, is.Len(byNode["n3"], 2), "%v", byNode)
		assert.Check(t, is.Len(s.services(t), 4))
		t.Logf("cold ensure (create on the node, data dir by a job there, answering): %v", coldTimes)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("hot ensure makes no runtime call", func(t *testing.T) {
		before := runtimeCalls(t, c)
		start := time.Now()
		for range 10 {
			for _, u := range users {
				in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
				assert.NilError(t, err)
				assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeReused))
			}
		}
		elapsed := time.Since(start)
		after := runtimeCalls(t, c)
		// The node view is refreshed every 5 s by a loop of its own.
		for m, n := range after {
			d := n - before[m]
			switch {
			case m == "Nodes" && d <= int(elapsed/(5*time.Second))+1:
			case d != 0:
				t.Errorf("runtime method %s called %d times during %d hot ensures (%v)", m, d, 10*len(users), elapsed)
			}
		}
		t.Logf("40 hot ensures in %v; runtime calls before %v, after %v", elapsed, before, after)
	})

	t.Run("files stay on the node", func(t *testing.T) {
		for _, u := range users {
			_, err := call(http.MethodPost, insts[u], "/files/owned.txt", "data of "+u)
			assert.NilError(t, err)
		}
		for _, u := range users {
			for _, n := range s.nodes {
				dir := s.dataDir(n, u)
				if n.Name == insts[u].Node {
					b, err := os.ReadFile(filepath.Join(dir, "owned.txt"))
					assert.Check(t, err)
					assert.Check(t, is.Equal(string(b), "data of "+u))
					continue
				}
				_, err := os.Stat(dir)
				assert.Check(t, errors.Is(err, os.ErrNotExist), "%s's data dir on %s: %v", u, n.Name, err)
			}
			_, err := os.Stat(filepath.Join(s.stateDir, "instances", u))
			assert.Check(t, errors.Is(err, os.ErrNotExist), "%s's data dir on the agent's host: %v", u, err)
		}
	})

	t.Run("tenants apart, backend reaches all", func(t *testing.T) {
		ips := map[string]string{}
		for _, u := range users {
			ips[u] = taskIP(t, s.node(t, insts[u].Node), u)
		}
		type probe struct{ from, to, what string }
		var probes []probe
		for _, a := range users {
			// A positive control: the probe itself works.
			probes = append(probes, probe{a, "127.0.0.1:18789", "own port"})
			for _, b := range users {
				if a == b {
					continue
				}
				host, port := addr(t, insts[b])
				where := "same node"
				if insts[a].Node != insts[b].Node {
					where = "other node"
				}
				probes = append(probes,
					probe{a, net.JoinHostPort(ips[b], "18789"), "container address, " + where},
					probe{a, net.JoinHostPort(host, strconv.Itoa(port)), "node port, " + where})
			}
		}
		results := make([]string, len(probes))
		var wg sync.WaitGroup
		for i, p := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, err := call(http.MethodGet, insts[p.from], "/dial?addr="+url.QueryEscape(p.to), "")
				if err != nil {
					body = "probe failed: " + err.Error()
				}
				results[i] = strings.TrimSpace(body)
			}()
		}
		wg.Wait()
		for i, p := range probes {
			if p.what == "own port" {
				assert.Check(t, is.Equal(results[i], "connected"), "%s to its own port", p.from)
				continue
			}
			assert.Check(t, strings.HasPrefix(results[i], "error:"), "%s reached %s (%s): %s", p.from, p.to, p.what, results[i])
		}
		for _, u := range users {
			identity(t, insts[u])
		}
	})

	var stopTimes, startTimes []time.Duration
	t.Run("files kept across stop, start, restart, prune", func(t *testing.T) {
		for _, u := range users[:2] {
			start := time.Now()
			in, err := c.Stop(ctx, u)
			stopTimes = append(stopTimes, time.Since(start))
			assert.NilError(t, err)
			assert.Check(t, is.Equal(in.State, "stopped"))
			_, err = call(http.MethodGet, insts[u], "/", "")
			assert.Check(t, err != nil, "%s answers while stopped", u)
			start = time.Now()
			in, err = c.Ensure(ctx, u, socketapi.InstanceSpec{})
			startTimes = append(startTimes, time.Since(start))
			assert.NilError(t, err)
			assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeStarted))
			assert.Check(t, is.Equal(in.Node, insts[u].Node))
			fileKept(t, insts[u])
		}
		in, err := c.Restart(ctx, users[2])
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Node, insts[users[2]].Node))
		fileKept(t, insts[users[2]])

		time.Sleep(1100 * time.Millisecond)
		idle := 1.0 / 3600 // one second
		res, err := c.Prune(ctx, socketapi.PruneRequest{IdleHours: &idle})
		assert.NilError(t, err)
		assert.Check(t, is.Len(res.Removed, 4), "%+v", res)
		assert.Check(t, is.Len(s.services(t), 0))
		for _, u := range users {
			in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
			assert.NilError(t, err)
			assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
			assert.Check(t, is.Equal(in.Node, insts[u].Node), "%s moved", u)
			insts[u] = in
			fileKept(t, insts[u])
			identity(t, in)
		}
		t.Logf("stop %v; start (ensure of a stopped instance, answering) %v", stopTimes, startTimes)
	})
	if t.Failed() {
		t.FailNow()
	}

	// A node's engine killed (its containers keep running, and keep
	// answering, under their shims), then another node's power cut.
	for _, loss := range []struct{ name, node, flag string }{
		{"engine killed", "n2", ""}, {"power cut", "n3", "--all"},
	} {
		t.Run("node lost and back: "+loss.name, func(t *testing.T) { nodeLoss(t, s, insts, byNode, loss.node, loss.flag) })
		if t.Failed() {
			t.FailNow()
		}
	}

	for _, lose := range []bool{false, true} {
		name := "agent SIGKILL"
		if lose {
			name += ", registry lost"
		}
		t.Run(name, func(t *testing.T) {
			svcs := map[string]string{}
			for _, svc := range s.services(t) {
				svcs[svc.Spec.Name] = svc.ID
			}
			assert.Assert(t, is.Len(svcs, 4))
			s.Kill()
			if lose {
				reg := filepath.Join(s.stateDir, "registry.json")
				assert.NilError(t, os.Rename(reg, reg+".lost"))
			}
			s.Start()
			list, err := c.List(ctx, "")
			assert.NilError(t, err)
			assert.Check(t, is.Len(list, 4))
			for _, in := range list {
				assert.Check(t, is.Equal(in.State, "running"), "%s", in.UserID)
				assert.Check(t, is.Equal(in.Node, insts[in.UserID].Node), "%s re-pinned", in.UserID)
			}
			for _, u := range users {
				in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
				assert.NilError(t, err)
				assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeReused), "%s", u)
				assert.Check(t, is.Equal(in.Node, insts[u].Node), "%s re-pinned", u)
				assert.Check(t, is.Equal(in.Port, insts[u].Port), "%s's port", u)
				fileKept(t, insts[u])
				identity(t, in)
			}
			after := map[string]string{}
			for _, svc := range s.services(t) {
				after[svc.Spec.Name] = svc.ID
			}
			assert.Check(t, is.DeepEqual(after, svcs), "services before and after")
		})
	}
}

// nodeLoss takes node name away (`kill-node K flag`): its users are
// reported missing within 30 s, with the node and the reason, and their
// ensure refused with 503 node_unavailable; the other node's users are
// unaffected and no service is made elsewhere. Once the node's engine is
// started again its users run and answer within 30 s, with their files.
func nodeLoss(t *testing.T, s *swarmAgent, insts map[string]socketapi.Instance, byNode map[string][]string, name, flag string) {
	c := s.Client
	ctx := context.Background()
	victim := s.node(t, name)
	other := map[string]string{"n2": "n3", "n3": "n2"}[name]
	k := strings.TrimPrefix(victim.Name, "n")
	t.Cleanup(func() { exec.Command(harness, "start-node", k).Run() })
	args := []string{"kill-node", k}
	if flag != "" {
		args = append(args, flag)
	}
	out, err := exec.Command(harness, args...).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	lost := time.Now()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		for _, u := range byNode[name] {
			in, err := c.Get(ctx, u)
			if err != nil {
				return poll.Error(err)
			}
			if in.State != "missing" {
				return poll.Continue("%s is %s", u, in.State)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(250*time.Millisecond))
	t.Logf("%s's users missing %v after kill-node %s", name, time.Since(lost), strings.Join(args[1:], " "))
	for _, u := range byNode[name] {
		in, err := c.Get(ctx, u)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Node, name))
		assert.Check(t, is.Contains(in.Reason, name))
		_, err = c.Ensure(ctx, u, socketapi.InstanceSpec{})
		var apiErr *socketapi.Error
		assert.Assert(t, errors.As(err, &apiErr), "ensure of %s on a lost node: %v", u, err)
		assert.Check(t, is.Equal(apiErr.Code, "node_unavailable"))
		assert.Check(t, is.Equal(apiErr.Status, http.StatusServiceUnavailable))
		assert.Check(t, is.Contains(apiErr.Message, name))
		t.Logf("ensure of %s: %d %s: %s", u, apiErr.Status, apiErr.Code, apiErr.Message)
	}
	for _, u := range byNode[other] {
		in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeReused))
		identity(t, in)
	}
	assert.Check(t, is.Len(s.services(t), 4), "a service was made elsewhere")

	out, err = exec.Command(harness, "start-node", k).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	back := time.Now()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		for _, u := range byNode[name] {
			in, err := c.Get(ctx, u)
			if err != nil {
				return poll.Error(err)
			}
			if in.State != "running" {
				return poll.Continue("%s is %s (%s)", u, in.State, in.Reason)
			}
			if _, err := call(http.MethodGet, in, "/", ""); err != nil {
				return poll.Continue("%s: %v", u, err)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(250*time.Millisecond))
	t.Logf("%s's users running and answering %v after its engine was started again", name, time.Since(back))
	for _, u := range byNode[name] {
		in, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Node, name))
		fileKept(t, insts[u])
		identity(t, in)
	}
}
