package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SwarmStateFile is where scripts/swarm-harness.sh describes the swarm it
// brought up; ZAKI_SWARM_STATE overrides it (the harness's `env` prints it).
const SwarmStateFile = "/run/zaki-swarm/nodes.json"

// SwarmNode is one engine of the multi-node harness: a dockerd in a network
// namespace of its own, joined to the harness's swarm.
type SwarmNode struct {
	Name    string `json:"name"`    // n1, n2, ...: also its zaki.node.name label
	Address string `json:"address"` // its address on the host bridge, reachable from the host
	Socket  string `json:"socket"`  // its engine's unix socket
	Host    string `json:"host"`    // the same as a DOCKER_HOST (unix://...)
	NodeID  string `json:"nodeId"`  // its swarm node ID
	Role    string `json:"role"`    // "manager" (n1) or "worker"
	// Disk is the host dir that is the node's own disk: the node (its
	// engine, its tasks, its jobs) sees it at SwarmNodePath.
	Disk string `json:"disk"`
}

// SwarmNodePath is the path each node of the harness sees its own disk
// at; on the host it is an empty dir of its own.
const SwarmNodePath = "/var/lib/zaki-swarm-node"

// HostPath returns where the host sees path p of node n: under n.Disk
// for a path under SwarmNodePath, p itself otherwise (the nodes share the
// host's other files).
func (n SwarmNode) HostPath(p string) string {
	rel, err := filepath.Rel(SwarmNodePath, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || n.Disk == "" {
		return p
	}
	return filepath.Join(n.Disk, rel)
}

type swarmState struct {
	Manager  string      `json:"manager"`
	NodePath string      `json:"nodePath"`
	Nodes    []SwarmNode `json:"nodes"`
}

// SwarmNodes returns the harness's nodes, the manager first, when every
// node's engine answers. Otherwise it skips t, or fails it when
// ZAKI_REQUIRE_DOCKER=1 (run `scripts/swarm-harness.sh up` first).
func SwarmNodes(t testing.TB) []SwarmNode {
	t.Helper()
	nodes, err := swarmNodes()
	if err != nil {
		if os.Getenv("ZAKI_REQUIRE_DOCKER") == "1" {
			t.Fatalf("ZAKI_REQUIRE_DOCKER=1 but the swarm harness is not up: %v (run scripts/swarm-harness.sh up)", err)
		}
		t.Skipf("no swarm harness: %v (run scripts/swarm-harness.sh up)", err)
	}
	return nodes
}

func swarmNodes() ([]SwarmNode, error) {
	path := os.Getenv("ZAKI_SWARM_STATE")
	if path == "" {
		path = SwarmStateFile
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st swarmState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(st.Nodes) == 0 || st.Nodes[0].Role != "manager" {
		return nil, fmt.Errorf("%s: no manager node first", path)
	}
	if st.NodePath != SwarmNodePath {
		return nil, fmt.Errorf("%s: nodes' disk path %q, want %q (a harness of an older version: run down and up)", path, st.NodePath, SwarmNodePath)
	}
	for _, n := range st.Nodes {
		if err := enginePing(n.Socket); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return st.Nodes, nil
}

// enginePing asks the engine on socket for /_ping.
func enginePing(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("engine %s: %w", socket, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("engine %s: /_ping: %s", socket, resp.Status)
	}
	return nil
}
