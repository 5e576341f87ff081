//! `--mode latency`: single operations, timed one at a time on rank 0, each served by rank 1 (the
//! path's metadata record or the chunk lies there; a local stat, served by rank 0 itself, shows
//! what is not the network), while every other rank's application idles
//! in a sleeping wait rather than a busy MPI call. Rank 1 therefore serves from a progress
//! thread whose own application is not calling, the case where a wake-up costs the most.
//!
//! The reference, in the same job and on the same node, is `ucx_perftest`'s UCP active-message
//! ping-pong (`-t ucp_am_lat`), when the program is installed (Debian: `ucx-utils`); its round
//! trip is twice the one-way latency it reports.

use std::time::{Duration, Instant};

use crate::ctx::Ctx;

const DIR: &str = "/latency";
/// Untimed operations of each kind before the timed ones.
const WARMUP: usize = 100;
const IO_SIZE: usize = 4096;
/// The size of each file of the small-file create (as IO500's mdtest-hard writes).
const SMALL_FILE: usize = 3901;

/// Times of one kind of operation.
struct Samples {
    name: &'static str,
    times: Vec<Duration>,
}

impl Samples {
    fn percentile(&self, p: usize) -> f64 {
        let mut sorted = self.times.clone();
        sorted.sort_unstable();
        let at = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
        sorted.get(at).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    }
}

/// Times `op` on each of `items` after untimed calls on the first `WARMUP` (all of which must
/// succeed); a failed call counts as bad and is not timed. Only the call is timed: `check` then
/// judges its result, untimed.
fn time_each<T, R>(
    name: &'static str,
    items: &[T],
    warmup: &[T],
    mut op: impl FnMut(&T) -> R,
    mut check: impl FnMut(&T, R) -> bool,
    bad: &mut u64,
) -> Samples {
    for item in warmup {
        let result = op(item);
        if !check(item, result) {
            *bad += 1;
        }
    }
    let mut times = Vec::with_capacity(items.len());
    for item in items {
        let start = Instant::now();
        let result = op(item);
        let took = start.elapsed();
        if check(item, result) {
            times.push(took);
        } else {
            *bad += 1;
        }
    }
    Samples { name, times }
}

/// `n` paths in `DIR` (named after `prefix`) whose metadata rank `rank` holds.
fn names_on(rank: u32, prefix: &str, n: usize) -> Vec<String> {
    (0..).map(|i| format!("{DIR}/{prefix}{i}")).filter(|p| benchfs::metadata_rank(p).is_ok_and(|r| r.0 == rank)).take(n).collect()
}

/// The stamp of the 4 KiB block at `offset`.
fn block(offset: u64) -> Vec<u8> {
    (0..IO_SIZE as u64).map(|i| ((offset + i) * 31 % 251) as u8).collect()
}

/// Rank 0's measurements; returns the samples and the count of failed or wrong operations.
fn measure(n: usize) -> (Vec<Samples>, u64) {
    let mut bad = 0u64;
    if let Err(e) = benchfs::mkdir(DIR, 0o755) {
        eprintln!("benchfs-bench: mkdir {DIR}: {e}");
        return (Vec::new(), 1);
    }
    let local_names = names_on(0, "l", n + WARMUP);
    let stat_names = names_on(1, "s", n + WARMUP);
    let create_names = names_on(1, "c", n + WARMUP);
    for p in local_names.iter().chain(&stat_names) {
        match benchfs::open(p, libc::O_CREAT | libc::O_WRONLY, 0o644) {
            Ok(fd) => bad += benchfs::close(fd).is_err() as u64,
            Err(_) => bad += 1,
        }
    }
    let (warm, timed) = stat_names.split_at(WARMUP);
    let stat = time_each("remote stat", timed, warm, |p| benchfs::stat(p), |_, r| r.is_ok(), &mut bad);
    let (warm, timed) = local_names.split_at(WARMUP);
    let local = time_each("local stat", timed, warm, |p| benchfs::stat(p), |_, r| r.is_ok(), &mut bad);
    let (warm, timed) = create_names.split_at(WARMUP);
    let create = time_each(
        "remote create",
        timed,
        warm,
        |p| benchfs::open(p, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644).is_ok_and(|fd| benchfs::close(fd).is_ok()),
        |_, made| made,
        &mut bad,
    );
    let small_names = names_on(1, "w", n + WARMUP);
    let small = block(7)[..SMALL_FILE].to_vec();
    let (warm, timed) = small_names.split_at(WARMUP);
    let small_create = time_each(
        "remote 3901 B file",
        timed,
        warm,
        |p| write_new(p, &small),
        // The size as another rank sees it, checked untimed.
        |p, made| made && benchfs::stat(p).is_ok_and(|st| st.size == SMALL_FILE as u64),
        &mut bad,
    );
    let mut samples = vec![stat, create, small_create, local];
    samples.extend(data_samples(n, &mut bad));
    for p in stat_names.iter().chain(&create_names).chain(&small_names).chain(&local_names) {
        bad += benchfs::unlink(p).is_err() as u64;
    }
    bad += benchfs::rmdir(DIR).is_err() as u64;
    (samples, bad)
}

