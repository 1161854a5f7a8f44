package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Cluster runtimes (issue 19, docs/swarm.md). A runtime that places
// containers on nodes (runtime.Cluster, runtime.CapPlacement) changes what
// the agent does in these ways, and a local one (the docker and podman
// plugins, the fake) in none:
//
//   - each user is pinned to a node at its first create (the ready node
//     with the fewest pinned users, ties by name), recorded in the
//     registry and kept for life, since its data lives there; a pin lost
//     with an older registry is learnt back from the node its container
//     runs on, never chosen anew while a container exists;
//   - a user whose node is not ready is reported missing with the reason,
//     and its ensure is refused (ErrNodeUnavailable), never made on
//     another node;
//   - URLs and the readiness probe use the node's address;
//   - a new user's data dir is made on its node (Cluster.PrepareDir);
//     what the agent does to data dirs on this host (files and seed
//     files, quota measuring, the free-space floor, purge, import) is not
//     done: files, purge and import are refused, dataQuota and
//     minFreeSpace are off (see checkRuntime);
//   - prune.idlePauseMinutes is refused at start and reload: a cluster
//     runtime has no pause (see checkRuntime);
//   - what the runtime cannot enforce of the config (Info.Unenforced) is
//     refused at start and reload unless instance.enforcedByNodes lists it.

// runtimeFacts is what the agent learnt of its runtime at start: for a
// local runtime, nothing (cluster false, Info not even asked).
type runtimeFacts struct {
	cluster bool
	info    runtime.Info // for a cluster runtime
}

// unenforced reports whether the runtime cannot enforce field (nil: a
// local runtime, which enforces everything).
func (rf *runtimeFacts) unenforced(field string) bool {
	return rf != nil && slices.Contains(rf.info.Unenforced, field)
}

// Bounds of the node view: how long a cold ensure trusts the nodes as last
// asked (a hot one always does: it makes no runtime call), and how often
// the node loop asks. A node lost is reported within nodePoll.
const (
	nodeCacheFor = 2 * time.Second
	nodePoll     = 5 * time.Second
)

// detectCluster learns whether rt places instances on nodes: a runtime
// that does not implement runtime.Cluster is local, at no cost (the fake);
// the plugin shim always implements it and answers ErrUnimplemented for a
// local plugin (one call to the plugin at start, none to its engine). A
// cluster runtime must list its nodes and answer Info (its capabilities
// and what it cannot enforce, which the config is checked against before
// the agent serves) within bound, asked again until then; else the agent
// does not start (systemd starts it again).
func (a *Agent) detectCluster(rt runtime.Runtime, ir *instrumented, bound time.Duration) error {
	raw, ok := rt.(runtime.Cluster)
	if !ok {
		a.facts.Store(&runtimeFacts{})
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var nodes []runtime.Node
	err := retry(ctx, func() (err error) { nodes, err = raw.Nodes(ctx); return err })
	if errors.Is(err, runtime.ErrUnimplemented) {
		a.facts.Store(&runtimeFacts{})
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime %s: list its nodes: %w (a runtime that places instances on nodes must answer before the agent serves)", a.rtName, err)
	}
	var info runtime.Info
	if err := retry(ctx, func() (err error) { info, err = rt.Info(ctx); return err }); err != nil {
		return fmt.Errorf("runtime %s: %w (a runtime that places instances on nodes must answer before the agent serves)", a.rtName, err)
	}
	if !info.Has(runtime.CapPlacement) {
		return fmt.Errorf("runtime %s lists nodes but not the capability %q: the agent cannot place instances on them", a.rtName, runtime.CapPlacement)
	}
	a.cluster = ir.cluster()
	a.facts.Store(&runtimeFacts{cluster: true, info: info})
	a.nodes.view.Store(newNodeView(nodes))
	a.log.Info("the runtime places instances on nodes: each user is pinned to one", "runtime", a.rtName,
		"nodes", len(nodes), "unenforced", fmt.Sprint(info.Unenforced))
	return nil
}

// retry calls fn until it succeeds, answers ErrUnimplemented, or ctx ends
// (then its last error).
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || errors.Is(err, runtime.ErrUnimplemented) {
			return err
		}
		if !ctxwait.Sleep(ctx, 250*time.Millisecond) {
			return err
		}
	}
}

// nodeView is the runtime's nodes as last asked.
type nodeView struct {
	at    time.Time // when it was asked (time.Now: its age is wall time)
	nodes map[string]runtime.Node
}

func newNodeView(list []runtime.Node) *nodeView {
	v := &nodeView{at: time.Now(), nodes: make(map[string]runtime.Node, len(list))}
	for _, n := range list {
		v.nodes[n.Name] = n
	}
	return v
}

