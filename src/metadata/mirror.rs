//! A copy of a rank's records in a mapped file of its store, which same-node ranks read.
//!
//! Ranks on one node share memory, so a `stat` (or an `open` that makes nothing) of a path that a
//! same-node rank owns can read that rank's copy instead of asking it: no message, no wake-up of
//! the owner, no context switch. The owner stays the only writer. It changes the copy in the same
//! step as its table, before it answers the request that made the change, so a read that starts
//! after a change has returned sees it. Only a path new in the table enters the copy later, right
//! after the reply (see `MetaTable::catch_up_shared`): until then no slot holds it, and a reader
//! that misses asks the owner.
//!
//! The copy is an open-addressing hash table of fixed-size slots with linear probing; a removal
//! shifts the slots after it back (no tombstones). Probes run over a dense array of the slots'
//! keys (one word each), not over the slots: a slot is 256 bytes, so a probe that stepped
//! through slots touched a new page and cache lines at each step, while the keys of a whole
//! table fit in few pages. Each slot is guarded by a sequence number, odd while the owner
//! writes it: a reader copies a slot and keeps the copy only if the number was even and
//! unchanged across the copy, and only if the copy names the key and path it looked for.
//!
//! The table grows fourfold each time it is three quarters full, up to the configured number
//! of slots (or its share of the file system): the owner fills a bigger table beside it,
//! renames it over the old one and only then marks the old one as replaced; from then on it
//! changes the new one only. A reader that finds its table replaced after a lookup maps the new
//! one and looks again, so what it returns was current when it read it (see
//! [`MirrorView::get`]). Only a rank that holds that many records pays for the bigger table.
//!
//! **Invariant:** between two changes of the owner's table, every slot that holds a path holds
//! that path's current attributes, its count of writers included (a reader that sees writers
//! looks at the file's first chunk for the size of writers that closed and are not released
//! yet, see `rpc::client::stat`). So a hit is an answer the owner could have given at the
//! moment of the read. A miss
//! proves nothing (the path may be too long for a slot, the table full, or its slot moving
//! during the read): the reader then asks the owner.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::Attr;

/// The table's file in its rank's store directory.
pub const FILE: &str = "records";
/// Where the owner fills the table that replaces a full one, before renaming it to `FILE`.
const NEXT_FILE: &str = "records.next";
/// Every file of the table in its store directory.
pub const FILES: [&str; 2] = [FILE, NEXT_FILE];
const MAGIC: u64 = u64::from_le_bytes(*b"BFSREC03");
/// The header, then one key word per slot (0: empty), then the slots.
const HEADER_WORDS: usize = 8;
/// Header words: the magic number, the number of slots, and whether a bigger table has
/// replaced this one (1) or it is current (0).
const MAGIC_WORD: usize = 0;
const SLOTS_WORD: usize = 1;
const REPLACED_WORD: usize = 2;
/// Slots of a new table at most (a quarter of the configured most if that is fewer): 16.5 MiB,
/// for 49,152 records.
///
/// Growing costs the owner a pause to copy the slots in use, and the job the CPU time to
/// reserve the bigger table (about a millisecond per MiB) while it makes files: with smaller
/// first tables that grew (or made ready to grow) during the create phase, 2-rank mdtest-easy
/// (10,000 files per rank) made 195k-210k files per second where a table of this size made at
/// init made 222k-257k.
const FIRST_SLOTS: usize = 65536;
/// Each growth multiplies the slots by this.
const GROWTH: usize = 4;
const SLOT_WORDS: usize = 32;
/// A slot and its key.
const WORDS_PER_SLOT: usize = SLOT_WORDS + 1;
/// Slot words: the sequence number, the key hash (as in the key array, 0: empty), the path
/// length, the attributes, then the path.
const SEQ: usize = 0;
const HASH: usize = 1;
const LEN: usize = 2;
const ATTR: usize = 3;
const ATTR_WORDS: usize = 10;
const PATH: usize = ATTR + ATTR_WORDS;
/// The longest path a slot holds; longer ones are never copied.
pub const MAX_PATH: usize = (SLOT_WORDS - PATH) * 8;
/// A table holds at most this share of its slots (in 1/16), so probes stay short.
const FILL_SIXTEENTHS: usize = 12;
/// Copies of one slot a reader tries while the owner keeps changing it.
const READ_TRIES: usize = 64;
const HASH_SEED: u64 = 0x6d69_7272_6f72;

