package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// TestZakictl runs every command of the built zakictl against an agent
// over the fake runtime, checking exit codes and outputs with golden files
// (go test ./socketapi/cmd/zakictl -update rewrites them).
func TestZakictl(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	c := apitest.NewCLI(t, e)
	dir := t.TempDir()
	c.Dir = dir
	envFile := filepath.Join(dir, "alice.env")
	assert.NilError(t, os.WriteFile(envFile, []byte("# alice's secrets\nOPENCLAW_TOKEN=tok-123\n\nFROM_ENV\n"), 0o600))
	cfgFile := filepath.Join(dir, "openclaw.json")
	assert.NilError(t, os.WriteFile(cfgFile, []byte(`{"gateway":{"port":18789}}`), 0o600))
	c.Env = append(c.Env, "FROM_ENV=from-zakictl-env")

	// The first ensure pulls the agent's default image: progress on stderr.
	c.Golden("ensure-created", "ensure", "alice", "--env-file", envFile, "--file", "openclaw.json="+cfgFile, "--label", "plan=pro")
	spec, ok := e.Fake.CreatedSpec("zaki-user-alice")
	assert.Assert(t, ok)
	assert.Check(t, is.Equal(spec.Env["OPENCLAW_TOKEN"], "tok-123"))
	assert.Check(t, is.Equal(spec.Env["FROM_ENV"], "from-zakictl-env"))
	assert.Check(t, is.Equal(spec.Labels["plan"], "pro"))
	b, err := os.ReadFile(filepath.Join(e.StateDir, "instances", "alice", "openclaw.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), `{"gateway":{"port":18789}}`))

	// Another spec while alice is hot: kept, and marked stale.
	c.Golden("ensure-hot-stale", "ensure", "alice", "--json")
	// In text, the line says so.
	c.Golden("ensure-hot-stale-text", "ensure", "alice", "--label", "plan=pro")
	c.Golden("ensure-bob", "ensure", "bob", "--image", testenv.StubImage, "--cpus", "1", "--memory", "512m", "--pids", "50")
	c.Golden("stop", "stop", "bob")
	c.Golden("ls", "ls")
	c.Golden("ls-running", "ls", "--state", "running")
	c.Golden("ls-json", "--json", "ls", "--state", "stopped")
	c.Golden("inspect", "inspect", "alice")
	c.Golden("touch", "touch", "alice")
	c.Golden("restart", "restart", "bob")
	c.Golden("exec", "exec", "bob", "--", "/gateway-stub", "-exec", "echo", "hi")
	c.Golden("exec-stderr", "exec", "--timeout", "5", "bob", "--", "/gateway-stub", "-exec", "stderr", "oops")
	c.Golden("exec-exit-code", "exec", "bob", "/gateway-stub", "-exec", "exit", "5")
	c.Golden("exec-json", "--json", "exec", "bob", "--", "/gateway-stub", "-exec", "echo", "hi")
	c.Golden("err-exec-no-cmd", "exec", "bob", "--")
	assert.NilError(t, e.Fake.WriteLog("zaki-user-alice", "gateway listening", "request served"))
	c.Golden("logs-tail", "logs", "alice", "--tail", "2")
	c.Golden("logs-json", "logs", "alice", "--json")
	// As docker logs: --tail 0 prints nothing, --tail all everything;
	// --since and -t.
	c.Golden("logs-tail-0", "logs", "alice", "--tail", "0")
	all := c.Run("logs", "alice", "--tail", "all")
	all.Assert(t, icmd.Success)
	assert.Check(t, is.Equal(all.Stdout(), c.Run("logs", "alice").Stdout()))
	assert.Check(t, is.Contains(all.Stdout(), "gateway listening\nrequest served\n"))
	stamped := c.Run("logs", "alice", "-t", "--since", "1h", "-n", "2")
	stamped.Assert(t, icmd.Success)
	assert.Check(t, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z gateway listening\n\S+ request served\n$`).MatchString(stamped.Stdout()), stamped.Stdout())
	ts, _, _ := strings.Cut(stamped.Stdout(), " ")
	last := strings.Split(strings.TrimSpace(stamped.Stdout()), "\n")[1]
	lastTS, _, _ := strings.Cut(last, " ")
	since := c.Run("logs", "alice", "--since", lastTS)
	since.Assert(t, icmd.Success)
	assert.Check(t, is.Equal(since.Stdout(), "request served\n"), "since %s (first line at %s)", lastTS, ts)
	c.Golden("logs-since-now", "logs", "alice", "--since", "0s")
	c.Golden("err-logs-bad-since", "logs", "alice", "--since", "yesterday")
	c.Golden("err-logs-bad-tail", "logs", "alice", "--tail", "-1")
	c.Golden("prune-dry-run", "prune", "--dry-run", "--idle-hours", "0.0000001", "--max-age-days", "0")
	c.Golden("prune-nothing", "prune", "--idle-hours", "0", "--max-age-days", "0", "--idle-stop-minutes", "0")
	c.Golden("health", "health")
	c.Golden("health-json", "health", "--json")
	c.Golden("version", "version")
	c.Golden("rm", "rm", "bob")
	c.Golden("rm-purge", "rm", "alice", "--purge", "--json")
	_, err = os.Stat(filepath.Join(e.StateDir, "instances", "alice"))
	assert.Check(t, os.IsNotExist(err), "alice's data purged")
	_, err = os.Stat(filepath.Join(e.StateDir, "instances", "bob"))
	assert.NilError(t, err, "bob's data kept")
	c.Golden("ls-empty", "ls")

	// pull: again although present, progress on stderr (not a terminal:
	// one line each).
	c.Golden("pull", "pull", "alpine/openclaw:latest")
	c.Golden("pull-json", "pull", "alpine/openclaw:latest", "--json")
	c.Golden("err-pull-failed", "pull", "alpine/openclaw:nope")
	c.Golden("err-pull-not-allowed", "pull", "evil/miner:latest")
	c.Golden("err-pull-no-image", "pull")
	// --force applies a changed spec to a hot instance now; with nothing
	// to apply it reuses it.
	c.Run("ensure", "erin").Assert(t, icmd.Success)
	r := c.Run("ensure", "erin", "--label", "k=v", "--force")
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stdout(), "erin recreated "))
	r = c.Run("ensure", "erin", "--label", "k=v", "--force")
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stdout(), "erin reused "))
	c.Run("rm", "erin").Assert(t, icmd.Success)

	// Errors: exit 1, the agent's message.
	c.Golden("err-not-found", "inspect", "nobody")
	c.Golden("err-bad-user", "ensure", "bad!id")
	c.Golden("err-bad-state", "ls", "--state", "sleeping")
	c.Golden("err-image-not-allowed", "ensure", "carol", "--image", "evil/miner:latest")
	c.Golden("err-env-unset", "ensure", "carol", "--env", "NOT_SET_ANYWHERE")
	c.Golden("err-unknown-command", "frobnicate")
	c.Golden("err-missing-user", "ensure")
	c.Golden("err-extra-args", "logs", "a", "b")
	c.Golden("err-bad-flag", "ls", "--all")
	c.Golden("err-no-agent", "--socket", "/nonexistent/agent.sock", "ls")

	// Help.
	c.Golden("help", "--help")
	// No command: the help, and success (as docker).
	noArgs := c.Run()
	noArgs.Assert(t, icmd.Success)
	assert.Check(t, is.Equal(noArgs.Stdout(), c.Run("--help").Stdout()))
	assert.Check(t, is.Equal(noArgs.Stderr(), ""))
	c.Golden("help-rm", "rm", "--help")
	c.Golden("help-logs", "help", "logs")
	c.Golden("help-ensure", "ensure", "--help")
	c.Golden("help-prune", "help", "prune")
	c.Golden("help-pull", "pull", "--help")
	for _, cmd := range []string{"ensure", "pull", "ls", "inspect", "touch", "stop", "restart", "rm", "prune", "import", "logs", "exec", "events", "health", "version"} {
		res := c.Run(cmd, "--help")
		res.Assert(t, icmd.Success)
		assert.Check(t, is.Contains(res.Stdout(), "Usage: zakictl "+cmd))
	}
	// --socket wins over ZAKI_SOCKET.
	res := icmd.RunCmd(icmd.Command(c.Bin, "--socket", e.Socket, "health"), icmd.WithEnv("ZAKI_SOCKET=/nonexistent"))
	res.Assert(t, icmd.Success)
}

// TestZakictlStreams follows events and logs until interrupted.
func TestZakictlStreams(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	c := apitest.NewCLI(t, e)
	c.Run("ensure", "dora", "--image", testenv.StubImage).Assert(t, icmd.Success)

	logs := icmd.StartCmd(c.Cmd("logs", "dora", "-f"))
	assert.NilError(t, logs.Error)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(logs.Stdout(), "started") {
			return poll.Success()
		}
		return poll.Continue("logs so far: %q", logs.Stdout())
	}, poll.WithTimeout(10*time.Second))
	assert.NilError(t, e.Fake.WriteLog("zaki-user-dora", "hello from dora"))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(logs.Stdout(), "hello from dora\n") {
			return poll.Success()
		}
		return poll.Continue("logs so far: %q", logs.Stdout())
	}, poll.WithTimeout(10*time.Second))
	assert.NilError(t, logs.Cmd.Process.Signal(os.Interrupt))
	res := icmd.WaitOnCmd(10*time.Second, logs)
	res.Assert(t, icmd.Expected{ExitCode: 0})
	assert.Check(t, is.Equal(res.Stderr(), ""))

	events := icmd.StartCmd(c.Cmd("events"))
	assert.NilError(t, events.Error)
	jsonEvents := icmd.StartCmd(c.Cmd("events", "--json"))
	assert.NilError(t, jsonEvents.Error)
	// Restart until both streams saw it: then both are subscribed.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(events.Stdout(), "instance.restarted dora") && strings.Contains(jsonEvents.Stdout(), `"type":"instance.restarted"`) {
			return poll.Success()
		}
		if res := c.Run("restart", "dora"); res.ExitCode != 0 {
			return poll.Error(fmt.Errorf("restart: %s", res.Combined()))
		}
		return poll.Continue("not subscribed yet")
	}, poll.WithTimeout(10*time.Second), poll.WithDelay(100*time.Millisecond))

	c.Run("stop", "dora").Assert(t, icmd.Success)
	c.Run("ensure", "dora", "--image", testenv.StubImage).Assert(t, icmd.Success)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(events.Stdout(), "instance.ensured dora image=zaki/gateway-stub:latest outcome=started") {
			return poll.Success()
		}
		return poll.Continue("events so far: %q", events.Stdout())
	}, poll.WithTimeout(10*time.Second))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(jsonEvents.Stdout(), `"type":"instance.stopped","userId":"dora"`) {
			return poll.Success()
		}
		return poll.Continue("json events so far: %q", jsonEvents.Stdout())
	}, poll.WithTimeout(10*time.Second))

	// Interrupted, each exits 0 and says nothing more.
	for _, r := range []*icmd.Result{events, jsonEvents} {
		assert.NilError(t, r.Cmd.Process.Signal(os.Interrupt))
		res := icmd.WaitOnCmd(10*time.Second, r)
		res.Assert(t, icmd.Expected{ExitCode: 0})
		assert.Check(t, is.Equal(res.Stderr(), ""))
	}
	for _, l := range strings.Split(strings.TrimSpace(events.Stdout()), "\n") {
		assert.Check(t, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z]+\.[a-z]+ `).MatchString(l), "event line %q", l)
	}
}

// TestZakictlSeveralUsers: the commands docker runs for several containers
// (rm, stop, restart, inspect; ensure for docker start) take several
// users: each is run, each result printed, each failure printed without
// stopping the others, and the exit code is 1 if any failed. ls -q lists
// the user IDs; rm -f is quiet about a user with no instance.
func TestZakictlSeveralUsers(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	c := apitest.NewCLI(t, e)
	c.Golden("several-ensure", "ensure", "ann", "ben", "--image", testenv.StubImage)
	c.Golden("several-stop", "stop", "ann", "nobody", "ben")
	c.Golden("several-ls-q", "ls", "-q", "--state", "stopped")
	c.Golden("several-restart", "restart", "ann", "ben")
	c.Golden("several-touch-json", "touch", "ann", "ben", "--json")
	c.Golden("several-inspect", "inspect", "ann", "nobody")
	c.Golden("several-rm", "rm", "ann", "nobody")
	c.Golden("several-rm-force", "rm", "-f", "ben", "nobody")
	c.Golden("several-ls-q-empty", "ls", "-q")
	c.Golden("err-several-missing", "stop")
}
