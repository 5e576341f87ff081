//! The file-system operations.
//!
//! Application threads call the blocking functions at the bottom of this file. Each one hands a
//! job to the progress thread through the mailbox and waits for its reply; the job runs one of
//! the `async` operations below on the progress thread, against the rank's [`Node`].
//!
//! Consistency is close-to-open: a writer publishes the file's size and mtime to the metadata
//! owner when it closes or fsyncs; data itself is written through to the chunk owners at once.

use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_executor::LocalExecutor;

use crate::bootstrap::JobComm;
use crate::error::{Error, Result};
use crate::ids::{InodeId, Rank};
use crate::node::{self, Node};
use crate::rpc::server::{attr_of, execute_local};
use crate::rpc::wire::{Attr, ReplyBody, Request};
use crate::rpc::ReplyDest;
use crate::runtime::{join_all, reply_pair, Mailbox};
use crate::storage::IoBuf;
use crate::ucx::SendBuf;

/// What `stat` reports about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub ino: u64,
    pub size: u64,
    /// File type and permission bits, as `st_mode`.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// The chunk size.
    pub blksize: u64,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// `lseek` origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    Set,
    Cur,
    End,
}

/// Work for the progress thread, sent by an application thread.
pub type Job = Box<dyn FnOnce(&Rc<Node>, &LocalExecutor<'static>) + Send>;

/// Descriptors start here, like the kernel's after stdin/stdout/stderr.
const FD_BASE: i32 = 3;
const MAX_OPEN_FILES: usize = 1 << 20;
/// Largest offset + length of a file, as `off_t` allows.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// An open file of this rank.
pub struct OpenFile {
    path: String,
    flags: i32,
    attr: Attr,
    /// Position for `read`/`write`.
    pos: u64,
    /// The size as this descriptor knows it: the owner's at open, raised by its own writes.
    size: u64,
    wrote: bool,
    /// Ranks that hold chunks written through this descriptor (for fsync).
    written_owners: Vec<Rank>,
}

impl OpenFile {
    fn readable(&self) -> bool {
        self.flags & libc::O_ACCMODE != libc::O_WRONLY
    }
    fn writable(&self) -> bool {
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
    fn insert(&mut self, file: OpenFile) -> Result<i32> {
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

    fn get(&self, fd: i32) -> Result<&OpenFile> {
        Self::index(fd).and_then(|i| self.slots.get(i)).and_then(Option::as_ref).ok_or(Error::BadFd(fd))
    }

    fn get_mut(&mut self, fd: i32) -> Result<&mut OpenFile> {
        Self::index(fd).and_then(|i| self.slots.get_mut(i)).and_then(Option::as_mut).ok_or(Error::BadFd(fd))
    }

    fn remove(&mut self, fd: i32) -> Result<OpenFile> {
        let index = Self::index(fd).ok_or(Error::BadFd(fd))?;
        let file = self.slots.get_mut(index).and_then(Option::take).ok_or(Error::BadFd(fd))?;
        self.free.push(index);
        Ok(file)
    }

    /// The largest size this rank's own descriptors have written to `ino`.
    fn local_size(&self, ino: u64) -> Option<u64> {
        self.slots.iter().flatten().filter(|f| f.attr.ino == ino && f.wrote).map(|f| f.size).max()
    }
}

// ---------------------------------------------------------------------------------------------
// Operations on the progress thread.

/// A metadata request to the owner of `path`, run in place when that is this rank.
async fn meta_call(node: &Node, request: Request) -> Result<ReplyBody> {
    let path = match &request {
        Request::Open { path, .. } | Request::Stat { path } | Request::Publish { path, .. } | Request::Unlink { path } => path,
        _ => return Err(Error::Internal("not a metadata request")),
    };
    let owner = node.ring.meta_owner(path);
    if owner == node.rank {
        return execute_local(node, request).await;
    }
    // SAFETY: no raw memory is involved; the future is awaited here.
    let (reply, _) = unsafe { node.transport.call(owner, &request, SendBuf::None, None) }.await?;
    Ok(reply.body)
}

/// A chunk-maintenance request to one owner.
async fn chunk_call(node: &Node, owner: Rank, request: Request) -> Result<()> {
    if owner == node.rank {
        execute_local(node, request).await?;
    } else {
        // SAFETY: no raw memory is involved; the future is awaited here.
        unsafe { node.transport.call(owner, &request, SendBuf::None, None) }.await?;
    }
    Ok(())
}

/// Drops the data of `ino` beyond `len` on every rank that may hold some of its first `size` bytes.
async fn truncate_chunks(node: &Node, ino: u64, size: u64, len: u64) -> Result<()> {
    let owners = node.chunk_owners(ino, size);
    let calls = owners.into_iter().map(|owner| chunk_call(node, owner, Request::TruncateChunks { ino, len }));
    join_all(calls.collect()).await.into_iter().collect()
}

fn file_stat(node: &Node, attr: &Attr, size: u64) -> FileStat {
    FileStat {
        ino: attr.ino,
        size,
        mode: attr.mode,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        blksize: node.chunk_size(),
        atime_ns: attr.atime_ns,
        mtime_ns: attr.mtime_ns,
        ctime_ns: attr.ctime_ns,
    }
}

async fn op_open(node: Rc<Node>, path: String, flags: i32, mode: u32) -> Result<i32> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let request = Request::Open { path: path.clone(), flags: flags as u32, mode, uid, gid };
    let ReplyBody::Opened(attr, old_size) = meta_call(&node, request).await? else {
        return Err(Error::Internal("open reply without attributes"));
    };
    let truncated = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
    if truncated && old_size > 0 {
        truncate_chunks(&node, attr.ino, old_size, 0).await?;
    }
    let file = OpenFile { path, flags, attr, pos: 0, size: attr.size, wrote: false, written_owners: Vec::new() };
    node.files.borrow_mut().insert(file)
}

/// Publishes a writer's size to the metadata owner.
async fn publish(node: &Node, path: &str, ino: u64, size: u64) -> Result<Attr> {
    attr_of(meta_call(node, Request::Publish { path: path.to_owned(), ino, size }).await?)
}

async fn op_close(node: Rc<Node>, fd: i32) -> Result<()> {
    let file = node.files.borrow_mut().remove(fd)?;
    if file.wrote {
        publish(&node, &file.path, file.attr.ino, file.size).await?;
    }
    Ok(())
}

async fn op_fsync(node: Rc<Node>, fd: i32) -> Result<()> {
    let (path, ino, size, wrote, owners) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr.ino, f.size, f.wrote, f.written_owners.clone())
    };
    let syncs = owners.into_iter().map(|owner| chunk_call(&node, owner, Request::Fsync { ino }));
    join_all(syncs.collect()).await.into_iter().collect::<Result<()>>()?;
    if wrote {
        publish(&node, &path, ino, size).await?;
    }
    Ok(())
}

