//! `--mode scaling`: what one job of N ranks costs, for fitting against N (`tools/scaling.py`
//! runs it from 2 to 64 ranks and writes the tables of `docs/scaling.md`).
//!
//! * start-up: the slowest rank's `benchfs_init`, the CPU time a rank's process spent in it
//!   (mean; on a machine with fewer cores than ranks this, not the wall time, is what one rank
//!   costs), and each rank's resident memory before and after it (the job's maximum and mean);
//! * single operations, timed one at a time on rank 0 while every other rank's application idles
//!   in a sleeping wait: the paths are spread over all ranks by placement, so each figure is the
//!   average over where a record may lie (rank 0 itself included, one time in N). Directory
//!   listings cover an empty directory and one of `--scaling-entries` entries that all ranks
//!   made beforehand, untimed; a directory rename moves a directory holding a few files. With
//!   `BENCHFS_STATS=1`, each kind also reports the requests the whole job served per operation
//!   (summed over the ranks after each kind's phase): how the protocol's fan-out grows with N,
//!   whatever the machine's speed;
//! * the slowest rank's `benchfs_finalize` and the mean CPU time of it, printed by the caller
//!   after it (see `main`).
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
    /// CPU time the whole process (all its threads) spent in init.
    pub init_cpu: Duration,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

/// CPU time this process (all its threads) has used so far.
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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

/// One kind of operation, timed on rank 0: the time of each call, and the requests the whole
/// job served while they ran.
struct Samples {
    name: &'static str,
    times: Vec<Duration>,
    requests: u64,
}

impl Samples {
    fn micros(&self) -> (f64, f64) {
        let mut sorted = self.times.clone();
        sorted.sort_unstable();
        let p50 = sorted.get(sorted.len() / 2).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        let total: Duration = sorted.iter().sum();
        (p50, total.as_secs_f64() * 1e6 / sorted.len().max(1) as f64)
    }

    /// Requests per operation; NaN where they were not counted (`counted`: statistics on).
    fn requests_per_op(&self, counted: bool) -> f64 {
        if !counted || self.times.is_empty() {
            return f64::NAN;
        }
        self.requests as f64 / self.times.len() as f64
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

/// Runs the phases on rank 0, one kind of operation at a time, while the other ranks idle;
/// after each phase every rank adds up the requests it served.
struct Phases<'a> {
    ctx: &'a Ctx,
    served: u64,
    bad: u64,
    samples: Vec<Samples>,
}

impl Phases<'_> {
    fn job_served(ctx: &Ctx) -> u64 {
        ctx.sum_u64(benchfs::requests_served())
    }

    /// Rank 0 runs `op(i)` for `i` in `0..count`, timing each call if `name` is given; a call
    /// that fails (returns false) counts as bad and is not timed.
    fn run(&mut self, name: Option<&'static str>, count: usize, mut op: impl FnMut(usize) -> bool) {
        let mut times = Vec::new();
        if self.ctx.rank == 0 {
            for i in 0..count {
                let start = Instant::now();
                let ok = op(i);
                let took = start.elapsed();
                if ok {
                    times.push(took);
                } else {
                    self.bad += 1;
                }
            }
        }
        self.ctx.idle_until_all_arrive();
        let served = Phases::job_served(self.ctx);
        if let Some(name) = name {
            self.samples.push(Samples { name, times, requests: served - self.served });
        }
        self.served = served;
    }
}

