//! Direct access to the chunk files of other ranks on the same node.
//!
//! Ranks on one node share its storage and page cache, so a rank can read and write a same-node
//! owner's chunk file itself: one copy, as a local `pread`/`pwrite`, instead of a trip through
//! the transport. The owner still decides what the file is: it creates and cuts it, and only
//! removes it when the file is unlinked (truncation keeps the inode, so peers' descriptors stay
//! valid). Plain system calls: a peer's file is touched only for the one call at hand.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lru::LruCache;

use crate::error::StorageError;
use crate::ids::{InodeId, Rank};

use super::posix::{self, ChunkDir};
use super::removals::Removals;
use super::small::PeerSlab;

/// True for the errors that say a peer's directory cannot be used from here at all (it is gone,
/// or not ours to open), as opposed to the failure of one operation in it.
fn unreachable(e: &StorageError) -> bool {
    match e {
        StorageError::Io(e) => matches!(
            e.raw_os_error(),
            Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::EPERM | libc::EXDEV | libc::ESTALE | libc::ELOOP | libc::ENAMETOOLONG)
        ),
        _ => false,
    }
}

/// Descriptors of same-node peers' chunk files, least recently used first out.
pub struct PeerFiles {
    /// Store directory of each rank on this node (`None`: another node, this rank, or a rank
    /// whose files could not be reached).
    dirs: RefCell<Vec<Option<PathBuf>>>,
    /// The ranks that had a directory here at the start: the only ones whose files are cached.
    near: Vec<Rank>,
    /// Those directories, open, once this rank used them (see `ChunkDir`).
    opened_dirs: RefCell<foldhash::HashMap<Rank, Rc<ChunkDir>>>,
    files: RefCell<LruCache<(Rank, InodeId), Cached>>,
    /// The removal count of each peer (`None`: it cannot be mapped; every access checks).
    removals: RefCell<foldhash::HashMap<Rank, Option<Removals>>>,
    /// Each peer's packed small files (`None` inside: it packs none).
    small: RefCell<foldhash::HashMap<Rank, Option<Rc<PeerSlab>>>>,
    opened: std::cell::Cell<u64>,
}

/// A peer's chunk file, with its owner's removal count when it was last known to be linked.
type Cached = (Rc<File>, Option<u64>);

/// Every this many opens, descriptors of files their owners removed are closed, so that a
/// removed file's space (on tmpfs, its memory) is not held by a cached descriptor.
pub(super) const SWEEP_EVERY: u64 = 64;

impl PeerFiles {
    pub fn new(dirs: Vec<Option<PathBuf>>) -> PeerFiles {
        let near = dirs.iter().enumerate().filter(|(_, dir)| dir.is_some()).map(|(rank, _)| Rank(rank as u32)).collect();
        PeerFiles {
            dirs: RefCell::new(dirs),
            near,
            opened_dirs: RefCell::default(),
            files: RefCell::new(LruCache::new(super::fd_budget_half())),
            removals: RefCell::default(),
            small: RefCell::default(),
            opened: std::cell::Cell::new(0),
        }
    }

    /// The store directory of `rank`, if it is a same-node rank whose files can be reached.
    pub fn dir_of(&self, rank: Rank) -> Option<PathBuf> {
        self.dirs.borrow().get(rank.0 as usize).cloned().flatten()
    }

    /// True if `rank`'s chunk files can be reached directly.
    fn reaches(&self, rank: Rank) -> bool {
        self.dirs.borrow().get(rank.0 as usize).is_some_and(Option::is_some)
    }

