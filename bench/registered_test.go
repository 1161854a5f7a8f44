package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/bench/baseline"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// BenchmarkRegistered10k: scenarios 4 (second half) and 7. The agent starts
// on a state dir whose registry.json holds ZAKI_BENCH_REGISTERED entries
// (default 10,000) without containers (written with package registry
// before the start, as an agent that outlived its containers would have
// left it; they reconcile to "missing"):
//
//	list  GET /v1/instances over the socket, p50/p99 of ZAKI_BENCH_LIST10K_N
//	      calls (default 200), the body read whole; baseline: its List over
//	      a registry.json of the same 10,000 entries (and one docker ps)
//	rss   the agent's VmRSS from /proc/<pid>/status after start-up and one
//	      list call, and its VmHWM (peak) after all the list calls
func BenchmarkRegistered10k(b *testing.B) {
	n := envInt("ZAKI_BENCH_REGISTERED", 10000)
	stateDir := b.TempDir()
	reg, err := registry.Open(stateDir, registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	recs := make([]registry.Record, n)
	entries := make([]baseline.Entry, n)
	for i := range recs {
		user := fmt.Sprintf("r%05d", i)
		id := sha256.Sum256([]byte(user))
		recs[i] = registry.Record{
			UserID: user, ContainerName: baseline.ContainerName(user), ContainerID: hex.EncodeToString(id[:]),
			Image: testenv.StubImage, Port: 18790 + i, ConfigHash: "v1:" + hex.EncodeToString(id[:16]), HashVersion: 1,
			State: "missing", Labels: map[string]string{"plan": "pro"}, CreatedAtMs: now, LastUsedAtMs: now,
		}
		entries[i] = baseline.Entry{ContainerName: recs[i].ContainerName, UserID: user, CreatedAtMs: now, LastUsedAtMs: now,
			Port: recs[i].Port, Image: recs[i].Image, ConfigHash: recs[i].ConfigHash}
	}
	if err := reg.Put(recs...); err != nil {
		b.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		b.Fatal(err)
	}

	w := newWorld(b, worldOptions{stateDir: stateDir, portRange: fmt.Sprintf("18790-%d", 18790+n-1)})
	w.keepStartup("startup")
	ctx := b.Context()
	ins, err := w.agent.Client.List(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	if len(ins) != n {
		b.Fatalf("list: %d instances, want %d", len(ins), n)
	}
	pid := w.agent.Pid()
	rss, err := vmKB(pid, "VmRSS")
	if err != nil {
		b.Fatal(err)
	}

	lb, err := baseline.New(baseline.Config{Dir: filepath.Join(w.dir, "list-baseline"), Agent: w.cfg})
	if err != nil {
		b.Fatal(err)
	}
	if err := lb.WriteRegistry(entries); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: socketapi.NewTransport(w.agent.Socket)}
	defer hc.CloseIdleConnections()
	stop := w.profile("list")
	la, lbs := listBoth(b, ctx, hc, lb, n, envInt("ZAKI_BENCH_LIST10K_N", 200))
	stop()
	hwm, err := vmKB(pid, "VmHWM")
	if err != nil {
		b.Fatal(err)
	}

	b.Run("list", func(b *testing.B) {
		report(b, "zaki-agent", latency(la))
		report(b, "baseline", latency(lbs))
	})
	b.Run("rss", func(b *testing.B) {
		report(b, "zaki-agent", metrics{"rss-MB": float64(rss) / 1024, "hwm-MB": float64(hwm) / 1024})
	})
}
