//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// stateDir is the agent's state dir, the same path on the host and in the
// container: the agent asks the host's engine to bind-mount
// stateDir/instances/<userId>, so the path must mean the same on both sides.
const stateDir = "/var/lib/zaki-agent"

// ownerMark marks the host's stateDir as made by this test, so that a later
// run may clear what a killed run left behind, and nothing else.
const ownerMark = ".zaki-e2e-owned"

// maxExposure is the highest `systemd-analyze security` exposure allowed.
const maxExposure = 4.0

// TestInstall installs the .deb in a Debian 12 container that boots systemd
// and drives it the way an operator does (the README's Install section). Each step
// needs the ones before it, so the first failure ends the test.
func TestInstall(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	stub := testenv.EnsureStubImage(t)
	deb := debPath(t)
	image := bootImage(t)
	claimHostState(t)

	user := fmt.Sprintf("e2e-%d-%d", os.Getpid(), rand.IntN(1e6))
	network := testenv.UniqueName("zaki-e2e")
	portBase := 40000 + rand.IntN(90)*100
	instance := "zaki-user-" + user
	t.Cleanup(func() { removeInstances(t, user, network) })

	b := boot(t, image, deb,
		// The host's engine, as the agent's docker CLI finds it, and the
		// state dir at the path the engine mounts.
		"--network", "host",
		"-v", "/var/run/docker.sock:/run/docker.sock",
		"-v", stateDir+":"+stateDir)

	var startedAt string // the instance's start time, which must never change
	var cfg string       // the config the test writes
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"install", func(t *testing.T) {
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /e2e/"+filepath.Base(deb))
			assert.Equal(t, b.unitState(t, "zaki-agent.socket"), "active")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "inactive")
			assert.Equal(t, b.sh(t, "systemctl is-enabled zaki-agent.socket"), "enabled")
			assert.Equal(t, b.sh(t, "getent group zaki | cut -d: -f1"), "zaki")
			assert.Equal(t, b.sh(t, "stat -c '%A %U %G' /run/zaki-agent/agent.sock"), "srw-rw---- root zaki")
			assert.Equal(t, b.sh(t, "stat -c '%a %U %G' "+stateDir), "750 root root")
			assert.Equal(t, b.sh(t, "dpkg-query -W -f '${Conffiles}' zaki-agent | awk '{print $1}'"),
				"/etc/zaki-agent/config.toml")
		}},
		{"verify units", func(t *testing.T) {
			out := b.sh(t, "systemd-analyze verify /lib/systemd/system/zaki-agent.socket /lib/systemd/system/zaki-agent.service 2>&1")
			assert.Equal(t, out, "", "systemd-analyze verify")
		}},
		{"security exposure", func(t *testing.T) {
			out := b.sh(t, "systemd-analyze security --no-pager zaki-agent.service 2>&1")
			m := regexp.MustCompile(`Overall exposure level for zaki-agent\.service: ([0-9.]+)`).FindStringSubmatch(out)
			assert.Assert(t, m != nil, "no exposure level in:\n%s", out)
			level, err := strconv.ParseFloat(m[1], 64)
			assert.NilError(t, err)
			t.Logf("systemd-analyze security: exposure %.1f", level)
			assert.Check(t, level <= maxExposure, "exposure %.1f > %.1f:\n%s", level, maxExposure, out)
		}},
		{"configure", func(t *testing.T) {
			// What an operator edits: the image the host runs, and (for this
			// test only) a network, ports and pruning of its own, so that
			// nothing else on the shared engine is touched.
			cfg = fmt.Sprintf(`# written by the e2e test
[instance]
image = %q
allowedImages = ["zaki/gateway-stub:*"]
network = %q
portRange = "%d-%d"
healthCmd = ["/gateway-stub", "-probe"]

[prune]
intervalMinutes = 1440
idleHours = 87600
maxAgeDays = 3650
`, stub, network, portBase, portBase+99)
			b.write(t, "/etc/zaki-agent/config.toml", cfg)
		}},
		{"socket activation", func(t *testing.T) {
			b.sh(t, "zakictl health")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "active")
			assert.Equal(t, b.prop(t, "NRestarts"), "0")
			// The runtime plugin runs as the agent's child, in its unit.
			b.sh(t, "pgrep -x zaki-runtime-do")
		}},
		{"socket access", func(t *testing.T) {
			// A member of zaki may use the socket; anyone else may not.
			b.sh(t, "useradd --no-create-home --groups zaki e2e-operator")
			b.sh(t, "runuser -u e2e-operator -- zakictl health")
			res := b.run("runuser -u nobody -- zakictl health")
			assert.Check(t, res.ExitCode == 1, "nobody: zakictl health exit %d, want 1:\n%s", res.ExitCode, res.Combined())
		}},
		{"ensure", func(t *testing.T) {
			b.sh(t, "zakictl ensure "+user)
			assert.Equal(t, hostInspect(t, instance, "{{.State.Running}}"), "true")
			labels := hostInspect(t, instance, `{{index .Config.Labels "zaki.instance"}} {{index .Config.Labels "zaki.userId"}}`)
			assert.Equal(t, labels, "1 "+user)
			startedAt = hostInspect(t, instance, "{{.State.StartedAt}}")

			var inst struct {
				ContainerName string `json:"containerName"`
				State         string `json:"state"`
			}
			out := b.sh(t, "zakictl inspect "+user+" --json")
			assert.NilError(t, json.Unmarshal([]byte(out), &inst), out)
			assert.Check(t, is.Equal(inst.ContainerName, instance))
			assert.Check(t, is.Equal(inst.State, "running"))

			// The stand-in writes a file into its data dir when it starts:
			// the engine mounted the host's path that the agent meant.
			started := filepath.Join(stateDir, "instances", user, "gateway-stub.started")
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if _, err := os.Stat(started); err != nil {
					return poll.Continue("%v", err)
				}
				return poll.Success()
			}, poll.WithTimeout(10*time.Second), poll.WithDelay(100*time.Millisecond))
		}},
		{"reload", func(t *testing.T) {
			pid := b.prop(t, "MainPID")
			b.sh(t, "systemctl reload zaki-agent")
			b.sh(t, "zakictl health")
			assert.Equal(t, b.prop(t, "MainPID"), pid, "reload must not restart the agent")
		}},
		{"restart keeps the instance", func(t *testing.T) {
			pid := b.prop(t, "MainPID")
			b.sh(t, "systemctl restart zaki-agent")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "active")
			assert.Check(t, b.prop(t, "MainPID") != pid, "MainPID unchanged after restart")
			b.sh(t, "zakictl health")
			assertUntouched(t, instance, startedAt)
		}},
		{"stop keeps the instance", func(t *testing.T) {
			b.sh(t, "systemctl stop zaki-agent")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "inactive")
			assert.Equal(t, b.unitState(t, "zaki-agent.socket"), "active")
			// KillMode=mixed: the runtime plugin went with the agent.
			assert.Equal(t, b.run("pgrep -x zaki-runtime-do").ExitCode, 1, "plugin left running")
			assertUntouched(t, instance, startedAt)
			// The socket survived the stop: the next call starts the agent.
			b.sh(t, "zakictl health")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "active")
		}},
		{"upgrade keeps the instance and the config", func(t *testing.T) {
			// A reinstall runs the upgrade path of the maintainer scripts.
			pid := b.prop(t, "MainPID")
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall /e2e/"+filepath.Base(deb))
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "active")
			assert.Check(t, b.prop(t, "MainPID") != pid, "the agent was not restarted by the upgrade")
			b.sh(t, "grep -q 'written by the e2e test' /etc/zaki-agent/config.toml")
			b.sh(t, "zakictl health")
			assertUntouched(t, instance, startedAt)
		}},
		{"watchdog restarts a wedged agent", func(t *testing.T) {
			b.write(t, "/etc/systemd/system/zaki-agent.service.d/e2e-watchdog.conf",
				"[Service]\nWatchdogSec=6s\n")
			b.sh(t, "systemctl daemon-reload && systemctl restart zaki-agent")
			pid := b.prop(t, "MainPID")
			restarts, err := strconv.Atoi(b.prop(t, "NRestarts"))
			assert.NilError(t, err)

			b.sh(t, "systemctl kill -s SIGSTOP zaki-agent")
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				n, _ := strconv.Atoi(b.prop(t, "NRestarts"))
				state, now := b.prop(t, "ActiveState"), b.prop(t, "MainPID")
				if n > restarts && state == "active" && now != pid && now != "0" {
					return poll.Success()
				}
				return poll.Continue("NRestarts=%d ActiveState=%s MainPID=%s (was %s)", n, state, now, pid)
			}, poll.WithTimeout(90*time.Second), poll.WithDelay(500*time.Millisecond))
			// The watchdog did it, not a crash.
			assert.Check(t, b.sh(t, "journalctl --no-pager -u zaki-agent.service | grep -c 'Watchdog timeout'") != "0")
			b.sh(t, "zakictl health")
			assertUntouched(t, instance, startedAt)
			b.sh(t, "rm -r /etc/systemd/system/zaki-agent.service.d && systemctl daemon-reload")
		}},
		{"remove keeps the state", func(t *testing.T) {
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q zaki-agent")
			assert.Equal(t, b.sh(t, "dpkg-query -W -f '${db:Status-Abbrev}' zaki-agent"), "rc")
			assert.Equal(t, b.unitState(t, "zaki-agent.service"), "inactive")
			assert.Equal(t, b.run("test -e /run/zaki-agent/agent.sock").ExitCode, 1, "socket left behind")
			b.sh(t, "test -d "+filepath.Join(stateDir, "instances", user))
			b.sh(t, "test -f /etc/zaki-agent/config.toml")
			assertUntouched(t, instance, startedAt)
		}},
		{"purge keeps the users' data", func(t *testing.T) {
			out := b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q zaki-agent 2>&1")
			assert.Equal(t, b.run("dpkg-query -W zaki-agent").ExitCode, 1, "package still known to dpkg")
			assert.Equal(t, b.run("test -e /etc/zaki-agent").ExitCode, 1, "/etc/zaki-agent left behind")
			// The user's data, and the records that let a reinstall take
			// the instance back; only the lock goes.
			b.sh(t, "test -f "+filepath.Join(stateDir, "instances", user, "gateway-stub.started"))
			b.sh(t, "test -f "+stateDir+"/registry.json && test -f "+stateDir+"/hash.key")
			assert.Equal(t, b.run("test -e "+stateDir+"/agent.lock").ExitCode, 1, "agent.lock left behind")
			// It says where the data is and how to delete it.
			assert.Check(t, is.Contains(out, stateDir+"/instances/<userId>/   the data of 1 user(s)"))
			assert.Check(t, is.Contains(out, "rm -rf "+stateDir))
			assertUntouched(t, instance, startedAt)
		}},
		{"reinstall after purge takes the instance back", func(t *testing.T) {
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /e2e/"+filepath.Base(deb))
			b.write(t, "/etc/zaki-agent/config.toml", cfg)
			// The same hash key: the instance is kept as it is.
			assert.Check(t, is.Contains(b.sh(t, "zakictl ensure "+user), user+" reused "))
			assertUntouched(t, instance, startedAt)
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q zaki-agent")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.FailNow()
		}
	}
}

