package main

// Tests of the real zaki-agent binary with the real docker plugin and
// engine: the lifecycle rules that only a process can show.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

func startedAt(t *testing.T, id string) string {
	return testenv.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id)
}

func TestConcurrentEnsures(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	ctx := context.Background()

	t.Run("50 for one user make one container", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]string, 50)
		errs := make([]error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in, err := p.Client.Ensure(ctx, "solo", socketapi.InstanceSpec{})
				ids[i], errs[i] = in.ContainerID, err
			}()
		}
		wg.Wait()
		for i := range 50 {
			assert.NilError(t, errs[i])
			assert.Equal(t, ids[i], ids[0])
		}
		out := testenv.Docker(t, "ps", "-aq", "--filter", "label="+p.LabelPrefix+".userId=solo", "--filter", "network="+p.Network)
		assert.Equal(t, len(strings.Fields(out)), 1, "containers for user solo: %q", out)
	})

	t.Run("20 users in parallel", func(t *testing.T) {
		var wg sync.WaitGroup
		ins := make([]socketapi.Instance, 20)
		errs := make([]error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ins[i], errs[i] = p.Client.Ensure(ctx, fmt.Sprintf("crowd-%02d", i), socketapi.InstanceSpec{})
			}()
		}
		wg.Wait()
		ports := map[int]bool{}
		for i, in := range ins {
			assert.NilError(t, errs[i])
			assert.Equal(t, in.State, socketapi.StateRunning)
			assert.Assert(t, !ports[in.Port], "port %d twice", in.Port)
			ports[in.Port] = true
			resp, err := http.Get(in.URL + "/")
			assert.NilError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Assert(t, strings.Contains(string(body), in.UserID), "port %d answers %q", in.Port, body)
		}
		out := testenv.Docker(t, "ps", "-q", "--filter", "label="+p.LabelPrefix+".instance=1", "--filter", "network="+p.Network)
		assert.Equal(t, len(strings.Fields(out)), 21) // and "solo"
	})
}

func TestRestartAdoptsWithoutRestarting(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	ctx := context.Background()
	want := map[string]socketapi.Instance{}
	starts := map[string]string{}
	for _, u := range []string{"keep-a", "keep-b", "keep-c"} {
		in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{Labels: map[string]string{"plan": u}})
		assert.NilError(t, err)
		want[u] = in
		starts[u] = startedAt(t, in.ContainerID)
	}

	// A plain restart (SIGTERM) leaves every instance running.
	p.Restart()
	for u, in := range want {
		assert.Equal(t, startedAt(t, in.ContainerID), starts[u], "%s restarted by an agent restart", u)
	}

	// Lose the registry altogether: every instance is adopted from its labels.
	p.Stop()
	assert.NilError(t, os.Remove(filepath.Join(p.StateDir, "registry.json")))
	p.Start()
	list, err := p.Client.List(ctx, "")
	assert.NilError(t, err)
	assert.Equal(t, len(list), 3)
	for _, got := range list {
		w := want[got.UserID]
		assert.Equal(t, got.ContainerID, w.ContainerID)
		assert.Equal(t, got.Port, w.Port)
		assert.Equal(t, got.ConfigHash, w.ConfigHash)
		assert.Equal(t, got.State, socketapi.StateRunning)
		assert.Equal(t, startedAt(t, got.ContainerID), starts[got.UserID], "%s restarted by adoption", got.UserID)
	}
	// And an ensure of the same spec reuses it.
	in, err := p.Client.Ensure(ctx, "keep-a", socketapi.InstanceSpec{Labels: map[string]string{"plan": "keep-a"}})
	assert.NilError(t, err)
	assert.Equal(t, in.Outcome, socketapi.OutcomeReused)
}

func TestKillDuringBurst(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	ctx := context.Background()
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.Client.Ensure(ctx, fmt.Sprintf("burst-%d", i), socketapi.InstanceSpec{Env: map[string]string{"ROUND": strconv.Itoa(round)}})
			}()
		}
		time.Sleep(time.Duration(200+round*300) * time.Millisecond)
		p.Kill()
		wg.Wait()
		p.Start()

		// The registry parses, no user has two containers, no port is
		// held twice, and every labelled container has an entry.
		reg := readRegistry(t, p.StateDir)
		ports := map[int]string{}
		for u, port := range reg.Ports {
			if other, dup := ports[port]; dup {
				t.Fatalf("round %d: port %d held by %s and %s", round, port, u, other)
			}
			ports[port] = u
		}
		byUser := map[string]int{}
		for _, line := range strings.Split(testenv.Docker(t, "ps", "-a", "--filter", "network="+p.Network, "--format", `{{.Label "`+p.LabelPrefix+`.userId"}}`), "\n") {
			if line != "" {
				byUser[line]++
			}
		}
		for u, n := range byUser {
			assert.Equal(t, n, 1, "round %d: user %s has %d containers", round, u, n)
		}
		// A create the killed agent's plugin sent may land after the new
		// agent's start-up resync: its events get it adopted.
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			list, err := p.Client.List(ctx, "")
			if err != nil {
				return poll.Error(err)
			}
			listed := map[string]bool{}
			for _, in := range list {
				listed[in.UserID] = true
			}
			for u := range byUser {
				if !listed[u] {
					return poll.Continue("round %d: container of %s has no entry", round, u)
				}
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second), poll.WithDelay(100*time.Millisecond))
	}
	// Everyone can be ensured afterwards.
	for i := range 8 {
		_, err := p.Client.Ensure(ctx, fmt.Sprintf("burst-%d", i), socketapi.InstanceSpec{Env: map[string]string{"ROUND": "2"}})
		assert.NilError(t, err)
	}
}

