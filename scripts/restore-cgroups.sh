#!/usr/bin/env bash
# restore-cgroups.sh: put back the host's cgroup v1 mounts after a systemd
# container that shares /sys/fs/cgroup (make e2e) ran. Such a systemd
# mounts controllers the host had left unmounted (hugetlb, net_cls,
# perf_event, a cgroup2 "unified") through the shared bind; when it exits
# those mounts go, but the hierarchies stay in the kernel, listed in every
# process's /proc/PID/cgroup. containerd then fails to load a container's
# cgroups ("cannot find cgroup mount destination"): `docker stats` reads
# nothing and no oom event is sent, which later tests (make test,
# make faults) see as broken isolation. Each controller listed without a
# mount is mounted again where its dir is; nothing else changes.
set -euo pipefail
[ "$(id -u)" = 0 ] || exit 0
[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || exit 0 # cgroup v2 only: nothing to do
while IFS=: read -r _ controllers _; do
	[ -n "$controllers" ] || continue # the cgroup2 line
	case "$controllers" in name=*) continue ;; esac
	if awk -v c="$controllers" '$3 == "cgroup" { n = split($4, o, ","); s = ""; for (i = 1; i <= n; i++) if (o[i] !~ /^(rw|ro|relatime|nosuid|nodev|noexec)$/) s = s (s ? "," : "") o[i]; if (s == c) f = 1 } END { exit !f }' /proc/mounts; then
		continue
	fi
	dir=/sys/fs/cgroup/$controllers
	if [ -d "$dir" ] && mount -t cgroup -o "$controllers" cgroup "$dir" 2>/dev/null; then
		echo "restore-cgroups: mounted $controllers at $dir" >&2
	else
		echo "restore-cgroups: $controllers has no mount and none could be made at $dir" >&2
	fi
done </proc/self/cgroup
