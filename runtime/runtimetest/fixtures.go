package runtimetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// FullSpec is a spec with every field set, its values chosen to trip a
// client that reads them as options ("-v=/:/host,x", "$(x)"), its Env
// holding secrets that must never reach argv. The plugins pin their create
// argv for it in golden files.
func FullSpec() runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:   "zaki-user-u1",
		Image:  "zaki/gateway-stub:latest",
		Cmd:    []string{"-addr", ":18789", "--not-an-engine-flag", "$(x)"},
		Env:    map[string]string{"SECRET": "s3cr3t value", "OTHER": "other-secret-value"},
		Labels: map[string]string{"zaki.userId": "u1", "zaki.instance": "1", "odd": "-v=/:/host,x"},
		User:   "1000:1000",
		Init:   true,
		Resources: runtime.Resources{
			CPUs: 1.5, CPUShares: 512, Memory: "2g", MemorySwap: "2g", PidsLimit: 100,
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 512, Hard: 1024}},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}, {Path: "/run"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
			SeccompProfile:  "/etc/zaki/seccomp.json",
			ApparmorProfile: "docker-default",
		},
		Restart: runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network: "zaki",
		Ports: []runtime.PortBinding{
			{HostIP: "127.0.0.1", HostPort: 18790, ContainerPort: 18789},
			{HostIP: "::1", HostPort: 18790, ContainerPort: 18789, Protocol: "udp"},
		},
		Mounts: []runtime.Mount{{Source: "/var/lib/zaki-agent/instances/u1", Target: "/home/node/.openclaw"}, {Source: "/etc/ssl", Target: "/etc/ssl", ReadOnly: true}},
		Healthcheck: &runtime.Healthcheck{
			Test: []string{"/gateway-stub", "-probe"}, Interval: 30 * time.Second, Timeout: 3 * time.Second,
			StartPeriod: 1500 * time.Millisecond, Retries: 3,
		},
		StopTimeout: 2500 * time.Millisecond,
		Log:         runtime.LogConfig{MaxSize: "10m", MaxFiles: 3},
		OCIRuntime:  "runsc",
	}
}

// sampleClasses maps the prefix of a stderr sample's file name to the
// error class its classifier must find.
var sampleClasses = map[string]error{
	"notfound":    runtime.ErrNotFound,
	"exists":      runtime.ErrAlreadyExists,
	"invalid":     runtime.ErrInvalidArgument,
	"unavailable": runtime.ErrUnavailable,
	"none":        nil,
}

// ClassifySamples runs classify over a client's real error output kept in
// testdata/stderr/<class>_<what>.txt (class: notfound, exists, invalid,
// unavailable or none), one subtest a sample, and wants at least min
// samples. Empty and unknown text must classify as nil.
func ClassifySamples(t *testing.T, classify func(stderr string) error, min int) {
	t.Helper()
	files, err := filepath.Glob("testdata/stderr/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < min {
		t.Fatalf("stderr samples: got %d, want at least %d", len(files), min)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			prefix, _, _ := strings.Cut(name, "_")
			class, ok := sampleClasses[prefix]
			if !ok {
				t.Fatalf("sample %s: unknown class prefix %q", f, prefix)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := classify(string(b)); got != class {
				t.Errorf("classify %s: got %v, want %v; stderr: %s", f, got, class, b)
			}
		})
	}
	for _, s := range []string{"", "something else entirely"} {
		if got := classify(s); got != nil {
			t.Errorf("classify %q: got %v, want nil", s, got)
		}
	}
}
