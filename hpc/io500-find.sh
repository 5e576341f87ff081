#!/bin/bash
# IO500's external find for BenchFS.
#
# IO500 cannot list BenchFS directories with its built-in pfind, so its
# configuration names this script instead:
#
#   [find]
#   external-script = /path/to/hpc/io500-find.sh
#
# IO500's rank 0 runs it through popen while the other ranks wait, as
#   io500-find.sh <datadir> -newer <resultdir>/timestampfile -size 3901c -name "*01*"
# and reads its last output line, "MATCHED <matched>/<examined>". The script
# hands these arguments unchanged to benchfs-find, which attaches to the
# BenchFS that the IO500 ranks are serving through the contact file named by
# BENCHFS_CONTACT_FILE (the IO500 ranks publish it at benchfs_init).
#
# The script runs inside one of IO500's MPI processes, so it inherits the
# variables through which that process talks to its launcher (Open MPI's
# OMPI_*/PMIX_*, MPICH's PMI_*, Slurm's step variables, ...). An MPI program
# started with them would try to join IO500's job; they are removed first, so
# benchfs-find starts as an MPI job of its own:
#
#   BENCHFS_FIND_NPROCS=1  (default) benchfs-find runs directly, as a singleton
#   BENCHFS_FIND_NPROCS=N  benchfs-find runs as N ranks started by the local
#                          launcher (BENCHFS_FIND_LAUNCHER, default mpirun;
#                          BENCHFS_FIND_LAUNCHER_ARGS adds options), on the
#                          node of IO500's rank 0
#
# benchfs-find is BENCHFS_FIND_BIN if set, else bin/benchfs-find under
# BENCHFS_PREFIX (from the environment or hpc/benchfs.conf), else the one in
# PATH. Errors go to stderr with the prefix "io500-find.sh: error:"; the exit
# status is non-zero then, which IO500 reports as an invalid find phase.
#
# It also works by hand against any BenchFS job that publishes a contact file:
#   BENCHFS_CONTACT_FILE=/path/contact hpc/io500-find.sh /io500 -name '*01*'
set -euo pipefail

fail() {
        echo "io500-find.sh: error: $*" >&2
        exit 1
}

HPC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ------------------------------------------------------------- benchfs-find --

find_bin=${BENCHFS_FIND_BIN:-}
if [[ -z "$find_bin" ]]; then
        if [[ -z "${BENCHFS_PREFIX:-}" && -f "$HPC_DIR/benchfs.conf" ]]; then
                # Only BENCHFS_PREFIX is wanted; the file sets nothing else of use here.
                BENCHFS_PREFIX=$(
                        # shellcheck source=benchfs.conf
                        source "$HPC_DIR/benchfs.conf" > /dev/null 2>&1 || true
                        echo "${BENCHFS_PREFIX:-}"
                )
        fi
        if [[ -n "${BENCHFS_PREFIX:-}" && -x "$BENCHFS_PREFIX/bin/benchfs-find" ]]; then
                find_bin=$BENCHFS_PREFIX/bin/benchfs-find
        elif command -v benchfs-find > /dev/null; then
                find_bin=$(command -v benchfs-find)
        else
                fail "benchfs-find not found: not in ${BENCHFS_PREFIX:-<BENCHFS_PREFIX unset>}/bin nor in PATH; install BenchFS with 'make install PREFIX=...' and set BENCHFS_PREFIX (hpc/benchfs.conf) or BENCHFS_FIND_BIN"
        fi
fi
[[ -f "$find_bin" && -x "$find_bin" ]] || fail "BENCHFS_FIND_BIN=$find_bin: not found or not executable"
if [[ -n "${BENCHFS_PREFIX:-}" && -d "$BENCHFS_PREFIX/lib" ]]; then
        export LD_LIBRARY_PATH="$BENCHFS_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# ------------------------------------------------------------- contact file --

[[ -n "${BENCHFS_CONTACT_FILE:-}" ]] ||
        fail "BENCHFS_CONTACT_FILE is not set: the IO500 job must export it so that its ranks publish their contact information (the hpc/ job scripts do)"
if [[ ! -e "$BENCHFS_CONTACT_FILE" ]]; then
        fail "contact file $BENCHFS_CONTACT_FILE does not exist on $(hostname): BenchFS is not running, or BENCHFS_CONTACT_FILE was not passed to the IO500 ranks, or this is not the node of IO500's rank 0"
fi
[[ -r "$BENCHFS_CONTACT_FILE" ]] ||
        fail "contact file $BENCHFS_CONTACT_FILE is not readable by $(id -un 2>/dev/null || id -u)"

nprocs=${BENCHFS_FIND_NPROCS:-1}
[[ "$nprocs" =~ ^[1-9][0-9]*$ ]] || fail "BENCHFS_FIND_NPROCS='$nprocs' is not a positive number"

# ------------------------------------------------------ leave IO500's MPI job --

# Variables by which MPI processes find their launcher and job: Open MPI
# (OMPI_*, including the OMPI_MCA_* settings mpirun hands its ranks), PMIx,
# PRRTE, PMI/PMI2 (MPICH, Intel MPI, Cray), Hydra, Cray PALS/ALPS, and the
# schedulers, whose variables would make a new launcher start ranks on the
# job's other nodes or inside the running job step.
leave_pattern='^(OMPI_|PMIX_|PRTE_|PRRTE_|ORTE_|PMI_|PMI2_|PMI$|HYDRA_|HYDI_|I_MPI_HYDRA_|I_MPI_PMI|MPI_LOCALNRANKS$|MPI_LOCALRANKID$|MPIR_|PALS_|ALPS_APP_|SLURM_|SRUN_|PBS_|ENVIRONMENT$)'
# Kept: Open MPI's consent to run as root, which a root job needs again.
keep_pattern='^OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)?$'
for var in $(compgen -e); do
        if [[ "$var" =~ $leave_pattern && ! "$var" =~ $keep_pattern ]]; then
                unset "$var"
        fi
done
export BENCHFS_CONTACT_FILE

# ------------------------------------------------------------------- run it --

if [[ "$nprocs" == 1 ]]; then
        cmd=("$find_bin" "$@")
else
        launcher=${BENCHFS_FIND_LAUNCHER:-mpirun}
        command -v "$launcher" > /dev/null ||
                fail "BENCHFS_FIND_NPROCS=$nprocs needs the launcher '$launcher', which is not in PATH (set BENCHFS_FIND_LAUNCHER, or BENCHFS_FIND_NPROCS=1)"
        cmd=("$launcher" -n "$nprocs")
        # IO500's own ranks occupy this node's cores: Open MPI must be told
        # that more ranks than cores is intended.
        if "$launcher" --version 2>&1 | grep -q 'Open MPI'; then
                cmd+=(--oversubscribe)
        fi
        read -r -a launcher_args <<< "${BENCHFS_FIND_LAUNCHER_ARGS:-}"
        cmd+=("${launcher_args[@]}" "$find_bin" "$@")
fi

status=0
"${cmd[@]}" < /dev/null || status=$?
if [[ $status -ne 0 ]]; then
        echo "io500-find.sh: error: '${cmd[*]}' failed with exit status $status" >&2
fi
exit "$status"
