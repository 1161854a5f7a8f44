//go:build swarm

// The tests of the multi-node harness itself, built only with -tags swarm
// (after scripts/swarm-harness.sh up): make test never brings a swarm up.

package testenv

import (
	"testing"
)

// TestSwarmHarness checks the live harness (skipped when it is not up,
// failed then under ZAKI_REQUIRE_DOCKER=1): its nodes are the
// manager then the workers, each with an address and a swarm node ID.
func TestSwarmHarness(t *testing.T) {
	nodes := SwarmNodes(t)
	for i, n := range nodes {
		if n.Address == "" || n.NodeID == "" || n.Host != "unix://"+n.Socket {
			t.Errorf("node %d: got %+v", i, n)
		}
		if want := map[bool]string{true: "manager", false: "worker"}[i == 0]; n.Role != want {
			t.Errorf("node %s: got role %q, want %q", n.Name, n.Role, want)
		}
	}
}
