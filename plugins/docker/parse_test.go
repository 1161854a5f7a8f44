package docker

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// TestClassifySamples runs the classifier over real docker 28 / engine 20.10 error
// output kept under testdata/stderr.
func TestClassifySamples(t *testing.T) {
	runtimetest.ClassifySamples(t, classify, 20)
}

func fullSpec() runtime.ContainerSpec { return runtimetest.FullSpec() }

// TestCreateArgs pins the argv of docker create for a spec with every
// field set (refresh with go test -update).
func TestCreateArgs(t *testing.T) {
	spec := fullSpec()
	args := createArgs(spec, []string{"--health-cmd=exec /gateway-stub -probe", "--health-interval=30s"})
	golden.Assert(t, strings.Join(args, "\n")+"\n", "create-args.golden")
	for _, a := range args {
		for _, v := range spec.Env {
			assert.Assert(t, !strings.Contains(a, v), "env value on argv: %q", a)
		}
		// Before the image, every argument is a docker option.
		assert.Assert(t, strings.HasPrefix(a, "--") || a == "create", "not an option: %q", a)
	}
}

func TestShellCommandRoundTrip(t *testing.T) {
	for _, argv := range [][]string{
		{"/gateway-stub", "-probe"},
		{"/bin/check", "a b", "", "it's", `"dq"`, "$HOME", "x;y", "ünïcode", "a=b,c:d"},
		{"curl", "-fsS", "http://127.0.0.1:18789/health"},
	} {
		s := shellCommand(argv)
		got, ok := parseShellCommand(s)
		assert.Assert(t, ok, "parse %q", s)
		assert.DeepEqual(t, got, argv)
	}
	assert.Equal(t, shellCommand([]string{"/gateway-stub", "-probe"}), "exec /gateway-stub -probe")
	assert.Equal(t, shellCommand([]string{"a b", "it's"}), `exec 'a b' 'it'\''s'`)
	for _, s := range []string{"curl -f localhost || exit 1", "exec  a", "exec", "exec a 'b", "/bin/true"} {
		_, ok := parseShellCommand(s)
		assert.Assert(t, !ok, "%q is not ours", s)
	}
}

func TestHealthFromConfig(t *testing.T) {
	for _, tc := range []struct {
		in   *clirt.HealthJSON
		want *runtime.Healthcheck
	}{
		{nil, nil},
		{&clirt.HealthJSON{Test: []string{"NONE"}}, nil},
		{&clirt.HealthJSON{Test: []string{"CMD", "/gateway-stub", "-probe"}, Interval: 1e9, Retries: 2},
			&runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}, Interval: time.Second, Retries: 2}},
		{&clirt.HealthJSON{Test: []string{"CMD-SHELL", "exec /x 'a b'"}, Timeout: 3e9},
			&runtime.Healthcheck{Test: []string{"/x", "a b"}, Timeout: 3 * time.Second}},
		{&clirt.HealthJSON{Test: []string{"CMD-SHELL", "curl -f localhost || exit 1"}},
			&runtime.Healthcheck{Test: []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}}},
	} {
		assert.DeepEqual(t, clirt.HealthFromConfig(tc.in, parseShellCommand), tc.want)
	}
}

func readInspect(t *testing.T, file string) runtime.Container {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	assert.NilError(t, err)
	var raw clirt.Inspect
	assert.NilError(t, json.Unmarshal(b, &raw))
	return raw.Container(New(Config{}).dialect())
}

