//! Small files, packed: the first chunk of a file, while all of a rank's data of it fits in a
//! slot, lies in one file of the rank's store instead of a chunk file of its own.
//!
//! On tmpfs a file's own chunk file costs more than POSIX's whole create, write and close of the
//! file, and its removal more than POSIX's unlink: each makes or frees an inode. A write into a
//! slot of an open file, and punching the slot out again, cost a third of that (see README).
//!
//! A rank gives every inode number it makes (see `MetaTable::reserve_ino`) a slot of `slot`
//! bytes in its file `small`, at `sequence * slot`, when it makes the number: before any other
//! rank can know it. The file's first chunk, which is this rank's (`Ring::chunk_owner`), stays
//! there while all of this rank's data of the file lies within the slot. A write that reaches
//! past the slot moves the data into the file's chunk file (unpacks it), for good.
//!
//! The index `small-index` holds one word per sequence number, which same-node ranks map to read
//! packed data directly: 0 means nothing is packed (the chunk file, if any, holds the data);
//! otherwise the low half is the length plus one, the high half a version that every change
//! raises. A reader reads the word, then the slot, then the word again, and starts over if it
//! changed. Only the slot's own rank writes a slot: a same-node rank sends its writes to a packed
//! chunk as requests. The bytes of a slot past its length are always zeros (a cut punches them
//! out, a slot is never given to another file), so a write past the length leaves a hole that
//! reads as zeros. Word 0 holds the slot size, for same-node readers.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::{InodeId, Rank};

use super::posix;

pub(super) const SLAB: &str = "small";
pub(super) const INDEX: &str = "small-index";
/// The largest slot; a smaller chunk size makes the slot a chunk.
pub(super) const SLOT_MAX: u64 = 64 * 1024;
/// Words of the index: sequence numbers from this many on get chunk files of their own.
const WORDS: u64 = 1 << 22;

/// The length that `word` says is packed, if any.
fn packed_len(word: u64) -> Option<u64> {
    (word != 0).then(|| (word & 0xffff_ffff).saturating_sub(1))
}

/// The word after `word` that packs `len` bytes: the version one higher.
fn next_word(word: u64, len: u64) -> u64 {
    (((word >> 32) + 1) << 32) | (len + 1)
}