// podmanDropIn is where the README has the operator link the shipped
// drop-in for runtime = "podman".
const podmanDropIn = "/etc/systemd/system/zaki-agent.service.d/podman.conf"

// TestInstallPodman installs the .deb in a second systemd container, set to
// runtime = "podman" with the shipped drop-in linked in as the README says,
// and drives one instance through its life on the rootful podman inside
// that container. The container has a network namespace of its own (podman
// makes its bridge and iptables rules there, not on this host), NET_ADMIN
// for them, a writable /proc/sys (netavark sets the bridge's sysctls) and a
// volume for podman's storage (overlay cannot sit on the container's own
// overlay root).
func TestInstallPodman(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	stub := testenv.EnsureStubImage(t)
	deb := debPath(t)
	image := bootImage(t)

	b := boot(t, image, deb,
		"--cap-add", "NET_ADMIN", "--security-opt", "systempaths=unconfined",
		"-v", "/var/lib/containers")
	user := "e2e-podman"
	instance := "zaki-user-" + user
	var port, startedAt, conmon string
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"load the image", func(t *testing.T) {
			res := icmd.RunCmd(icmd.Command("bash", "-o", "pipefail", "-c",
				fmt.Sprintf("docker save %q | docker exec -i %q podman load -q", stub, b.name)))
			res.Assert(t, icmd.Success)
		}},
		{"install and configure", func(t *testing.T) {
			b.sh(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /e2e/"+filepath.Base(deb))
			b.write(t, "/etc/zaki-agent/config.toml", fmt.Sprintf(`# written by the e2e test
runtime = "podman"

[instance]
image = %q
allowedImages = ["zaki/gateway-stub:*"]
healthCmd = ["/gateway-stub", "-probe"]
`, stub))
			// The README's step, word for word.
			b.sh(t, "mkdir -p "+filepath.Dir(podmanDropIn)+
				" && ln -s /usr/share/zaki-agent/podman.conf "+podmanDropIn+
				" && systemctl daemon-reload")
			out := b.sh(t, "systemd-analyze verify /lib/systemd/system/zaki-agent.service 2>&1")
			assert.Equal(t, out, "", "systemd-analyze verify")
			assert.Equal(t, b.prop(t, "NoNewPrivileges"), "no", "the drop-in is not in effect")
		}},
		{"ensure", func(t *testing.T) {
			b.sh(t, "zakictl ensure "+user)
			var inst struct {
				State string `json:"state"`
				Port  int    `json:"port"`
			}
			out := b.sh(t, "zakictl inspect "+user+" --json")
			assert.NilError(t, json.Unmarshal([]byte(out), &inst), out)
			assert.Equal(t, inst.State, "running")
			port = strconv.Itoa(inst.Port)
			assert.Equal(t, b.sh(t, "podman inspect -f '{{.State.Running}} {{index .Config.Labels \"zaki.userId\"}}' "+instance), "true "+user)
			b.sh(t, "test -f "+filepath.Join(stateDir, "instances", user, "gateway-stub.started"))
			startedAt = b.sh(t, "podman inspect -f '{{.State.StartedAt}}' "+instance)
			conmon = b.sh(t, "podman inspect -f '{{.State.ConmonPid}}' "+instance)
		}},
		{"it answers", func(t *testing.T) {
			out := b.sh(t, `exec 3<>/dev/tcp/127.0.0.1/`+port+` && printf 'GET /health HTTP/1.0\r\n\r\n' >&3 && cat <&3`)
			assert.Check(t, is.Contains(out, "200 OK"))
		}},
		{"stop keeps the instance", func(t *testing.T) {
			// Each container's conmon lives in a scope of its own, not in
			// the agent's unit, so stopping the agent kills neither.
			b.sh(t, "systemctl stop zaki-agent")
			assert.Equal(t, b.sh(t, "podman inspect -f '{{.State.Running}} {{.State.StartedAt}}' "+instance), "true "+startedAt)
			b.sh(t, "kill -0 "+conmon)
			b.sh(t, "zakictl health")
		}},
		{"stop and remove", func(t *testing.T) {
			b.sh(t, "zakictl stop "+user)
			assert.Equal(t, b.sh(t, "podman inspect -f '{{.State.Running}}' "+instance), "false")
			b.sh(t, "zakictl rm "+user)
			assert.Equal(t, b.run("podman container exists "+instance).ExitCode, 1, "container left behind")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.FailNow()
		}
	}
}

