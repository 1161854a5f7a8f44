package runtime_test

import (
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// fakePullRef is a reference the fake can pull, absent from it at start.
const fakePullRef = "127.0.0.1:5000/zaki/gateway-stub:pull"

// TestConformanceThroughShim runs the engine-independent conformance suite
// against the fake, in-process, through the gRPC client and server shims:
// whatever the fake passes on its own, it passes across the boundary. Its
// containers ask for the OCI runtime "runsc" (which the fake knows), so
// that the runtime's name crosses it both ways.
func TestConformanceThroughShim(t *testing.T) {
	runtimetest.Run(t, runtimetest.Config{
		New: func(t *testing.T) runtime.Runtime {
			rt, _ := shim(t, runtimetest.NewFake(runtimetest.WithPullable(fakePullRef)))
			return rt
		},
		Image:      testenv.StubImage,
		PullRef:    fakePullRef,
		Timeout:    10 * time.Second,
		OCIRuntime: "runsc",
	})
}

// TestConformanceThroughPlugin runs it against the zaki-runtime-fake
// binary, launched and supervised by Launch.
func TestConformanceThroughPlugin(t *testing.T) {
	runtimetest.Run(t, runtimetest.Config{
		New: func(t *testing.T) runtime.Runtime {
			p, _ := launchFake(t, runtime.PluginConfig{Env: []string{"ZAKI_FAKE_PULLABLE=" + fakePullRef}})
			return p
		},
		Image:   testenv.StubImage,
		PullRef: fakePullRef,
		Timeout: 10 * time.Second,
	})
}
