//! The node-local chunk store: the bytes of the chunks this rank owns.
//!
//! A rank keeps every chunk it owns of inode `ino` in one sparse file, `<dir>/<ino as 16 hex
//! digits>`, each chunk at its logical offset. A chunk write is therefore a positional write,
//! and bytes never written read back as zeros (holes). File names derive from the inode id
//! only, never from user paths.
//!
//! The store lives on the progress thread and is `!Send`. Reads, writes and syncs are futures
//! run by that thread's executor. With [`Backend::Uring`] they complete through an io_uring
//! ring that the progress loop drives on every turn:
//!
//! ```text
//! loop {
//!     store.submit();             // hand the SQEs queued by futures to the kernel, batched
//!     store.poll_completions();   // reap CQEs, waking the futures they belong to
//!     if !executor.try_tick() && nothing else is ready {
//!         epoll_wait(...);        // store.event_fd() is among the fds; EINTR counts as a wake-up
//!         store.clear_event();    // before the next poll_completions, so no wake-up is lost
//!     }
//! }
//! ```
//!
//! [`Backend::Sync`] performs each operation with `pread`/`pwrite`/`fdatasync` in the first
//! poll of its future; it is the fallback where io_uring is unavailable.
//!
//! Operations on one inode are not ordered against each other: a caller that needs ordering
//! (a read after a write, a truncate after writes) awaits the first before starting the second.

mod mapped;
mod peer;
mod posix;
mod private;
mod removals;
mod small;
mod uring;

pub use peer::{node_token_matches, write_node_token, PeerFiles};
pub use posix::remove_if_present;
pub use private::make_store_dir;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lru::LruCache;

use crate::error::StorageError;
use crate::ids::{InodeId, Rank};

/// Most chunk files a rank keeps open at once (its own and same-node ranks' together); the
/// real bound also depends on `RLIMIT_NOFILE`.
const FD_CACHE_MAX: u64 = 1024;
/// Fewest chunk files a rank keeps open at once, whatever `RLIMIT_NOFILE` says.
const FD_CACHE_MIN: u64 = 16;

/// A buffer handed to the kernel.
///
/// It must stay valid until the operation's completion arrives, even if the future awaiting it
/// is dropped: the in-flight operation keeps ownership of an `Owned` buffer, and for a `Raw`
/// one the creator guarantees that `ptr..ptr+len` stays valid (readable for a write, writable
/// for a read, not otherwise accessed) until the operation completes, which in practice means
/// awaiting the future to its end. Prefer [`IoBuf::from_raw`], which states that promise as
/// an `unsafe` call.
pub enum IoBuf {
    Owned(Vec<u8>),
    Raw { ptr: *mut u8, len: usize },
}

// SAFETY: an `Owned` buffer is a `Vec<u8>`, which is `Send`. A `Raw` buffer is an address and a
// length whose validity its creator guarantees until the operation completes; nothing about it
// is tied to the thread that created it.
unsafe impl Send for IoBuf {}

impl IoBuf {
    /// A buffer borrowed from memory the store does not own.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid for reads and writes, and not be accessed by anyone else,
    /// from the call that receives this buffer until that call's future completes. The future
    /// must be awaited to its end (not dropped early), since the kernel may still use the
    /// memory after a drop.
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> IoBuf {
        IoBuf::Raw { ptr, len }
    }

