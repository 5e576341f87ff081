//! `benchfs-bench`: an IOR/mdtest-like benchmark that runs each access pattern twice in one job,
//! once against BenchFS and once against a local POSIX directory, and prints both figures side by
//! side. Measuring both in the same invocation keeps the ranks, nodes and moment identical, so the
//! ratio says what BenchFS costs or gains over the kernel file system underneath it.
//!
//! ```text
//! mpirun -np 4 target/release/benchfs-bench --mode all --transfer 1M --block 64M
//! ```
//!
//! Patterns (selected with `--mode`):
//! * `fpp`: every rank writes its own file `/bench/fpp.<rank>` (`segments * block` bytes in
//!   `transfer`-sized pieces), then reads back the file of rank `(rank + 1) % N`.
//! * `shared`: one file `/bench/shared` in IOR's segmented layout: segment `s` holds one block per
//!   rank, rank `r` owns block `s * N + r`. The read phase reads rank `(r + 1) % N`'s blocks.
//! * `meta`: every rank creates, stats, opens+closes and removes `--files` files of its own
//!   (`/meta/r<rank>.<i>`), each phase timed on its own.
//! * `dirs`: three namespace patterns, each phase timed on its own:
//!   - `mkdir`, `dir stat`, `rmdir`: every rank creates, stats and removes `--dirs` directories
//!     in a parent of its own (`/dirs/r<rank>/d<i>`);
//!   - `readdir`: all ranks fill one shared directory with `--readdir-files` files each
//!     (`/shared-dir/r<rank>.<i>`, untimed), then every rank lists all of it; the figure is the
//!     number of entries listed by all ranks over the slowest rank's time;
//!   - `rename`: every rank creates `--renames` files (untimed) and renames each of them
//!     (`/ren/r<rank>.<i>` to `/ren/r<rank>.<i>.moved`).
//! * `small`: IO500's mdtest-hard phases (see [`small`]): every rank makes `--small-files`
//!   files of `--small-size` bytes (3901 by default) in one shared directory (create, write,
//!   close), stats and reads back those of the next rank, and removes its own, each phase timed
//!   on its own.
//! * `latency` (not in `all`): rank 0 times single stats, creates and 4 KiB writes and reads that
//!   rank 1 serves, while the other ranks idle, and prints min/p50/p99/max against
//!   `ucx_perftest`'s active-message round trip (see [`latency`]).
//! * `scaling` (not in `all`): init and finalize times, memory per rank, and single operations
//!   of every kind timed on rank 0, for fitting against the number of ranks (see [`scaling`]).
//!
//! The read phases are shifted by one rank (like IOR's `-C`) so that a rank never reads what it
//! has just written itself.
//!
//! Timing: an MPI barrier precedes every phase; each rank times from before its first `open` to
//! after its last `close`, and the phase time is the maximum over the ranks. Bandwidth is the total
//! number of bytes over that time (MiB/s), metadata rates the total number of operations (or
//! directory entries listed) over it. Setup and cleanup around a phase are never timed.
//! With `--iterations N`, every pattern runs N times against each store, and the stores take
//! turns at running first, so that neither always finds what the other left behind.
//!
//! Verification: every byte written is a function of (writer rank, iteration, file offset). The
//! timed read loop checks the length of each read and the first stamp word of each transfer; a
//! second, untimed pass then re-reads everything and compares every byte, so that generating the
//! expected data never counts against either file system. The namespace patterns check every
//! result (a created directory stats as a directory, a renamed file exists only under its new
//! name, a listing holds exactly the expected names plus `.` and `..`), again outside the timing
//! except for the entry count of each timed listing.
//!
//! Modules: [`options`](mod@options) (the command line), [`store`] (the [`store::Store`] trait with its BenchFS
//! and POSIX sides), [`data`] (fpp and shared), [`meta`] (files and directories), [`small`] (small
//! files as mdtest-hard makes them), [`pattern`] (the
//! verifiable data), [`ctx`] (the job context and the tally of wrong results), [`posix_dir`] (the
//! compared directory), [`report`] (configuration and results table) and [`reference`](mod@reference) (the
//! transport's own figures from `ucx_perftest`: the latency mode's round trip, and, with every
//! chunk through UCX (`BENCHFS_NODE_LOCAL=0`), the active-message bandwidth that the fpp
//! figures are divided by under the table).

