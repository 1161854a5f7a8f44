package agent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// The agent's hot paths in process, over the in-memory runtime (no engine,
// no socket): what the agent itself adds to a call. Compare runs with
// benchstat:
//
//	go test -run '^$' -bench . -count 10 ./agent/ > new.txt

// benchAgent is an agent over a new fake, ready, with probes that always
// succeed.
func benchAgent(b *testing.B) *Agent {
	b.Helper()
	cfg := DefaultConfig()
	stateDir := b.TempDir()
	cfg.Instance.Image = testenv.StubImage
	cfg.Instance.AllowedImages = []string{"zaki/*"}
	cfg.Instance.PortRange = "20000-30999"
	reg, err := registry.Open(stateDir, registry.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(cfg, runtimetest.NewFake(), reg, Options{StateDir: stateDir})
	if err != nil {
		b.Fatal(err)
	}
	a.probe = func(context.Context, string) error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; reg.Close() })
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		b.Fatal("agent not ready within 10s")
	}
	return a
}

var benchSpec = InstanceSpec{Env: map[string]string{"OPENCLAW_GATEWAY_TOKEN": "bench-token-not-a-secret"}}

// BenchmarkEnsureHot is the hot ensure: running, config unchanged.
func BenchmarkEnsureHot(b *testing.B) {
	a := benchAgent(b)
	ctx := context.Background()
	if _, err := a.Ensure(ctx, "hot", benchSpec, EnsureOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		in, err := a.Ensure(ctx, "hot", benchSpec, EnsureOptions{})
		if err != nil || in.Outcome != OutcomeReused {
			b.Fatalf("ensure: %v (outcome %q)", err, in.Outcome)
		}
	}
}

// BenchmarkEnsureHotParallel is the hot ensure of 64 users from all Ps at
// once: contention on the agent's locks and the registry.
func BenchmarkEnsureHotParallel(b *testing.B) {
	a := benchAgent(b)
	ctx := context.Background()
	const users = 64
	for i := range users {
		if _, err := a.Ensure(ctx, fmt.Sprintf("hot%d", i), benchSpec, EnsureOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := a.Ensure(ctx, fmt.Sprintf("hot%d", i%users), benchSpec, EnsureOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkList lists 200 and 10,000 registered instances (entries
// without containers).
func BenchmarkList(b *testing.B) {
	for _, n := range []int{200, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			a := benchAgent(b)
			seedRegistry(b, a.reg, n)
			b.ReportAllocs()
			for b.Loop() {
				ins, err := a.List(context.Background(), "")
				if err != nil || len(ins) != n {
					b.Fatalf("list: %d, %v", len(ins), err)
				}
			}
		})
	}
}

// seedRegistry registers n instances without containers.
func seedRegistry(b *testing.B, reg *registry.Registry, n int) {
	b.Helper()
	now := time.Now().UnixMilli()
	recs := make([]registry.Record, n)
	for i := range recs {
		u := fmt.Sprintf("r%05d", i)
		recs[i] = registry.Record{UserID: u, ContainerName: containerName(u), ContainerID: fmt.Sprintf("%064x", i),
			Image: testenv.StubImage, Port: 20000 + i, ConfigHash: fmt.Sprintf("v1:%032x", i), HashVersion: 1,
			State: StateMissing, Labels: map[string]string{"plan": "pro"}, CreatedAtMs: now, LastUsedAtMs: now}
	}
	if err := reg.Put(recs...); err != nil {
		b.Fatal(err)
	}
}
