# Functions shared by the BenchFS job scripts in hpc/. Sourced, not run.
#
# A job script sets HPC_DIR (the directory of this file) and calls:
#   benchfs_job_setup ior|mdtest|io500   settings, checks, per-node data dirs
#   benchfs_run_ior | benchfs_run_mdtest | benchfs_run_io500
# Everything fails early with a message that names what is missing.

# ---------------------------------------------------------------- messages --

hpc_fail() {
        echo "benchfs-hpc: error: $*" >&2
        exit 1
}

hpc_note() {
        echo "benchfs-hpc: $*"
}

# ---------------------------------------------------------------- settings --

benchfs_load_settings() {
        [[ -f "$HPC_DIR/benchfs.conf" ]] || hpc_fail "settings file $HPC_DIR/benchfs.conf not found"
        # shellcheck source=benchfs.conf
        source "$HPC_DIR/benchfs.conf"
        export BENCHFS_CHUNK_SIZE BENCHFS_IO_BACKEND BENCHFS_KEEP_DATA BENCHFS_LOG
}

# Sets SCHEDULER, JOB_ID, NNODES, RANKS_PER_NODE, NRANKS and HOSTFILE.
benchfs_job_geometry() {
        HOSTFILE=""
        if [[ "${BENCHFS_FORCE_LOCAL:-0}" == 1 ]]; then
                SCHEDULER=local
                JOB_ID=local-$(date +%Y%m%d-%H%M%S)-$$
                NNODES=1
        elif [[ -n "${SLURM_JOB_ID:-}" ]]; then
                SCHEDULER=slurm
                JOB_ID=$SLURM_JOB_ID
                NNODES=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
                # "4" or "4(x2)"; the first figure is the one asked for.
                local per_node=${SLURM_NTASKS_PER_NODE:-}
                per_node=${per_node%%(*}
                [[ -n "$per_node" ]] && RANKS_PER_NODE=$per_node
        elif [[ -n "${PBS_JOBID:-}" ]]; then
                SCHEDULER=pbs
                JOB_ID=${PBS_JOBID%%.*}
                [[ -r "${PBS_NODEFILE:-}" ]] || hpc_fail "PBS_NODEFILE is not set or not readable"
                HOSTFILE=$PBS_NODEFILE
                NNODES=$(sort -u "$PBS_NODEFILE" | wc -l)
        else
                SCHEDULER=local
                JOB_ID=local-$(date +%Y%m%d-%H%M%S)-$$
                NNODES=1
        fi
        [[ "$RANKS_PER_NODE" =~ ^[1-9][0-9]*$ ]] || hpc_fail "RANKS_PER_NODE='$RANKS_PER_NODE' is not a positive number"
        [[ "$NNODES" =~ ^[1-9][0-9]*$ ]] || hpc_fail "cannot tell the number of nodes (got '$NNODES')"
        NRANKS=$((NNODES * RANKS_PER_NODE))
        if [[ $SCHEDULER == pbs ]]; then
                local slots
                slots=$(wc -l < "$PBS_NODEFILE")
                [[ $((slots / NNODES)) -eq $RANKS_PER_NODE ]] ||
                        hpc_note "PBS gave $((slots / NNODES)) slots per node but RANKS_PER_NODE=$RANKS_PER_NODE; make mpiprocs in -l select match it"
        fi
        if [[ -z "$MPI_LAUNCHER" ]]; then
                if [[ $SCHEDULER == slurm ]]; then
                        MPI_LAUNCHER=srun
                elif command -v mpirun > /dev/null && mpirun --version 2>&1 | grep -q 'Open MPI'; then
                        MPI_LAUNCHER=openmpi
                else
                        MPI_LAUNCHER=mpich
                fi
        fi
}

# ------------------------------------------------------------------ checks --

benchfs_check_prefix() {
        [[ -n "${BENCHFS_PREFIX:-}" ]] || hpc_fail "BENCHFS_PREFIX is not set (hpc/benchfs.conf)"
        [[ -f "$BENCHFS_PREFIX/lib/libbenchfs.so" ]] ||
                hpc_fail "BENCHFS_PREFIX=$BENCHFS_PREFIX has no lib/libbenchfs.so; install BenchFS there with 'make install PREFIX=$BENCHFS_PREFIX'"
}

# benchfs_check_binary NAME PATH: PATH runs, finds libbenchfs, and has the BENCHFS backend.
benchfs_check_binary() {
        local name=$1 path=$2
        [[ -n "$path" ]] || hpc_fail "$name is not set (hpc/benchfs.conf)"
        [[ -x "$path" ]] || hpc_fail "$name=$path: binary not found or not executable"
        grep -qa 'benchfs.chunk-size' "$path" ||
                hpc_fail "$name=$path was built without the BenchFS backend (see ior_patch/README.md)"
        if command -v ldd > /dev/null && ldd "$path" | grep -q 'libbenchfs.* not found'; then
                hpc_fail "$name=$path cannot find libbenchfs.so; relink with -Wl,-rpath,$BENCHFS_PREFIX/lib or add it to LD_LIBRARY_PATH"
        fi
}

benchfs_check_launcher() {
        case "$MPI_LAUNCHER" in
        srun)    command -v srun > /dev/null || hpc_fail "MPI_LAUNCHER=srun but srun is not in PATH" ;;
        openmpi) command -v mpirun > /dev/null || hpc_fail "MPI_LAUNCHER=openmpi but mpirun is not in PATH" ;;
        mpich)   command -v mpiexec > /dev/null || hpc_fail "MPI_LAUNCHER=mpich but mpiexec is not in PATH" ;;
        *)       hpc_fail "MPI_LAUNCHER='$MPI_LAUNCHER': expected srun, openmpi or mpich" ;;
        esac
}

