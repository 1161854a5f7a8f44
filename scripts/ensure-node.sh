#!/usr/bin/env bash
# ensure-node.sh: make node (20 or later) and npm available for the Node
# client (socketapi/typescript), installing Debian's nodejs and npm when
# either is missing. A node older than 20 is refused.
set -euo pipefail

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ensure-node: missing ${need[*]} and installing needs root" >&2
		exit 1
	fi
	echo "ensure-node: installing ${need[*]}" >&2
	"$(dirname "$0")/apt-install.sh" ensure-node "${need[@]}"
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "ensure-node: node $(node --version) is too old: the Node client needs Node.js 20 or later" >&2
	exit 1
fi
