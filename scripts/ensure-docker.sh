#!/usr/bin/env bash
# ensure-docker.sh: make a Docker engine answer on this machine.
#
# When `docker info` fails: install Debian's docker.io if dockerd is missing,
# start dockerd in the background, and wait for it. Exits 0 when the engine
# answers. Otherwise exits 1 when ZAKI_REQUIRE_DOCKER=1 (CI), else 0 after a
# warning (the engine tests then skip and say so).
set -u

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

fail() {
	log "$*"
	if [ "${ZAKI_REQUIRE_DOCKER:-0}" = 1 ]; then
		log "ZAKI_REQUIRE_DOCKER=1: a Docker engine is required"
		exit 1
	fi
	log "continuing without an engine: engine tests will skip"
	exit 0
}

if docker info >/dev/null 2>&1; then
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		fail "dockerd is not installed and installing it needs root"
	fi
	log "installing docker.io from Debian"
	"$(dirname "$0")/apt-install.sh" ensure-docker docker.io || fail "cannot install docker.io"
fi
if ! command -v docker >/dev/null 2>&1; then
	fail "no docker client on PATH"
fi

if [ "$(id -u)" != 0 ]; then
	fail "docker info fails and starting dockerd needs root"
fi

# The daemon of the default socket, by its pidfile: another dockerd on a
# socket of its own (a test's) must not count.
# A pidfile whose pid is no dockerd (left by a machine restored from a
# snapshot, its pid since reused) is stale: dockerd refuses to start while
# it exists.
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
	log "removing the stale /var/run/docker.pid (pid $pid is not dockerd)"
	rm -f /var/run/docker.pid
	pid=
fi
if [ -z "$pid" ]; then
	log "starting dockerd (log: /var/log/zaki-dockerd.log)"
	# setsid: the engine must outlive the make target that started it.
	setsid nohup dockerd >/var/log/zaki-dockerd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 120); do
	if docker info >/dev/null 2>&1; then
		log "engine ready"
		exit 0
	fi
	sleep 0.5
done
tail -20 /var/log/zaki-dockerd.log >&2 2>/dev/null || true
fail "dockerd did not answer within 60 s"
