#!/usr/bin/env bash
# faults.sh: the fault-injection suite (`make faults`): package faults with
# the build tag "faults", against the real agent, plugin and engine. It SIGKILLs the
# agent 100 times (ZAKI_FAULTS_KILLS), kills the plugin, stops and starts
# dockerd (the machine's own, or the one ZAKI_FAULTS_DOCKERD_PIDFILE names,
# with DOCKER_HOST), fills a tmpfs under the state dir (needs root) and
# hangs the docker CLI; then the hardening, isolation (also under gVisor)
# and hostile-input tests; then the whole conformance suite under gVisor
# (TestConformanceRunsc with ZAKI_RUNSC_FULL=1); then FuzzHTTP over the whole HTTP layer for ZAKI_FAULTS_FUZZTIME (60s). It prints each test's outcome, every violation, and the table of
# faults injected, invariant checks run and violations found (also in
# .run/faults.txt; the full log is .run/faults.log).
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .run
table="$PWD/.run/faults.txt"
log="$PWD/.run/faults.log"
rm -f "$table"
start=$(date +%s)

status=0
ZAKI_FAULTS_TABLE="$table" "${GO:-go}" test -tags faults -count=1 -timeout 60m -v ./faults/ >"$log" 2>&1 || status=$?

# The whole conformance suite under gVisor (make test runs a subset of it).
echo "faults: the conformance suite under gVisor (runsc)" >&2
if ! ZAKI_RUNSC_FULL=1 "${GO:-go}" test -count=1 -timeout 20m -v -run '^TestConformanceRunsc$' ./plugins/docker/ >>"$log" 2>&1; then
	echo "faults: TestConformanceRunsc FAILED" >&2
	status=1
fi

# The whole HTTP layer fuzzed with raw bytes for a bounded time (no panic,
# an answer or a close, the error envelope, no goroutine left).
fuzztime="${ZAKI_FAULTS_FUZZTIME:-60s}"
echo "faults: FuzzHTTP for $fuzztime" >&2
if ! "${GO:-go}" test -run '^$' -fuzz '^FuzzHTTP$' -fuzztime "$fuzztime" ./socketapi/server/ >>"$log" 2>&1; then
	echo "faults: FuzzHTTP FAILED (the failing input is under socketapi/server/testdata/fuzz/FuzzHTTP)" >&2
	grep -E -A20 -- '--- FAIL: FuzzHTTP' "$log" >&2 || true
	status=1
fi

# Outcomes and violations (the agent logs stay in the log file).
grep -E '^\s*--- (PASS|FAIL|SKIP)|VIOLATION|^(ok|FAIL|panic)' "$log" | grep -v 'api call' || true
if [ -s "$table" ]; then
	cat "$table"
else
	echo "faults: no table written (the suite did not finish); see $log" >&2
fi
echo "faults: took $(($(date +%s) - start)) s; log in $log"
if [ "$status" != 0 ]; then
	echo "faults: FAILED (go test exit $status); the failing tests' output:" >&2
	grep -E -B2 -A20 '^\s*--- FAIL' "$log" | grep -v 'api call' | head -200 >&2 || true
fi
exit "$status"
