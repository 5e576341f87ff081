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
use crate::rpc::server::{attr_of, call_rank, list};
pub use crate::rpc::wire::DirEntry;
use crate::rpc::wire::{self, Attr, ReplyBody, Request};
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

/// An open file (or directory) of this rank.
pub struct OpenFile {
    path: String,
    flags: i32,
    attr: Attr,
    /// Position for `read`/`write`.
    pos: u64,
    /// The size as this descriptor knows it: the owner's at open, raised by its own writes.
    size: u64,
    /// The end of the highest byte written through this descriptor since it last published.
    dirty_end: Option<u64>,
    /// Ranks that hold chunks written through this descriptor (for fsync).
    written_owners: Vec<Rank>,
}

impl OpenFile {
    fn is_dir(&self) -> bool {
        self.attr.mode & libc::S_IFMT == libc::S_IFDIR
    }
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

    fn of_inode(&mut self, ino: u64) -> impl Iterator<Item = &mut OpenFile> {
        self.slots.iter_mut().flatten().filter(move |f| f.attr.ino == ino)
    }

    /// The end of this rank's unpublished writes to `ino`.
    fn local_size(&self, ino: u64) -> Option<u64> {
        self.slots.iter().flatten().filter(|f| f.attr.ino == ino).filter_map(|f| f.dirty_end).max()
    }
}

// ---------------------------------------------------------------------------------------------
// Operations on the progress thread.

/// A metadata request to the owner of the path it names.
async fn meta_call(node: &Node, request: Request) -> Result<ReplyBody> {
    let path = match &request {
        Request::Open { path, .. }
        | Request::Stat { path }
        | Request::Publish { path, .. }
        | Request::Unlink { path }
        | Request::Mkdir { path, .. }
        | Request::Rmdir { path }
        | Request::Link { path, .. }
        | Request::Truncate { path, .. }
        | Request::Take { path, .. }
        | Request::Install { path, .. }
        | Request::Discard { path, .. } => path,
        _ => return Err(Error::Internal("not a metadata request")),
    };
    let owner = node.ring.meta_owner(path);
    // Kept only for the requests whose ENOENT may really be an ENOTDIR.
    let refine_path = matches!(
        request,
        Request::Open { .. }
            | Request::Stat { .. }
            | Request::Unlink { .. }
            | Request::Rmdir { .. }
            | Request::Truncate { .. }
            | Request::Take { .. }
    )
    .then(|| path.clone());
    match (call_rank(node, owner, request).await, refine_path) {
        (Err(e), Some(path)) if e.errno() == libc::ENOENT => Err(missing(node, &path).await),
        (other, _) => other,
    }
}

/// Why `path` does not exist: `ENOTDIR` when one of its ancestors is a file, else `ENOENT`.
/// Runs only on the failure path, one stat per ancestor up to the first that exists.
async fn missing(node: &Node, path: &str) -> Error {
    let mut current = path;
    while let Some((parent, _)) = crate::path::split_parent(current) {
        let owner = node.ring.meta_owner(parent);
        match call_rank(node, owner, Request::Stat { path: parent.to_owned() }).await {
            Ok(body) => match attr_of(body) {
                Ok(attr) if attr.mode & libc::S_IFMT != libc::S_IFDIR => return Error::NotDirectory,
                _ => return Error::NotFound,
            },
            Err(e) if e.errno() == libc::ENOENT => current = parent,
            Err(e) => return e,
        }
    }
    Error::NotFound
}

/// The same request to each of `ranks`, all at once; the replies in order.
async fn call_all(node: &Node, ranks: impl IntoIterator<Item = Rank>, request: Request) -> Result<Vec<ReplyBody>> {
    let calls = ranks.into_iter().map(|rank| call_rank(node, rank, request.clone()));
    join_all(calls.collect()).await.into_iter().collect()
}

/// The same request to every rank, all at once.
async fn broadcast(node: &Node, request: Request) -> Result<Vec<ReplyBody>> {
    call_all(node, (0..node.nranks).map(Rank), request).await
}

