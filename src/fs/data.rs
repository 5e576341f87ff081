//! The data path: a read or write is cut at chunk boundaries, and each piece goes to its chunk
//! owner at once: this rank's store, a same-node owner's chunk file directly, or the transport.
//!
//! Consistency is close-to-open: data is written through to the owners before `pwrite` returns;
//! the file's size is published to its metadata owner on close and fsync.

use std::rc::Rc;

use super::files::MAX_FILE_SIZE;
use super::namespace::enter_descriptor;
use super::{Client, Whence};
use crate::error::{Error, Result};
use crate::ids::{InodeId, Rank};
use crate::join::join_all;
use crate::rpc::client::{self as stub, call_all, meta_call};
use crate::rpc::wire::Request;
use crate::rpc::{Attr, Closed, Node};
use crate::storage::IoBuf;

/// A caller buffer that stays valid while the application thread waits for its reply.
#[derive(Clone, Copy)]
pub struct UserBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the application thread that owns the memory is blocked until the job replies, and the
// job is the only user of the pointer meanwhile.
unsafe impl Send for UserBuf {}

impl UserBuf {
    /// A buffer the data path writes into.
    pub fn from_mut(buf: &mut [u8]) -> UserBuf {
        UserBuf { ptr: buf.as_mut_ptr(), len: buf.len() }
    }

    /// A buffer the data path only reads.
    pub fn from_ref(buf: &[u8]) -> UserBuf {
        UserBuf { ptr: buf.as_ptr() as *mut u8, len: buf.len() }
    }
}

/// One piece of an I/O: the part of the request that falls in one chunk.
struct Piece {
    owner: Rank,
    offset: u64,
    len: usize,
    /// Offset of the piece in the caller's buffer.
    at: usize,
}

/// The pieces of `len` bytes at `offset` of `ino`, one per chunk they touch: on the stack when
/// they lie within one chunk, as most transfers do.
fn split(node: &Node, ino: u64, offset: u64, len: usize) -> Pieces {
    let chunk = node.chunk_size();
    if len > 0 && offset / chunk == (offset + len as u64 - 1) / chunk {
        return Pieces::One([Piece { owner: node.chunk_owner(ino, offset), offset, len, at: 0 }]);
    }
    let mut pieces = Vec::with_capacity(len.div_ceil(chunk as usize).max(1));
    let mut at = 0usize;
    while at < len {
        let off = offset + at as u64;
        let room = (chunk - off % chunk) as usize;
        let piece_len = room.min(len - at);
        pieces.push(Piece { owner: node.chunk_owner(ino, off), offset: off, len: piece_len, at });
        at += piece_len;
    }
    Pieces::Many(pieces)
}

enum Pieces {
    One([Piece; 1]),
    Many(Vec<Piece>),
}

impl std::ops::Deref for Pieces {
    type Target = [Piece];
    fn deref(&self) -> &[Piece] {
        match self {
            Pieces::One(one) => one,
            Pieces::Many(many) => many,
        }
    }
}

/// Runs `each` on every piece at once. A single piece is awaited in place, with nothing
/// allocated for its future.
async fn for_pieces<'a, Fut: std::future::Future<Output = Result<()>>>(pieces: &'a [Piece], each: impl Fn(&'a Piece) -> Fut) -> Result<()> {
    if let [only] = pieces {
        return each(only).await;
    }
    join_all(pieces.iter().map(each).collect()).await.into_iter().collect()
}