// nodeCache holds the node view; one refresh at a time.
type nodeCache struct {
	mu   sync.Mutex
	view atomic.Pointer[nodeView]
	// poll is how often the node loop asks (Options.NodePoll).
	poll time.Duration
}

// refreshNodes asks the runtime for its nodes and makes that the view,
// telling of the nodes lost and back. When the runtime does not answer,
// the view stays (returned with the error).
func (a *Agent) refreshNodes(ctx context.Context) (*nodeView, error) {
	a.nodes.mu.Lock()
	defer a.nodes.mu.Unlock()
	return a.refreshNodesLocked(ctx)
}

func (a *Agent) refreshNodesLocked(ctx context.Context) (*nodeView, error) {
	list, err := a.cluster.Nodes(ctx)
	if err != nil {
		return a.nodes.view.Load(), fmt.Errorf("list nodes: %w", err)
	}
	v := newNodeView(list)
	prev := a.nodes.view.Swap(v)
	a.nodeChanges(prev, v)
	return v, nil
}

// freshNodes returns the node view, asked anew when it is older than
// nodeCacheFor.
func (a *Agent) freshNodes(ctx context.Context) (*nodeView, error) {
	if v := a.nodes.view.Load(); v != nil && time.Since(v.at) <= nodeCacheFor {
		return v, nil
	}
	a.nodes.mu.Lock()
	defer a.nodes.mu.Unlock()
	if v := a.nodes.view.Load(); v != nil && time.Since(v.at) <= nodeCacheFor {
		return v, nil // asked meanwhile
	}
	return a.refreshNodesLocked(ctx)
}

// nodeChanges logs the nodes lost and back between two views, and
// publishes instance.missing, with the reason, for each recorded user
// pinned to a node lost.
func (a *Agent) nodeChanges(prev, next *nodeView) {
	if prev == nil {
		return
	}
	var lost []string
	for name, n := range next.nodes {
		was, known := prev.nodes[name]
		switch {
		case !n.Ready && (!known || was.Ready):
			a.log.Warn("node not ready: its users are missing until it is back", "node", name, "reason", n.Reason)
			lost = append(lost, name)
		case n.Ready && known && !was.Ready:
			a.log.Info("node ready again", "node", name)
		}
	}
	for name, was := range prev.nodes {
		if _, ok := next.nodes[name]; !ok && was.Ready {
			a.log.Warn("node gone from the cluster: its users are missing", "node", name)
			lost = append(lost, name)
		}
	}
	if len(lost) == 0 {
		return
	}
	for userID, node := range a.reg.Nodes() {
		if !slices.Contains(lost, node) {
			continue
		}
		if rec, ok := a.reg.Get(userID); ok {
			a.publish(Event{Type: EventMissing, UserID: userID, ContainerID: rec.ContainerID, Message: nodeProblem(next, node)})
		}
	}
}

// nodesBack reports whether some node ready in next was not ready (or
// not there) in prev.
func nodesBack(prev, next *nodeView) bool {
	if prev == nil || next == nil {
		return false
	}
	for name, n := range next.nodes {
		if was, ok := prev.nodes[name]; n.Ready && (!ok || !was.Ready) {
			return true
		}
	}
	return false
}

// nodeLoop asks the runtime for its nodes every nodePoll
// (Options.NodePoll), so that the users of a node lost are reported
// missing, and resyncs when a node is back (the runtime starts again what
// ran there; the live view learns it).
func (a *Agent) nodeLoop(ctx context.Context) {
	for ctxwait.Sleep(ctx, a.nodes.poll) {
		prev := a.nodes.view.Load()
		next, err := a.refreshNodes(ctx)
		if err != nil {
			a.log.Debug("nodes", "err", err)
			continue
		}
		if nodesBack(prev, next) {
			if err := a.resync(ctx); err != nil {
				a.log.Warn("resync after a node came back", "err", err)
			}
		}
	}
}

// nodeProblem says why node is not ready in v; "" when it is (or when
// nothing is known of the nodes yet).
func nodeProblem(v *nodeView, node string) string {
	if v == nil {
		return ""
	}
	n, ok := v.nodes[node]
	switch {
	case !ok:
		return fmt.Sprintf("node %s is not in the cluster", node)
	case !n.Ready:
		reason := n.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Sprintf("node %s is not ready: %s", node, reason)
	}
	return ""
}

// nodeOf is the node userID is pinned to, else the one its container (ls)
// runs on; "" when neither is known.
func (a *Agent) nodeOf(userID string, ls liveState) string {
	if n, ok := a.reg.Node(userID); ok {
		return n
	}
	return ls.Node
}

// nodeAddr is the address of node as last asked ("" when unknown).
func (a *Agent) nodeAddr(node string) string {
	if v := a.nodes.view.Load(); v != nil {
		return v.nodes[node].Addr
	}
	return ""
}