/// Drops the data of `ino` beyond `len` on every rank that may hold some of its first `size` bytes.
async fn truncate_chunks(node: &Node, ino: u64, size: u64, len: u64) -> Result<()> {
    call_all(node, node.chunk_owners(ino, size), Request::TruncateChunks { ino, len }).await.map(drop)
}

/// Removes all data of the unlinked file `ino` from every rank that may hold some of its first
/// `size` bytes.
async fn remove_chunks(node: &Node, ino: u64, size: u64) -> Result<()> {
    let owners = node.chunk_owners(ino, size);
    for &owner in &owners {
        node.peers.forget(owner, InodeId(ino));
    }
    call_all(node, owners, Request::RemoveChunks { ino }).await.map(drop)
}

/// Adjusts the entry count (and with `touch` the mtime) of the directory holding `path`.
async fn link_parent(node: &Node, path: &str, delta: i64, touch: bool) -> Result<()> {
    let Some((parent, _)) = crate::path::split_parent(path) else { return Ok(()) };
    meta_call(node, Request::Link { path: parent.to_owned(), delta, touch }).await.map(drop)
}

/// Undoes a parent link after the operation it accompanied failed; a failure here leaves the
/// count one off, which is logged.
async fn unlink_parent_quietly(node: &Node, path: &str, delta: i64) {
    if let Err(e) = link_parent(node, path, delta, false).await {
        tracing::warn!(path, error = %e, "could not undo a parent directory update");
    }
}

/// Creates an entry (file or directory) together with its parent's update, concurrently: the
/// parent must exist and be a directory. Either half failing undoes the other.
///
/// When the parent update fails but the entry was made, the entry is discarded only if nobody
/// has used it meanwhile. If another caller has (its own parent update succeeded, so the parent
/// exists by now), this create is counted again and succeeds, ordered after the parent's
/// creation, so no caller is ever left holding a removed file.
async fn create_entry(node: &Node, path: &str, request: Request) -> Result<ReplyBody> {
    let (linked, made) = futures_lite::future::zip(link_parent(node, path, 1, true), meta_call(node, request)).await;
    let created = match &made {
        Ok(ReplyBody::Opened { attr, created: true, .. }) => Some(attr.ino),
        Ok(ReplyBody::Attr(attr)) => Some(attr.ino),
        _ => None,
    };
    match (linked, created) {
        (Ok(()), Some(_)) => made,
        (Ok(()), None) => {
            unlink_parent_quietly(node, path, -1).await;
            made
        }
        (Err(e), None) => Err(e),
        (Err(e), Some(ino)) => match meta_call(node, Request::Discard { path: path.to_owned(), ino }).await {
            Err(busy) if busy.errno() == libc::EBUSY => link_parent(node, path, 1, true).await.and(made),
            Err(other) if other.errno() != libc::ENOENT => {
                tracing::warn!(path, error = %other, "could not discard an entry created under a missing parent");
                Err(e)
            }
            _ => Err(e),
        },
    }
}

