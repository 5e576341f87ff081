#!/bin/bash
# One-node smoke test: IOR writes, reads back and verifies every byte on
# BenchFS, file per process and then one shared file, with ranks started by
# the local mpirun/mpiexec. Run it on a login or compute node before
# submitting jobs:
#
#   hpc/smoke.sh                         settings from hpc/benchfs.conf
#   SMOKE_RANKS=8 BENCHFS_DATA_BASE=/dev/shm hpc/smoke.sh
#
# Exit status 0 means both runs completed and verified.
set -euo pipefail

HPC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HPC_DIR/common.sh"

# Always this node only, even inside a batch allocation.
export BENCHFS_FORCE_LOCAL=1
: "${SMOKE_RANKS:=4}"
: "${SMOKE_TRANSFER:=1m}"
: "${SMOKE_BLOCK:=16m}"
RANKS_PER_NODE=$SMOKE_RANKS

benchfs_job_setup ior

IOR_ITERATIONS=1
IOR_MODES="fpp shared"
IOR_TRANSFER=$SMOKE_TRANSFER
IOR_BLOCK=$SMOKE_BLOCK
IOR_SEGMENTS=1

if benchfs_run_ior; then
        hpc_note "smoke test passed: IOR wrote, read and verified ${SMOKE_RANKS} x $SMOKE_BLOCK per pattern on BenchFS"
else
        hpc_fail "smoke test failed; see the output above and the files in $RESULT_DIR"
fi
