package engineapi

import (
	"context"
	"net/url"
	"time"
)

// Node is a swarm node, as its managers see it.
type Node struct {
	ID          string
	Version     ObjectVersion
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Spec        NodeSpec
	Description NodeDescription
	Status      NodeStatus
	// ManagerStatus is set for managers only.
	ManagerStatus *ManagerStatus
}

// NodeSpec is what an operator sets on a node.
type NodeSpec struct {
	Name   string
	Labels map[string]string // node.labels.<name> in placement constraints
	Role   string            // "worker", "manager"
	// Availability is "active", "pause" (no new tasks) or "drain" (its
	// tasks moved away).
	Availability string
}

// NodeDescription is what a node reports of itself.
type NodeDescription struct {
	Hostname string
	Platform struct {
		Architecture string
		OS           string
	}
	Resources Resources
	Engine    struct {
		EngineVersion string
		Labels        map[string]string
	}
}

// NodeStatus is how the managers see a node.
type NodeStatus struct {
	State   string // "ready", "down", "disconnected", "unknown"
	Message string
	// Addr is the node's address as the managers see it (an IP, no port):
	// where its host-mode published ports answer.
	Addr string
}

// ManagerStatus is a manager's part in the raft.
type ManagerStatus struct {
	Leader       bool
	Reachability string // "reachable", "unreachable", "unknown"
	Addr         string // its raft address, "ip:2377"
}

// Nodes lists the nodes filters select ("id", "label" (engine labels),
// "node.label", "membership", "name", "role").
func (c *Client) Nodes(ctx context.Context, filters Filters) ([]Node, error) {
	q := url.Values{}
	filters.query(q)
	return get[[]Node](ctx, c, "/nodes", q)
}

// Node inspects the node of ID or name ref.
func (c *Client) Node(ctx context.Context, ref string) (Node, error) {
	return inspect[Node](ctx, c, "node", "/nodes/", ref, "")
}