/// Removes an entry together with its parent's update; a failed removal restores the count.
async fn remove_entry(node: &Node, path: &str, request: Request) -> Result<ReplyBody> {
    let (unlinked, removed) = futures_lite::future::zip(link_parent(node, path, -1, true), meta_call(node, request)).await;
    match (unlinked, removed) {
        (Ok(()), Err(e)) => {
            unlink_parent_quietly(node, path, 1).await;
            Err(e)
        }
        // A parent that is missing or not a directory says more than the missing entry.
        (Err(parent), Err(_)) => Err(parent),
        (_, removed) => removed,
    }
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

fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

async fn op_open(node: Rc<Node>, path: String, flags: i32, mode: u32) -> Result<i32> {
    let (uid, gid) = ids();
    let request = Request::Open { path: path.clone(), flags: flags as u32, mode, uid, gid };
    let reply = if flags & libc::O_CREAT != 0 && path != "/" {
        create_entry(&node, &path, request).await?
    } else {
        meta_call(&node, request).await?
    };
    let ReplyBody::Opened { attr, old_size, .. } = reply else {
        return Err(Error::Internal("open reply without attributes"));
    };
    let truncated = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
    if truncated && old_size > 0 {
        truncate_chunks(&node, attr.ino, old_size, 0).await?;
    }
    let file = OpenFile { path, flags, attr, pos: 0, size: attr.size, dirty_end: None, written_owners: Vec::new() };
    node.files.borrow_mut().insert(file)
}

/// Publishes a writer's size to the metadata owner (which forwards it if the file was renamed).
/// A file removed or replaced since it was opened has no record for this writer any more: it
/// has nothing to publish to.
async fn publish(node: &Node, path: &str, ino: u64, size: u64) -> Result<()> {
    match meta_call(node, Request::Publish { path: path.to_owned(), ino, size }).await {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == libc::ENOENT => {
            tracing::debug!(path, "size not published: the file was removed or renamed");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn op_close(node: Rc<Node>, fd: i32) -> Result<()> {
    let file = node.files.borrow_mut().remove(fd)?;
    if let Some(end) = file.dirty_end {
        publish(&node, &file.path, file.attr.ino, end).await?;
    }
    Ok(())
}

async fn op_fsync(node: Rc<Node>, fd: i32) -> Result<()> {
    let (path, ino, dirty_end, owners) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr.ino, f.dirty_end, f.written_owners.clone())
    };
    call_all(&node, owners, Request::Fsync { ino }).await?;
    if let Some(end) = dirty_end {
        publish(&node, &path, ino, end).await?;
        if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
            // Writes that raced with this fsync keep their own, larger end.
            f.dirty_end = f.dirty_end.filter(|&e| e > end);
        }
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
        // SAFETY: the caller's buffer outlives this awaited write (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store()?.write(InodeId(ino), piece.offset, buf).await?
    } else if let Some(written) = peer_direct(node, piece.owner, |peers| {
        // SAFETY: the piece lies within the caller's buffer, valid while it waits (see UserBuf).
        let data = unsafe { std::slice::from_raw_parts(ptr, piece.len) };
        peers.write(piece.owner, InodeId(ino), piece.offset, data)
    }) {
        written
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

/// Runs `io` on a same-node owner's chunk file directly, if that owner is reachable. A failure
/// (its directory cannot be opened, say) makes this rank use the transport for that owner from
/// then on: `None` tells the caller to do so now.
fn peer_direct(
    node: &Node,
    owner: Rank,
    io: impl FnOnce(&crate::storage::PeerFiles) -> Result<usize, crate::error::StorageError>,
) -> Option<usize> {
    if !node.peers.reaches(owner) {
        return None;
    }
    match io(&node.peers) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(%owner, error = %e, "cannot use a same-node rank's chunk files directly; using the transport");
            node.peers.give_up(owner);
            None
        }
    }
}

/// The file behind `fd` for data access: not a directory, and open in the right mode.
fn data_file(node: &Node, fd: i32, writing: bool) -> Result<u64> {
    let files = node.files.borrow();
    let f = files.get(fd)?;
    if f.is_dir() {
        return Err(Error::IsDirectory);
    }
    if (writing && !f.writable()) || (!writing && !f.readable()) {
        return Err(Error::BadFd(fd));
    }
    Ok(f.attr.ino)
}

async fn op_pwrite(node: Rc<Node>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = data_file(&node, fd, true)?;
    let end = offset.checked_add(buf.len as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Error::FileTooLarge)?;
    if buf.len == 0 {
        return Ok(0);
    }
    let pieces = split(&node, ino, offset, buf.len);
    let results = join_all(pieces.iter().map(|p| write_piece(&node, ino, p, buf)).collect()).await;
    results.into_iter().collect::<Result<()>>()?;
    if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
        f.size = f.size.max(end);
        f.dirty_end = Some(f.dirty_end.map_or(end, |e| e.max(end)));
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
        // SAFETY: the caller's buffer outlives this awaited read (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store()?.read(InodeId(ino), piece.offset, buf).await?.0
    } else if let Some(got) = peer_direct(node, piece.owner, |peers| {
        // SAFETY: the piece lies within the caller's buffer, valid while it waits (see UserBuf).
        let data = unsafe { std::slice::from_raw_parts_mut(ptr, piece.len) };
        peers.read(piece.owner, InodeId(ino), piece.offset, data)
    }) {
        got
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
async fn current_size(node: &Node, fd: i32, want_end: u64) -> Result<u64> {
    let (path, ino, size, dirty_end) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr.ino, f.size, f.dirty_end)
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
    let size = dirty_end.map_or(fresh.size, |end| end.max(fresh.size));
    if let Ok(f) = node.files.borrow_mut().get_mut(fd) {
        f.size = size;
    }
    Ok(size)
}

async fn op_pread(node: Rc<Node>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = data_file(&node, fd, false)?;
    if buf.len == 0 {
        return Ok(0);
    }
    let size = current_size(&node, fd, offset.saturating_add(buf.len as u64)).await?;
    let n = size.saturating_sub(offset).min(buf.len as u64) as usize;
    if n == 0 {
        return Ok(0);
    }
    let pieces = split(&node, ino, offset, n);
    let results = join_all(pieces.iter().map(|p| read_piece(&node, ino, p, buf)).collect()).await;
    results.into_iter().collect::<Result<()>>()?;
    Ok(n)
}

/// `read`/`write` at the file position, which advances by what was transferred. With
/// `O_APPEND` a write goes to the end of the file as its metadata owner knows it.
async fn op_sequential(node: Rc<Node>, fd: i32, buf: UserBuf, writing: bool) -> Result<usize> {
    data_file(&node, fd, writing)?;
    let append = writing && node.files.borrow().get(fd)?.flags & libc::O_APPEND != 0;
    if append {
        let end = current_size(&node, fd, u64::MAX).await?;
        node.files.borrow_mut().get_mut(fd)?.pos = end;
    }
    let pos = {
        let mut files = node.files.borrow_mut();
        let f = files.get_mut(fd)?;
        let pos = f.pos;
        // Reserve the range so that concurrent calls on one descriptor do not overlap.
        f.pos = pos.saturating_add(buf.len as u64);
        pos
    };
    let result = if writing { op_pwrite(node.clone(), fd, buf, pos).await } else { op_pread(node.clone(), fd, buf, pos).await };
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
        Whence::End => current_size(&node, fd, u64::MAX).await?,
    };
    let pos = (base as i128) + (offset as i128);
    if pos < 0 || pos > MAX_FILE_SIZE as i128 {
        return Err(Error::InvalidArgument("resulting file offset is out of range"));
    }
    node.files.borrow_mut().get_mut(fd)?.pos = pos as u64;
    Ok(pos as u64)
}

