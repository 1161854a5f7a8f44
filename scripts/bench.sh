#!/usr/bin/env bash
# bench.sh: run the benchmark suites and print one table per benchmark
# group (internal/benchtab): each variant's ms/op, its ratio to the group's
# baseline and the time it adds per call. `make bench` runs it after
# building bin/ and the stand-in image.
#
# Each suite is "package bench-regexp baselines", space-separated; the
# baselines as benchtab's --baseline takes them ("Group=variant",
# comma-separated; empty: each group's variant named "baseline", else its
# first). Later issues add suites.
#
# Knobs: BENCHTIME (default 1s), COUNT (default 6), CPU (default 2),
# BENCH_OUT (the raw output, benchstat-compatible; default .run/bench.txt).
#
# Then the scenarios of issue 7 (package bench): zaki-agent against the
# engine it replaces and raw docker floors, on the real engine, run once
# each and printed as one table of targets (bench/targets.txt). A target
# missed is printed as MISS and does not fail the run; a scenario that
# breaks (an error, a wrong container count) does. Knobs: SCENARIOS=0
# skips them, SCENARIO_COUNT (default 1) repeats them, SCENARIO_OUT (raw
# output, benchstat-compatible; default .run/bench-scenarios.txt), and the
# ZAKI_BENCH_* sample counts documented in bench/*_test.go. Then each
# scenario that missed a target is run again with CPU profiles of its
# agents, whose tops are printed (PROFILE_MISSES=0 skips it; PROFILE_DIR,
# default .run/profiles, keeps the .pprof files).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITES=(
	# issue 2: one Inspect through the plugin vs a direct docker inspect
	# exec vs the Engine API (target: the plugin hop adds < 0.5 ms a call),
	# and the hop alone (a call that runs no docker command)
	"./plugins/docker/ ^Benchmark(Inspect|PluginHop)$ Inspect=docker-cli,PluginHop=in-process"
	# issue 3: the registry: one durable change at 100, 1,000 and 10,000
	# records (target: < 20 ms at 10,000), the hot-path touch (target:
	# < 2 µs), a read, and loading 10,000 records at start-up
	"./registry/ ^Benchmark(Persist|Touch|Get|Open)$ Persist=records=100,Touch=serial"
	# issue 7: the hot paths alone, no engine: the agent in process over
	# the fake runtime (hot ensure, 64 users in parallel, list of 200 and
	# 10,000), and the same over a Unix socket through the API server
	"./agent/ ^Benchmark(EnsureHot|EnsureHotParallel|List)$ "
	"./socketapi/server/ ^BenchmarkAPI(EnsureHot|List)$ "
	# issue 18: the plugin's launch (fake plugin, no engine) with the
	# launch keys against go-plugin's AutoMTLS, the path before them
	"./runtime/ ^BenchmarkLaunch$ Launch=automtls"
)

# The scenarios run at the agent's production priority, the Nice= of its
# systemd unit, and so do their baselines, floors and clients (all of the
# benchmark process, the agents and their docker commands inherit it):
# what is compared shares one priority, while the engine and the instances
# (with their health checks) run at the default.
NICE=$(sed -n 's/^Nice=//p' systemd/zaki-agent.service)
NICE=${NICE:-0}

BENCHTIME=${BENCHTIME:-1s}
COUNT=${COUNT:-6}
CPU=${CPU:-2}
OUT=${BENCH_OUT:-.run/bench.txt}
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

scripts/ensure-docker.sh
# The plugin binary from `make build`, when there is one.
if [ -x bin/zaki-runtime-docker ]; then
	export ZAKI_BIN_DIR="$PWD/bin"
fi

baselines=()
for suite in "${SUITES[@]}"; do
	read -r pkg re baseline <<<"$suite"
	echo "== go test -bench '$re' -benchtime $BENCHTIME -count $COUNT -cpu $CPU $pkg" >&2
	go test -run '^$' -bench "$re" -benchtime "$BENCHTIME" -count "$COUNT" -cpu "$CPU" "$pkg" | tee -a "$OUT" >&2
	if [ -n "$baseline" ]; then
		baselines+=("$baseline")
	fi