// `u64::is_multiple_of` is newer than the crate's minimum Rust version.
#![allow(clippy::manual_is_multiple_of)]

mod ctx;
mod data;
mod latency;
mod meta;
mod options;
mod pattern;
mod posix_dir;
mod reference;
mod report;
mod scaling;
mod small;
mod store;

use std::process::ExitCode;
use std::time::Instant;

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use ctx::Ctx;
use data::{run_layout, Layout};
use latency::run_latency;
use meta::{run_dirs, run_files, PARENTS};
use options::{parse_options, Options, Parsed, USAGE};
use posix_dir::{choose_posix_dir, remove_posix_dir, setup_posix_dir, PosixSetup};
use report::{print_config, Table};
use scaling::{process_cpu, rss_kib, run_scaling, Startup};
use small::run_small;
use store::{BenchFs, Posix};

/// Runs every selected pattern against both stores and prints the results table; returns this
/// rank's count of wrong results.
fn run(ctx: &Ctx, posix_root: &str, setup: &PosixSetup, startup: &Startup) -> u64 {
    let posix = Posix { root: posix_root.to_string() };
    let mut table = Table::default();
    let mut bad = 0u64;
    // Each pattern runs against both stores before the next pattern starts (see `in_turn`).
    for iteration in 0..ctx.opts.iterations {
        for layout in [Layout::Fpp, Layout::Shared] {
            let selected = match layout {
                Layout::Fpp => ctx.opts.fpp,
                Layout::Shared => ctx.opts.shared,
            };
            if selected {
                bad += in_turn(
                    iteration,
                    |t| run_layout(ctx, &BenchFs, setup, layout, iteration, t),
                    |t| run_layout(ctx, &posix, setup, layout, iteration, t),
                    &mut table,
                );
            }
        }
        if ctx.opts.meta && ctx.opts.files > 0 {
            bad += in_turn(iteration, |t| run_files(ctx, &BenchFs, iteration, t), |t| run_files(ctx, &posix, iteration, t), &mut table);
        }
        if ctx.opts.dirs {
            bad += in_turn(iteration, |t| run_dirs(ctx, &BenchFs, setup, t), |t| run_dirs(ctx, &posix, setup, t), &mut table);
        }
        if ctx.opts.small && ctx.opts.small_files > 0 {
            bad += in_turn(
                iteration,
                |t| run_small(ctx, &BenchFs, setup, iteration, t),
                |t| run_small(ctx, &posix, setup, iteration, t),
                &mut table,
            );
        }
    }
    if ctx.rank == 0 && (ctx.opts.fpp || ctx.opts.shared || ctx.opts.meta || ctx.opts.dirs || ctx.opts.small) {
        table.print(ctx.opts.iterations);
    }
    if ctx.opts.fpp && std::env::var("BENCHFS_NODE_LOCAL").is_ok_and(|v| v == "0") {
        compare_with_transport(ctx, &table);
    }
    if ctx.opts.latency {
        bad += run_latency(ctx);
    }
    if ctx.opts.scaling {
        bad += run_scaling(ctx, startup);
    }
    bad
}

/// With every chunk crossing UCX (`BENCHFS_NODE_LOCAL=0`), prints the file-per-process figures
/// against `ucx_perftest`'s active-message bandwidth for messages of one transfer (or one
/// chunk, if smaller), measured now on rank 0's node while the other ranks idle.
fn compare_with_transport(ctx: &Ctx, table: &Table) {
    ctx.barrier();
    if ctx.rank == 0 {
        let message = report::chunk_size().map_or(ctx.opts.transfer, |chunk| chunk.min(ctx.opts.transfer));
        match reference::am_bandwidth(message) {
            Ok(bw) => {
                let over = |row: &str| table.benchfs(row).map_or("n/a".to_string(), |v| format!("{:.2}", v / bw));
                println!(
                    "reference: ucx_perftest ucp_am_bw, {} messages, on this node: {bw:.1} MiB/s; BenchFS fpp write / read over it: {} / {}",
                    report::fmt_size(message),
                    over("fpp write"),
                    over("fpp read")
                );
            }
            Err(why) => println!("reference: {why}"),
        }
    }
    ctx.idle_until_all_arrive();
}