    pub fn len(&self) -> usize {
        match self {
            IoBuf::Owned(v) => v.len(),
            IoBuf::Raw { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vector of an `Owned` buffer; `None` for a `Raw` one.
    #[cfg(test)]
    pub fn into_vec(self) -> Option<Vec<u8>> {
        match self {
            IoBuf::Owned(v) => Some(v),
            IoBuf::Raw { .. } => None,
        }
    }

    /// The address of byte `pos`, for an operation on `pos..pos+len`.
    fn ptr_at(&mut self, pos: usize, len: usize) -> *mut u8 {
        assert!(pos.checked_add(len).is_some_and(|end| end <= self.len()), "range outside buffer");
        let base = match self {
            IoBuf::Owned(v) => v.as_mut_ptr(),
            IoBuf::Raw { ptr, .. } => *ptr,
        };
        base.wrapping_add(pos)
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            IoBuf::Owned(v) => v,
            IoBuf::Raw { len: 0, .. } => &[],
            // SAFETY: the creator of a Raw buffer guarantees the range valid and unaliased for
            // the duration of the operation, and the returned slice does not outlive it.
            IoBuf::Raw { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            IoBuf::Owned(v) => v,
            IoBuf::Raw { len: 0, .. } => &mut [],
            // SAFETY: as in `as_slice`; a read buffer is also guaranteed writable.
            IoBuf::Raw { ptr, len } => unsafe { std::slice::from_raw_parts_mut(*ptr, *len) },
        }
    }
}

impl fmt::Debug for IoBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoBuf::Owned(v) => f.debug_struct("Owned").field("len", &v.len()).finish(),
            IoBuf::Raw { ptr, len } => f.debug_struct("Raw").field("ptr", ptr).field("len", len).finish(),
        }
    }
}

/// How the store performs I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Asynchronous through an io_uring ring; completions signal an eventfd.
    Uring,
    /// Blocking `pread`/`pwrite`/`fdatasync` on the progress thread.
    Sync,
}

enum Engine {
    Uring(Box<uring::Ring>),
    Sync,
}

/// The chunk files of one rank, in one directory.
pub struct ChunkStore {
    // Declared first so that it drops first: dropping the ring waits for every operation the
    // kernel still owns, before anything else goes away.
    engine: Engine,
    /// Open chunk files, least recently used first out. An evicted file whose operations are
    /// still in flight stays open: each in-flight operation holds its own `Rc`.
    files: RefCell<LruCache<InodeId, Rc<File>>>,
    dir: PathBuf,
    /// The directory, open, for the chunk files' opens and removals.
    chunks: posix::ChunkDir,
    /// Inodes with live read mappings.
    pins: Rc<RefCell<mapped::Pins>>,
    /// How many chunk files this store removed, for same-node peers' cached descriptors.
    removals: Option<removals::Removals>,
    /// Small files' first chunks, packed (see `small`), once [`ChunkStore::pack_small_files`].
    small: Option<small::Slab>,
}