# ---------------------------------------------------------------- launcher --

# benchfs_launch RANKS_PER_NODE CMD...: runs CMD on every node with that many
# ranks per node. Open MPI's mpirun passes on only the variables it is told
# about, so every BENCHFS_* and UCX_* variable is named explicitly.
benchfs_launch() {
        local per_node=$1
        shift
        local total=$((NNODES * per_node))
        local -a extra=()
        read -r -a extra <<< "$MPI_LAUNCHER_ARGS"
        case "$MPI_LAUNCHER" in
        srun)
                srun --nodes="$NNODES" --ntasks="$total" --ntasks-per-node="$per_node" \
                        "${extra[@]}" "$@"
                ;;
        openmpi)
                local -a cmd=(mpirun -np "$total")
                if [[ $SCHEDULER == local ]]; then
                        cmd+=(--oversubscribe)
                else
                        cmd+=(--map-by "ppr:$per_node:node")
                fi
                [[ -n "$HOSTFILE" ]] && cmd+=(--hostfile "$HOSTFILE")
                local var
                for var in $(compgen -e | grep -E '^(BENCHFS_|UCX_|OMPI_ALLOW_RUN_AS_ROOT)' || true); do
                        cmd+=(-x "$var")
                done
                "${cmd[@]}" "${extra[@]}" "$@"
                ;;
        mpich)
                local -a cmd=(mpiexec -n "$total" -ppn "$per_node")
                [[ -n "$HOSTFILE" ]] && cmd+=(-f "$HOSTFILE")
                "${cmd[@]}" "${extra[@]}" "$@"
                ;;
        esac
}

# ------------------------------------------------------------ data directory --

# File system types that are shared between nodes (as `stat -f -c %T` names them).
BENCHFS_SHARED_FS_TYPES='nfs|nfs4|lustre|gpfs|beegfs|cifs|smb2|ceph|fuse.*|panfs|gfs2|ocfs2|afs|wekafs|9p'

# Runs on one rank per node: creates this job's data directory and checks it.
# Prints one line naming the node and the problem, and fails, if it is unusable.
BENCHFS_NODE_CHECK='
dir=$1 allow_shared=$2 types=$3 host=$(hostname)
mkdir -p "$dir" 2>/dev/null || { echo "$host: cannot create data directory $dir" >&2; exit 1; }
probe="$dir/.benchfs-probe.$$"
( : > "$probe" ) 2>/dev/null && rm -f "$probe" || { echo "$host: data directory $dir is not writable" >&2; exit 1; }
fs=$(stat -f -c %T "$dir")
if [[ "$allow_shared" != 1 ]] && [[ "$fs" =~ ^($types)$ ]]; then
        echo "$host: data directory $dir is on $fs, a shared file system; BenchFS needs node-local storage (set BENCHFS_DATA_BASE, or BENCHFS_ALLOW_SHARED_DATA_DIR=1 to insist)" >&2
        exit 1
