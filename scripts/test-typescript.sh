#!/usr/bin/env bash
# test-typescript.sh: the Node client's tests (socketapi/typescript, Node's
# own test runner) against a real agent: the binaries of bin/ (or
# ZAKI_BIN_DIR) on this machine's engine. The dev dependencies come from
# the npm registry, pinned by package-lock.json (npm ci).
#
#   scripts/test-typescript.sh          npm ci, then npm test
#   scripts/test-typescript.sh --lint   npm ci when needed, then the
#                                       generated types are checked against
#                                       socketapi/openapi.json and the
#                                       sources type-checked
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/ensure-node.sh"
cd "$root/socketapi/typescript"

if [ "${1:-}" = --lint ]; then
	# node_modules/.package-lock.json is npm's record of the last install.
	if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
		npm ci --no-audit --no-fund --loglevel=error
	fi
	npm run --silent check-generated
	npm run --silent typecheck
	exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
ZAKI_BIN_DIR=${ZAKI_BIN_DIR:-$root/bin} npm test
