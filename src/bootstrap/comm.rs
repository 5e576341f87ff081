//! MPI bootstrap: the only code that calls MPI, and only from the application thread inside
//! `init` and `finalize` (so plain `MPI_Init` is enough).

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::ffi;
use mpi::raw::FromRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use crate::error::{BootstrapError, Result};

/// BenchFS's own duplicate of the application's communicator, freed on drop.
pub struct JobComm {
    comm: SimpleCommunicator,
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
        // SAFETY: reading a predefined handle.
        let mut dup = unsafe { ffi::RSMPI_COMM_NULL };
        // SAFETY: raw is a communicator handle from the caller; dup receives a new one.
        let rc = unsafe { ffi::MPI_Comm_dup(raw, &mut dup) };
        // SAFETY: reading a predefined handle.
        if rc != 0 || dup == unsafe { ffi::RSMPI_COMM_NULL } {
            return Err(BootstrapError::BadCommunicator.into());
        }
        // SAFETY: dup is a live intra-communicator that only this JobComm uses and frees.
        Ok(JobComm { comm: unsafe { SimpleCommunicator::from_raw(dup) } })
    }

    pub fn rank(&self) -> u32 {
        self.comm.rank() as u32
    }

    pub fn size(&self) -> u32 {
        self.comm.size() as u32
    }

    /// Collective: how many ranks of the job share this rank's node (its shared memory).
    pub fn ranks_on_node(&self) -> u32 {
        self.comm.split_shared(0).size() as u32
    }

    pub fn barrier(&self) {
        self.comm.barrier();
    }

    /// Every rank's bytes, indexed by rank (allgather of lengths, then allgatherv).
    pub fn allgather_bytes(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        let n = self.size() as usize;
        let mut lengths = vec![0i32; n];
        self.comm.all_gather_into(&(mine.len() as i32), &mut lengths[..]);
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
            self.comm.all_gather_varcount_into(mine, &mut partition);
        }
        (0..n).map(|r| all[displs[r] as usize..(displs[r] + lengths[r]) as usize].to_vec()).collect()
    }

    /// Collective: the element-wise sums of every rank's `mine` (all of one length).
    pub fn sum_u64s(&self, mine: &[u64]) -> Vec<u64> {
        let mut sums = vec![0u64; mine.len()];
        self.comm.all_reduce_into(mine, &mut sums[..], SystemOperation::sum());
        sums
    }

    /// True on every rank if `ok` is true on every rank: collective error agreement, so that a
    /// failure on one rank makes all of them fail instead of hanging in the next collective.
    pub fn all_ok(&self, ok: bool) -> bool {
        let mine = u32::from(!ok);
        let mut any_failed = 0u32;
        self.comm.all_reduce_into(&mine, &mut any_failed, SystemOperation::max());
        any_failed == 0
    }

    /// Rank 0's bytes, on every rank.
    pub fn broadcast_bytes(&self, mine: &[u8]) -> Vec<u8> {
        let root = self.comm.process_at_rank(0);
        let mut len = mine.len() as u64;
        root.broadcast_into(&mut len);
        let mut bytes = if self.rank() == 0 { mine.to_vec() } else { vec![0u8; len as usize] };
        root.broadcast_into(&mut bytes[..]);
        bytes
    }

    /// Rank 0's value of `value`, on every rank.
    pub fn broadcast_u64(&self, value: u64) -> u64 {
        let mut v = value;
        self.comm.process_at_rank(0).broadcast_into(&mut v);
        v
    }
}
