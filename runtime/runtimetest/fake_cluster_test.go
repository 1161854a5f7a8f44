package runtimetest_test

import (
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

func newCluster(opts ...runtimetest.FakeOption) *runtimetest.FakeCluster {
	return runtimetest.NewFakeCluster([]runtime.Node{
		{Name: "n1", Addr: "10.0.0.1", Ready: true},
		{Name: "n2", Addr: "10.0.0.2", Ready: true},
		{Name: "n3", Addr: "10.0.0.3"},
	}, opts...)
}

// TestFakeClusterConforms runs the suite against the fake in cluster mode
// with every field enforced: nodes change nothing of the contract.
func TestFakeClusterConforms(t *testing.T) {
	runtimetest.Run(t, runtimetest.Config{
		New: func(t *testing.T) runtime.Runtime {
			return newCluster(runtimetest.WithPullable(pullRef), runtimetest.WithUnenforced())
		},
		Image:   testenv.StubImage,
		PullRef: pullRef,
		Timeout: 5 * time.Second,
	})
}

// TestFakeDefaultHasNoNodes: the plain fake is one local engine, as
// before cluster mode.
func TestFakeDefaultHasNoNodes(t *testing.T) {
	var rt runtime.Runtime = runtimetest.NewFake()
	_, ok := rt.(runtime.Cluster)
	assert.Check(t, !ok, "a plain Fake does not implement runtime.Cluster")
	info, err := rt.Info(t.Context())
	assert.NilError(t, err)
	assert.Check(t, is.Len(info.Unenforced, 0))
	assert.Check(t, is.Len(info.Capabilities, 0))
	sp := spec("c", nil)
	sp.Placement.Node = "n1"
	_, err = rt.Create(t.Context(), sp)
	assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%v", err)
	sp = spec("c", nil)
	sp.Ports = []runtime.PortBinding{{HostPort: 18790, ContainerPort: 18789}}
	_, err = rt.Create(t.Context(), sp)
	assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%v", err)
	id := started(t, runtimetest.NewFake(), spec("c", nil))
	assert.Check(t, id != "")
}

func TestFakeClusterPlacement(t *testing.T) {
	ctx := t.Context()
	fc := newCluster()
	info, err := fc.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(info.Capabilities, []string{runtime.CapPlacement}))
	assert.Check(t, is.DeepEqual(info.Unenforced, runtimetest.DefaultFakeClusterUnenforced))

	// Asked for: there, even on a node that is down (it waits for it).
	sp := spec("pinned", nil)
	sp.Placement.Node = "n2"
	id, err := fc.Create(ctx, sp)
	assert.NilError(t, err)
	c, _ := fc.Container(id)
	assert.Check(t, is.Equal(c.Node, "n2"))
	assert.Check(t, is.Equal(c.NodeAddr, "10.0.0.2"))
	assert.Check(t, is.Equal(c.Spec.Placement.Node, "n2"))
	sp = spec("waiting", nil)
	sp.Placement.Node = "n3"
	id3, err := fc.Create(ctx, sp)
	assert.NilError(t, err)
	err = fc.Start(ctx, id3)
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "%v", err)
	assert.Check(t, is.ErrorContains(err, "node n3 is down"))
	sp.Name, sp.Placement.Node = "nowhere", "n9"
	_, err = fc.Create(ctx, sp)
	assert.Check(t, errors.Is(err, runtime.ErrNotFound), "%v", err)

	// Chosen: the ready node with the fewest containers, "" read back.
	for i, want := range []string{"n1", "n1", "n2"} {
		id, err := fc.Create(ctx, spec("free"+string(rune('a'+i)), nil))
		assert.NilError(t, err)
		c, _ := fc.Container(id)
		assert.Check(t, is.Equal(c.Node, want), "container %d", i)
		assert.Check(t, is.Equal(c.Spec.Placement.Node, ""))
	}

	// Unenforced fields are accepted and read back unset; a port may have
	// no address.
	sp = spec("hardened", nil)
	sp.Security.NoNewPrivileges = true
	sp.Resources = runtime.Resources{Memory: "1g", MemorySwap: "1g", CPUShares: 512}
	sp.Ports = []runtime.PortBinding{{HostPort: 18790, ContainerPort: 18789}, {HostIP: "127.0.0.1", HostPort: 18791, ContainerPort: 18789}}
	id, err = fc.Create(ctx, sp)
	assert.NilError(t, err)
	c, _ = fc.Container(id)
	assert.Check(t, !c.Spec.Security.NoNewPrivileges)
	assert.Check(t, is.Equal(c.Spec.Resources.MemorySwap, ""))
	assert.Check(t, is.Equal(c.Spec.Resources.CPUShares, int64(0)))
	assert.Check(t, is.Equal(c.Spec.Resources.Memory, "1073741824"))
	assert.Check(t, is.DeepEqual(c.Spec.Ports, []runtime.PortBinding{
		{HostPort: 18790, ContainerPort: 18789, Protocol: "tcp"}, {HostPort: 18791, ContainerPort: 18789, Protocol: "tcp"},
	}))
}

