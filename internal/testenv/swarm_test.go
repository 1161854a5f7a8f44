package testenv

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEngine serves /_ping on a unix socket in dir, with status code.
func fakeEngine(t *testing.T, dir string, code int) string {
	t.Helper()
	sock := filepath.Join(dir, "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestSwarmNodesState(t *testing.T) {
	dir := t.TempDir()
	up := fakeEngine(t, dir, http.StatusOK)
	state := func(body string) string {
		p := filepath.Join(dir, "nodes.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, body, wantErr string
	}{
		{"up", `{"manager":"unix://` + up + `","nodePath":"/var/lib/zaki-swarm-node","nodes":[` +
			`{"name":"n1","address":"10.77.0.11","socket":"` + up + `","host":"unix://` + up + `","nodeId":"a","role":"manager"},` +
			`{"name":"n2","address":"10.77.0.12","socket":"` + up + `","host":"unix://` + up + `","nodeId":"b","role":"worker"}]}`, ""},
		{"node down", `{"nodePath":"/var/lib/zaki-swarm-node","nodes":[{"name":"n1","socket":"` + up + `","role":"manager"},` +
			`{"name":"n2","socket":"` + filepath.Join(dir, "gone.sock") + `","role":"worker"}]}`, "node n2: engine"},
		{"no manager first", `{"nodes":[{"name":"n2","socket":"` + up + `","role":"worker"}]}`, "no manager node first"},
		{"empty", `{"nodes":[]}`, "no manager node first"},
		{"older harness", `{"nodes":[{"name":"n1","socket":"` + up + `","role":"manager"}]}`, "run down and up"},
		{"not json", `{`, "nodes.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ZAKI_SWARM_STATE", state(tc.body))
			nodes, err := swarmNodes()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(nodes) != 2 || nodes[1].Name != "n2" || nodes[1].Address != "10.77.0.12" || nodes[0].NodeID != "a" {
				t.Fatalf("got %+v", nodes)
			}
		})
	}
	t.Run("no state file", func(t *testing.T) {
		t.Setenv("ZAKI_SWARM_STATE", filepath.Join(dir, "absent.json"))
		if _, err := swarmNodes(); !os.IsNotExist(err) {
			t.Fatalf("got error %v, want not-exist", err)
		}
	})
	t.Run("engine not ok", func(t *testing.T) {
		bad := fakeEngine(t, t.TempDir(), http.StatusInternalServerError)
		t.Setenv("ZAKI_SWARM_STATE", state(`{"nodePath":"/var/lib/zaki-swarm-node","nodes":[{"name":"n1","socket":"`+bad+`","role":"manager"}]}`))
		if _, err := swarmNodes(); err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("got error %v, want a 500", err)
		}
	})
}

func TestSwarmNodeHostPath(t *testing.T) {
	n := SwarmNode{Name: "n2", Disk: "/var/lib/zaki-swarm/disks/n2"}
	for in, want := range map[string]string{
		"/var/lib/zaki-swarm-node":                  "/var/lib/zaki-swarm/disks/n2",
		"/var/lib/zaki-swarm-node/a/state/x":        "/var/lib/zaki-swarm/disks/n2/a/state/x",
		"/var/lib/zaki-swarm-node-other/a":          "/var/lib/zaki-swarm-node-other/a",
		"/tmp/zaki-swarm-e2e-1/u1":                  "/tmp/zaki-swarm-e2e-1/u1",
		"/var/lib/zaki-swarm-node/../zaki-swarm/n2": "/var/lib/zaki-swarm-node/../zaki-swarm/n2",
	} {
		if got := n.HostPath(in); got != want {
			t.Errorf("HostPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (SwarmNode{}).HostPath("/var/lib/zaki-swarm-node/a"); got != "/var/lib/zaki-swarm-node/a" {
		t.Errorf("no disk: HostPath = %q", got)
	}
}
