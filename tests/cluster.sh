#!/usr/bin/env bash
# A simulated cluster on one Linux machine, for running BenchFS jobs across hosts.
#
# Each host has its own network (a veth link into a bridge), host name, IPC namespace and a
# mount namespace with a private tmpfs as its node-local store and another over /dev/shm,
# so that neither shared memory nor files reach from one host to another: ranks on different
# hosts can talk only over the network, as on a real cluster. All addresses are private to the
# cluster's namespaces; nothing is added to the machine's own network. Open MPI starts its
# daemons on the hosts through an rsh agent that enters their namespaces.
#
#   tests/cluster.sh up STATE HOSTS [SLOTS]   build hosts h0..h<HOSTS-1> (SLOTS ranks each, 2)
#   tests/cluster.sh mpirun STATE ARGS...     mpirun on h0 across all hosts (ARGS as for mpirun)
#   tests/cluster.sh exec STATE HOST CMD...   run CMD on one host (h0, h1, ...)
#   tests/cluster.sh down STATE               kill everything on the hosts and remove them
#   tests/cluster.sh reap                     remove the clusters of processes that have exited
#   tests/cluster.sh check                    exit 0 if this machine can build a cluster
#
# STATE is a directory the cluster is described in (made by `up`, removed by `down`); its
# `store` is where every host has its private tmpfs, to be used as BENCHFS_DATA_DIR. Whatever
# runs on a host runs in its network namespace; `down` kills every process there.
# Needs root, util-linux (unshare, nsenter) and iproute2 (ip).
#
# Example, 4 hosts with 2 ranks each, everything over TCP:
#   tests/cluster.sh up /tmp/c 4
#   UCX_TLS=tcp,self BENCHFS_DATA_DIR=/tmp/c/store \
#     tests/cluster.sh mpirun /tmp/c -np 8 -x UCX_TLS -x BENCHFS_DATA_DIR ./program
#   tests/cluster.sh down /tmp/c
set -euo pipefail

SUBNET=10.77.0
# Network namespaces are named bfscl-<owner pid>-<n>-<host>: `reap` finds those of owners
# that have exited.
PREFIX=bfscl

die() {
        echo "cluster: $*" >&2
        exit 1
}

can_build() {
        [ "$(id -u)" = 0 ] || {
                echo "needs root (network, mount and PID namespaces)"
                return 1
        }
        local tool
        for tool in unshare nsenter ip; do
                command -v "$tool" >/dev/null || {
                        echo "needs $tool (util-linux, iproute2)"
                        return 1
                }
        done
        unshare --net --uts --ipc --mount true 2>/dev/null || {
                echo "this machine refuses new namespaces"
                return 1
        }
}

# The pid of the process that holds a host's namespaces.
host_pid() {
        cat "$1/$2.pid" 2>/dev/null || die "no host $2 in $1"
}

enter() {
        local state=$1 host=$2
        shift 2
        local pid
        pid=$(host_pid "$state" "$host")
        exec nsenter -t "$pid" -n -u -i -m -- "$@"
}

# Kills every process in a network namespace, then removes it.
remove_netns() {
        local ns=$1 pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [ -n "$pids" ]; then
                # shellcheck disable=SC2086
                kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
}

down() {
        local state=$1 name
        [ -f "$state/name" ] || return 0
        name=$(cat "$state/name")
        local ns
        for ns in $(ip netns list | awk '{print $1}'); do
                case $ns in "$name"-*) remove_netns "$ns" ;; esac
        done
        rm -rf "$state"
}

reap() {
        local ns owner
        for ns in $(ip netns list | awk '{print $1}'); do
                case $ns in "$PREFIX"-*) ;; *) continue ;; esac
                owner=${ns#"$PREFIX"-}
                owner=${owner%%-*}
                [ -d "/proc/$owner" ] || remove_netns "$ns"
        done
}

