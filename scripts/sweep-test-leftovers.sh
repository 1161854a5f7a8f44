#!/usr/bin/env bash
# Removes what an interrupted test run left in the engines: containers,
# networks and images named by internal/testenv.UniqueName
# ("<prefix>-<pid>-<nanos>[-more]", e.g. zaki-agent-test-23019-396803539)
# whose
# test process is gone. A killed `go test` never runs its cleanups, and
# its containers (restart policy on-failure) come back with the engine:
# the next run would meet them, e.g. a zaki-user-NAME it did not create.
#
# Only names of that exact shape are touched, and only when the pid in
# them is not alive, so a run in progress next door is left alone, and so
# is everything else on the engine (the agent's own "zaki" network, real
# instances, images).
set -uo pipefail

pattern='^(zaki|zapi)(-[a-z][a-z0-9]*)+-([0-9]+)-[0-9]+(-.*)?$'

# dead NAME: true when NAME has the test shape and its pid is gone.
dead() {
	[[ $1 =~ $pattern ]] || return 1
	! kill -0 "${BASH_REMATCH[3]}" 2>/dev/null
}

sweep() {
	local cli=$1
	command -v "$cli" >/dev/null 2>&1 || return 0
	"$cli" info >/dev/null 2>&1 || return 0
	local n=0 id name nets net doomed
	# Containers named like a test's, or attached to a test's network.
	while read -r id name nets; do
		doomed=
		dead "$name" && doomed=1
		for net in ${nets//,/ }; do
			dead "$net" && doomed=1
		done
		if [[ -n $doomed ]]; then
			"$cli" rm -f "$id" >/dev/null 2>&1 && n=$((n + 1))
		fi
	done < <("$cli" ps -a --format '{{.ID}} {{.Names}} {{.Networks}}' 2>/dev/null)
	local nn=0
	while read -r net; do
		dead "$net" && "$cli" network rm "$net" >/dev/null 2>&1 && nn=$((nn + 1))
	done < <("$cli" network ls --format '{{.Name}}' 2>/dev/null)
	# Per-run images tagged with a run's unique name.
	local ni=0 ref
	while read -r ref; do
		dead "${ref##*:}" && "$cli" rmi -f "$ref" >/dev/null 2>&1 && ni=$((ni + 1))
	done < <("$cli" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>')
	if ((n + nn + ni > 0)); then
		echo "sweep-test-leftovers: $cli: removed $n containers, $nn networks, $ni images of earlier, interrupted runs"
	fi
}

sweep docker
sweep podman
exit 0
