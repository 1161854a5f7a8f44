#!/usr/bin/env bash
# ensure-runsc.sh: make the Docker engine run containers under gVisor
# (`--runtime runsc`), for the tests of instance.ociRuntime (`make test`
# and `make faults` run it after ensure-docker.sh). Idempotent:
#
#   1. installs Debian's runsc when /usr/bin/runsc is missing;
#   2. merges {"runtimes": {"runsc": {"path": "/usr/bin/runsc",
#      "runtimeArgs": ["--network=host"]}}} into the engine's daemon.json
#      (ZAKI_DOCKERD_CONFIG, default /etc/docker/daemon.json), keeping every
#      other key; without --network=host every start fails ("cannot run with
#      network enabled in root network namespace"): the container keeps its
#      own network namespace, only gVisor's own network stack is off;
#   3. only when the file changed, sends SIGHUP to the engine (its pidfile:
#      ZAKI_DOCKERD_PIDFILE, default /var/run/docker.pid), which re-reads
#      the runtimes without a restart;
#   4. waits until `docker info` lists runsc.
#
# Exits 0 when the engine lists runsc; otherwise 1 when
# ZAKI_REQUIRE_DOCKER=1 (CI: the tests under runsc must run), else 0 after
# a warning (those tests then skip and say so).
set -u

log() { printf 'ensure-runsc: %s\n' "$*" >&2; }

fail() {
	log "$*"
	if [ "${ZAKI_REQUIRE_DOCKER:-0}" = 1 ]; then
		log "ZAKI_REQUIRE_DOCKER=1: runsc is required"
		exit 1
	fi
	log "continuing without runsc: the tests under gVisor will skip"
	exit 0
}

listed() {
	docker info --format '{{json .Runtimes}}' 2>/dev/null | jq -e 'has("runsc")' >/dev/null 2>&1
}

conf=${ZAKI_DOCKERD_CONFIG:-/etc/docker/daemon.json}
pidfile=${ZAKI_DOCKERD_PIDFILE:-/var/run/docker.pid}

if [ -x /usr/bin/runsc ] && listed; then
	exit 0
fi
docker info >/dev/null 2>&1 || fail "docker info fails: no engine to register runsc with"
if [ "$(id -u)" != 0 ]; then
	fail "runsc is not registered with the engine and registering it needs root"
fi
if ! command -v jq >/dev/null 2>&1; then
	"$(dirname "$0")/apt-install.sh" ensure-runsc jq || fail "cannot install jq"
fi
if [ ! -x /usr/bin/runsc ]; then
	log "installing Debian's runsc"
	"$(dirname "$0")/apt-install.sh" ensure-runsc runsc || fail "cannot install runsc"
fi

# Merge the entry; a file that is not a JSON object is left alone.
mkdir -p "$(dirname "$conf")"
old='{}'
if [ -s "$conf" ]; then
	old=$(cat "$conf")
	jq -e 'type == "object"' <<<"$old" >/dev/null 2>&1 || fail "$conf is not a JSON object: not touched"
fi
new=$(jq --indent 2 '.runtimes.runsc = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}' <<<"$old") ||
	fail "cannot merge the runsc entry into $conf"
if [ "$(jq -S . <<<"$old")" != "$(jq -S . <<<"$new")" ]; then
	tmp=$(mktemp "$conf.XXXXXX") || fail "cannot write next to $conf"
	printf '%s\n' "$new" >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$conf" || { rm -f "$tmp"; fail "cannot write $conf"; }
	pid=$(cat "$pidfile" 2>/dev/null) || fail "no dockerd pidfile $pidfile: reload the engine yourself (SIGHUP)"
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || fail "pid $pid of $pidfile is not dockerd"
	log "registered runsc in $conf; reloading dockerd (pid $pid, SIGHUP)"
	kill -HUP "$pid" || fail "cannot signal dockerd (pid $pid)"
fi

for _ in $(seq 1 100); do
	listed && exit 0
	sleep 0.1
done
fail "docker info does not list runsc after the reload (see the engine's log)"
