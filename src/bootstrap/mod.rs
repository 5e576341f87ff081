//! Bringing a rank up and down: the collective steps of `benchfs_init`, `benchfs_attach` and
//! `benchfs_finalize`.
//!
//! * [`comm`] is the only code that calls MPI: the job's duplicate communicator, allgather of
//!   the UCX worker addresses, agreement and barriers.
//! * [`start()`] and [`attach()`] run the steps: configuration, progress thread, address exchange, readiness.
//! * [`same_node`] finds the ranks that share this node's storage.
//! * [`contact`] is the file through which tools attach to a running job.

mod comm;
mod contact;
mod same_node;
mod start;

pub use comm::{on_mpi_finalize, JobComm};
pub use start::{attach, start, Running};
