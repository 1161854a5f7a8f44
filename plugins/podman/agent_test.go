package podman_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// agentUser is the uid:gid the agent test's instances run as. RLIMIT_NPROC
// (the default ulimit nproc=512:1024) counts every thread of that uid on
// the host, not per container: other tests' containers may run as a
// fixed 1000, and a few dozen of them exhaust it for everyone. The
// ulimits themselves are the agent's defaults, unchanged.
const agentUser = "20781:20781"

// TestAgent runs the real zaki-agent with runtime = "podman" (the plugin
// swapped in by config alone; testenv writes the config, the flags only
// move the instances off the shared uid) and drives its whole API: health
// names podman; ensure creates a hardened instance whose stand-in answers
// on its port, sees its env and its files; ensure again reuses it;
// touch, get, list, logs, stop, restart, events; the engine healthcheck
// turns healthy (run by the plugin: no systemd here); one instance
// cannot reach another on the network (inter-container traffic off) but
// reaches the host; after the agent restarts without registry.json,
// both instances are adopted, unrestarted; a prune with tiny thresholds
// removes them and keeps their data; delete with purge removes the data.
func TestAgent(t *testing.T) {
	engine(t)
	t.Parallel()
	p := testenv.StartAgent(t, testenv.AgentOptions{
		Runtime: "podman",
		Args:    []string{"--instance.user=" + agentUser},
		Config:  "[prune]\nintervalMinutes = 600\n",
	})
	t.Cleanup(func() { removeAgentObjects(t, p) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := p.Client

	h, err := c.Health(ctx)
	assert.NilError(t, err)
	assert.Assert(t, h.Runtime.Up && h.Runtime.Engine != nil, "health: %+v", h)
	assert.Equal(t, h.Runtime.Name, "podman")
	assert.Equal(t, h.Runtime.Engine.Runtime, "podman")

	events, err := c.Events(ctx)
	assert.NilError(t, err)
	defer events.Close()

	spec := socketapi.InstanceSpec{
		Env:   map[string]string{"ZAKI_TEST_SECRET": "s3cr3t"},
		Files: map[string]string{"openclaw.json": `{"agent":"podman"}`},
	}
	a, err := c.Ensure(ctx, "pa", spec)
	assert.NilError(t, err)
	assert.Equal(t, a.Outcome, socketapi.OutcomeCreated)
	assert.Equal(t, a.State, socketapi.StateRunning)
	assert.Assert(t, a.Port >= p.PortLo && a.Port <= p.PortHi, "port %d outside %d-%d", a.Port, p.PortLo, p.PortHi)

	t.Run("StandIn", func(t *testing.T) {
		assert.Equal(t, httpGet(t, a.URL+"/health"), "ok")
		assert.Equal(t, httpGet(t, a.URL+"/env/ZAKI_TEST_SECRET"), "true")
		assert.Equal(t, httpGet(t, a.URL+"/env/ZAKI_TEST_UNSET"), "false")
		assert.Equal(t, httpGet(t, a.URL+"/files/openclaw.json"), `{"agent":"podman"}`)
		// The container as podman has it: the design's hardening.
		var ins []struct {
			Config struct {
				User          string
				CreateCommand []string
			}
			HostConfig struct {
				ReadonlyRootfs bool
				PidsLimit      int64
				Memory         int64
				Ulimits        []struct {
					Name       string
					Soft, Hard int64
				}
				SecurityOpt  []string
				PortBindings map[string][]struct{ HostIp string }
			}
			BoundingCaps []string
		}
		assert.NilError(t, json.Unmarshal([]byte(podmanRun(t, "container", "inspect", a.ContainerID)), &ins))
		assert.Equal(t, len(ins), 1)
		got := ins[0]
		assert.Equal(t, got.Config.User, agentUser)
		// Podman keeps the create argv: the secret is not in it, and the
		// env file it names is the inherited in-memory one, never a path
		// on disk.
		envFiles := 0
		for _, arg := range got.Config.CreateCommand {
			assert.Assert(t, !strings.Contains(arg, "s3cr3t"), "secret on podman's create argv: %q", arg)
			if file, ok := strings.CutPrefix(arg, "--env-file="); ok {
				envFiles++
				assert.Equal(t, file, "/dev/fd/3")
			}
		}
		assert.Equal(t, envFiles, 1, "create argv: %q", got.Config.CreateCommand)
		assert.Assert(t, got.HostConfig.ReadonlyRootfs)
		assert.Equal(t, got.HostConfig.PidsLimit, int64(100))
		assert.Equal(t, got.HostConfig.Memory, int64(2<<30))
		assert.Equal(t, len(got.BoundingCaps), 0, "capabilities: %v", got.BoundingCaps)
		assert.DeepEqual(t, got.HostConfig.SecurityOpt, []string{"no-new-privileges"})
		assert.Equal(t, got.HostConfig.PortBindings["18789/tcp"][0].HostIp, "127.0.0.1")
		// The agent's default ulimits as they are, and nofile and nproc
		// both set (podman's own defaults fail here): what the agent sets,
		// else the plugin's implicit values.
		limits := map[string][2]int64{}
		for _, u := range got.HostConfig.Ulimits {
			limits[strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))] = [2]int64{u.Soft, u.Hard}
		}
		for _, s := range agent.DefaultConfig().Instance.Resources.Ulimits {
			u, err := runtime.ParseUlimit(s)
			assert.NilError(t, err)
			assert.Equal(t, limits[u.Name], [2]int64{u.Soft, u.Hard}, "ulimit %s", u.Name)
		}
		for _, name := range []string{"nofile", "nproc"} {
			l, ok := limits[name]
			assert.Assert(t, ok && l[0] > 0 && l[0] <= l[1], "ulimit %s: %v", name, l)
		}
	})

	again, err := c.Ensure(ctx, "pa", spec)
	assert.NilError(t, err)
	assert.Equal(t, again.Outcome, socketapi.OutcomeReused)
	assert.Equal(t, again.ContainerID, a.ContainerID)

	b, err := c.Ensure(ctx, "pb", socketapi.InstanceSpec{})
	assert.NilError(t, err)

	t.Run("API", func(t *testing.T) {
		_, err := c.Touch(ctx, "pa")
		assert.NilError(t, err)
		got, err := c.Get(ctx, "pa")
		assert.NilError(t, err)
		assert.Equal(t, got.ContainerID, a.ContainerID)
		list, err := c.List(ctx, socketapi.StateRunning)
		assert.NilError(t, err)
		assert.Equal(t, len(list), 2)

		rc, err := c.Logs(ctx, "pa", socketapi.LogOptions{Tail: new(50)})
		assert.NilError(t, err)
		logs, err := io.ReadAll(rc)
		rc.Close()
		assert.NilError(t, err)
		assert.Assert(t, strings.Contains(string(logs), "listening"), "logs: %s", logs)
		assert.Assert(t, !strings.Contains(string(logs), "s3cr3t"))

		stopped, err := c.Stop(ctx, "pb")
		assert.NilError(t, err)
		assert.Equal(t, stopped.State, socketapi.StateStopped)
		restarted, err := c.Restart(ctx, "pb")
		assert.NilError(t, err)
		assert.Equal(t, restarted.State, socketapi.StateRunning)
		assert.Equal(t, httpGet(t, b.URL+"/health"), "ok")

		// The engine's events reached the agent's stream.
		waitEvent(t, events, func(ev socketapi.Event) bool {
			return ev.Type == socketapi.EventStarted && ev.UserID == "pb" && ev.ContainerID == b.ContainerID
		})
	})

	t.Run("Healthy", func(t *testing.T) {
		// healthCmd with a 2 s interval (testenv's config): the plugin runs
		// podman's checks, there being no systemd timers on this host.
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			st, err := podmanTry("container", "inspect", "--format", "{{.State.Health.Status}}", a.ContainerID)
			if err != nil {
				return poll.Error(err)
			}
			if st != "healthy" {
				return poll.Continue("health of pa: %q", st)
			}
			return poll.Success()
		}, poll.WithTimeout(60*time.Second), poll.WithDelay(500*time.Millisecond))
	})

	t.Run("NoInterContainerTraffic", func(t *testing.T) {
		ipOf := func(id string) (ip, gateway string) {
			out := podmanRun(t, "container", "inspect", "--format",
				`{{with index .NetworkSettings.Networks "`+p.Network+`"}}{{.IPAddress}} {{.Gateway}}{{end}}`, id)
			ip, gateway, _ = strings.Cut(out, " ")
			return ip, gateway
		}
		aIP, gw := ipOf(a.ContainerID)
		bIP, _ := ipOf(b.ContainerID)
		assert.Assert(t, aIP != "" && bIP != "" && gw != "", "addresses on %s: %q %q %q", p.Network, aIP, bIP, gw)
		// Control: a reaches a listener of the host on its gateway address.
		ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
		assert.NilError(t, err)
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		assert.Equal(t, httpGet(t, a.URL+"/dial?addr="+ln.Addr().String()), "connected")
		// b listens on its bridge address, and a cannot connect to it.
		got := httpGet(t, a.URL+"/dial?addr="+net.JoinHostPort(bIP, "18789"))
		assert.Assert(t, got != "connected", "pa reached pb on the network: %q", got)
	})

	t.Run("Reconcile", func(t *testing.T) {
		startedA := startedAt(t, a.ContainerID)
		p.Stop()
		assert.NilError(t, os.Remove(filepath.Join(p.StateDir, "registry.json")))
		p.Start()
		list, err := c.List(ctx, "")
		assert.NilError(t, err)
		assert.Equal(t, len(list), 2)
		for _, in := range list {
			want := map[string]socketapi.Instance{"pa": a, "pb": b}[in.UserID]
			assert.Equal(t, in.ContainerID, want.ContainerID, in.UserID)
			assert.Equal(t, in.Port, want.Port, in.UserID)
			assert.Equal(t, in.State, socketapi.StateRunning, in.UserID)
		}
		assert.Equal(t, startedAt(t, a.ContainerID), startedA, "pa restarted by its adoption")
		in, err := c.Ensure(ctx, "pa", spec)
		assert.NilError(t, err)
		assert.Equal(t, in.Outcome, socketapi.OutcomeReused)
	})

	t.Run("Prune", func(t *testing.T) {
		tiny := 1e-9
		res, err := c.Prune(ctx, socketapi.PruneRequest{IdleHours: &tiny})
		assert.NilError(t, err)
		assert.Equal(t, len(res.Removed), 2, "pruned: %+v", res)
		for _, id := range []string{a.ContainerID, b.ContainerID} {
			out, err := podmanTry("container", "exists", id)
			assert.Assert(t, err != nil, "container %s still there after the prune: %s", id, out)
		}
		data := filepath.Join(p.StateDir, "instances", "pa", "openclaw.json")
		got, err := os.ReadFile(data)
		assert.NilError(t, err, "pa's data after the prune")
		assert.Equal(t, string(got), `{"agent":"podman"}`)

		// Ensure brings pa back on its data; delete with purge removes both.
		in, err := c.Ensure(ctx, "pa", spec)
		assert.NilError(t, err)
		assert.Equal(t, in.Outcome, socketapi.OutcomeCreated)
		assert.Equal(t, in.Port, a.Port, "a user keeps a port for life")
		assert.Equal(t, httpGet(t, in.URL+"/files/openclaw.json"), `{"agent":"podman"}`)
		assert.NilError(t, c.Remove(ctx, "pa", true))
		_, err = os.Stat(filepath.Dir(data))
		assert.Assert(t, os.IsNotExist(err), "pa's data after delete with purge: %v", err)
	})
}