fi
'

benchfs_prepare_data_dir() {
        [[ -n "${BENCHFS_DATA_BASE:-}" ]] || hpc_fail "BENCHFS_DATA_BASE is not set (hpc/benchfs.conf)"
        [[ "$BENCHFS_DATA_BASE" == /* ]] || hpc_fail "BENCHFS_DATA_BASE=$BENCHFS_DATA_BASE is not an absolute path"
        [[ -d "$BENCHFS_DATA_BASE" ]] || hpc_fail "BENCHFS_DATA_BASE=$BENCHFS_DATA_BASE does not exist on $(hostname)"
        export BENCHFS_DATA_DIR="$BENCHFS_DATA_BASE/benchfs-job-$JOB_ID"
        benchfs_launch 1 bash -c "$BENCHFS_NODE_CHECK" node-check \
                "$BENCHFS_DATA_DIR" "$BENCHFS_ALLOW_SHARED_DATA_DIR" "$BENCHFS_SHARED_FS_TYPES" ||
                hpc_fail "the data directory is unusable on at least one node (see above)"
        BENCHFS_DATA_DIR_READY=1
        trap benchfs_remove_data_dir EXIT
}

# Runs at exit: BenchFS removes its chunk files at finalize, this removes the
# job directory around them, and whatever a failed run left behind.
benchfs_remove_data_dir() {
        local status=$?
        if [[ "${BENCHFS_DATA_DIR_READY:-0}" == 1 && "$BENCHFS_KEEP_DATA" != 1 ]]; then
                benchfs_launch 1 rm -rf -- "$BENCHFS_DATA_DIR" || hpc_note "could not remove $BENCHFS_DATA_DIR on every node"
        fi
        return "$status"
}

# ------------------------------------------------------------------- setup --

# benchfs_check_scale: warns of what a job of NRANKS ranks needs from UCX and
# the system (see docs/scaling.md).
benchfs_check_scale() {
        local tls=",${UCX_TLS:-},"
        if [[ $NRANKS -gt 256 && "$tls" == *,rc* && "$tls" != *,dc* ]]; then
                hpc_note "UCX_TLS=$UCX_TLS with $NRANKS ranks: RC needs a queue pair (16 KiB of send queue and more) per peer a rank talks to; with dc in UCX_TLS (or UCX_TLS unset, so that UCX picks DC above 256 endpoints) that memory stays constant"
        fi
        local files
        files=$(ulimit -n)
        # The store keeps its descriptors within a quarter of the limit; sockets need the rest.
        if [[ "$files" != unlimited && "$files" -lt $((2 * NRANKS)) ]]; then
                hpc_note "ulimit -n is $files: over TCP every peer a rank talks to is a socket; with $NRANKS ranks raise it to at least $((2 * NRANKS))"
        fi
}

# benchfs_job_setup BENCHMARK: everything a run needs, checked up front.
benchfs_job_setup() {
        local bench=$1
        benchfs_load_settings
        benchfs_job_geometry
        benchfs_check_prefix
        benchfs_check_launcher
        benchfs_check_scale
        case "$bench" in
        ior)    benchfs_check_binary IOR_BIN "$IOR_BIN" ;;
        app)
                [[ -f "$BENCHFS_PREFIX/lib/libbenchfs-preload.so" ]] ||
                        hpc_fail "$BENCHFS_PREFIX/lib/libbenchfs-preload.so not found; reinstall BenchFS with 'make install PREFIX=$BENCHFS_PREFIX'"
                ;;
        mdtest) benchfs_check_binary MDTEST_BIN "$MDTEST_BIN" ;;
        io500)
                benchfs_check_binary IO500_BIN "$IO500_BIN"
                [[ "$IO500_FIND" == off ]] || benchfs_check_io500_find
                ;;
        *)      hpc_fail "unknown benchmark '$bench'" ;;
        esac
        mkdir -p "$RESULT_DIR" || hpc_fail "cannot create RESULT_DIR=$RESULT_DIR"
        [[ -w "$RESULT_DIR" ]] || hpc_fail "RESULT_DIR=$RESULT_DIR is not writable"
        export LD_LIBRARY_PATH="$BENCHFS_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        benchfs_prepare_data_dir
        hpc_note "job $JOB_ID ($SCHEDULER): $NNODES node(s) x $RANKS_PER_NODE ranks, launcher $MPI_LAUNCHER"
        hpc_note "data: $BENCHFS_DATA_DIR on each node, chunk size $BENCHFS_CHUNK_SIZE, results in $RESULT_DIR"
}

# benchfs_run_logged FILE CMD...: runs CMD, keeping its output in FILE after
# a header that records the command and the settings that shaped it.
benchfs_run_logged() {
        local file=$1
        shift
        {
                echo "# $(date -Is) job $JOB_ID on $NNODES node(s) x $RANKS_PER_NODE ranks"
                echo "# command: $*"
                local var
                for var in $(compgen -e | grep -E '^(BENCHFS_|UCX_)' || true); do
                        echo "# $var=${!var}"
                done
        } > "$file"
        hpc_note "running: $*"
        local status=0
        benchfs_launch "$RANKS_PER_NODE" "$@" 2>&1 | tee -a "$file" || status=$?
        if [[ $status -ne 0 ]]; then
                hpc_note "FAILED (exit status $status); output in $file"
                return "$status"
        fi
        # IOR and mdtest report failed checks and backend failures this way;
        # IO500's "ERROR INVALID" lines judge the rules, not the data.
        # io500-find.sh reports its failures (and benchfs-find's) itself.
        if grep -qE '^ERROR:|Incorrect data|verification error|WARNING: .*benchfs_|^io500-find\.sh: error:' "$file"; then
                hpc_note "FAILED: errors reported; see $file"
                return 1
        fi
        hpc_note "result: $file"
}

# ---------------------------------------------------------- unmodified app --

# benchfs_run_app CMD...: runs an unmodified MPI program on every rank with
# libbenchfs-preload.so loaded: its files under BENCHFS_MOUNT (/benchfs unless
# set) live on BenchFS for the job's lifetime. Only the ranks get LD_PRELOAD.
benchfs_run_app() {
        [[ $# -gt 0 ]] || hpc_fail "no program given: sbatch|qsub ... -- PROGRAM ARGS..."
        export BENCHFS_MOUNT="${BENCHFS_MOUNT:-/benchfs}"
        hpc_note "files under $BENCHFS_MOUNT are on BenchFS until the program calls MPI_Finalize"
        benchfs_run_logged "$RESULT_DIR/app-$JOB_ID.txt" \
                env LD_PRELOAD="$BENCHFS_PREFIX/lib/libbenchfs-preload.so" "$@"
}

# -------------------------------------------------------------------- IOR --

benchfs_run_ior() {
        local geometry="N${NNODES}x${RANKS_PER_NODE}" failed=0 mode
        local -a extra=()
        read -r -a extra <<< "$IOR_EXTRA_ARGS"
        for mode in $IOR_MODES; do
                # -W/-R: verify after write and on read; -C: read what another
                # node (or rank) wrote; -e: fsync at the end of the write phase.
                local -a args=(-a BENCHFS -w -r -W -R -C -e -G 1234567 -i "$IOR_ITERATIONS")
                local name
                case "$mode" in
                fpp)
                        args+=(-F -t "$IOR_TRANSFER" -b "$IOR_BLOCK" -s "$IOR_SEGMENTS" -o /ior-fpp/testfile)
                        name="ior-$JOB_ID-fpp-$geometry-t$IOR_TRANSFER-b$IOR_BLOCK-s$IOR_SEGMENTS"
                        ;;
                shared)
                        args+=(-t "$IOR_TRANSFER" -b "$IOR_BLOCK" -s "$IOR_SEGMENTS" -o /ior-shared/testfile)
                        name="ior-$JOB_ID-shared-$geometry-t$IOR_TRANSFER-b$IOR_BLOCK-s$IOR_SEGMENTS"
                        ;;
                hard)
                        args+=(-t 47008 -b 47008 -s "$IOR_HARD_SEGMENTS" -o /ior-hard/testfile)
                        name="ior-$JOB_ID-hard-$geometry-t47008-s$IOR_HARD_SEGMENTS"
                        ;;
                *)
                        hpc_fail "IOR_MODES: unknown pattern '$mode' (expected fpp, shared, hard)"
                        ;;
                esac
                benchfs_run_logged "$RESULT_DIR/$name.txt" "$IOR_BIN" "${args[@]}" "${extra[@]}" || failed=1
        done
        return "$failed"
}

# ----------------------------------------------------------------- mdtest --

benchfs_run_mdtest() {
        local geometry="N${NNODES}x${RANKS_PER_NODE}" failed=0 mode
        local -a extra=()
        read -r -a extra <<< "$MDTEST_EXTRA_ARGS"
        for mode in $MDTEST_MODES; do
                local -a args=(-a BENCHFS -i "$MDTEST_ITERATIONS")
                local name
                case "$mode" in
                easy)
                        args+=(-n "$MDTEST_ITEMS" -F -u -d /mdtest-easy)
                        name="mdtest-$JOB_ID-easy-$geometry-n$MDTEST_ITEMS"
                        ;;
                hard)
                        args+=(-n "$MDTEST_ITEMS" -w 3901 -e 3901 -X -F -d /mdtest-hard)
                        name="mdtest-$JOB_ID-hard-$geometry-n$MDTEST_ITEMS"
                        ;;
                tree)
                        # No phase option: every phase runs, directory rename included.
                        args+=(-n "$MDTEST_TREE_ITEMS" -z 2 -b 3 -d /mdtest-tree)
                        name="mdtest-$JOB_ID-tree-$geometry-n$MDTEST_TREE_ITEMS-z2-b3"
                        ;;
                *)
                        hpc_fail "MDTEST_MODES: unknown pattern '$mode' (expected easy, hard, tree)"
                        ;;
                esac
                benchfs_run_logged "$RESULT_DIR/$name.txt" "$MDTEST_BIN" "${args[@]}" "${extra[@]}" || failed=1
        done
        return "$failed"
}

# ------------------------------------------------------------------ IO500 --

# pfind, IO500's built-in find, reads directories with POSIX calls and cannot
# see BenchFS. The generated configuration names io500-find.sh as the external
# find script instead: IO500's rank 0 runs it, and it searches the running
# BenchFS with benchfs-find, attached through the contact file the IO500 ranks
# publish (BENCHFS_CONTACT_FILE). The optional find-easy and find-hard phases
# (io500 --mode=extended) use it too. IO500_FIND=off turns the find phases off.
benchfs_write_io500_ini() {
        local ini=$1 resdir=$2 find_section
        if [[ "$IO500_FIND" == off ]]; then
                find_section="[find]
run = FALSE

[find-easy]
run = FALSE

[find-hard]
run = FALSE"
        else
                find_section="[find]
external-script = $HPC_DIR/io500-find.sh

[find-easy]
external-script = $HPC_DIR/io500-find.sh

[find-hard]
external-script = $HPC_DIR/io500-find.sh"
        fi
        cat > "$ini" <<EOF
[global]
datadir = /io500
timestamp-datadir = FALSE
resultdir = $resdir
timestamp-resultdir = FALSE
api = BENCHFS
drop-caches = FALSE

[debug]
stonewall-time = $IO500_STONEWALL

[ior-easy]
transferSize = $IO500_IOR_EASY_TRANSFER
blockSize = $IO500_IOR_EASY_BLOCK
filePerProc = TRUE

[mdtest-easy]
n = $IO500_MDTEST_EASY_N

[ior-hard]
segmentCount = $IO500_IOR_HARD_SEGMENTS

[mdtest-hard]
n = $IO500_MDTEST_HARD_N

$find_section
EOF
}

# benchfs_check_io500_find: what io500-find.sh needs, checked before the job
# starts anything.
benchfs_check_io500_find() {
        [[ "$IO500_FIND" == benchfs ]] || hpc_fail "IO500_FIND='$IO500_FIND': expected benchfs or off"
        local script="$HPC_DIR/io500-find.sh"
        [[ -f "$script" && -x "$script" ]] || hpc_fail "$script not found or not executable (chmod +x it)"
        # IO500 hands the script's path to a shell, unquoted.
        [[ "$script" =~ ^[A-Za-z0-9_./+,:@%=-]+$ ]] ||
                hpc_fail "the path $script contains characters IO500 cannot pass to a shell; use a checkout without spaces or special characters, or IO500_FIND=off"
        BENCHFS_FIND_BIN=${BENCHFS_FIND_BIN:-$BENCHFS_PREFIX/bin/benchfs-find}
        [[ -x "$BENCHFS_FIND_BIN" ]] ||
                hpc_fail "$BENCHFS_FIND_BIN not found or not executable; install BenchFS with 'make install PREFIX=$BENCHFS_PREFIX' (it installs bin/benchfs-find), set BENCHFS_FIND_BIN, or IO500_FIND=off"
        [[ "$BENCHFS_FIND_NPROCS" =~ ^[1-9][0-9]*$ ]] ||
                hpc_fail "BENCHFS_FIND_NPROCS='$BENCHFS_FIND_NPROCS' is not a positive number"
        if [[ "$BENCHFS_FIND_NPROCS" -gt 1 ]]; then
                command -v "${BENCHFS_FIND_LAUNCHER:-mpirun}" > /dev/null ||
                        hpc_fail "BENCHFS_FIND_NPROCS=$BENCHFS_FIND_NPROCS needs ${BENCHFS_FIND_LAUNCHER:-mpirun}, which is not in PATH (set BENCHFS_FIND_LAUNCHER)"
        fi
}

# benchfs_prepare_io500_find: has the IO500 ranks publish their contact file
# and hands io500-find.sh its settings. The file goes to this job's data
# directory, which exists on every node, belongs to the job's user and is
# removed at the end of the job; rank 0 writes it on its own node, where IO500
# also runs the find script.
benchfs_prepare_io500_find() {
        export BENCHFS_FIND_BIN BENCHFS_FIND_NPROCS BENCHFS_FIND_LAUNCHER BENCHFS_FIND_LAUNCHER_ARGS BENCHFS_PREFIX
        export BENCHFS_CONTACT_FILE=${BENCHFS_CONTACT_FILE:-$BENCHFS_DATA_DIR/io500.contact}
        hpc_note "find: $BENCHFS_FIND_BIN with $BENCHFS_FIND_NPROCS rank(s), contact file $BENCHFS_CONTACT_FILE on the node of rank 0"
}

benchfs_run_io500() {
        local name="io500-$JOB_ID-N${NNODES}x${RANKS_PER_NODE}"
        local resdir="$RESULT_DIR/$name"
        local ini="$RESULT_DIR/$name.ini"
        mkdir -p "$resdir"
        if [[ -n "$IO500_INI" ]]; then
                [[ -r "$IO500_INI" ]] || hpc_fail "IO500_INI=$IO500_INI not found"
                grep -qiE '^[[:space:]]*api[[:space:]]*=[[:space:]]*BENCHFS' "$IO500_INI" ||
                        hpc_fail "IO500_INI=$IO500_INI does not set 'api = BENCHFS' in [global]"
                cp "$IO500_INI" "$ini"
        else
                benchfs_write_io500_ini "$ini" "$resdir"
                if [[ "$IO500_FIND" == off ]]; then
                        hpc_note "wrote $ini (find phases off: the run is not a valid IO500 submission)"
                else
                        hpc_note "wrote $ini (find phases run $HPC_DIR/io500-find.sh)"
                fi
        fi
        # A configuration of one's own may name io500-find.sh as well, so the
        # ranks publish their contact file unless find is off.
        [[ "$IO500_FIND" == off ]] || benchfs_prepare_io500_find
        benchfs_run_logged "$RESULT_DIR/$name.txt" "$IO500_BIN" "$ini"
}