async fn stat_attr(node: &Node, path: &str) -> Result<Attr> {
    attr_of(meta_call(node, Request::Stat { path: path.to_owned() }).await?)
}

async fn op_stat(node: Rc<Node>, path: String) -> Result<FileStat> {
    let attr = stat_attr(&node, &path).await?;
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(&node, &attr, size))
}

async fn op_fstat(node: Rc<Node>, fd: i32) -> Result<FileStat> {
    let (path, cached) = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr)
    };
    let attr = match stat_attr(&node, &path).await {
        Ok(attr) if attr.ino == cached.ino => attr,
        // Removed or renamed since it was opened: the descriptor still describes its file.
        Ok(_) => cached,
        Err(e) if e.errno() == libc::ENOENT => cached,
        Err(e) => return Err(e),
    };
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(&node, &attr, size))
}

async fn op_unlink(node: Rc<Node>, path: String) -> Result<()> {
    let attr = attr_of(remove_entry(&node, &path, Request::Unlink { path: path.clone() }).await?)?;
    let size = node.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    remove_chunks(&node, attr.ino, size).await
}

async fn op_mkdir(node: Rc<Node>, path: String, mode: u32) -> Result<()> {
    if path == "/" {
        return Err(Error::Exists);
    }
    let (uid, gid) = ids();
    create_entry(&node, &path, Request::Mkdir { path: path.clone(), mode, uid, gid }).await.map(drop)
}

async fn op_rmdir(node: Rc<Node>, path: String) -> Result<()> {
    if path == "/" {
        return Err(Error::Busy);
    }
    remove_entry(&node, &path, Request::Rmdir { path: path.clone() }).await.map(drop)
}

