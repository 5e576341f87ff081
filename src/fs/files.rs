//! The descriptor table of one rank: what each open BenchFS descriptor refers to. It lives on
//! the progress thread, beside the node.

use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::rpc::Attr;

/// Descriptors start here, like the kernel's after stdin/stdout/stderr.
const FD_BASE: i32 = 3;
const MAX_OPEN_FILES: usize = 1 << 20;
/// Largest offset + length of a file, as `off_t` allows.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// An open file (or directory) of this rank.
pub struct OpenFile {
    /// The normalised path it was opened by (or renamed to, by this rank).
    pub path: Vec<u8>,
    pub flags: i32,
    pub attr: Attr,
    /// Position for `read`/`write`.
    pub pos: u64,
    /// The size as this descriptor knows it: the owner's at open, raised by its own writes.
    pub size: u64,
    /// The end of the highest byte written through this descriptor since it last published.
    pub dirty_end: Option<u64>,
    /// Ranks that hold chunks written through this descriptor (for fsync).
    pub written_owners: Vec<Rank>,
    /// Counted among the file's writers at its owner (from the create that opened it, or from
    /// its first write, until close).
    pub registered: bool,
    /// A write through this descriptor was begun: its close publishes what it wrote.
    pub wrote: bool,
}

impl OpenFile {
    pub fn is_dir(&self) -> bool {
        self.attr.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn readable(&self) -> bool {
        self.flags & libc::O_ACCMODE != libc::O_WRONLY
    }
    pub fn writable(&self) -> bool {
        self.flags & libc::O_ACCMODE != libc::O_RDONLY
    }
}

/// The descriptor table of one rank; lives on the progress thread.
#[derive(Default)]
pub struct FileTable {
    slots: Vec<Option<OpenFile>>,
    free: Vec<usize>,
}

impl FileTable {
    pub fn insert(&mut self, file: OpenFile) -> Result<i32> {
        let index = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < MAX_OPEN_FILES => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(Error::TooManyOpenFiles),
        };
        self.slots[index] = Some(file);
        Ok(index as i32 + FD_BASE)
    }

    fn index(fd: i32) -> Option<usize> {
        fd.checked_sub(FD_BASE).and_then(|i| usize::try_from(i).ok())
    }

    pub fn get(&self, fd: i32) -> Result<&OpenFile> {
        Self::index(fd).and_then(|i| self.slots.get(i)).and_then(Option::as_ref).ok_or(Error::BadFd(fd))
    }

    pub fn get_mut(&mut self, fd: i32) -> Result<&mut OpenFile> {
        Self::index(fd).and_then(|i| self.slots.get_mut(i)).and_then(Option::as_mut).ok_or(Error::BadFd(fd))
    }

    pub fn remove(&mut self, fd: i32) -> Result<OpenFile> {
        let index = Self::index(fd).ok_or(Error::BadFd(fd))?;
        let file = self.slots.get_mut(index).and_then(Option::take).ok_or(Error::BadFd(fd))?;
        self.free.push(index);
        Ok(file)
    }

    pub fn of_inode(&mut self, ino: u64) -> impl Iterator<Item = &mut OpenFile> {
        self.slots.iter_mut().flatten().filter(move |f| f.attr.ino == ino)
    }

    /// The directory `from` moved to `to`: descriptors of paths in it now name paths in `to`.
    pub fn retarget(&mut self, from: &[u8], to: &[u8]) {
        for f in self.slots.iter_mut().flatten() {
            if f.path == from || crate::path::is_below(&f.path, from) {
                f.path = crate::path::rebase(&f.path, from, to);
            }
        }
    }

    /// The end of this rank's unpublished writes to `ino`.
    pub fn local_size(&self, ino: u64) -> Option<u64> {
        self.slots.iter().flatten().filter(|f| f.attr.ino == ino).filter_map(|f| f.dirty_end).max()
    }
}
