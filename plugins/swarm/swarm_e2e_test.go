//go:build swarm

// The swarm runtime against the multi-node harness (scripts/swarm-harness.sh
// up 3; make swarm-e2e brings it up and down): the conformance suite with
// what a swarm can do, the spec read back on the task's own node, placement,
// spreading, node loss, PrepareDir, logs and timings. Run as root, with
// ZAKI_BIN_DIR holding zaki-runtime-swarm and ZAKI_REQUIRE_DOCKER=1 so that
// a harness that is not up fails rather than skips.
// ZAKI_SWARM_PREPARE_IMAGE names the image PrepareDir's job runs (the
// stand-in by default; it must be on the nodes).
package swarm_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/plugins/swarm"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// harness is scripts/swarm-harness.sh, from this package's directory.
const harness = "../../scripts/swarm-harness.sh"

// prepareImage is the image of PrepareDir's job.
func prepareImage() string {
	if v := os.Getenv("ZAKI_SWARM_PREPARE_IMAGE"); v != "" {
		return v
	}
	return testenv.StubImage
}

// setup returns the harness's nodes (the manager first) and an
// in-process runtime on the manager.
func setup(t *testing.T) ([]testenv.SwarmNode, *swarm.Runtime) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the swarm harness needs root")
	}
	nodes := testenv.SwarmNodes(t)
	rt := swarm.New(swarm.Config{Socket: nodes[0].Socket, PrepareImage: prepareImage(), Poll: 500 * time.Millisecond})
	t.Cleanup(func() { rt.Close() })
	return nodes, rt
}

// launch starts the real plugin binary on the manager's socket.
func launch(t *testing.T, manager testenv.SwarmNode) *runtime.Plugin {
	return runtimetest.Launch(t, "swarm", "ZAKI_SWARM_SOCKET="+manager.Socket,
		"ZAKI_SWARM_PREPARE_IMAGE="+prepareImage(), "ZAKI_SWARM_POLL=500ms")
}

// TestConformance runs runtimetest's suite against the plugin binary,
// with the subtests a swarm can pass: not Pull (the nodes' images are
// provisioning; PullImage is tested in engineapi), Networks (there are
// none to join), FullSpec (it sets the unenforced fields and reads them
// back; TestTaskSpec covers it), Pause and Exec (a swarm has
// neither: TestNoPauseNoExec), Logs (a stopped service has no logs left:
// TestLogs), Engine (it publishes on 127.0.0.1: TestPlacement and
// TestSpread answer on the nodes' addresses) and OCIRuntime.
func TestConformance(t *testing.T) {
	nodes, _ := setup(t)
	runtimetest.Run(t, runtimetest.Config{
		New:        func(t *testing.T) runtime.Runtime { return launch(t, nodes[0]) },
		Image:      testenv.StubImage,
		NamePrefix: "zaki-swc",
		Timeout:    90 * time.Second,
		Only:       []string{"Info", "Images", "InvalidArgument", "Lifecycle", "Batch", "List", "Events", "Context"},
	})
}

// spec is a hardened container of the stand-in on node, answering on
// hostPort, for user.
func spec(name, node, user string, hostPort int, dataDir string) runtime.ContainerSpec {
	s := runtime.ContainerSpec{
		Name:   name,
		Image:  testenv.StubImage,
		Env:    map[string]string{"ZAKI_USER_ID": user, "ZAKI_SECRET": "s3cr3t-" + user},
		Labels: map[string]string{"zaki.swarm-e2e": "1", "zaki.userId": user},
		User:   "1000:1000",
		Init:   true,
		Resources: runtime.Resources{CPUs: 0.5, Memory: "256m", PidsLimit: 64,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}}},
		Security: runtime.Security{ReadOnlyRoot: true, CapDrop: []string{"ALL"},
			Tmpfs: []runtime.Tmpfs{{Path: "/tmp", Options: "size=16m"}}},
		Restart:     runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Ports:       []runtime.PortBinding{{HostPort: hostPort, ContainerPort: 18789}},
		Healthcheck: &runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}, Interval: 2 * time.Second, Timeout: 5 * time.Second, StartPeriod: 30 * time.Second, Retries: 3},
		StopTimeout: 3 * time.Second,
		Placement:   runtime.Placement{Node: node},
	}
	if dataDir != "" {
		s.Mounts = []runtime.Mount{{Source: dataDir, Target: "/home/node/.openclaw"}}
	}
	return s
}