done

echo >&2
echo "raw results (benchstat-compatible): $OUT" >&2
echo
go run ./internal/benchtab/cmd/benchtab --baseline "$(IFS=,; echo "${baselines[*]}")" "$OUT"

# issue 7: the scenarios, and their table.
if [ "${SCENARIOS:-1}" != 0 ]; then
	SOUT=${SCENARIO_OUT:-.run/bench-scenarios.txt}
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	echo "== nice -n $NICE go test -bench (issue 7 scenarios) -benchtime 1x -count ${SCENARIO_COUNT:-1} ./bench/ (load average $load_before)" >&2
	start=$(date +%s)
	nice -n "$NICE" go test -v -run '^$' -bench '^Benchmark(HotEnsure|ColdEnsure|Concurrent50|Fleet|Registered10k|PauseResume|PauseIdleCPU)$' \
		-benchtime 1x -count "${SCENARIO_COUNT:-1}" -cpu "$CPU" -timeout 60m ./bench/ | tee "$SOUT" >&2
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)
	echo >&2
	echo "raw scenario results (benchstat-compatible): $SOUT" >&2
	echo
	echo "issue 7: zaki-agent vs the engine it replaces ($(nproc) cores; load average $load_before before, $load_after after; scenarios took $(($(date +%s) - start)) s)"
	go run ./internal/benchtab/cmd/benchtab --targets bench/targets.txt "$SOUT"
	echo "(a MISS is reported, not fatal; see BENCHMARKS.md)"

	# Each scenario that missed a target runs once more with CPU profiles
	# of its agents (bench/profile_test.go; not in the measured run, where
	# the profiler's interrupts would be in the figures), and the top of
	# each profile is printed. PROFILE_MISSES=0 skips this.
	missed=$(go run ./internal/benchtab/cmd/benchtab --targets bench/targets.txt --missed "$SOUT")
	if [ -n "$missed" ] && [ "${PROFILE_MISSES:-1}" != 0 ]; then
		PDIR=${PROFILE_DIR:-.run/profiles}
		rm -rf "$PDIR" && mkdir -p "$PDIR"
		PDIR=$(cd "$PDIR" && pwd)
		for bm in $missed; do
			echo
			echo "== profiling Benchmark$bm (missed a target): agent CPU profiles in $PDIR" >&2
			ZAKI_BENCH_PROFILE_DIR=$PDIR nice -n "$NICE" go test -v -run '^$' -bench "^Benchmark$bm\$" -benchtime 1x -cpu "$CPU" -timeout 60m ./bench/ \
				>"$PDIR/$bm.txt" 2>&1 || { cat "$PDIR/$bm.txt" >&2; exit 1; }
			for prof in "$PDIR/$bm"-*.pprof; do
				echo
				echo "-- $(basename "$prof" .pprof): where the agent spent CPU (go tool pprof -top -cum $prof)"
				go tool pprof -top -cum -nodecount 15 "$prof" 2>/dev/null | sed -n '/^Duration/p;/flat%/,$p'
			done
			# Where the agent's goroutines waited for a CPU, from the
			# execution trace of the same phase.
			for tr in "$PDIR/$bm"-*.trace; do
				[ -e "$tr" ] || continue
				sched=${tr%.trace}.sched.pprof
				go tool trace -pprof=sched "$tr" >"$sched" 2>/dev/null || continue
				echo
				echo "-- $(basename "$tr" .trace): where the agent's goroutines waited for a CPU (go tool trace -pprof=sched; go tool pprof -top -cum $sched)"
				go tool pprof -top -cum -nodecount 12 "$sched" 2>/dev/null | sed -n '/^Showing nodes/p;/flat%/,$p'
			done
		done
	fi
fi