// box is the systemd container.
type box struct{ name string }

// boot starts the systemd container, with deb's directory at /e2e and the
// docker run options args, and waits for it to finish booting.
func boot(t *testing.T, image, deb string, args ...string) *box {
	t.Helper()
	b := &box{name: testenv.UniqueName("zaki-e2e-systemd")}
	run := []string{"run", "-d", "--name", b.name,
		"--cap-add", "SYS_ADMIN", "--cap-add", "SYS_NICE", "--security-opt", "seccomp=unconfined",
		"--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"--tmpfs", "/run", "--tmpfs", "/run/lock",
		"-v", filepath.Dir(deb) + ":/e2e:ro"}
	res := icmd.RunCommand("docker", append(append(run, args...), image)...)
	res.Assert(t, icmd.Success)
	t.Cleanup(func() {
		if t.Failed() {
			// The last lines, less the goroutine dumps of a SIGABRT.
			t.Logf("journal of the zaki-agent units:\n%s",
				b.run(`journalctl --no-pager -u zaki-agent.socket -u zaki-agent.service |
					grep -v -E '\]: ([[:space:]]|goroutine |[^ ]+\(.*\)$)' | tail -n 80`).Combined())
		}
		icmd.RunCommand("docker", "rm", "-f", "-v", b.name)
	})
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		res := b.run("systemctl is-system-running")
		switch state := strings.TrimSpace(res.Stdout()); state {
		case "running":
			return poll.Success()
		case "degraded":
			return poll.Error(fmt.Errorf("boot degraded: %s", b.run("systemctl --failed --no-legend").Combined()))
		default:
			return poll.Continue("system state %q %s", state, res.Stderr())
		}
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(200*time.Millisecond))
	return b
}

