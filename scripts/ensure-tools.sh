#!/usr/bin/env bash
# ensure-tools.sh: install the Debian packages the tests call besides the
# engine (curl: the README's API examples and the peer-credential tests run
# it). Each is installed only when missing.
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "ensure-tools: missing ${need[*]} and installing needs root" >&2
	exit 1
fi
echo "ensure-tools: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${need[@]}" >/tmp/zaki-tools-install.log 2>&1 ||
	{ apt-get update >>/tmp/zaki-tools-install.log 2>&1 && apt-get install -y --no-install-recommends "${need[@]}" >>/tmp/zaki-tools-install.log 2>&1; } ||
	{ echo "ensure-tools: apt-get install ${need[*]} failed (see /tmp/zaki-tools-install.log)" >&2; exit 1; }
