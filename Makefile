# zaki-agent: build, test and run targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TOOLS := $(CURDIR)/.tools
STUB_IMAGE := zaki/gateway-stub:latest
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/zaki-platform/zaki-agent/internal/version.Version=$(VERSION)

# The mains that exist so far; `make build` builds each into bin/.
MAINS := $(patsubst %/main.go,%,$(wildcard agent/cmd/*/main.go socketapi/cmd/*/main.go plugins/*/cmd/*/main.go))

.PHONY: help build docker podman stub-image test test-ts run bench proto lint clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the binaries into bin/
	@mkdir -p $(BIN)
	@for m in $(MAINS); do \
		echo "go build $$m -> bin/$$(basename $$m)"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$(basename $$m) ./$$m || exit 1; \
	done
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/gateway-stub ./runtime/runtimetest/gateway-stub

docker: ## make a Docker engine answer (installs and starts dockerd when needed)
	@scripts/ensure-docker.sh

podman: ## make rootful podman run (installs Debian's podman and catatonit when needed)
	@scripts/ensure-podman.sh

stub-image: build docker ## build the gateway stand-in image (FROM scratch)
	@if docker info >/dev/null 2>&1; then \
		d=$$(mktemp -d) && cp $(BIN)/gateway-stub runtime/runtimetest/gateway-stub/Dockerfile $$d/ && \
		docker build -q -t $(STUB_IMAGE) $$d >/dev/null && rm -rf $$d && echo "built $(STUB_IMAGE)"; \
	fi

test: stub-image podman ## run every test, engine tests included, podman's too (the README's test command)
	@scripts/ensure-tools.sh
	@scripts/ensure-runsc.sh
	@scripts/sweep-test-leftovers.sh
	ZAKI_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 20m ./...
	@ZAKI_BIN_DIR=$(BIN) scripts/test-typescript.sh

test-ts: stub-image ## the Node client's tests alone (socketapi/typescript: npm ci, npm test)
	@scripts/sweep-test-leftovers.sh
	@ZAKI_BIN_DIR=$(BIN) scripts/test-typescript.sh

run: stub-image ## run the agent for real, on this machine's engine, with the stand-in image
	@scripts/run-agent.sh

bench: stub-image ## print the benchmark tables
	@scripts/sweep-test-leftovers.sh
	@scripts/bench.sh

proto: ## regenerate the gRPC code from runtime/proto/*.proto
	@scripts/gen-proto.sh

lint: ## gofmt, go vet, a tidy go.mod (go mod tidy -diff), the Node client's generated types up to date; run by .ci/run
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt -l (run gofmt -w on these):"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if ! diff=$$($(GO) mod tidy -diff 2>&1); then echo "go mod tidy -diff (run go mod tidy):"; echo "$$diff"; exit 1; fi
	@scripts/test-typescript.sh --lint

clean: ## remove build output
	rm -rf $(BIN)

.PHONY: packages e2e

packages: build ## build the .deb and .rpm into dist/ (nfpm) and lintian-check the .deb
	@VERSION='$(VERSION)' scripts/packages.sh

e2e: stub-image packages ## install the .deb in a Debian 12 systemd container and drive it (needs the engine)
	@scripts/e2e.sh

.PHONY: faults

faults: stub-image ## the fault-injection suite: agent/plugin kills, dockerd restart, full disk, hung engine, CIS, isolation (also under gVisor), the conformance suite under gVisor, then FuzzHTTP for 60 s (~20 min; stops and starts dockerd)
	@scripts/ensure-runsc.sh
	@scripts/sweep-test-leftovers.sh
	@ZAKI_BIN_DIR=$(BIN) scripts/faults.sh

.PHONY: swarm-e2e

swarm-e2e: stub-image ## the swarm runtime plugin, and the agent on it, against a 3-node swarm of engines in network and mount namespaces on this machine (scripts/swarm-harness.sh, brought down at the end; ~4 min; needs root)
	@trap 'scripts/swarm-harness.sh down' EXIT; \
		scripts/swarm-harness.sh up 3 && \
		ZAKI_BIN_DIR=$(BIN) ZAKI_REQUIRE_DOCKER=1 $(GO) test -count=1 -tags swarm -timeout 30m ./internal/testenv/ ./plugins/swarm/...
