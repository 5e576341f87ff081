//! Newtypes for identifiers that are easy to mix up.

use std::fmt;

/// A rank of the BenchFS communicator (not necessarily of `MPI_COMM_WORLD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rank(pub u32);

/// A file's identity. Allocated by the metadata owner at creation and never derived from the
/// path, so that renaming a file does not move its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId(pub u64);

/// Bits of an inode number below the field that names the rank that made it (that rank + 1).
pub const INO_RANK_SHIFT: u32 = 40;

impl InodeId {
    /// The inode number the rank `creator` gives the `n`th record it makes (`n` below
    /// 2^`INO_RANK_SHIFT`).
    pub fn made_by(creator: Rank, n: u64) -> InodeId {
        InodeId(((creator.0 as u64 + 1) << INO_RANK_SHIFT) | n)
    }

    /// Which of its creator's inode numbers this is (see [`InodeId::made_by`]).
    pub fn sequence(self) -> u64 {
        self.0 & ((1 << INO_RANK_SHIFT) - 1)
    }

    /// The rank that made this inode number, if it names one.
    pub fn creator(self) -> Option<Rank> {
        (self.0 >> INO_RANK_SHIFT).checked_sub(1).and_then(|r| u32::try_from(r).ok()).map(Rank)
    }
}

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