type regFile struct {
	Version int            `json:"version"`
	Ports   map[string]int `json:"ports"`
	Records []struct {
		UserID string `json:"userId"`
	} `json:"records"`
}

func readRegistry(t *testing.T, dir string) regFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "registry.json"))
	if errors.Is(err, os.ErrNotExist) {
		return regFile{} // killed before its first durable change
	}
	assert.NilError(t, err)
	var f regFile
	assert.NilError(t, json.Unmarshal(b, &f), "registry.json does not parse")
	return f
}

func TestSecretsNeverLeak(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	// Made at run time, so that no source file holds it (a checkout may
	// live under the temp dir the grep below walks).
	secret := fmt.Sprintf("zk-secret-%d-%d", os.Getpid(), time.Now().UnixNano())
	ctx := context.Background()

	// Watch every process's argv while the ensure runs.
	stop := make(chan struct{})
	var seen []string
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err == nil && bytes.Contains(b, []byte(secret)) {
					mu.Lock()
					seen = append(seen, strings.ReplaceAll(string(b), "\x00", " "))
					mu.Unlock()
				}
			}
		}
	}()
	in, err := p.Client.Ensure(ctx, "secretive", socketapi.InstanceSpec{Env: map[string]string{"OPENCLAW_API_KEY": secret}})
	close(stop)
	<-done
	assert.NilError(t, err)
	assert.Assert(t, len(seen) == 0, "secret on a command line: %v", seen)

	// The container has it, nothing else does.
	resp, err := http.Get(in.URL + "/env/OPENCLAW_API_KEY")
	assert.NilError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, strings.TrimSpace(string(b)), "true")
	labels := testenv.Docker(t, "inspect", "-f", "{{json .Config.Labels}}", in.ContainerID)
	assert.Assert(t, !strings.Contains(labels, secret), "secret in a label")
	assert.Assert(t, !strings.Contains(p.Log(), secret), "secret in the agent's log")
	reg, err := os.ReadFile(filepath.Join(p.StateDir, "registry.json"))
	assert.NilError(t, err)
	assert.Assert(t, !bytes.Contains(reg, []byte(secret)), "secret in the registry")
	// No env file is left behind anywhere the plugin writes.
	// -s: files that other tests remove while grep walks are not errors
	// here (grep then exits 2); what matters is that none matches.
	res := icmd.RunCommand("grep", "-rls", "--exclude-dir=go-build*", "--exclude-dir=zaki-testbin-*", secret, os.TempDir(), p.StateDir)
	assert.Assert(t, res.ExitCode != 0 && strings.TrimSpace(res.Stdout()) == "", "secret in files: %s", res.Stdout())
}

func TestSecondAgentRefused(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	res := icmd.RunCommand(testenv.Binary(t, "zaki-agent"), "--config", p.Config, "--socket", filepath.Join(p.Dir, "second.sock"))
	res.Assert(t, icmd.Expected{ExitCode: 1, Err: fmt.Sprintf("in use by pid %d", p.Pid())})
	_, err := p.Client.Health(context.Background())
	assert.NilError(t, err, "first agent hurt")
}

func TestGracefulStopAndSignals(t *testing.T) {
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	ctx := context.Background()
	in, err := p.Client.Ensure(ctx, "sig", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	start := startedAt(t, in.ContainerID)

	// SIGHUP reloads: a live setting applies, a restart-only one is named.
	cfg, err := os.ReadFile(p.Config)
	assert.NilError(t, err)
	newCfg := strings.Replace(string(cfg), `logLevel = "debug"`, `logLevel = "debug"`+"\nmaxEngineOps = 3", 1)
	newCfg += "\n[hot]\nwindowMinutes = 1\n"
	assert.NilError(t, os.WriteFile(p.Config, []byte(newCfg), 0o600))
	p.Signal(syscall.SIGHUP)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if !strings.Contains(p.Log(), "config reloaded") {
			return poll.Continue("no reload logged")
		}
		return poll.Success()
	})
	assert.Assert(t, strings.Contains(p.Log(), "applied=hot.windowMinutes"), p.Log())
	assert.Assert(t, strings.Contains(p.Log(), "needRestart=maxEngineOps"), p.Log())

	// A broken config on SIGHUP is refused and the agent keeps serving.
	assert.NilError(t, os.WriteFile(p.Config, []byte(newCfg+"\nbogusKey = 1\n"), 0o600))
	p.Signal(syscall.SIGHUP)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if !strings.Contains(p.Log(), "reload refused") {
			return poll.Continue("no refusal logged")
		}
		return poll.Success()
	})
	_, err = p.Client.Health(ctx)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(p.Config, []byte(newCfg), 0o600))

	// SIGTERM: exits 0, removes its socket, leaves the instance running.
	p.Stop()
	assert.Equal(t, p.ExitCode(), 0)
	_, err = os.Stat(p.Socket)
	assert.Assert(t, errors.Is(err, os.ErrNotExist), "socket left behind")
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", in.ContainerID), "true")
	assert.Equal(t, startedAt(t, in.ContainerID), start)
}