/// One piece of an I/O: the part of the request that falls in one chunk.
struct Piece {
    owner: Rank,
    offset: u64,
    len: usize,
    /// Offset of the piece in the caller's buffer.
    at: usize,
}

fn split(node: &Node, ino: u64, offset: u64, len: usize) -> Vec<Piece> {
    let chunk = node.chunk_size();
    let mut pieces = Vec::with_capacity(len.div_ceil(chunk as usize).max(1));
    let mut at = 0usize;
    while at < len {
        let off = offset + at as u64;
        let room = (chunk - off % chunk) as usize;
        let piece_len = room.min(len - at);
        pieces.push(Piece { owner: node.chunk_owner(ino, off), offset: off, len: piece_len, at });
        at += piece_len;
    }
    pieces
}

/// A caller buffer that stays valid while the application thread waits for its reply.
#[derive(Clone, Copy)]
struct UserBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the application thread that owns the memory is blocked until the job replies, and the
// job is the only user of the pointer meanwhile.
unsafe impl Send for UserBuf {}

async fn write_piece(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Result<()> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`.
    let ptr = unsafe { buf.ptr.add(piece.at) };
    let written = if piece.owner == node.rank {
        {
        // SAFETY: the caller's buffer outlives this awaited write (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store.write(InodeId(ino), piece.offset, buf).await?
    }
    } else {
        let request = Request::Write { ino, offset: piece.offset, len: piece.len as u64 };
        let data = SendBuf::Raw { ptr, len: piece.len };
        // SAFETY: the caller's buffer outlives this awaited call (see UserBuf).
        let (reply, _) = unsafe { node.transport.call(piece.owner, &request, data, None) }.await?;
        match reply.body {
            ReplyBody::Count(n) => n as usize,
            _ => return Err(Error::Internal("write reply without a count")),
        }
    };
    if written != piece.len {
        return Err(Error::Internal("short write on a chunk owner"));
    }
    Ok(())
}

async fn op_pwrite(node: Rc<Node>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        if !f.writable() {
            return Err(Error::BadFd(fd));
        }
        f.attr.ino
    };
    let end = offset.checked_add(buf.len as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Error::FileTooLarge)?;
    if buf.len == 0 {
        return Ok(0);
    }
    let pieces = split(&node, ino, offset, buf.len);
    let results = join_all(pieces.iter().map(|p| write_piece(&node, ino, p, buf)).collect()).await;
    results.into_iter().collect::<Result<()>>()?;
    if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
        f.size = f.size.max(end);
        f.wrote = true;
        for p in &pieces {
            if !f.written_owners.contains(&p.owner) {
                f.written_owners.push(p.owner);
            }
        }
    }
    Ok(buf.len)
}

async fn read_piece(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Result<()> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`.
    let ptr = unsafe { buf.ptr.add(piece.at) };
    let got = if piece.owner == node.rank {
        {
        // SAFETY: the caller's buffer outlives this awaited read (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store.read(InodeId(ino), piece.offset, buf).await?.0
    }
    } else {
        let request = Request::Read { ino, offset: piece.offset, len: piece.len as u64 };
        let dest = ReplyDest { ptr, len: piece.len };
        // SAFETY: the caller's buffer outlives this awaited call (see UserBuf).
        let (reply, received) = unsafe { node.transport.call(piece.owner, &request, SendBuf::None, Some(dest)) }.await?;
        match reply.body {
            ReplyBody::Count(n) if n as usize == received => received,
            _ => return Err(Error::Internal("read reply does not match its payload")),
        }
    };
    if got < piece.len {
        // The owner's file ends here: the rest of the piece is a hole.
        // SAFETY: [got, piece.len) lies within the piece, inside the caller's buffer.
        unsafe { std::ptr::write_bytes(ptr.add(got), 0, piece.len - got) };
    }
    Ok(())
}

