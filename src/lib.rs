//! BenchFS: an MPI-native ad-hoc distributed file system.
//!
//! There is no daemon. After `MPI_Init`, every rank of a job calls [`init`] (or `benchfs_init`
//! from C) and from then on is both a server and a client:
//!
//! ```text
//!   rank r                                         rank s
//!  +------------------------------------+        +----------------------------+
//!  | application thread(s)              |        |  ...                       |
//!  |   open / pwrite / stat (blocking)  |        |                            |
//!  |        | lock free: turn it here   |        |                            |
//!  |        | (else: mailbox, reply)    |  UCX   |                            |
//!  | engine: executor, node -----------+<------>+ engine, progress thread    |
//!  |   UCX worker (active messages)     |  AM /  |   metadata records         |
//!  |   io_uring chunk store             |  RNDV  |   chunk store              |
//!  | progress thread: turns it between  |        |                            |
//!  |   calls, serves others, sleeps     |        |                            |
//!  +------------------------------------+        +----------------------------+
//! ```
//!
//! A rank's loop state (the engine) sits behind one lock: a calling application thread that
//! finds it free runs its operation and turns the loop itself until its reply is there, with no
//! hand-off between threads; the progress thread turns it the rest of the time, serving other
//! ranks, and blocks in epoll when there is nothing to do.
//!
//! The modules are layers; each uses only the ones below it:
//!
//! ```text
//!  ffi          the C API of include/benchfs.h (the only #[no_mangle] code)
//!  fs           the file-system calls: descriptor table, namespace protocols, data path, dirs
//!  bootstrap    init / attach / finalize: MPI (the only MPI code), contact file, same-node peers
//!  runtime      the progress thread: its loop, mailbox, reply slots, UCX and io_uring reactors
//!  rpc          the request path: client stubs, transport, server handlers, wire format
//!  metadata     the records a rank owns        storage    chunk files: io_uring, pread, peers
//!  ucx  placement  path  config  stats  error  ids  join leaves
//! ```
//!
//! One `pwrite` going down the layers:
//!
//! ```text
//!  benchfs_pwrite(fd, buf, n, off)            ffi: pointer checks, panic boundary, errno
//!   └ fs::pwrite -> handle.now / handle.call  fs/api: run under the engine's lock; `now` when
//!      │                                        no piece waits, as a call that may wait else
//!      └ fs::data::pwrite (engine)            split at chunk boundaries, one piece per owner
//!         ├ owner is this rank   -> storage::ChunkStore::write (io_uring or pwrite)
//!         ├ owner on this node   -> storage::PeerFiles::direct (its chunk file, one copy)
//!         └ owner elsewhere      -> rpc::client::write_chunk -> rpc transport (UCX AM)
//!                                    └ on the owner: rpc::server -> storage::ChunkStore::write
//! ```
//!
//! Errors are [`Error`], whose [`Error::errno`] is the POSIX errno the C API sets.
//!
//! ```no_run
//! use benchfs::mpi;
//!
//! let universe = mpi::initialize().unwrap();
//! benchfs::init(&universe.world())?;
//! let fd = benchfs::open("/hello", libc::O_CREAT | libc::O_RDWR, 0o644)?;
//! benchfs::pwrite(fd, b"hello", 0)?;
//! let mut back = [0u8; 5];
//! assert_eq!(benchfs::pread(fd, &mut back, 0)?, 5);
//! benchfs::close(fd)?;
//! benchfs::finalize()?;
//! # Ok::<(), benchfs::Error>(())
//! ```

#![warn(missing_docs)]

mod bootstrap;
mod config;
mod error;
mod ffi;
mod fs;
mod ids;
mod join;
mod metadata;
mod path;
mod placement;
mod rpc;
mod runtime;
mod stats;
mod storage;
mod ucx;

pub use config::parse_size;
pub use error::{BootstrapError, ConfigError, Error, Result, StorageError, UcxError, WireError};
pub use fs::{
    access, attach, attach_raw, chunk_rank, close, finalize, fstat, fsync, ftruncate, init, init_raw, lseek, metadata_rank, mkdir, open,
    opendir, pread, pwrite, read, readdir, rename, rmdir, stat, statvfs, truncate, unlink, write, Dir, FileStat, FsStat, Whence,
};
pub use ids::Rank;
/// The MPI bindings BenchFS is built with: [`init`] and [`attach`] take their communicators.
pub use mpi;
pub use rpc::DirEntry;

/// How many requests of other ranks (and of this rank's own calls that needed a request) this
/// rank has served since [`init`], while `BENCHFS_STATS=1` has BenchFS record statistics; 0
/// otherwise. Summed over a job's ranks around an operation, it is what that operation cost the
/// job in requests (`benchfs-bench --mode scaling` reports it per operation).
pub fn requests_served() -> u64 {
    stats::served_total()
}

/// Hooks for BenchFS's own test programs (cargo feature `testing`); not part of the API.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::fs::testing::{
        credential, hold_releases, incoming_peak, panic_progress_thread, read_reply_header, send_raw_replies, send_raw_request,
    };
    pub use crate::ids::{ChunkIndex, InodeId, Rank};
    pub use crate::placement::Ring;
    pub use crate::rpc::wire::{Request, CREDENTIAL_LEN, EXTERNAL_SOURCE, HEADER_LEN, MAGIC, REQUEST_HEADER_LEN};
}