/// Cuts or extends a file to `len`, freeing the cut chunks on their owners.
async fn truncate_path(node: &Node, path: &str, len: u64) -> Result<()> {
    if len > MAX_FILE_SIZE {
        return Err(Error::FileTooLarge);
    }
    let ReplyBody::Sized { attr, old_size } = meta_call(node, Request::Truncate { path: path.to_owned(), len }).await? else {
        return Err(Error::Internal("truncate reply without sizes"));
    };
    let mut reach = old_size;
    for f in node.files.borrow_mut().of_inode(attr.ino) {
        reach = reach.max(f.dirty_end.unwrap_or(0)).max(f.size);
        f.size = len;
        f.dirty_end = f.dirty_end.map(|e| e.min(len));
    }
    if len < reach {
        truncate_chunks(node, attr.ino, reach, len).await?;
    }
    Ok(())
}

async fn op_truncate(node: Rc<Node>, path: String, len: u64) -> Result<()> {
    truncate_path(&node, &path, len).await
}

async fn op_ftruncate(node: Rc<Node>, fd: i32, len: u64) -> Result<()> {
    let path = {
        let files = node.files.borrow();
        let f = files.get(fd)?;
        if f.is_dir() || !f.writable() {
            return Err(Error::InvalidArgument("descriptor is not open for writing"));
        }
        f.path.clone()
    };
    truncate_path(&node, &path, len).await
}

/// `rename(2)`: the record moves from the old name's owner to the new name's; a directory's
/// descendants move with it, each to the owner of its new path. File data never moves.
async fn op_rename(node: Rc<Node>, from: String, to: String) -> Result<()> {
    if from == "/" || to == "/" {
        return Err(Error::Busy);
    }
    if to.starts_with(&format!("{from}/")) {
        // The source decides the error: missing (ENOENT), a file (ENOTDIR), or a directory
        // that cannot move into itself (EINVAL).
        let source = attr_of(meta_call(&node, Request::Stat { path: from.clone() }).await?)?;
        return Err(if source.mode & libc::S_IFMT == libc::S_IFDIR {
            Error::InvalidArgument("cannot move a directory into its own subtree")
        } else {
            Error::NotDirectory
        });
    }
    if from == to {
        return stat_attr(&node, &from).await.map(drop);
    }
    // The new parent must exist; count the new entry now, undone below if it replaces one.
    link_parent(&node, &to, 1, true).await?;
    let ReplyBody::Record { attr, children } = (match meta_call(&node, Request::Take { path: from.clone(), to: to.clone() }).await {
        Ok(body) => body,
        Err(e) => {
            unlink_parent_quietly(&node, &to, -1).await;
            return Err(e);
        }
    }) else {
        return Err(Error::Internal("take reply without a record"));
    };
    let installed = meta_call(&node, Request::Install { path: to.clone(), attr, children }).await;
    let replaced = match installed {
        Ok(ReplyBody::Replaced(replaced)) => replaced,
        Ok(_) => return Err(Error::Internal("install reply without an outcome")),
        Err(e) => {
            // Put the record back where it was.
            if let Err(undo) = meta_call(&node, Request::Install { path: from.clone(), attr, children }).await {
                tracing::error!(path = %from, error = %undo, "could not restore a record after a failed rename");
            }
            unlink_parent_quietly(&node, &to, -1).await;
            return Err(e);
        }
    };
    if let Some(old) = replaced {
        unlink_parent_quietly(&node, &to, -1).await;
        if old.mode & libc::S_IFMT == libc::S_IFREG && old.ino != attr.ino {
            remove_chunks(&node, old.ino, old.size).await?;
        }
    }
    if attr.mode & libc::S_IFMT == libc::S_IFDIR {
        broadcast(&node, Request::MoveTree { from: from.clone(), to: to.clone() }).await?;
    }
    for f in node.files.borrow_mut().of_inode(attr.ino) {
        f.path = to.clone();
    }
    link_parent(&node, &from, -1, true).await
}

