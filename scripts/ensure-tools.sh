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
"$(dirname "$0")/apt-install.sh" ensure-tools "${need[@]}"
