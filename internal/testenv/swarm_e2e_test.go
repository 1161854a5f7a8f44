//go:build swarm

// The tests of the multi-node harness itself, built only with -tags swarm
// (after scripts/swarm-harness.sh up): make test never brings a swarm up.

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSwarmHarness checks the live harness (skipped when it is not up,
// failed then under ZAKI_REQUIRE_DOCKER=1): its nodes are the
// manager then the workers, each with an address and a swarm node ID;
// each has a disk of its own: a dir a container makes at SwarmNodePath on
// n2 is on n2's disk only, not on another node's nor on the host's.
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

func TestSwarmHarnessNodeDisks(t *testing.T) {
	nodes := SwarmNodes(t)
	if len(nodes) < 3 {
		t.Fatalf("want 3 nodes, have %d", len(nodes))
	}
	name := UniqueName("zaki-harness-disk")
	dir := filepath.Join(SwarmNodePath, name)
	n2 := nodes[1]
	t.Cleanup(func() {
		for _, n := range nodes {
			os.RemoveAll(n.HostPath(dir))
		}
	})
	out, err := exec.Command("docker", "-H", n2.Host, "run", "--rm", "--name", name,
		"-v", SwarmNodePath+":/disk", StubImage, "-exec", "mkdir", "/disk/"+name, "0", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run on %s: %v: %s", n2.Name, err, out)
	}
	if fi, err := os.Stat(n2.HostPath(dir)); err != nil || !fi.IsDir() {
		t.Errorf("%s's disk: %v", n2.Name, err)
	}
	for _, p := range []string{nodes[0].HostPath(dir), nodes[2].HostPath(dir), dir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: want nothing there, got %v", p, err)
		}
	}
}