async fn op_access(node: Rc<Node>, path: String, mode: i32) -> Result<()> {
    if mode & !(libc::F_OK | libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return Err(Error::InvalidArgument("unknown access mode bits"));
    }
    let attr = stat_attr(&node, &path).await?;
    let (uid, gid) = ids();
    let allowed = if uid == 0 {
        // root reads and writes anything, and executes what anyone may execute.
        let any_x = attr.mode & 0o111 != 0 || attr.mode & libc::S_IFMT == libc::S_IFDIR;
        libc::R_OK | libc::W_OK | if any_x { libc::X_OK } else { 0 }
    } else {
        let shift = if attr.uid == uid {
            6
        } else if attr.gid == gid {
            3
        } else {
            0
        };
        ((attr.mode >> shift) & 0o7) as i32
    };
    if mode & !allowed != 0 {
        return Err(Error::Access);
    }
    Ok(())
}

/// File-system totals: what `statvfs` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// Block size of the counts below.
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namemax: u64,
}

async fn op_statvfs(node: Rc<Node>, path: String) -> Result<FsStat> {
    stat_attr(&node, &path).await?;
    let mut seen = std::collections::HashSet::new();
    let mut total = FsStat { bsize: 4096, namemax: crate::path::MAX_NAME as u64, ..FsStat::default() };
    let (mut bytes, mut free, mut avail) = (0u64, 0u64, 0u64);
    for body in broadcast(&node, Request::StatFs).await? {
        let ReplyBody::FsUsage(u) = body else { return Err(Error::Internal("statfs reply without usage")) };
        total.files += u.records;
        // Ranks sharing a file system report it once.
        if seen.insert(u.fs_id) {
            bytes += u.total_bytes;
            free += u.free_bytes;
            avail += u.avail_bytes;
            total.ffree += u.free_files;
        }
    }
    total.files += total.ffree;
    total.blocks = bytes / total.bsize;
    total.bfree = free / total.bsize;
    total.bavail = avail / total.bsize;
    Ok(total)
}

/// Entries per listing page.
const LIST_PAGE: u32 = 256;
/// Bytes a page's payload may take: each entry is 11 bytes plus its name.
const LIST_PAGE_BYTES: usize = LIST_PAGE as usize * (11 + crate::path::MAX_NAME);

async fn op_list_page(node: Rc<Node>, rank: u32, path: String, after: String) -> Result<Vec<DirEntry>> {
    if rank >= node.nranks {
        return Err(Error::InvalidArgument("no such rank"));
    }
    if Rank(rank) == node.rank {
        return list(&node, &path, &after, LIST_PAGE);
    }
    let mut buf = vec![0u8; LIST_PAGE_BYTES];
    let dest = ReplyDest { ptr: buf.as_mut_ptr(), len: buf.len() };
    let request = Request::List { path, after, max: LIST_PAGE };
    // SAFETY: buf outlives this awaited call.
    let (reply, received) = unsafe { node.transport.call(Rank(rank), &request, SendBuf::None, Some(dest)) }.await?;
    let ReplyBody::Count(count) = reply.body else { return Err(Error::Internal("list reply without a count")) };
    Ok(wire::decode_entries(&buf[..received], count)?)
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
    enter(comm, node::start)
}

/// Collective over the client job's `comm`: like `benchfs_attach`.
pub fn attach<C: mpi::traits::Communicator>(comm: &C, contact_file: &std::path::Path) -> Result<()> {
    attach_raw(comm.as_raw(), contact_file)
}

/// Like [`attach`], for a raw `MPI_Comm` (the C API).
pub fn attach_raw(comm: mpi::ffi::MPI_Comm, contact_file: &std::path::Path) -> Result<()> {
    enter(comm, |comm| node::attach(comm, contact_file))
}

/// The outermost init or attach starts a progress thread; nested ones only count.
fn enter(comm: mpi::ffi::MPI_Comm, start: impl FnOnce(&JobComm) -> Result<node::Running>) -> Result<()> {
    let mut g = global();
    if g.depth > 0 {
        g.depth += 1;
        return Ok(());
    }
    let comm = JobComm::duplicate(comm)?;
    let running = start(&comm)?;
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

/// Sends raw request bytes to rank `to` and returns the errno of its reply (`Some(0)` when it
/// succeeded, `None` when no reply is expected). For testing that servers answer malformed
/// messages with an errno and keep serving.
#[doc(hidden)]
pub fn send_raw_request(to: u32, header: Vec<u8>, payload: Vec<u8>, expect_reply: bool) -> Result<Option<i32>> {
    handle()?.call(move |node| async move {
        if to >= node.nranks {
            return Err(Error::InvalidArgument("no such rank"));
        }
        node.transport.call_raw(Rank(to), header, payload, expect_reply).await
    })
}

/// This rank and the number of ranks, once initialized.
pub fn rank_and_size() -> Result<(u32, u32)> {
    handle()?.call(|node| async move { Ok((node.rank.0, node.nranks)) })
}

/// Like `mkdir(2)`.
pub fn mkdir(path: &str, mode: u32) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_mkdir(node, path, mode))
}

