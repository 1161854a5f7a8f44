package engineapi_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

// frame is one frame of a multiplexed stream.
func frame(stream byte, payload string) []byte {
	n := len(payload)
	return append([]byte{stream, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

func TestContainerInspect(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/containers/e5d62702a1b4/json", answer: `{
		"Id": "e5d62702a1b4", "Name": "/zaki-user-u1.1.0kzzo1i0y4jz", "Created": "2026-12-05T10:00:00.5Z", "Image": "sha256:abc",
		"State": {"Status": "running", "Running": true, "Paused": false, "OOMKilled": false, "Pid": 677, "ExitCode": 0,
		          "Error": "", "StartedAt": "2026-12-05T10:00:01Z", "FinishedAt": "0001-01-01T00:00:00Z",
		          "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []}},
		"Config": {"Image": "zaki/gateway-stub:latest@sha256:abc", "User": "1000:1000", "Tty": false,
		           "Labels": {"com.docker.swarm.service.id": "9mnp"}, "Env": ["A=b"]},
		"HostConfig": {"Init": true, "ReadonlyRootfs": true, "CapDrop": ["ALL"], "PidsLimit": 100, "Memory": 2147483648, "NanoCpus": 2000000000,
		               "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
		               "Mounts": [{"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 67108864}}],
		               "PortBindings": {"18789/tcp": [{"HostIp": "", "HostPort": "21001"}]}},
		"NetworkSettings": {"Ports": {}}}`})
	got, err := c.ContainerInspect(context.Background(), "e5d62702a1b4")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.ID, "e5d62702a1b4"))
	assert.Check(t, is.Equal(got.State.Status, "running"))
	assert.Check(t, is.Equal(got.State.Pid, 677))
	assert.Check(t, is.Equal(got.State.Health.Status, "healthy"))
	assert.Check(t, got.State.FinishedAt.IsZero())
	assert.Check(t, is.Equal(got.Config.Labels["com.docker.swarm.service.id"], "9mnp"))
	assert.Check(t, got.HostConfig.ReadonlyRootfs && *got.HostConfig.Init)
	assert.Check(t, is.Equal(*got.HostConfig.PidsLimit, int64(100)))
	assert.Check(t, is.DeepEqual(got.HostConfig.CapDrop, []string{"ALL"}))
	assert.Check(t, is.DeepEqual(got.HostConfig.Ulimits, []engineapi.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}))
	assert.Check(t, is.DeepEqual(got.HostConfig.Mounts, []engineapi.Mount{{Type: "tmpfs", Target: "/tmp",
		TmpfsOptions: &engineapi.TmpfsOptions{SizeBytes: 64 << 20}}}))
	assert.Check(t, is.DeepEqual(got.HostConfig.PortBindings, map[string][]engineapi.PortBinding{"18789/tcp": {{HostPort: "21001"}}}))
}

func TestContainerInspectNotFound(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/containers/nope/json", status: http.StatusNotFound,
		answer: `{"message":"No such container: nope"}`})
	_, err := c.ContainerInspect(context.Background(), "nope")
	assert.Check(t, is.ErrorIs(err, errdefs.ErrNotFound))
	assert.Check(t, is.ErrorContains(err, "No such container: nope"))
}

func TestContainers(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/containers/json",
		query: url.Values{"filters": {`{"label":["com.docker.swarm.service.id=9mnp"]}`}},
		answer: `[{"Id": "e5d6", "Names": ["/zaki-user-u1.1.0kzz"], "Image": "zaki/gateway-stub:latest", "ImageID": "sha256:abc",
		           "Command": "/stub", "Created": 1764928800, "Ports": [], "Labels": {"com.docker.swarm.service.id": "9mnp"},
		           "State": "running", "Status": "Up 2 minutes", "HostConfig": {"NetworkMode": "default"}}]`})
	got, err := c.Containers(context.Background(), false, engineapi.Filters{"label": {"com.docker.swarm.service.id=9mnp"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []engineapi.ContainerSummary{{ID: "e5d6", Names: []string{"/zaki-user-u1.1.0kzz"},
		Image: "zaki/gateway-stub:latest", ImageID: "sha256:abc", Labels: map[string]string{"com.docker.swarm.service.id": "9mnp"},
		State: "running", Status: "Up 2 minutes", Created: 1764928800}}))
}

func TestImageInspect(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/images/registry.local:5000/zaki/gateway-stub:latest/json", answer: `{
		"Id": "sha256:abc", "RepoTags": ["registry.local:5000/zaki/gateway-stub:latest"], "RepoDigests": [],
		"Created": "2026-12-01T00:00:00Z", "Os": "linux", "Architecture": "amd64",
		"Config": {"User": "1000:1000", "ExposedPorts": {"18789/tcp": {}}, "Labels": null,
		           "Healthcheck": {"Test": ["CMD", "/stub", "health"], "Interval": 5000000000}}}`})
	got, err := c.ImageInspect(context.Background(), "registry.local:5000/zaki/gateway-stub:latest")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.ID, "sha256:abc"))
	assert.Check(t, is.Equal(got.Config.User, "1000:1000"))
	assert.Check(t, is.DeepEqual(got.Config.ExposedPorts, map[string]struct{}{"18789/tcp": {}}))
	assert.Check(t, is.DeepEqual(got.Config.Healthcheck, &engineapi.HealthConfig{Test: []string{"CMD", "/stub", "health"}, Interval: 5 * time.Second}))

	for _, ref := range []string{"", "/x", "../containers/x"} {
		_, err := c.ImageInspect(context.Background(), ref)
		assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument), "%q", ref)
	}
}

func TestContainerLogs(t *testing.T) {
	tail := 10
	since := time.Unix(1764928800, 5)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, exchange{method: http.MethodGet, path: "/v1.41/containers/u1/logs", query: url.Values{
			"stdout": {"1"}, "stderr": {"1"}, "follow": {"1"}, "timestamps": {"1"},
			"since": {"1764928800.000000005"}, "tail": {"10"}}})
		w.Write(frame(engineapi.Stdout, "out 1\n"))
		w.Write(frame(engineapi.Stderr, "err 1\n"))
		w.Write(frame(engineapi.Stdout, "out 2\n"))
	})
	rc, err := c.ContainerLogs(context.Background(), "u1", engineapi.LogsOptions{Follow: true, Timestamps: true, Since: since, Tail: &tail})
	assert.NilError(t, err)
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	assert.NilError(t, engineapi.Demux(&stdout, &stderr, rc))
	assert.Check(t, is.Equal(stdout.String(), "out 1\nout 2\n"))
	assert.Check(t, is.Equal(stderr.String(), "err 1\n"))
}

func TestContainerLogsDefaults(t *testing.T) {
	negative := -1 // taken as 0: none
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/containers/u1/logs",
		query: url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {"0"}}})
	rc, err := c.ContainerLogs(context.Background(), "u1", engineapi.LogsOptions{Tail: &negative})
	assert.NilError(t, err)
	b, err := io.ReadAll(engineapi.Merge(rc))
	assert.NilError(t, err)
	assert.Check(t, is.Len(b, 0))
}

// TestContainerLogsFollowEnds: a followed stream the engine keeps open
// ends for the reader when ctx does.
func TestContainerLogsFollowEnds(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(frame(engineapi.Stdout, "line 1\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := c.ContainerLogs(ctx, "u1", engineapi.LogsOptions{Follow: true})
	assert.NilError(t, err)
	defer rc.Close()
	br := bufio.NewReader(engineapi.Merge(rc))
	line, err := br.ReadString('\n')
	assert.NilError(t, err)
	assert.Check(t, is.Equal(line, "line 1\n"))
	cancel()
	_, err = br.ReadString('\n')
	assert.Check(t, is.ErrorIs(err, context.Canceled))
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1.41/containers/u1/exec":
			checkRequest(t, r, exchange{method: http.MethodPost, path: r.URL.Path,
				body: `{"Cmd": ["/stub", "x"], "User": "1000", "AttachStdout": true, "AttachStderr": true}`})
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"Id": "ex1"}`))
		case "/v1.41/exec/ex1/start":
			checkRequest(t, r, exchange{method: http.MethodPost, path: r.URL.Path, body: `{"Detach": false, "Tty": false}`})
			// As the engine does: hijack the connection, answer without a
			// length, write the output and close.
			conn, buf, err := w.(http.Hijacker).Hijack()
			assert.Check(t, err)
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
			buf.Write(frame(engineapi.Stdout, "hello\n"))
			buf.Write(frame(engineapi.Stderr, "warn\n"))
			buf.Flush()
		case "/v1.41/exec/ex1/json":
			checkRequest(t, r, exchange{method: http.MethodGet, path: r.URL.Path})
			w.Write([]byte(`{"ID": "ex1", "ContainerID": "e5d6", "Running": false, "ExitCode": 3, "Pid": 42,
				"ProcessConfig": {"entrypoint": "/stub", "arguments": ["x"]}, "CanRemove": false}`))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	})
	id, err := c.ExecCreate(ctx, "u1", engineapi.ExecConfig{Cmd: []string{"/stub", "x"}, User: "1000", AttachStdout: true, AttachStderr: true})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id, "ex1"))
	rc, err := c.ExecStart(ctx, id, false)
	assert.NilError(t, err)
	var stdout, stderr bytes.Buffer
	assert.NilError(t, engineapi.Demux(&stdout, &stderr, rc))
	rc.Close()
	assert.Check(t, is.Equal(stdout.String(), "hello\n"))
	assert.Check(t, is.Equal(stderr.String(), "warn\n"))
	got, err := c.ExecInspect(ctx, id)
	assert.NilError(t, err)
	three := 3
	assert.Check(t, is.DeepEqual(got, engineapi.ExecInspect{ID: "ex1", ContainerID: "e5d6", ExitCode: &three, Pid: 42}))
}

func TestExecErrors(t *testing.T) {
	c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/containers/u1/exec",
		body:   `{"Cmd": ["/bin/tool", "--token", "tok-9876"], "Env": ["K=envsecret"], "AttachStdout": true, "AttachStderr": false}`,
		status: http.StatusConflict, answer: `{"message":"Container u1 is paused, unpause the container before exec: /bin/tool --token tok-9876 K=envsecret"}`})
	_, err := c.ExecCreate(context.Background(), "u1", engineapi.ExecConfig{Cmd: []string{"/bin/tool", "--token", "tok-9876"},
		Env: []string{"K=envsecret"}, AttachStdout: true})
	assert.Check(t, is.ErrorIs(err, errdefs.ErrConflict))
	assert.Check(t, is.ErrorContains(err, "is paused"))
	for _, s := range []string{"tok-9876", "envsecret", "/bin/tool"} {
		assert.Check(t, !bytes.Contains([]byte(err.Error()), []byte(s)), "%q in %v", s, err)
	}
}
