package baseline_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/bench/baseline"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// setup starts a real agent and a baseline engine beside it, on its own
// network with its own label prefix, both with the agent's config.
func setup(t *testing.T) (*testenv.AgentProc, *baseline.Engine, string) {
	t.Helper()
	lo := 64000 + rand.IntN(15)*100
	args := []string{"--log-level=info", fmt.Sprintf("--instance.port-range=%d-%d", lo, lo+49), "--instance.health-interval-seconds=30"}
	p := testenv.StartAgent(t, testenv.AgentOptions{Args: args})
	full, _, err := daemon.ConfigFromArgs("zaki-agent", append([]string{"--config", p.Config}, args...), nil)
	assert.NilError(t, err)
	cfg := full.Config
	prefix := fmt.Sprintf("zbt%d%d", os.Getpid(), rand.IntN(1e6))
	network := testenv.UniqueName("zaki-baseline-net")
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+prefix+".instance=1").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "network", "rm", network).Run()
	})
	testenv.Docker(t, "network", "create", "-o", "com.docker.network.bridge.enable_icc=false", network)
	cfg.Instance.Network = network
	cfg.Instance.PortRange = fmt.Sprintf("%d-%d", lo+50, lo+99)
	e, err := baseline.New(baseline.Config{Dir: filepath.Join(t.TempDir(), "state"), Agent: cfg, LabelPrefix: prefix})
	assert.NilError(t, err)
	return p, e, prefix
}

var spec = socketapi.InstanceSpec{Env: map[string]string{"TOKEN": "not-a-secret"}}

// The baseline's container must be the agent's, flag for flag: the
// benchmark compares engines, not container specs.
func TestRunArgsMatchTheAgent(t *testing.T) {
	p, e, prefix := setup(t)
	ctx := t.Context()
	user := prefix + "-x"
	_, err := p.Client.Ensure(ctx, user+"a", spec)
	assert.NilError(t, err)
	_, err = e.Ensure(ctx, user+"b", spec)
	assert.NilError(t, err)

	norm := func(name string) map[string]any {
		var got []struct {
			Config     map[string]any
			HostConfig map[string]any
		}
		assert.NilError(t, json.Unmarshal([]byte(testenv.Docker(t, "inspect", name)), &got))
		hc, c := got[0].HostConfig, got[0].Config
		env := map[string]bool{}
		for _, kv := range c["Env"].([]any) {
			k, _, _ := strings.Cut(kv.(string), "=")
			env[k] = true
		}
		pb := hc["PortBindings"].(map[string]any)
		var binds []string
		for port, v := range pb {
			for _, b := range v.([]any) {
				binds = append(binds, port+"@"+b.(map[string]any)["HostIp"].(string))
			}
		}
		var targets []string
		for _, m := range hc["Mounts"].([]any) {
			mm := m.(map[string]any)
			targets = append(targets, fmt.Sprint(mm["Type"], ":", mm["Target"], ":", mm["ReadOnly"]))
		}
		out := map[string]any{"User": c["User"], "Healthcheck": c["Healthcheck"], "StopTimeout": c["StopTimeout"],
			"Image": c["Image"], "Entrypoint": c["Entrypoint"], "Cmd": c["Cmd"], "Env": env, "Ports": binds, "Mounts": targets}
		for _, k := range []string{"Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit", "Ulimits", "ReadonlyRootfs",
			"Tmpfs", "CapDrop", "CapAdd", "SecurityOpt", "Init", "RestartPolicy", "Privileged", "NetworkMode", "PublishAllPorts"} {
			out[k] = hc[k]
		}
		// The network differs by construction (each has its own), and
		// both have inter-container traffic off.
		delete(out, "NetworkMode")
		return out
	}
	base, ours := norm(baseline.ContainerName(user+"b")), norm(baseline.ContainerName(user+"a"))
	// The user differs by design: the agent gives each tenant a uid of its
	// own (instance.uidRange), the platform ran every one as 1000:1000.
	defaults := agent.DefaultConfig()
	lo, _, err := defaults.Instance.UIDs()
	assert.NilError(t, err)
	assert.Equal(t, base["User"], "1000:1000")
	var uid, gid int
	_, err = fmt.Sscanf(fmt.Sprint(ours["User"]), "%d:%d", &uid, &gid)
	assert.NilError(t, err, "agent's user %v", ours["User"])
	assert.Assert(t, uid >= lo && gid == uid, "agent's user %v", ours["User"])
	delete(base, "User")
	delete(ours, "User")
	assert.DeepEqual(t, base, ours)
}

// The old engine's outcomes, as the benchmark relies on them.
func TestEnsureOutcomes(t *testing.T) {
	_, e, prefix := setup(t)
	ctx := t.Context()
	user := prefix + "-o"
	step := func(s socketapi.InstanceSpec, want string) {
		t.Helper()
		in, err := e.Ensure(ctx, user, s)
		assert.NilError(t, err)
		assert.Equal(t, in.Outcome, want)
	}
	step(spec, "created")
	step(spec, "reused")
	testenv.Docker(t, "stop", "-t", "0", baseline.ContainerName(user))
	step(spec, "started")
	step(socketapi.InstanceSpec{Env: map[string]string{"TOKEN": "other"}}, "recreated")

	ins, err := e.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(ins), 1)
	assert.Equal(t, ins[0].State, "running")

	assert.NilError(t, e.WriteRegistry([]baseline.Entry{{UserID: "gone", ContainerName: "zaki-user-gone-" + prefix, Port: 1}}))
	ins, err = e.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(ins), 1)
	assert.Equal(t, ins[0].State, "missing")

	_, err = e.Ensure(ctx, "../bad", spec)
	assert.ErrorContains(t, err, "invalid user id")
}