/// Creates `path` (which must not exist), writes `data` into it and closes it; true if all
/// succeeded.
fn write_new(path: &str, data: &[u8]) -> bool {
    let Ok(fd) = benchfs::open(path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644) else { return false };
    let wrote = benchfs::write(fd, data).is_ok_and(|n| n == data.len());
    benchfs::close(fd).is_ok() && wrote
}

/// 4 KiB writes and then reads within one chunk of a file that rank 1 holds.
fn data_samples(n: usize, bad: &mut u64) -> Vec<Samples> {
    let path = format!("{DIR}/data");
    let Ok(fd) = benchfs::open(&path, libc::O_CREAT | libc::O_RDWR, 0o644) else {
        *bad += 1;
        return Vec::new();
    };
    let chunk = benchfs::fstat(fd).map_or(0, |st| st.blksize);
    let first = (0..64u64).map(|c| c * chunk).find(|&off| benchfs::chunk_rank(fd, off).is_ok_and(|r| r.0 == 1));
    let Some(base) = first.filter(|_| chunk >= IO_SIZE as u64) else {
        eprintln!("benchfs-bench: latency: no chunk of {path} on rank 1");
        *bad += 1;
        return Vec::new();
    };
    let slots = chunk / IO_SIZE as u64;
    // Each block's stamp is made before the timing starts.
    let blocks: Vec<(u64, Vec<u8>)> =
        (0..(n + WARMUP) as u64).map(|i| base + (i % slots) * IO_SIZE as u64).map(|off| (off, block(off))).collect();
    let (warm, timed) = blocks.split_at(WARMUP);
    let write = time_each(
        "remote 4 KiB write",
        timed,
        warm,
        |(off, data)| benchfs::pwrite(fd, data, *off),
        |_, wrote| wrote.is_ok_and(|w| w == IO_SIZE),
        bad,
    );
    let buf = std::cell::RefCell::new(vec![0u8; IO_SIZE]);
    let read = time_each(
        "remote 4 KiB read",
        timed,
        warm,
        |(off, _)| benchfs::pread(fd, &mut buf.borrow_mut(), *off),
        |(_, want), got| got.is_ok_and(|r| r == IO_SIZE) && *buf.borrow() == *want,
        bad,
    );
    *bad += benchfs::close(fd).is_err() as u64;
    *bad += benchfs::unlink(&path).is_err() as u64;
    vec![write, read]
}

/// Runs the latency pattern; returns this rank's count of failed or wrong operations.
pub fn run_latency(ctx: &Ctx) -> u64 {
    if ctx.size < 2 {
        if ctx.rank == 0 {
            println!("\nlatency: needs 2 ranks or more; skipped");
        }
        return 0;
    }
    ctx.barrier();
    let mut bad = 0;
    if ctx.rank == 0 {
        // Before and after: the machine may change its speed meanwhile.
        let before = crate::reference::am_latency();
        let (samples, failed) = measure(ctx.opts.latency_ops as usize);
        let after = crate::reference::am_latency();
        bad = failed;
        print_latency(&samples, &[before, after]);
    }
    ctx.idle_until_all_arrive();
    bad
}

fn print_latency(samples: &[Samples], references: &[Result<(f64, f64), String>; 2]) {
    let node_local = std::env::var("BENCHFS_NODE_LOCAL").unwrap_or_else(|_| "1 (default)".into());
    println!("\nlatency: rank 0 -> rank 1, one operation at a time, other ranks idle (microseconds)");
    let shared = std::env::var("BENCHFS_SHARED_RECORDS").unwrap_or_else(|_| "262144 (default)".into());
    println!("  BENCHFS_NODE_LOCAL={node_local} (with 1, data of a same-node rank is read and written directly)");
    println!("  BENCHFS_SHARED_RECORDS={shared} (with slots, and node-local, a same-node rank's stat is read from its");
    println!("    shared table without a request; 0 times the request)");
    println!("{:<22} {:>7} {:>9} {:>9} {:>9} {:>9}", "operation", "n", "min", "p50", "p99", "max");
    for s in samples {
        let min = s.times.iter().min().map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        let max = s.times.iter().max().map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
        println!("{:<22} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}", s.name, s.times.len(), min, s.percentile(50), s.percentile(99), max);
    }
    for (when, reference) in ["before", "after"].iter().zip(references) {
        match reference {
            // The round trip is twice the median one-way latency, the p50 the operations are
            // given as (the average also counts the reference's own outliers).
            Ok((median, average)) => {
                let round_trip = 2.0 * median;
                println!(
                    "reference ({when}): ucx_perftest ucp_am_lat on this node: one-way median {median:.3}, average {average:.3}; round trip {round_trip:.3}"
                );
                if let Some(stat) = samples.first() {
                    println!("remote stat p50 / AM round trip ({when}): {:.1}", stat.percentile(50) / round_trip);
                }
            }
            Err(why) => println!("reference ({when}): {why}"),
        }
    }
}