# Makes host h<i>: its network namespace, linked into the switch, and the process that holds
# its other namespaces.
make_host() {
        local state=$1 name=$2 i=$3
        local ns=$name-h$i host=h$i
        ip netns add "$ns"
        ip -n "$name-sw" link add "$host" type veth peer name eth0 netns "$ns"
        ip -n "$name-sw" link set "$host" master br0 up
        ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # The holder: host name, private /dev/shm, store and /etc/hosts, then sleep.
        # `ip netns exec` gives it a /sys that shows this namespace's network devices.
        ip netns exec "$ns" unshare --uts --ipc --mount --propagation private \
                sh -c 'hostname "$1" &&
                        mount -t tmpfs -o mode=1777 "$1-shm" /dev/shm &&
                        mount -t tmpfs -o mode=0755 "$1-store" "$2/store" &&
                        mount --bind "$2/hosts" /etc/hosts &&
                        touch "$2/$1.ready" &&
                        exec sleep infinity' sh "$host" "$state" </dev/null >/dev/null 2>"$state/$host.log" &
        local holder=$!
        local tries=0
        until [ -e "$state/$host.ready" ]; do
                kill -0 "$holder" 2>/dev/null || die "host $host did not start: $(cat "$state/$host.log")"
                tries=$((tries + 1))
                [ $tries -lt 500 ] || die "host $host did not start within 10 s"
                sleep 0.02
        done
        echo "$holder" >"$state/$host.pid"
}

# The rsh agent Open MPI calls as `agent HOST COMMAND...`: runs the command on that host, as
# ssh would (through a shell).
write_agent() {
        local state=$1 self
        self=$(realpath "${BASH_SOURCE[0]}")
        cat >"$state/agent" <<EOF
#!/bin/sh
host=\$1
shift
exec "$self" exec "$state" "\$host" sh -c "\$*"
EOF
        chmod 0755 "$state/agent"
}

up() {
        local state=$1 hosts=$2 slots=${3:-2}
        [[ $hosts =~ ^[0-9]+$ && $hosts -ge 1 && $hosts -le 200 ]] || die "HOSTS must be 1 to 200"
        [[ $slots =~ ^[0-9]+$ && $slots -ge 1 ]] || die "SLOTS must be a positive number"
        local why
        why=$(can_build) || die "$why"
        [ ! -e "$state/name" ] || die "$state already holds a cluster"
        reap
        case $(realpath -m "$state")/ in
        /dev/shm/*) die "STATE must not lie under /dev/shm: each host has a /dev/shm of its own" ;;
        esac
        mkdir -p "$state/store"
        state=$(realpath "$state")
        local n=0
        while ip netns list | grep -q "^$PREFIX-$PPID-$n-"; do
                n=$((n + 1))
        done
        local name=$PREFIX-$PPID-$n
        echo "$name" >"$state/name"
        # From here on, a failure removes what was made.
        trap 'down "$state"' EXIT
        {
                echo "127.0.0.1 localhost"
                for ((i = 0; i < hosts; i++)); do echo "$SUBNET.$((i + 1)) h$i"; done
        } >"$state/hosts"
        for ((i = 0; i < hosts; i++)); do echo "h$i slots=$slots"; done >"$state/hostfile"
        ip netns add "$name-sw"
        ip -n "$name-sw" link add br0 type bridge
        ip -n "$name-sw" link set br0 up
        for ((i = 0; i < hosts; i++)); do
                make_host "$state" "$name" "$i"
        done
        write_agent "$state"
        trap - EXIT
}

run_mpirun() {
        local state=$1
        shift
        [ -f "$state/hostfile" ] || die "no cluster in $state"
        # The hosts share this machine's cores: bound, every host's first rank would go to the
        # same core, and its ranks would take turns on it where a cluster's run side by side.
        enter "$state" h0 mpirun --hostfile "$state/hostfile" --bind-to none \
                --mca plm_rsh_agent "$state/agent" \
                --mca oob_tcp_if_include "$SUBNET.0/24" \
                --mca btl_tcp_if_include "$SUBNET.0/24" \
                "$@"
}

command=${1:-}
case $command in
up)
        [ $# -ge 3 ] || die "usage: $0 up STATE HOSTS [SLOTS]"
        up "$2" "$3" "${4:-2}"
        ;;
mpirun)
        [ $# -ge 3 ] || die "usage: $0 mpirun STATE ARGS..."
        state=$2
        shift 2
        run_mpirun "$state" "$@"
        ;;
exec)
        [ $# -ge 4 ] || die "usage: $0 exec STATE HOST CMD..."
        state=$2 host=$3
        shift 3
        enter "$state" "$host" "$@"
        ;;
down)
        [ $# -eq 2 ] || die "usage: $0 down STATE"
        down "$2"
        ;;
reap)
        reap
        ;;
check)
        can_build
        ;;
*)
        die "usage: $0 up|mpirun|exec|down|reap|check ... (see the comment at the top)"
        ;;
esac
