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
//     allocates a few KB a call on a small heap; with a lower GOGC a
//     collection runs every few hundred calls and makes most of the tail of
//     their latency (the measurements are in BENCHMARKS.md, "What was
//     changed").
//   - a soft memory limit that follows the live heap, so that a large
//     registry (most of what is live) does not triple:
//     max(memoryFloor, 1.5 × live + memorySlack), recomputed every second.
//     Up to the floor the limit costs nothing; past it a registry gets
//     GOGC=50's 1.5 × live, never a limit below what is live, so the
//     collector never runs back to back.
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
		// Only a change of more than 1 MiB is applied: each one costs the
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
