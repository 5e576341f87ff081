//! `--mode scaling`: what one job of N ranks costs, for fitting against N (`tools/scaling.py`
//! runs it from 2 to 64 ranks and writes the tables of `docs/scaling.md`).
//!
//! * start-up: the slowest rank's `benchfs_init` and each rank's resident memory before and
//!   after it (the job's maximum and mean);
//! * single operations, timed one at a time on rank 0 while every other rank's application idles
//!   in a sleeping wait: the paths are spread over all ranks by placement, so each figure is the
//!   average over where a record may lie (rank 0 itself included, one time in N). Directory
//!   listings cover an empty directory and one of `--scaling-entries` entries that all ranks
//!   made beforehand, untimed; a directory rename moves a directory holding a few files;
//! * the slowest rank's `benchfs_finalize`, printed by the caller after it (see `main`).
//!
//! Every result is checked: a listing must hold exactly the names made, a renamed file must be
//! found under its new name only, statvfs must report a store.
//!
//! Output lines are meant for both people and the script: `scaling <name> <value...>`, with
//! names that hold no spaces.

use std::time::{Duration, Instant};

use mpi::traits::*;

use crate::ctx::Ctx;

const DIR: &str = "/scaling";
/// Files in each directory that a timed directory rename moves.
const FILES_PER_MOVED_DIR: usize = 4;

/// What `main` measured around `benchfs_init`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Startup {
    pub init: Duration,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

/// This process's resident memory in KiB (`VmRSS`), or 0 where /proc does not say.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Times of one kind of operation on rank 0.
struct Samples {
    name: &'static str,
    times: Vec<Duration>,
}

impl Samples {
    fn new(name: &'static str) -> Samples {
        Samples { name, times: Vec::new() }
    }

    /// Times `op`; a failure (or a result `op` judges wrong) counts as bad and is not kept.
    fn time(&mut self, bad: &mut u64, op: impl FnOnce() -> bool) {
        let start = Instant::now();
        let ok = op();
        let took = start.elapsed();
        if ok {
            self.times.push(took);
        } else {
            *bad += 1;
        }
    }

    fn micros(&self) -> (f64, f64) {
        let mut sorted = self.times.clone();
        sorted.sort_unstable();
        let p50 = sorted.get(sorted.len() / 2).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        let total: Duration = sorted.iter().sum();
        (p50, total.as_secs_f64() * 1e6 / sorted.len().max(1) as f64)
    }
}

fn create(path: &str) -> bool {
    benchfs::open(path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644).is_ok_and(|fd| benchfs::close(fd).is_ok())
}

