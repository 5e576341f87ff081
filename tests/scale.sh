#!/bin/bash
# Scale test: BenchFS's self-checking MPI programs (tests/c) at larger rank counts than CI runs,
# oversubscribed on this one machine, once with the defaults and once with every chunk through
# UCX (BENCHFS_NODE_LOCAL=0). Every program checks every byte and name it reads.
#
#   tests/scale.sh                                        32 and 64 ranks
#   SCALE_RANKS="16 128" SCALE_PROGRAMS="namespace cross_rank" tests/scale.sh
#
# Needs cargo, mpicc, mpirun and pkg-config (what `cargo test` needs). Prints one line per run
# (program, ranks, setting, checks, seconds) and exits non-zero if any run failed. cross_rank
# grows with the square of the rank count: about 70 s at 32 ranks on two cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ranks=${SCALE_RANKS:-32 64}
programs=${SCALE_PROGRAMS:-namespace shared_file}
work=$(mktemp -d "${TMPDIR:-/tmp}/benchfs-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$(id -u)" = 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1

echo "building and installing into $work/prefix"
make -C "$root" install PREFIX="$work/prefix" >"$work/install.log" 2>&1 || {
        tail -20 "$work/install.log"
        exit 1
}
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
for p in $programs; do
        # shellcheck disable=SC2046
        mpicc -std=gnu11 -O2 -pthread -o "$work/$p" "$root/tests/c/$p.c" \
                $(pkg-config --cflags --libs benchfs) -Wl,-rpath,"$work/prefix/lib"
done

failed=0
printf '%-14s %6s  %-12s %-28s %8s\n' program ranks setting checks seconds
for np in $ranks; do
        for p in $programs; do
                for node_local in 1 0; do
                        setting=$([ "$node_local" = 1 ] && echo default || echo all-UCX)
                        data="$work/data"
                        rm -rf "$data" && mkdir -p "$data"
                        start=$(date +%s.%N)
                        status=0
                        BENCHFS_DATA_DIR="$data" BENCHFS_NODE_LOCAL=$node_local \
                                mpirun --oversubscribe -np "$np" -x BENCHFS_DATA_DIR -x BENCHFS_NODE_LOCAL \
                                "$work/$p" >"$work/run.log" 2>&1 || status=$?
                        seconds=$(echo "$(date +%s.%N) - $start" | bc)
                        summary=$(grep -E "^$p: [0-9]+ passed, [0-9]+ failed" "$work/run.log" | tail -1 | cut -d' ' -f2-)
                        if [ "$status" != 0 ] || [ -z "$summary" ] || ! echo "$summary" | grep -q ' 0 failed'; then
                                failed=1
                                summary="FAILED (exit $status) ${summary:-no summary}"
                                tail -20 "$work/run.log"
                        fi
                        printf '%-14s %6s  %-12s %-28s %8.1f\n' "$p" "$np" "$setting" "$summary" "$seconds"
                done
        done
done
exit $failed