/// Rank 0's timed operations: `n` of each kind (a tenth as many listings of the full directory
/// and directory renames). Returns the samples (on rank 0) and this rank's count of failed or
/// wrong results.
fn measure(ctx: &Ctx, n: usize, entries: u64) -> (Vec<Samples>, bool, u64) {
    let mut p = Phases { ctx, served: Phases::job_served(ctx), bad: 0, samples: Vec::new() };
    let file = |i: usize| format!("{DIR}/f{i}");
    let moved = |i: usize| format!("{DIR}/m{i}");
    let dir = |i: usize| format!("{DIR}/d{i}");
    p.run(Some("create"), n, |i| create(&file(i)));
    p.run(Some("stat"), n, |i| benchfs::stat(file(i)).is_ok_and(|st| st.size == 0));
    p.run(Some("rename-file"), n, |i| benchfs::rename(file(i), moved(i)).is_ok());
    p.run(None, n, |i| benchfs::stat(file(i)).is_err() && benchfs::stat(moved(i)).is_ok());
    p.run(Some("unlink"), n, |i| benchfs::unlink(moved(i)).is_ok());
    p.run(Some("mkdir"), n, |i| benchfs::mkdir(dir(i), 0o755).is_ok());
    p.run(Some("readdir-empty"), n, |i| list(&dir(i)).is_some_and(|names| names.is_empty()));
    p.run(Some("rmdir"), n, |i| benchfs::rmdir(dir(i)).is_ok());
    p.run(Some("statvfs"), n, |_| benchfs::statvfs(DIR).is_ok_and(|st| st.blocks > 0));
    let few = n.div_ceil(10);
    let full = format!("{DIR}/full");
    p.run(Some("readdir-full"), few, |_| list(&full).is_some_and(|names| names.len() as u64 == entries));
    let (from, to) = (|i: usize| format!("{DIR}/t{i}"), |i: usize| format!("{DIR}/u{i}"));
    p.run(None, few, |i| benchfs::mkdir(from(i), 0o755).is_ok() && (0..FILES_PER_MOVED_DIR).all(|f| create(&format!("{}/g{f}", from(i)))));
    p.run(Some("rename-dir"), few, |i| benchfs::rename(from(i), to(i)).is_ok());
    p.run(None, few, |i| {
        let moved_ok = (0..FILES_PER_MOVED_DIR)
            .all(|f| benchfs::stat(format!("{}/g{f}", from(i))).is_err() && benchfs::unlink(format!("{}/g{f}", to(i))).is_ok());
        moved_ok && benchfs::rmdir(to(i)).is_ok()
    });
    // Every phase served requests (at least the setup's creates) unless nothing counted them.
    let counted = p.served > 0;
    (p.samples, counted, p.bad)
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
    let init_cpu_ms = ctx.sum_f64(startup.init_cpu.as_secs_f64() * 1e3) / ctx.size as f64;
    let rss_max = ctx.max_f64(startup.rss_after_kib as f64);
    let rss_mean = ctx.sum_u64(startup.rss_after_kib) as f64 / ctx.size as f64;
    let before_max = ctx.max_f64(startup.rss_before_kib as f64);
    let per_node = ranks_per_node(ctx);
    let entries = ctx.opts.scaling_entries;
    if ctx.rank == 0 {
        println!("\nscaling: {} ranks, {per_node} on rank 0's node; operations timed one at a time on rank 0", ctx.size);
        println!("scaling ranks {} {per_node}", ctx.size);
        println!("scaling init_ms {init_ms:.2}");
        println!("scaling init_cpu_ms {init_cpu_ms:.2} (CPU time of a rank's process in init, mean)");
        println!("scaling rss_kib {rss_max:.0} {rss_mean:.0} (after init: max, mean; before init max {before_max:.0})");
    }
    let mut bad = 0;
    if ctx.rank == 0 {
        bad += u64::from(benchfs::mkdir(DIR, 0o755).is_err() || benchfs::mkdir(format!("{DIR}/full"), 0o755).is_err());
    }
    ctx.barrier();
    bad += fill(ctx, entries);
    ctx.barrier();
    let (samples, counted, failed) = measure(ctx, ctx.opts.latency_ops as usize, entries);
    bad += failed;
    if ctx.rank == 0 {
        println!("{:<8} {:<14} {:>7} {:>10} {:>10} {:>10}", "", "operation", "n", "p50 µs", "mean µs", "requests");
        for s in &samples {
            let (p50, mean) = s.micros();
            println!("scaling {:<14} {:>7} {:>10.2} {:>10.2} {:>10.2}", s.name, s.times.len(), p50, mean, s.requests_per_op(counted));
        }
        println!("(readdir-full lists {entries} entries; rename-dir moves a directory of {FILES_PER_MOVED_DIR} files;");
        println!(" requests: served by all ranks per operation, with BENCHFS_STATS=1, else NaN)");
    }
    for i in (ctx.rank as u64..entries).step_by(ctx.size) {
        bad += u64::from(benchfs::unlink(format!("{DIR}/full/e{i}")).is_err());
    }
    ctx.barrier();
    if ctx.rank == 0 {
        bad += u64::from(benchfs::rmdir(format!("{DIR}/full")).is_err() || benchfs::rmdir(DIR).is_err());
    }
    bad
}
