#!/usr/bin/env bash
# Quick start: installs what a Debian/Ubuntu machine lacks, builds BenchFS, and runs a 4-rank
# MPI job on it (examples/demo.rs: every rank writes a file, every rank reads all of them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

.ci/install-deps
cargo build --release --example demo

# Open MPI refuses to run as root unless told it is intended.
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/benchfs-demo.XXXXXX")
trap 'rm -rf "$data_dir"' EXIT
BENCHFS_DATA_DIR=$data_dir mpirun --oversubscribe -np "${RANKS:-4}" -x BENCHFS_DATA_DIR target/release/examples/demo