// nodeHost is the address userID's instance answers on: its container's
// node address, else its node's as last asked; "" when neither is known.
func (a *Agent) nodeHost(userID string) string {
	ls := a.liveOf(userID)
	if ls.NodeAddr != "" {
		return ls.NodeAddr
	}
	return a.nodeAddr(a.nodeOf(userID, ls))
}

// placeInstance completes in, userID's instance whose live state is ls,
// with what a cluster runtime adds: its node, the URL on the node's
// address, and state missing with the reason while its node is not ready.
func (a *Agent) placeInstance(in *Instance, ls liveState) {
	node := a.nodeOf(in.UserID, ls)
	if node == "" {
		return
	}
	in.Node = node
	host := ls.NodeAddr
	if host == "" {
		host = a.nodeAddr(node)
	}
	if host != "" {
		in.URL = buildURL(urlHost(host), in.Port)
	}
	if problem := nodeProblem(a.nodes.view.Load(), node); problem != "" {
		in.State, in.Reason, in.Health = StateMissing, problem, ""
	}
}

// nodeDown reports whether userID's node is known not to be ready.
func (a *Agent) nodeDown(userID string, ls liveState) bool { return a.nodeProblemOf(userID, ls) != "" }

// nodeProblemOf is what is wrong with userID's node on the nodes as last
// asked (no runtime call), "" when it is ready or the user has none.
func (a *Agent) nodeProblemOf(userID string, ls liveState) string {
	if node := a.nodeOf(userID, ls); node != "" {
		return nodeProblem(a.nodes.view.Load(), node)
	}
	return ""
}

// errNodeDown is the refusal of a call on userID's instance while its
// node is not ready (problem, from nodeProblem, names it and says why):
// ErrNodeUnavailable, the same for an ensure, a restart, logs, exec and
// touch.
func errNodeDown(userID, problem string) error {
	return errdefs.Errorf(errdefs.ErrNodeUnavailable, "instance of user %q: %s (its data lives there: it is not made on another node; retry once the node is back)", userID, problem)
}

// refuseNodeDown refuses a touch of userID while its node is known not
// to be ready: judged on the nodes as last asked only, with no runtime
// call whatever the instance's state (a touch is on the gateway's hot
// path). nil for a local runtime, and for a user with no node known.
func (a *Agent) refuseNodeDown(userID string, ls liveState) error {
	if a.cluster == nil {
		return nil
	}
	if problem := a.nodeProblemOf(userID, ls); problem != "" {
		return errNodeDown(userID, problem)
	}
	return nil
}

// checkNode refuses an ensure of userID while its node is not ready
// (ErrNodeUnavailable, naming the node and the reason), and so a
// restart, logs and exec. A running instance is judged on the nodes as
// last asked (a hot ensure makes no runtime call); any other on a view
// at most nodeCacheFor old. A user with a container but no pin (a
// registry that lost it) is pinned to its container's node first. A new
// user passes: it is pinned at its create.
func (a *Agent) checkNode(ctx context.Context, userID string, ls liveState) error {
	node, ok := a.reg.Node(userID)
	if !ok && ls.Node != "" {
		if err := a.reg.PinNodes(map[string]string{userID: ls.Node}); err != nil {
			return fmt.Errorf("pin user %q to the node of its container, %s: %w", userID, ls.Node, err)
		}
		a.log.Info("user pinned to the node its container runs on", "user", userID, "node", ls.Node)
		node, ok = ls.Node, true
	}
	if !ok {
		return nil
	}
	v := a.nodes.view.Load()
	if v == nil || !ls.running() {
		var err error
		if v, err = a.freshNodes(ctx); v == nil {
			return err
		}
	}
	if problem := nodeProblem(v, node); problem != "" {
		return errNodeDown(userID, problem)
	}
	return nil
}

// nodeUnavailable explains err, the error of a runtime call for userID:
// with a cluster runtime, an unavailable runtime is ErrNodeUnavailable
// when the user's node, asked anew, is not ready (the view was older than
// the node's loss). Any other err (nil too) is returned as it is.
func (a *Agent) nodeUnavailable(ctx context.Context, userID string, err error) error {
	if err == nil || a.cluster == nil || !unavailable(err) {
		return err
	}
	node := a.nodeOf(userID, a.liveOf(userID))
	if node == "" {
		return err
	}
	v, _ := a.refreshNodes(ctx)
	if problem := nodeProblem(v, node); problem != "" {
		return errNodeDown(userID, problem)
	}
	return err
}

