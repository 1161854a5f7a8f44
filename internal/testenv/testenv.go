// Package testenv gives tests what they need from this machine: a Docker
// engine (skipped when absent, a failure when ZAKI_REQUIRE_DOCKER=1), the
// project's binaries built once per test process, and the gateway stand-in
// image built locally. Nothing here pulls from a public registry.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StubImage is the locally built stand-in for the OpenClaw gateway.
const StubImage = "zaki/gateway-stub:latest"

// Module is the Go module path of this project.
const Module = "github.com/zaki-platform/zaki-agent"

// Binaries maps each binary to its main package.
var Binaries = map[string]string{
	"zaki-agent":          Module + "/agent/cmd/zaki-agent",
	"zakictl":             Module + "/socketapi/cmd/zakictl",
	"zaki-runtime-docker": Module + "/plugins/docker/cmd/zaki-runtime-docker",
	"zaki-runtime-podman": Module + "/plugins/podman/cmd/zaki-runtime-podman",
	"zaki-runtime-swarm":  Module + "/plugins/swarm/cmd/zaki-runtime-swarm",
	"gateway-stub":        Module + "/runtime/runtimetest/gateway-stub",
	"zaki-runtime-fake":   Module + "/runtime/runtimetest/zaki-runtime-fake",
}

// RequireDocker skips t when no Docker engine answers, or fails it when
// ZAKI_REQUIRE_DOCKER=1.
func RequireDocker(t testing.TB) {
	t.Helper()
	if err := dockerErr(); err != nil {
		if os.Getenv("ZAKI_REQUIRE_DOCKER") == "1" {
			t.Fatalf("ZAKI_REQUIRE_DOCKER=1 but no Docker engine answers: %v (run scripts/ensure-docker.sh)", err)
		}
		t.Skipf("no Docker engine: %v (run scripts/ensure-docker.sh, or make test)", err)
	}
}

// RequireDockerRuntime is RequireDocker, and also skips t (or fails it
// when ZAKI_REQUIRE_DOCKER=1) when the engine does not list the OCI
// runtime name (`docker info`'s Runtimes): scripts/ensure-runsc.sh
// registers "runsc" (gVisor).
func RequireDockerRuntime(t testing.TB, name string) {
	t.Helper()
	RequireDocker(t)
	var runtimes map[string]json.RawMessage
	out := Docker(t, "info", "--format", "{{json .Runtimes}}")
	if err := json.Unmarshal([]byte(out), &runtimes); err != nil {
		t.Fatalf("docker info: runtimes %q: %v", out, err)
	}
	if _, ok := runtimes[name]; !ok {
		if os.Getenv("ZAKI_REQUIRE_DOCKER") == "1" {
			t.Fatalf("ZAKI_REQUIRE_DOCKER=1 but the engine has no OCI runtime %q (run scripts/ensure-runsc.sh)", name)
		}
		t.Skipf("the engine has no OCI runtime %q (run scripts/ensure-runsc.sh, or make test)", name)
	}
}

var (
	dockerOnce sync.Once
	dockerRes  error
)

func dockerErr() error {
	dockerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			dockerRes = fmt.Errorf("docker info: %v: %s", err, bytes.TrimSpace(out))
		}
	})
	return dockerRes
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// Binary returns the path of one of Binaries, built (static, CGO off) once
// per test process. ZAKI_BIN_DIR, when set (make test sets it), is used
// as it is when it holds the binary.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := BinaryErr(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BinaryErr is Binary for callers without a testing.TB (TestMain).
func BinaryErr(name string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	if dir := os.Getenv("ZAKI_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			built[name] = p
			return p, nil
		}
	}
	pkg, ok := Binaries[name]
	if !ok {
		return "", fmt.Errorf("testenv: unknown binary %q", name)
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "zaki-testbin-")
		if err != nil {
			return "", err
		}
		buildDir = d
	}
	p := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", p, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	built[name] = p
	return p, nil
}

var (
	imageOnce sync.Once
	imageRes  error
)

// EnsureStubImage builds StubImage unless the engine has it already, with
// -exec (ZAKI_REBUILD_STUB=1 forces a build). It needs RequireDocker first.
func EnsureStubImage(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() { imageRes = buildStubImage() })
	if imageRes != nil {
		t.Fatal(imageRes)
	}
	return StubImage
}

func buildStubImage() error {
	if os.Getenv("ZAKI_REBUILD_STUB") != "1" {
		// An image whose stand-in does not know -exec is an older one.
		out, err := exec.Command("docker", "run", "--rm", "--network", "none", "--entrypoint", "/gateway-stub", StubImage, "-exec", "echo", "ok").Output()
		if err == nil && strings.TrimSpace(string(out)) == "ok" {
			return nil
		}
	}
	bin, err := BinaryErr("gateway-stub")
	if err != nil {
		return err
	}
	ctxDir, err := os.MkdirTemp("", "zaki-stub-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "gateway-stub"), b, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(stubDockerfile()), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("docker", "build", "-q", "-t", StubImage, ctxDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker build %s: %v\n%s", StubImage, err, out)
	}
	return nil
}

// stubDockerfile reads the Dockerfile kept beside the stand-in's source.
func stubDockerfile() string {
	_, file, _, _ := goruntime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	b, err := os.ReadFile(filepath.Join(root, "runtime", "runtimetest", "gateway-stub", "Dockerfile"))
	if err != nil {
		return "FROM scratch\nCOPY gateway-stub /gateway-stub\nEXPOSE 18789\nHEALTHCHECK CMD [\"/gateway-stub\", \"-probe\"]\nENTRYPOINT [\"/gateway-stub\"]\n"
	}
	return string(b)
}

// RepoRoot returns the root of this repository.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Docker runs the docker CLI and returns its trimmed stdout, failing t on error.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String())
}

// UniqueName returns a name unique to this test run, for containers and
// networks a test creates (and must remove).
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1e9)
}

// ClosedPort is a loopback TCP port on which a connect is refused until
// the test ends: the port is bound by a socket that never listens, so no
// other process or test can take it meanwhile (a listener closed after
// reading its port gives no such promise).
func ClosedPort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("a socket for a closed port: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("binding a closed port: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("the closed port's address: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
