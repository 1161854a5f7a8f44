package podman

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// TestClassifySamples runs the classifier over real podman 4.3 error
// output kept under testdata/stderr.
func TestClassifySamples(t *testing.T) {
	runtimetest.ClassifySamples(t, classify, 25)
}

// fullSpec is the shared full spec with nofile only, so that Create
// adds nproc (implicitUlimits), and a quote in the healthcheck's JSON.
func fullSpec() runtime.ContainerSpec {
	spec := runtimetest.FullSpec()
	spec.Resources.Ulimits = spec.Resources.Ulimits[:1]
	spec.Healthcheck.Test = append(spec.Healthcheck.Test, "it's")
	return spec
}

// fakeLimits stands in for this process's limits.
func fakeLimits(resource int) (soft, hard int64, ok bool) {
	return 4096, 8192, true
}

// TestCreateArgs pins the argv of podman create for a spec with every
// field set (refresh with go test -update): the shared options, podman's
// JSON healthcheck, --read-only-tmpfs=false, the implicit nproc (the spec
// sets nofile only) and the annotations.
func TestCreateArgs(t *testing.T) {
	spec := fullSpec()
	args, err := createArgs(spec, fakeLimits)
	assert.NilError(t, err)
	golden.Assert(t, strings.Join(args, "\n")+"\n", "create-args.golden")
	for _, a := range args {
		for _, v := range spec.Env {
			assert.Assert(t, !strings.Contains(a, v), "env value on argv: %q", a)
		}
		// Before the image, every argument is a podman option.
		assert.Assert(t, strings.HasPrefix(a, "--") || a == "create", "not an option: %q", a)
		// --annotation splits at commas.
		if strings.HasPrefix(a, "--annotation=") {
			assert.Assert(t, !strings.Contains(a, ","), "comma in %q", a)
		}
	}
}

func TestImplicitUlimits(t *testing.T) {
	both := []runtime.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}, {Name: "nproc", Soft: 3, Hard: 4}}
	assert.Equal(t, len(implicitUlimits(both, fakeLimits)), 0)
	assert.DeepEqual(t, implicitUlimits(nil, fakeLimits), []runtime.Ulimit{
		{Name: "nofile", Soft: 4096, Hard: 8192}, {Name: "nproc", Soft: 4096, Hard: 8192},
	})
	// This process's own limits: nproc no higher than pid_max.
	soft, hard, ok := processUlimits(int(implicitResources[1].resource))
	assert.Assert(t, ok)
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	assert.NilError(t, err)
	pidMax := strings.TrimSpace(string(b))
	assert.Assert(t, soft <= hard && hard > 0, "nproc %d:%d", soft, hard)
	assert.Assert(t, len(pidMax) > 0 && hard <= mustAtoi(t, pidMax), "nproc hard %d above pid_max %s", hard, pidMax)
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		assert.Assert(t, c >= '0' && c <= '9', "not a number: %q", s)
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestHealthArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *runtime.Healthcheck
		want []string
		err  error
	}{
		{"None", nil, []string{"--no-healthcheck"}, nil},
		{"ExecForm", &runtime.Healthcheck{Test: []string{"/probe", "-x", "a b"}}, []string{`--health-cmd=["/probe","-x","a b"]`}, nil},
		{"Timings", &runtime.Healthcheck{Test: []string{"/probe", "-x"}, Interval: 2 * time.Second, Timeout: time.Second, StartPeriod: 1500 * time.Millisecond, Retries: 4},
			[]string{`--health-cmd=["/probe","-x"]`, "--health-interval=2s", "--health-timeout=1s", "--health-start-period=1.5s", "--health-retries=4"}, nil},
		{"KeywordFirst", &runtime.Healthcheck{Test: []string{"cmd", "/probe"}}, nil, runtime.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := healthArgs(tc.in)
			assert.Equal(t, runtime.Class(err), tc.err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestHealthFromConfig(t *testing.T) {
	for _, tc := range []struct {
		in   *clirt.HealthJSON
		want *runtime.Healthcheck
	}{
		{nil, nil},
		{&clirt.HealthJSON{Test: []string{"NONE"}}, nil},
		{&clirt.HealthJSON{Test: []string{"CMD", "/probe", "-x"}, Interval: 1e9, Retries: 3}, &runtime.Healthcheck{Test: []string{"/probe", "-x"}, Interval: time.Second, Retries: 3}},
		{&clirt.HealthJSON{Test: []string{"CMD-SHELL", "curl -f x"}}, &runtime.Healthcheck{Test: []string{"/bin/sh", "-c", "curl -f x"}}},
	} {
		assert.DeepEqual(t, clirt.HealthFromConfig(tc.in, nil), tc.want)
	}
}

// TestInspectFull reads real `podman container inspect` output of a
// container created with createArgs of a full spec (running: the health
// and network fields filled in) back into the spec.
func TestInspectFull(t *testing.T) {
	c := readInspect(t, "testdata/inspect-full.json")
	assert.Equal(t, c.Name, "zaki-pdrt-full")
	assert.Equal(t, c.Image, "zaki/gateway-stub:latest", "the reference as given, not podman's localhost/...")
	assert.Equal(t, c.ImageID, "sha256:8c017eaa1efb6e70f9a2a40e7501ee19a379826c47778ad55e9ea93907b1255b")
	assert.Equal(t, c.State, runtime.StateRunning)
	assert.Equal(t, c.Health, "healthy")
	assert.Assert(t, !c.CreatedAt.IsZero() && !c.StartedAt.IsZero() && c.FinishedAt.IsZero())

	want := runtime.ContainerSpec{
		Name:   "zaki-pdrt-full",
		Image:  "zaki/gateway-stub:latest",
		Cmd:    []string{"-addr", ":18789", "-data", "/home/node/.openclaw"},
		Labels: map[string]string{"zaki.instance": "1", "zaki.userId": "u1"},
		User:   "20780:20780",
		Init:   true,
		Resources: runtime.Resources{
			CPUs: 0.5, CPUShares: 512, Memory: "268435456", MemorySwap: "536870912", PidsLimit: 100,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
		},
		Restart:     runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network:     "zaki-pdrt-net",
		Ports:       []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 28123, ContainerPort: 18789, Protocol: "tcp"}},
		Mounts:      []runtime.Mount{{Source: "/tmp/zaki-pdrt-data", Target: "/home/node/.openclaw"}},
		Healthcheck: &runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}, Interval: time.Second, Timeout: 3 * time.Second, StartPeriod: 2 * time.Second, Retries: 3},
		StopTimeout: 5 * time.Second,
		OCIRuntime:  "runc", // podman's default
	}
	assert.DeepEqual(t, c.Spec, want)
}