// removeLater removes container name when t ends.
func removeLater(t *testing.T, rt runtime.Runtime, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := rt.Remove(ctx, names, runtime.RemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: remove %v: %v", names, err)
		}
	})
}

// portBase is where this run's host ports start: apart from the agent's
// range and from another run's.
var portBase = 21000 + os.Getpid()%500*10

// get returns the body of GET http://addr:port/path, or an error.
func get(addr string, port int, path string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(addr, strconv.Itoa(port)) + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// answering waits until user's stand-in answers on addr:port.
func answering(t *testing.T, addr string, port int, user string) {
	t.Helper()
	want := fmt.Sprintf("user %q", user)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		body, err := get(addr, port, "/")
		if err != nil {
			return poll.Continue("GET %s:%d: %v", addr, port, err)
		}
		if !strings.Contains(body, want) {
			return poll.Error(fmt.Errorf("GET %s:%d: %q, want %s", addr, port, body, want))
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(100*time.Millisecond))
}

// node returns the harness node named name.
func node(t *testing.T, nodes []testenv.SwarmNode, name string) testenv.SwarmNode {
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s in the harness", name)
	return testenv.SwarmNode{}
}

// taskContainer returns the container of service id's running task, as
// the engine of its node n reports it.
func taskContainer(t *testing.T, n testenv.SwarmNode, id string) engineapi.Container {
	t.Helper()
	api := engineapi.New(engineapi.Config{Socket: n.Socket})
	defer api.Close()
	ctx := context.Background()
	cs, err := api.Containers(ctx, false, engineapi.Filters{"label": {"com.docker.swarm.service.id=" + id}})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(cs, 1), "running containers of service %s on %s", id, n.Name)
	c, err := api.ContainerInspect(ctx, cs[0].ID)
	assert.NilError(t, err)
	return c
}

// dataRoot makes a directory standing for the agent's state dir on every
// node (the harness's nodes share the host's file system), removed at the
// end.
func dataRoot(t *testing.T) string {
	dir, err := os.MkdirTemp("", "zaki-swarm-e2e-")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	assert.NilError(t, os.Chmod(dir, 0o755))
	return dir
}

