//! A rank whose progress thread panics: every call it makes afterwards fails with EIO at once
//! (none waits for a loop that is gone, none runs on a loop left half-torn), and the job still
//! finalizes.
//! The last rank is the victim; the others never send it a request after it failed (a dead
//! peer is another matter). Run under mpirun; prints `progress_panic: N passed, M failed`.

mod common;

use std::time::{Duration, Instant};

use mpi::traits::*;

use common::Checker;

/// The longest any call of the failed rank may take.
const PROMPT: Duration = Duration::from_secs(2);

/// One call of the API, its result reduced to success or the error.
type Call<'a> = Box<dyn Fn() -> benchfs::Result<()> + 'a>;

/// Paths whose metadata the rank `me` holds itself.
fn own_paths(me: u32, n: usize) -> Vec<String> {
    (0..).map(|i| format!("/panic.{me}.{i}")).filter(|p| benchfs::metadata_rank(p).is_ok_and(|r| r.0 == me)).take(n).collect()
}

fn main() {
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("progress_panic", me as usize, u64::MAX);
    let victim = n - 1;
    world.barrier();
    if me == victim {
        let paths = own_paths(me, 4);
        for p in &paths[..2] {
            c.check(benchfs::mkdir(p, 0o755).is_ok(), || format!("mkdir {p} before the panic"));
        }
        benchfs::testing::panic_progress_thread().expect("panic injected");
        // The progress thread takes the loop for its next turn, and panics there.
        std::thread::sleep(Duration::from_millis(300));
        let calls: Vec<(&str, Call)> = vec![
            ("stat", Box::new(|| benchfs::stat(&paths[0]).map(drop))),
            ("mkdir", Box::new(|| benchfs::mkdir(&paths[2], 0o755))),
            ("open", Box::new(|| benchfs::open(&paths[3], libc::O_CREAT | libc::O_WRONLY, 0o644).map(drop))),
            ("readdir", Box::new(|| benchfs::readdir("/").map(drop))),
            ("rmdir", Box::new(|| benchfs::rmdir(&paths[1]))),
        ];
        for (name, call) in &calls {
            let started = Instant::now();
            let result = call();
            let took = started.elapsed();
            c.check(result.as_ref().is_err_and(|e| e.errno() == libc::EIO), || format!("{name} after the panic: {result:?}, want EIO"));
            c.check(took < PROMPT, || format!("{name} after the panic took {took:?}"));
        }
    }
    world.barrier();
    let finalized = benchfs::finalize();
    if me != victim {
        c.check(finalized.is_ok(), || format!("finalize of a rank that did not fail: {finalized:?}"));
    }
    let totals = c.totals(&world);
    totals.print();
    if totals.failed > 0 {
        std::process::exit(1);
    }
}
