//! Serves a known tree until told to stop: the serving half of the attach and find tests.
//!
//! `serve_tree READY DONE [FILES]`: creates /tree/{a,b,a/deep}, where every rank writes FILES
//! files named `f.r<rank>.<i:02>` into each directory (3901 bytes for odd i, 100 bytes for even
//! i, contents `pattern(rank, i, offset)`), then rank 0 creates the local file READY and all
//! ranks keep serving until the local file DONE exists (or two minutes pass).
//! Run it with BENCHFS_CONTACT_FILE set so that other jobs can attach.
//!
//! The writers of the files are released only at the end (see `rpc::unregisters`): every file
//! counts a writer that closed without its size reaching the owner, as in the millisecond after
//! a close, so the attached clients find the sizes the way a reader must then (from the first
//! chunk's owner, over the network between hosts).

use std::path::Path;
use std::time::{Duration, Instant};

use mpi::traits::*;

const DIRS: [&str; 3] = ["/tree/a", "/tree/b", "/tree/a/deep"];

fn pattern(rank: u32, i: u32, offset: usize) -> u8 {
    ((rank as usize * 31 + i as usize * 7 + offset) % 251) as u8
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (ready, done) = (Path::new(&args[1]), Path::new(&args[2]));
    let files: u32 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(12);
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let rank = world.rank() as u32;
    benchfs::init(&world).expect("benchfs initializes");
    if rank == 0 {
        for dir in ["/tree", "/tree/a", "/tree/b", "/tree/a/deep"] {
            benchfs::mkdir(dir, 0o755).expect("mkdir");
        }
    }
    world.barrier();
    benchfs::testing::hold_releases(true).expect("hold the releases");
    for dir in DIRS {
        for i in 0..files {
            let size = if i % 2 == 1 { 3901 } else { 100 };
            let data: Vec<u8> = (0..size).map(|off| pattern(rank, i, off)).collect();
            let path = format!("{dir}/f.r{rank}.{i:02}");
            let fd = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644).expect("create");
            assert_eq!(benchfs::pwrite(fd, &data, 0).expect("write"), size);
            benchfs::close(fd).expect("close");
        }
    }
    world.barrier();
    if rank == 0 {
        std::fs::write(ready, b"ready\n").expect("ready marker");
    }
    let start = Instant::now();
    while !done.exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    world.barrier();
    benchfs::testing::hold_releases(false).expect("release the writers");
    world.barrier();
    benchfs::finalize().expect("benchfs finalizes");
}