// TestTaskSpec: every field the swarm supports reads back from the
// service in the contract's terms, and is what the task's container on its
// own node runs with; the node's engine adds NoNewPrivs (it runs with
// --no-new-privileges).
func TestTaskSpec(t *testing.T) {
	nodes, rt := setup(t)
	ctx := context.Background()
	n2 := node(t, nodes, "n2")
	root := dataRoot(t)
	data := filepath.Join(root, "u-spec")
	assert.NilError(t, rt.PrepareDir(ctx, runtime.DirSpec{Node: "n2", Path: data, UID: 1000, GID: 1000}))

	name := testenv.UniqueName("zaki-swe-spec")
	want := spec(name, "n2", "u-spec", portBase+1, data)
	want.Cmd = []string{"-addr", ":18789"}
	want.Log = runtime.LogConfig{MaxSize: "1m", MaxFiles: 2}
	removeLater(t, rt, name)
	id, err := rt.Create(ctx, want)
	assert.NilError(t, err)
	assert.NilError(t, rt.Start(ctx, name))

	c, err := rt.Inspect(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.Name, name))
	assert.Check(t, c.Running(), "state %s", c.State)
	assert.Check(t, is.Equal(c.Node, "n2"))
	assert.Check(t, is.Equal(c.NodeAddr, n2.Address))
	got := c.Spec
	exp := want
	exp.Env = nil
	exp.Resources.Memory = strconv.Itoa(256 << 20)
	exp.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "size=" + strconv.Itoa(16<<20)}}
	exp.Log.MaxSize = strconv.Itoa(1 << 20)
	exp.Ports[0].Protocol = "tcp"
	assert.Check(t, is.DeepEqual(got, exp))

	answering(t, c.NodeAddr, portBase+1, "u-spec")
	body, err := get(c.NodeAddr, portBase+1, "/env/ZAKI_SECRET")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(strings.TrimSpace(body), "true"), "the secret reaches the task")

	tc := taskContainer(t, n2, id)
	hc := tc.HostConfig
	assert.Check(t, hc.Init != nil && *hc.Init, "init")
	assert.Check(t, hc.ReadonlyRootfs, "read-only root")
	assert.Check(t, is.DeepEqual(hc.CapDrop, []string{"ALL"}))
	assert.Check(t, hc.PidsLimit != nil && *hc.PidsLimit == 64, "pids limit %v", hc.PidsLimit)
	assert.Check(t, is.Equal(hc.Memory, int64(256<<20)))
	assert.Check(t, is.Equal(hc.NanoCpus, int64(5e8)))
	assert.Check(t, is.DeepEqual(hc.Ulimits, []engineapi.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}}))
	assert.Check(t, is.Equal(tc.Config.User, "1000:1000"))
	assert.Check(t, is.Equal(tc.Config.Labels["zaki.userId"], "u-spec"))
	assert.Check(t, is.Equal(tc.Config.Labels[swarm.LabelName], name))
	assert.Check(t, tc.Config.Healthcheck != nil && is.DeepEqual(tc.Config.Healthcheck.Test, []string{"CMD", "/gateway-stub", "-probe"})().Success(),
		"health check %+v", tc.Config.Healthcheck)
	var tmpfs, bind bool
	for _, m := range hc.Mounts {
		tmpfs = tmpfs || m.Type == "tmpfs" && m.Target == "/tmp" && m.TmpfsOptions != nil && m.TmpfsOptions.SizeBytes == 16<<20
		bind = bind || m.Type == "bind" && m.Source == data && m.Target == "/home/node/.openclaw"
	}
	assert.Check(t, tmpfs && bind, "mounts %+v", hc.Mounts)
	assert.Check(t, is.DeepEqual(hc.PortBindings["18789/tcp"], []engineapi.PortBinding{{HostPort: strconv.Itoa(portBase + 1)}}))

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tc.State.Pid))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(status), "NoNewPrivs:\t1"))

	// The data dir is the user's, written by the stand-in on its node.
	fi, err := os.Stat(data)
	assert.NilError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Check(t, st.Uid == 1000 && st.Gid == 1000 && fi.Mode().Perm() == 0o700, "data dir %v %d:%d", fi.Mode(), st.Uid, st.Gid)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if _, err := os.Stat(filepath.Join(data, "gateway-stub.started")); err != nil {
			return poll.Continue("%v", err)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))

	// A read-only root: the stand-in cannot write outside its mounts.
	body, err = get(c.NodeAddr, portBase+1, "/")
	assert.NilError(t, err)
	resp, err := http.Post("http://"+net.JoinHostPort(c.NodeAddr, strconv.Itoa(portBase+1))+"/write?path=/etc/x", "text/plain", strings.NewReader("x"))
	assert.NilError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Check(t, is.Contains(string(b), "error"), "write to the root: %s", b)
}

// TestPlacement: a container placed on each node runs there and answers
// on that node's address.
func TestPlacement(t *testing.T) {
	nodes, rt := setup(t)
	ctx := context.Background()
	for i, n := range nodes {
		t.Run(n.Name, func(t *testing.T) {
			name := testenv.UniqueName("zaki-swe-place-" + n.Name)
			port := portBase + 10 + i
			removeLater(t, rt, name)
			_, err := rt.Create(ctx, spec(name, n.Name, "u-"+n.Name, port, ""))
			assert.NilError(t, err)
			assert.NilError(t, rt.Start(ctx, name))
			c, err := rt.Inspect(ctx, name)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(c.Node, n.Name))
			assert.Check(t, is.Equal(c.NodeAddr, n.Address))
			answering(t, n.Address, port, "u-"+n.Name)
			for _, other := range nodes {
				if other.Name != n.Name {
					_, err := get(other.Address, port, "/")
					assert.Check(t, err != nil, "%s answers on %s too", name, other.Name)
				}
			}
		})
	}
}