/// Runs one pattern against both stores: BenchFS first in even iterations, POSIX first in odd
/// ones. Whatever the first run leaves behind (warm caches; memory just freed, which a virtual
/// machine may have to fault in afresh once it has handed it back to its host) then favours each
/// store alike over the iterations. Returns the count of wrong results.
fn in_turn(iteration: u32, benchfs: impl FnOnce(&mut Table) -> u64, posix: impl FnOnce(&mut Table) -> u64, table: &mut Table) -> u64 {
    if iteration % 2 == 0 {
        let bad = benchfs(table);
        bad + posix(table)
    } else {
        let bad = posix(table);
        bad + benchfs(table)
    }
}

/// The options, or how the program ends when there is nothing to run (help, or bad options).
fn options_or_exit(rank: usize) -> Result<Options, ExitCode> {
    match parse_options(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(o)) => Ok(o),
        Ok(Parsed::Help) => {
            if rank == 0 {
                println!("{USAGE}");
            }
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            if rank == 0 {
                eprintln!("benchfs-bench: {e} (see --help)");
            }
            Err(ExitCode::from(2))
        }
    }
}

/// Starts BenchFS on every rank and creates the directories the patterns work in, once, before
/// any rank uses them. A failure stops the job. Returns what init cost this rank.
fn start_benchfs(world: &SimpleCommunicator, rank: usize) -> Startup {
    world.barrier();
    let rss_before_kib = rss_kib();
    let (start, cpu) = (Instant::now(), process_cpu());
    if let Err(e) = benchfs::init(world) {
        eprintln!("benchfs-bench: rank {rank}: benchfs::init failed: {e} (errno {})", e.errno());
        world.abort(2);
    }
    let startup = Startup { init: start.elapsed(), init_cpu: process_cpu() - cpu, rss_before_kib, rss_after_kib: rss_kib() };
    if rank == 0 {
        for dir in PARENTS {
            if let Err(e) = benchfs::mkdir(dir, 0o755) {
                eprintln!("benchfs-bench: mkdir {dir}: {e} (errno {})", e.errno());
                world.abort(2);
            }
        }
    }
    world.barrier();
    startup
}

fn main() -> ExitCode {
    let Some(universe) = mpi::initialize() else {
        eprintln!("benchfs-bench: MPI was already initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let opts = match options_or_exit(rank) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let startup = start_benchfs(&world, rank);
    let ctx = Ctx { world, rank, size, opts };

    let posix_root = choose_posix_dir(&ctx);
    let setup = setup_posix_dir(&ctx, &posix_root);
    if rank == 0 {
        print_config(&ctx, &posix_root, &setup);
    }
    let bad = ctx.sum_u64(run(&ctx, &posix_root, &setup, &startup));
    remove_posix_dir(&ctx, &posix_root, &setup);
    if rank == 0 && ctx.opts.verify {
        println!();
        match bad {
            0 => println!("verification: passed"),
            n => println!("verification: FAILED ({n} bad transfers or results)"),
        }
    }

    let (start, cpu) = (Instant::now(), process_cpu());
    if let Err(e) = benchfs::finalize() {
        eprintln!("benchfs-bench: rank {rank}: benchfs::finalize failed: {e}");
        return ExitCode::FAILURE;
    }
    let finalize_ms = ctx.max_f64(start.elapsed().as_secs_f64() * 1e3);
    let finalize_cpu_ms = ctx.sum_f64((process_cpu() - cpu).as_secs_f64() * 1e3) / size as f64;
    if rank == 0 && ctx.opts.scaling {
        println!("scaling finalize_ms {finalize_ms:.2}");
        println!("scaling finalize_cpu_ms {finalize_cpu_ms:.2} (CPU time of a rank's process in finalize, mean)");
    }
    drop(ctx);
    drop(universe);
    if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
