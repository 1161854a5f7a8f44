package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// pauseNow pauses every running instance of the agent that is idle at
// all, through its own pruning (the other rules off for the pass), and
// returns how many it paused.
func (w *world) pauseNow(ctx context.Context) (int, error) {
	tiny, off := 1e-6, 0.0 // minutes
	res, err := w.agent.Client.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &tiny, IdleStopMinutes: &off, IdleHours: &off, MaxAgeDays: &off})
	if err != nil {
		return 0, err
	}
	if len(res.Failed) > 0 {
		return 0, fmt.Errorf("pause: %+v", res.Failed)
	}
	return len(res.Paused), nil
}

// BenchmarkPauseResume: issue 18's pause tier. Two instances; in each of
// ZAKI_BENCH_PAUSE_N rounds (default 20) one is paused (by the agent's
// pause rule) and the other stopped (over the socket), then both are
// ensured over the socket until ready, in a random order:
//
//	resumed  the ensure of the paused one: an unpause and one probe
//	started  the ensure of the stopped one: a start and the gateway's boot
func BenchmarkPauseResume(b *testing.B) {
	w := newWorld(b, worldOptions{})
	ctx := b.Context()
	for _, u := range []string{"paused", "stopped"} {
		if err := w.ensure(ctx, u, "created"); err != nil {
			b.Fatal(err)
		}
	}
	rounds := envInt("ZAKI_BENCH_PAUSE_N", 20)
	samples := map[string]Samples{}
	timed := func(variant string) {
		want := map[string]string{"paused": "resumed", "stopped": "started"}[variant]
		t := time.Now()
		if err := w.ensure(ctx, variant, want); err != nil {
			b.Fatal(err)
		}
		samples[want] = append(samples[want], time.Since(t))
	}
	stop := w.profile("pause")
	for range rounds {
		if _, err := w.agent.Client.Stop(ctx, w.user("a", "stopped")); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond) // idle past the pass's threshold
		if n, err := w.pauseNow(ctx); err != nil || n != 1 {
			b.Fatalf("pause: %d paused, %v", n, err)
		}
		for _, i := range rand.Perm(2) {
			timed([]string{"paused", "stopped"}[i])
		}
	}
	stop()
	b.Logf("agent's own breakdown (mean per call, from /metrics):%s", w.breakdown(ctx))
	for _, v := range []string{"resumed", "started"} {
		report(b, v, latency(samples[v]))
	}
}

// BenchmarkPauseIdleCPU: the CPU (and memory) that ZAKI_BENCH_PAUSE_CPU_N
// idle instances (default 50) use over ZAKI_BENCH_PAUSE_CPU_SECONDS
// (default 10), running and then paused, read from their cgroups
// (cgroup v1: cpuacct.usage, memory.usage_in_bytes).
func BenchmarkPauseIdleCPU(b *testing.B) {
	w := newWorld(b, worldOptions{})
	ctx := b.Context()
	n := envInt("ZAKI_BENCH_PAUSE_CPU_N", 50)
	window := time.Duration(envInt("ZAKI_BENCH_PAUSE_CPU_SECONDS", 10)) * time.Second
	var ids []string
	for i := range n {
		u := fmt.Sprintf("idle%02d", i)
		if err := w.ensure(ctx, u, "created"); err != nil {
			b.Fatal(err)
		}
		in, err := w.agent.Client.Get(ctx, w.user("a", u))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, in.ContainerID)
	}
	measure := func() (cpuMs, memMB float64) {
		before := cgroupSum(b, ids, "cpuacct", "cpuacct.usage")
		time.Sleep(window)
		after := cgroupSum(b, ids, "cpuacct", "cpuacct.usage")
		return float64(after-before) / 1e6, float64(cgroupSum(b, ids, "memory", "memory.usage_in_bytes")) / (1 << 20)
	}
	time.Sleep(2 * time.Second) // past the gateways' start
	runCPU, runMem := measure()
	if p, err := w.pauseNow(ctx); err != nil || p != n {
		b.Fatalf("pause: %d of %d paused, %v", p, n, err)
	}
	pauseCPU, pauseMem := measure()
	report(b, "running", metrics{"cpu-ms": runCPU, "mem-MB": runMem, "instances": float64(n), "window-s": window.Seconds()})
	report(b, "paused", metrics{"cpu-ms": pauseCPU, "mem-MB": pauseMem, "instances": float64(n), "window-s": window.Seconds()})
}

// cgroupSum adds up one cgroup v1 counter of the docker containers ids.
func cgroupSum(b *testing.B, ids []string, controller, file string) int64 {
	b.Helper()
	var sum int64
	for _, id := range ids {
		raw, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "docker", id, file))
		if err != nil {
			b.Skipf("cgroup v1 counters of docker containers not readable: %v", err)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			b.Fatalf("%s of %s: %v", file, id, err)
		}
		sum += v
	}
	return sum
}