// TestParseInspect reads real `docker inspect` output (engine 20.10) of a
// container created with every flag, and of a bare one.
func TestParseInspect(t *testing.T) {
	c := readInspect(t, "inspect-full.json")
	assert.Equal(t, c.Name, "zsample-full")
	assert.Equal(t, len(c.ID), 64)
	assert.Equal(t, c.Image, "zaki/gateway-stub:latest")
	assert.Assert(t, strings.HasPrefix(c.ImageID, "sha256:"))
	assert.Equal(t, c.State, runtime.StateCreated)
	assert.Assert(t, !c.CreatedAt.IsZero())
	assert.Assert(t, c.StartedAt.IsZero() && c.FinishedAt.IsZero())
	assert.Equal(t, c.StartedAt, time.Time{})

	want := runtime.ContainerSpec{
		Name:   "zsample-full",
		Image:  "zaki/gateway-stub:latest",
		Cmd:    []string{"-addr", ":18789"},
		Labels: map[string]string{"a": "b", "zaki.userId": "u1"},
		User:   "1000:1000",
		Init:   true,
		Resources: runtime.Resources{
			CPUs: 0.5, CPUShares: 512, Memory: "268435456", MemorySwap: "536870912", PidsLimit: 100,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/run"}, {Path: "/tmp", Options: "size=64m"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
			SeccompProfile:  `{"defaultAction":"SCMP_ACT_ALLOW"}`, // the client inlines the file, compacted
			ApparmorProfile: "docker-default",
		},
		Restart: runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network: "zsample-net",
		Ports: []runtime.PortBinding{
			{HostIP: "127.0.0.1", HostPort: 28556, ContainerPort: 9000, Protocol: "udp"},
			{HostIP: "127.0.0.1", HostPort: 28555, ContainerPort: 18789, Protocol: "tcp"},
		},
		Mounts: []runtime.Mount{
			{Source: "/tmp/zaki-sample-data", Target: "/home/node/.openclaw"},
			{Source: "/tmp", Target: "/hosttmp", ReadOnly: true},
		},
		Healthcheck: &runtime.Healthcheck{
			Test:     []string{"/gateway-stub", "-probe", "a b"},
			Interval: time.Second, Timeout: 3 * time.Second, StartPeriod: 2 * time.Second, Retries: 3,
		},
		StopTimeout: 5 * time.Second,
		OCIRuntime:  "runc", // the engine's default, as HostConfig.Runtime names it
	}
	assert.DeepEqual(t, c.Spec, want)

	m := readInspect(t, "inspect-minimal.json")
	assert.Equal(t, m.Name, "zsample-min")
	assert.DeepEqual(t, m.Spec, runtime.ContainerSpec{Name: "zsample-min", Image: "zaki/gateway-stub:latest", OCIRuntime: "runc"})
}

// TestParseEvents reads a real `docker events --format '{{json .}}'`
// capture: create, start, health probes (exec_*, skipped), health_status,
// die with exit code 3, destroy.
func TestParseEvents(t *testing.T) {
	f, err := os.Open("testdata/events.jsonl")
	assert.NilError(t, err)
	defer f.Close()
	var got []runtime.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ev, ok, err := parseEvent(sc.Bytes())
		assert.NilError(t, err)
		if ok {
			got = append(got, ev)
		}
	}
	var actions []string
	for _, ev := range got {
		actions = append(actions, string(ev.Action))
		assert.Equal(t, ev.Name, "zsample-ev")
		assert.Equal(t, len(ev.ID), 64)
		assert.DeepEqual(t, ev.Labels, map[string]string{"zsample": "1", "zaki.userId": "u1"})
		assert.Assert(t, ev.Time.After(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
	}
	assert.DeepEqual(t, actions, []string{"create", "start", "health_status", "die", "destroy"})
	assert.Equal(t, got[2].Health, "healthy")
	assert.Equal(t, got[3].ExitCode, 3)

	// Image events, as `docker tag` and `docker rmi` print them.
	ev, ok, err := parseEvent([]byte(`{"status":"tag","id":"sha256:4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113","Type":"image","Action":"tag","Actor":{"ID":"sha256:4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113","Attributes":{"name":"zaki-test/imgev:1"}},"scope":"local","time":1796442711,"timeNano":1796442711204184406}`))
	assert.NilError(t, err)
	assert.Assert(t, ok && ev.Image)
	assert.Equal(t, ev.Action, runtime.EventImageTag)
	assert.Equal(t, ev.ID, "sha256:4a9a1a3d4a27bb383cec4250ce09d0d24d5b44941adb886d568dfca5fdefe113")
	assert.Equal(t, ev.Name, "zaki-test/imgev:1")
	ev, ok, err = parseEvent([]byte(`{"status":"untag","id":"sha256:4a9a","Type":"image","Action":"untag","Actor":{"ID":"sha256:4a9a","Attributes":{"name":"sha256:4a9a"}},"scope":"local","time":1796442711,"timeNano":1796442711323934405}`))
	assert.NilError(t, err)
	assert.Assert(t, ok && ev.Image && ev.Action == runtime.EventImageUntag)
	_, ok, err = parseEvent([]byte(`{"Type":"image","Action":"save","Actor":{"ID":"x"}}`))
	assert.Assert(t, err == nil && !ok)

	_, _, err = parseEvent([]byte("not json"))
	assert.Assert(t, err != nil)
}
