package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the agent's GOGC when the environment sets none: the
// heap may grow to 1.5 times what is live instead of Go's 2. The agent's
// live heap is mostly its registry (about 1.5 KB an instance); with 10,000
// instances Go's default let its RSS reach about 55 MB right after
// start-up and 70 MB under list calls, against about 48 MB and 58 MB with
// 50, for a collector that runs a little more often (BenchmarkRegistered10k
// in package bench; BENCHMARKS.md). GOGC in the environment still wins.
const defaultGCPercent = 50

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