/// The most records a table of `slots` holds.
fn fill_limit(slots: usize) -> usize {
    slots * FILL_SIXTEENTHS / 16
}

fn key(path: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(path, HASH_SEED) | 1
}

fn encode(attr: &Attr) -> [u64; ATTR_WORDS] {
    [
        attr.ino,
        attr.size,
        attr.mode as u64 | (attr.uid as u64) << 32,
        attr.gid as u64 | (attr.nlink as u64) << 32,
        attr.atime_ns as u64,
        attr.mtime_ns as u64,
        attr.ctime_ns as u64,
        attr.cuts,
        attr.writers as u64,
        0,
    ]
}

fn decode(words: &[u64]) -> Attr {
    Attr {
        ino: words[0],
        size: words[1],
        mode: words[2] as u32,
        uid: (words[2] >> 32) as u32,
        gid: words[3] as u32,
        nlink: (words[3] >> 32) as u32,
        atime_ns: words[4] as i64,
        mtime_ns: words[5] as i64,
        ctime_ns: words[6] as i64,
        cuts: words[7],
        writers: words[8] as u32,
    }
}

/// The words of a slot that hold something for a path of `len` bytes: a slot's words past them
/// are never read for that path, so they are neither written nor cleared.
fn used_words(len: usize) -> usize {
    PATH + len.div_ceil(8)
}

/// Packs `path` into whole words, zero-padded.
fn path_words(path: &[u8]) -> [u64; SLOT_WORDS - PATH] {
    let mut words = [0u64; SLOT_WORDS - PATH];
    for (word, bytes) in words.iter_mut().zip(path.chunks(8)) {
        let mut padded = [0u8; 8];
        padded[..bytes.len()].copy_from_slice(bytes);
        *word = u64::from_le_bytes(padded);
    }
    words
}

/// True if `file` lives on a memory file system (tmpfs, as `/dev/shm`). Its table is then
/// mapped whole at once: slots lie at random in it, so a page faulted in on first use would
/// cost about one fault per create until every page is in, each on the path of a request (the
/// owner's) or of a `stat` (a reader's). On a disk file system pages are faulted in on use, so
/// that the table is not written back to the disk whole.
fn in_memory(file: &File) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // SAFETY: statfs is plain old data; all-zero is valid and the call fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the duration of the call and st is valid for writes.
    unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC }
}

/// The most of its file system's size one rank's table may take, as a fraction.
const FS_SHARE: u64 = 64;

/// The most slots (a power of two, or 0) whose table takes at most `1 / FS_SHARE` of the file
/// system that holds `file`.
fn slots_that_fit(file: &File) -> io::Result<usize> {
    // SAFETY: statvfs is plain old data; all-zero is valid and the call fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the duration of the call and st is valid for writes.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let budget = (st.f_blocks as u64).saturating_mul(st.f_frsize as u64) / FS_SHARE;
    let fit = budget.saturating_sub(HEADER_WORDS as u64 * 8) / (WORDS_PER_SLOT as u64 * 8);
    Ok(if fit == 0 { 0 } else { 1usize << fit.ilog2().min(usize::BITS - 2) })
}

/// Words of a cache line.
const LINE_WORDS: usize = 8;

