#!/usr/bin/env bash
# swarm-harness.sh: a Docker Swarm of several engines on this one machine,
# for the tests of the Swarm runtime plugin (issue 19). The host's own
# engine is never touched and never joins the swarm.
#
#   swarm-harness.sh up [N]       start N nodes (default 3); a no-op when up
#   swarm-harness.sh down         remove everything `up` made (also after a
#                                 partial failure or a kill -9 of engines)
#   swarm-harness.sh status       nodes, addresses, engine and swarm health
#                                 (exit 0: all healthy, 1: not, 3: not up)
#   swarm-harness.sh env          shell exports for the tests
#   swarm-harness.sh kill-node K [--all]
#                                 SIGKILL node K's dockerd (its containers
#                                 keep running under their shims, and keep
#                                 answering); with --all also its
#                                 containerd, shims and containers (a
#                                 power cut)
#   swarm-harness.sh start-node K start it again on the same data root; it
#                                 rejoins the swarm by itself
#
# Layout. A host bridge zkswarm0 (10.77.0.1/24); node K (n1, n2, ...) is a
# network namespace zkswarm-nK holding eth0 = 10.77.0.(10+K), the peer of
# the host's veth zksw-nK, with a default route via the bridge. Its dockerd
# runs inside it (nsenter --net, not `ip netns exec`, whose fresh /sys
# hides the cgroup mounts; in a UTS namespace of its own so that each node
# has its own hostname zk-nK; started with setsid, so that killing a test's
# process group does not kill it) with its own --data-root
# /var/lib/zaki-swarm/nK, --exec-root /run/zaki-swarm/nK, socket
# /run/zaki-swarm/nK.sock, pidfile /run/zaki-swarm/nK.pid, config file
# (not the host's daemon.json), cgroup parent /zaki-swarm-nK, containerd
# namespace, and docker0 address 10.78.K.1/24; with --icc=false and
# --no-new-privileges (the isolation a node needs, docs/swarm-nodes.md) and
# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (no registry pull on a task start).
# Its iptables stay on: each namespace has its own tables, where two more
# rules keep tenants apart (see isolate below).
#
# Each node has a disk of its own: its dockerd also runs in a mount
# namespace of its own (kept in /run/zaki-swarm/mnt/nK, so that it outlives
# the engine as the network namespace does), where /var/lib/zaki-swarm-node
# is /var/lib/zaki-swarm/disks/nK of the host. What a task or a job writes
# under that path stays on its node; the host (and every other node) sees
# it only at the node's disk. On the host the path is an empty dir of its
# own (an agent's state dir may live there: the same path as on the nodes).
#
# n1 is the manager (swarm init, advertising 10.77.0.11); the others join
# as workers (the token goes to the Engine API on stdin, never on a command
# line). Every node gets the labels zaki.node=true and zaki.node.name=nK,
# and the stand-in image zaki/gateway-stub:latest from the host's engine
# (`docker save | docker load`; it must exist there: `make stub-image`).
#
# The host's FORWARD policy is DROP (its engine's), and bridged traffic
# goes through iptables (br_netfilter): node-to-node traffic needs
# `iptables -I DOCKER-USER -i zkswarm0 -o zkswarm0 -j ACCEPT` on the host,
# added once and removed by `down`. The host reaches every node address
# directly (OUTPUT/INPUT are not filtered).
#
# When `up` is done it writes /run/zaki-swarm/nodes.json (read by
# internal/testenv.SwarmNodes): {"manager": HOST, "nodes": [{"name",
# "address", "socket", "host", "nodeId", "role"}]}. Needs root.
set -euo pipefail

run=/run/zaki-swarm
data=/var/lib/zaki-swarm
state=$run/nodes.json
bridge=zkswarm0
net=10.77.0
image=zaki/gateway-stub:latest
maxnodes=20
nodepath=/var/lib/zaki-swarm-node