/// The size a reader should use: refreshed from the owner when the cached one would cut the read.
async fn size_for_read(node: &Node, fd: i32, want_end: u64) -> Result<u64> {
    let (path, ino, size, wrote) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr.ino, f.size, f.wrote)
    };
    if want_end <= size {
        return Ok(size);
    }
    let fresh = match meta_call(node, Request::Stat { path }).await {
        Ok(body) => attr_of(body)?,
        Err(e) if e.errno() == libc::ENOENT => return Ok(size),
        Err(e) => return Err(e),
    };
    if fresh.ino != ino {
        return Ok(size);
    }
    let size = if wrote { fresh.size.max(size) } else { fresh.size };
    if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
        f.size = size;
    }
    Ok(size)
}

async fn op_pread(node: Rc<Node>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        if !f.readable() {
            return Err(Error::BadFd(fd));
        }
        f.attr.ino
    };
    if buf.len == 0 {
        return Ok(0);
    }
    let size = size_for_read(&node, fd, offset.saturating_add(buf.len as u64)).await?;
    let n = size.saturating_sub(offset).min(buf.len as u64) as usize;
    if n == 0 {
        return Ok(0);
    }
    let pieces = split(&node, ino, offset, n);
    let results = join_all(pieces.iter().map(|p| read_piece(&node, ino, p, buf)).collect()).await;
    results.into_iter().collect::<Result<()>>()?;
    Ok(n)
}

