package runtime_test

import (
	"context"
	"testing"

	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// The cost of a call across the plugin boundary, Inspect of one container
// (a full Container with its spec), against the fake:
//
//	go test -run - -bench . ./runtime/

func benchInspect(b *testing.B, rt runtime.Runtime) {
	ctx := context.Background()
	if err := rt.EnsureNetwork(ctx, runtime.NetworkSpec{Name: "zaki", DisableICC: true}); err != nil {
		b.Fatal(err)
	}
	spec := fullSpec()
	spec.Image = "zaki/gateway-stub:latest"
	spec.Security.SeccompProfile = ""
	spec.Security.ApparmorProfile = ""
	spec.Mounts = nil
	id, err := rt.Create(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := rt.Inspect(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInspectDirect calls the fake directly: the baseline.
func BenchmarkInspectDirect(b *testing.B) {
	benchInspect(b, runtimetest.NewFake())
}

// BenchmarkInspectShim goes through the gRPC shims in-process.
func BenchmarkInspectShim(b *testing.B) {
	rt, _ := shim(b, runtimetest.NewFake())
	benchInspect(b, rt)
}

// BenchmarkInspectPlugin goes to the zaki-runtime-fake process through
// Launch's supervisor, over AutoMTLS.
func BenchmarkInspectPlugin(b *testing.B) {
	p, _ := launchFake(b, runtime.PluginConfig{})
	benchInspect(b, p)
}