log() { printf 'swarm-harness: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ns() { echo "zkswarm-n$1"; }
veth() { echo "zksw-n$1"; }
addr() { echo "$net.$((10 + $1))"; }
sock() { echo "$run/n$1.sock"; }
host() { echo "unix://$run/n$1.sock"; }
pidfile() { echo "$run/n$1.pid"; }
disk() { echo "$data/disks/n$1"; }
mntns() { echo "$run/mnt/n$1"; }
nd() { docker -H "$(host "$1")" "${@:2}"; }

# nodes: the node numbers that exist in any form (pidfile, netns, dirs).
nodes() {
	{
		ls "$run" "$data" 2>/dev/null | sed -n 's/^n\([0-9]\{1,\}\)\(\.pid\|\.sock\)\{0,1\}$/\1/p'
		ip netns list 2>/dev/null | sed -n 's/^zkswarm-n\([0-9]\{1,\}\).*/\1/p'
		ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: zksw-n\([0-9]\{1,\}\)[@:].*/\1/p'
	} | sort -un
}

# enginepid K: the pid of node K's dockerd, or nothing.
enginepid() {
	local pid
	pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 0
	# A zombie (killed, not yet reaped) is not running.
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] &&
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && echo "$pid"
	return 0
}

answers() { timeout 5 docker -H "$(host "$1")" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_ip() {
	command -v ip >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" swarm-harness iproute2
	command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 ||
		"$(dirname "$0")/apt-install.sh" swarm-harness util-linux
	command -v jq >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" swarm-harness jq
	command -v curl >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" swarm-harness curl
}

# forward_rule: let traffic between the nodes cross the host bridge. The
# DOCKER-USER chain is the host engine's; it is missing for a moment while
# that engine restarts, so wait for it.
forward_rule() {
	local i
	for i in $(seq 1 60); do
		if iptables -C DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; then
			return 0
		fi
		iptables -I DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null && return 0
		sleep 1
	done
	die "cannot add the DOCKER-USER rule for $bridge (is the host's engine up?)"
}

setup_net() {
	local k=$1 n v
	n=$(ns "$k")
	v=$(veth "$k")
	ip netns add "$n"
	ip link add "$v" type veth peer name eth0 netns "$n"
	ip link set "$v" master "$bridge" up
	ip -n "$n" addr add "$(addr "$k")/24" dev eth0
	ip -n "$n" link set lo up
	ip -n "$n" link set eth0 up
	ip -n "$n" route add default via "$net.1"
	# The node's own connections (to the manager, gossip) take their local
	# ports above every port a test publishes (the agent's windows end at
	# 59999), never one a task is about to bind.
	ip netns exec "$n" sysctl -qw net.ipv4.ip_local_port_range="60000 65535"
}

# setup_mnt K: node K's mount namespace, kept in a file on a private mount
# (a namespace file may not sit on a shared one), with its disk at
# $nodepath. Slave propagation: the host's later mounts show in it, none of
# its own (the engine's overlays and network namespaces) show on the host.
setup_mnt() {
	local k=$1
	mkdir -p "$run/mnt" "$(disk "$k")" "$nodepath"
	if ! mountpoint -q "$run/mnt"; then
		mount --bind "$run/mnt" "$run/mnt"
		mount --make-private "$run/mnt"
	fi
	touch "$(mntns "$k")"
	unshare --mount="$(mntns "$k")" --propagation slave \
		mount --bind "$(disk "$k")" "$nodepath"
}

# start_engine K: start node K's dockerd (its data root kept as it is) and
# wait until it answers.
start_engine() {
	local k=$1 pf lg i
	pf=$(pidfile "$k")
	lg=$run/n$k.log
	mkdir -p "$run/n$k" "$data/n$k"
	[ -s "$run/n$k.json" ] || echo '{}' >"$run/n$k.json"
	[ -n "$(enginepid "$k")" ] || rm -f "$pf"
	echo "=== start $(date -u +%FT%TZ)" >>"$lg"
	DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid unshare --uts -- \
		nsenter --net="/run/netns/$(ns "$k")" --mount="$(mntns "$k")" -- \
		sh -c 'hostname "$0" && exec "$@"' "zk-n$k" \
		dockerd \
		--config-file "$run/n$k.json" \
		--data-root "$data/n$k" \
		--exec-root "$run/n$k" \
		-H "$(host "$k")" \
		--pidfile "$pf" \
		--bip "10.78.$k.1/24" \
		--icc=false \
		--no-new-privileges \
		--iptables=true \
		--cgroup-parent "/zaki-swarm-n$k" \
		--containerd-namespace "zaki-swarm-n$k" \
		--containerd-plugins-namespace "zaki-swarm-n$k-plugins" \
		</dev/null >>"$lg" 2>&1 9<&- &
	for i in $(seq 1 300); do
		answers "$k" && return 0
		if [ "$i" -gt 20 ] && ! kill -0 $! 2>/dev/null && [ -z "$(enginepid "$k")" ]; then
			tail -n 20 "$lg" >&2
			die "n$k: dockerd exited (log: $lg)"
		fi
		sleep 0.2
	done
	tail -n 20 "$lg" >&2
	die "n$k: dockerd does not answer after 60 s (log: $lg)"
}

# isolate K: node K's tenant rules, in its own tables (idempotent, and
# kept across engine restarts: the namespace outlives its engine). With
# --icc=false a task cannot reach another's container address; these two
# stop it reaching the others through a published port: no new connection
# from docker0 to the node itself (docker-proxy, the swarm's own ports, the
# docker0 gateway), none from docker0 to the nodes' network (other nodes'
# ports and the host). Replies to the host's connections are not new: the
# backend still reaches every port.
isolate() {
	local k=$1 n rule
	n=$(ns "$k")
	for rule in "INPUT -i docker0 -m conntrack --ctstate NEW -j DROP" \
		"DOCKER-USER -i docker0 -d $net.0/24 -m conntrack --ctstate NEW -j DROP"; do
		# shellcheck disable=SC2086
		ip netns exec "$n" iptables -C $rule 2>/dev/null || ip netns exec "$n" iptables -I $rule
	done
}

# swarm_status K: node K's status as the manager sees it ("ready", "down").
swarm_status() {
	local id
	local id st
	id=$(jq -r --arg n "n$1" '.nodes[] | select(.name == $n) | .nodeId' "$state" 2>/dev/null) || true
	st=$(timeout 5 docker -H "$(host 1)" node inspect -f '{{.Status.State}}' "$id" 2>/dev/null) || st=
	echo "${st:-unknown}"
}

cmd_up() {
	local n=${1:-3} k have id token tar
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$maxnodes" ] || die "up: N must be 1..$maxnodes"
	[ "$(id -u)" = 0 ] || die "needs root"
	if [ -s "$state" ]; then
		have=$(jq '.nodes | length' "$state")
		local ok=1
		for k in $(seq 1 "$have"); do answers "$k" || ok=0; done
		if [ "$ok" = 1 ]; then
			forward_rule
			[ "$have" = "$n" ] || die "already up with $have nodes (asked $n): run down first"
			log "already up with $n nodes: nothing to do"
			return 0
		fi
		log "a previous harness is not healthy: removing it first"
	fi
	if [ -n "$(nodes)" ] || [ -e "$run" ] || ip link show "$bridge" >/dev/null 2>&1; then
		log "leftovers of an earlier run: removing them first"
		cmd_down
	fi
	ensure_ip
	# The host's engine is restarted now and then by CI: wait for it.
	local i
	for i in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		[ "$i" = 60 ] && die "the host's engine does not answer: its image $image is needed"
		sleep 1
	done
	docker image inspect "$image" >/dev/null 2>&1 ||
		die "the host's engine has no $image: build it first (make stub-image), then run up again"

	trap 'log "up failed: run down to remove what it made"' EXIT
	mkdir -p "$run" "$data"
	tar=$run/stub.tar
	docker save -o "$tar" "$image"

	ip link add "$bridge" type bridge
	ip addr add "$net.1/24" dev "$bridge"
	ip link set "$bridge" up
	forward_rule
	for k in $(seq 1 "$n"); do
		setup_net "$k"
		setup_mnt "$k"
	done
	# The engines start one after another: two at once on 2 cores take
	# longer than twice one.
	for k in $(seq 1 "$n"); do
		start_engine "$k"
		isolate "$k"
		nd "$k" load -q -i "$tar" >/dev/null
	done
	rm -f "$tar"

	nd 1 swarm init --advertise-addr "$(addr 1)" --default-addr-pool 10.201.0.0/16 >/dev/null
	token=$(nd 1 swarm join-token -q worker)
	for k in $(seq 2 "$n"); do
		# printf is a builtin: the token is on no command line.
		printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s:2377"],"JoinToken":"%s"}' \
			"$(addr "$k")" "$(addr 1)" "$token" |
			curl -sS --fail-with-body --unix-socket "$(sock "$k")" -H 'Content-Type: application/json' \
				--data-binary @- http://localhost/v1.41/swarm/join >/dev/null ||
			die "n$k: swarm join failed"
	done
	token=

	local nodes_json='[]'
	for k in $(seq 1 "$n"); do
		id=$(nd "$k" info --format '{{.Swarm.NodeID}}')
		[ -n "$id" ] || die "n$k: no swarm node id"
		nd 1 node update --label-add zaki.node=true --label-add "zaki.node.name=n$k" "$id" >/dev/null
		nodes_json=$(jq -c --arg name "n$k" --arg a "$(addr "$k")" --arg s "$(sock "$k")" \
			--arg h "$(host "$k")" --arg id "$id" --arg role "$([ "$k" = 1 ] && echo manager || echo worker)" \
			--arg disk "$(disk "$k")" \
			'. + [{name: $name, address: $a, socket: $s, host: $h, nodeId: $id, role: $role, disk: $disk}]' <<<"$nodes_json")
	done
	# Wait until the manager sees every node ready.
	local ready
	for i in $(seq 1 150); do
		ready=$(nd 1 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
		[ "$ready" = "$n" ] && break
		sleep 0.2
	done
	[ "$ready" = "$n" ] || die "only $ready of $n nodes ready"

	jq -n --arg m "$(host 1)" --arg np "$nodepath" --argjson nodes "$nodes_json" \
		'{manager: $m, nodePath: $np, nodes: $nodes}' >"$state.tmp"
	mv -f "$state.tmp" "$state"
	trap - EXIT
	log "up: $n nodes; manager $(host 1); state $state"
}

# kill_pids PID...: SIGKILL them all, then wait until each is gone (a
# zombie counts as gone: its parent reaps it).
kill_pids() {
	[ $# -gt 0 ] || return 0
	kill -9 "$@" 2>/dev/null || true
	local p i
	for p in "$@"; do
		for i in $(seq 1 50); do
			[ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || break
			sleep 0.1
		done
	done
}

# power_cut K: SIGKILL everything node K runs, as a power cut would: its
# dockerd, then what is left in its namespace (containerd, the shims,
# docker-proxy), then its containers (each in a network namespace of its
# own) found by their cgroups under the node's cgroup parent.
power_cut() {
	local k=$1 pid cg
	pid=$(enginepid "$k")
	if [ -n "$pid" ]; then kill_pids "$pid"; fi
	if ip netns list | grep -q "^$(ns "$k")\( \|$\)"; then
		# shellcheck disable=SC2046
		kill_pids $(ip netns pids "$(ns "$k")" 2>/dev/null)
	fi
	for cg in /sys/fs/cgroup/*/"zaki-swarm-n$k"; do
		[ -d "$cg" ] || continue
		# shellcheck disable=SC2046
		kill_pids $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
	done
}

cmd_down() {
	[ "$(id -u)" = 0 ] || die "needs root"
	local k m cg
	rm -f "$state"
	for k in $(nodes); do power_cut "$k"; done
	# Mounts under the engines' roots (overlays, shm, netns files, the
	# nodes' mount namespaces), deepest first. Those made inside a node's
	# mount namespace are gone with it: it has no process left.
	awk -v r="$run" -v d="$data" 'index($5, r"/") == 1 || index($5, d"/") == 1 {print $5}' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
	for k in $(nodes); do
		ip netns del "$(ns "$k")" 2>/dev/null || true
		ip link del "$(veth "$k")" 2>/dev/null || true
		for cg in /sys/fs/cgroup/*/"zaki-swarm-n$k"; do
			[ -d "$cg" ] && { find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true; }
		done
	done
	ip link del "$bridge" 2>/dev/null || true
	while iptables -C DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; do
		iptables -D DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT
	done
	rm -rf "$run" "$data"
	# The host's side of the nodes' disk path: whatever a test left there.
	rm -rf "$nodepath"
	[ -z "$(nodes)" ] || die "down: left over: nodes $(nodes | tr '\n' ' ')"
	log "down: removed"
}

cmd_status() {
	local k pid eng sw rc=0
	if [ ! -s "$state" ]; then
		if [ -n "$(nodes)" ]; then
			echo "not up (leftovers of nodes $(nodes | tr '\n' ' '); run down)"
		else
			echo "not up"
		fi
		return 3
	fi
	jq -r '"manager \(.manager)"' "$state"
	printf '%-4s %-12s %-8s %-8s %-8s %-8s %s\n' NODE ADDRESS ROLE PID ENGINE SWARM SOCKET
	for k in $(seq 1 "$(jq '.nodes | length' "$state")"); do
		pid=$(enginepid "$k")
		eng=down
		answers "$k" && eng=ok || rc=1
		sw=$(swarm_status "$k")
		[ "$sw" = ready ] || rc=1
		printf '%-4s %-12s %-8s %-8s %-8s %-8s %s\n' "n$k" "$(addr "$k")" \
			"$(jq -r ".nodes[$((k - 1))].role" "$state")" "${pid:--}" "$eng" "$sw" "$(sock "$k")"
	done
	if iptables -C DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; then
		echo "forward rule: present"
	else
		echo "forward rule: MISSING (run up again)"
		rc=1
	fi
	return "$rc"
}

cmd_env() {
	[ -s "$state" ] || die "not up (run: $0 up)"
	local k
	echo "export ZAKI_SWARM_STATE=$state"
	echo "export ZAKI_SWARM_MANAGER=$(jq -r .manager "$state")"
	echo "export ZAKI_SWARM_NODES='$(jq -r '[.nodes[].name] | join(" ")' "$state")'"
	for k in $(seq 1 "$(jq '.nodes | length' "$state")"); do
		echo "export ZAKI_SWARM_N${k}_ADDR=$(addr "$k") ZAKI_SWARM_N${k}_HOST=$(host "$k")"
	done
}

nodearg() {
	[[ ${1:-} =~ ^[0-9]+$ ]] || die "$2: want a node number K (n1 is 1)"
	[ -s "$state" ] || die "not up"
	[ "$1" -ge 1 ] && [ "$1" -le "$(jq '.nodes | length' "$state")" ] || die "$2: no node n$1"
}

cmd_kill_node() {
	nodearg "${1:-}" kill-node
	if [ "${2:-}" = --all ]; then
		power_cut "$1"
		log "n$1: engine, shims and containers killed (SIGKILL)"
		return 0
	fi
	[ -z "${2:-}" ] || die "kill-node: unknown option $2"
	local pid
	pid=$(enginepid "$1")
	[ -n "$pid" ] || { log "n$1: engine not running"; return 0; }
	kill_pids "$pid"
	log "n$1: dockerd $pid killed (SIGKILL); its containers keep running"
}

cmd_start_node() {
	nodearg "${1:-}" start-node
	if answers "$1"; then
		log "n$1: engine already running"
		return 0
	fi
	start_engine "$1"
	isolate "$1"
	log "n$1: engine started (pid $(enginepid "$1"))"
}

# One harness command at a time (two tests' `up` at once would race).
case ${1:-} in
up | down | kill-node | start-node) exec 9<"$0" && flock 9 ;;
esac

case ${1:-} in
up) cmd_up "${2:-3}" ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
kill-node) cmd_kill_node "${2:-}" "${3:-}" ;;
start-node) cmd_start_node "${2:-}" ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
	exit 2
	;;
esac
