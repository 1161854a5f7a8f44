package podman_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// stubImage is the gateway stand-in in podman's store: docker's
// testenv.StubImage, loaded into podman (its own image store) under the
// name podman gives it. The short name testenv.StubImage resolves to it
// without asking a registry.
const stubImage = "localhost/" + testenv.StubImage

// requirePodman skips t when podman does not run here, or fails it when
// ZAKI_REQUIRE_DOCKER=1 (CI: engine tests must run, podman's too; `make
// test` installs podman first, scripts/ensure-podman.sh).
func requirePodman(t testing.TB) {
	t.Helper()
	podmanOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "podman", "version", "--format", "{{.Client.Version}}").CombinedOutput()
		if err != nil {
			podmanErr = err.Error() + ": " + string(bytes.TrimSpace(out))
		}
	})
	if podmanErr != "" {
		if os.Getenv("ZAKI_REQUIRE_DOCKER") == "1" {
			t.Fatalf("ZAKI_REQUIRE_DOCKER=1 but podman does not run: %s (run scripts/ensure-podman.sh)", podmanErr)
		}
		t.Skipf("no podman: %s (run scripts/ensure-podman.sh, or make test)", podmanErr)
	}
	if os.Geteuid() != 0 {
		t.Skip("the podman tests drive rootful podman: run as root")
	}
}

var (
	podmanOnce sync.Once
	podmanErr  string
	stubOnce   sync.Once
	stubErr    error
)

// engine prepares a real-podman test: podman, docker (whose stand-in
// image is loaded into podman) and the stand-in in podman's store, and a
// name prefix unique to the test, checked when the test ends: no
// container, network or image tag whose name holds it may be left.
func engine(t testing.TB) (prefix string) {
	t.Helper()
	requirePodman(t)
	testenv.RequireDocker(t)
	testenv.EnsureStubImage(t)
	stubOnce.Do(func() { stubErr = loadStub() })
	if stubErr != nil {
		t.Fatal(stubErr)
	}
	prefix = testenv.UniqueName("zaki-pdrt")
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() { assertNothingLeft(t, prefix) })
	return prefix
}

// loadStub loads docker's stand-in into podman (docker save | podman
// load) unless podman has that very image (same ID) already. It is not
// removed afterwards: like docker's, it is this machine's stand-in.
func loadStub() error {
	want, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", testenv.StubImage).Output()
	if err != nil {
		return err
	}
	have, _ := exec.Command("podman", "image", "inspect", "--format", "{{.Id}}", stubImage).Output()
	if strings.TrimPrefix(strings.TrimSpace(string(want)), "sha256:") == strings.TrimSpace(string(have)) {
		return nil
	}
	save := exec.Command("docker", "save", testenv.StubImage)
	load := exec.Command("podman", "load")
	pipe, err := save.StdoutPipe()
	if err != nil {
		return err
	}
	load.Stdin = pipe
	var out bytes.Buffer
	load.Stdout, load.Stderr = &out, &out
	if err := load.Start(); err != nil {
		return err
	}
	if err := save.Run(); err != nil {
		load.Wait()
		return err
	}
	if err := load.Wait(); err != nil {
		return &loadError{err: err, out: out.String()}
	}
	return nil
}

type loadError struct {
	err error
	out string
}

func (e *loadError) Error() string {
	return "docker save | podman load: " + e.err.Error() + ": " + e.out
}

// assertNothingLeft fails t for any container, network or image tag of
// prefix still in podman.
func assertNothingLeft(t testing.TB, prefix string) {
	t.Helper()
	for _, q := range []struct{ what, args string }{
		{"container", "ps -a --format {{.Names}}"},
		{"network", "network ls --format {{.Name}}"},
		{"image", "images --format {{.Repository}}:{{.Tag}}"},
	} {
		out, err := podmanTry(strings.Fields(q.args)...)
		if err != nil {
			t.Errorf("podman %s: %v: %s", q.args, err, out)
			continue
		}
		for _, name := range strings.Fields(out) {
			if strings.Contains(name, prefix) || strings.Contains(name, strings.ToLower(prefix)) {
				t.Errorf("left behind: %s %s", q.what, name)
			}
		}
	}
}

// podmanTry runs podman and returns its combined output and error.
func podmanTry(args ...string) (string, error) {
	out, err := exec.Command("podman", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// podmanRun runs podman and returns its trimmed stdout, failing t on error.
func podmanRun(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("podman", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String())
}

// pushForPull pushes a one-layer image made here to ref's repository in
// the registry started by runtimetest.LocalRegistry (plain HTTP, the registry API
// spoken directly: no podman push to wait for), so that podman must pull
// it; the tag pulled back and its image are removed when t ends.
func pushForPull(t *testing.T, ref string) {
	t.Helper()
	host, rest, _ := strings.Cut(ref, "/")
	repo, tag, _ := strings.Cut(rest, ":")
	base := "http://" + host + "/v2/" + repo

	// The layer: a tar.gz of one file holding ref (a unique image).
	var tarBuf, gzBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "zaki-pull-check", Mode: 0o644, Size: int64(len(ref))})
	tw.Write([]byte(ref))
	tw.Close()
	gw := gzip.NewWriter(&gzBuf)
	gw.Write(tarBuf.Bytes())
	gw.Close()
	layer := gzBuf.Bytes()
	config, _ := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH, "os": "linux", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(tarBuf.Bytes())}},
	})
	for _, blob := range [][]byte{layer, config} {
		resp := httpDo(t, http.MethodPost, base+"/blobs/uploads/", "", nil, http.StatusAccepted)
		loc, err := url.Parse(base)
		if err == nil {
			loc, err = loc.Parse(resp.Header.Get("Location"))
		}
		if err != nil {
			t.Fatalf("upload location %q: %v", resp.Header.Get("Location"), err)
		}
		q := loc.Query()
		q.Set("digest", digest(blob))
		loc.RawQuery = q.Encode()
		httpDo(t, http.MethodPut, loc.String(), "application/octet-stream", blob, http.StatusCreated)
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": digest(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": digest(layer)}},
	})
	httpDo(t, http.MethodPut, base+"/manifests/"+tag, "application/vnd.docker.distribution.manifest.v2+json", manifest, http.StatusCreated)
	t.Cleanup(func() {
		// Absent unless the pull brought it in.
		if out, err := podmanTry("rmi", ref); err != nil && !strings.Contains(out, "image not known") {
			t.Errorf("cleanup: podman rmi %s: %v: %s", ref, err, out)
		}
	})
}

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// httpDo sends one request to the local registry and fails t unless the
// answer has status want.
func httpDo(t *testing.T, method, u, contentType string, body []byte, want int) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s: %s", method, u, resp.Status, msg)
	}
	return resp
}
