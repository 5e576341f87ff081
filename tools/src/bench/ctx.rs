//! The job context every pattern runs in: the communicator, this rank, the options, and the
//! reductions and error reporting they share.

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::options::Options;
use crate::store::{OpError, Store};

/// At most this many mismatch messages per rank and phase; the rest are only counted.
const MAX_REPORTS: u32 = 5;

/// What every pattern needs to know about the job.
pub struct Ctx {
    pub world: SimpleCommunicator,
    pub rank: usize,
    pub size: usize,
    pub opts: Options,
}

impl Ctx {
    /// An operation that must not fail did: there is no meaningful way to continue the collective
    /// pattern on this rank alone, so the whole job is stopped.
    pub fn fatal(&self, store: &impl Store, what: &str, e: OpError) -> ! {
        eprintln!("benchfs-bench: rank {}: {} {what}: {e}", self.rank, store.label());
        self.world.abort(2)
    }

    /// Waits until every rank has arrived.
    pub fn barrier(&self) {
        self.world.barrier();
    }

    /// Waits for every rank without keeping a core busy (a blocking MPI barrier may spin), so
    /// that ranks waiting for one rank's timed work do not take the cores it needs.
    pub fn idle_until_all_arrive(&self) {
        let mut request = self.world.immediate_barrier();
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The largest of the ranks' `local` values.
    pub fn max_f64(&self, local: f64) -> f64 {
        let mut global = 0.0f64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::max());
        global
    }

    /// The sum of the ranks' `local` values.
    pub fn sum_f64(&self, local: f64) -> f64 {
        let mut global = 0.0f64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::sum());
        global
    }

    /// The sum of the ranks' `local` values.
    pub fn sum_u64(&self, local: u64) -> u64 {
        let mut global = 0u64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::sum());
        global
    }

    /// The smallest of the ranks' `local` values.
    pub fn min_u64(&self, local: u64) -> u64 {
        let mut global = 0u64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::min());
        global
    }

    /// Rank 0's string, on every rank.
    pub fn broadcast_string(&self, s: String) -> String {
        let root = self.world.process_at_rank(0);
        let mut len = s.len() as u64;
        root.broadcast_into(&mut len);
        let mut bytes = if self.rank == 0 { s.into_bytes() } else { vec![0u8; len as usize] };
        root.broadcast_into(&mut bytes[..]);
        String::from_utf8(bytes).expect("rank 0 broadcasts UTF-8")
    }
}

/// The wrong results one rank sees in one pattern against one store. The first
/// [`MAX_REPORTS`] are described on stderr, the rest only counted.
pub struct Tally {
    rank: usize,
    label: &'static str,
    /// How many wrong results (bad transfers, wrong attributes, listing errors) were seen.
    pub bad: u64,
}

impl Tally {
    pub fn new(ctx: &Ctx, store: &impl Store) -> Tally {
        Tally { rank: ctx.rank, label: store.label(), bad: 0 }
    }

    /// Counts one wrong result, described by `what`.
    pub fn wrong(&mut self, what: String) {
        if self.bad < u64::from(MAX_REPORTS) {
            eprintln!("benchfs-bench: rank {}: {} verify: {what}", self.rank, self.label);
        } else if self.bad == u64::from(MAX_REPORTS) {
            eprintln!("benchfs-bench: rank {}: {} verify: further mismatches not shown", self.rank, self.label);
        }
        self.bad += 1;
    }
}
