package registry

import (
	"maps"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// MaxNodeName bounds the length of a node's name (a host name's bound).
const MaxNodeName = 253

// ValidateNodeName reports whether name can name a node in registry.json:
// 1 to MaxNodeName characters of [A-Za-z0-9_.-], the first a letter or a
// digit (host names, and the node labels a cluster runtime places by).
// The error is of class ErrInvalid.
func ValidateNodeName(name string) error {
	if !validNodeName(name) {
		return errdefs.Errorf(ErrInvalid, "invalid node name %q: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$", name)
	}
	return nil
}

func validNodeName(name string) bool { return validName(name, MaxNodeName) }

// PinNode returns the node userID is pinned to, pinning it first when it
// has none: to the node pick returns, given how many users each node has
// pinned (pick is called with the registry's write lock held, so that two
// users pinned at once see each other; its error is returned as it is).
// Like a uid, the pin is durable before PinNode returns and lasts for the
// user's life: Delete keeps it, so the user's data, which lives on its
// node, is where its next instance runs.
func (r *Registry) PinNode(userID string, pick func(pinned map[string]int) (string, error)) (string, error) {
	if err := ValidateUserID(userID); err != nil {
		return "", err
	}
	if n, ok := r.Node(userID); ok {
		return n, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return "", ErrClosed
	}
	cur := r.snap.Load()
	if n, ok := cur.nodes[userID]; ok {
		return n, nil
	}
	node, err := pick(maps.Clone(cur.byNode))
	if err != nil {
		return "", err
	}
	if err := ValidateNodeName(node); err != nil {
		return "", err
	}
	st := newStage(cur)
	st.pinNode(userID, node)
	if err := r.commit(st.done()); err != nil {
		return "", err
	}
	return node, nil
}

// PinNodes pins each user of pins (user ID to node) that has no pin yet,
// all in one durable write; a user pinned already keeps its node. It is
// how pins lost with an older registry are learnt back from where the
// users' containers run.
func (r *Registry) PinNodes(pins map[string]string) error {
	for id, node := range pins {
		if err := ValidateUserID(id); err != nil {
			return err
		}
		if err := ValidateNodeName(node); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	cur := r.snap.Load()
	st := newStage(cur)
	for id, node := range pins {
		if _, ok := cur.nodes[id]; !ok {
			st.pinNode(id, node)
		}
	}
	if !st.changed() {
		return nil
	}
	return r.commit(st.done())
}

// Node returns the node userID is pinned to.
func (r *Registry) Node(userID string) (string, bool) {
	n, ok := r.snap.Load().nodes[userID]
	return n, ok
}

// Nodes returns every pin, user ID to node.
func (r *Registry) Nodes() map[string]string { return maps.Clone(r.snap.Load().nodes) }

// PinnedPerNode returns how many users each node has pinned.
func (r *Registry) PinnedPerNode() map[string]int { return maps.Clone(r.snap.Load().byNode) }
