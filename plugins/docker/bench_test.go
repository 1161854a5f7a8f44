package docker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/docker"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// BenchmarkInspect measures one Inspect of a running stand-in container,
// four ways (scripts/bench.sh prints them as a table against docker-cli):
//
//	docker-cli  one direct `docker inspect` exec: the baseline
//	in-process  the docker runtime called in this process (exec + parse)
//	plugin      the same through the real zaki-runtime-docker binary,
//	            launched by runtime.Launch: plugin minus in-process is the
//	            cost of the go-plugin gRPC hop
//	engine-api  GET /containers/{id}/json on the engine's Unix socket
func BenchmarkInspect(b *testing.B) {
	prefix := engine(b)
	name := prefix + "-bench"
	testenv.Docker(b, "run", "-d", "--pull=never", "--name", name, testenv.StubImage)
	b.Cleanup(func() {
		if out, err := dockerTry("rm", "-f", name); err != nil {
			b.Errorf("cleanup: docker rm -f %s: %v: %s", name, err, out)
		}
	})
	id := testenv.Docker(b, "inspect", "--type=container", "--format", "{{.Id}}", name)
	ctx := context.Background()

	b.Run("docker-cli", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command("docker", "inspect", "--type=container", "--format", "{{json .}}", id).Output()
			if err != nil || len(out) == 0 {
				b.Fatalf("docker inspect: %v", err)
			}
		}
	})
	b.Run("in-process", func(b *testing.B) {
		d := docker.New(docker.Config{})
		benchInspect(b, ctx, d, id)
	})
	b.Run("plugin", func(b *testing.B) {
		p := launch(b)
		benchInspect(b, ctx, p, id)
	})
	b.Run("engine-api", func(b *testing.B) {
		c := engineClient()
		defer c.CloseIdleConnections()
		for b.Loop() {
			resp, err := c.Get("http://docker/containers/" + id + "/json")
			if err != nil {
				b.Fatalf("GET /containers/%s/json: %v", id, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
				b.Fatalf("GET /containers/%s/json: %s %v", id, resp.Status, err)
			}
		}
	})
}

func benchInspect(b *testing.B, ctx context.Context, rt runtime.Runtime, id string) {
	// One call first: connections, caches and PATH lookups warm.
	if _, err := rt.Inspect(ctx, id); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := rt.Inspect(ctx, id)
		if err != nil || c.State != runtime.StateRunning {
			b.Fatalf("inspect %s: %v (state %q)", id, err, c.State)
		}
	}
}

// engineClient is an HTTP client of the engine's Unix socket (DOCKER_HOST
// when it is unix://, /var/run/docker.sock otherwise), keeping its
// connection open between requests as an API client would.
func engineClient() *http.Client {
	sock := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
	}
}

// BenchmarkPluginHop isolates the go-plugin hop: a call that runs no docker
// command (Stop of no containers) made in-process (the baseline) and
// through the real plugin binary. Its "added per call" is the hop's cost
// without the docker exec's noise, which at ±1 ms and more hides a
// sub-millisecond difference in BenchmarkInspect.
func BenchmarkPluginHop(b *testing.B) {
	ctx := context.Background()
	hop := func(b *testing.B, rt runtime.Runtime) {
		for b.Loop() {
			if err := rt.Stop(ctx, nil, time.Second); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("in-process", func(b *testing.B) { hop(b, docker.New(docker.Config{})) })
	b.Run("plugin", func(b *testing.B) { hop(b, launch(b)) })
}
