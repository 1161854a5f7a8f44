package runtime_test

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
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
	spec.Placement = runtime.Placement{} // the plain fake has no nodes
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
// Launch's supervisor, over mutual TLS with the launch's keys.
func BenchmarkInspectPlugin(b *testing.B) {
	p, _ := launchFake(b, runtime.PluginConfig{})
	benchInspect(b, p)
}

// BenchmarkLaunch times Launch of the zaki-runtime-fake process: start,
// go-plugin's handshake, the TLS handshake and a first call (Launch makes
// one), until Launch returns; Close is not timed. The variants: automtls,
// go-plugin's AutoMTLS (a P-521 key made by each side, the agent's path
// before the launch keys: the baseline), and launch-keys, P-256 keys made
// by the agent and handed over on a pipe (plugin_tls.go). agent- and
// plugin-cpu-ms/op are the CPU of each side per launch and close (Close
// included: it is the same on both paths), which is what a loaded machine
// multiplies.
//
//	go test -run '^$' -bench Launch -benchtime 20x ./runtime/
func BenchmarkLaunch(b *testing.B) {
	bin := testenv.Binary(b, "zaki-runtime-fake")
	for _, v := range []struct {
		name string
		cfg  runtime.PluginConfig
	}{
		{"automtls", runtime.WithAutoMTLS(runtime.PluginConfig{})},
		{"launch-keys", runtime.PluginConfig{}},
	} {
		b.Run(v.name, func(b *testing.B) {
			cfg := v.cfg
			cfg.Name, cfg.Path, cfg.Logger = "fake", bin, slog.New(slog.DiscardHandler)
			ctx := context.Background()
			agent0, plugin0 := cpuTime()
			for b.Loop() {
				p, err := runtime.Launch(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				p.Close()
				b.StartTimer()
			}
			agent1, plugin1 := cpuTime()
			perOp := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
			b.ReportMetric(perOp(agent1-agent0), "agent-cpu-ms/op")
			b.ReportMetric(perOp(plugin1-plugin0), "plugin-cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time, user and system, of this process, and of its
// children that have been waited for (the plugins closed).
func cpuTime() (self, children time.Duration) {
	cpu := func(who int) time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(who, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return cpu(syscall.RUSAGE_SELF), cpu(syscall.RUSAGE_CHILDREN)
}
