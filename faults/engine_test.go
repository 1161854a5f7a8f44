//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// dockerd is the engine process the suite stops and starts: the machine's
// own by default (pid file /var/run/docker.pid), or another one named by
// ZAKI_FAULTS_DOCKERD_PIDFILE (with DOCKER_HOST pointing at it), so that
// the suite can run against a private engine. It is started again the way
// it was started: by systemd when systemd runs it, else with the same
// argv, in its own session, logging to ZAKI_FAULTS_DOCKERD_LOG
// (/var/log/zaki-dockerd.log, as scripts/ensure-docker.sh does).
type dockerd struct {
	pid     int
	argv    []string
	log     string
	systemd bool
}

func findDockerd(t testing.TB) *dockerd {
	t.Helper()
	pidfile := os.Getenv("ZAKI_FAULTS_DOCKERD_PIDFILE")
	if pidfile == "" {
		pidfile = "/var/run/docker.pid"
	}
	b, err := os.ReadFile(pidfile)
	assert.NilError(t, err, "the engine's pid file (set ZAKI_FAULTS_DOCKERD_PIDFILE)")
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	assert.NilError(t, err)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	assert.NilError(t, err, "dockerd pid %d from %s", pid, pidfile)
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	assert.Assert(t, filepath.Base(argv[0]) == "dockerd", "pid %d is %q, not dockerd", pid, argv)
	d := &dockerd{pid: pid, argv: argv, log: os.Getenv("ZAKI_FAULTS_DOCKERD_LOG")}
	if d.log == "" {
		d.log = "/var/log/zaki-dockerd.log"
	}
	if ppid, _ := procPPID(pid); ppid == 1 {
		if _, err := os.Stat("/run/systemd/system"); err == nil &&
			exec.Command("systemctl", "is-active", "--quiet", "docker.service").Run() == nil {
			d.systemd = true
		}
	}
	return d
}

func engineAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").Run() == nil
}