async fn write_piece(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Result<()> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`.
    let ptr = unsafe { buf.ptr.add(piece.at) };
    let written = if piece.owner == node.rank {
        // SAFETY: the caller's buffer outlives this awaited write (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store()?.write(InodeId(ino), piece.offset, buf).await?
    } else if let Some(written) = node.peers.direct(piece.owner, |peers| {
        // SAFETY: the piece lies within the caller's buffer, valid while it waits (see UserBuf).
        let data = unsafe { std::slice::from_raw_parts(ptr, piece.len) };
        peers.write(piece.owner, InodeId(ino), piece.offset, data)
    }) {
        written?
    } else {
        // SAFETY: the caller's buffer outlives this awaited call (see UserBuf).
        unsafe { stub::write_chunk(node, piece.owner, ino, piece.offset, ptr, piece.len) }.await?
    };
    if written != piece.len {
        return Err(Error::Internal("short write on a chunk owner"));
    }
    Ok(())
}

async fn read_piece(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Result<()> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`.
    let ptr = unsafe { buf.ptr.add(piece.at) };
    let got = if piece.owner == node.rank {
        // SAFETY: the caller's buffer outlives this awaited read (see UserBuf).
        let buf = unsafe { IoBuf::from_raw(ptr, piece.len) };
        node.store()?.read(InodeId(ino), piece.offset, buf).await?.0
    } else if let Some(got) = node.peers.direct(piece.owner, |peers| {
        // SAFETY: the piece lies within the caller's buffer, valid while it waits (see UserBuf).
        let data = unsafe { std::slice::from_raw_parts_mut(ptr, piece.len) };
        peers.read(piece.owner, InodeId(ino), piece.offset, data)
    }) {
        got?
    } else {
        // SAFETY: the caller's buffer outlives this awaited call (see UserBuf).
        unsafe { stub::read_chunk(node, piece.owner, ino, piece.offset, ptr, piece.len) }.await?
    };
    fill_hole(ptr, piece, got);
    Ok(())
}

/// Zeros the rest of a piece whose owner's file ends after `got` bytes: a hole. `ptr` is where
/// the piece starts in the caller's buffer.
fn fill_hole(ptr: *mut u8, piece: &Piece, got: usize) {
    if got < piece.len {
        // SAFETY: [got, piece.len) lies within the piece, inside the caller's buffer.
        unsafe { std::ptr::write_bytes(ptr.add(got), 0, piece.len - got) };
    }
}

/// [`pread`] finished within the call: when the size this rank knows covers the read and every
/// piece lies in this rank's store or in a same-node owner's chunk file it reads directly.
/// `None` when the read must wait (for a size from the metadata owner, a piece from its
/// owner), which [`pread`] then does. It touches the descriptor table and chunk files only:
/// it sends nothing and wakes no task, so it leaves no work on the loop (see
/// `Driver::now_held`).
pub fn pread_now(client: &Client, fd: i32, buf: UserBuf, offset: u64) -> Option<Result<usize>> {
    let ino = match data_file(client, fd, false) {
        Ok(ino) => ino,
        Err(e) => return Some(Err(e)),
    };
    let known = client.files.borrow().get(fd).ok()?.size;
    if offset.saturating_add(buf.len as u64) > known {
        return None;
    }
    let node = &client.node;
    if buf.len > 0 {
        for piece in split(node, ino, offset, buf.len).iter() {
            if let Err(e) = read_piece_now(node, ino, piece, buf)? {
                return Some(Err(e));
            }
        }
    }
    Some(Ok(buf.len))
}

