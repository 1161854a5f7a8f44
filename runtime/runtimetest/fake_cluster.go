package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// FakeCluster is a Fake in cluster mode: a runtime.Cluster of fake nodes,
// as a swarm plugin is. Created by NewFakeCluster; a plain Fake does not
// implement runtime.Cluster (a local engine, one node).
//
// What cluster mode adds to the Fake:
//   - Info lists CapPlacement and the unenforced fields (by default
//     DefaultFakeClusterUnenforced; WithUnenforced replaces them), so a
//     port may have no HostIP (read back as ""), and Placement.Node is
//     accepted; the unenforced fields a spec sets are accepted and read
//     back unset, as an engine that cannot express them would;
//   - Create places the container on Placement.Node (ErrNotFound when
//     there is no such node), or, when it is "", on the ready node with
//     the fewest containers (the first by name on a tie; ErrUnavailable
//     when none is ready); Placement reads back as it was asked;
//     Container.Node and NodeAddr say where it is;
//   - SetNodeDown takes a node down: its running and paused containers
//     die (exit code 137, no restart policy: the node is gone) and every
//     Start, Restart, Resume or Exec of a container there is
//     ErrUnavailable naming the node and the reason, which Nodes reports
//     too; SetNodeUp brings it back and starts again the containers the
//     node's loss stopped, as a swarm manager re-runs a service's task;
//   - PrepareDir records the directory (Dirs).
type FakeCluster struct {
	*Fake
}

var (
	_ runtime.Runtime = (*FakeCluster)(nil)
	_ runtime.Cluster = (*FakeCluster)(nil)
)

// DefaultFakeClusterUnenforced are the fields a FakeCluster cannot
// enforce unless WithUnenforced says otherwise: those of the swarm
// plugin on API 1.41.
var DefaultFakeClusterUnenforced = []string{
	runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldCPUShares, runtime.FieldHostIP,
}

// ClusterMethods are the names of runtime.Cluster's methods, which Calls
// and the fault hooks take too, on a FakeCluster.
var ClusterMethods = []string{"Nodes", "PrepareDir"}

// fakeNode is one node of a FakeCluster, guarded by Fake.mu.
type fakeNode struct {
	runtime.Node
	dirs map[string]runtime.DirSpec // by path
}

// WithUnenforced sets the fields Info lists as unenforced (a plain Fake
// too: then a spec may set them and they read back unset, but the fake
// still refuses a port without a HostIP unless the list has FieldHostIP).
func WithUnenforced(fields ...string) FakeOption {
	return func(f *Fake) { f.unenforced = slices.Clone(fields) }
}

// NewFakeCluster returns a fake cluster of nodes (each named, with an
// address; Ready as given), otherwise as NewFake.
func NewFakeCluster(nodes []runtime.Node, opts ...FakeOption) *FakeCluster {
	f := NewFake(append([]FakeOption{WithUnenforced(DefaultFakeClusterUnenforced...)}, opts...)...)
	f.nodes = map[string]*fakeNode{}
	for _, n := range nodes {
		if !n.Ready && n.Reason == "" {
			n.Reason = "node " + n.Name + " is down"
		}
		if n.Ready {
			n.Reason = ""
		}
		f.nodes[n.Name] = &fakeNode{Node: n, dirs: map[string]runtime.DirSpec{}}
	}
	return &FakeCluster{Fake: f}
}