/// `read`/`write` at the file position, which advances by what was transferred.
async fn op_sequential(node: Rc<Node>, fd: i32, buf: UserBuf, writing: bool) -> Result<usize> {
    let pos = {
        let mut files = node.files.borrow_mut();
        let f = files.get_mut(fd)?;
        let pos = f.pos;
        // Reserve the range so that concurrent calls on one descriptor do not overlap.
        f.pos = pos.saturating_add(buf.len as u64);
        pos
    };
    let result = if writing {
        op_pwrite(node.clone(), fd, buf, pos).await
    } else {
        op_pread(node.clone(), fd, buf, pos).await
    };
    if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
        let done = *result.as_ref().unwrap_or(&0) as u64;
        if f.pos == pos.saturating_add(buf.len as u64) {
            f.pos = pos + done;
        }
    }
    result
}

async fn op_lseek(node: Rc<Node>, fd: i32, offset: i64, whence: Whence) -> Result<u64> {
    let base = match whence {
        Whence::Set => 0,
        Whence::Cur => node.files.borrow().get(fd)?.pos,
        Whence::End => size_for_read(&node, fd, u64::MAX).await?,
    };
    let pos = (base as i128) + (offset as i128);
    if pos < 0 || pos > MAX_FILE_SIZE as i128 {
        return Err(Error::InvalidArgument("resulting file offset is out of range"));
    }
    node.files.borrow_mut().get_mut(fd)?.pos = pos as u64;
    Ok(pos as u64)
}

async fn op_stat(node: Rc<Node>, path: String) -> Result<FileStat> {
    let attr = attr_of(meta_call(&node, Request::Stat { path }).await?)?;
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(&node, &attr, size))
}

async fn op_fstat(node: Rc<Node>, fd: i32) -> Result<FileStat> {
    let (path, cached) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr)
    };
    let attr = match meta_call(&node, Request::Stat { path }).await {
        Ok(body) => Some(attr_of(body)?).filter(|a| a.ino == cached.ino).unwrap_or(cached),
        // Removed since it was opened: the descriptor still describes the file it opened.
        Err(e) if e.errno() == libc::ENOENT => cached,
        Err(e) => return Err(e),
    };
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(&node, &attr, size))
}

async fn op_unlink(node: Rc<Node>, path: String) -> Result<()> {
    let attr = attr_of(meta_call(&node, Request::Unlink { path }).await?)?;
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    truncate_chunks(&node, attr.ino, size, 0).await
}

// ---------------------------------------------------------------------------------------------
// The process-wide handle and the blocking API.

/// What application threads hold: a way to reach the progress thread.
struct Handle {
    mailbox: Arc<Mailbox<Job>>,
    spin: Duration,
}

impl Handle {
    /// Runs `op` on the progress thread and blocks until it finishes.
    fn call<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Node>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        let (tx, rx) = reply_pair(self.spin);
        let job: Job = Box::new(move |node, executor| {
            let fut = op(node.clone());
            executor.spawn(async move { tx.send(fut.await) }).detach();
        });
        self.mailbox.send(job).map_err(|_| Error::ProgressStopped)?;
        rx.wait().unwrap_or(Err(Error::ProgressStopped))
    }
}

struct Global {
    depth: u32,
    handle: Option<Arc<Handle>>,
    running: Option<node::Running>,
    comm: Option<JobComm>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global { depth: 0, handle: None, running: None, comm: None });