// TestSpread: four users, two on n2 and two on n3, each answering with
// its own identity on its node's address; and the times it took (logged,
// not asserted).
func TestSpread(t *testing.T) {
	nodes, rt := setup(t)
	ctx := context.Background()
	type inst struct {
		name, user, node string
		port             int
	}
	var insts []inst
	for i := range 4 {
		n := []string{"n2", "n3"}[i%2]
		insts = append(insts, inst{testenv.UniqueName(fmt.Sprintf("zaki-swe-spread-%d", i)), fmt.Sprintf("u%d", i), n, portBase + 20 + i})
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, len(insts))
	for i, in := range insts {
		removeLater(t, rt, in.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if _, err := rt.Create(ctx, spec(in.name, in.node, in.user, in.port, "")); err != nil {
				t.Errorf("create %s: %v", in.name, err)
				return
			}
			if err := rt.Start(ctx, in.name); err != nil {
				t.Errorf("start %s: %v", in.name, err)
				return
			}
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	perNode := map[string]int{}
	for i, in := range insts {
		c, err := rt.Inspect(ctx, in.name)
		assert.NilError(t, err)
		perNode[c.Node]++
		start := time.Now()
		answering(t, c.NodeAddr, in.port, in.user)
		t.Logf("%s on %s: create+start %v, then answering after %v", in.name, c.Node, took[i], time.Since(start))
		for _, n := range nodes {
			if n.Name != c.Node {
				_, err := get(n.Address, in.port, "/")
				assert.Check(t, err != nil, "%s answers on %s too", in.name, n.Name)
			}
		}
	}
	assert.Check(t, is.DeepEqual(perNode, map[string]int{"n2": 2, "n3": 2}))
}

// TestTimings logs how long create to answering, stop and start take on
// the harness (BENCHMARKS-style figures, not asserted).
func TestTimings(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	name := testenv.UniqueName("zaki-swe-time")
	port := portBase + 30
	removeLater(t, rt, name)
	var createAnswer, stop, start, restart []time.Duration
	for round := range 3 {
		t0 := time.Now()
		_, err := rt.Create(ctx, spec(name, "n2", "u-time", port, ""))
		assert.NilError(t, err)
		assert.NilError(t, rt.Start(ctx, name))
		c, err := rt.Inspect(ctx, name)
		assert.NilError(t, err)
		answering(t, c.NodeAddr, port, "u-time")
		createAnswer = append(createAnswer, time.Since(t0))

		t0 = time.Now()
		assert.NilError(t, rt.Stop(ctx, []string{name}, 10*time.Second))
		stop = append(stop, time.Since(t0))
		c, err = rt.Inspect(ctx, name)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(c.State, runtime.StateExited), "round %d", round)

		t0 = time.Now()
		assert.NilError(t, rt.Start(ctx, name))
		answering(t, c.NodeAddr, port, "u-time")
		start = append(start, time.Since(t0))

		t0 = time.Now()
		assert.NilError(t, rt.Restart(ctx, name, 10*time.Second))
		answering(t, c.NodeAddr, port, "u-time")
		restart = append(restart, time.Since(t0))

		assert.NilError(t, rt.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}))
	}
	t.Logf("create to answering %v; stop %v; start to answering %v; restart to answering %v", createAnswer, stop, start, restart)
}

// TestNodes: Nodes lists the harness's nodes, ready; a node whose engine
// and containers are killed is reported not ready within 30 s, and ready
// again after it is started.
func TestNodes(t *testing.T) {
	nodes, _ := setup(t)
	p := launch(t, nodes[0])
	ctx := context.Background()
	got, err := p.Nodes(ctx)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, len(nodes)))
	for i, n := range nodes {
		assert.Check(t, is.DeepEqual(got[i], runtime.Node{Name: n.Name, Addr: n.Address, Ready: true}))
	}

	victim := nodes[len(nodes)-1]
	k := strings.TrimPrefix(victim.Name, "n")
	t.Cleanup(func() { exec.Command(harness, "start-node", k).Run() })
	out, err := exec.Command(harness, "kill-node", k, "--all").CombinedOutput()
	assert.NilError(t, err, "%s", out)
	wait := func(ready bool, timeout time.Duration) {
		t.Helper()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			ns, err := p.Nodes(ctx)
			if err != nil {
				return poll.Continue("nodes: %v", err)
			}
			for _, n := range ns {
				if n.Name == victim.Name {
					if n.Ready != ready {
						return poll.Continue("%s: ready %v (%s)", n.Name, n.Ready, n.Reason)
					}
					if !ready && n.Reason == "" {
						return poll.Error(fmt.Errorf("%s not ready without a reason", n.Name))
					}
					t.Logf("%s: ready %v %s", n.Name, n.Ready, n.Reason)
					return poll.Success()
				}
			}
			return poll.Error(fmt.Errorf("%s not listed", victim.Name))
		}, poll.WithTimeout(timeout), poll.WithDelay(500*time.Millisecond))
	}
	start := time.Now()
	wait(false, 30*time.Second)
	t.Logf("%s reported down after %v", victim.Name, time.Since(start))
	out, err = exec.Command(harness, "start-node", k).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	start = time.Now()
	wait(true, 90*time.Second)
	t.Logf("%s reported ready %v after start-node", victim.Name, time.Since(start))
}

