package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/docker"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// rawInspect is `docker inspect` parsed by the test itself, independent of
// the plugin's parser.
type rawInspect struct {
	Name   string
	Config struct {
		Image       string
		Cmd         []string
		Env         []string
		Labels      map[string]string
		User        string
		StopTimeout *int
		Healthcheck *struct {
			Test                           []string
			Interval, Timeout, StartPeriod int64
			Retries                        int
		}
	}
	HostConfig struct {
		NanoCpus, CpuShares, Memory, MemorySwap int64
		PidsLimit                               *int64
		Ulimits                                 []struct {
			Name       string
			Soft, Hard int64
		}
		ReadonlyRootfs  bool
		Tmpfs           map[string]string
		CapDrop, CapAdd []string
		SecurityOpt     []string
		RestartPolicy   struct {
			Name              string
			MaximumRetryCount int
		}
		NetworkMode  string
		PortBindings map[string][]struct{ HostIp, HostPort string }
		Mounts       []struct {
			Type, Source, Target string
			ReadOnly             bool
		}
		Init *bool
	}
}

func inspectRaw(t *testing.T, ref string) rawInspect {
	t.Helper()
	var raws []rawInspect
	assert.NilError(t, json.Unmarshal([]byte(testenv.Docker(t, "inspect", "--type=container", ref)), &raws))
	assert.Equal(t, len(raws), 1)
	return raws[0]
}

// secretEnv holds values an env file could mangle, and one of the longest
// line an env file can hold.
var secretEnv = map[string]string{
	"LONG":    strings.Repeat("x", runtime.MaxEnvLine-len("LONG=")),
	"PLAIN":   "s3cr3t-plain",
	"SPACES":  "  lead and trail  ",
	"EQUALS":  "a=b=c",
	"HASH":    "#not a comment",
	"QUOTES":  `'single' "double"`,
	"DOLLAR":  "$HOME ${X} $(id)",
	"UNICODE": "ünïcødé ✓",
	"EMPTY":   "",
	"lower.k": "dotted-key",
}

