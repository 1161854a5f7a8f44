#!/usr/bin/env bash
# e2e.sh: the end-to-end test of the installed package (`make e2e`, after
# `make packages` and `make stub-image`). Builds or reuses the Debian 12
# systemd image (e2e/image.sh, cached), then runs the Go test behind the e2e
# build tag, which boots that image, installs dist/zaki-agent_*.deb in it
# and drives the units against this host's Docker engine (TestInstall) and,
# at the same time in a second container, against rootful podman inside it
# (TestInstallPodman).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

scripts/ensure-docker.sh
docker info >/dev/null 2>&1 || { echo "e2e: no Docker engine" >&2; exit 1; }

debs=(dist/zaki-agent_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] ||
	{ echo "e2e: want one dist/zaki-agent_*.deb (make packages), have: ${debs[*]}" >&2; exit 1; }

image=$(e2e/image.sh)
echo "e2e: image ready after $(($(date +%s) - start)) s" >&2

# The systemd containers share the host's /sys/fs/cgroup: what their
# systemd mounts there is undone afterwards (scripts/restore-cgroups.sh), so
# that the engine still reads its containers' cgroups for the suites that
# run next.
unified_before=$(grep -c ' /sys/fs/cgroup/unified cgroup2 ' /proc/mounts || true)
restore() {
	if [ "$unified_before" = 0 ] && grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/mounts; then
		umount -l /sys/fs/cgroup/unified && echo "e2e: unmounted the cgroup2 hierarchy a container's systemd mounted" >&2
	fi
	scripts/restore-cgroups.sh || true
}
trap restore EXIT

export ZAKI_E2E_IMAGE=$image ZAKI_E2E_DEB=$PWD/${debs[0]}
rc=0
go test -tags e2e -count=1 -v -timeout 20m -run '^TestInstall(Podman)?$' ./e2e/ || rc=$?
echo "e2e: done in $(($(date +%s) - start)) s (exit $rc)" >&2
exit $rc
