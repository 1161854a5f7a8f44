package bench

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/bench/baseline"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// BenchmarkFleet: scenarios 4 (first half), 5 and 6 on one set of
// ZAKI_BENCH_FLEET running instances (default 200), made once through the
// agent (8 at a time):
//
//	list      GET /v1/instances over the socket, p50/p99 of
//	          ZAKI_BENCH_LIST_N calls (default 500), the body read whole;
//	          baseline: its List (registry.json of the same 200 users and
//	          one `docker ps` of the same 200 containers), interleaved
//	startup   SIGTERM the agent, start it again with NOTIFY_SOCKET on a
//	          socket this benchmark listens on, time from exec to READY=1
//	          (the plugin's launch; the reconciliation of the 200 runs after
//	          it, and is reported apart), over
//	          ZAKI_BENCH_STARTUP_N restarts (default 5); reference: the
//	          engine work any reconciliation needs, one `docker ps` and one
//	          `docker inspect` of the 200
//	prune     POST /v1/prune {"idleHours": 0.0001} removing all 200 idle
//	          instances; floor: the same number of containers of the
//	          identical spec, made with raw docker run afterwards (so that
//	          both run with 200 containers up), removed with one batched
//	          `docker rm -f`
func BenchmarkFleet(b *testing.B) {
	n := envInt("ZAKI_BENCH_FLEET", 200)
	sock, err := ListenNotify(filepath.Join(b.TempDir(), "notify.sock"))
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	w := newWorld(b, worldOptions{env: []string{"NOTIFY_SOCKET=" + sock.Path}, noWait: true})
	if _, err := sock.WaitReady(withTimeout(b, time.Minute)); err != nil {
		b.Fatalf("%v\n%s", err, w.agent.Log())
	}
	w.agent.WaitReady(time.Minute)
	ctx := b.Context()

	name := func(i int) string { return fmt.Sprintf("f%03d", i) }
	t := time.Now()
	if err := parallel(n, 8, func(i int) error { return w.ensure(ctx, name(i), "created") }); err != nil {
		b.Fatal(err)
	}
	b.Logf("made %d instances through the agent in %v", n, time.Since(t))
	if got := len(w.agentContainers()); got != n {
		b.Fatalf("%d containers, want %d", got, n)
	}

	// list: the agent against the baseline over the same users and containers.
	hc := &http.Client{Transport: socketapi.NewTransport(w.agent.Socket)}
	defer hc.CloseIdleConnections()
	ins, err := w.agent.Client.List(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]baseline.Entry, 0, len(ins))
	for _, in := range ins {
		if in.State != "running" {
			b.Fatalf("instance %s is %s, want running", in.UserID, in.State)
		}
		entries = append(entries, baseline.Entry{ContainerName: in.ContainerName, UserID: in.UserID, CreatedAtMs: in.CreatedAtMs,
			LastUsedAtMs: in.LastUsedAtMs, Port: in.Port, Image: in.Image, ConfigHash: in.ConfigHash})
	}
	if len(ins) != n {
		b.Fatalf("list: %d instances, want %d", len(ins), n)
	}
	lb, err := baseline.New(baseline.Config{Dir: filepath.Join(w.dir, "list-baseline"), Agent: w.cfg})
	if err != nil {
		b.Fatal(err)
	}
	if err := lb.WriteRegistry(entries); err != nil {
		b.Fatal(err)
	}
	stop := w.profile("list")
	la, lbs := listBoth(b, ctx, hc, lb, n, envInt("ZAKI_BENCH_LIST_N", 500))
	stop()

	// startup: restarts until READY, against docker ps + inspect.
	var st, sr, splug, srec Samples
	for i := range envInt("ZAKI_BENCH_STARTUP_N", 5) {
		t := time.Now()
		ids, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label="+w.cfg.Instance.LabelPrefix+".instance=1").Output()
		if err == nil {
			err = exec.Command("docker", append([]string{"inspect", "--type=container", "--format", "{{json .}}"}, strings.Fields(string(ids))...)...).Run()
		}
		if err != nil {
			b.Fatalf("docker ps + inspect: %v", err)
		}
		sr = append(sr, time.Since(t))

		w.agent.Stop()
		sock.Drain()
		t = time.Now()
		w.agent.Start()
		at, err := sock.WaitReady(withTimeout(b, time.Minute))
		if err != nil {
			b.Fatalf("%v\n%s", err, w.agent.Log())
		}
		st = append(st, at.Sub(t))
		w.keepStartup(fmt.Sprintf("startup-%d", i+1))
		w.agent.WaitReady(time.Minute)
		waitReconciled(b, w.agent.Client)
		plug, rec, err := startupParts(w.agent.Log())
		if err != nil {
			b.Fatal(err)
		}
		splug, srec = append(splug, plug), append(srec, rec)
		if h, err := w.agent.Client.Health(ctx); err != nil || h.Counts.Running != n {
			b.Fatalf("after start-up: health %+v, %v: want %d running", h.Counts, err, n)
		}
	}

	// prune: the agent removes its 200; then 200 raw containers, one rm -f.
	time.Sleep(time.Second) // idle > 0.36 s
	idle := 0.0001
	stop = w.profile("prune")
	t = time.Now()
	res, err := w.agent.Client.Prune(ctx, socketapi.PruneRequest{IdleHours: &idle})
	pa := time.Since(t)
	stop()
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Removed) != n || len(res.Failed) != 0 {
		b.Fatalf("prune removed %d, failed %d, want %d removed", len(res.Removed), len(res.Failed), n)
	}
	if left := w.agentContainers(); len(left) != 0 {
		b.Fatalf("%d containers left after prune", len(left))
	}
	t = time.Now()
	if err := parallel(n, 8, func(i int) error { return w.floorRun(ctx, name(i), i) }); err != nil {
		b.Fatal(err)
	}
	b.Logf("made %d raw containers in %v", n, time.Since(t))
	ids := w.containers(w.prefix)
	if len(ids) != n {
		b.Fatalf("%d raw containers, want %d", len(ids), n)
	}
	t = time.Now()
	w.removeAll(ids)
	pr := time.Since(t)
	if left := w.containers(w.prefix); len(left) != 0 {
		b.Fatalf("%d raw containers left after docker rm -f", len(left))
	}

	b.Run("list", func(b *testing.B) {
		report(b, "zaki-agent", latency(la))
		report(b, "baseline", latency(lbs))
	})
	b.Run("startup", func(b *testing.B) {
		report(b, "zaki-agent", metrics{"ready-ms": Ms(st.Percentile(50)), "max-ms": Ms(st.Percentile(100)), "samples": float64(len(st)),
			"plugin-ms": Ms(splug.Percentile(50)), "reconcile-ms": Ms(srec.Percentile(50))})
		// The reference is the engine work of a reconciliation: it stands
		// beside the whole start-up and beside the agent's reconciliation.
		report(b, "docker-ps-inspect", metrics{"ready-ms": Ms(sr.Percentile(50)), "max-ms": Ms(sr.Percentile(100)), "samples": float64(len(sr)),
			"reconcile-ms": Ms(sr.Percentile(50))})
	})
	b.Run("prune", func(b *testing.B) {
		report(b, "zaki-agent", metrics{"total-ms": Ms(pa), "removed": float64(len(res.Removed))})
		report(b, "docker-rm", metrics{"total-ms": Ms(pr), "removed": float64(len(ids))})
	})
}

