//! Incast: every other rank writes to chunks that one rank owns, from several threads at once,
//! all through the transport. The receiving rank must hold at most `BENCHFS_INCOMING_BYTES` of
//! their payloads at once (its admission counter's peak, and its peak memory), and every byte
//! must read back. `incast [THREADS] [WRITES]` (per sending thread); prints
//! `incast: N passed, M failed`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use mpi::traits::*;

use common::{peak_rss, Checker};

fn byte(file: u64, offset: u64) -> u8 {
    (file.wrapping_mul(131).wrapping_add(offset / 4093).wrapping_add(offset * 7) % 251) as u8
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (threads, writes) = (args.first().copied().unwrap_or(4), args.get(1).copied().unwrap_or(6));
    let universe = mpi::initialize_with_threading(mpi::Threading::Multiple).expect("MPI initializes").0;
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("incast", me as usize, 20);
    let limit = std::env::var("BENCHFS_INCOMING_BYTES").ok().and_then(|v| benchfs::parse_size(&v)).expect("BENCHFS_INCOMING_BYTES is set");
    let victim = 0;
    let rss_before = peak_rss();
    world.barrier();
    let failures = AtomicU64::new(0);
    let mut files = Vec::new();
    if me != victim {
        std::thread::scope(|scope| {
            for t in 0..threads {
                let failures = &failures;
                let path = format!("/incast.{me}.{t}");
                files.push(path.clone());
                scope.spawn(move || {
                    let fd = benchfs::open(&path, libc::O_CREAT | libc::O_RDWR, 0o644).expect("create");
                    let chunk = benchfs::fstat(fd).expect("fstat").blksize;
                    let file = (me as u64) << 8 | t;
                    let offsets: Vec<u64> = (0..)
                        .map(|k| k * chunk)
                        .filter(|&o| benchfs::chunk_rank(fd, o).is_ok_and(|r| r.0 == victim))
                        .take(writes as usize)
                        .collect();
                    for &o in &offsets {
                        let data: Vec<u8> = (0..chunk).map(|i| byte(file, o + i)).collect();
                        if benchfs::pwrite(fd, &data, o).ok() != Some(chunk as usize) {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let mut back = vec![0u8; chunk as usize];
                    for &o in &offsets {
                        let ok = benchfs::pread(fd, &mut back, o).ok() == Some(chunk as usize)
                            && back.iter().enumerate().all(|(i, &b)| b == byte(file, o + i as u64));
                        if !ok {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    benchfs::close(fd).expect("close");
                });
            }
        });
    }
    let failed = failures.load(Ordering::Relaxed);
    c.check(failed == 0, || format!("{failed} writes or read-backs of the victim's chunks failed or differ"));
    world.barrier();
    if me == victim {
        let peak = benchfs::testing::incoming_peak().expect("incoming peak");
        c.check(peak > 0 && peak <= limit, || format!("held {peak} bytes of incoming writes at once, limit {limit}"));
        let grown = peak_rss().saturating_sub(rss_before);
        // Whole payloads beyond the limit would show here: (n - 1) * threads of them at once.
        let allowance = 2 * limit + (32 << 20);
        c.check(grown <= allowance, || format!("peak memory grew by {grown} bytes during the incast (allowance {allowance})"));
    }
    world.barrier();
    for f in &files {
        c.check(benchfs::unlink(f).is_ok(), || format!("unlink {f}"));
    }
    let totals = c.totals(&world);
    benchfs::finalize().expect("finalize");
    totals.print();
    if totals.failed > 0 {
        std::process::exit(1);
    }
    let _ = n;
}
