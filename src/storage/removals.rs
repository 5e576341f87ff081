//! How many chunk files a store has removed, in a file of its directory that same-node ranks map.
//!
//! A rank that keeps descriptors of a peer's chunk files must not read a removed file's old data
//! through one. Checking the link count (`fstat`) at every access costs a system call per read;
//! instead a cached descriptor is checked only when the peer's count has moved since it was last
//! checked. The owner raises the count after each removal, before the removal's request is
//! answered, so no unlink that has returned can be missed.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const FILE: &str = "removals";
const LEN: usize = std::mem::size_of::<u64>();

/// A mapping of a store's removal count.
pub struct Removals {
    count: *const AtomicU64,
}

impl Removals {
    /// Creates the count in this rank's store `dir` (zero), mapped for writing.
    pub fn create(dir: &Path) -> io::Result<Removals> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).mode(0o600).open(dir.join(FILE))?;
        file.set_len(LEN as u64)?;
        Self::map(&file, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps the count of a peer's store `dir`, for reading.
    pub fn open(dir: &Path) -> io::Result<Removals> {
        let file = OpenOptions::new().read(true).open(dir.join(FILE))?;
        if file.metadata()?.len() < LEN as u64 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Self::map(&file, libc::PROT_READ)
    }

    fn map(file: &std::fs::File, prot: i32) -> io::Result<Removals> {
        // SAFETY: a fresh shared mapping of the file's first bytes, which exist (checked or set
        // above); the kernel picks the (page-aligned) address.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), LEN, prot, libc::MAP_SHARED, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Removals { count: ptr as *const AtomicU64 })
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        // SAFETY: the mapping lives as long as self and is page-aligned, so it holds an aligned
        // u64 that other processes only change atomically.
        unsafe { (*self.count).load(Ordering::Acquire) }
    }

    /// Counts one more removal (on a count made by `create`).
    pub fn bump(&self) {
        // SAFETY: as in `get`; a count from `create` is mapped writable.
        unsafe { (*self.count).fetch_add(1, Ordering::Release) };
    }
}

impl Drop for Removals {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `map`, used by nobody after this.
        unsafe { libc::munmap(self.count as *mut libc::c_void, LEN) };
    }
}

/// Removes the count from `dir`; a missing one is fine.
pub fn remove(dir: &Path) -> io::Result<()> {
    crate::storage::remove_if_present(&dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_sees_the_owners_count() {
        let dir = std::env::temp_dir().join(format!("benchfs-removals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let owner = Removals::create(&dir).unwrap();
        let peer = Removals::open(&dir).unwrap();
        assert_eq!((owner.get(), peer.get()), (0, 0));
        owner.bump();
        owner.bump();
        assert_eq!(peer.get(), 2, "the same bytes, through two mappings");
        drop((owner, peer));
        remove(&dir).unwrap();
        assert!(Removals::open(&dir).is_err(), "gone");
        std::fs::remove_dir(&dir).unwrap();
    }
}
