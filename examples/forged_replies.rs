//! A rank forges replies: while rank 0 reads file data from the other ranks, rank 1 sends rank 0
//! a stream of read replies carrying its own bytes, for every request id rank 0 could be waiting
//! on if ids were predictable. No forged byte may reach rank 0's buffers: every read must return
//! exactly the file's data. Run under mpirun with at least 2 ranks and `BENCHFS_NODE_LOCAL=0`,
//! so that every read is a request; prints `forged_replies: N passed, M failed`.

mod common;

use mpi::traits::*;

use common::{pattern, Checker};

const READS: u64 = 2000;
const READ_LEN: usize = 4096;
const FILE_LEN: u64 = 1 << 20;
/// Request ids the forger aims at on each sweep: far more than rank 0 uses in the test.
const GUESSED_IDS: u64 = 4 * READS + 1000;

fn main() -> std::process::ExitCode {
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("forged_replies", me as usize, 20);
    assert!(n >= 2, "forged_replies needs at least 2 ranks");

    // Every rank but 0 writes a file, so that rank 0's reads go to other ranks.
    let path = format!("/forged.{me}");
    if me != 0 {
        let fd = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644).expect("create");
        benchfs::pwrite(fd, &pattern(me as u64, 0, FILE_LEN), 0).expect("write");
        benchfs::close(fd).expect("close");
    }
    world.barrier();

    if me == 0 {
        let mut buf = vec![0u8; READ_LEN];
        let files: Vec<(u64, i32)> =
            (1..n).map(|r| (r as u64, benchfs::open(format!("/forged.{r}"), libc::O_RDONLY, 0).expect("open"))).collect();
        for i in 0..READS {
            let (tag, fd) = files[(i % files.len() as u64) as usize];
            let offset = (common::mix(i) % (FILE_LEN / READ_LEN as u64)) * READ_LEN as u64;
            let got = benchfs::pread(fd, &mut buf, offset);
            if c.check(matches!(got, Ok(READ_LEN)), || format!("read {i}: {got:?}")) {
                c.bytes(&buf, &pattern(tag, offset, READ_LEN as u64), offset, || format!("read {i} of /forged.{tag}"));
            }
        }
        for (_, fd) in files {
            benchfs::close(fd).expect("close");
        }
        world.process_at_rank(1).send(&1u8);
    } else if me == 1 {
        // Forge until rank 0 is done: read replies of every guessable id, full of 0xAB.
        let headers: Vec<Vec<u8>> = (1..=GUESSED_IDS).map(|id| benchfs::testing::read_reply_header(id, READ_LEN as u64)).collect();
        let mut sweeps = 0u64;
        loop {
            benchfs::testing::send_raw_replies(0, headers.clone(), vec![0xab; READ_LEN]).expect("forge");
            sweeps += 1;
            if world.process_at_rank(0).immediate_probe().is_some() {
                let (_, _status) = world.process_at_rank(0).receive::<u8>();
                break;
            }
        }
        c.check(sweeps > 0, || "no forged reply was sent".into());
    }
    world.barrier();
    benchfs::finalize().expect("finalize");
    let totals = c.totals(&world);
    totals.print();
    totals.exit_code()
}