    /// Runs `io` on `owner`'s chunk files directly, if that owner is reachable. `None` tells
    /// the caller to ask the owner through the transport instead: always when `io` finds no file
    /// to read (only the owner can say whether that is a hole), and from then on when `io`
    /// finds the owner's directory out of reach (see [`unreachable`]). Any other error (a full
    /// store, too many open files) is this call's own: it is returned, and the next call tries
    /// directly again.
    pub fn direct<T>(
        &self,
        owner: Rank,
        io: impl FnOnce(&PeerFiles) -> Result<Option<T>, StorageError>,
    ) -> Option<Result<T, StorageError>> {
        if !self.reaches(owner) {
            return None;
        }
        match io(self) {
            Ok(done) => done.map(Ok),
            Err(e) if unreachable(&e) => {
                tracing::warn!(%owner, error = %e, "cannot use a same-node rank's chunk files directly; using the transport");
                if let Some(dir) = self.dirs.borrow_mut().get_mut(owner.0 as usize) {
                    *dir = None;
                }
                self.opened_dirs.borrow_mut().remove(&owner);
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// `rank`'s removal count now, if it can be read.
    fn removal_count(&self, rank: Rank) -> Option<u64> {
        let mut counts = self.removals.borrow_mut();
        let count = counts.entry(rank).or_insert_with(|| {
            let dir = self.dirs.borrow().get(rank.0 as usize).cloned().flatten()?;
            Removals::open(&dir).ok()
        });
        count.as_ref().map(Removals::get)
    }

    fn file(&self, rank: Rank, ino: InodeId, create: bool) -> io::Result<Option<Rc<File>>> {
        // Read before any check below: a removal after it moves the count on.
        let count = self.removal_count(rank);
        let cached = self.files.borrow_mut().get(&(rank, ino)).cloned();
        if let Some((file, checked_at)) = cached {
            // A descriptor of a file its owner has removed (unlinked) would still reach the old
            // data, so every chunk of a removed file reads alike only if each access checks:
            // the link count, unless the owner has removed nothing since the last check.
            if count.is_some() && checked_at == count {
                return Ok(Some(file));
            }
            use std::os::unix::fs::MetadataExt;
            if file.metadata()?.nlink() > 0 {
                self.files.borrow_mut().put((rank, ino), (file.clone(), count));
                return Ok(Some(file));
            }
            self.files.borrow_mut().pop(&(rank, ino));
        }
        let dir = self.opened_dir(rank)?;
        let opened = loop {
            match dir.open_chunk(ino, create) {
                // Out of descriptors: close the least recently used peer file and try again.
                Err(e) if super::is_fd_exhaustion(&e) && self.files.borrow_mut().pop_lru().is_some() => {}
                other => break other,
            }
        };
        match opened {
            Ok(file) => {
                self.sweep();
                let file = Rc::new(file);
                self.files.borrow_mut().put((rank, ino), (file.clone(), count));
                Ok(Some(file))
            }
            Err(e) if !create && e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `rank`'s store directory, opened on first use.
    fn opened_dir(&self, rank: Rank) -> io::Result<Rc<ChunkDir>> {
        if let Some(dir) = self.opened_dirs.borrow().get(&rank) {
            return Ok(dir.clone());
        }
        let Some(Some(path)) = self.dirs.borrow().get(rank.0 as usize).cloned() else {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        };
        let dir = Rc::new(ChunkDir::open(&path)?);
        self.opened_dirs.borrow_mut().insert(rank, dir.clone());
        Ok(dir)
    }

    /// `rank`'s packed small files, opened on first use; `None` if it packs none. An index
    /// that exists but cannot be read is an error: without it no write can tell whether a
    /// chunk is packed, so the caller stops using the peer's files (see `unreachable`).
    fn small_of(&self, rank: Rank) -> io::Result<Option<Rc<PeerSlab>>> {
        if let Some(known) = self.small.borrow().get(&rank) {
            return Ok(known.clone());
        }
        let Some(dir) = self.dir_of(rank) else { return Err(io::Error::from_raw_os_error(libc::EXDEV)) };
        let slab = PeerSlab::open(&dir, rank).map_err(|e| match e.raw_os_error() {
            Some(_) => e,
            None => io::Error::from_raw_os_error(libc::EACCES),
        })?;
        let slab = slab.map(Rc::new);
        self.small.borrow_mut().insert(rank, slab.clone());
        Ok(slab)
    }

    /// How many bytes of `ino` `rank` holds packed, if it does.
    fn packed_len(&self, rank: Rank, ino: InodeId) -> io::Result<Option<u64>> {
        Ok(self.small_of(rank)?.and_then(|slab| slab.len(ino)))
    }

    /// Writes all of `buf` at `offset` of `rank`'s file of `ino`. `None` when `rank` holds the
    /// chunk packed: only it writes its slots, so the caller asks it.
    pub fn write(&self, rank: Rank, ino: InodeId, offset: u64, buf: &[u8]) -> Result<Option<usize>, StorageError> {
        super::check_span(offset, buf.len())?;
        if self.packed_len(rank, ino)?.is_some() {
            return Ok(None);
        }
        let file = self.file(rank, ino, true)?.ok_or(StorageError::Io(io::ErrorKind::NotFound.into()))?;
        Ok(Some(posix::write_all_at(&file, buf, offset)?))
    }

    /// Reads up to `buf.len()` bytes at `offset`; short where the file ends (a hole follows).
    /// `None` when `rank` has no file of `ino`: the caller asks the owner.
    pub fn read(&self, rank: Rank, ino: InodeId, offset: u64, buf: &mut [u8]) -> Result<Option<usize>, StorageError> {
        super::check_span(offset, buf.len())?;
        if let Some(slab) = self.small_of(rank)? {
            if let Some(got) = slab.read(ino, offset, buf) {
                return Ok(Some(got?));
            }
        }
        match self.file(rank, ino, false)? {
            Some(file) => Ok(Some(posix::read_full_at(&file, buf, offset)?)),
            None => Ok(None),
        }
    }

    /// The length of `rank`'s file of `ino`: how far that rank's data of the file reaches.
    /// `None` when `rank` has no file of `ino`: the caller asks the owner.
    pub fn extent(&self, rank: Rank, ino: InodeId) -> Result<Option<u64>, StorageError> {
        if let Some(len) = self.packed_len(rank, ino)? {
            return Ok(Some(len));
        }
        match self.file(rank, ino, false)? {
            Some(file) => Ok(Some(file.metadata()?.len())),
            None => Ok(None),
        }
    }

    fn sweep(&self) {
        let opened = self.opened.get() + 1;
        self.opened.set(opened);
        if opened % SWEEP_EVERY != 0 {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        // Each peer's removal count, read once per sweep (`None` inside: it cannot be read).
        let mut counts: std::collections::HashMap<Rank, Option<u64>> = std::collections::HashMap::new();
        let mut files = self.files.borrow_mut();
        let mut removed = Vec::new();
        for (key, (file, checked_at)) in files.iter_mut() {
            // Only files whose owner has removed something since their last check can be gone:
            // without removals a sweep costs no system call, however many files are cached.
            let count = *counts.entry(key.0).or_insert_with(|| self.removal_count(key.0));
            if count.is_some() && *checked_at == count {
                continue;
            }
            match file.metadata() {
                Ok(meta) if meta.nlink() > 0 => *checked_at = count,
                _ => removed.push(*key),
            }
        }
        for key in removed {
            files.pop(&key);
        }
    }

    /// True while a descriptor of `rank`'s chunk file of `ino` is cached.
    #[cfg(test)]
    pub(super) fn caches(&self, rank: Rank, ino: InodeId) -> bool {
        self.files.borrow().contains(&(rank, ino))
    }

    /// Closes this rank's descriptors of `ino`'s chunk files on every same-node peer (the file
    /// was removed), so that no cached descriptor keeps their space allocated. Only same-node
    /// ranks can have any: a removal costs a look per rank of this node, not per rank of the job.
    pub fn forget(&self, ino: InodeId) {
        let mut files = self.files.borrow_mut();
        for &rank in &self.near {
            files.pop(&(rank, ino));
        }
    }
}

/// The file in a store directory that proves which storage the directory is on: a random token
/// its rank writes at start, which another rank must read back through the directory's path
/// before it uses the chunk files there. A host name proves nothing: cloned machines and
/// containers share one without sharing a file system.
const NODE_TOKEN: &str = "node-token";

/// Creates `dir` (mode 0700) if needed and writes `token` into it (mode 0600).
pub fn write_node_token(dir: &Path, token: &[u8]) -> io::Result<()> {
    posix::create_dir(dir)?;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join(NODE_TOKEN))?;
    file.write_all(token)
}

/// True if `dir` holds exactly `token`: it is on storage this rank shares with its writer.
pub fn node_token_matches(dir: &Path, token: &[u8]) -> bool {
    std::fs::read(dir.join(NODE_TOKEN)).is_ok_and(|found| found == token)
}

/// Removes the token from `dir`; a missing one is fine.
pub fn remove_node_token(dir: &Path) -> io::Result<()> {
    posix::remove_if_present(&dir.join(NODE_TOKEN))
}
