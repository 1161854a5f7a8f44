package faults

// CIS Docker Benchmark v1.6.0, section 5 "Container Runtime
// Configuration": one subtest per item, each reading the item back from
// `docker inspect` of an instance the agent made with its defaults (and,
// where the kernel can say it better, from /proc of the container's
// processes). Items that cannot apply on this host log the reason, after
// checking what grounds it, and are counted as not applicable (a column of
// the table), never passed silently.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The agent's defaults that the items are held to (agent.DefaultConfig).
const (
	defaultMemory    = 2 << 30
	defaultNanoCPUs  = 2e9
	defaultCPUShares = 512
	defaultPids      = 100
	containerPort    = "18789/tcp"
)

func TestCISSection5(t *testing.T) {
	l := newLedger(t, "CIS Docker 1.6 section 5")
	shim := dockerShim(t)
	p := testenv.StartAgent(t, testenv.AgentOptions{Env: shimEnv(shim)})
	ctx := context.Background()
	in, err := p.Client.Ensure(ctx, "cis", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	c := inspectOne(t, in.ContainerID)
	assert.Assert(t, c.State.Running, "instance not running")
	procs := append([]int{c.State.Pid}, descendants(c.State.Pid)...)
	assert.Assert(t, len(procs) >= 2, "want the init and the gateway process, got %v", procs)
	h, err := p.Client.Health(ctx)
	assert.NilError(t, err)
	var engineOpts []string
	if h.Runtime.Engine != nil {
		engineOpts = h.Runtime.Engine.SecurityOptions
	}
	status := func(t *testing.T, pid int) map[string]string {
		t.Helper()
		st, err := procStatus(pid)
		assert.NilError(t, err)
		return st
	}
	check := func(t *testing.T, ok bool, format string, args ...any) {
		t.Helper()
		l.checkT(t, ok, format, args...)
	}
	notApplicable := func(t *testing.T, why string) {
		t.Helper()
		l.na()
		t.Log("not applicable: " + why)
	}

	t.Run("5.1 AppArmor profile where the host has AppArmor", func(t *testing.T) {
		enabled, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		if strings.TrimSpace(string(enabled)) != "Y" {
			// Grounded, not silent: the kernel has no AppArmor, so the engine
			// cannot have confined the container with it.
			check(t, !slices.ContainsFunc(engineOpts, func(s string) bool { return strings.Contains(s, "apparmor") }),
				"engine reports apparmor %v but /sys/module/apparmor says it is off", engineOpts)
			notApplicable(t, "the host kernel has no AppArmor (/sys/module/apparmor/parameters/enabled is not Y)")
			return
		}
		check(t, c.AppArmorProfile != "" && c.AppArmorProfile != "unconfined", "AppArmorProfile = %q", c.AppArmorProfile)
		for _, pid := range procs {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/attr/current", pid))
			cur := strings.TrimSpace(string(b))
			check(t, err == nil && cur != "" && !strings.HasPrefix(cur, "unconfined"), "pid %d AppArmor context %q (%v)", pid, cur, err)
		}
	})

	t.Run("5.2 SELinux options where the engine uses SELinux", func(t *testing.T) {
		if !slices.ContainsFunc(engineOpts, func(s string) bool { return strings.Contains(s, "selinux") }) {
			notApplicable(t, fmt.Sprintf("the engine does not enforce SELinux (security options %v)", engineOpts))
			return
		}
		for _, pid := range procs {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/attr/current", pid))
			check(t, strings.Contains(string(b), "container_t") || strings.Contains(string(b), "svirt"), "pid %d SELinux context %q", pid, b)
		}
	})

	t.Run("5.3 capabilities dropped, none added", func(t *testing.T) {
		check(t, len(c.HostConfig.CapAdd) == 0, "CapAdd = %v", c.HostConfig.CapAdd)
		check(t, slices.ContainsFunc(c.HostConfig.CapDrop, func(s string) bool { return strings.EqualFold(s, "ALL") }), "CapDrop = %v, want ALL", c.HostConfig.CapDrop)
		for _, pid := range procs {
			st := status(t, pid)
			for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				check(t, strings.Trim(st[k], "0") == "", "pid %d %s = %s", pid, k, st[k])
			}
		}
	})

	t.Run("5.4 not privileged", func(t *testing.T) {
		check(t, !c.HostConfig.Privileged, "Privileged = true")
	})

	t.Run("5.5 no sensitive host paths, only the user's data dir", func(t *testing.T) {
		dataDir := filepath.Join(p.StateDir, "instances", "cis")
		sensitive := []string{"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var", "/run", "/var/run", "/root", "/home"}
		binds := 0
		for _, m := range c.Mounts {
			check(t, !slices.Contains(sensitive, filepath.Clean(m.Source)), "host path %s mounted at %s", m.Source, m.Destination)
			if m.Type == "bind" {
				binds++
				check(t, m.Source == dataDir && m.Destination == "/home/node/.openclaw", "bind mount %s -> %s, want only %s", m.Source, m.Destination, dataDir)
			}
		}
		check(t, binds == 1, "%d bind mounts, want 1 (the data dir)", binds)
		check(t, len(c.HostConfig.Binds) <= 1, "Binds = %v", c.HostConfig.Binds)
		for dst := range c.HostConfig.Tmpfs {
			check(t, dst == "/tmp", "tmpfs at %s", dst)
		}
	})

	t.Run("5.6 no sshd", func(t *testing.T) {
		top := testenv.Docker(t, "top", c.ID)
		check(t, !strings.Contains(top, "sshd"), "sshd runs:\n%s", top)
		_, exposed := c.Config.ExposedPorts["22/tcp"]
		check(t, !exposed, "port 22 exposed")
		for _, pid := range procs {
			_, comm := procPPID(pid)
			check(t, comm != "sshd", "pid %d is sshd", pid)
		}
	})

	t.Run("5.7 no privileged host ports", func(t *testing.T) {
		for port, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				var n int
				fmt.Sscan(b.HostPort, &n)
				check(t, n >= 1025, "%s published on host port %q", port, b.HostPort)
			}
		}
	})

	t.Run("5.8 only the gateway port is open", func(t *testing.T) {
		check(t, !c.HostConfig.PublishAllPorts, "PublishAllPorts = true")
		for port := range c.HostConfig.PortBindings {
			check(t, port == containerPort, "port %s published", port)
		}
		check(t, len(c.HostConfig.PortBindings) == 1, "PortBindings = %v", c.HostConfig.PortBindings)
	})

	hostNS := func(kind string) string { s, _ := os.Readlink("/proc/self/ns/" + kind); return s }
	containerNS := func(kind string) string {
		s, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c.State.Pid, kind))
		return s
	}

	t.Run("5.9 host network namespace not shared", func(t *testing.T) {
		check(t, c.HostConfig.NetworkMode != "host", "NetworkMode = host")
		check(t, containerNS("net") != hostNS("net"), "container in the host's network namespace %s", hostNS("net"))
	})

	t.Run("5.10 memory limited", func(t *testing.T) {
		check(t, c.HostConfig.Memory == defaultMemory, "Memory = %d, want %d", c.HostConfig.Memory, defaultMemory)
		check(t, c.HostConfig.MemorySwap == c.HostConfig.Memory, "MemorySwap = %d, want %d (no swap)", c.HostConfig.MemorySwap, c.HostConfig.Memory)
	})

	t.Run("5.11 CPU priority set", func(t *testing.T) {
		check(t, c.HostConfig.CPUShares == defaultCPUShares, "CpuShares = %d, want %d", c.HostConfig.CPUShares, defaultCPUShares)
		check(t, c.HostConfig.NanoCpus == defaultNanoCPUs, "NanoCpus = %d, want %d", c.HostConfig.NanoCpus, int64(defaultNanoCPUs))
	})

	t.Run("5.12 root filesystem read-only", func(t *testing.T) {
		check(t, c.HostConfig.ReadonlyRootfs, "ReadonlyRootfs = false")
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.State.Pid))
		assert.NilError(t, err)
		rootRO := false
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[4] == "/" {
				rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
			}
		}
		check(t, rootRO, "the container's / is not mounted ro")
	})

	t.Run("5.13 incoming traffic bound to 127.0.0.1", func(t *testing.T) {
		for port, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				check(t, b.HostIP == "127.0.0.1", "%s bound to %q", port, b.HostIP)
			}
		}
		for port, bs := range c.HostConfig.PortBindings {
			for _, b := range bs {
				check(t, b.HostIP == "127.0.0.1", "%s binding asks for %q", port, b.HostIP)
			}
		}
	})

	t.Run("5.14 restart on-failure, at most 5 times", func(t *testing.T) {
		rp := c.HostConfig.RestartPolicy
		check(t, rp.Name == "on-failure" && rp.MaximumRetryCount > 0 && rp.MaximumRetryCount <= 5, "RestartPolicy = %+v", rp)
	})

	t.Run("5.15 host PID namespace not shared", func(t *testing.T) {
		check(t, c.HostConfig.PidMode == "", "PidMode = %q", c.HostConfig.PidMode)
		check(t, containerNS("pid") != hostNS("pid"), "container in the host's PID namespace")
	})

	t.Run("5.16 host IPC namespace not shared", func(t *testing.T) {
		check(t, c.HostConfig.IpcMode != "host" && !strings.HasPrefix(c.HostConfig.IpcMode, "container:"), "IpcMode = %q", c.HostConfig.IpcMode)
		check(t, containerNS("ipc") != hostNS("ipc"), "container in the host's IPC namespace")
	})

	t.Run("5.17 no host devices", func(t *testing.T) {
		check(t, len(c.HostConfig.Devices) == 0, "Devices = %v", c.HostConfig.Devices)
		check(t, len(c.HostConfig.DeviceCgroupRules) == 0, "DeviceCgroupRules = %v", c.HostConfig.DeviceCgroupRules)
	})

	t.Run("5.18 ulimits set", func(t *testing.T) {
		// nofile as configured; no nproc, which would be one limit for every
		// tenant together (see TestTenantIsolation's fork bombs).
		want := map[string][2]int64{"nofile": {1024, 2048}}
		got := map[string][2]int64{}
		for _, u := range c.HostConfig.Ulimits {
			got[u.Name] = [2]int64{u.Soft, u.Hard}
		}
		for name, w := range want {
			check(t, got[name] == w, "ulimit %s = %v, want %v", name, got[name], w)
		}
		_, nproc := got["nproc"]
		check(t, !nproc, "ulimit nproc = %v: a per-uid limit all tenants share", got["nproc"])
	})

	t.Run("5.19 no shared mount propagation", func(t *testing.T) {
		for _, m := range c.Mounts {
			check(t, m.Propagation != "shared" && m.Propagation != "rshared", "mount %s propagation %s", m.Destination, m.Propagation)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.State.Pid))
		assert.NilError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 6 && f[4] == "/home/node/.openclaw" {
				check(t, !strings.Contains(line, " shared:"), "data mount is shared: %s", line)
			}
		}
	})

	t.Run("5.20 host UTS namespace not shared", func(t *testing.T) {
		check(t, c.HostConfig.UTSMode == "", "UTSMode = %q", c.HostConfig.UTSMode)
		check(t, containerNS("uts") != hostNS("uts"), "container in the host's UTS namespace")
	})

	t.Run("5.21 default seccomp profile not disabled", func(t *testing.T) {
		for _, o := range c.HostConfig.SecurityOpt {
			check(t, !strings.Contains(o, "unconfined"), "SecurityOpt %q", o)
		}
		for _, pid := range procs {
			check(t, status(t, pid)["Seccomp"] == "2", "pid %d Seccomp = %q, want 2 (filter)", pid, status(t, pid)["Seccomp"])
		}
	})

	t.Run("5.24 cgroup usage confirmed", func(t *testing.T) {
		check(t, c.HostConfig.CgroupParent == "", "CgroupParent = %q, want the engine's default", c.HostConfig.CgroupParent)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.State.Pid))
		assert.NilError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && (strings.Contains(f[1], "memory") || strings.Contains(f[1], "pids")) {
				check(t, strings.Contains(f[2], c.ID), "%s cgroup %s is not the container's own", f[1], f[2])
			}
		}
	})

	t.Run("5.25 no new privileges", func(t *testing.T) {
		check(t, slices.ContainsFunc(c.HostConfig.SecurityOpt, func(s string) bool {
			return s == "no-new-privileges" || s == "no-new-privileges:true" || s == "no-new-privileges=true"
		}), "SecurityOpt = %v", c.HostConfig.SecurityOpt)
		for _, pid := range procs {
			check(t, status(t, pid)["NoNewPrivs"] == "1", "pid %d NoNewPrivs = %q", pid, status(t, pid)["NoNewPrivs"])
		}
	})

	t.Run("5.26 health checked at runtime", func(t *testing.T) {
		hc := c.Config.Healthcheck
		check(t, hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE", "Healthcheck = %+v", hc)
		waitFor(t, 60*time.Second, "instance healthy", func() (bool, string) {
			h := inspectOne(t, c.ID).State.Health
			if h == nil {
				return false, "no health state"
			}
			return h.Status == "healthy", h.Status
		})
		check(t, true, "healthy")
	})

	t.Run("5.27 the image is the current version of its reference", func(t *testing.T) {
		img := testenv.Docker(t, "image", "inspect", "-f", "{{.Id}}", c.Config.Image)
		got := testenv.Docker(t, "inspect", "-f", "{{.Image}}", c.ID)
		check(t, img == got, "container runs image %s, %s is now %s", got, c.Config.Image, img)
	})

	t.Run("5.28 PIDs limit", func(t *testing.T) {
		var got int64
		if c.HostConfig.PidsLimit != nil {
			got = *c.HostConfig.PidsLimit
		}
		check(t, got == defaultPids, "PidsLimit = %d, want %d", got, defaultPids)
	})

	t.Run("5.29 not on docker0", func(t *testing.T) {
		check(t, c.HostConfig.NetworkMode == p.Network, "NetworkMode = %q, want %q", c.HostConfig.NetworkMode, p.Network)
		for name := range c.NetworkSettings.Networks {
			check(t, name == p.Network, "on network %s", name)
		}
		br := testenv.Docker(t, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, p.Network)
		check(t, br != "docker0", "the instance network's bridge is docker0")
		icc := testenv.Docker(t, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.enable_icc"}}`, p.Network)
		check(t, icc == "false", "enable_icc = %q on %s", icc, p.Network)
	})

	t.Run("5.30 host user namespace not shared", func(t *testing.T) {
		check(t, c.HostConfig.UsernsMode != "host", "UsernsMode = host")
		check(t, c.Config.User != "" && !strings.HasPrefix(c.Config.User, "0") && c.Config.User != "root", "User = %q", c.Config.User)
		for _, pid := range procs {
			uid := strings.Fields(status(t, pid)["Uid"])
			check(t, len(uid) == 4 && uid[0] != "0" && uid[1] != "0", "pid %d runs as uid %v", pid, uid)
		}
	})

	t.Run("5.31 docker socket not mounted", func(t *testing.T) {
		for _, m := range c.Mounts {
			check(t, !strings.Contains(m.Source, "docker.sock") && !strings.Contains(m.Destination, "docker.sock"), "mount %s -> %s", m.Source, m.Destination)
		}
		for _, s := range []string{"/var/run/docker.sock", "/run/docker.sock"} {
			_, err := os.Lstat(fmt.Sprintf("/proc/%d/root%s", c.State.Pid, s))
			check(t, os.IsNotExist(err), "%s visible in the container (%v)", s, err)
		}
	})

	// 5.22 and 5.23 are about `docker exec`: the agent must never run it,
	// privileged or as root. The shim on the agent's PATH saw every docker
	// command it ran during this test.
	t.Run("5.22 5.23 no docker exec at all", func(t *testing.T) {
		calls := shimCalls(shim)
		check(t, len(calls) > 0, "the docker shim saw no call: the test would prove nothing")
		check(t, !slices.Contains(calls, "exec"), "the agent ran docker exec: %v", calls)
	})
}
