//! An attached client that outlives the job it attached to: it stats a path until a call fails,
//! which must happen (with EIO) soon after the serving job is killed, never a hang.
//!
//! `outlive CONTACT_FILE PATH [SECONDS]`: prints `outlive: N passed, M failed`.

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (contact, path) = (&args[1], &args[2]);
    let limit = Duration::from_secs(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60));
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    benchfs::attach(&world, Path::new(contact)).expect("attaches to the serving job");
    let (mut passed, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    let mut served = 0u64;
    let outcome = loop {
        match benchfs::stat(path) {
            Ok(_) => served += 1,
            Err(e) => break Some(e),
        }
        if start.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if served > 0 {
        passed += 1;
    } else {
        failed += 1;
        eprintln!("outlive: FAILED: no call succeeded before the serving job went away");
    }
    match outcome {
        Some(e) if e.errno() == libc::EIO => passed += 1,
        Some(e) => {
            failed += 1;
            eprintln!("outlive: FAILED: expected EIO once the serving job is gone, got {e} (errno {})", e.errno());
        }
        None => {
            failed += 1;
            eprintln!("outlive: FAILED: calls still succeed after {limit:?}: the serving job was not stopped");
        }
    }
    // Detaching from a job that is gone must not hang either.
    let _ = benchfs::finalize();
    passed += 1;
    println!("outlive: {passed} passed, {failed} failed");
    drop(world);
    drop(universe);
    std::process::exit(i32::from(failed > 0));
}
