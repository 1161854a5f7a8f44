package podman_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// TestConformance runs runtimetest's suite, unchanged and with every
// check on (Engine included), against the real zaki-runtime-podman
// binary launched through runtime.Launch, on this machine's podman: the
// stand-in by its short name (resolved in podman's own store, never at a
// registry), and a pull from a plain-HTTP registry on 127.0.0.1 started
// here. Its full-spec containers run as their own uid (Config.User).
func TestConformance(t *testing.T) {
	prefix := engine(t)
	t.Parallel()
	host := runtimetest.LocalRegistry(t)
	pullRef := host + "/zaki/gateway-stub-pull:" + strings.ToLower(prefix)
	runtimetest.Run(t, runtimetest.Config{
		New:        func(t *testing.T) runtime.Runtime { return runtimetest.Launch(t, "podman") },
		Image:      testenv.StubImage,
		Engine:     true,
		PullRef:    pullRef,
		PullSetup:  func(t *testing.T) { pushForPull(t, pullRef) },
		NamePrefix: prefix,
		// Not the default 1000: RLIMIT_NPROC (the full spec's nproc
		// 512:1024) counts the threads of a uid across the host, and other
		// tests' containers run as 1000 (see agentUser).
		User:          "20780:20780",
		Timeout:       60 * time.Second,
		SingleLogFile: true,
	})
}
