//! MPI bootstrap: the only code that calls MPI, and only from the application thread inside
//! `init` and `finalize` (so plain `MPI_Init` is enough).

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::ffi;
use mpi::raw::FromRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::{BootstrapError, Result};

/// BenchFS's own duplicate of the application's communicator, freed on drop.
pub struct JobComm {
    comm: SimpleCommunicator,
    /// When it was made, and the time spent in MPI calls on it since (the duplication
    /// included): how much of a rank's start-up MPI took.
    made: Instant,
    in_mpi: Cell<Duration>,
}

// SAFETY: an MPI communicator handle is not tied to the thread that created it; BenchFS uses it
// only under the process-wide lock, from one application thread at a time.
unsafe impl Send for JobComm {}

impl JobComm {
    /// Duplicates `raw` so that BenchFS's collectives never mix with the application's.
    pub fn duplicate(raw: ffi::MPI_Comm) -> Result<JobComm> {
        let (mut initialized, mut finalized) = (0, 0);
        // SAFETY: MPI_Initialized and MPI_Finalized may be called at any time.
        unsafe {
            ffi::MPI_Initialized(&mut initialized);
            ffi::MPI_Finalized(&mut finalized);
        }
        if initialized == 0 || finalized != 0 {
            return Err(BootstrapError::MpiNotInitialized.into());
        }
        // SAFETY: reading a predefined handle.
        if raw == unsafe { ffi::RSMPI_COMM_NULL } {
            return Err(BootstrapError::BadCommunicator.into());
        }
        let made = Instant::now();
        // SAFETY: reading a predefined handle.
        let mut dup = unsafe { ffi::RSMPI_COMM_NULL };
        // SAFETY: raw is a communicator handle from the caller; dup receives a new one.
        let rc = unsafe { ffi::MPI_Comm_dup(raw, &mut dup) };
        // SAFETY: reading a predefined handle.
        if rc != 0 || dup == unsafe { ffi::RSMPI_COMM_NULL } {
            return Err(BootstrapError::BadCommunicator.into());
        }
        // SAFETY: dup is a live intra-communicator that only this JobComm uses and frees.
        let comm = unsafe { SimpleCommunicator::from_raw(dup) };
        Ok(JobComm { comm, made, in_mpi: Cell::new(made.elapsed()) })
    }

