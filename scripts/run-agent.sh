#!/usr/bin/env bash
# run-agent.sh: run zaki-agent for real on this machine's Docker engine,
# in the foreground, with the locally built stand-in gateway as its image.
# `make run` builds everything first. Ctrl-C stops the agent; the
# instances it started keep running (remove them with zakictl rm).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
run=${ZAKI_RUN_DIR:-$root/.run}
mkdir -p "$run/state"
cat >"$run/config.toml" <<TOML
# Written by scripts/run-agent.sh for \`make run\`: a development agent.
socket = "$run/agent.sock"
socketGroup = ""
stateDir = "$run/state"
runtime = "docker"
pluginDir = "$root/bin"
logLevel = "${ZAKI_LOG_LEVEL:-info}"

[instance]
image = "zaki/gateway-stub:latest"
allowedImages = ["zaki/gateway-stub:*", "alpine/openclaw:*"]
healthCmd = ["/gateway-stub", "-probe"]
TOML
cat <<MSG
zaki-agent (development): socket $run/agent.sock, state $run/state
In another shell:
  export ZAKI_SOCKET=$run/agent.sock
  bin/zakictl health
  bin/zakictl ensure demo          # starts the stand-in gateway for user "demo"
  curl -s http://127.0.0.1:\$(bin/zakictl inspect demo --json | sed -n 's/.*"port": *\([0-9]*\).*/\1/p')/
  bin/zakictl ls
  bin/zakictl rm demo --purge
MSG
exec "$root/bin/zaki-agent" --config "$run/config.toml" "$@"