// Nodes lists the nodes, sorted by name.
func (fc *FakeCluster) Nodes(ctx context.Context) ([]runtime.Node, error) {
	f := fc.Fake
	if err := f.begin(ctx, "Nodes", nil, ""); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]runtime.Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		out = append(out, n.Node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PrepareDir records spec on its node: ErrNotFound when there is no such
// node, ErrUnavailable when it is down.
func (fc *FakeCluster) PrepareDir(ctx context.Context, spec runtime.DirSpec) error {
	f := fc.Fake
	if err := f.begin(ctx, "PrepareDir", spec.Validate(), ""); err != nil {
		return fmt.Errorf("prepare dir %s on node %s: %w", spec.Path, spec.Node, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.nodeLocked(spec.Node)
	if err != nil {
		return fmt.Errorf("prepare dir %s: %w", spec.Path, err)
	}
	n.dirs[spec.Path] = spec
	return nil
}

// Dirs returns the directories PrepareDir made on node, sorted by path.
func (fc *FakeCluster) Dirs(node string) []runtime.DirSpec {
	f := fc.Fake
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[node]
	if !ok {
		return nil
	}
	out := make([]runtime.DirSpec, 0, len(n.dirs))
	for _, d := range n.dirs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// SetNodeDown takes node down with reason ("" gives "node <name> is
// down"): its running and paused containers die (events die, exit code
// 137), and are started again by SetNodeUp.
func (fc *FakeCluster) SetNodeDown(node, reason string) error {
	f := fc.Fake
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[node]
	if !ok {
		return fmt.Errorf("set node %q down: no such node", node)
	}
	if reason == "" {
		reason = "node " + node + " is down"
	}
	n.Ready, n.Reason = false, reason
	for _, c := range f.containers {
		if c.node == node && c.alive() {
			f.exitLocked(c, 137, false)
			c.lostWithNode = true
		}
	}
	return nil
}

// SetNodeUp brings node back: the containers its loss stopped start again
// (event start).
func (fc *FakeCluster) SetNodeUp(node string) error {
	f := fc.Fake
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[node]
	if !ok {
		return fmt.Errorf("set node %q up: no such node", node)
	}
	n.Ready, n.Reason = true, ""
	ids := make([]*fakeContainer, 0)
	for _, c := range f.containers {
		if c.node == node && c.lostWithNode {
			ids = append(ids, c)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].seq < ids[j].seq })
	for _, c := range ids {
		c.lostWithNode = false
		f.startLocked(c)
	}
	return nil
}

// nodeLocked returns a ready node: ErrNotFound when there is no such
// node, ErrUnavailable with its reason when it is down. f.mu must be held.
func (f *Fake) nodeLocked(name string) (*fakeNode, error) {
	n, ok := f.nodes[name]
	if !ok {
		return nil, runtime.Errorf(runtime.ErrNotFound, "no such node %q", name)
	}
	if !n.Ready {
		return nil, runtime.Errorf(runtime.ErrUnavailable, "%s", n.Reason)
	}
	return n, nil
}

// placeLocked chooses the node of a new container in cluster mode: the
// one spec asks for, or the ready node with the fewest containers. ""
// for a plain Fake. f.mu must be held.
func (f *Fake) placeLocked(spec runtime.ContainerSpec) (string, error) {
	if f.nodes == nil {
		return "", nil
	}
	if want := spec.Placement.Node; want != "" {
		if _, ok := f.nodes[want]; !ok {
			return "", runtime.Errorf(runtime.ErrNotFound, "no such node %q", want)
		}
		return want, nil // a down node: the container waits for it, as a swarm task does
	}
	count := map[string]int{}
	for _, c := range f.containers {
		count[c.node]++
	}
	best := ""
	for name, n := range f.nodes {
		if !n.Ready {
			continue
		}
		if best == "" || count[name] < count[best] || (count[name] == count[best] && name < best) {
			best = name
		}
	}
	if best == "" {
		return "", runtime.Errorf(runtime.ErrUnavailable, "no node is ready")
	}
	return best, nil
}

// nodeUpLocked is nil when c's node is ready (or the fake has no nodes),
// else ErrUnavailable with the node's reason. f.mu must be held.
func (f *Fake) nodeUpLocked(c *fakeContainer) error {
	if f.nodes == nil || c.node == "" {
		return nil
	}
	_, err := f.nodeLocked(c.node)
	return err
}

// validationInfo returns what ValidateOn needs of the fake's Info: its unenforced
// fields and, in cluster mode, CapPlacement.
func (f *Fake) validationInfo() runtime.Info {
	info := runtime.Info{Runtime: "fake", Unenforced: slices.Clone(f.unenforced)}
	if f.nodes != nil {
		info.Capabilities = []string{runtime.CapPlacement}
	}
	return info
}

// clearUnenforced unsets in a read-back spec the fields the fake cannot
// enforce, as an engine that cannot express them reads them back.
func (f *Fake) clearUnenforced(s *runtime.ContainerSpec) {
	for _, field := range f.unenforced {
		switch field {
		case runtime.FieldNoNewPrivileges:
			s.Security.NoNewPrivileges = false
		case runtime.FieldMemorySwap:
			s.Resources.MemorySwap = ""
		case runtime.FieldCPUShares:
			s.Resources.CPUShares = 0
		case runtime.FieldHostIP:
			for i := range s.Ports {
				s.Ports[i].HostIP = ""
			}
		}
	}
}