// run runs a bash script in the container.
func (b *box) run(script string) *icmd.Result {
	return icmd.RunCommand("docker", "exec", b.name, "bash", "-o", "pipefail", "-c", script)
}

// sh runs a bash script in the container, fails t unless it exits 0, and
// returns its trimmed standard output.
func (b *box) sh(t *testing.T, script string) string {
	t.Helper()
	res := b.run(script)
	assert.Assert(t, res.ExitCode == 0, "in the container: %s: exit %d\n%s", script, res.ExitCode, res.Combined())
	return strings.TrimSpace(res.Stdout())
}

// write writes a file in the container (its directory made as needed).
func (b *box) write(t *testing.T, path, content string) {
	t.Helper()
	res := icmd.RunCmd(icmd.Command("docker", "exec", "-i", b.name, "sh", "-c",
		fmt.Sprintf("mkdir -p %q && cat > %q", filepath.Dir(path), path)),
		icmd.WithStdin(strings.NewReader(content)))
	res.Assert(t, icmd.Success)
}

// unitState is a unit's ActiveState.
func (b *box) unitState(t *testing.T, unit string) string {
	t.Helper()
	return b.sh(t, "systemctl show -P ActiveState "+unit)
}

// prop is a property of zaki-agent.service.
func (b *box) prop(t *testing.T, name string) string {
	t.Helper()
	return b.sh(t, "systemctl show -P "+name+" zaki-agent.service")
}