/// [`read_piece`] within the call; `None` when the piece must be asked of its owner.
fn read_piece_now(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Option<Result<()>> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`.
    let ptr = unsafe { buf.ptr.add(piece.at) };
    // SAFETY: the piece lies within the caller's buffer, which its thread does not touch
    // during the call.
    let data = unsafe { std::slice::from_raw_parts_mut(ptr, piece.len) };
    let got = if piece.owner == node.rank {
        match node.store() {
            Ok(store) => store.read_now(InodeId(ino), piece.offset, data)?,
            Err(e) => return Some(Err(e)),
        }
    } else {
        node.peers.direct(piece.owner, |peers| peers.read(piece.owner, InodeId(ino), piece.offset, data))?
    };
    Some(got.map_err(Error::from).map(|got| fill_hole(ptr, piece, got)))
}

/// The file behind `fd` for data access: not a directory, and open in the right mode.
fn data_file(client: &Client, fd: i32, writing: bool) -> Result<u64> {
    let files = client.files.borrow();
    let f = files.get(fd)?;
    if f.is_dir() {
        return Err(Error::IsDirectory);
    }
    if (writing && !f.writable()) || (!writing && !f.readable()) {
        return Err(Error::BadFd(fd));
    }
    Ok(f.attr.ino)
}

pub async fn pwrite(client: Rc<Client>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = data_file(&client, fd, true)?;
    let end = offset.checked_add(buf.len as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Error::FileTooLarge)?;
    if buf.len == 0 {
        return Ok(0);
    }
    client.files.borrow_mut().get_mut(fd)?.wrote = true;
    let node = &client.node;
    let pieces = split(node, ino, offset, buf.len);
    // A descriptor's first write counts it among the file's writers, at the same time.
    let (registered, written) =
        futures_lite::future::zip(register(&client, fd), for_pieces(&pieces, |p| write_piece(node, ino, p, buf))).await;
    registered?;
    written?;
    note_written(&client, fd, end, &pieces);
    Ok(buf.len)
}

/// What the descriptor keeps of a write that ended at `end`: the size this rank sees, the
/// unpublished range, and the ranks whose chunks it wrote (to be made durable by fsync).
fn note_written(client: &Client, fd: i32, end: u64, pieces: &[Piece]) {
    if let Ok(f) = client.files.borrow_mut().get_mut(fd) {
        f.size = f.size.max(end);
        f.dirty_end = Some(f.dirty_end.map_or(end, |e| e.max(end)));
        for p in pieces {
            if !f.written_owners.contains(&p.owner) {
                f.written_owners.push(p.owner);
            }
        }
    }
}

/// [`pwrite`] finished within the call: when the descriptor already counts among the file's
/// writers (its first write registers it with the metadata owner, which waits) and every piece
/// goes to this rank's store or to a same-node owner's chunk file written directly. `None`
/// when the write must wait, which [`pwrite`] then does (writing again what this wrote: the
/// same bytes at the same places). Like [`pread_now`], it leaves no work on the loop.
pub fn pwrite_now(client: &Client, fd: i32, buf: UserBuf, offset: u64) -> Option<Result<usize>> {
    let ino = match data_file(client, fd, true) {
        Ok(ino) => ino,
        Err(e) => return Some(Err(e)),
    };
    let Some(end) = offset.checked_add(buf.len as u64).filter(|&e| e <= MAX_FILE_SIZE) else {
        return Some(Err(Error::FileTooLarge));
    };
    if buf.len == 0 {
        return Some(Ok(0));
    }
    {
        let mut files = client.files.borrow_mut();
        let f = files.get_mut(fd).ok()?;
        if !f.registered {
            return None;
        }
        f.wrote = true;
    }
    let node = &client.node;
    let pieces = split(node, ino, offset, buf.len);
    for piece in pieces.iter() {
        if let Err(e) = write_piece_now(node, ino, piece, buf)? {
            return Some(Err(e));
        }
    }
    note_written(client, fd, end, &pieces);
    Some(Ok(buf.len))
}

/// [`write_piece`] within the call; `None` when the piece must go to its owner.
fn write_piece_now(node: &Node, ino: u64, piece: &Piece, buf: UserBuf) -> Option<Result<()>> {
    // SAFETY: piece.at + piece.len <= buf.len by construction in `split`, and the caller's
    // buffer stays valid and unchanged during the call.
    let data = unsafe { std::slice::from_raw_parts(buf.ptr.add(piece.at), piece.len) };
    let written = if piece.owner == node.rank {
        match node.store() {
            Ok(store) => store.write_now(InodeId(ino), piece.offset, data)?,
            Err(e) => return Some(Err(e)),
        }
    } else {
        node.peers.direct(piece.owner, |peers| peers.write(piece.owner, InodeId(ino), piece.offset, data))?
    };
    Some(match written {
        Ok(n) if n == piece.len => Ok(()),
        Ok(_) => Err(Error::Internal("short write on a chunk owner")),
        Err(e) => Err(e.into()),
    })
}

pub async fn pread(client: Rc<Client>, fd: i32, buf: UserBuf, offset: u64) -> Result<usize> {
    let ino = data_file(&client, fd, false)?;
    if buf.len == 0 {
        return Ok(0);
    }
    let size = current_size(&client, fd, offset.saturating_add(buf.len as u64)).await?;
    let n = size.saturating_sub(offset).min(buf.len as u64) as usize;
    if n == 0 {
        return Ok(0);
    }
    let node = &client.node;
    let pieces = split(node, ino, offset, n);
    for_pieces(&pieces, |p| read_piece(node, ino, p, buf)).await?;
    Ok(n)
}

/// The size a reader should use: refreshed from the owner when the cached one would cut the read.
async fn current_size(client: &Client, fd: i32, want_end: u64) -> Result<u64> {
    let (path, ino, size, dirty_end) = {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        if want_end <= f.size {
            return Ok(f.size);
        }
        (f.path.clone(), f.attr.ino, f.size, f.dirty_end)
    };
    let fresh = match stub::stat(&client.node, &path).await {
        Ok(attr) => attr,
        Err(e) if e.errno() == libc::ENOENT => return Ok(size),
        Err(e) => return Err(e),
    };
    if fresh.ino != ino {
        return Ok(size);
    }
    let size = dirty_end.map_or(fresh.size, |end| end.max(fresh.size));
    if let Ok(f) = client.files.borrow_mut().get_mut(fd) {
        f.size = size;
    }
    Ok(size)
}

/// `read`/`write` at the file position, which advances by what was transferred. With
/// `O_APPEND` a write goes to the end of the file as its metadata owner knows it.
pub async fn sequential(client: Rc<Client>, fd: i32, buf: UserBuf, writing: bool) -> Result<usize> {
    data_file(&client, fd, writing)?;
    let append = writing && client.files.borrow().get(fd)?.flags & libc::O_APPEND != 0;
    if append {
        let end = current_size(&client, fd, u64::MAX).await?;
        client.files.borrow_mut().get_mut(fd)?.pos = end;
    }
    let pos = {
        let mut files = client.files.borrow_mut();
        let f = files.get_mut(fd)?;
        let pos = f.pos;
        // Reserve the range so that concurrent calls on one descriptor do not overlap.
        f.pos = pos.saturating_add(buf.len as u64);
        pos
    };
    let result = if writing { pwrite(client.clone(), fd, buf, pos).await } else { pread(client.clone(), fd, buf, pos).await };
    if let Ok(f) = client.files.borrow_mut().get_mut(fd) {
        let done = *result.as_ref().unwrap_or(&0) as u64;
        if f.pos == pos.saturating_add(buf.len as u64) {
            f.pos = pos + done;
        }
    }
    result
}

/// [`sequential`] finished within the call, when [`pread_now`] or [`pwrite_now`] can do it at the
/// file position (a write with `O_APPEND` must first learn the end from the metadata owner);
/// `None` otherwise, with the position untouched.
pub fn sequential_now(client: &Client, fd: i32, buf: UserBuf, writing: bool) -> Option<Result<usize>> {
    let (pos, append) = {
        let files = client.files.borrow();
        let f = files.get(fd).ok()?;
        (f.pos, f.flags & libc::O_APPEND != 0)
    };
    if writing && append {
        return None;
    }
    let result = if writing { pwrite_now(client, fd, buf, pos)? } else { pread_now(client, fd, buf, pos)? };
    if let (Ok(done), Ok(f)) = (&result, client.files.borrow_mut().get_mut(fd)) {
        f.pos = pos + *done as u64;
    }
    Some(result)
}

pub async fn lseek(client: Rc<Client>, fd: i32, offset: i64, whence: Whence) -> Result<u64> {
    let base = match whence {
        Whence::Set => 0,
        Whence::Cur => client.files.borrow().get(fd)?.pos,
        Whence::End => current_size(&client, fd, u64::MAX).await?,
    };
    seek(&client, fd, base, offset)
}

/// [`lseek`] within the call, from a base that needs no size (`SEEK_SET`, `SEEK_CUR`); `None`
/// for `SEEK_END`.
pub fn lseek_now(client: &Client, fd: i32, offset: i64, whence: Whence) -> Option<Result<u64>> {
    let base = match whence {
        Whence::Set => 0,
        Whence::Cur => match client.files.borrow().get(fd) {
            Ok(file) => file.pos,
            Err(e) => return Some(Err(e)),
        },
        Whence::End => return None,
    };
    Some(seek(client, fd, base, offset))
}

/// Moves `fd`'s position to `offset` from `base`.
fn seek(client: &Client, fd: i32, base: u64, offset: i64) -> Result<u64> {
    let pos = (base as i128) + (offset as i128);
    if pos < 0 || pos > MAX_FILE_SIZE as i128 {
        return Err(Error::InvalidArgument("resulting file offset is out of range"));
    }
    client.files.borrow_mut().get_mut(fd)?.pos = pos as u64;
    Ok(pos as u64)
}

/// Counts `fd` among its file's writers, once, before its first write lands (see `Attr::writers`).
/// A file removed since it was opened has no record to count in.
async fn register(client: &Client, fd: i32) -> Result<()> {
    {
        let mut files = client.files.borrow_mut();
        let f = files.get_mut(fd)?;
        if f.registered {
            return Ok(());
        }
        // Set first, so that concurrent writes through this descriptor count it only once.
        f.registered = true;
    }
    let (_pass, path) = enter_descriptor(client, fd).await?;
    let ino = client.files.borrow().get(fd)?.attr.ino;
    match meta_call(&client.node, Request::Register { path, ino }).await {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == libc::ENOENT => Ok(()),
        Err(e) => {
            if let Ok(f) = client.files.borrow_mut().get_mut(fd) {
                f.registered = false;
            }
            Err(e)
        }
    }
}

/// Publishes a writer's size to the metadata owner (which forwards it if the file was renamed);
/// `release` when the writer closes. A file removed or replaced since it was opened has no
/// record for this writer any more: it has nothing to publish to.
async fn publish(node: &Node, path: &[u8], attr: &Attr, size: u64, release: bool) -> Result<()> {
    let request = Request::Publish { path: path.to_owned(), ino: attr.ino, size, cuts: attr.cuts, release };
    match meta_call(node, request).await {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == libc::ENOENT => {
            tracing::debug!(path = %crate::path::show(path), "size not published: the file was removed or renamed");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// [`close`] within the call: a descriptor that is not among its file's writers only leaves
/// the table, unless a directory rename holds its path back. `None` otherwise (or while held
/// back): the caller takes [`close`]'s way.
pub fn close_now(client: &Client, fd: i32) -> Option<Result<()>> {
    let mut files = client.files.borrow_mut();
    match files.get(fd) {
        Ok(file) if file.registered || client.node.fences.holds_back(&[&file.path], false) => None,
        Ok(_) => Some(files.remove(fd).map(drop)),
        Err(e) => Some(Err(e)),
    }
}

pub async fn close(client: Rc<Client>, fd: i32) -> Result<()> {
    let (_pass, _) = enter_descriptor(&client, fd).await?;
    let file = client.files.borrow_mut().remove(fd)?;
    let node = &client.node;
    if !file.registered {
        return Ok(());
    }
    match file.dirty_end {
        // Counted by the create that opened it, with nothing written: released soon, in a batch.
        None if !file.wrote => node.unregisters.queue(file.path, file.attr.ino),
        // Written within the first chunk only, which every reader of the size looks at while
        // the file counts this writer: published soon, in a batch (see `rpc::unregisters`).
        Some(end) if end <= node.chunk_size() => {
            node.unregisters.queue_closed(Closed { path: file.path, ino: file.attr.ino, end, cuts: file.attr.cuts })
        }
        // After an fsync there may be nothing new to publish, but the writer still closes.
        _ => publish(node, &file.path, &file.attr, file.dirty_end.unwrap_or(0), true).await?,
    }
    Ok(())
}

pub async fn fsync(client: Rc<Client>, fd: i32) -> Result<()> {
    let (_pass, _) = enter_descriptor(&client, fd).await?;
    let (path, attr, dirty_end, owners) = {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr, f.dirty_end, f.written_owners.clone())
    };
    call_all(&client.node, owners, Request::Fsync { ino: attr.ino }).await?;
    if let Some(end) = dirty_end {
        publish(&client.node, &path, &attr, end, false).await?;
        if let Ok(f) = client.files.borrow_mut().get_mut(fd) {
            // Writes that raced with this fsync keep their own, larger end.
            f.dirty_end = f.dirty_end.filter(|&e| e > end);
        }
    }
    Ok(())
}