thread_local! {
    /// Set on the thread that submits the stores' io_uring operations (the progress thread).
    static RING_OWNER: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread the one that submits io_uring operations. The kernel ties an
/// operation to the thread that submitted it and cancels it when that thread exits, so only a
/// thread that lives as long as the store may submit: another thread that turns the rank's loop
/// (an application thread making a call) does its chunk I/O with plain system calls instead,
/// also the next operation of a task that the owner started.
pub fn own_rings_here() {
    RING_OWNER.with(|owner| owner.set(true));
}

/// Whether the calling thread may hand operations to the kernel (see [`own_rings_here`]).
fn may_submit_here() -> bool {
    RING_OWNER.with(Cell::get)
}

/// Makes the calling thread one that may not submit, as an application thread is.
#[cfg(test)]
fn disown_rings_here() {
    RING_OWNER.with(|owner| owner.set(false));
}

impl ChunkStore {
    /// The ring, if this store has one and this thread may submit to it.
    fn ring_here(&self) -> Option<&uring::Ring> {
        match &self.engine {
            Engine::Uring(ring) if may_submit_here() => Some(ring),
            _ => None,
        }
    }

    /// Opens the store in `dir` (created with mode 0700 if needed), choosing the backend: plain
    /// system calls on tmpfs, where io_uring hands every operation to a kernel worker thread
    /// and is measurably slower than `pread`/`pwrite`; elsewhere io_uring with a ring of
    /// `queue_depth` entries, if the kernel allows it, else plain system calls.
    pub fn open(dir: &Path, queue_depth: u32) -> Result<ChunkStore, StorageError> {
        posix::create_dir(dir)?;
        if posix::is_tmpfs(dir) {
            tracing::info!(dir = %dir.display(), "chunk store on tmpfs: using pread/pwrite");
            return Self::with_engine(dir, Engine::Sync);
        }
        let engine = match uring::Ring::new(queue_depth) {
            Ok(ring) => Engine::Uring(Box::new(ring)),
            Err(error) => {
                tracing::warn!(%error, "io_uring unavailable; the chunk store falls back to pread/pwrite");
                Engine::Sync
            }
        };
        Self::with_engine(dir, engine)
    }

    /// Opens the store on the given backend; fails if it is `Uring` and io_uring cannot be set up.
    pub fn open_with_backend(dir: &Path, queue_depth: u32, backend: Backend) -> Result<ChunkStore, StorageError> {
        posix::create_dir(dir)?;
        let engine = match backend {
            Backend::Uring => Engine::Uring(Box::new(uring::Ring::new(queue_depth)?)),
            Backend::Sync => Engine::Sync,
        };
        Self::with_engine(dir, engine)
    }

    fn with_engine(dir: &Path, engine: Engine) -> Result<ChunkStore, StorageError> {
        let removals = removals::Removals::create(dir)
            .map_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "no removal count: same-node peers check every access"))
            .ok();
        let store = ChunkStore {
            engine,
            files: RefCell::new(LruCache::new(fd_budget_half())),
            dir: dir.to_path_buf(),
            chunks: posix::ChunkDir::open(dir)?,
            pins: Rc::default(),
            removals,
            small: None,
        };
        tracing::debug!(dir = %store.dir.display(), backend = ?store.backend(), "chunk store open");
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Uring(_) => Backend::Uring,
            Engine::Sync => Backend::Sync,
        }
    }

    /// Writes all of `buf` at `offset` of the local file of `ino`, creating the file (mode
    /// 0600) on first write. Returns the number of bytes written, which is `buf.len()`.
    pub async fn write(&self, ino: InodeId, offset: u64, buf: IoBuf) -> Result<usize, StorageError> {
        let Some(ring) = self.ring_here() else {
            return self.write_here(ino, offset, buf.as_slice());
        };
        if buf.is_empty() {
            return Ok(0);
        }
        check_span(offset, buf.len())?;
        if let Some(done) = self.write_small(ino, offset, buf.as_slice()) {
            return done;
        }
        let file = self.file_for_write(ino)?;
        ring.write_all_at(file, buf, offset).await
    }

    /// [`ChunkStore::write`] done within the call, on a thread that does its own chunk I/O;
    /// `None` on the thread that submits to the ring, whose writes go through it.
    pub fn write_now(&self, ino: InodeId, offset: u64, buf: &[u8]) -> Option<Result<usize, StorageError>> {
        self.ring_here().is_none().then(|| self.write_here(ino, offset, buf))
    }

    /// A write with `pwrite` on this thread.
    fn write_here(&self, ino: InodeId, offset: u64, buf: &[u8]) -> Result<usize, StorageError> {
        if buf.is_empty() {
            return Ok(0);
        }
        check_span(offset, buf.len())?;
        if let Some(done) = self.write_small(ino, offset, buf) {
            return done;
        }
        let file = self.file_for_write(ino)?;
        Ok(posix::write_all_at(&file, buf, offset)?)
    }

    /// A write to packed `ino`: done in its slot if it ends there (`Some`); else the data moves
    /// to the chunk file first and the caller writes there (`None`, as for a file not packed).
    fn write_small(&self, ino: InodeId, offset: u64, buf: &[u8]) -> Option<Result<usize, StorageError>> {
        let (small, len) = self.packed(ino)?;
        if offset + buf.len() as u64 <= small.slot {
            return Some(small.write(ino, len, offset, buf).map_err(StorageError::from));
        }
        self.unpack(small, ino, len).err().map(Err)
    }

    /// Moves the `len` packed bytes of `ino` into its chunk file, for good. The chunk file has
    /// them before the index stops pointing at the slot, so a same-node reader finds them in one
    /// place or the other.
    fn unpack(&self, small: &small::Slab, ino: InodeId, len: u64) -> Result<(), StorageError> {
        if len > 0 {
            let mut data = vec![0u8; len as usize];
            let n = small.read(ino, 0, &mut data).unwrap_or(Ok(0))?;
            let file = self.open_and_cache(ino, true)?;
            posix::write_all_at(&file, &data[..n], 0)?;
        }
        Ok(small.unpack(ino, len, self.is_pinned(ino))?)
    }

    /// Packs the first chunk of the small files this rank (`rank`) makes from now on, while it
    /// fits in a slot of `chunk_size` bytes or 64 KiB, whichever is smaller.
    pub fn pack_small_files(&mut self, rank: Rank, chunk_size: u64) -> Result<(), StorageError> {
        self.small = Some(small::Slab::create(&self.dir, rank, chunk_size)?);
        Ok(())
    }

    /// Gives the new file `ino` (a number this rank made, which no other rank knows yet) a
    /// slot, if this store packs small files.
    pub fn pack(&self, ino: InodeId) {
        if let Some(small) = &self.small {
            small.pack(ino);
        }
    }

    /// Frees the slot of `ino`, a number proposed for a file that did not get it.
    pub fn discard(&self, ino: InodeId) -> Result<(), StorageError> {
        if let Some((small, len)) = self.packed(ino) {
            small.unpack(ino, len, false)?;
        }
        Ok(())
    }

    /// The slab and how many bytes of `ino` it holds, if this store packs `ino`.
    fn packed(&self, ino: InodeId) -> Option<(&small::Slab, u64)> {
        let small = self.small.as_ref()?;
        Some((small, small.len(ino)?))
    }

    /// Reads packed bytes of `ino`; `None` if it is not packed here.
    fn read_small(&self, ino: InodeId, offset: u64, buf: &mut [u8]) -> Option<Result<usize, StorageError>> {
        Some(self.small.as_ref()?.read(ino, offset, buf)?.map_err(StorageError::from))
    }

    /// Reads up to `buf.len()` bytes at `offset` of the local file of `ino` and hands the buffer
    /// back. The count is short only where the local file ends; the rest of the range is a hole
    /// that the caller fills with zeros. A missing local file reads as 0 bytes.
    pub async fn read(&self, ino: InodeId, offset: u64, mut buf: IoBuf) -> Result<(usize, IoBuf), StorageError> {
        let Some(ring) = self.ring_here() else {
            let n = self.read_here(ino, offset, buf.as_mut_slice())?;
            return Ok((n, buf));
        };
        if buf.is_empty() {
            return Ok((0, buf));
        }
        check_span(offset, buf.len())?;
        if let Some(got) = self.read_small(ino, offset, buf.as_mut_slice()) {
            return Ok((got?, buf));
        }
        let Some(file) = self.existing_file(ino)? else {
            return Ok((0, buf));
        };
        let (res, buf) = ring.read_at(file, buf, offset).await;
        Ok((res?, buf))
    }

    /// [`ChunkStore::read`] done within the call, on a thread that does its own chunk I/O;
    /// `None` on the thread that submits to the ring, whose reads go through it.
    pub fn read_now(&self, ino: InodeId, offset: u64, buf: &mut [u8]) -> Option<Result<usize, StorageError>> {
        self.ring_here().is_none().then(|| self.read_here(ino, offset, buf))
    }

    /// A read with `pread` on this thread.
    fn read_here(&self, ino: InodeId, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        if buf.is_empty() {
            return Ok(0);
        }
        check_span(offset, buf.len())?;
        if let Some(got) = self.read_small(ino, offset, buf) {
            return got;
        }
        match self.existing_file(ino)? {
            Some(file) => Ok(posix::read_full_at(&file, buf, offset)?),
            None => Ok(0),
        }
    }

    /// Flushes the data of the local file of `ino` to stable storage (`fdatasync`), if the
    /// file exists.
    pub async fn fsync(&self, ino: InodeId) -> Result<(), StorageError> {
        let file = match self.packed(ino) {
            Some((small, _)) => Some(small.file.clone()),
            None => self.existing_file(ino)?,
        };
        let Some(file) = file else {
            return Ok(());
        };
        match self.ring_here() {
            None => Ok(file.sync_data()?),
            Some(ring) => ring.fsync(file).await,
        }
    }

    /// Cuts the local file of `ino` to `len` bytes. A shorter or missing file is left as it is:
    /// the bytes past its end already read as a hole.
    pub fn truncate(&self, ino: InodeId, len: u64) -> Result<(), StorageError> {
        if let Some((small, packed)) = self.packed(ino) {
            return Ok(small.cut(ino, packed, len)?);
        }
        // The file is cut, never replaced: same-node peers that write it directly keep valid
        // descriptors.
        if let Some(file) = self.existing_file(ino)? {
            if file.metadata()?.len() > len {
                file.set_len(len)?;
            }
        }
        Ok(())
    }

    /// The length of the local file of `ino`, 0 if there is none: how far this rank's data of it
    /// reaches (same-node peers write into the same file).
    pub fn extent(&self, ino: InodeId) -> Result<u64, StorageError> {
        if let Some((_, len)) = self.packed(ino) {
            return Ok(len);
        }
        Ok(match self.existing_file(ino)? {
            Some(file) => file.metadata()?.len(),
            None => 0,
        })
    }

    /// Removes the local file of `ino` (the file was unlinked). A missing file is fine. The
    /// removal count moves on before this returns, so that peers check their cached descriptors.
    pub fn remove(&self, ino: InodeId) -> Result<(), StorageError> {
        if let Some(small) = &self.small {
            if small.remove(ino)? {
                // Packed: it never had a chunk file.
                return Ok(());
            }
        }
        self.files.borrow_mut().pop(&ino);
        let removed = match self.chunks.remove_chunk(ino) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other,
        };
        if let Some(count) = &self.removals {
            count.bump();
        }
        Ok(removed?)
    }

    /// Reaps completions and wakes the futures whose operations completed; returns how many
    /// completed. Makes no system call.
    pub fn poll_completions(&self) -> usize {
        match &self.engine {
            Engine::Uring(ring) => ring.poll_completions(),
            Engine::Sync => 0,
        }
    }

    /// Hands the operations queued since the last call to the kernel in one system call;
    /// returns how many. Makes no system call when nothing is queued, or on a thread that may not
    /// submit (see [`own_rings_here`]), where nothing is ever queued.
    pub fn submit(&self) -> usize {
        self.ring_here().map_or(0, uring::Ring::submit)
    }

    /// The eventfd that becomes readable when completions arrive (`None` for `Backend::Sync`,
    /// whose operations complete in their first poll).
    pub fn event_fd(&self) -> Option<RawFd> {
        match &self.engine {
            Engine::Uring(ring) => Some(ring.event_fd()),
            Engine::Sync => None,
        }
    }

    /// Resets the eventfd after a wake-up. Call it before `poll_completions`, so that a
    /// completion arriving in between leaves the fd readable.
    pub fn clear_event(&self) {
        if let Engine::Uring(ring) = &self.engine {
            ring.clear_event();
        }
    }

    /// Reaps completions until the kernel holds no operation of this store (true), or until
    /// `deadline` (false). Nothing new is submitted: queued operations never reach the kernel.
    pub fn drain_kernel(&self, deadline: std::time::Instant) -> bool {
        let Engine::Uring(ring) = &self.engine else { return true };
        while ring.in_kernel() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            ring.poll_completions();
            std::thread::yield_now();
        }
        true
    }

    /// Operations queued or submitted whose completion has not been reaped yet.
    #[cfg(test)]
    pub fn inflight(&self) -> usize {
        match &self.engine {
            Engine::Uring(ring) => ring.inflight(),
            Engine::Sync => 0,
        }
    }

    /// Bytes of storage the chunk files occupy (allocated blocks, so holes do not count).
    #[cfg(test)]
    pub fn used_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        entries.filter_map(|entry| entry.ok()?.metadata().ok()).filter(|meta| meta.is_file()).map(|meta| meta.blocks() * 512).sum()
    }

    /// Waits for in-flight operations, closes every file and, unless `keep`, removes the chunk
    /// files and the directory. A directory that holds files the store did not create is left
    /// in place.
    pub fn shutdown(self, keep: bool) -> Result<(), StorageError> {
        if let (Some(small), true) = (&self.small, keep) {
            // Kept data stays one chunk file per inode, as documented.
            for (ino, len) in small.packed() {
                self.unpack(small, ino, len)?;
            }
        }
        let ChunkStore { engine, files, dir, chunks, pins: _, removals: count, small } = self;
        let packs = small.is_some();
        drop(small);
        if packs {
            small::remove_files(&dir)?;
        }
        drop(engine);
        drop(files);
        drop(chunks);
        drop(count);
        // The count is no data: it goes even with the data kept.
        removals::remove(&dir)?;
        if keep {
            return Ok(());
        }
        peer::remove_node_token(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if is_chunk_file_name(&entry.file_name()) {
                fs::remove_file(entry.path())?;
            }
        }
        match fs::remove_dir(&dir) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                tracing::warn!(dir = %dir.display(), "chunk directory holds foreign files; left in place");
                Ok(())
            }
            other => Ok(other?),
        }
    }

    fn file_for_write(&self, ino: InodeId) -> Result<Rc<File>, StorageError> {
        if let Some(file) = self.files.borrow_mut().get(&ino) {
            return Ok(Rc::clone(file));
        }
        Ok(self.open_and_cache(ino, true)?)
    }

    /// The open local file of `ino`, or `None` if it does not exist.
    fn existing_file(&self, ino: InodeId) -> Result<Option<Rc<File>>, StorageError> {
        if let Some(file) = self.files.borrow_mut().get(&ino) {
            return Ok(Some(Rc::clone(file)));
        }
        match self.open_and_cache(ino, false) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open_and_cache(&self, ino: InodeId, create: bool) -> io::Result<Rc<File>> {
        let file = loop {
            match self.chunks.open_chunk(ino, create) {
                // Out of descriptors: close the least recently used file and try again.
                Err(e) if is_fd_exhaustion(&e) && self.files.borrow_mut().pop_lru().is_some() => {}
                other => break Rc::new(other?),
            }
        };
        self.files.borrow_mut().put(ino, Rc::clone(&file));
        Ok(file)
    }
}

/// Rejects ranges the kernel would misread: io_uring takes offset `u64::MAX` as "the current
/// file position", and no file extends past `i64::MAX`.
fn check_span(offset: u64, len: usize) -> io::Result<()> {
    if offset > i64::MAX as u64 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    match offset.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::from_raw_os_error(libc::EFBIG)),
    }
}

pub(crate) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Names the store creates: exactly 16 lowercase hex digits.
fn is_chunk_file_name(name: &std::ffi::OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    bytes.len() == 16 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Half of the descriptors a rank may keep open for chunk files: its own store's cache and its
/// cache of same-node ranks' files get one half each. The whole is a quarter of the soft
/// descriptor limit at init, within `FD_CACHE_MIN..=FD_CACHE_MAX`: the rest is left to MPI, UCX
/// and the application (under a limit of 256, BenchFS keeps at most 64 chunk files open).
pub fn fd_budget_half() -> NonZeroUsize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { FD_CACHE_MAX };
    let budget = (soft / 4).clamp(FD_CACHE_MIN, FD_CACHE_MAX);
    NonZeroUsize::new(budget as usize / 2).unwrap_or(NonZeroUsize::MIN)
}