/// Asks the CPU to bring the cache line of `word` in (on x86-64; elsewhere it does nothing).
fn prefetch_line(word: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints at a coming access; it reads nothing the program sees, and
    // the word is mapped.
    unsafe {
        core::arch::x86_64::_mm_prefetch(word as *const AtomicU64 as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// A shared mapping of a table file.
struct Mapping {
    base: *mut AtomicU64,
    words: usize,
    /// The number of slots less one.
    mask: usize,
}

impl Mapping {
    fn map(file: &File, words: usize, prot: i32) -> io::Result<Mapping> {
        let len = words * 8;
        let flags = if in_memory(file) { libc::MAP_SHARED | libc::MAP_POPULATE } else { libc::MAP_SHARED };
        // SAFETY: a fresh shared mapping of `len` bytes of the file, which the caller checked or
        // made that long; the kernel picks the (page-aligned) address.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let slots = (words - HEADER_WORDS) / WORDS_PER_SLOT;
        Ok(Mapping { base: ptr as *mut AtomicU64, words, mask: slots.saturating_sub(1) })
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        assert!(at < self.words, "word {at} outside the table");
        // SAFETY: `at` is inside the mapping (checked above), which lives as long as self and is
        // page-aligned, so every word is an aligned u64; other processes change it only through
        // atomic operations.
        unsafe { &*self.base.add(at) }
    }

    /// The key of slot `slot`, in the dense key array.
    fn key(&self, slot: usize) -> &AtomicU64 {
        self.word(HEADER_WORDS + slot)
    }

    fn slot(&self, slot: usize, word: usize) -> &AtomicU64 {
        self.word(HEADER_WORDS + (self.mask + 1) + slot * SLOT_WORDS + word)
    }

    /// The slot a probe for `hash` starts at. Not from the lowest bit, which `key` sets: homes
    /// would be odd slots only, and clusters twice as long.
    fn home(&self, hash: u64) -> usize {
        (hash >> 1) as usize & self.mask
    }
}

// SAFETY: a mapping is shared memory that every user reaches only through atomic operations;
// moving it to another thread (the one that prepares a bigger table) changes nothing.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; nothing uses it after this.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.words * 8) };
    }
}

/// A new, empty table file of `slots` slots (a power of two, at least 2; fewer if its share of
/// the file system is smaller) at `path`, mapped for writing, without its magic number yet. On
/// a memory file system its pages are also mapped in now (see `in_memory`).
///
/// The table takes at most `1 / FS_SHARE` of its file system, and its space is reserved whole
/// at creation: a write to a mapped page the file system has no room for would kill the
/// process (`SIGBUS`) instead of failing.
fn new_table(path: &Path, slots: usize) -> io::Result<Mapping> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).mode(0o600).open(path)?;
    let slots = slots.min(slots_that_fit(&file)?);
    if slots < 2 {
        // The data directory's file system is too small for a table.
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    let words = HEADER_WORDS + slots * WORDS_PER_SLOT;
    // SAFETY: plain syscall on an open fd.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, words as libc::off_t * 8) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let map = Mapping::map(&file, words, libc::PROT_READ | libc::PROT_WRITE)?;
    map.word(SLOTS_WORD).store(slots as u64, Ordering::Relaxed);
    Ok(map)
}

/// The owner's side: its copy, which only it writes.
pub struct Mirror {
    map: Mapping,
    live: usize,
    limit: usize,
    /// The store directory the table lives in.
    dir: PathBuf,
    /// The most slots it may grow to.
    most: usize,
    /// The bigger table being made ready on a thread of its own, once this one is half full.
    next: Option<std::thread::JoinHandle<io::Result<Mapping>>>,
}

impl Mirror {
    /// Creates an empty table in this rank's store `dir` that may grow to `most` slots (a power
    /// of two, at least 2); it starts with a quarter of them, `FIRST_SLOTS` at most.
    pub fn create(dir: &Path, most: usize) -> io::Result<Mirror> {
        Self::create_from(dir, (most / GROWTH).clamp(2, FIRST_SLOTS), most)
    }

