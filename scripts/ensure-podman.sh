#!/usr/bin/env bash
# ensure-podman.sh: make rootful podman run on this machine, for the podman
# runtime plugin's tests (`make test` runs it, like ensure-docker.sh).
#
# When `podman version` fails: install Debian's podman without its
# recommends (buildah, slirp4netns, fuse-overlayfs, uidmap: rootless
# podman's), but with netavark and aardvark-dns (the network backend the
# plugin's networks need; without them apt picks the CNI plugins) and
# catatonit (the init binary podman's --init runs). Podman is daemonless:
# nothing to start. Exits 0 when podman runs; otherwise 1 when
# ZAKI_REQUIRE_DOCKER=1 (CI: the engine tests, podman's included, must
# run), else 0 after a warning (the podman tests then skip and say so).
#
# Nothing here configures a registry: the tests load the stand-in image
# from docker and pull only from a registry they start on 127.0.0.1.
set -u

log() { printf 'ensure-podman: %s\n' "$*" >&2; }

fail() {
	log "$*"
	if [ "${ZAKI_REQUIRE_DOCKER:-0}" = 1 ]; then
		log "ZAKI_REQUIRE_DOCKER=1: podman is required"
		exit 1
	fi
	log "continuing without podman: the podman tests will skip"
	exit 0
}

ready() {
	podman version >/dev/null 2>&1 && [ -x /usr/libexec/podman/catatonit ]
}

if ready; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	fail "podman is not installed (or lacks catatonit) and installing it needs root"
fi
pkgs=(podman netavark aardvark-dns catatonit)
log "installing ${pkgs[*]} from Debian"
"$(dirname "$0")/apt-install.sh" ensure-podman "${pkgs[@]}" || fail "cannot install ${pkgs[*]}"
if ! ready; then
	podman version >&2 || true
	fail "podman does not run after the install (see /tmp/zaki-podman-install.log)"
fi
log "podman $(podman version --format '{{.Client.Version}}') ready"