fn global() -> MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn handle() -> Result<Arc<Handle>> {
    global().handle.clone().ok_or(Error::NotInitialized)
}

/// Collective over `comm`: like `benchfs_init`.
pub fn init<C: mpi::traits::Communicator>(comm: &C) -> Result<()> {
    init_raw(comm.as_raw())
}

/// Like [`init`], for a raw `MPI_Comm` (the C API).
pub fn init_raw(comm: mpi::ffi::MPI_Comm) -> Result<()> {
    let mut g = global();
    if g.depth > 0 {
        g.depth += 1;
        return Ok(());
    }
    let comm = JobComm::duplicate(comm)?;
    let running = node::start(&comm)?;
    let spin = Duration::from_micros(running.spin_us);
    g.handle = Some(Arc::new(Handle { mailbox: running.mailbox.clone(), spin }));
    g.running = Some(running);
    g.comm = Some(comm);
    g.depth = 1;
    Ok(())
}

/// Collective: like `benchfs_finalize`. Only the outermost call tears down.
pub fn finalize() -> Result<()> {
    let mut g = global();
    match g.depth {
        0 => return Err(Error::NotInitialized),
        1 => {}
        _ => {
            g.depth -= 1;
            return Ok(());
        }
    }
    g.depth = 0;
    g.handle = None;
    let (Some(running), Some(comm)) = (g.running.take(), g.comm.take()) else {
        return Err(Error::Internal("initialized state is incomplete"));
    };
    running.stop(&comm)
}

fn check_path(path: &str) -> Result<String> {
    crate::path::normalize(path)
}

/// Like `open(2)`; returns a BenchFS descriptor.
pub fn open(path: &str, flags: i32, mode: u32) -> Result<i32> {
    if flags & libc::O_ACCMODE == libc::O_ACCMODE {
        return Err(Error::InvalidArgument("O_RDONLY, O_WRONLY and O_RDWR are exclusive"));
    }
    let path = check_path(path)?;
    handle()?.call(move |node| op_open(node, path, flags, mode))
}

/// Like `close(2)`.
pub fn close(fd: i32) -> Result<()> {
    handle()?.call(move |node| op_close(node, fd))
}

/// Like `pwrite(2)`.
pub fn pwrite(fd: i32, buf: &[u8], offset: u64) -> Result<usize> {
    let user = UserBuf { ptr: buf.as_ptr() as *mut u8, len: buf.len() };
    handle()?.call(move |node| op_pwrite(node, fd, user, offset))
}

/// Like `pread(2)`.
pub fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize> {
    let user = UserBuf { ptr: buf.as_mut_ptr(), len: buf.len() };
    handle()?.call(move |node| op_pread(node, fd, user, offset))
}

/// Like `write(2)`.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    let user = UserBuf { ptr: buf.as_ptr() as *mut u8, len: buf.len() };
    handle()?.call(move |node| op_sequential(node, fd, user, true))
}

/// Like `read(2)`.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    let user = UserBuf { ptr: buf.as_mut_ptr(), len: buf.len() };
    handle()?.call(move |node| op_sequential(node, fd, user, false))
}

/// Like `lseek(2)`.
pub fn lseek(fd: i32, offset: i64, whence: Whence) -> Result<u64> {
    handle()?.call(move |node| op_lseek(node, fd, offset, whence))
}

/// Like `fsync(2)`.
pub fn fsync(fd: i32) -> Result<()> {
    handle()?.call(move |node| op_fsync(node, fd))
}

/// Like `stat(2)`.
pub fn stat(path: &str) -> Result<FileStat> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_stat(node, path))
}

/// Like `fstat(2)`.
pub fn fstat(fd: i32) -> Result<FileStat> {
    handle()?.call(move |node| op_fstat(node, fd))
}

/// Like `unlink(2)`.
pub fn unlink(path: &str) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_unlink(node, path))
}
