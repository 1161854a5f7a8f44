package docker_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// engine prepares a real-engine test: the engine and the stand-in image,
// and a name prefix unique to the test, checked when the test ends: no
// container, network or image tag whose name holds it may be left.
func engine(t testing.TB) (prefix string) {
	t.Helper()
	testenv.RequireDocker(t)
	testenv.EnsureStubImage(t)
	prefix = testenv.UniqueName("zaki-dkrt")
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() { assertNothingLeft(t, prefix) })
	return prefix
}

// assertNothingLeft fails t for any container, network or image tag of
// prefix still in the engine.
func assertNothingLeft(t testing.TB, prefix string) {
	t.Helper()
	for _, q := range []struct{ what, args string }{
		{"container", "ps -a --format {{.Names}}"},
		{"network", "network ls --format {{.Name}}"},
		{"image", "images --format {{.Repository}}:{{.Tag}}"},
	} {
		for _, name := range strings.Fields(testenv.Docker(t, strings.Fields(q.args)...)) {
			if strings.Contains(name, prefix) {
				t.Errorf("left behind: %s %s", q.what, name)
			}
		}
	}
}

// dockerTry runs docker and returns its combined output and error, for
// cleanups that must not stop at the first failure.
func dockerTry(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// healthImage builds, FROM the stand-in, an image that declares the
// stand-in's probe as its exec-form HEALTHCHECK: the one way the docker
// client can give a shell-less image an exec-form healthcheck (see
// healthcheck.go). It is removed when t ends.
func healthImage(t testing.TB, prefix string) string {
	t.Helper()
	tag := "zaki/gateway-stub-hc:" + strings.ToLower(prefix)
	dockerfile := "FROM " + testenv.StubImage + "\nHEALTHCHECK CMD [\"/gateway-stub\", \"-probe\"]\n"
	cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
	cmd.Stdin = strings.NewReader(dockerfile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker build %s: %v: %s", tag, err, stderr.String())
	}
	t.Cleanup(func() {
		if out, err := dockerTry("rmi", tag); err != nil {
			t.Errorf("cleanup: docker rmi %s: %v: %s", tag, err, out)
		}
	})
	return tag
}

// pushForPull pushes the stand-in to the registry at host as ref's
// repository and removes the tag locally, so that the engine must pull
// it; the tag pulled back is removed when t ends.
func pushForPull(t *testing.T, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) {
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("tag", testenv.StubImage, ref)
	t.Cleanup(func() {
		// Gone already unless the pull brought it back.
		if out, err := dockerTry("rmi", ref); err != nil && !strings.Contains(out, "No such image") {
			t.Errorf("cleanup: docker rmi %s: %v: %s", ref, err, out)
		}
	})
	run("push", ref)
	run("rmi", ref)
}
