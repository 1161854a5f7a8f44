#!/usr/bin/env bash
# apt-install.sh NAME PACKAGE...: install Debian packages for the ensure-*
# scripts. Tries once with the package lists as they are, then once more
# after `apt-get update` (a fresh machine's lists may be missing or stale).
# The output goes to /tmp/zaki-NAME-install.log; a failure names it.
set -euo pipefail
name=$1
shift
log=/tmp/zaki-$name-install.log
if [ "$(id -u)" != 0 ]; then
	echo "$name: installing $* needs root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "$@" >"$log" 2>&1 ||
	{ apt-get update >>"$log" 2>&1 && apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1; } ||
	{ echo "$name: apt-get install $* failed (see $log)" >&2; exit 1; }