/// The names in directory `path` (without `.` and `..`), or None if listing failed.
fn list(path: &str) -> Option<Vec<Vec<u8>>> {
    let dir = benchfs::opendir(path).ok()?;
    let mut names = Vec::new();
    for entry in dir {
        let name = entry.ok()?.name;
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Some(names)
}

/// Every rank makes its share of the `entries` files of `{DIR}/full`, untimed.
fn fill(ctx: &Ctx, entries: u64) -> u64 {
    let mut bad = 0;
    for i in (ctx.rank as u64..entries).step_by(ctx.size) {
        bad += u64::from(!create(&format!("{DIR}/full/e{i}")));
    }
    bad
}

/// Rank 0's timed operations: `n` of each kind (a tenth as many listings of the full directory
/// and directory renames); returns the samples and the count of failed or wrong results.
fn measure(n: usize, entries: u64) -> (Vec<Samples>, u64) {
    let mut bad = 0u64;
    let [mut creates, mut stats, mut renames, mut unlinks] = ["create", "stat", "rename-file", "unlink"].map(Samples::new);
    let [mut mkdirs, mut empty_lists, mut rmdirs, mut statvfs] = ["mkdir", "readdir-empty", "rmdir", "statvfs"].map(Samples::new);
    let [mut full_lists, mut dir_renames] = ["readdir-full", "rename-dir"].map(Samples::new);
    for i in 0..n {
        let (path, moved, dir) = (format!("{DIR}/f{i}"), format!("{DIR}/m{i}"), format!("{DIR}/d{i}"));
        creates.time(&mut bad, || create(&path));
        stats.time(&mut bad, || benchfs::stat(&path).is_ok_and(|st| st.size == 0));
        renames.time(&mut bad, || benchfs::rename(&path, &moved).is_ok());
        bad += u64::from(benchfs::stat(&path).is_ok() || benchfs::stat(&moved).is_err());
        unlinks.time(&mut bad, || benchfs::unlink(&moved).is_ok());
        mkdirs.time(&mut bad, || benchfs::mkdir(&dir, 0o755).is_ok());
        empty_lists.time(&mut bad, || list(&dir).is_some_and(|names| names.is_empty()));
        rmdirs.time(&mut bad, || benchfs::rmdir(&dir).is_ok());
        statvfs.time(&mut bad, || benchfs::statvfs(DIR).is_ok_and(|st| st.blocks > 0));
    }
    for i in 0..n.div_ceil(10) {
        full_lists.time(&mut bad, || list(&format!("{DIR}/full")).is_some_and(|names| names.len() as u64 == entries));
        let (from, to) = (format!("{DIR}/t{i}"), format!("{DIR}/u{i}"));
        bad += u64::from(benchfs::mkdir(&from, 0o755).is_err());
        for f in 0..FILES_PER_MOVED_DIR {
            bad += u64::from(!create(&format!("{from}/g{f}")));
        }
        dir_renames.time(&mut bad, || benchfs::rename(&from, &to).is_ok());
        for f in 0..FILES_PER_MOVED_DIR {
            let (old, new) = (format!("{from}/g{f}"), format!("{to}/g{f}"));
            bad += u64::from(benchfs::stat(&old).is_ok() || benchfs::unlink(&new).is_err());
        }
        bad += u64::from(benchfs::rmdir(&to).is_err());
    }
    let samples = vec![creates, stats, renames, unlinks, mkdirs, empty_lists, rmdirs, statvfs, full_lists, dir_renames];
    (samples, bad)
}

/// Waits for every rank without keeping a core busy (a blocking MPI barrier may spin).
fn idle_until_all_arrive(ctx: &Ctx) {
    let mut request = ctx.world.immediate_barrier();
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => request = pending,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Ranks that share rank 0's node.
fn ranks_per_node(ctx: &Ctx) -> u64 {
    let node = ctx.world.split_shared(0);
    let mine = if ctx.rank == 0 { node.size() as u64 } else { 0 };
    ctx.sum_u64(mine)
}

/// Runs the scaling pattern; returns this rank's count of failed or wrong results.
pub fn run_scaling(ctx: &Ctx, startup: &Startup) -> u64 {
    let init_ms = ctx.max_f64(startup.init.as_secs_f64() * 1e3);
    let rss_max = ctx.max_f64(startup.rss_after_kib as f64);
    let rss_mean = ctx.sum_u64(startup.rss_after_kib) as f64 / ctx.size as f64;
    let before_max = ctx.max_f64(startup.rss_before_kib as f64);
    let per_node = ranks_per_node(ctx);
    let entries = ctx.opts.scaling_entries;
    if ctx.rank == 0 {
        println!("\nscaling: {} ranks, {per_node} on rank 0's node; operations timed one at a time on rank 0", ctx.size);
        println!("scaling ranks {} {per_node}", ctx.size);
        println!("scaling init_ms {init_ms:.2}");
        println!("scaling rss_kib {rss_max:.0} {rss_mean:.0} (after init: max, mean; before init max {before_max:.0})");
    }
    let mut bad = 0;
    if ctx.rank == 0 {
        bad += u64::from(benchfs::mkdir(DIR, 0o755).is_err() || benchfs::mkdir(format!("{DIR}/full"), 0o755).is_err());
    }
    ctx.barrier();
    bad += fill(ctx, entries);
    ctx.barrier();
    if ctx.rank == 0 {
        let (samples, failed) = measure(ctx.opts.latency_ops as usize, entries);
        bad += failed;
        println!("{:<8} {:<14} {:>7} {:>10} {:>10}", "", "operation", "n", "p50 µs", "mean µs");
        for s in &samples {
            let (p50, mean) = s.micros();
            println!("scaling {:<14} {:>7} {:>10.2} {:>10.2}", s.name, s.times.len(), p50, mean);
        }
        println!("(readdir-full lists {entries} entries; rename-dir moves a directory of {FILES_PER_MOVED_DIR} files)");
    }
    idle_until_all_arrive(ctx);
    for i in (ctx.rank as u64..entries).step_by(ctx.size) {
        bad += u64::from(benchfs::unlink(format!("{DIR}/full/e{i}")).is_err());
    }
    ctx.barrier();
    if ctx.rank == 0 {
        bad += u64::from(benchfs::rmdir(format!("{DIR}/full")).is_err() || benchfs::rmdir(DIR).is_err());
    }
    bad
}
