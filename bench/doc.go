// Package bench holds the benchmarks of issue 7: zaki-agent against a
// faithful re-creation of the engine it replaces (package
// bench/baseline) and against raw docker floors, with the stand-in
// gateway image on the real engine. `make bench` runs them
// (scripts/bench.sh) and prints them as one table with the targets
// (targets.txt, rendered by internal/benchtab).
//
// The scenarios are Go benchmarks that run once (-benchtime 1x) and
// report what they measured as custom metrics (p50-ms, p99-ms, total-s,
// containers, rss-MB, ...), so that their output is benchstat-comparable:
//
//	BenchmarkHotEnsure          hot ensure over the socket vs the baseline's per-request docker inspect + registry rewrite
//	BenchmarkColdEnsure         cold ensure to ready vs `docker run -d` + the same readiness check, and vs the baseline
//	BenchmarkConcurrent50       50 distinct users at once, total time and container count
//	BenchmarkFleet              one set of 200 running instances: list, start-up to READY, prune vs `docker rm -f`
//	BenchmarkRegistered10k      10,000 registered instances: list, and the agent's RSS
//
// A scenario that breaks (an error, a wrong container count) fails the
// benchmark, and so `make bench`; a target missed is only reported.
// Every container and network a scenario makes carries a name and label
// prefix of its own and is removed when it ends, failed or not.
//
// This file's package also holds the small helpers the scenarios share:
// sample statistics, the sd_notify listener and the raw `docker run` floor.
package bench
