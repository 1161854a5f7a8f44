package docker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// standIn is a fake `docker` on PATH: a shell script that records each
// call (argv, one argument a line, NUL-free by construction of the tests)
// and, for an --env-file, the path, what it links to and its content
// while the call runs; then prints what the test set for that subcommand.
type standIn struct {
	dir string // holds the script and what it records
}

const standInScript = `#!/bin/sh
d=$(dirname "$0")
n=$(ls "$d"/calls 2>/dev/null | wc -l)
call="$d/calls/$(printf '%04d' "$n")"
mkdir -p "$d/calls"
for a in "$@"; do printf '%s\n' "$a"; done > "$call"
for a in "$@"; do
	case "$a" in
	--env-file=*)
		f=${a#--env-file=}
		printf '%s\n' "$f" > "$d/envfile.path"
		readlink "$f" > "$d/envfile.link"
		[ -f "$d/nocontent" ] || cat "$f" > "$d/envfile.content"
		;;
	esac
done
# The subcommand: the first argument, or the first two for "image" and "network".
sub=$1
case "$1" in image|network) sub="$1-$2" ;; esac
[ -f "$d/$sub.stdout" ] && cat "$d/$sub.stdout"
[ -f "$d/$sub.stderr" ] && cat "$d/$sub.stderr" >&2
[ -f "$d/$sub.exit" ] && exit "$(cat "$d/$sub.exit")"
exit 0
`

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "docker"), []byte(standInScript), 0o755))
	return &standIn{dir: dir}
}

// on sets what the stand-in answers to sub ("create", "image-inspect", ...).
func (s *standIn) on(t *testing.T, sub, stdout, stderr string, exit int) {
	t.Helper()
	for ext, v := range map[string]string{"stdout": stdout, "stderr": stderr, "exit": strconv.Itoa(exit)} {
		assert.NilError(t, os.WriteFile(filepath.Join(s.dir, sub+"."+ext), []byte(v), 0o644))
	}
}

// calls returns the argv of every call so far, in order.
func (s *standIn) calls(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.dir, "calls", "*"))
	assert.NilError(t, err)
	var out [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		assert.NilError(t, err)
		out = append(out, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
	}
	return out
}

func (s *standIn) read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	assert.NilError(t, err)
	return strings.TrimSpace(string(b))
}