// TestPrepareDir: the job makes the directory on the node, owned by the
// user, mode 0700, re-owns one that exists and keeps its content; a
// missing parent, an unknown node and a bad spec are clear errors.
func TestPrepareDir(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	root := dataRoot(t)
	dir := filepath.Join(root, "u1")
	check := func(uid, gid int) {
		t.Helper()
		fi, err := os.Stat(dir)
		assert.NilError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Check(t, fi.IsDir() && fi.Mode().Perm() == 0o700, "mode %v", fi.Mode())
		assert.Check(t, is.Equal(int(st.Uid), uid))
		assert.Check(t, is.Equal(int(st.Gid), gid))
	}
	start := time.Now()
	assert.NilError(t, rt.PrepareDir(ctx, runtime.DirSpec{Node: "n2", Path: dir, UID: 1000, GID: 1001}))
	t.Logf("prepare dir took %v", time.Since(start))
	check(1000, 1001)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600))
	assert.NilError(t, rt.PrepareDir(ctx, runtime.DirSpec{Node: "n2", Path: dir, UID: 2000, GID: 2000}))
	check(2000, 2000)
	_, err := os.Stat(filepath.Join(dir, "keep"))
	assert.Check(t, err)

	err = rt.PrepareDir(ctx, runtime.DirSpec{Node: "n3", Path: filepath.Join(root, "missing", "u1"), UID: 1000, GID: 1000})
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.ErrorContains(err, "missing"))
	t.Logf("missing parent: %v", err)
	err = rt.PrepareDir(ctx, runtime.DirSpec{Node: "n9", Path: dir, UID: 1000, GID: 1000})
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
	err = rt.PrepareDir(ctx, runtime.DirSpec{Node: "n3", Path: "relative", UID: 1000, GID: 1000})
	assert.Check(t, is.ErrorIs(err, runtime.ErrInvalidArgument))

	// No job is left behind: no service on the manager, and (once the
	// node has heard of the removal) no container on the node.
	nodes := testenv.SwarmNodes(t)
	api := engineapi.New(engineapi.Config{Socket: nodes[0].Socket})
	defer api.Close()
	svcs, err := api.Services(ctx, engineapi.Filters{"name": {"zaki-prepare-"}}, false)
	assert.NilError(t, err)
	assert.Check(t, is.Len(svcs, 0))
	n2 := engineapi.New(engineapi.Config{Socket: node(t, nodes, "n2").Socket})
	defer n2.Close()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		cs, err := n2.Containers(ctx, true, engineapi.Filters{"label": {"zaki.swarm.prepare"}})
		if err != nil {
			return poll.Error(err)
		}
		if len(cs) > 0 {
			return poll.Continue("%d job containers left on n2", len(cs))
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(500*time.Millisecond))
}