// stop stops the engine as an administrator would (SIGTERM, or systemctl)
// and waits until it is gone.
func (d *dockerd) stop(t testing.TB) {
	t.Helper()
	if d.systemd {
		out, err := exec.Command("systemctl", "stop", "docker.socket", "docker.service").CombinedOutput()
		assert.NilError(t, err, "systemctl stop docker: %s", out)
	} else {
		assert.NilError(t, syscall.Kill(d.pid, syscall.SIGTERM))
		deadline := time.Now().Add(90 * time.Second)
		for syscall.Kill(d.pid, 0) == nil && procState(d.pid) != "Z" {
			if time.Now().After(deadline) {
				t.Fatalf("dockerd %d did not stop within 90s", d.pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(t, 30*time.Second, "engine down", func() (bool, string) { return !engineAnswers(), "still answers" })
}

// start starts the engine again and waits until it answers.
func (d *dockerd) start(t testing.TB) {
	t.Helper()
	if d.systemd {
		out, err := exec.Command("systemctl", "start", "docker.socket", "docker.service").CombinedOutput()
		if err != nil {
			t.Errorf("systemctl start docker: %v: %s", err, out)
		}
	} else {
		logf, err := os.OpenFile(d.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Errorf("dockerd log: %v", err)
			logf = nil
		}
		cmd := exec.Command(d.argv[0], d.argv[1:]...)
		cmd.Dir = "/"
		if logf != nil {
			cmd.Stdout, cmd.Stderr = logf, logf
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Errorf("start dockerd: %v", err)
			return
		}
		d.pid = cmd.Process.Pid
		go cmd.Wait() // reap it should it die while the test runs
		if logf != nil {
			logf.Close()
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for !engineAnswers() {
		if time.Now().After(deadline) {
			t.Errorf("dockerd did not answer within 90s of its start")
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestEngineRestart stops dockerd and starts it again under a running
// agent: while it is down calls that need it fail with 503
// runtime_unavailable within their bound, calls that do not are served,
// the agent stays up and says so in its health; once it is back the
// instances the engine's stop took down come back on their own, the one
// the agent itself stopped stays stopped, and the agent's view is resynced.
func TestEngineRestart(t *testing.T) {
	testenv.RequireDocker(t)
	l := newLedger(t, "engine (dockerd) stop and start")
	d := findDockerd(t)
	p := testenv.StartAgent(t, testenv.AgentOptions{Args: append([]string{"--call-timeout-seconds=10"}, loadTolerant...)})
	// Whatever happens, the engine runs again when the test ends (before
	// the agent's clean-up, which needs it: clean-ups run last first).
	t.Cleanup(func() {
		if !engineAnswers() {
			t.Log("starting the engine again")
			d.start(t)
		}
	})
	ctx := context.Background()
	events := collectEvents(t, p.Client)
	users := []string{"eng-a", "eng-b", "eng-c", "eng-stopped"}
	ins := map[string]socketapi.Instance{}
	for _, u := range users {
		in, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
		ins[u] = in
	}
	_, err := p.Client.Stop(ctx, "eng-stopped")
	assert.NilError(t, err)
	agentPid := p.Pid()

	l.fault(1)
	d.stop(t)

	t.Run("while the engine is down", func(t *testing.T) {
		waitFor(t, 30*time.Second, "health says the runtime is unavailable", func() (bool, string) {
			h, err := p.Client.Health(ctx)
			return err != nil && h.Status == socketapi.HealthUnavailable, fmt.Sprintf("%+v %v", h.Runtime, err)
		})
		h, err := p.Client.Health(ctx)
		var apiErr *socketapi.Error
		l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && apiErr.Code == socketapi.CodeRuntimeUnavailable,
			"health: %v", err)
		l.checkT(t, !h.Runtime.Up && h.Runtime.Error != "", "health runtime: %+v", h.Runtime)
		for what, call := range map[string]func(context.Context) error{
			"ensure a new user": func(ctx context.Context) error {
				_, err := p.Client.Ensure(ctx, "eng-new", socketapi.InstanceSpec{})
				return err
			},
			"ensure a stopped user": func(ctx context.Context) error {
				_, err := p.Client.Ensure(ctx, "eng-stopped", socketapi.InstanceSpec{})
				return err
			},
			"stop":    func(ctx context.Context) error { _, err := p.Client.Stop(ctx, "eng-b"); return err },
			"restart": func(ctx context.Context) error { _, err := p.Client.Restart(ctx, "eng-b"); return err },
			"remove":  func(ctx context.Context) error { return p.Client.Remove(ctx, "eng-c", false) },
		} {
			start := time.Now()
			err := call(ctx)
			took := time.Since(start)
			l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && apiErr.Code == socketapi.CodeRuntimeUnavailable,
				"%s while the engine is down: want 503 runtime_unavailable, got %v", what, err)
			l.checkT(t, took < 30*time.Second, "%s took %v", what, took)
		}
		// What needs no engine is served.
		list, err := p.Client.List(ctx, "")
		l.checkT(t, err == nil && len(list) == len(users), "list while down: %d %v", len(list), err)
		_, err = p.Client.Get(ctx, "eng-a")
		l.checkT(t, err == nil, "get while down: %v", err)
		_, err = p.Client.Touch(ctx, "eng-a")
		l.checkT(t, err == nil, "touch while down: %v", err)
		l.checkT(t, p.Running() && p.Pid() == agentPid, "the agent died with the engine")
		l.checkT(t, events.has(socketapi.EventRuntimeOut, ""), "no runtime.unavailable event: %v", events.types(""))
	})

	d.start(t)

	t.Run("once the engine is back", func(t *testing.T) {
		waitFor(t, 60*time.Second, "health ok again", func() (bool, string) {
			h, err := p.Client.Health(ctx)
			return err == nil && h.Status == socketapi.HealthOK && h.Runtime.Up, fmt.Sprintf("%+v %v", h, err)
		})
		l.checkT(t, p.Pid() == agentPid, "the agent was restarted")
		// Health asks the engine itself; the agent's runtime.up follows once
		// its event stream is back and its view resynced.
		upBy := time.Now().Add(30 * time.Second)
		for !events.has(socketapi.EventRuntimeUp, "") && time.Now().Before(upBy) {
			time.Sleep(50 * time.Millisecond)
		}
		l.checkT(t, events.has(socketapi.EventRuntimeUp, ""), "no runtime.up event within 30 s of health ok: %v", events.types(""))
		// The instances the engine's stop took down come back on their own,
		// on their ports; the one the agent stopped stays stopped.
		for _, u := range []string{"eng-a", "eng-b", "eng-c"} {
			in := ins[u]
			ok := true
			deadline := time.Now().Add(90 * time.Second)
			for {
				c := inspectOne(t, in.ContainerID)
				_, err := get(in.URL + "/health")
				if c.State.Running && err == nil {
					break
				}
				if time.Now().After(deadline) {
					ok = false
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			l.checkT(t, ok, "%s did not come back on its own after the engine restart", u)
		}
		c := inspectOne(t, ins["eng-stopped"].ContainerID)
		l.checkT(t, !c.State.Running, "eng-stopped, stopped by the agent, was started by the engine restart")
		// Resynced: the API's states are the engine's.
		waitFor(t, 30*time.Second, "API states resynced", func() (bool, string) {
			list, err := p.Client.List(ctx, "")
			if err != nil {
				return false, err.Error()
			}
			for _, in := range list {
				c := inspectOne(t, in.ContainerID)
				want := socketapi.StateStopped
				if c.State.Running {
					want = socketapi.StateRunning
				}
				if in.State != want {
					return false, fmt.Sprintf("%s: API %s, engine %s", in.UserID, in.State, c.State.Status)
				}
			}
			return true, ""
		})
		l.checkT(t, true, "resynced")
		// And everything works again.
		_, err := p.Client.Ensure(ctx, "eng-new", socketapi.InstanceSpec{})
		l.checkT(t, err == nil, "ensure a new user after the engine restart: %v", err)
		in, err := p.Client.Ensure(ctx, "eng-stopped", socketapi.InstanceSpec{})
		l.checkT(t, err == nil && in.Outcome == socketapi.OutcomeStarted, "ensure the stopped user: %+v %v", in, err)
	})
}
