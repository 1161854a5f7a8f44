package podman_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

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
	runtimetest.Run(t, suiteConfig(t, prefix))
}

// suiteConfig is the conformance run against the plugin launched with env.
func suiteConfig(t *testing.T, prefix string, env ...string) runtimetest.Config {
	host := runtimetest.LocalRegistry(t)
	pullRef := host + "/zaki/gateway-stub-pull:" + strings.ToLower(prefix)
	return runtimetest.Config{
		New:        func(t *testing.T) runtime.Runtime { return runtimetest.Launch(t, "podman", env...) },
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
	}
}

// TestConformanceRunsc runs the suite with every container under gVisor
// (ContainerSpec.OCIRuntime "runsc"), as docker's TestConformanceRunsc
// does (a subset unless ZAKI_RUNSC_FULL=1). Podman keeps no runtime
// arguments per container, and runsc needs --network=host at every start
// (see the README), so "runsc" is registered here, for the plugin alone,
// as a wrapper script that adds it (a containers.conf of its own,
// CONTAINERS_CONF). Without /usr/bin/runsc it skips, or fails when
// ZAKI_REQUIRE_DOCKER=1 (scripts/ensure-runsc.sh installs it).
func TestConformanceRunsc(t *testing.T) {
	prefix := engine(t)
	if _, err := os.Stat("/usr/bin/runsc"); err != nil {
		if os.Getenv("ZAKI_REQUIRE_DOCKER") == "1" {
			t.Fatalf("ZAKI_REQUIRE_DOCKER=1 but runsc is missing: %v (run scripts/ensure-runsc.sh)", err)
		}
		t.Skipf("no runsc: %v (run scripts/ensure-runsc.sh)", err)
	}
	t.Parallel()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "runsc-host")
	conf := filepath.Join(dir, "containers.conf")
	assert.NilError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\nexec /usr/bin/runsc --network=host \"$@\"\n"), 0o755))
	assert.NilError(t, os.WriteFile(conf, []byte("[engine.runtimes]\nrunsc = [\""+wrapper+"\"]\n"), 0o644))
	cfg := suiteConfig(t, prefix, "CONTAINERS_CONF="+conf)
	cfg.OCIRuntime = "runsc"
	cfg.ReadOnlyEACCES = true // gVisor's kernel checks permissions first
	if os.Getenv("ZAKI_RUNSC_FULL") != "1" {
		cfg.Only = runtimetest.GVisorSubset
	}
	runtimetest.Run(t, cfg)
}