func TestFakeClusterNodeDown(t *testing.T) {
	ctx := t.Context()
	fc := newCluster()
	sp := spec("a", map[string]string{"zaki": "1"})
	sp.Placement.Node = "n1"
	sp.Restart = runtime.RestartPolicy{Name: "always"}
	a := started(t, fc.Fake, sp)
	sp = spec("b", map[string]string{"zaki": "1"})
	sp.Placement.Node = "n2"
	b := started(t, fc.Fake, sp)
	sp = spec("stopped", map[string]string{"zaki": "1"})
	sp.Placement.Node = "n1"
	stopped, err := fc.Create(ctx, sp)
	assert.NilError(t, err)
	s := subscribe(t, fc.Fake, map[string]string{"zaki": "1"})

	assert.NilError(t, fc.SetNodeDown("n1", ""))
	assert.Check(t, is.DeepEqual(recv(t, s, 1), []string{"die(137)"}), "no restart policy: the node is gone")
	c, _ := fc.Container(a)
	assert.Check(t, !c.Running())
	assert.Check(t, is.Equal(c.State, runtime.StateExited))
	assert.Check(t, is.Equal(c.Node, "n1"))
	c, _ = fc.Container(b)
	assert.Check(t, c.Running(), "another node's container runs on")
	nodes, err := fc.Nodes(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(nodes[0], runtime.Node{Name: "n1", Addr: "10.0.0.1", Reason: "node n1 is down"}))
	for _, err := range []error{
		fc.Start(ctx, a), fc.Restart(ctx, a, time.Second), fc.Start(ctx, stopped), fc.Resume(ctx, a),
		func() error {
			_, err := fc.Exec(ctx, a, runtime.ExecOptions{Cmd: []string{"true"}, Timeout: time.Second})
			return err
		}(),
		fc.PrepareDir(ctx, runtime.DirSpec{Node: "n1", Path: "/srv/u1"}),
	} {
		assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "%v", err)
		assert.Check(t, is.ErrorContains(err, "node n1 is down"))
	}
	assert.NilError(t, fc.SetNodeDown("n2", "n2 lost its disk"))
	assert.Check(t, is.DeepEqual(recv(t, s, 1), []string{"die(137)"}))
	_, err = fc.Create(ctx, spec("homeless", nil))
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "no ready node to choose: %v", err)
	assert.Check(t, is.ErrorContains(fc.Start(ctx, b), "n2 lost its disk"))

	// Back: what the node's loss stopped runs again, and only that.
	assert.NilError(t, fc.SetNodeUp("n1"))
	assert.Check(t, is.DeepEqual(recv(t, s, 1), []string{"start"}))
	c, _ = fc.Container(a)
	assert.Check(t, c.Running())
	c, _ = fc.Container(stopped)
	assert.Check(t, is.Equal(c.State, runtime.StateCreated))
	assert.NilError(t, fc.PrepareDir(ctx, runtime.DirSpec{Node: "n1", Path: "/srv/u1", UID: 7, GID: 8}))
	assert.Check(t, is.DeepEqual(fc.Dirs("n1"), []runtime.DirSpec{{Node: "n1", Path: "/srv/u1", UID: 7, GID: 8}}))
	assert.Check(t, is.Equal(fc.Calls("PrepareDir"), 2))
	assert.Check(t, fc.SetNodeDown("n9", "") != nil)
}