// TestInspectForeign reads a container podman made without the plugin
// (no annotations, no --network, the image's own healthcheck, stopped):
// capabilities as podman reports them (--cap-drop NET_RAW), the default
// network as "",
// podman's default limits as they are.
func TestInspectForeign(t *testing.T) {
	c := readInspect(t, "testdata/inspect-foreign.json")
	assert.Equal(t, c.Image, "localhost/zaki/gateway-stub:latest")
	assert.Equal(t, c.State, runtime.StateExited)
	assert.Equal(t, c.ExitCode, 3)
	assert.Equal(t, c.Spec.Network, "")
	// Podman's delta against docker's default set, which has AUDIT_WRITE
	// and MKNOD that podman's default set lacks.
	assert.DeepEqual(t, c.Spec.Security.CapDrop, []string{"AUDIT_WRITE", "MKNOD", "NET_RAW"})
	assert.Equal(t, len(c.Spec.Security.CapAdd), 0)
	assert.DeepEqual(t, c.Spec.Resources.Ulimits, []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}})
	assert.DeepEqual(t, c.Spec.Healthcheck, &runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3})
	assert.Equal(t, c.Spec.Restart, runtime.RestartPolicy{})
	assert.Equal(t, c.Spec.Init, false)
}

func readInspect(t *testing.T, path string) runtime.Container {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	cs, err := New(Config{}).ParseInspect(b)
	assert.NilError(t, err)
	assert.Equal(t, len(cs), 1)
	return cs[0]
}