// TestLogs: a running container's output comes through the manager; a
// follow ends by itself once the container is stopped.
func TestLogs(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	name := testenv.UniqueName("zaki-swe-logs")
	removeLater(t, rt, name)
	_, err := rt.Create(ctx, spec(name, "n2", "u-logs", portBase+40, ""))
	assert.NilError(t, err)
	assert.NilError(t, rt.Start(ctx, name))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		rc, err := rt.Logs(ctx, name, runtime.LogOptions{})
		if err != nil {
			return poll.Error(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return poll.Error(err)
		}
		if !strings.Contains(string(b), "gateway-stub listening") {
			return poll.Continue("logs: %q", b)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second))

	rc, err := rt.Logs(ctx, name, runtime.LogOptions{Follow: true, Tail: new(0)})
	assert.NilError(t, err)
	defer rc.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, rc); done <- err }()
	assert.NilError(t, rt.Stop(ctx, []string{name}, 5*time.Second))
	select {
	case err := <-done:
		assert.Check(t, err)
	case <-time.After(30 * time.Second):
		t.Errorf("the follow still runs 30 s after the stop")
	}
	_, err = rt.Logs(ctx, "zaki-swe-no-such", runtime.LogOptions{})
	assert.Check(t, is.ErrorIs(err, runtime.ErrNotFound))
}

// TestNoPauseNoExec: a swarm has neither; the errors say so, and a
// missing container is still ErrNotFound.
func TestNoPauseNoExec(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	name := testenv.UniqueName("zaki-swe-nopause")
	removeLater(t, rt, name)
	_, err := rt.Create(ctx, spec(name, "", "u-np", portBase+50, ""))
	assert.NilError(t, err)
	err = rt.Pause(ctx, name)
	assert.Check(t, is.ErrorIs(err, runtime.ErrConflict))
	assert.Check(t, is.ErrorContains(err, "no pause"))
	assert.Check(t, is.ErrorIs(rt.Resume(ctx, name), runtime.ErrConflict))
	_, err = rt.Exec(ctx, name, runtime.ExecOptions{Cmd: []string{"/gateway-stub", "-exec", "id"}, Timeout: 5 * time.Second})
	assert.Check(t, is.ErrorIs(err, runtime.ErrConflict))
	assert.Check(t, is.ErrorIs(rt.Pause(ctx, "zaki-swe-no-such"), runtime.ErrNotFound))

	// Without a placement the swarm chooses, and says where.
	assert.NilError(t, rt.Start(ctx, name))
	c, err := rt.Inspect(ctx, name)
	assert.NilError(t, err)
	assert.Check(t, c.Node != "" && c.NodeAddr != "", "node %q addr %q", c.Node, c.NodeAddr)
	answering(t, c.NodeAddr, portBase+50, "u-np")
}

// TestStartOnDownNodeFails: a container pinned to a node that does not
// exist (no node fits) fails to start with a clear error, stopped again.
func TestStartUnplaceable(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	name := testenv.UniqueName("zaki-swe-noplace")
	removeLater(t, rt, name)
	_, err := rt.Create(ctx, spec(name, "n9", "u-n9", portBase+60, ""))
	assert.NilError(t, err)
	err = rt.Start(ctx, name)
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.ErrorContains(err, "no node"))
	t.Logf("start on n9: %v", err)
	c, err := rt.Inspect(ctx, name)
	assert.NilError(t, err)
	assert.Check(t, !c.Running(), "state %s", c.State)
}

// TestRestartSlowStop: a restart of a gateway that takes longer to stop
// than the start's patience for a pending task (pendingGrace) waits for it:
// the new task is pending only because the old one still holds its host
// port, and the restart succeeds on the same node and port.
func TestRestartSlowStop(t *testing.T) {
	_, rt := setup(t)
	ctx := context.Background()
	name := testenv.UniqueName("zaki-swe-slowstop")
	port := portBase + 70
	removeLater(t, rt, name)
	s := spec(name, "n2", "u-slow", port, "")
	s.Env["STUB_STOP_DELAY"] = "8s" // above pendingGrace (5 s)
	s.StopTimeout = 20 * time.Second
	_, err := rt.Create(ctx, s)
	assert.NilError(t, err)
	assert.NilError(t, rt.Start(ctx, name))
	c, err := rt.Inspect(ctx, name)
	assert.NilError(t, err)
	answering(t, c.NodeAddr, port, "u-slow")

	t0 := time.Now()
	assert.NilError(t, rt.Restart(ctx, name, 20*time.Second))
	t.Logf("restart of a gateway that stops in 8 s: %v", time.Since(t0))
	c2, err := rt.Inspect(ctx, name)
	assert.NilError(t, err)
	assert.Check(t, c2.Running(), "state %s", c2.State)
	assert.Check(t, is.Equal(c2.Node, c.Node))
	answering(t, c2.NodeAddr, port, "u-slow")
}
