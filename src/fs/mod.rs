//! The file-system operations, as blocking calls of application threads.
//!
//! Each call ([`api`], [`dir`]) checks its arguments and hands its operation to the progress
//! thread through the process-wide [`handle`]; the operation runs there against this rank's
//! [`Client`] state: the node (to reach other ranks) and the descriptor table ([`files`]).
//! [`namespace`] holds the metadata protocols, [`data`] the chunk I/O.

mod api;
mod data;
mod dir;
mod files;
mod handle;
mod namespace;
#[cfg(feature = "testing")]
pub mod testing;

use std::cell::RefCell;
use std::rc::Rc;

pub use api::{
    access, chunk_rank, close, fstat, fsync, ftruncate, lseek, metadata_rank, mkdir, open, pread, pwrite, read, rename, rmdir, stat,
    statvfs, truncate, unlink, write,
};
pub use dir::{opendir, readdir, Dir};
pub use handle::{attach, attach_raw, finalize, init, init_raw};
pub use namespace::{FileStat, FsStat};

use crate::rpc::Node;
use crate::runtime::RankState;
use files::FileTable;

/// `lseek` origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// From the start of the file (`SEEK_SET`).
    Set,
    /// From the current position (`SEEK_CUR`).
    Cur,
    /// From the end of the file (`SEEK_END`).
    End,
}

/// What the file-system layer keeps on the progress thread: the rank's node, and the open
/// descriptors of its application threads.
pub struct Client {
    node: Rc<Node>,
    /// Shared with the node's fences, which rename the descriptors' paths when a tree moves.
    files: Rc<RefCell<FileTable>>,
    /// The owner and group of the entries this rank makes: the effective ids of the process at
    /// start (read once, not per create).
    creator: (u32, u32),
}

impl RankState for Client {
    fn new(node: Rc<Node>) -> Client {
        let files: Rc<RefCell<FileTable>> = Rc::default();
        let moved = files.clone();
        node.fences.on_moved(Box::new(move |from, to| moved.borrow_mut().retarget(from, to)));
        // SAFETY: geteuid/getegid cannot fail.
        let creator = unsafe { (libc::geteuid(), libc::getegid()) };
        Client { node, files, creator }
    }
    fn node(&self) -> &Rc<Node> {
        &self.node
    }
}
