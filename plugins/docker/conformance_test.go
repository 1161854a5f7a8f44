package docker_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// launch starts the real zaki-runtime-docker binary, closed when t ends.
func launch(t testing.TB) *runtime.Plugin { return runtimetest.Launch(t, "docker") }

// suiteConfig is the conformance run against the real plugin and engine:
// the stand-in image (with its probe as exec-form HEALTHCHECK, see
// healthImage), and a pull from a registry on 127.0.0.1 started here.
func suiteConfig(t *testing.T, prefix string, rt func(t *testing.T) runtime.Runtime) runtimetest.Config {
	host := runtimetest.LocalRegistry(t)
	pullRef := host + "/zaki/gateway-stub-pull:" + strings.ToLower(prefix)
	return runtimetest.Config{
		New:        rt,
		Image:      healthImage(t, prefix),
		Engine:     true,
		PullRef:    pullRef,
		PullSetup:  func(t *testing.T) { pushForPull(t, pullRef) },
		NamePrefix: prefix,
		Timeout:    60 * time.Second,
	}
}

// TestConformance runs runtimetest's suite against the real
// zaki-runtime-docker binary launched through runtime.Launch, on the real
// engine, and SIGKILLs the plugin process in the middle (just before the
// suite's first List, after Info ... Batch): the next call must fail with
// ErrUnavailable within a second, the supervisor relaunches the plugin, and
// the rest of the suite (List, Events, Logs, Context, Engine) passes
// against the new process. One run shows both: the suite takes a minute or
// more on a loaded 2-core machine, too long to run twice.
func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the engine checks chown a data dir: run as root")
	}
	t.Parallel()
	prefix := engine(t)
	var k *killer
	runtimetest.Run(t, suiteConfig(t, prefix, func(t *testing.T) runtime.Runtime {
		k = &killer{Plugin: launch(t), t: t}
		return k
	}))
	if k != nil && !k.killed {
		t.Errorf("the suite never called List: the plugin was not killed")
	}
}

// killer is the plugin, killed with SIGKILL just before the first List.
// It reports to the top test's t from the suite's goroutines, so with
// Errorf only.
type killer struct {
	*runtime.Plugin
	t      *testing.T
	once   sync.Once
	killed bool
}

func (k *killer) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	k.once.Do(k.kill)
	return k.Plugin.List(ctx, opts)
}

func (k *killer) kill() {
	t := k.t
	pid := k.Pid()
	if pid == 0 {
		t.Errorf("no plugin process to kill")
		return
	}
	restarts := k.Restarts()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Errorf("kill plugin %d: %v", pid, err)
		return
	}
	k.killed = true

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := k.Info(ctx)
	took := time.Since(start)
	if runtime.Class(err) != runtime.ErrUnavailable {
		t.Errorf("the call after the kill: got %v, want class %v", err, runtime.ErrUnavailable)
	}
	if took > time.Second {
		t.Errorf("the call after the kill took %v, want under a second", took)
	}
	t.Logf("killed plugin %d; the next call failed after %v: %v", pid, took, err)

	select {
	case <-k.Relaunched():
	case <-time.After(30 * time.Second):
		t.Errorf("the plugin was not relaunched within 30 s")
		return
	}
	if k.Restarts() != restarts+1 || k.Pid() == 0 || k.Pid() == pid {
		t.Errorf("after the relaunch: restarts %d (was %d), pid %d (was %d)", k.Restarts(), restarts, k.Pid(), pid)
	}
	if _, err := k.Info(ctx); err != nil {
		t.Errorf("info after the relaunch: %v", err)
	}
}

// ociRuntimeRunsc is gVisor's runtime, as scripts/ensure-runsc.sh
// registers it with the engine.
const ociRuntimeRunsc = "runsc"

// TestConformanceRunsc runs the suite with every container under gVisor
// (ContainerSpec.OCIRuntime "runsc"), which the engine must have
// registered (scripts/ensure-runsc.sh; with ZAKI_REQUIRE_DOCKER=1 a
// missing one fails). make test runs runtimetest.GVisorSubset of it;
// ZAKI_RUNSC_FULL=1 (make faults) runs the whole suite.
func TestConformanceRunsc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the engine checks chown a data dir: run as root")
	}
	testenv.RequireDockerRuntime(t, ociRuntimeRunsc)
	t.Parallel()
	prefix := engine(t)
	cfg := suiteConfig(t, prefix, func(t *testing.T) runtime.Runtime { return launch(t) })
	cfg.OCIRuntime = ociRuntimeRunsc
	cfg.ReadOnlyEACCES = true // gVisor's kernel checks permissions first
	if os.Getenv("ZAKI_RUNSC_FULL") != "1" {
		cfg.Only = runtimetest.GVisorSubset
	}
	runtimetest.Run(t, cfg)
}