/// Creates (or empties) a file of this rank's store: mode 0600, never through a link.
fn create_empty(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens a file of a same-node rank's store for reading, never through a link.
fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// A mapping of a store's index.
struct Index {
    words: *mut AtomicU64,
}

impl Index {
    fn create(dir: &Path, slot: u64) -> io::Result<Index> {
        let file = create_empty(&dir.join(INDEX))?;
        file.set_len(WORDS * 8)?;
        let index = Self::map(&file, libc::PROT_READ | libc::PROT_WRITE)?;
        index.word(0).store(slot, Ordering::Release);
        Ok(index)
    }

    /// `None` when `dir` has no index (its rank packs nothing).
    fn open(dir: &Path) -> io::Result<Option<Index>> {
        let file = match open_for_reading(&dir.join(INDEX)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        if file.metadata()?.len() != WORDS * 8 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Self::map(&file, libc::PROT_READ).map(Some)
    }

    fn map(file: &File, prot: i32) -> io::Result<Index> {
        // SAFETY: a fresh shared mapping of the whole file, whose length is WORDS words (set or
        // checked above); the kernel picks the (page-aligned) address.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), (WORDS * 8) as usize, prot, libc::MAP_SHARED, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Index { words: ptr as *mut AtomicU64 })
    }

    fn word(&self, i: u64) -> &AtomicU64 {
        assert!(i < WORDS, "index word out of range");
        // SAFETY: i < WORDS, the mapping holds WORDS aligned words and lives as long as self;
        // other processes change them only atomically. A read-only mapping is only loaded from.
        unsafe { &*self.words.add(i as usize) }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `map`, used by nobody after this.
        unsafe { libc::munmap(self.words as *mut libc::c_void, (WORDS * 8) as usize) };
    }
}

/// The index word of `ino` in `rank`'s store: its sequence number, if `rank` made it and it has
/// one.
fn word_of(rank: Rank, ino: InodeId) -> Option<u64> {
    let seq = ino.sequence();
    (ino.creator() == Some(rank) && seq > 0 && seq < WORDS).then_some(seq)
}

/// Reads the packed bytes of `at` (an index word) at `offset` into `buf`, as of one version of
/// the word; `None` if nothing is packed there.
fn read_consistent(index: &Index, file: &File, slot: u64, at: u64, offset: u64, buf: &mut [u8]) -> Option<io::Result<usize>> {
    loop {
        let word = index.word(at).load(Ordering::Acquire);
        let len = packed_len(word)?;
        let n = len.saturating_sub(offset).min(buf.len() as u64) as usize;
        let got = if n == 0 { Ok(0) } else { posix::read_full_at(file, &mut buf[..n], at * slot + offset) };
        if index.word(at).load(Ordering::Acquire) == word {
            return Some(got);
        }
    }
}

/// This rank's packed small files.
pub(super) struct Slab {
    rank: Rank,
    pub(super) slot: u64,
    pub(super) file: Rc<File>,
    index: Index,
    /// Slots of unpacked files whose bytes were left in place (a mapping of them was in
    /// flight); punched out when the file is removed.
    stale: RefCell<HashSet<u64>>,
    /// The highest sequence number packed, for unpacking at shutdown.
    highest: Cell<u64>,
}

impl Slab {
    pub fn create(dir: &Path, rank: Rank, chunk_size: u64) -> io::Result<Slab> {
        let slot = chunk_size.min(SLOT_MAX);
        let file = create_empty(&dir.join(SLAB))?;
        let index = Index::create(dir, slot)?;
        Ok(Slab { rank, slot, file: Rc::new(file), index, stale: RefCell::default(), highest: Cell::new(0) })
    }

    /// Gives `ino` (which this rank made) its slot, empty; false if it cannot have one.
    pub fn pack(&self, ino: InodeId) -> bool {
        let Some(at) = word_of(self.rank, ino) else { return false };
        let word = self.index.word(at);
        word.store(next_word(word.load(Ordering::Relaxed), 0), Ordering::Release);
        self.highest.set(self.highest.get().max(at));
        true
    }

    /// How many bytes of `ino` are packed, if it is.
    pub fn len(&self, ino: InodeId) -> Option<u64> {
        packed_len(self.index.word(word_of(self.rank, ino)?).load(Ordering::Relaxed))
    }

    /// Where `ino`'s slot starts in the slab file (`ino` must be packed).
    pub fn start(&self, ino: InodeId) -> u64 {
        word_of(self.rank, ino).map_or(0, |at| at * self.slot)
    }

    fn set_len(&self, ino: InodeId, len: u64) {
        if let Some(at) = word_of(self.rank, ino) {
            let word = self.index.word(at);
            word.store(next_word(word.load(Ordering::Relaxed), len), Ordering::Release);
        }
    }

    /// Writes `buf` at `offset` of packed `ino`, which holds `len` bytes; the write must end
    /// within the slot.
    pub fn write(&self, ino: InodeId, len: u64, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let end = offset + buf.len() as u64;
        debug_assert!(end <= self.slot);
        posix::write_all_at(&self.file, buf, self.start(ino) + offset)?;
        if end > len {
            self.set_len(ino, end);
        }
        Ok(buf.len())
    }

    /// Reads packed bytes of `ino` at `offset`; `None` if `ino` is not packed.
    pub fn read(&self, ino: InodeId, offset: u64, buf: &mut [u8]) -> Option<io::Result<usize>> {
        read_consistent(&self.index, &self.file, self.slot, word_of(self.rank, ino)?, offset, buf)
    }

    /// Cuts packed `ino` from `len` bytes to `to`; its bytes past `to` become zeros. A slot cut
    /// to nothing is punched out whole, so that an empty slot holds no page (its removal then
    /// has nothing to free).
    pub fn cut(&self, ino: InodeId, len: u64, to: u64) -> io::Result<()> {
        if to >= len {
            return Ok(());
        }
        self.set_len(ino, to);
        let start = self.start(ino);
        match to {
            0 => punch(&self.file, start, self.slot),
            _ => punch(&self.file, start + to, len - to),
        }
    }

    /// Ends the packing of `ino`, whose data is now elsewhere (its chunk file) or nowhere (a
    /// proposed number no file got). Its slot is punched out, unless `keep_bytes` (a mapping of
    /// them is in flight): then at the file's removal.
    pub fn unpack(&self, ino: InodeId, len: u64, keep_bytes: bool) -> io::Result<()> {
        let Some(at) = word_of(self.rank, ino) else { return Ok(()) };
        self.index.word(at).store(0, Ordering::Release);
        if len == 0 {
            return Ok(());
        }
        if keep_bytes {
            self.stale.borrow_mut().insert(at);
            return Ok(());
        }
        // The whole slot: punching only the data's bytes would leave its last page allocated.
        punch(&self.file, at * self.slot, self.slot)
    }

    /// Removes whatever the slab holds of `ino` (the file was unlinked); true if it was packed,
    /// so it has no chunk file.
    pub fn remove(&self, ino: InodeId) -> io::Result<bool> {
        let Some(at) = word_of(self.rank, ino) else { return Ok(false) };
        if let Some(len) = self.len(ino) {
            self.unpack(ino, len, false)?;
            return Ok(true);
        }
        if self.stale.borrow_mut().remove(&at) {
            punch(&self.file, at * self.slot, self.slot)?;
        }
        Ok(false)
    }

    /// The inode numbers packed now (for unpacking them all at shutdown).
    pub fn packed(&self) -> Vec<(InodeId, u64)> {
        (1..=self.highest.get())
            .filter_map(|seq| {
                let ino = InodeId::made_by(self.rank, seq);
                Some((ino, self.len(ino)?))
            })
            .collect()
    }
}

/// Frees `len` bytes at `offset` of `file` (they read as zeros after).
fn punch(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on an open descriptor; the range lies within i64 (slots are bounded).
    let done =
        unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, offset as i64, len as i64) };
    if done == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(e);
    }
    // A file system without holes: the bytes are written as zeros instead.
    let zeros = vec![0u8; len as usize];
    file.write_all_at(&zeros, offset)
}

