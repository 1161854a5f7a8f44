#!/usr/bin/env bash
# image.sh: print the name of a local Docker image of Debian 12 (bookworm)
# that boots systemd, with the Docker CLI installed and no engine of its own
# (and rootful podman, whose engine is the CLI itself),
# building it when missing. Used by scripts/e2e.sh.
#
# Build: debootstrap --variant=minbase from Debian's mirror, then mask the
# engine's units (the e2e container uses the host's engine through its
# mounted socket), tar the root, and `docker import` it. The tarball is cached
# in $ZAKI_E2E_CACHE (default ~/.cache/zaki-agent) and the image is tagged,
# both keyed by the suite, the include list and this recipe's version: a
# second run reuses the image (or re-imports the tarball) without debootstrap.
set -euo pipefail

SUITE=bookworm
MIRROR=${ZAKI_E2E_MIRROR:-http://deb.debian.org/debian}
# Debian 12 has no separate docker-cli package: docker.io holds the CLI and
# the engine; the engine's units are masked below. procps: the package
# depends on it (/bin/kill for ExecReload=). podman, netavark, aardvark-dns,
# catatonit: the podman runtime's test (rootful podman, as
# scripts/ensure-podman.sh installs it; debootstrap skips recommends).
INCLUDE=systemd,systemd-sysv,dbus,ca-certificates,procps,docker.io,podman,netavark,aardvark-dns,catatonit
RECIPE=2 # bump when the steps below change
CACHE=${ZAKI_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zaki-agent}

log() { printf 'e2e-image: %s\n' "$*" >&2; }

key=$(printf '%s %s %s' "$SUITE" "$INCLUDE" "$RECIPE" | sha256sum | cut -c1-12)
image=zaki/e2e-$SUITE-systemd:$key
tarball=$CACHE/rootfs-$SUITE-$key.tar

if docker image inspect --format '{{.Id}}' "$image" >/dev/null 2>&1; then
	log "using image $image"
	echo "$image"
	exit 0
fi

if [ ! -s "$tarball" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q debootstrap >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
	fi
	mkdir -p "$CACHE"
	dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	trap 'rm -rf "$dir" "$tarball.tmp"' EXIT
	log "debootstrap $SUITE ($INCLUDE) into $dir"
	start=$(date +%s)
	# --cache-dir keeps the downloaded .debs: a rebuild (new recipe) mostly
	# skips the download.
	mkdir -p "$CACHE/debs"
	debootstrap --variant=minbase --include="$INCLUDE" --cache-dir="$CACHE/debs" "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
	log "debootstrap took $(($(date +%s) - start)) s"

	# No second engine in the container: mask dockerd and containerd.
	for u in docker.service docker.socket containerd.service; do
		ln -sf /dev/null "$dir/etc/systemd/system/$u"
	done
	# Podman's own units: its API service and timers are not what the
	# agent uses (it runs the CLI), and they fail where podman has no
	# storage volume (the docker test's container).
	for u in podman.service podman.socket podman-auto-update.service podman-auto-update.timer podman-restart.service; do
		ln -sf /dev/null "$dir/etc/systemd/system/$u"
	done
	# Nothing to log in on; keep the boot quiet and fast.
	ln -sf /dev/null "$dir/etc/systemd/system/console-getty.service"
	ln -sf /dev/null "$dir/etc/systemd/system/getty@.service"
	echo zaki-e2e >"$dir/etc/hostname"
	rm -f "$dir/etc/machine-id" "$dir/var/lib/dbus/machine-id"
	: >"$dir/etc/machine-id" # systemd makes a fresh one at each boot
	chroot "$dir" apt-get clean
	tar --numeric-owner --xattrs -C "$dir" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$dir"
	trap - EXIT
fi

log "importing $tarball as $image"
docker import -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' \
	"$tarball" "$image" >/dev/null
echo "$image"
