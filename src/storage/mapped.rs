//! Read-only mappings of chunk-file ranges, so that a remote reader can copy straight out of the
//! page cache (UCX rendezvous) instead of through an intermediate buffer.
//!
//! A mapping pins its inode: truncating or removing a file while a mapping of it is in flight
//! could fault a reader of the mapping, so the chunk handlers await [`ChunkStore::unpinned`]
//! (the inode has no live mapping) before they cut or remove the file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::error::StorageError;
use crate::ids::InodeId;

use super::ChunkStore;

/// Live mappings per inode, and the tasks waiting for an inode to have none.
#[derive(Default)]
pub(super) struct Pins {
    counts: HashMap<InodeId, usize>,
    waiters: HashMap<InodeId, Vec<Waker>>,
}

/// A mapped range of a chunk file. Unmapped, and its inode unpinned, on drop.
pub struct MappedRange {
    base: *mut libc::c_void,
    map_len: usize,
    data: *const u8,
    len: usize,
    ino: InodeId,
    pins: Rc<RefCell<Pins>>,
    _file: Rc<File>,
}

impl MappedRange {
    pub fn as_ptr(&self) -> *const u8 {
        self.data
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        // SAFETY: base/map_len are exactly what mmap returned; nothing uses the range after this.
        unsafe { libc::munmap(self.base, self.map_len) };
        let mut pins = self.pins.borrow_mut();
        let count = pins.counts.entry(self.ino).or_insert(1);
        *count -= 1;
        if *count == 0 {
            pins.counts.remove(&self.ino);
            for waker in pins.waiters.remove(&self.ino).unwrap_or_default() {
                waker.wake();
            }
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

impl ChunkStore {
    /// Maps up to `len` bytes at `offset` of the local file of `ino`, clamped to the file's
    /// current end. `None` when there is nothing to map (no file, or `offset` at or past its end).
    pub fn map_range(&self, ino: InodeId, offset: u64, len: usize) -> Result<Option<MappedRange>, StorageError> {
        super::check_span(offset, len)?;
        // A packed file's bytes lie in its slot of the slab, from `base` on.
        let packed = self.packed(ino).map(|(small, len)| (small.file.clone(), small.start(ino), len));
        let (file, base, size) = match packed {
            Some(packed) => packed,
            None => {
                let Some(file) = self.existing_file(ino)? else { return Ok(None) };
                let size = file.metadata()?.len();
                (file, 0, size)
            }
        };
        if offset >= size || len == 0 {
            return Ok(None);
        }
        let len = (size - offset).min(len as u64) as usize;
        let offset = base + offset;
        let start = offset - offset % page_size();
        let map_len = (offset - start) as usize + len;
        // SAFETY: a fresh shared read-only mapping of an open file, within its current size.
        let base =
            unsafe { libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), start as libc::off_t) };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        *self.pins.borrow_mut().counts.entry(ino).or_insert(0) += 1;
        // SAFETY: offset - start < map_len, so the data pointer lies inside the mapping.
        let data = unsafe { (base as *const u8).add((offset - start) as usize) };
        Ok(Some(MappedRange { base, map_len, data, len, ino, pins: self.pins.clone(), _file: file }))
    }

    /// Whether a mapping of `ino` is live: its file cannot be cut or removed before it ends.
    pub fn is_pinned(&self, ino: InodeId) -> bool {
        self.pins.borrow().counts.contains_key(&ino)
    }

    /// Waits until no mapping of `ino` is live, so that its file can be cut or removed.
    pub async fn unpinned(&self, ino: InodeId) {
        std::future::poll_fn(|cx| {
            let mut pins = self.pins.borrow_mut();
            if pins.counts.contains_key(&ino) {
                pins.waiters.entry(ino).or_default().push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}
