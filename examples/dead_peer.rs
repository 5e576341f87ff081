//! A rank leaves the job in the middle. Two ways (the first argument):
//! * `kill`: the last rank dies (SIGKILL) while the launcher keeps the job (run it with e.g.
//!   `OMPI_MCA_orte_enable_recovery=1` and `BENCHFS_PEER_TIMEOUT` set). The survivors' calls
//!   that need it fail with EIO within the timeout and a little more, never hang, their own
//!   files stay usable, and `benchfs_finalize` returns (EIO) on every survivor, including one
//!   that never called the dead rank. MPI collectives cannot span a dead rank, so each survivor
//!   prints its own `dead_peer: rank R: N passed, M failed` line and leaves without `MPI_Finalize`.
//! * `stop`: the same, but the last rank is only stopped (SIGSTOP), as a rank behind a link that
//!   went down would be: alive, silent. Rank 0 kills it at the end.
//! * `mpi-finalize`: the last rank calls `MPI_Finalize` without `benchfs_finalize`; the others'
//!   `benchfs_finalize` still completes (BenchFS finalizes that rank as its `MPI_Finalize` starts).

mod common;

use std::time::{Duration, Instant};

use mpi::traits::*;

type Outcome = Vec<(String, bool)>;

fn timed(results: &mut Outcome, bound: Duration, what: &str, f: &mut dyn FnMut() -> benchfs::Result<()>, want: Option<i32>) {
    let started = Instant::now();
    let got = f();
    let took = started.elapsed();
    let ok = match want {
        Some(errno) => got.as_ref().is_err_and(|e| e.errno() == errno),
        None => got.is_ok(),
    } && took <= bound;
    results.push((format!("{what}: {:?} after {took:?} (want {want:?} within {bound:?})", got.map_err(|e| e.errno())), ok));
}

fn report(me: u32, results: &Outcome) -> bool {
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    for (line, ok) in results {
        if !ok {
            eprintln!("dead_peer: rank {me}: FAILED: {line}");
        }
    }
    println!("dead_peer: rank {me}: {} passed, {failed} failed", results.len() - failed);
    failed == 0
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "kill".into());
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let victim = n - 1;
    let mut results = Outcome::new();
    if mode == "mpi-finalize" {
        let path = format!("/left.{me}");
        let made = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644).and_then(benchfs::close);
        results.push((format!("create {path}: {made:?}"), made.is_ok()));
        world.barrier();
        if me == victim {
            // SAFETY: ends MPI in this process, which then exits without touching MPI again.
            unsafe { mpi::ffi::MPI_Finalize() };
            std::process::exit(0);
        }
        timed(&mut results, Duration::from_secs(30), "finalize with a rank gone through MPI_Finalize", &mut benchfs::finalize, None);
        let ok = report(me, &results);
        drop(universe);
        std::process::exit(if ok { 0 } else { 1 });
    }
    let timeout =
        Duration::from_secs(std::env::var("BENCHFS_PEER_TIMEOUT").ok().and_then(|v| v.parse().ok()).expect("BENCHFS_PEER_TIMEOUT set"));
    let bound = timeout + Duration::from_secs(5);
    // One survivor never sends the dead rank anything: only its finalize finds it gone.
    let passive = n - 2;
    let owned_by = |rank: u32, tag: &str| {
        (0..).map(|i| format!("/dead.{tag}.{me}.{i}")).find(|p| benchfs::metadata_rank(p).is_ok_and(|r| r.0 == rank)).expect("a path")
    };
    let mut prepared = None;
    if me != victim && me != passive {
        // A file of this rank's with a block in a chunk the victim owns and one in its own, and
        // a file the victim holds the record of.
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
    let mut victim_pid = 0i32;
    if me == victim {
        victim_pid = std::process::id() as i32;
    }
    world.process_at_rank(victim as i32).broadcast_into(&mut victim_pid);
    world.barrier();
    if me == victim {
        let signal = if mode == "stop" { libc::SIGSTOP } else { libc::SIGKILL };
        // SAFETY: raise has no preconditions; this process ends (or halts) here.
        unsafe { libc::raise(signal) };
    }
    std::thread::sleep(Duration::from_millis(500));
    if let Some((mine, theirs, fd, offset, own)) = prepared {
        timed(
            &mut results,
            bound,
            "pwrite to the dead rank's chunk",
            &mut || benchfs::pwrite(fd, &[2u8; 4096], offset).map(drop),
            Some(libc::EIO),
        );
        timed(&mut results, bound, "stat of a path the dead rank holds", &mut || benchfs::stat(&theirs).map(drop), Some(libc::EIO));
        timed(
            &mut results,
            bound,
            "pread of the dead rank's chunk",
            &mut || benchfs::pread(fd, &mut [0u8; 4096], offset).map(drop),
            Some(libc::EIO),
        );
        timed(&mut results, bound, "stat of this rank's own file", &mut || benchfs::stat(&mine).map(drop), None);
        let mut block = [0u8; 4096];
        timed(&mut results, bound, "pread of this rank's own chunk", &mut || benchfs::pread(fd, &mut block, own).map(drop), None);
        results.push((format!("own chunk reads back: first byte {}", block[0]), block.iter().all(|&b| b == 3)));
    }
    // Finalize needs every rank: a survivor that found the death, and one that did not, both
    // return, with EIO.
    timed(&mut results, bound + Duration::from_secs(2), "finalize with a dead rank", &mut benchfs::finalize, Some(libc::EIO));
    let ok = report(me, &results);
    if me == 0 && mode == "stop" {
        // SAFETY: kill has no memory preconditions; the pid is the halted rank's.
        unsafe { libc::kill(victim_pid, libc::SIGKILL) };
    }
    // No MPI_Finalize: it would wait for the dead rank.
    std::process::exit(if ok { 0 } else { 1 });
}
