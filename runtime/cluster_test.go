package runtime_test

import (
	"context"
	"errors"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// scriptedCluster is a scripted runtime that implements runtime.Cluster.
type scriptedCluster struct {
	*scripted
	nodes []runtime.Node
}

func (s *scriptedCluster) Nodes(ctx context.Context) ([]runtime.Node, error) {
	return s.nodes, s.record(ctx, "Nodes")
}

func (s *scriptedCluster) PrepareDir(ctx context.Context, spec runtime.DirSpec) error {
	return s.record(ctx, spec)
}

// TestShimCluster sends the Cluster calls through the shims in-process,
// to a runtime that implements Cluster and to one that does not.
func TestShimCluster(t *testing.T) {
	ctx := context.Background()
	nodes := []runtime.Node{
		{Name: "n1", Addr: "10.0.0.1", Ready: true},
		{Name: "n2", Addr: "10.0.0.2", Reason: "node n2 is down"},
	}
	impl := &scriptedCluster{scripted: &scripted{}, nodes: nodes}
	rt, _ := shim(t, impl)
	cl, ok := rt.(runtime.Cluster)
	assert.Assert(t, ok, "the client shim implements runtime.Cluster")
	got, err := cl.Nodes(ctx)
	assert.NilError(t, err)
	assert.DeepEqual(t, got, nodes)
	dir := runtime.DirSpec{Node: "n2", Path: "/var/lib/zaki-agent/instances/u1", UID: 200001, GID: 200002}
	assert.NilError(t, cl.PrepareDir(ctx, dir))
	assert.DeepEqual(t, impl.received(), []any{"Nodes", dir})

	impl.err = runtime.Errorf(runtime.ErrUnavailable, "node n2 is down")
	err = cl.PrepareDir(ctx, dir)
	assert.Check(t, errors.Is(err, runtime.ErrUnavailable), "%v", err)
	assert.Check(t, is.Error(err, "node n2 is down"))
	// A plugin's own ErrUnimplemented crosses as itself.
	impl.err = runtime.Errorf(runtime.ErrUnimplemented, "no dirs here")
	_, err = cl.Nodes(ctx)
	assert.Check(t, errors.Is(err, runtime.ErrUnimplemented), "%v", err)

	local, _ := shim(t, &scripted{})
	_, err = local.(runtime.Cluster).Nodes(ctx)
	assert.Check(t, errors.Is(err, runtime.ErrUnimplemented), "%v", err)
	assert.Check(t, runtime.Class(err) == nil, "not one of the classes a user sees")
	err = local.(runtime.Cluster).PrepareDir(ctx, dir)
	assert.Check(t, errors.Is(err, runtime.ErrUnimplemented), "%v", err)
}

// TestShimCreateValidatesWithPluginInfo: the server shim refuses, before
// the runtime sees it, a spec that asks for a node or a port without an
// address when the plugin's own Info does not allow it.
func TestShimCreateValidatesWithPluginInfo(t *testing.T) {
	ctx := context.Background()
	placed := minimalSpec()
	placed.Placement.Node = "n1"
	anyAddr := minimalSpec()
	anyAddr.Ports[0].HostIP = ""

	local := &scripted{info: runtime.Info{Runtime: "local"}}
	rt, _ := shim(t, local)
	for _, spec := range []runtime.ContainerSpec{placed, anyAddr} {
		_, err := rt.Create(ctx, spec)
		assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%v", err)
	}
	assert.Check(t, is.Len(local.received(), 0), "the runtime's Create was not called")

	cluster := &scripted{info: swarmInfo()}
	rt, _ = shim(t, cluster)
	for _, spec := range []runtime.ContainerSpec{placed, anyAddr} {
		_, err := rt.Create(ctx, spec)
		assert.Check(t, err)
	}
	assert.Check(t, is.DeepEqual(cluster.received(), []any{placed, anyAddr}))
}

// TestPluginCluster reaches the zaki-runtime-fake process through the
// supervisor: in cluster mode (ZAKI_FAKE_NODES) it serves the Cluster
// calls, without it they are ErrUnimplemented.
func TestPluginCluster(t *testing.T) {
	ctx := context.Background()
	t.Run("cluster", func(t *testing.T) {
		p, _ := launchFake(t, runtime.PluginConfig{Env: []string{
			"ZAKI_FAKE_NODES=n1=10.0.0.1,n2=10.0.0.2", "ZAKI_FAKE_NODES_DOWN=n2",
		}})
		info, err := p.Info(ctx)
		assert.NilError(t, err)
		assert.Check(t, info.Has(runtime.CapPlacement))
		assert.Check(t, is.DeepEqual(info.Unenforced, runtimetest.DefaultFakeClusterUnenforced))
		nodes, err := p.Nodes(ctx)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(nodes, []runtime.Node{
			{Name: "n1", Addr: "10.0.0.1", Ready: true},
			{Name: "n2", Addr: "10.0.0.2", Reason: "node n2 is down"},
		}))
		dir := runtime.DirSpec{Node: "n1", Path: "/srv/zaki/u1", UID: 200000, GID: 200000}
		assert.Check(t, p.PrepareDir(ctx, dir))
		dir.Node = "n2"
		assert.Check(t, errors.Is(p.PrepareDir(ctx, dir), runtime.ErrUnavailable))
		dir.Node = "n3"
		assert.Check(t, errors.Is(p.PrepareDir(ctx, dir), runtime.ErrNotFound))
		dir.Path = "relative"
		assert.Check(t, errors.Is(p.PrepareDir(ctx, dir), runtime.ErrInvalidArgument))

		assert.NilError(t, p.EnsureNetwork(ctx, runtime.NetworkSpec{Name: "zaki"}))
		spec := minimalSpec()
		spec.Image = testenv.StubImage
		spec.Network = "zaki"
		spec.Ports[0].HostIP = ""
		spec.Placement.Node = "n1"
		id, err := p.Create(ctx, spec)
		assert.NilError(t, err)
		c, err := p.Inspect(ctx, id)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(c.Node, "n1"))
		assert.Check(t, is.Equal(c.NodeAddr, "10.0.0.1"))
		assert.Check(t, is.Equal(c.Spec.Placement.Node, "n1"))
		assert.Check(t, is.Equal(c.Spec.Ports[0].HostIP, ""))
	})
	t.Run("local", func(t *testing.T) {
		p, _ := launchFake(t, runtime.PluginConfig{})
		info, err := p.Info(ctx)
		assert.NilError(t, err)
		assert.Check(t, !info.Has(runtime.CapPlacement))
		assert.Check(t, is.Len(info.Unenforced, 0))
		_, err = p.Nodes(ctx)
		assert.Check(t, errors.Is(err, runtime.ErrUnimplemented), "%v", err)
		err = p.PrepareDir(ctx, runtime.DirSpec{Node: "n1", Path: "/srv/zaki/u1"})
		assert.Check(t, errors.Is(err, runtime.ErrUnimplemented), "%v", err)
		// The plugin is fine after it: Unimplemented is no broken link.
		_, err = p.Info(ctx)
		assert.Check(t, err)
		spec := minimalSpec()
		spec.Image = testenv.StubImage
		spec.Placement.Node = "n1"
		_, err = p.Create(ctx, spec)
		assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%v", err)
	})
}