// onPath puts the stand-in first on PATH for this test, and returns a
// runtime using "docker" from PATH (the default).
func (s *standIn) onPath(t *testing.T) *Docker {
	t.Setenv("PATH", s.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return New(Config{})
}

const fakeID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCreateEnvFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exit   int
		stderr string
		class  error
	}{
		{name: "create succeeds"},
		{name: "create fails", exit: 1, class: runtime.ErrAlreadyExists,
			stderr: `Error response from daemon: Conflict. The container name "/zaki-user-u1" is already in use by container "` + fakeID + `". You have to remove (or rename) that container to be able to reuse that name.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			d := s.onPath(t)
			s.on(t, "create", fakeID+"\n", tc.stderr, tc.exit)
			s.on(t, "image-inspect", `{"Test":["CMD","/gateway-stub","-probe"]}`+"\n", "", 0)
			spec := fullSpec()
			id, err := d.Create(t.Context(), spec)
			if tc.class == nil {
				assert.NilError(t, err)
				assert.Equal(t, id, fakeID)
			} else {
				assert.Assert(t, errors.Is(err, tc.class), "got %v", err)
			}

			calls := s.calls(t)
			assert.Equal(t, len(calls), 2, "image inspect (healthcheck), then create: %q", calls)
			create := calls[1]
			assert.Equal(t, create[0], "create")
			for _, a := range create {
				for _, v := range spec.Env {
					assert.Assert(t, !strings.Contains(a, v), "env value on argv: %q", a)
				}
			}
			// The env file was an in-memory file inherited as descriptor 3,
			// with no name on any filesystem, holding every variable.
			assert.Equal(t, s.read(t, "envfile.path"), "/dev/fd/3")
			assert.Assert(t, strings.HasPrefix(s.read(t, "envfile.link"), "/memfd:zaki-env"), s.read(t, "envfile.link"))
			assert.Equal(t, s.read(t, "envfile.content"), "OTHER=other-secret-value\nSECRET=s3cr3t value")

			// The image ends the options; the command follows it verbatim.
			i := len(create) - len(spec.Cmd) - 1
			assert.Equal(t, create[i], spec.Image)
			assert.DeepEqual(t, create[i+1:], spec.Cmd)
			for _, a := range create[:i] {
				assert.Assert(t, a == "create" || strings.HasPrefix(a, "--"), "not an option before the image: %q", a)
			}
			// The spec's test is the image's own exec-form healthcheck:
			// only the timings are passed.
			assert.Assert(t, !contains(create, "--health-cmd="), "%q", create)
			assert.Assert(t, contains(create, "--health-interval=30s"))
		})
	}
}

// TestCreateKilledLeavesNoEnvFile: a plugin killed in the middle of a
// create (SIGKILL, no clean-up of its own) leaves no file holding the
// secret in the temporary directory, nor did one exist during the create.
// The plugin is this test binary run again (TestCreateKilledHelper); the
// create's client is the stand-in, which hangs.
func TestCreateKilledLeavesNoEnvFile(t *testing.T) {
	s := newStandIn(t)
	assert.NilError(t, os.WriteFile(filepath.Join(s.dir, "nocontent"), nil, 0o644))
	script := strings.Replace(standInScript, "exit 0\n", `[ "$1" = create ] && exec sleep 60
exit 0
`, 1)
	assert.NilError(t, os.WriteFile(filepath.Join(s.dir, "docker"), []byte(script), 0o755))
	secret := fmt.Sprintf("zaki-killed-create-%d-%d", os.Getpid(), time.Now().UnixNano())

	child := exec.Command(os.Args[0], "-test.run=^TestCreateKilledHelper$", "-test.count=1")
	child.Env = append(os.Environ(), "PATH="+s.dir+string(os.PathListSeparator)+os.Getenv("PATH"), "ZAKI_TEST_KILLED_CREATE="+secret)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	assert.NilError(t, child.Start())
	defer child.Process.Kill()
	// (The stand-in's shell makes the file, then readlink fills it.)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if b, err := os.ReadFile(filepath.Join(s.dir, "envfile.link")); err == nil && strings.HasSuffix(string(b), "\n") {
			return poll.Success()
		}
		return poll.Continue("create not reached; child: %s", out.String())
	}, poll.WithTimeout(30*time.Second))
	assert.Assert(t, strings.HasPrefix(s.read(t, "envfile.link"), "/memfd:"), s.read(t, "envfile.link"))

	noSecretFile := func(when string) {
		t.Helper()
		// -s: files other tests remove while grep walks are no error here.
		res := icmd.RunCommand("grep", "-rls", "--exclude-dir=go-build*", "--exclude-dir=zaki-testbin-*", secret, os.TempDir())
		assert.Assert(t, strings.TrimSpace(res.Stdout()) == "", "%s: secret in files: %s", when, res.Stdout())
	}
	noSecretFile("during the create")
	assert.NilError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	noSecretFile("after the plugin was killed")
}

// TestCreateKilledHelper is the plugin of TestCreateKilledLeavesNoEnvFile.
func TestCreateKilledHelper(t *testing.T) {
	secret := os.Getenv("ZAKI_TEST_KILLED_CREATE")
	if secret == "" {
		t.Skip("run by TestCreateKilledLeavesNoEnvFile")
	}
	spec := fullSpec()
	spec.Healthcheck = nil
	spec.Env = map[string]string{"SECRET": secret}
	_, err := New(Config{}).Create(t.Context(), spec)
	t.Fatalf("create returned: %v", err)
}

func TestCreateHealthcheckForms(t *testing.T) {
	for _, tc := range []struct {
		name       string
		imageTest  string
		health     *runtime.Healthcheck
		want, nope []string
	}{
		{"none is --no-healthcheck", `null`, nil, []string{"--no-healthcheck"}, []string{"--health-cmd="}},
		{"not the image's: shell form", `{"Test":["CMD","/other"]}`,
			&runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe", "a b"}, Retries: 2},
			[]string{"--health-cmd=exec /gateway-stub -probe 'a b'", "--health-retries=2"}, nil},
		{"image without healthcheck: shell form", `null`,
			&runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}},
			[]string{"--health-cmd=exec /gateway-stub -probe"}, nil},
		{"the image's own: timings only", `{"Test":["CMD","/gateway-stub","-probe"],"Interval":5000000000}`,
			&runtime.Healthcheck{Test: []string{"/gateway-stub", "-probe"}, Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute},
			[]string{"--health-interval=1s", "--health-timeout=2s", "--health-start-period=1m0s"}, []string{"--health-cmd=", "--no-healthcheck"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			d := s.onPath(t)
			s.on(t, "create", fakeID+"\n", "", 0)
			s.on(t, "image-inspect", tc.imageTest+"\n", "", 0)
			spec := runtime.ContainerSpec{Name: "hc", Image: "img:1", Healthcheck: tc.health}
			_, err := d.Create(t.Context(), spec)
			assert.NilError(t, err)
			calls := s.calls(t)
			create := calls[len(calls)-1]
			for _, w := range tc.want {
				assert.Assert(t, is.Contains(create, w))
			}
			for _, n := range tc.nope {
				assert.Assert(t, !contains(create, n), "%q in %q", n, create)
			}
		})
	}
}

func contains(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// TestInvalidInputRunsNoDocker: bad input is ErrInvalidArgument and no
// docker command runs at all.
func TestInvalidInputRunsNoDocker(t *testing.T) {
	s := newStandIn(t)
	d := s.onPath(t)
	ctx := t.Context()
	good := func() runtime.ContainerSpec {
		return runtime.ContainerSpec{Name: "ok", Image: "zaki/gateway-stub:latest"}
	}
	specs := map[string]func(*runtime.ContainerSpec){
		"invalid name":         func(s *runtime.ContainerSpec) { s.Name = "bad/name" },
		"name starting with -": func(s *runtime.ContainerSpec) { s.Name = "-v" },
		"malformed memory":     func(s *runtime.ContainerSpec) { s.Resources.Memory = "2 gigs" },
		"empty image":          func(s *runtime.ContainerSpec) { s.Image = "" },
		"image starting with -": func(s *runtime.ContainerSpec) {
			s.Image = "--privileged"
		},
		"env key with =":     func(s *runtime.ContainerSpec) { s.Env = map[string]string{"A=B": "c"} },
		"env value newline":  func(s *runtime.ContainerSpec) { s.Env = map[string]string{"A": "b\nC=d"} },
		"unconfined seccomp": func(s *runtime.ContainerSpec) { s.Security.SeccompProfile = "unconfined" },
		"network with space": func(s *runtime.ContainerSpec) { s.Network = "a b" },
		"mount with comma":   func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{Source: "/a,b", Target: "/c"}} },
		"port out of range": func(s *runtime.ContainerSpec) {
			s.Ports = []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 70000, ContainerPort: 1}}
		},
		"empty healthcheck":   func(s *runtime.ContainerSpec) { s.Healthcheck = &runtime.Healthcheck{} },
		"negative stop":       func(s *runtime.ContainerSpec) { s.StopTimeout = -time.Second },
		"label key with =":    func(s *runtime.ContainerSpec) { s.Labels = map[string]string{"a=b": "c"} },
		"user with flag":      func(s *runtime.ContainerSpec) { s.User = "--privileged" },
		"tmpfs options space": func(s *runtime.ContainerSpec) { s.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "a b"}} },
	}
	for name, mutate := range specs {
		spec := good()
		mutate(&spec)
		_, err := d.Create(ctx, spec)
		assert.Assert(t, errors.Is(err, runtime.ErrInvalidArgument), "%s: got %v", name, err)
	}
	calls := map[string]error{
		"ImageID":       func() error { _, err := d.ImageID(ctx, ""); return err }(),
		"PullImage":     d.PullImage(ctx, "-q", nil),
		"EnsureNetwork": d.EnsureNetwork(ctx, runtime.NetworkSpec{Name: "-d"}),
		"RemoveNetwork": d.RemoveNetwork(ctx, "a b"),
		"Start":         d.Start(ctx, "--help"),
		"Stop":          d.Stop(ctx, []string{"ok", "-t"}, time.Second),
		"Restart":       d.Restart(ctx, "", time.Second),
		"Remove":        d.Remove(ctx, []string{"ok", "a/b"}, runtime.RemoveOptions{}),
		"Inspect":       func() error { _, err := d.Inspect(ctx, "-f"); return err }(),
		"List": func() error {
			_, err := d.List(ctx, runtime.ListOptions{Labels: map[string]string{"a\nb": ""}})
			return err
		}(),
		"Events": func() error {
			_, err := d.Events(ctx, runtime.EventOptions{Labels: map[string]string{"": "x"}})
			return err
		}(),
		"Logs": func() error { _, err := d.Logs(ctx, "x y", runtime.LogOptions{}); return err }(),
	}
	for name, err := range calls {
		assert.Assert(t, errors.Is(err, runtime.ErrInvalidArgument), "%s: got %v", name, err)
	}
	assert.Equal(t, len(s.calls(t)), 0, "docker ran: %q", s.calls(t))
}

func TestBatchPerRefFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refs      []string
		stdout    string
		stderr    string
		exit      int
		wantFail  map[string]error // ref -> class (nil: unclassified)
		wholeCall error            // the call fails as a whole with this class
	}{
		{name: "all handled", refs: []string{"a", "b"}, stdout: "a\nb\n"},
		{name: "missing ones are removed", refs: []string{"a", "gone1", "gone10"}, stdout: "a\n", exit: 1,
			stderr: "Error response from daemon: No such container: gone1\nError response from daemon: No such container: gone10\n"},
		{name: "one fails by name, one missing", refs: []string{"a", "b", "gone"}, stdout: "a\n", exit: 1,
			stderr:   "Error response from daemon: No such container: gone\nError response from daemon: cannot stop container: b: permission denied\n",
			wantFail: map[string]error{"b": nil}},
		{name: "failure named by ID", refs: []string{"running", "gone"}, exit: 1,
			stderr:   "Error response from daemon: No such container: gone\nError response from daemon: You cannot remove a running container " + fakeID + ". Stop the container before attempting removal or force remove\n",
			wantFail: map[string]error{"running": runtime.ErrInvalidArgument}},
		{name: "engine down", refs: []string{"a", "b"}, exit: 1,
			stderr:    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
			wholeCall: runtime.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			d := s.onPath(t)
			s.on(t, "rm", tc.stdout, tc.stderr, tc.exit)
			err := d.Remove(t.Context(), append(tc.refs, tc.refs[0]), runtime.RemoveOptions{})
			calls := s.calls(t)
			assert.Equal(t, len(calls), 1)
			assert.DeepEqual(t, calls[0], append([]string{"rm", "--"}, tc.refs...))
			var be *runtime.BatchError
			switch {
			case tc.wholeCall != nil:
				assert.Assert(t, errors.Is(err, tc.wholeCall), "got %v", err)
				assert.Assert(t, !errors.As(err, &be), "a whole-call failure is no BatchError: %v", err)
			case len(tc.wantFail) == 0:
				assert.NilError(t, err)
			default:
				assert.Assert(t, errors.As(err, &be), "got %v", err)
				assert.Equal(t, len(be.Failed), len(tc.wantFail), "failed: %v", be.Failed)
				for ref, class := range tc.wantFail {
					ferr, ok := be.Failed[ref]
					assert.Assert(t, ok, "%s not among the failures %v", ref, be.Failed)
					assert.Equal(t, runtime.Class(ferr), class, "%s: %v", ref, ferr)
				}
			}
		})
	}
}

// A forced remove stops the containers first (engine 20.10 can panic
// when a running, health-checked container is removed by force), then
// removes them by force whatever the stop said, unless the engine is gone.
func TestForceRemoveStopsFirst(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stopStderr string
		stopExit   int
		wantCalls  int
		wantClass  error
	}{
		{name: "stop then rm", wantCalls: 2},
		{name: "a failed stop is left to rm --force", stopExit: 1, wantCalls: 2,
			stopStderr: "Error response from daemon: cannot stop container: b: permission denied\n"},
		{name: "engine down", stopExit: 1, wantCalls: 1, wantClass: runtime.ErrUnavailable,
			stopStderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			d := s.onPath(t)
			s.on(t, "stop", "a\n", tc.stopStderr, tc.stopExit)
			s.on(t, "rm", "a\nb\n", "", 0)
			err := d.Remove(t.Context(), []string{"a", "b"}, runtime.RemoveOptions{Force: true})
			calls := s.calls(t)
			assert.Equal(t, len(calls), tc.wantCalls, "calls: %q", calls)
			assert.DeepEqual(t, calls[0], []string{"stop", "-t", "0", "--", "a", "b"})
			if tc.wantClass != nil {
				assert.Assert(t, errors.Is(err, tc.wantClass), "got %v", err)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, calls[1], []string{"rm", "--force", "--", "a", "b"})
		})
	}
}

func TestStopArgs(t *testing.T) {
	s := newStandIn(t)
	d := s.onPath(t)
	s.on(t, "stop", "a\nb\n", "", 0)
	assert.NilError(t, d.Stop(t.Context(), []string{"a", "b"}, 1500*time.Millisecond))
	assert.NilError(t, d.Stop(t.Context(), nil, time.Second), "nothing to stop runs nothing")
	calls := s.calls(t)
	assert.Equal(t, len(calls), 1)
	assert.DeepEqual(t, calls[0], []string{"stop", "-t", "2", "--", "a", "b"})
}

func TestInfoUnavailable(t *testing.T) {
	s := newStandIn(t)
	d := s.onPath(t)
	msg := "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
	s.on(t, "version", `{"Client":{"Version":"28.2.2"},"Server":null}`+"\n", msg, 1)
	s.on(t, "info", `{"ID":""}`+"\n", msg, 1)
	_, err := d.Info(t.Context())
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
}

func TestMissingDockerIsUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	d := New(Config{})
	_, err := d.Info(t.Context())
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	_, err = d.Inspect(t.Context(), "x")
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
}

func TestEventsStreamEndsAsUnavailable(t *testing.T) {
	s := newStandIn(t)
	d := s.onPath(t)
	line := `{"status":"start","id":"` + fakeID + `","from":"img","Type":"container","Action":"start","Actor":{"ID":"` + fakeID + `","Attributes":{"image":"img","name":"c1","zaki.instance":"1"}},"scope":"local","time":1,"timeNano":1000000001}`
	s.on(t, "events", line+"\n", "error during connect: unexpected EOF\n", 1)
	es, err := d.Events(t.Context(), runtime.EventOptions{Labels: map[string]string{"zaki.instance": "1"}})
	assert.NilError(t, err)
	defer es.Close()
	ev, err := es.Recv()
	assert.NilError(t, err)
	assert.Equal(t, ev.Action, runtime.EventStart)
	assert.Equal(t, ev.Name, "c1")
	assert.DeepEqual(t, ev.Labels, map[string]string{"zaki.instance": "1"})
	_, err = es.Recv()
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	assert.Assert(t, err != io.EOF)

	calls := s.calls(t)
	assert.Equal(t, calls[0][0], "events")
	assert.Assert(t, is.Contains(calls[0], "--filter=label=zaki.instance=1"))
	assert.Assert(t, is.Contains(calls[0], "--filter=type=container"))
	assert.Assert(t, contains(calls[0], "--since="))
}