    /// Creates an empty table of `first` slots that may grow to `most` (both powers of two).
    fn create_from(dir: &Path, first: usize, most: usize) -> io::Result<Mirror> {
        if first < 2 || !first.is_power_of_two() || !most.is_power_of_two() || most < first {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let map = new_table(&dir.join(FILE), first)?;
        map.word(MAGIC_WORD).store(MAGIC, Ordering::Release);
        let slots = map.mask + 1;
        Ok(Mirror { map, live: 0, limit: fill_limit(slots), dir: dir.to_path_buf(), most, next: None })
    }

    /// The slots of the table that replaces this one, if it may grow.
    fn next_slots(&self) -> Option<usize> {
        let slots = self.map.mask + 1;
        Some(slots.saturating_mul(GROWTH).min(self.most)).filter(|&wanted| wanted > slots)
    }

    /// Starts making the bigger table ready (its file's space reserved and its pages mapped
    /// in, which takes about a millisecond per MiB) on a thread of its own, so that the growth
    /// itself only copies the slots in use: a rank that stopped serving while it reserved the
    /// space held up every rank that waited for it.
    fn prepare_next(&mut self) {
        let Some(wanted) = self.next_slots() else { return };
        let path = self.dir.join(NEXT_FILE);
        match std::thread::Builder::new().name("benchfs-records".into()).spawn(move || new_table(&path, wanted)) {
            Ok(handle) => self.next = Some(handle),
            // Made when the table is full instead.
            Err(e) => tracing::debug!(error = %e, "no thread to make the bigger record table ready"),
        }
    }

    /// Replaces the full table with one `GROWTH` times as big, holding the same slots; false if
    /// it may not grow (at its most slots, or without room in its file system). The old table
    /// is marked replaced only once the new one holds everything and has its name, so a
    /// reader finds the new one complete whenever it looks.
    fn grow(&mut self) -> bool {
        let slots = self.map.mask + 1;
        let Some(wanted) = self.next_slots() else { return false };
        let next = self.dir.join(NEXT_FILE);
        let ready = match self.next.take().map(std::thread::JoinHandle::join) {
            Some(Ok(made)) => made,
            Some(Err(_)) => Err(io::Error::other("the thread making the table ready panicked")),
            None => new_table(&next, wanted),
        };
        let filled = ready.and_then(|map| {
            if map.mask < slots {
                // Its share of the file system allows no bigger table.
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            // No reader sees the new table before its magic number: the used words are
            // copied as they are, without the slots' sequence protocol.
            for at in 0..slots {
                let hash = self.map.key(at).load(Ordering::Relaxed);
                if hash != 0 {
                    let mut to = map.home(hash);
                    while map.key(to).load(Ordering::Relaxed) != 0 {
                        to = (to + 1) & map.mask;
                    }
                    let used = used_words(self.map.slot(at, LEN).load(Ordering::Relaxed) as usize);
                    for word in HASH..used {
                        map.slot(to, word).store(self.map.slot(at, word).load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    map.key(to).store(hash, Ordering::Relaxed);
                }
            }
            map.word(MAGIC_WORD).store(MAGIC, Ordering::Release);
            std::fs::rename(&next, self.dir.join(FILE))?;
            Ok(map)
        });
        match filled {
            Ok(map) => {
                self.map.word(REPLACED_WORD).store(1, Ordering::Release);
                self.map = map;
                self.limit = fill_limit(self.map.mask + 1);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, slots, "shared record table not grown; new records are left out");
                let _ = std::fs::remove_file(&next);
                // Not tried again: the table stays at this size.
                self.most = slots;
                false
            }
        }
    }

    /// Where `path` is in the table, if it is.
    fn find(&self, path: &[u8], hash: u64) -> Option<usize> {
        let mut at = self.map.home(hash);
        loop {
            match self.map.key(at).load(Ordering::Relaxed) {
                0 => return None,
                h if h == hash && self.holds(at, path) => return Some(at),
                _ => at = (at + 1) & self.map.mask,
            }
        }
    }

    fn holds(&self, at: usize, path: &[u8]) -> bool {
        let len = self.map.slot(at, LEN).load(Ordering::Relaxed) as usize;
        len == path.len()
            && path_words(path)
                .iter()
                .take(used_words(len) - PATH)
                .enumerate()
                .all(|(i, w)| self.map.slot(at, PATH + i).load(Ordering::Relaxed) == *w)
    }

    /// Writes the first `used` of `words` (a slot but its sequence number) into slot `at`, as
    /// one change that readers see whole or not at all.
    fn write(&self, at: usize, words: &[u64; SLOT_WORDS], used: usize) {
        let seq = self.map.slot(at, SEQ);
        let start = seq.load(Ordering::Relaxed);
        seq.store(start + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, word) in words.iter().enumerate().take(used).skip(1) {
            self.map.slot(at, i).store(*word, Ordering::Relaxed);
        }
        seq.store(start + 2, Ordering::Release);
    }

    fn read_own(&self, at: usize) -> [u64; SLOT_WORDS] {
        std::array::from_fn(|i| self.map.slot(at, i).load(Ordering::Relaxed))
    }

    /// Starts bringing into this core's cache the key and the slot that a `put` of a new
    /// `path` most likely writes (its home slot), so that the `put` after the reply (see
    /// `MetaTable::catch_up_shared`) finds them there: in a table of tens of MiB they are
    /// almost never cached, and the `put` waited for them (0.5 us of a create's serving, against
    /// 0.2 us prefetched). A hint only; it changes nothing.
    pub fn prefetch(&self, path: &[u8]) {
        let at = self.map.home(key(path));
        prefetch_line(self.map.key(at));
        for word in (0..SLOT_WORDS).step_by(LINE_WORDS) {
            prefetch_line(self.map.slot(at, word));
        }
    }

    /// Sets the attributes of `path`. A path too long for a slot, or new while the table is
    /// full and cannot grow, is left out.
    pub fn put(&mut self, path: &[u8], attr: &Attr) {
        if path.len() > MAX_PATH {
            return;
        }
        let hash = key(path);
        let at = match self.find(path, hash) {
            Some(at) => at,
            None if self.live >= self.limit && !self.grow() => return,
            None => {
                if self.next.is_none() && self.live == self.limit / 2 {
                    self.prepare_next();
                }
                let mut at = self.map.home(hash);
                while self.map.key(at).load(Ordering::Relaxed) != 0 {
                    at = (at + 1) & self.map.mask;
                }
                self.live += 1;
                at
            }
        };
        let mut words = [0u64; SLOT_WORDS];
        words[HASH] = hash;
        words[LEN] = path.len() as u64;
        words[ATTR..PATH].copy_from_slice(&encode(attr));
        words[PATH..].copy_from_slice(&path_words(path));
        self.write(at, &words, used_words(path.len()));
        // The key last: a reader that finds it finds the slot written.
        self.map.key(at).store(hash, Ordering::Release);
    }

    /// Takes `path` out of the table. The slots after it that belong before the gap move back
    /// into it, so that no probe stops short of them.
    pub fn remove(&mut self, path: &[u8]) {
        if path.len() > MAX_PATH {
            return;
        }
        let Some(mut gap) = self.find(path, key(path)) else { return };
        let mask = self.map.mask;
        let mut next = gap;
        loop {
            next = (next + 1) & mask;
            let hash = self.map.key(next).load(Ordering::Relaxed);
            if hash == 0 {
                break;
            }
            // The entry at `next` may fill the gap unless its home lies after the gap (within
            // the probe run up to `next`).
            let from_home = next.wrapping_sub(self.map.home(hash)) & mask;
            let from_gap = next.wrapping_sub(gap) & mask;
            if from_home >= from_gap {
                let moved = self.read_own(next);
                self.write(gap, &moved, used_words(moved[LEN] as usize));
                self.map.key(gap).store(hash, Ordering::Release);
                gap = next;
            }
        }
        self.map.key(gap).store(0, Ordering::Release);
        // An empty slot's hash is enough: no reader takes a slot whose hash differs.
        self.write(gap, &[0; SLOT_WORDS], HASH + 1);
        self.live -= 1;
    }
}

/// Tables a reader follows in one lookup while the owner keeps replacing them (each growth
/// replaces one, a few per job).
const FOLLOW_TRIES: usize = 8;

impl Drop for Mirror {
    /// A bigger table still being made ready is waited for and removed: nothing is left in the
    /// store directory after its table files are removed.
    fn drop(&mut self) {
        if let Some(handle) = self.next.take() {
            drop(handle.join());
            let _ = std::fs::remove_file(self.dir.join(NEXT_FILE));
        }
    }
}

/// A same-node rank's view of an owner's table, read-only.
pub struct MirrorView {
    map: Mapping,
    dir: PathBuf,
}

impl MirrorView {
    /// Maps the table in the store `dir` of a same-node rank.
    pub fn open(dir: &Path) -> io::Result<MirrorView> {
        Ok(MirrorView { map: Self::map_current(dir)?, dir: dir.to_path_buf() })
    }

    /// Maps the table that has the name `FILE` in `dir` now.
    fn map_current(dir: &Path) -> io::Result<Mapping> {
        let file = OpenOptions::new().read(true).open(dir.join(FILE))?;
        let len = file.metadata()?.len();
        let header = Mapping::map(&file, HEADER_WORDS, libc::PROT_READ)?;
        let (magic, slots) = (header.word(MAGIC_WORD).load(Ordering::Acquire), header.word(SLOTS_WORD).load(Ordering::Relaxed));
        let words = (slots as usize).checked_mul(WORDS_PER_SLOT).and_then(|w| w.checked_add(HEADER_WORDS));
        match words {
            Some(words) if magic == MAGIC && slots >= 2 && slots.is_power_of_two() && words as u64 * 8 <= len => {
                Mapping::map(&file, words, libc::PROT_READ)
            }
            _ => Err(io::ErrorKind::InvalidData.into()),
        }
    }

    /// The attributes of `path` as its owner holds them now, if the table has them. A lookup
    /// in a table that turns out to have been replaced (the check comes after the lookup's
    /// reads) is done again in its successor: a table not yet replaced when the lookup ended
    /// was the one the owner changed, so the answer was current when it was read.
    pub fn get(&mut self, path: &[u8]) -> Option<Attr> {
        for _ in 0..FOLLOW_TRIES {
            let found = self.lookup(path);
            // Ordered after the lookup's reads: its last is an acquire load, or followed by an
            // acquire fence.
            if self.map.word(REPLACED_WORD).load(Ordering::Acquire) == 0 {
                return found;
            }
            match Self::map_current(&self.dir) {
                Ok(map) => self.map = map,
                Err(e) => {
                    tracing::debug!(dir = %self.dir.display(), error = %e, "replaced shared record table not followed");
                    return None;
                }
            }
        }
        None
    }

    /// A copy of the first `used` words of slot `at` (the rest reads as zero), unchanged while it
    /// was taken; `None` if the owner kept changing it.
    fn copy(&self, at: usize, used: usize) -> Option<[u64; SLOT_WORDS]> {
        let seq = self.map.slot(at, SEQ);
        for _ in 0..READ_TRIES {
            let start = seq.load(Ordering::Acquire);
            if start % 2 == 0 {
                let words: [u64; SLOT_WORDS] =
                    std::array::from_fn(|i| if i < used { self.map.slot(at, i).load(Ordering::Relaxed) } else { 0 });
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == start {
                    return Some(words);
                }
            }
            std::hint::spin_loop();
        }
        None
    }

    /// The attributes of `path` in this table, if it has them.
    fn lookup(&self, path: &[u8]) -> Option<Attr> {
        if path.len() > MAX_PATH {
            return None;
        }
        let hash = key(path);
        let wanted = path_words(path);
        let mut at = self.map.home(hash);
        let used = used_words(path.len());
        // Bounded even if the owner never leaves an empty slot (a table it has not finished).
        for _ in 0..=self.map.mask {
            let seen = self.map.key(at).load(Ordering::Acquire);
            if seen == 0 {
                return None;
            }
            if seen == hash {
                let words = self.copy(at, used)?;
                if words[HASH] == hash && words[LEN] == path.len() as u64 && words[PATH..] == wanted {
                    return Some(decode(&words[ATTR..PATH]));
                }
            }
            at = (at + 1) & self.map.mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("benchfs-mirror-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn clean_up(dir: &Path) {
        std::fs::remove_file(dir.join(FILE)).unwrap();
        std::fs::remove_dir(dir).unwrap();
    }

    fn attr(ino: u64) -> Attr {
        Attr { ino, size: ino * 3, mode: 0o100644, uid: 7, gid: 8, nlink: 1, mtime_ns: -5, cuts: 2, writers: 1, ..Attr::default() }
    }

    #[test]
    fn a_peer_reads_what_the_owner_puts_and_misses_what_it_removes() {
        let dir = scratch("basic");
        let mut owner = Mirror::create(&dir, 64).unwrap();
        let mut peer = MirrorView::open(&dir).unwrap();
        owner.put(b"/a", &attr(1));
        owner.put(b"/a/b", &attr(2));
        assert_eq!(peer.get(b"/a"), Some(attr(1)));
        assert_eq!(peer.get(b"/a/b"), Some(attr(2)));
        assert_eq!(peer.get(b"/a/c"), None);
        owner.put(b"/a", &attr(9));
        assert_eq!(peer.get(b"/a"), Some(attr(9)), "changed in place");
        owner.remove(b"/a");
        assert_eq!((peer.get(b"/a"), peer.get(b"/a/b")), (None, Some(attr(2))));
        drop((owner, peer));
        clean_up(&dir);
    }

    /// Many paths in a small table collide; removals in any order must leave every remaining
    /// path reachable (the backward shift), and a full table leaves new paths out.
    #[test]
    fn colliding_paths_stay_reachable_through_removals() {
        let dir = scratch("collide");
        let mut owner = Mirror::create(&dir, 32).unwrap();
        let mut peer = MirrorView::open(&dir).unwrap();
        let paths: Vec<Vec<u8>> = (0..40u64).map(|i| format!("/d/f{i}").into_bytes()).collect();
        for (i, p) in paths.iter().enumerate() {
            owner.put(p, &attr(i as u64 + 1));
        }
        let kept = paths.iter().filter(|p| peer.get(p).is_some()).count();
        assert_eq!(kept, 24, "12/16 of 32 slots are filled, the rest left out");
        let mut present: Vec<usize> = (0..40).filter(|&i| peer.get(&paths[i]).is_some()).collect();
        let mut turn = 7usize;
        while !present.is_empty() {
            turn = (turn * 31 + 3) % present.len();
            let gone = present.swap_remove(turn);
            owner.remove(&paths[gone]);
            assert_eq!(peer.get(&paths[gone]), None);
            for &i in &present {
                assert_eq!(peer.get(&paths[i]), Some(attr(i as u64 + 1)), "path {i} lost after removing {gone}");
            }
        }
        owner.put(&paths[39], &attr(40));
        assert_eq!(peer.get(&paths[39]), Some(attr(40)), "room again");
        drop((owner, peer));
        clean_up(&dir);
    }

    /// A table that fills up grows, up to its most slots: a reader that mapped it before
    /// follows every replacement and finds every path, as does one that maps it after; what is
    /// removed later misses in both, and only the table's own file is left in the directory.
    #[test]
    fn a_full_table_grows_and_readers_follow_it() {
        let dir = scratch("grow");
        let mut owner = Mirror::create_from(&dir, 8, 512).unwrap();
        let mut early = MirrorView::open(&dir).unwrap();
        let paths: Vec<Vec<u8>> = (0..400u64).map(|i| format!("/g/f{i}").into_bytes()).collect();
        for (i, p) in paths.iter().enumerate() {
            owner.put(p, &attr(i as u64 + 1));
        }
        assert_eq!(owner.map.mask + 1, 512, "grown to its most slots");
        let mut late = MirrorView::open(&dir).unwrap();
        for peer in [&mut early, &mut late] {
            let kept = (0..400).filter(|&i| peer.get(&paths[i]) == Some(attr(i as u64 + 1))).count();
            assert_eq!(kept, 384, "12/16 of the most slots are filled, the rest left out");
        }
        for p in paths.iter().step_by(2) {
            owner.remove(p);
        }
        for (i, p) in paths.iter().enumerate().take(384) {
            let want = (i % 2 == 1).then(|| attr(i as u64 + 1));
            assert_eq!((early.get(p), late.get(p)), (want, want), "path {i}");
        }
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "the replaced tables are gone");
        drop((owner, early, late));
        clean_up(&dir);
    }

    /// An owner dropped while its next table is being made ready waits for it and removes it:
    /// nothing but the table's own file is left for the store's removal to find.
    #[test]
    fn a_table_made_ready_but_not_used_is_removed() {
        let dir = scratch("ready");
        let mut owner = Mirror::create_from(&dir, 8, 1 << 12).unwrap();
        for i in 0..4u64 {
            owner.put(format!("/h{i}").as_bytes(), &attr(i + 1));
        }
        assert_eq!(owner.map.mask + 1, 8, "not grown yet");
        assert!(owner.next.is_some(), "half way to full, the next table is being made ready");
        drop(owner);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE]);
        clean_up(&dir);
    }

    /// A reader racing an owner whose table keeps growing never gets an answer older than a
    /// change that was complete before it looked, and never a torn slot.
    #[test]
    fn a_reader_racing_growth_never_sees_an_old_answer() {
        let dir = scratch("grow-race");
        let mut owner = Mirror::create_from(&dir, 8, 1 << 14).unwrap();
        let peer_dir = dir.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let published = std::sync::Arc::new(AtomicU64::new(0));
        let (stop, latest) = (done.clone(), published.clone());
        owner.put(b"/p", &attr(1));
        published.store(1, Ordering::Release);
        let reader = std::thread::spawn(move || {
            let mut peer = MirrorView::open(&peer_dir).unwrap();
            let mut seen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let floor = latest.load(Ordering::Acquire);
                if let Some(a) = peer.get(b"/p") {
                    assert_eq!(a, attr(a.ino), "a torn slot");
                    assert!(a.ino >= floor, "read {} after {floor} was complete", a.ino);
                    seen += 1;
                }
            }
            seen
        });
        for i in 2..12_000u64 {
            owner.put(b"/p", &attr(i));
            published.store(i, Ordering::Release);
            owner.put(format!("/r/{i}").as_bytes(), &attr(i));
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(owner.map.mask + 1, 1 << 14, "grown four times");
        drop(owner);
        clean_up(&dir);
    }

    #[test]
    fn long_paths_and_bad_files_are_left_out() {
        let dir = scratch("long");
        let mut owner = Mirror::create(&dir, 8).unwrap();
        let mut peer = MirrorView::open(&dir).unwrap();
        let long = vec![b'x'; MAX_PATH + 1];
        owner.put(&long, &attr(1));
        assert_eq!(peer.get(&long), None);
        let fits = vec![b'y'; MAX_PATH];
        owner.put(&fits, &attr(2));
        assert_eq!(peer.get(&fits), Some(attr(2)));
        drop((owner, peer));
        std::fs::write(dir.join(FILE), [0u8; 100]).unwrap();
        assert!(MirrorView::open(&dir).is_err(), "no magic");
        std::fs::remove_file(dir.join(FILE)).unwrap();
        assert!(MirrorView::open(&dir).is_err(), "gone");
        std::fs::remove_dir(&dir).unwrap();
    }

    /// A reader racing the owner sees only whole slots: every attribute it reads is one the
    /// owner wrote for that path.
    #[test]
    fn a_racing_reader_never_sees_a_torn_slot() {
        let dir = scratch("race");
        let mut owner = Mirror::create(&dir, 16).unwrap();
        let peer_dir = dir.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        owner.put(b"/p", &attr(1));
        let reader = std::thread::spawn(move || {
            let mut peer = MirrorView::open(&peer_dir).unwrap();
            let mut seen = 0u64;
            while !done.load(Ordering::Relaxed) {
                if let Some(a) = peer.get(b"/p") {
                    assert_eq!(a, attr(a.ino), "a torn slot");
                    seen += 1;
                }
            }
            seen
        });
        for i in 0..200_000u64 {
            owner.put(b"/p", &attr(i % 1000 + 1));
            owner.put(format!("/q{}", i % 5).as_bytes(), &attr(i + 1));
            if i % 3 == 0 {
                owner.remove(format!("/q{}", i % 5).as_bytes());
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        drop(owner);
        clean_up(&dir);
    }
}
