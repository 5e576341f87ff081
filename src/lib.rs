//! BenchFS: an MPI-native ad-hoc distributed file system.
//!
//! There is no daemon. After `MPI_Init`, every rank of a job calls [`init`] (or `benchfs_init` from
//! C) and from then on is both a server and a client:
//!
//! ```text
//!   rank r                                         rank s
//!  +------------------------------------+        +----------------------------+
//!  | application thread(s)              |        |  ...                       |
//!  |   open / pwrite / stat (blocking)  |        |                            |
//!  |        |  request channel  ^ reply |        |                            |
//!  |        v                   |       |  UCX   |                            |
//!  | progress thread: executor --+------+<------>+ progress thread            |
//!  |   UCX worker (active messages)     |  AM /  |   metadata table           |
//!  |   io_uring chunk store             |  RNDV  |   chunk store              |
//!  +------------------------------------+        +----------------------------+
//! ```
//!
//! * [`bootstrap`] is the only code that calls MPI: it duplicates the communicator and
//!   allgathers the UCX worker addresses.
//! * [`runtime`] is the progress thread: a single-threaded executor that drives the UCX worker,
//!   the io_uring ring and the request channel, spinning briefly and then blocking.
//! * [`placement`] maps `(inode, chunk)` and paths to ranks by consistent hashing.
//! * [`rpc`] defines the wire format and the handlers; [`metadata`] and [`storage`] are what a
//!   rank serves; [`client`] implements the file-system calls; [`ffi`] is the C API of
//!   `include/benchfs.h`.

pub mod bootstrap;
pub mod client;
pub mod config;
pub mod contact;
pub mod error;
pub mod ffi;
pub mod ids;
pub mod metadata;
pub mod node;
pub mod path;
pub mod placement;
pub mod rpc;
pub mod runtime;
pub mod storage;
pub mod ucx;

pub use client::{
    access, attach, attach_raw, close, finalize, fstat, fsync, ftruncate, init, init_raw, lseek, mkdir, open, opendir, pread, pwrite, read,
    readdir, rename, rmdir, stat, statvfs, truncate, unlink, write, Dir, DirEntry, FileStat, FsStat, Whence,
};
pub use config::parse_size;
pub use error::{Error, Result};
pub use ids::{ChunkIndex, InodeId, Rank};