// hostInspect asks the host's engine about a container.
func hostInspect(t *testing.T, name, format string) string {
	t.Helper()
	return testenv.Docker(t, "inspect", "--format", format, name)
}

// assertUntouched checks that the instance runs and was not restarted.
func assertUntouched(t *testing.T, instance, startedAt string) {
	t.Helper()
	got := hostInspect(t, instance, "{{.State.Running}} {{.State.StartedAt}}")
	assert.Equal(t, got, "true "+startedAt, "instance %s was stopped or restarted", instance)
}

// debPath is the .deb under test: $ZAKI_E2E_DEB, or the one in dist/.
func debPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ZAKI_E2E_DEB"); p != "" {
		abs, err := filepath.Abs(p)
		assert.NilError(t, err)
		return abs
	}
	m, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "dist", "zaki-agent_*.deb"))
	assert.NilError(t, err)
	assert.Assert(t, len(m) == 1, "want one dist/zaki-agent_*.deb (run make packages), have %v", m)
	return m[0]
}

// bootImage is $ZAKI_E2E_IMAGE, or the image e2e/image.sh builds or finds.
func bootImage(t *testing.T) string {
	t.Helper()
	if img := os.Getenv("ZAKI_E2E_IMAGE"); img != "" {
		return img
	}
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "e2e", "image.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	assert.NilError(t, err, "e2e/image.sh")
	return strings.TrimSpace(string(out))
}

// claimHostState makes sure the host's stateDir is this test's to use (the
// package's scripts write and delete there): it must be absent, empty, or
// left by an earlier run of this test. Whatever the test made there is
// removed at the end.
func claimHostState(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(stateDir)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		t.Fatal(err)
	case len(entries) > 0:
		_, err := os.Stat(filepath.Join(stateDir, ownerMark))
		assert.Assert(t, err == nil,
			"%s on this host holds files that this test did not make; the test would delete them: move them away first", stateDir)
		t.Logf("clearing %s, left by an earlier e2e run", stateDir)
		assert.NilError(t, os.RemoveAll(stateDir))
	}
	assert.NilError(t, os.MkdirAll(stateDir, 0o750))
	assert.NilError(t, os.WriteFile(filepath.Join(stateDir, ownerMark), nil, 0o600))
	t.Cleanup(func() {
		if err := os.RemoveAll(stateDir); err != nil {
			t.Errorf("clean up %s: %v", stateDir, err)
		}
	})
}

// removeInstances removes, on the host's engine, the containers of this
// test's user (and no one else's) and the test's network.
func removeInstances(t *testing.T, user, network string) {
	out := icmd.RunCommand("docker", "ps", "-aq",
		"--filter", "label=zaki.instance=1", "--filter", "label=zaki.userId="+user).Stdout()
	if ids := strings.Fields(out); len(ids) > 0 {
		if res := icmd.RunCommand("docker", append([]string{"rm", "-f", "-v"}, ids...)...); res.ExitCode != 0 {
			t.Errorf("remove the instance of %s: %s", user, res.Combined())
		}
	}
	if icmd.RunCommand("docker", "network", "inspect", network).ExitCode == 0 {
		if res := icmd.RunCommand("docker", "network", "rm", network); res.ExitCode != 0 {
			t.Errorf("remove network %s: %s", network, res.Combined())
		}
	}
}