/// A same-node rank's packed small files, for reading.
pub(super) struct PeerSlab {
    rank: Rank,
    slot: u64,
    file: File,
    index: Index,
}

impl PeerSlab {
    /// `rank`'s slab in its store `dir`; `None` if it packs nothing.
    pub fn open(dir: &Path, rank: Rank) -> io::Result<Option<PeerSlab>> {
        let Some(index) = Index::open(dir)? else { return Ok(None) };
        let file = open_for_reading(&dir.join(SLAB))?;
        let slot = index.word(0).load(Ordering::Acquire);
        if slot == 0 || slot > SLOT_MAX {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(Some(PeerSlab { rank, slot, file, index }))
    }

    /// How many bytes of `ino` are packed, if it is.
    pub fn len(&self, ino: InodeId) -> Option<u64> {
        packed_len(self.index.word(word_of(self.rank, ino)?).load(Ordering::Acquire))
    }

    /// Reads packed bytes of `ino` at `offset`; `None` if `ino` is not packed.
    pub fn read(&self, ino: InodeId, offset: u64, buf: &mut [u8]) -> Option<io::Result<usize>> {
        read_consistent(&self.index, &self.file, self.slot, word_of(self.rank, ino)?, offset, buf)
    }
}

/// Removes the slab and its index from `dir`; missing ones are fine.
pub(super) fn remove_files(dir: &Path) -> io::Result<()> {
    posix::remove_if_present(&dir.join(SLAB))?;
    posix::remove_if_present(&dir.join(INDEX))
}
