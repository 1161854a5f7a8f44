package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The agent's garbage collector policy when the environment sets neither
// GOGC nor GOMEMLIMIT (either one hands the policy back to Go):
//
//   - GOGC=200: the heap may grow to three times what is live before a
//     collection. The hot path (an ensure answered from memory, a touch)
//     allocates a few KB a call on a heap of a few MB; with Go's default,
//     and more so with 50, a collection ran every one or two hundred calls
//     and was most of the tail of their latency (p99 of a hot ensure over
//     the socket: 1.3-1.6 ms with 50, 0.97-1.01 ms with 100, 0.78 ms with
//     200; BenchmarkHotEnsure in package bench, 3 runs each).
//   - a soft memory limit that follows the live heap, so that a large
//     registry (mostly what is live: about 1.5 KB an instance) does not
//     triple: max(memoryFloor, 1.5 × live + memorySlack), recomputed
//     every second. With 10,000 instances (about 20 MB live) the limit is
//     the floor and the agent's RSS stays under 60 MB (BenchmarkRegistered10k);
//     a registry past the floor gets GOGC=50's 1.5 × live, never a limit
//     below what is live, so the collector never runs back to back.
const (
	gcPercent    = 200
	memoryFloor  = 40 << 20
	memorySlack  = 8 << 20
	limitRefresh = time.Second
)

// memoryLimit is the soft limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	return max(memoryFloor, int64(live+live/2)+memorySlack)
}

// tuneGC applies the policy above, unless the environment sets GOGC or
// GOMEMLIMIT. It starts a goroutine that lives as long as the process.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := int64(-1)
	adjust := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		// Only a change of more than 1 MB is applied: each one costs the
		// runtime a recomputation of its pacing.
		if l := memoryLimit(sample[0].Value.Uint64()); l-set > 1<<20 || set-l > 1<<20 {
			debug.SetMemoryLimit(l)
			set = l
		}
	}
	adjust()
	go func() {
		for range time.Tick(limitRefresh) {
			adjust()
		}
	}()
}