// pinNode returns userID's node, pinning the user first when it has none:
// to the ready node with the fewest pinned users (ties by name), durably.
// ErrNodeUnavailable when no node is ready.
func (a *Agent) pinNode(ctx context.Context, userID string) (string, error) {
	if node, ok := a.reg.Node(userID); ok {
		return node, nil // checked by checkNode
	}
	v, err := a.freshNodes(ctx)
	if err != nil {
		return "", err
	}
	node, err := a.reg.PinNode(userID, func(pinned map[string]int) (string, error) { return v.pick(pinned) })
	if err != nil {
		return "", fmt.Errorf("pin user %q to a node: %w", userID, err)
	}
	a.log.Info("user pinned to a node", "user", userID, "node", node)
	return node, nil
}

// pick returns the ready node with the fewest users pinned (ties by
// name); ErrNodeUnavailable when none is ready.
func (v *nodeView) pick(pinned map[string]int) (string, error) {
	names := make([]string, 0, len(v.nodes))
	for name, n := range v.nodes {
		if n.Ready && registry.ValidateNodeName(name) == nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", errdefs.Errorf(errdefs.ErrNodeUnavailable, "no node of the cluster is ready (%d known)", len(v.nodes))
	}
	sort.Strings(names)
	best := names[0]
	for _, name := range names[1:] {
		if pinned[name] < pinned[best] {
			best = name
		}
	}
	return best, nil
}

// learnPins pins the users of found (the engine's containers) that have
// no pin to the node their container runs on, in one registry write: the
// pins of a registry that lost them (an older copy, or a kill between a
// create and its record), never chosen anew while a container exists.
// A container whose node differs from its user's pin is logged and left.
func (a *Agent) learnPins(found map[string]liveState) {
	pins := map[string]string{}
	for userID, ls := range found {
		if ls.Node == "" {
			continue
		}
		switch node, ok := a.reg.Node(userID); {
		case !ok:
			pins[userID] = ls.Node
		case node != ls.Node:
			a.log.Warn("container runs on another node than its user's pin: the pin stays", "user", userID, "pin", node, "node", ls.Node)
		}
	}
	if len(pins) == 0 {
		return
	}
	if err := a.reg.PinNodes(pins); err != nil {
		a.log.Error("record the nodes of containers whose users had no pin", "users", len(pins), "err", err)
		return
	}
	a.log.Info("users pinned to the nodes their containers run on", "users", len(pins))
}

// prepareNodeDir makes userID's data dir, and its mounted sub-dirs, on
// node (Cluster.PrepareDir: owned by uid:gid, mode 0700; an existing one
// is re-owned, its content left alone), and returns its path there.
func (a *Agent) prepareNodeDir(ctx context.Context, node, userID string, e effectiveSpec, uid, gid int) (string, error) {
	dir := filepath.Join(a.dataDir, userID)
	paths := []string{dir}
	for _, m := range e.mountList() {
		if m.Dir != "." {
			paths = append(paths, filepath.Join(dir, m.Dir))
		}
	}
	for _, p := range paths {
		release, err := a.acquire(ctx)
		if err != nil {
			return "", err
		}
		err = a.cluster.PrepareDir(ctx, runtime.DirSpec{Node: node, Path: p, UID: uid, GID: gid})
		release()
		if err != nil {
			return "", fmt.Errorf("prepare the data dir of user %q on node %s: %w", userID, node, err)
		}
	}
	return dir, nil
}

// learnUnenforced takes the runtime's Info as asked again (at each event
// stream (re)connect): a plugin replaced meanwhile may enforce less, and a
// config setting what it cannot enforce is logged (a reload or restart
// refuses it).
func (a *Agent) learnUnenforced(info runtime.Info) {
	rf := &runtimeFacts{cluster: true, info: info}
	if prev := a.facts.Load(); prev != nil && slices.Equal(prev.info.Unenforced, info.Unenforced) {
		return
	}
	a.facts.Store(rf)
	if err := a.conf().checkRuntime(rf); err != nil {
		a.log.Error("the runtime now enforces less than the config sets: fix the config (a reload or restart refuses it as it is)", "err", err)
	}
}

// warnBindAddress logs, for a runtime that publishes ports on every
// address of a node (FieldHostIP unenforced), that instance.bindAddress
// is not used, when next sets it to other than its default and cur (nil
// at start) did not.
func (a *Agent) warnBindAddress(cur, next *Config) {
	if !a.facts.Load().unenforced(runtime.FieldHostIP) {
		return
	}
	bind := next.Instance.BindAddress
	if bind == DefaultConfig().Instance.BindAddress || (cur != nil && cur.Instance.BindAddress == bind) {
		return
	}
	a.log.Warn("instance.bindAddress is not used: the runtime publishes the instances' ports on every address of their node (keep them from other networks with the nodes' firewall)",
		"bindAddress", bind, "runtime", a.facts.Load().info.Runtime)
}