// listBoth times nA agent lists over hc and nA/10 baseline lists,
// interleaved, each checked for n instances.
func listBoth(b *testing.B, ctx context.Context, hc *http.Client, lb *baseline.Engine, n, nA int) (agent, base Samples) {
	b.Helper()
	nB := max(nA/10, 5)
	per := max(nA/nB, 1)
	for range 5 { // warm
		if _, err := rawGet(ctx, hc, "/v1/instances"); err != nil {
			b.Fatal(err)
		}
	}
	for range nB {
		t := time.Now()
		ins, err := lb.List(ctx)
		base = append(base, time.Since(t))
		if err != nil || len(ins) != n {
			b.Fatalf("baseline list: %d instances, %v; want %d", len(ins), err, n)
		}
		for range per {
			t := time.Now()
			size, err := rawGet(ctx, hc, "/v1/instances")
			agent = append(agent, time.Since(t))
			if err != nil || size < n*100 {
				b.Fatalf("agent list: %d bytes, %v", size, err)
			}
		}
	}
	return agent, base
}

// startupParts reads the plugin launch from the last "zaki-agent ready"
// line of an agent's log, and the first reconciliation (which runs after
// READY=1, in the background) from the last "reconciled" line.
func startupParts(log string) (plugin, reconcile time.Duration, err error) {
	field := func(msg, key string) (time.Duration, error) {
		i := strings.LastIndex(log, "msg="+msg+" ")
		if i < 0 {
			return 0, fmt.Errorf("no %s line in the agent's log:\n%s", msg, log)
		}
		line, _, _ := strings.Cut(log[i:], "\n")
		for f := range strings.FieldsSeq(line) {
			if k, v, _ := strings.Cut(f, "="); k == key {
				return time.ParseDuration(v)
			}
		}
		return 0, fmt.Errorf("line %q: no %s", line, key)
	}
	if plugin, err = field(`"zaki-agent ready"`, "plugin"); err != nil {
		return 0, 0, err
	}
	reconcile, err = field("reconciled", "took")
	return plugin, reconcile, err
}

// waitReconciled waits until the agent's first reconciliation is done
// (its health says ready).
func waitReconciled(b *testing.B, c *socketapi.Client) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h, err := c.Health(b.Context())
		if err == nil && h.Agent.Ready {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not reconciled within a minute: %+v %v", h.Agent, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withTimeout is the benchmark's context bounded by d.
func withTimeout(b *testing.B, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(b.Context(), d)
	b.Cleanup(cancel)
	return ctx
}
