#!/usr/bin/env bash
# packages.sh: build zaki-agent's .deb and .rpm into dist/ with nfpm
# (packaging/nfpm.yaml), then check the .deb with lintian (no errors allowed;
# warnings are printed).
#
# Needs bin/zaki-agent, bin/zakictl, bin/zaki-runtime-docker,
# bin/zaki-runtime-podman and bin/zaki-runtime-swarm (`make build`;
# `make packages` builds them first). ZAKI_PKG_BIN_DIR points elsewhere.
# VERSION (from the Makefile: git describe) becomes the package version.
# nfpm is installed into .tools/ on first use; lintian from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

NFPM_VERSION=v2.45.2
log() { printf 'packages: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

bin_dir=${ZAKI_PKG_BIN_DIR:-$root/bin}
missing=()
for b in zaki-agent zakictl zaki-runtime-docker zaki-runtime-podman zaki-runtime-swarm; do
	[ -x "$bin_dir/$b" ] || missing+=("$bin_dir/$b")
done
[ ${#missing[@]} -eq 0 ] || die "missing binaries (run make build): ${missing[*]}"

# Package version: a release tag v1.2.3[-N-gHASH] gives 1.2.3[+gitN.gHASH];
# anything else 0.0.0~git<commit time>.<hash>, which sorts below any release.
raw=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit_epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
if [[ $raw =~ ^v?([0-9]+\.[0-9]+\.[0-9]+)(-([0-9]+)-(g[0-9a-f]+))?(-dirty)?$ ]]; then
	version=${BASH_REMATCH[1]}
	[ -z "${BASH_REMATCH[2]}" ] || version+="+git${BASH_REMATCH[3]}.${BASH_REMATCH[4]}"
	[ -z "${BASH_REMATCH[5]}" ] || version+=".dirty"
else
	hash=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	version="0.0.0~git$(date -u -d "@$commit_epoch" +%Y%m%d%H%M%S).$hash"
	[[ $raw != *-dirty ]] || version+=".dirty"
fi
arch=$(go env GOARCH)

nfpm=$root/.tools/nfpm
if ! { [ -x "$nfpm" ] && go version -m "$nfpm" 2>/dev/null | grep -q "nfpm/v2[[:space:]]*${NFPM_VERSION}[[:space:]]"; }; then
	log "installing nfpm $NFPM_VERSION into .tools/"
	GOBIN=$root/.tools go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

# What nfpm.yaml takes from dist/.stage/: the binaries and the changelog.
stage=$root/dist/.stage
rm -rf "$stage"
mkdir -p "$stage/bin"
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/zaki-agent" "$bin_dir/zakictl" "$bin_dir/zaki-runtime-docker" "$bin_dir/zaki-runtime-podman" \
	"$bin_dir/zaki-runtime-swarm" "$stage/bin/"
# A native package's changelog, as lintian wants it (gzip -n: reproducible).
{
	printf 'zaki-agent (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Build of %s.\n\n' "$raw"
	printf ' -- zaki-platform <zaki-platform@users.noreply.github.com>  %s\n' \
		"$(LC_ALL=C date -u -R -d "@$commit_epoch")"
} | gzip -9n >"$stage/changelog.gz"
mkdir -p "$stage/man"
for m in packaging/man/*.[18]; do
	gzip -9n <"$m" >"$stage/man/$(basename "$m").gz"
done

rm -f dist/zaki-agent_*.deb dist/zaki-agent-*.rpm
export ZAKI_VERSION=$version ZAKI_ARCH=$arch
export SOURCE_DATE_EPOCH=$commit_epoch
for p in deb rpm; do
	"$nfpm" package --config packaging/nfpm.yaml --packager "$p" --target dist/ >&2
done
deb=$(ls dist/zaki-agent_*.deb)
rpm=$(ls dist/zaki-agent-*.rpm)

if ! command -v lintian >/dev/null 2>&1; then
	log "installing lintian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends lintian >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends lintian >/dev/null; } ||
		die "apt-get install lintian failed"
fi
log "lintian $deb"
# --fail-on error: warnings are shown, errors fail the build.
lintian --fail-on error --display-info --tag-display-limit 0 "$deb" >&2 ||
	die "lintian reports errors on $deb"

log "built $deb ($(stat -c %s "$deb") bytes) and $rpm ($(stat -c %s "$rpm") bytes), version $version"
