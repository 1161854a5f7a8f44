#!/usr/bin/env bash
# Regenerates the Go code of runtime/proto/*.proto with protoc (Debian's
# protobuf-compiler) and the protoc-gen-go / protoc-gen-go-grpc versions
# pinned below (installed into ./.tools). Running it twice gives identical
# files: the generated headers name these versions, never a path or a date.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12     # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2  # protoc-gen-go-grpc for google.golang.org/grpc v1.85
TOOLS="$PWD/.tools"

if ! command -v protoc >/dev/null; then
	echo "gen-proto: installing protobuf-compiler" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi

# tool_version BIN: the version a protoc plugin reports ("protoc-gen-go v1.36.12").
tool_version() { "$1" --version 2>/dev/null | awk '{print $NF}'; }

# install PKG@VERSION into $TOOLS: through GOPROXY, else (offline) from
# the module cache alone, which holds it once it was fetched.
install() {
	GOBIN="$TOOLS" go install "$1" 2>/dev/null && return 0
	echo "gen-proto: go install $1 failed through GOPROXY; trying the module cache" >&2
	GOBIN="$TOOLS" GOPROXY="file://$(go env GOMODCACHE)/cache/download" GOSUMDB=off go install "$1"
}

mkdir -p "$TOOLS"
if [ "$(tool_version "$TOOLS/protoc-gen-go")" != "$PROTOC_GEN_GO_VERSION" ]; then
	install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if [ "$(tool_version "$TOOLS/protoc-gen-go-grpc")" != "${PROTOC_GEN_GO_GRPC_VERSION#v}" ] &&
	[ "$(tool_version "$TOOLS/protoc-gen-go-grpc")" != "$PROTOC_GEN_GO_GRPC_VERSION" ]; then
	install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

PATH="$TOOLS:$PATH" protoc \
	--proto_path=runtime/proto \
	--go_out=runtime/proto --go_opt=paths=source_relative \
	--go-grpc_out=runtime/proto --go-grpc_opt=paths=source_relative \
	runtime/proto/*.proto
echo "gen-proto: regenerated $(ls runtime/proto/*.pb.go | tr '\n' ' ')"
