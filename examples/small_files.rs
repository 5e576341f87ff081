//! Small files across ranks: every rank creates small files, whose first chunk its store packs
//! (see `storage::small`); then the next rank reads them (from the slot directly, on one node),
//! writes into them (which its creator serves), makes some grow past the slot (the data moves
//! to a chunk file), cuts others and writes past the cut; a third rank checks every byte and
//! size, and a fourth removes them. `small_files [FILES]` (per rank, default 200); prints
//! `small_files: N passed, M failed`.

mod common;

use mpi::traits::*;

use common::{pattern, read_at, write_all, Checker};

/// The size of each file as made (IO500's mdtest-hard size).
const MADE: u64 = 3901;
/// Past the largest slot (64 KiB), within a 1 MiB first chunk.
const PAST_SLOT: u64 = 70_000;

fn path(rank: u64, i: u64) -> String {
    format!("/small/f.{rank}.{i}")
}

/// The tag of the bytes that rank `writer` wrote into file `i` of rank `maker`.
fn tag(maker: u64, i: u64, writer: u64) -> u64 {
    (maker << 40) ^ (i << 8) ^ writer
}

/// The bytes file `i` of rank `maker` must hold after the next rank's changes.
fn expected(maker: u64, i: u64, editor: u64) -> Vec<u8> {
    let mut want = pattern(tag(maker, i, maker), 0, MADE);
    want[50..150].copy_from_slice(&pattern(tag(maker, i, editor), 50, 100));
    match i % 3 {
        // Grown past the slot.
        1 => {
            want.resize(PAST_SLOT as usize, 0);
            want.extend_from_slice(&pattern(tag(maker, i, editor), PAST_SLOT, 100));
        }
        // Cut to 1000 bytes, then written at 2000.
        2 => {
            want.truncate(1000);
            want.resize(2000, 0);
            want.extend_from_slice(&pattern(tag(maker, i, editor), 2000, 10));
        }
        _ => {}
    }
    want
}

fn main() {
    let files: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let universe = mpi::initialize_with_threading(mpi::Threading::Multiple).expect("MPI initializes").0;
    let world = universe.world();
    let (me, n) = (world.rank() as u64, world.size() as u64);
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("small_files", me as usize, 20);
    if me == 0 {
        c.ok(benchfs::mkdir("/small", 0o755), || "mkdir /small".into());
    }
    world.barrier();

    for i in 0..files {
        let p = path(me, i);
        let Some(fd) = c.ok(benchfs::open(&p, libc::O_CREAT | libc::O_WRONLY, 0o644), || format!("create {p}")) else { continue };
        c.ok(write_all(fd, &pattern(tag(me, i, me), 0, MADE), 0), || format!("write {p}"));
        c.ok(benchfs::close(fd), || format!("close {p}"));
    }
    world.barrier();

    // The next rank reads each file as made, then changes it.
    let maker = (me + 1) % n;
    for i in 0..files {
        let p = path(maker, i);
        let Some(fd) = c.ok(benchfs::open(&p, libc::O_RDWR, 0), || format!("open {p}")) else { continue };
        if let Some(got) = c.ok(read_at(fd, 0, MADE + 100), || format!("read {p}")) {
            c.bytes(&got, &pattern(tag(maker, i, maker), 0, MADE), 0, || format!("{p} as made"));
        }
        c.ok(write_all(fd, &pattern(tag(maker, i, me), 50, 100), 50), || format!("write into {p}"));
        match i % 3 {
            1 => {
                c.ok(write_all(fd, &pattern(tag(maker, i, me), PAST_SLOT, 100), PAST_SLOT), || format!("write past the slot of {p}"));
            }
            2 => {
                c.ok(benchfs::ftruncate(fd, 1000), || format!("cut {p}"));
                c.ok(write_all(fd, &pattern(tag(maker, i, me), 2000, 10), 2000), || format!("write past the cut of {p}"));
            }
            _ => {}
        }
        if let Some(got) = c.ok(read_at(fd, 0, PAST_SLOT + 1000), || format!("read back {p}")) {
            c.bytes(&got, &expected(maker, i, me), 0, || format!("{p} as changed, by its changer"));
        }
        c.ok(benchfs::close(fd), || format!("close {p}"));
    }
    world.barrier();

    // A third rank checks sizes and bytes.
    let (maker, editor) = ((me + 2) % n, (me + 1) % n);
    for i in 0..files {
        let p = path(maker, i);
        let want = expected(maker, i, editor);
        if let Some(st) = c.ok(benchfs::stat(&p), || format!("stat {p}")) {
            c.expect(&format!("size of {p}"), st.size == want.len() as u64, (st.size, want.len()));
        }
        let Some(fd) = c.ok(benchfs::open(&p, libc::O_RDONLY, 0), || format!("open {p}")) else { continue };
        if let Some(got) = c.ok(read_at(fd, 0, PAST_SLOT + 1000), || format!("read {p}")) {
            c.bytes(&got, &want, 0, || format!("{p} seen by a third rank"));
        }
        c.ok(benchfs::close(fd), || format!("close {p}"));
    }
    world.barrier();

    // A fourth removes them; nothing of them is left to open.
    let maker = (me + 3) % n;
    for i in 0..files {
        let p = path(maker, i);
        c.ok(benchfs::unlink(&p), || format!("unlink {p}"));
        c.errno(benchfs::open(&p, libc::O_RDONLY, 0), libc::ENOENT, &format!("open of removed {p}"));
    }
    world.barrier();
    // A file made again under a removed name starts empty.
    let p = path(me, 0);
    if let Some(fd) = c.ok(benchfs::open(&p, libc::O_CREAT | libc::O_RDWR, 0o644), || format!("create {p} again")) {
        if let Some(got) = c.ok(read_at(fd, 0, 100), || format!("read new {p}")) {
            c.expect(&format!("{p} made again is empty"), got.is_empty(), got.len());
        }
        c.ok(benchfs::close(fd), || format!("close {p}"));
        c.ok(benchfs::unlink(&p), || format!("unlink {p}"));
    }
    let totals = c.totals(&world);
    benchfs::finalize().expect("finalize");
    totals.print();
    if totals.failed > 0 {
        std::process::exit(1);
    }
}