    /// Runs the MPI call `f`, adding its time to [`JobComm::in_mpi`].
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        self.in_mpi.set(self.in_mpi.get() + start.elapsed());
        result
    }

    /// Time since the communicator was made, and the part of it spent in MPI calls on it.
    pub fn time_in_mpi(&self) -> (Duration, Duration) {
        (self.made.elapsed(), self.in_mpi.get())
    }

    pub fn rank(&self) -> u32 {
        self.comm.rank() as u32
    }

    pub fn size(&self) -> u32 {
        self.comm.size() as u32
    }

    /// Collective: how many ranks of the job share this rank's node (its shared memory).
    pub fn ranks_on_node(&self) -> u32 {
        self.timed(|| self.comm.split_shared(0).size() as u32)
    }

    pub fn barrier(&self) {
        self.timed(|| self.comm.barrier());
    }

    /// Collective: like [`JobComm::barrier`], but it stops waiting (false) once `give_up`, asked
    /// with the time waited so far, says so; the barrier is then left unfinished, and this
    /// communicator must not be used again.
    pub fn barrier_unless(&self, mut give_up: impl FnMut(Duration) -> bool) -> bool {
        let started = Instant::now();
        let mut request = self.comm.immediate_barrier();
        let mut pause = Duration::from_micros(50);
        loop {
            match request.test() {
                Ok(_) => return true,
                Err(pending) => request = pending,
            }
            if give_up(started.elapsed()) {
                // MPI still owns the request; dropping it unfinished is an error in rsmpi.
                std::mem::forget(request);
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Every rank's bytes, indexed by rank (allgather of lengths, then allgatherv).
    pub fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        self.timed(|| gather_bytes(&self.comm, mine))
    }

    /// Collective: the bytes of every rank that shares this rank's node (its shared memory),
    /// each with its rank in this communicator. The exchange stays within the node, so it
    /// costs the same whatever the size of the job.
    pub fn allgather_on_node(&self, mine: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut tagged = self.rank().to_le_bytes().to_vec();
        tagged.extend_from_slice(mine);
        let all = self.timed(|| gather_bytes(&self.comm.split_shared(0), &tagged));
        all.into_iter()
            .filter_map(|entry| {
                let rank = u32::from_le_bytes(entry.get(..4)?.try_into().ok()?);
                Some((rank, entry[4..].to_vec()))
            })
            .collect()
    }

    /// Collective: the element-wise sums of every rank's `mine` (all of one length).
    pub fn sum_u64s(&self, mine: &[u64]) -> Vec<u64> {
        let mut sums = vec![0u64; mine.len()];
        self.timed(|| self.comm.all_reduce_into(mine, &mut sums[..], SystemOperation::sum()));
        sums
    }

    /// True on every rank if `ok` is true on every rank: collective error agreement, so that a
    /// failure on one rank makes all of them fail instead of hanging in the next collective.
    pub fn all_ok(&self, ok: bool) -> bool {
        let mine = u32::from(!ok);
        let mut any_failed = 0u32;
        self.timed(|| self.comm.all_reduce_into(&mine, &mut any_failed, SystemOperation::max()));
        any_failed == 0
    }

    /// Rank 0's bytes, on every rank.
    pub fn broadcast_bytes(&self, mine: &[u8]) -> Vec<u8> {
        let root = self.comm.process_at_rank(0);
        let mut len = mine.len() as u64;
        self.timed(|| root.broadcast_into(&mut len));
        let mut bytes = if self.rank() == 0 { mine.to_vec() } else { vec![0u8; len as usize] };
        self.timed(|| root.broadcast_into(&mut bytes[..]));
        bytes
    }

    /// Rank 0's value of `value`, on every rank.
    pub fn broadcast_u64(&self, value: u64) -> u64 {
        let mut v = value;
        self.timed(|| self.comm.process_at_rank(0).broadcast_into(&mut v));
        v
    }
}

/// Collective over `comm`: every rank's bytes, indexed by rank (allgather of lengths, then
/// allgatherv).
fn gather_bytes(comm: &impl CommunicatorCollectives, mine: &[u8]) -> Vec<Vec<u8>> {
    let n = comm.size() as usize;
    let mut lengths = vec![0i32; n];
    comm.all_gather_into(&(mine.len() as i32), &mut lengths[..]);
    let displs: Vec<i32> = lengths
        .iter()
        .scan(0, |acc, &l| {
            let d = *acc;
            *acc += l;
            Some(d)
        })
        .collect();
    let total: usize = lengths.iter().map(|&l| l as usize).sum();
    let mut all = vec![0u8; total];
    {
        let mut partition = PartitionMut::new(&mut all[..], &lengths[..], &displs[..]);
        comm.all_gather_varcount_into(mine, &mut partition);
    }
    (0..n).map(|r| all[displs[r] as usize..(displs[r] + lengths[r]) as usize].to_vec()).collect()
}

/// What `MPI_Finalize` runs first (see [`on_mpi_finalize`]).
static FINALIZE_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

unsafe extern "C" fn run_finalize_hook(
    _comm: ffi::MPI_Comm,
    _keyval: i32,
    _value: *mut std::ffi::c_void,
    _extra: *mut std::ffi::c_void,
) -> i32 {
    if let Some(hook) = FINALIZE_HOOK.get() {
        // No unwinding into MPI.
        if std::panic::catch_unwind(hook).is_err() {
            tracing::error!("the MPI_Finalize hook panicked");
        }
    }
    0
}

/// The attribute is never copied to a duplicate of `MPI_COMM_SELF`.
unsafe extern "C" fn no_copy(
    _comm: ffi::MPI_Comm,
    _keyval: i32,
    _extra: *mut std::ffi::c_void,
    _value_in: *mut std::ffi::c_void,
    _value_out: *mut std::ffi::c_void,
    flag: *mut i32,
) -> i32 {
    // SAFETY: MPI passes a valid flag to write.
    unsafe { *flag = 0 };
    0
}

/// Makes `MPI_Finalize` call `hook` first, while MPI still works: MPI deletes the attributes of
/// `MPI_COMM_SELF` at the very start of `MPI_Finalize`, and the one set here runs `hook` as it
/// goes. Once per process; later calls do nothing.
pub fn on_mpi_finalize(hook: fn()) {
    if FINALIZE_HOOK.set(hook).is_err() {
        return;
    }
    let mut keyval = 0;
    // SAFETY: plain MPI calls with valid pointers; the callback matches MPI's delete function
    // type and ignores its arguments; the attribute's value is never read.
    let rc = unsafe {
        let rc = ffi::MPI_Comm_create_keyval(Some(no_copy), Some(run_finalize_hook), &mut keyval, std::ptr::null_mut());
        if rc == 0 {
            ffi::MPI_Comm_set_attr(ffi::RSMPI_COMM_SELF, keyval, std::ptr::null_mut())
        } else {
            rc
        }
    };
    if rc != 0 {
        tracing::warn!(rc, "cannot hook MPI_Finalize; a rank that ends MPI without benchfs_finalize may leave the others waiting");
    }
}