// TestParseEvents reads real `podman events --format json` output: a
// container created, started, killed, restarted by its policy, health
// checked, stopped and removed.
func TestParseEvents(t *testing.T) {
	b, err := os.ReadFile("testdata/events.jsonl")
	assert.NilError(t, err)
	var got []string
	var evs []runtime.Event
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		ev, ok, err := parseEvent([]byte(line))
		assert.NilError(t, err)
		if ok {
			evs = append(evs, ev)
			got = append(got, string(ev.Action))
		}
	}
	assert.DeepEqual(t, got, []string{"create", "start", "die", "restart", "start", "health_status", "die", "destroy"})
	for _, ev := range evs {
		assert.Equal(t, ev.Name, "zaki-pdrt-ev")
		assert.Equal(t, len(ev.ID), 64)
		assert.DeepEqual(t, ev.Labels, map[string]string{"zaki.instance": "1", "zaki.userId": "u1"})
		assert.Assert(t, !ev.Time.IsZero())
	}
	assert.Equal(t, evs[2].ExitCode, 3)
	assert.Equal(t, evs[5].Health, "starting")
	assert.Equal(t, evs[6].ExitCode, 0)

	_, ok, err := parseEvent([]byte(`{"Type":"network","Status":"create"}`))
	assert.Assert(t, err == nil && !ok)
	// Image events, as `podman tag` and `podman rmi` print them.
	for line, want := range map[string]runtime.EventAction{
		`{"ID":"4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113","Name":"zaki-test/imgev:1","Status":"tag","Time":"2026-12-05T03:51:50.740956047Z","Type":"image","Attributes":null}`:              runtime.EventImageTag,
		`{"ID":"4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113","Name":"localhost/zaki-test/imgev:1","Status":"untag","Time":"2026-12-05T03:51:51.010820249Z","Type":"image","Attributes":null}`:  runtime.EventImageUntag,
		`{"ID":"4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113","Name":"localhost/zaki-test/imgev:1","Status":"remove","Time":"2026-12-05T03:51:51.010811502Z","Type":"image","Attributes":null}`: runtime.EventImageDelete,
	} {
		ev, ok, err := parseEvent([]byte(line))
		assert.NilError(t, err)
		assert.Assert(t, ok && ev.Image, line)
		assert.Equal(t, ev.Action, want)
		assert.Equal(t, ev.ID, "sha256:4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113")
		assert.Assert(t, strings.HasSuffix(ev.Name, "zaki-test/imgev:1"))
	}
	_, ok, err = parseEvent([]byte(`{"Type":"image","Status":"mount"}`))
	assert.Assert(t, err == nil && !ok)
	_, _, err = parseEvent([]byte(`not json`))
	assert.Assert(t, err != nil)
}

func TestLoopbackRegistry(t *testing.T) {
	for ref, want := range map[string]bool{
		"127.0.0.1:5000/zaki/x:1":      true,
		"localhost:5000/zaki/x":        true,
		"localhost/zaki/x":             true,
		"[::1]:5000/zaki/x":            true,
		"127.1.2.3/x":                  true,
		"registry.example.com/zaki/x":  false,
		"docker.io/library/alpine":     false,
		"zaki/gateway-stub:latest":     false,
		"alpine":                       false,
		"10.0.0.1:5000/x":              false,
		"localhost.example.com:5000/x": false,
	} {
		assert.Equal(t, loopbackRegistry(ref), want, ref)
	}
}

func TestICCRules(t *testing.T) {
	listing := `-P FORWARD DROP
-A FORWARD -j NETAVARK_ISOLATION_1
-A FORWARD -i podman3 -o podman3 -m comment --comment "zaki-icc-off:zaki" -j DROP
-A FORWARD -i podman4 -o podman4 -m comment --comment "zaki-icc-off:zaki-2" -j DROP
-A FORWARD -j DOCKER-USER
`
	assert.DeepEqual(t, iccRules(listing, "zaki"), [][]string{
		{"FORWARD", "-i", "podman3", "-o", "podman3", "-m", "comment", "--comment", "zaki-icc-off:zaki", "-j", "DROP"},
	})
	assert.Equal(t, len(iccRules(listing, "zak")), 0)
}

func TestArgv(t *testing.T) {
	p := New(Config{GlobalArgs: []string{"--root=/x"}})
	assert.DeepEqual(t, p.argv([]string{"network", "create", "n"}), []string{"network", "--log-level=error", "--root=/x", "create", "n"})
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb\n"},
		{"", 1, ""},
		{"a\n", 1, "a\n"},
	} {
		assert.Equal(t, string(lastLines([]byte(tc.in), tc.n)), tc.want, "%q %d", tc.in, tc.n)
	}
}

func TestSandboxHint(t *testing.T) {
	// What podman 4.3 said under zaki-agent.service without the drop-in.
	err := errors.New("podman info: exit status 125: Error: opening database /var/lib/containers/storage/libpod/bolt_state.db: open /var/lib/containers/storage/libpod/bolt_state.db: read-only file system")
	assert.Check(t, is.Contains(sandboxHint(err), "/usr/share/zaki-agent/podman.conf"))
	assert.Check(t, is.Equal(sandboxHint(errors.New("podman info: exit status 125: Error: no such container")), ""))
}