// removeAgentObjects removes what the agent made in podman (testenv's own
// cleanup speaks docker): the containers of its labels, then its network.
func removeAgentObjects(t *testing.T, p *testenv.AgentProc) {
	p.Stop()
	ids, err := podmanTry("ps", "-aq", "--no-trunc", "--filter", "label="+p.LabelPrefix+".instance=1")
	if err != nil {
		t.Errorf("cleanup: podman ps: %v: %s", err, ids)
	}
	if f := strings.Fields(ids); len(f) > 0 {
		if out, err := podmanTry(append([]string{"rm", "--force", "--ignore", "--time=0"}, f...)...); err != nil {
			t.Errorf("cleanup: podman rm: %v: %s", err, out)
		}
	}
	if out, err := podmanTry("network", "rm", "--", p.Network); err != nil && !strings.Contains(out, "network not found") {
		t.Errorf("cleanup: podman network rm %s: %v: %s", p.Network, err, out)
	}
	// The network's firewall rule goes with it (RemoveNetwork's job when
	// the agent removes a network; the agent never does, so here).
	rules, err := runCmd("iptables", "-w", "-S", "FORWARD")
	if err != nil {
		t.Errorf("cleanup: iptables -S: %v: %s", err, rules)
		return
	}
	for line := range strings.SplitSeq(rules, "\n") {
		if !strings.Contains(line, `"zaki-icc-off:`+p.Network+`"`) {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(line, `"`, ""))
		f[0] = "-D"
		if out, err := runCmd("iptables", append([]string{"-w"}, f...)...); err != nil {
			t.Errorf("cleanup: iptables %v: %v: %s", f, err, out)
		}
	}
}

// runCmd runs a command and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// startedAt is a container's start time, as podman reports it.
func startedAt(t *testing.T, id string) string {
	t.Helper()
	return podmanRun(t, "container", "inspect", "--format", "{{.State.StartedAt}}", id)
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, http.StatusOK, "GET %s: %s", url, b)
	return strings.TrimSpace(string(b))
}

// waitEvent reads the agent's event stream until match, for up to a
// minute.
func waitEvent(t *testing.T, s *socketapi.EventStream, match func(socketapi.Event) bool) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		for {
			ev, err := s.Recv()
			if err != nil {
				found <- err
				return
			}
			if match(ev) {
				found <- nil
				return
			}
		}
	}()
	select {
	case err := <-found:
		assert.NilError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("no matching event within a minute")
	}
}