// A notify socket that nobody reads (its queue full, a write to it
// blocks) must not stall the agent: it keeps serving and exits on SIGTERM.
func TestUnreadNotifySocketNeverStallsTheAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	assert.NilError(t, err)
	defer conn.Close()
	assert.NilError(t, conn.SetReadBuffer(1)) // the kernel's minimum: a few datagrams fill it
	// A watchdog every 300 ms: a ping every 100 ms, none of them read.
	p := testenv.StartAgent(t, testenv.AgentOptions{Env: []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=300000"}})
	time.Sleep(2 * time.Second)
	_, err = p.Client.Health(context.Background())
	assert.NilError(t, err)
	p.Stop() // fails the test unless the agent exits within 30 s
	assert.Equal(t, p.ExitCode(), 0)
}

// With ZAKI_AGENT_PROFILE_DIR set, the start-up is profiled and SIGUSR1
// starts and ends CPU profiles and execution traces, each file whole; the
// agent keeps serving throughout. Without it, the agent handles no SIGUSR1
// (covered by every other test: none sets it).
func TestProfileDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles") // made by the agent
	p := testenv.StartAgent(t, testenv.AgentOptions{Env: []string{"ZAKI_AGENT_PROFILE_DIR=" + dir}})
	ctx := context.Background()
	wholeProfile := func(name string) func(poll.LogT) poll.Result {
		return func(poll.LogT) poll.Result {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return poll.Continue("%v", err)
			}
			if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b { // gzip
				return poll.Error(fmt.Errorf("%s: %d bytes, not a gzip'd profile", name, len(b)))
			}
			return poll.Success()
		}
	}
	poll.WaitOn(t, wholeProfile(fmt.Sprintf("startup-%d.pprof", p.Pid())))
	for n := 1; n <= 2; n++ {
		p.Signal(syscall.SIGUSR1)
		// A SIGUSR1 sent before the last one was handled merges into it:
		// the next one waits until the profile has started.
		started := fmt.Sprintf("cpu-%d-%d.pprof", p.Pid(), n)
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			for _, line := range strings.Split(p.Log(), "\n") {
				if strings.Contains(line, `msg="profile started"`) && strings.Contains(line, started) {
					return poll.Success()
				}
			}
			return poll.Continue("profile %s not started yet", started)
		})
		for range 50 {
			_, err := p.Client.List(ctx, "")
			assert.NilError(t, err)
		}
		p.Signal(syscall.SIGUSR1)
		poll.WaitOn(t, wholeProfile(fmt.Sprintf("cpu-%d-%d.pprof", p.Pid(), n)))
		trace := filepath.Join(dir, fmt.Sprintf("trace-%d-%d.out", p.Pid(), n))
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if fi, err := os.Stat(trace); err != nil || fi.Size() < 100 {
				return poll.Continue("no execution trace %s yet (%v)", trace, err)
			}
			return poll.Success()
		})
		// The trace is one go tool trace reads.
		icmd.RunCommand("go", "tool", "trace", "-pprof=sched", trace).Assert(t, icmd.Success)
	}
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 5, "no temporary file left")
	_, err = p.Client.Health(ctx)
	assert.NilError(t, err)
}

// TestLegacyRegistryKey: the config's legacyRegistry names a registry of
// the seed's format, imported when the state dir has none: its users
// keep their ports.
func TestLegacyRegistryKey(t *testing.T) {
	legacy := filepath.Join(t.TempDir(), "legacy.json")
	assert.NilError(t, os.WriteFile(legacy, []byte(`{"entries": [
		{"containerName": "zaki-user-lega", "userId": "lega", "createdAtMs": 1690000000000, "lastUsedAtMs": 1690000500000, "port": 18790, "image": "alpine/openclaw:latest", "configHash": "3f2a"}
	]}`), 0o600))
	p := testenv.StartAgent(t, testenv.AgentOptions{Config: fmt.Sprintf("legacyRegistry = %q\n", legacy)})
	in, err := p.Client.Get(context.Background(), "lega")
	assert.NilError(t, err)
	assert.Equal(t, in.Port, 18790)
	assert.Equal(t, in.State, socketapi.StateMissing)
	_, err = os.Stat(filepath.Join(p.StateDir, "registry.legacy.json"))
	assert.NilError(t, err, "the imported file is kept beside the registry")
}
