//! A rank dies (SIGKILL) while the job goes on (run it under a launcher that keeps the job, e.g.
//! `OMPI_MCA_orte_enable_recovery=1`, with `BENCHFS_PEER_TIMEOUT` set): calls that need the dead
//! rank must fail with EIO within the timeout and a little more, never hang, and the survivors'
//! own files stay usable. MPI collectives cannot span a dead rank, so each survivor prints its
//! own `dead_peer: rank R: N passed, M failed` line and leaves without finalizing.

mod common;

use std::time::{Duration, Instant};

use mpi::traits::*;

fn main() {
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let timeout =
        Duration::from_secs(std::env::var("BENCHFS_PEER_TIMEOUT").ok().and_then(|v| v.parse().ok()).expect("BENCHFS_PEER_TIMEOUT set"));
    let victim = n - 1;
    let owned_by = |rank: u32, tag: &str| {
        (0..).map(|i| format!("/dead.{tag}.{me}.{i}")).find(|p| benchfs::metadata_rank(p).is_ok_and(|r| r.0 == rank)).expect("a path")
    };
    let mut results: Vec<(String, bool)> = Vec::new();
    let mut prepared = None;
    if me != victim {
        // A file of this rank's, with a 4 KiB block in a chunk the victim owns; and a file the
        // victim holds the record of.
        let mine = owned_by(me, "mine");
        let theirs = owned_by(victim, "theirs");
        let fd = benchfs::open(&mine, libc::O_CREAT | libc::O_RDWR, 0o644).expect("create own file");
        let chunk = benchfs::fstat(fd).expect("fstat").blksize;
        let on = |rank: u32| (0..256).map(|k| k * chunk).find(|&o| benchfs::chunk_rank(fd, o).is_ok_and(|r| r.0 == rank)).expect("a chunk");
        let (offset, own) = (on(victim), on(me));
        benchfs::pwrite(fd, &[1u8; 4096], offset).expect("write to the victim's chunk before the death");
        benchfs::pwrite(fd, &[3u8; 4096], own).expect("write to an own chunk");
        benchfs::close(benchfs::open(&theirs, libc::O_CREAT | libc::O_WRONLY, 0o644).expect("create on the victim")).expect("close");
        prepared = Some((mine, theirs, fd, offset, own));
    }
    world.barrier();
    if me == victim {
        // SAFETY: raise has no preconditions; this process ends here.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    let (mine, theirs, fd, offset, own) = prepared.expect("survivors prepared");
    std::thread::sleep(Duration::from_millis(500));
    let bound = timeout + Duration::from_secs(5);
    let mut timed = |what: &str, f: &mut dyn FnMut() -> benchfs::Result<()>, want: Option<i32>| {
        let started = Instant::now();
        let got = f();
        let took = started.elapsed();
        let ok = match want {
            Some(errno) => got.as_ref().is_err_and(|e| e.errno() == errno),
            None => got.is_ok(),
        } && took <= bound;
        results.push((format!("{what}: {:?} after {took:?} (want {want:?} within {bound:?})", got.map_err(|e| e.errno())), ok));
    };
    timed("pwrite to the dead rank's chunk", &mut || benchfs::pwrite(fd, &[2u8; 4096], offset).map(drop), Some(libc::EIO));
    timed("stat of a path the dead rank holds", &mut || benchfs::stat(&theirs).map(drop), Some(libc::EIO));
    timed("pread of the dead rank's chunk", &mut || benchfs::pread(fd, &mut [0u8; 4096], offset).map(drop), Some(libc::EIO));
    timed("stat of this rank's own file", &mut || benchfs::stat(&mine).map(drop), None);
    let mut block = [0u8; 4096];
    timed("pread of this rank's own chunk", &mut || benchfs::pread(fd, &mut block, own).map(drop), None);
    results.push((format!("own chunk reads back: first byte {}", block[0]), block.iter().all(|&b| b == 3)));
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    for (line, ok) in &results {
        if !ok {
            eprintln!("dead_peer: rank {me}: FAILED: {line}");
        }
    }
    println!("dead_peer: rank {me}: {} passed, {failed} failed", results.len() - failed);
    // No finalize and no MPI_Finalize: both would wait for the dead rank.
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
