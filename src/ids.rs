//! Newtypes for identifiers that are easy to mix up.

use std::fmt;

/// A rank of the BenchFS communicator (not necessarily of `MPI_COMM_WORLD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rank(pub u32);

/// A file's identity. Allocated by the metadata owner at creation and never derived from the
/// path, so that renaming a file does not move its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId(pub u64);

/// The index of a chunk inside a file: byte `offset` lies in chunk `offset / chunk_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkIndex(pub u64);

impl fmt::Display for Rank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rank {}", self.0)
    }
}

impl fmt::Display for InodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inode {:#x}", self.0)
    }
}