// TestCreateFullSpecReadBack creates a container with every field of
// ContainerSpec set through the runtime, then reads it back with a raw
// `docker inspect` and checks each field.
func TestCreateFullSpecReadBack(t *testing.T) {
	t.Parallel()
	prefix := engine(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	image := healthImage(t, prefix)
	d := docker.New(docker.Config{})

	netName := prefix + "-net"
	t.Cleanup(func() { assert.Check(t, d.RemoveNetwork(context.Background(), netName)) })
	assert.NilError(t, d.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName, DisableICC: true, Labels: map[string]string{"zaki.test": prefix}}))
	assert.NilError(t, d.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName, DisableICC: true}), "ensure twice")
	var nets []struct {
		Options map[string]string
		Labels  map[string]string
		Driver  string
	}
	assert.NilError(t, json.Unmarshal([]byte(testenv.Docker(t, "network", "inspect", netName)), &nets))
	assert.Equal(t, nets[0].Options["com.docker.network.bridge.enable_icc"], "false")
	assert.Equal(t, nets[0].Labels["zaki.test"], prefix)
	assert.Equal(t, nets[0].Driver, "bridge")

	dataDir := t.TempDir()
	tcpPort, udpPort := freePort(t, "tcp"), freePort(t, "udp")
	seccomp := filepath.Join(t.TempDir(), "seccomp.json")
	assert.NilError(t, os.WriteFile(seccomp, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [{\"names\": [\"ptrace\"], \"action\": \"SCMP_ACT_ERRNO\"}]\n}\n"), 0o644))
	spec := runtime.ContainerSpec{
		Name:   prefix + "-full",
		Image:  image,
		Cmd:    []string{"-addr", ":18789", "-data", "/home/node/.openclaw", "--", "-rm"},
		Env:    secretEnv,
		Labels: map[string]string{"ztest.instance": "1", "ztest.userId": "u1", "zaki.test": prefix, "tricky": "--privileged -v /:/host"},
		User:   "1000:1000",
		Init:   true,
		Resources: runtime.Resources{
			CPUs: 0.5, CPUShares: 512, Memory: "256m", MemorySwap: "512m", PidsLimit: 100,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}, {Path: "/run"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
			SeccompProfile:  seccomp,
			ApparmorProfile: "docker-default",
		},
		Restart: runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network: netName,
		Ports: []runtime.PortBinding{
			{HostIP: "127.0.0.1", HostPort: tcpPort, ContainerPort: 18789},
			{HostIP: "127.0.0.1", HostPort: udpPort, ContainerPort: 9000, Protocol: "udp"},
		},
		Mounts: []runtime.Mount{
			{Source: dataDir, Target: "/home/node/.openclaw"},
			{Source: "/etc/ssl", Target: "/etc/ssl", ReadOnly: true},
		},
		Healthcheck: &runtime.Healthcheck{
			Test:     []string{"/gateway-stub", "-probe"},
			Interval: 2 * time.Second, Timeout: 3 * time.Second, StartPeriod: 4 * time.Second, Retries: 5,
		},
		StopTimeout: 7 * time.Second,
	}
	t.Cleanup(func() {
		assert.Check(t, d.Remove(context.Background(), []string{spec.Name}, runtime.RemoveOptions{Force: true}))
	})
	id, err := d.Create(ctx, spec)
	assert.NilError(t, err)

	raw := inspectRaw(t, id)
	c, h := raw.Config, raw.HostConfig
	assert.Equal(t, raw.Name, "/"+spec.Name)
	assert.Equal(t, c.Image, image)
	assert.DeepEqual(t, c.Cmd, spec.Cmd)
	for k, v := range secretEnv {
		assert.Check(t, is.Contains(c.Env, k+"="+v), "env %s reached the container unchanged", k)
	}
	for k, v := range spec.Labels {
		assert.Check(t, is.Equal(c.Labels[k], v), "label %s", k)
	}
	assert.Equal(t, c.User, "1000:1000")
	assert.Assert(t, h.Init != nil && *h.Init)
	assert.Equal(t, h.NanoCpus, int64(500_000_000))
	assert.Equal(t, h.CpuShares, int64(512))
	assert.Equal(t, h.Memory, int64(256<<20))
	assert.Equal(t, h.MemorySwap, int64(512<<20))
	assert.Assert(t, h.PidsLimit != nil && *h.PidsLimit == 100)
	var ulimits []string
	for _, u := range h.Ulimits {
		ulimits = append(ulimits, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	sort.Strings(ulimits)
	assert.DeepEqual(t, ulimits, []string{"nofile=1024:2048", "nproc=512:1024"})
	assert.Assert(t, h.ReadonlyRootfs)
	assert.DeepEqual(t, h.Tmpfs, map[string]string{"/tmp": "size=64m", "/run": ""})
	assert.DeepEqual(t, h.CapDrop, []string{"ALL"})
	assert.Assert(t, slices.Equal(h.CapAdd, []string{"NET_BIND_SERVICE"}) || slices.Equal(h.CapAdd, []string{"CAP_NET_BIND_SERVICE"}), "%q", h.CapAdd)
	assert.Check(t, is.Contains(h.SecurityOpt, "no-new-privileges"))
	assert.Check(t, is.Contains(h.SecurityOpt, "apparmor=docker-default"))
	assert.Check(t, is.Contains(h.SecurityOpt, `seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}`))
	assert.Equal(t, h.RestartPolicy.Name, "on-failure")
	assert.Equal(t, h.RestartPolicy.MaximumRetryCount, 5)
	assert.Equal(t, h.NetworkMode, netName)
	assert.Equal(t, len(h.PortBindings), 2)
	assert.Equal(t, h.PortBindings["18789/tcp"][0].HostIp, "127.0.0.1")
	assert.Equal(t, h.PortBindings["18789/tcp"][0].HostPort, strconv.Itoa(tcpPort))
	assert.Equal(t, h.PortBindings["9000/udp"][0].HostPort, strconv.Itoa(udpPort))
	assert.Equal(t, len(h.Mounts), 2)
	assert.Equal(t, h.Mounts[0].Type, "bind")
	assert.Equal(t, h.Mounts[0].Source, dataDir)
	assert.Equal(t, h.Mounts[0].Target, "/home/node/.openclaw")
	assert.Assert(t, !h.Mounts[0].ReadOnly)
	assert.Equal(t, h.Mounts[1].Source, "/etc/ssl")
	assert.Assert(t, h.Mounts[1].ReadOnly)
	assert.Assert(t, c.Healthcheck != nil)
	assert.DeepEqual(t, c.Healthcheck.Test, []string{"CMD", "/gateway-stub", "-probe"}) // exec form
	assert.Equal(t, time.Duration(c.Healthcheck.Interval), 2*time.Second)
	assert.Equal(t, time.Duration(c.Healthcheck.Timeout), 3*time.Second)
	assert.Equal(t, time.Duration(c.Healthcheck.StartPeriod), 4*time.Second)
	assert.Equal(t, c.Healthcheck.Retries, 5)
	assert.Assert(t, c.StopTimeout != nil && *c.StopTimeout == 7)

	// The runtime's own read-back agrees, in ContainerSpec's terms.
	got, err := d.Inspect(ctx, spec.Name)
	assert.NilError(t, err)
	assert.Equal(t, got.ID, id)
	assert.Equal(t, got.State, runtime.StateCreated)
	want := spec
	want.Env = nil
	want.Resources.Memory, want.Resources.MemorySwap = "268435456", "536870912"
	want.Security.Tmpfs = []runtime.Tmpfs{{Path: "/run"}, {Path: "/tmp", Options: "size=64m"}}
	want.Security.SeccompProfile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}`
	want.Ports = []runtime.PortBinding{
		{HostIP: "127.0.0.1", HostPort: udpPort, ContainerPort: 9000, Protocol: "udp"},
		{HostIP: "127.0.0.1", HostPort: tcpPort, ContainerPort: 18789, Protocol: "tcp"},
	}
	want.OCIRuntime = "runc" // none asked for: the engine's default
	assert.DeepEqual(t, got.Spec, want)

	// The same name again: already exists, the first container untouched.
	_, err = d.Create(ctx, runtime.ContainerSpec{Name: spec.Name, Image: testenv.StubImage})
	assert.Assert(t, errors.Is(err, runtime.ErrAlreadyExists), "got %v", err)
	assert.Equal(t, inspectRaw(t, spec.Name).Config.Image, image)
}

// TestCreateShellHealthcheck: a test that is not the image's own HEALTHCHECK
// goes through --health-cmd (shell form), reads back as the exec form it
// was given, and is stored as one `exec` line with each argument quoted.
func TestCreateShellHealthcheck(t *testing.T) {
	t.Parallel()
	prefix := engine(t)
	ctx := t.Context()
	d := docker.New(docker.Config{})
	spec := runtime.ContainerSpec{
		Name:  prefix + "-shellhc",
		Image: testenv.StubImage,
		// Every timing set: a zero one would take the image's HEALTHCHECK
		// value (the engine merges them), not read back as zero.
		Healthcheck: &runtime.Healthcheck{
			Test:     []string{"/gateway-stub", "-probe", "-addr", "127.0.0.1:18789", "it's"},
			Interval: 7 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Second, Retries: 2,
		},
	}
	t.Cleanup(func() {
		assert.Check(t, d.Remove(context.Background(), []string{spec.Name}, runtime.RemoveOptions{Force: true}))
	})
	_, err := d.Create(ctx, spec)
	assert.NilError(t, err)
	raw := inspectRaw(t, spec.Name)
	assert.DeepEqual(t, raw.Config.Healthcheck.Test, []string{"CMD-SHELL", `exec /gateway-stub -probe -addr 127.0.0.1:18789 'it'\''s'`})
	got, err := d.Inspect(ctx, spec.Name)
	assert.NilError(t, err)
	assert.DeepEqual(t, got.Spec.Healthcheck, spec.Healthcheck)

	// No healthcheck: none, even from an image that declares one.
	image := healthImage(t, prefix)
	none := runtime.ContainerSpec{Name: prefix + "-nohc", Image: image}
	t.Cleanup(func() {
		assert.Check(t, d.Remove(context.Background(), []string{none.Name}, runtime.RemoveOptions{Force: true}))
	})
	_, err = d.Create(ctx, none)
	assert.NilError(t, err)
	assert.DeepEqual(t, inspectRaw(t, none.Name).Config.Healthcheck.Test, []string{"NONE"})
	got, err = d.Inspect(ctx, none.Name)
	assert.NilError(t, err)
	assert.Assert(t, got.Spec.Healthcheck == nil)
}

// TestCreateNeverPulls: a missing image is ErrNotFound at once; the
// client is not let to try a registry.
func TestCreateNeverPulls(t *testing.T) {
	t.Parallel()
	prefix := engine(t)
	d := docker.New(docker.Config{})
	name := prefix + "-nopull"
	t.Cleanup(func() {
		assert.Check(t, d.Remove(context.Background(), []string{name}, runtime.RemoveOptions{Force: true}))
	})
	_, err := d.Create(t.Context(), runtime.ContainerSpec{Name: name, Image: "zaki/absent-" + strings.ToLower(prefix) + ":latest"})
	assert.Assert(t, errors.Is(err, runtime.ErrNotFound), "got %v", err)
	assert.Assert(t, !strings.Contains(err.Error(), "registry"), "%v", err)
}

// TestBatchOnEngine: one stop and one rm for several containers, missing
// ones included; a running container that rm without force cannot remove
// is reported by the reference given, the others are removed.
func TestBatchOnEngine(t *testing.T) {
	t.Parallel()
	prefix := engine(t)
	ctx := t.Context()
	d := docker.New(docker.Config{})
	a, b, missing := prefix+"-a", prefix+"-b", prefix+"-missing"
	t.Cleanup(func() {
		assert.Check(t, d.Remove(context.Background(), []string{a, b}, runtime.RemoveOptions{Force: true}))
	})
	for _, n := range []string{a, b} {
		_, err := d.Create(ctx, runtime.ContainerSpec{Name: n, Image: testenv.StubImage, Labels: map[string]string{"zaki.test": prefix}})
		assert.NilError(t, err)
	}
	assert.NilError(t, d.Start(ctx, a))
	assert.NilError(t, d.Start(ctx, a), "start a running container")

	err := d.Remove(ctx, []string{a, b, missing}, runtime.RemoveOptions{})
	var be *runtime.BatchError
	assert.Assert(t, errors.As(err, &be), "got %v", err)
	assert.Equal(t, len(be.Failed), 1, "%v", be.Failed)
	assert.Assert(t, be.Failed[a] != nil, "%v", be.Failed)
	_, err = d.Inspect(ctx, b)
	assert.Assert(t, errors.Is(err, runtime.ErrNotFound), "b removed: %v", err)

	assert.NilError(t, d.Stop(ctx, []string{a, missing, a}, time.Second))
	assert.NilError(t, d.Stop(ctx, []string{a}, time.Second), "stop a stopped container")
	c, err := d.Inspect(ctx, a)
	assert.NilError(t, err)
	assert.Equal(t, c.State, runtime.StateExited)
	assert.NilError(t, d.Remove(ctx, []string{a, missing}, runtime.RemoveOptions{}))
	list, err := d.List(ctx, runtime.ListOptions{Labels: map[string]string{"zaki.test": prefix}})
	assert.NilError(t, err)
	assert.Equal(t, len(list), 0)
}

// freePort returns a port free on 127.0.0.1 right now (the container is
// only created, never started, so nothing binds it).
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		assert.NilError(t, err)
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		assert.NilError(t, err)
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
}