/// Like `rmdir(2)`.
pub fn rmdir(path: &str) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_rmdir(node, path))
}

/// Like `rename(2)`, for files and directory trees.
pub fn rename(from: &str, to: &str) -> Result<()> {
    let (from, to) = (check_path(from)?, check_path(to)?);
    handle()?.call(move |node| op_rename(node, from, to))
}

/// Like `truncate(2)`.
pub fn truncate(path: &str, len: u64) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_truncate(node, path, len))
}

/// Like `ftruncate(2)`.
pub fn ftruncate(fd: i32, len: u64) -> Result<()> {
    handle()?.call(move |node| op_ftruncate(node, fd, len))
}

/// Like `access(2)`.
pub fn access(path: &str, mode: i32) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_access(node, path, mode))
}

/// Like `statvfs(2)`: totals over all ranks.
pub fn statvfs(path: &str) -> Result<FsStat> {
    let path = check_path(path)?;
    handle()?.call(move |node| op_statvfs(node, path))
}

/// Where a directory stream is.
enum DirStage {
    Dot,
    DotDot,
    /// Reading rank `rank`'s entries after the name `after`.
    Ranks {
        rank: u32,
        after: String,
    },
    Done,
}

/// An open directory stream: `.` and `..`, then every rank's entries of the directory, fetched a
/// page at a time from one rank after another.
pub struct Dir {
    path: String,
    ino: u64,
    parent_ino: u64,
    nranks: u32,
    stage: DirStage,
    page: std::collections::VecDeque<DirEntry>,
}

/// Like `opendir(3)`.
pub fn opendir(path: &str) -> Result<Dir> {
    let path = check_path(path)?;
    let dir_path = path.clone();
    let (ino, parent_ino, nranks) = handle()?.call(move |node| async move {
        let attr = stat_attr(&node, &dir_path).await?;
        if attr.mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Error::NotDirectory);
        }
        let parent_ino = match crate::path::split_parent(&dir_path) {
            Some((parent, _)) => stat_attr(&node, parent).await.map_or(attr.ino, |a| a.ino),
            None => attr.ino,
        };
        Ok((attr.ino, parent_ino, node.nranks))
    })?;
    Ok(Dir { path, ino, parent_ino, nranks, stage: DirStage::Dot, page: Default::default() })
}

impl Dir {
    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<DirEntry>> {
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Ok(Some(entry));
            }
            match &mut self.stage {
                DirStage::Dot => {
                    self.stage = DirStage::DotDot;
                    return Ok(Some(DirEntry { ino: self.ino, kind: libc::DT_DIR, name: ".".into() }));
                }
                DirStage::DotDot => {
                    self.stage = DirStage::Ranks { rank: 0, after: String::new() };
                    return Ok(Some(DirEntry { ino: self.parent_ino, kind: libc::DT_DIR, name: "..".into() }));
                }
                DirStage::Done => return Ok(None),
                DirStage::Ranks { rank, after } => {
                    let (r, path, cursor) = (*rank, self.path.clone(), after.clone());
                    let page = handle()?.call(move |node| op_list_page(node, r, path, cursor))?;
                    match page.last() {
                        Some(last) if page.len() as u32 == LIST_PAGE => *after = last.name.clone(),
                        _ if r + 1 < self.nranks => self.stage = DirStage::Ranks { rank: r + 1, after: String::new() },
                        _ => self.stage = DirStage::Done,
                    }
                    self.page.extend(page);
                }
            }
        }
    }
}

impl Iterator for Dir {
    type Item = Result<DirEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// All entries of a directory (including `.` and `..`).
pub fn readdir(path: &str) -> Result<Vec<DirEntry>> {
    opendir(path)?.collect()
}