// TestLogsRotate: a chatty container's json-file log rotates at
// Log.MaxSize and keeps Log.MaxFiles files, on the real engine, and Logs
// still reads it.
func TestLogsRotate(t *testing.T) {
	t.Parallel()
	prefix := engine(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	d := docker.New(docker.Config{})
	name := prefix + "-chatty"
	t.Cleanup(func() { dockerTry("rm", "-f", name) })
	const maxSize = 1 << 20
	// The stand-in writes 6 MB on stdout and as much on stderr, then exits.
	id, err := d.Create(ctx, runtime.ContainerSpec{
		Name: name, Image: testenv.StubImage, Cmd: []string{"-exec", "spam", "6000000"},
		Labels: map[string]string{"zaki.test": prefix},
		Log:    runtime.LogConfig{MaxSize: "1m", MaxFiles: 3},
	})
	assert.NilError(t, err)
	c, err := d.Inspect(ctx, id)
	assert.NilError(t, err)
	assert.DeepEqual(t, c.Spec.Log, runtime.LogConfig{MaxSize: strconv.Itoa(maxSize), MaxFiles: 3})
	assert.NilError(t, d.Start(ctx, id))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		c, err := d.Inspect(ctx, id)
		if err != nil {
			return poll.Error(err)
		}
		if c.Running() {
			return poll.Continue("still writing")
		}
		return poll.Success()
	}, poll.WithTimeout(90*time.Second))

	logPath := strings.TrimSpace(testenv.Docker(t, "inspect", "--format", "{{.LogPath}}", id))
	files, err := filepath.Glob(logPath + "*")
	assert.NilError(t, err)
	assert.Equal(t, len(files), 3, "log files: %v", files)
	for _, f := range files {
		fi, err := os.Stat(f)
		assert.NilError(t, err)
		// A file is cut after the line that passes the size: at most one
		// json line (16 KiB of output, escaped) over it.
		assert.Assert(t, fi.Size() <= maxSize+64<<10, "%s: %d bytes", f, fi.Size())
	}
	// Logs reads what is kept: bounded, and not empty.
	rc, err := d.Logs(ctx, id, runtime.LogOptions{})
	assert.NilError(t, err)
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	assert.NilError(t, err)
	assert.Assert(t, n > 0 && n < 3*maxSize, "logs: %d bytes", n)
}
