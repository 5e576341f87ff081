//! Client stubs: a typed call for each request the file-system layer makes, sent to the rank
//! that must serve it (run in place when that is this rank).

use super::entries::run_unlocked;
use super::node::Node;
pub use super::server::{broadcast, call_all};
use super::server::{list, run_on};
use super::transport::ReplyDest;
use super::wire::{self, Attr, DirEntry, ReplyBody, Request};
use crate::error::{Error, Result};
use crate::ids::{InodeId, Rank};
use crate::ucx::SendBuf;

/// A metadata request to the owner of the path it names.
pub async fn meta_call(node: &Node, request: Request) -> Result<ReplyBody> {
    let Some(path) = request.routing_path() else { return Err(Error::Internal("not a metadata request")) };
    let owner = node.ring.meta_owner(path);
    // The requests whose ENOENT may really be an ENOTDIR.
    let refine = matches!(
        request,
        Request::Open { .. }
            | Request::Stat { .. }
            | Request::Unlink { .. }
            | Request::Rmdir { .. }
            | Request::Mkdir { .. }
            | Request::Truncate { .. }
            | Request::Take { .. }
    );
    match run_unlocked(node, owner, &request).await {
        // Boxed: the failure path's future would double the size of every call's.
        Err(e) if refine && e.errno() == libc::ENOENT => Err(Box::pin(missing(node, path)).await),
        other => other,
    }
}

/// Why `path` does not exist: `ENOTDIR` when one of its ancestors is a file, else `ENOENT`.
/// Runs only on the failure path, one stat per ancestor up to the first that exists.
async fn missing(node: &Node, path: &[u8]) -> Error {
    let mut current = path;
    while let Some((parent, _)) = crate::path::split_parent(current) {
        let owner = node.ring.meta_owner(parent);
        match run_on(node, owner, &Request::Stat { path: parent.to_vec() }).await {
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

/// The attributes of `path`, from its metadata owner (or this rank's table, or a same-node
/// owner's shared table; see `Node::record_now`), with the size that its closed writers'
/// writes make (see [`closed_writes`]).
pub async fn stat(node: &Node, path: &[u8]) -> Result<Attr> {
    let attr = match node.record_now(path) {
        Some(attr) => attr,
        None => attr_of(meta_call(node, Request::Stat { path: path.to_vec() }).await?)?,
    };
    closed_writes(node, attr).await
}

/// [`stat`] within the call, when it needs no other rank to answer: the record is this rank's
/// or lies in a same-node owner's shared table, and any extent it needs (see [`closed_writes`])
/// is read directly. `None` otherwise, and for a path neither table holds (whose `ENOENT`
/// [`stat`] may refine).
pub fn stat_now(node: &Node, path: &[u8]) -> Option<Result<Attr>> {
    closed_writes_now(node, node.record_now(path)?)
}

/// `attr` with its size raised to cover the data in the file's first chunk while the file counts
/// writers: one whose writes all lay there may have closed and not be released yet, its size
/// still on the way to the owner (see `rpc::unregisters`). Every such write reached the chunk's
/// owner before its close returned, so the chunk's extent covers it. (It may also show writes of
/// writers still open, as a local file system would.)
async fn closed_writes(node: &Node, attr: Attr) -> Result<Attr> {
    if !may_have_closed_writes(node, &attr) {
        return Ok(attr);
    }
    let extent = first_chunk_extent(node, attr.ino).await?;
    Ok(with_extent(node, attr, extent))
}

/// [`closed_writes`] when the extent it needs can be read directly; `None` when it must be asked.
fn closed_writes_now(node: &Node, attr: Attr) -> Option<Result<Attr>> {
    if !may_have_closed_writes(node, &attr) {
        return Some(Ok(attr));
    }
    Some(first_chunk_extent_now(node, attr.ino)?.map(|extent| with_extent(node, attr, extent)))
}

/// Whether the size of the file `attr` may lag behind data its first chunk holds (see
/// [`closed_writes`]).
fn may_have_closed_writes(node: &Node, attr: &Attr) -> bool {
    attr.writers > 0 && attr.mode & libc::S_IFMT == libc::S_IFREG && attr.size < node.chunk_size()
}

fn with_extent(node: &Node, mut attr: Attr, extent: u64) -> Attr {
    attr.size = attr.size.max(extent.min(node.chunk_size()));
    attr
}

/// How far the data that the owner of the file `ino`'s first chunk holds of it reaches: read
/// from its chunk file directly when that is this rank's or a same-node rank's, else asked.
async fn first_chunk_extent(node: &Node, ino: u64) -> Result<u64> {
    if let Some(extent) = first_chunk_extent_now(node, ino) {
        return extent;
    }
    let owner = node.chunk_owner(ino, 0);
    match run_on(node, owner, &Request::ChunkExtent { ino }).await? {
        ReplyBody::Count(extent) => Ok(extent),
        _ => Err(Error::Internal("chunk extent reply without a count")),
    }
}

/// [`first_chunk_extent`] when the chunk is this rank's or a same-node rank's; `None` otherwise.
fn first_chunk_extent_now(node: &Node, ino: u64) -> Option<Result<u64>> {
    let owner = node.chunk_owner(ino, 0);
    if owner == node.rank {
        return Some(node.store().and_then(|store| Ok(store.extent(InodeId(ino))?)));
    }
    node.peers.direct(owner, |peers| peers.extent(owner, InodeId(ino))).map(|extent| Ok(extent?))
}

/// `open` of `path` with `flags` that make and cut nothing (no `O_TRUNC`, and `O_CREAT` only
/// without `O_EXCL`, of a file that exists), answered without a request when the record is this
/// rank's or lies in a same-node owner's shared table (see [`Node::record_now`]): such an open
/// changes nothing at the owner, so the record says all it would (its size raised as a stat's
/// would be, see [`opened_with_closed_writes`]). `None` otherwise.
pub fn open_now(node: &Node, path: &[u8], flags: i32) -> Option<Result<ReplyBody>> {
    if flags & (libc::O_TRUNC | libc::O_EXCL) != 0 {
        return None;
    }
    let attr = node.record_now(path)?;
    if let Err(e) = crate::metadata::check_open(&attr, flags) {
        return Some(Err(e));
    }
    Some(closed_writes_now(node, attr)?.map(|attr| ReplyBody::Opened { attr, old_size: attr.size, created: false }))
}

/// The owner's reply to an open of an existing file that cuts nothing, with the size raised as
/// a stat's would be (see [`closed_writes`]): the size the new descriptor knows, and keeps if
/// the file is removed while it is open.
pub async fn opened_with_closed_writes(node: &Node, reply: ReplyBody, flags: i32) -> Result<ReplyBody> {
    match reply {
        ReplyBody::Opened { attr, old_size, created: false } if flags & libc::O_TRUNC == 0 => {
            Ok(ReplyBody::Opened { attr: closed_writes(node, attr).await?, old_size, created: false })
        }
        other => Ok(other),
    }
}

/// The attributes out of a metadata reply.
pub fn attr_of(body: ReplyBody) -> Result<Attr> {
    match body {
        ReplyBody::Attr(attr) | ReplyBody::Opened { attr, .. } | ReplyBody::Sized { attr, .. } => Ok(attr),
        _ => Err(Error::Internal("reply carries no attributes")),
    }
}

/// Writes `len` bytes at `data` to `offset` of `ino` on the chunk owner `owner` (another rank),
/// all within one chunk; returns the count the owner wrote.
///
/// # Safety
/// `data` is valid for reads of `len` bytes until the returned future completes, and the caller
/// drives it to completion.
pub async unsafe fn write_chunk(node: &Node, owner: Rank, ino: u64, offset: u64, data: *const u8, len: usize) -> Result<usize> {
    let request = Request::Write { ino, offset, len: len as u64 };
    let data = SendBuf::Raw { ptr: data as *mut u8, len };
    // SAFETY: forwarded caller contract.
    let (reply, _) = unsafe { node.transport.call(owner, &request, data, None) }.await?;
    match reply.body {
        ReplyBody::Count(n) => Ok(n as usize),
        _ => Err(Error::Internal("write reply without a count")),
    }
}

/// Reads up to `len` bytes at `offset` of `ino` from the chunk owner `owner` (another rank) into
/// `dest`, all within one chunk; returns the count received (less at the end of the owner's data).
///
/// # Safety
/// `dest` is valid for writes of `len` bytes until the returned future completes, and the caller
/// drives it to completion.
pub async unsafe fn read_chunk(node: &Node, owner: Rank, ino: u64, offset: u64, dest: *mut u8, len: usize) -> Result<usize> {
    let request = Request::Read { ino, offset, len: len as u64 };
    let dest = ReplyDest { ptr: dest, len };
    // SAFETY: forwarded caller contract.
    let (reply, received) = unsafe { node.transport.call(owner, &request, SendBuf::None, Some(dest)) }.await?;
    match reply.body {
        ReplyBody::Count(n) if n as usize == received => Ok(received),
        _ => Err(Error::Internal("read reply does not match its payload")),
    }
}

/// Directory `path`'s attributes and the ranks that hold entries of it, from its owner in one
/// round trip.
pub async fn holders(node: &Node, path: &[u8]) -> Result<(Attr, Vec<Rank>)> {
    match holders_from_owner(node, path).await {
        Err(e) if e.errno() == libc::ENOENT => Err(missing(node, path).await),
        other => other,
    }
}

async fn holders_from_owner(node: &Node, path: &[u8]) -> Result<(Attr, Vec<Rank>)> {
    let owner = node.ring.meta_owner(path);
    let (attr, ranks) = if owner == node.rank {
        super::server::holders(node, path)?
    } else {
        let mut buf = vec![0u8; node.nranks as usize * 4];
        let dest = ReplyDest { ptr: buf.as_mut_ptr(), len: buf.len() };
        let request = Request::Holders { path: path.to_vec() };
        // SAFETY: buf outlives this awaited call.
        let (reply, received) = unsafe { node.transport.call(owner, &request, SendBuf::None, Some(dest)) }.await?;
        let ReplyBody::Attr(attr) = reply.body else { return Err(Error::Internal("holders reply without attributes")) };
        if received % 4 != 0 {
            return Err(Error::Wire(crate::error::WireError::BadLength));
        }
        (attr, buf[..received].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    let ranks = ranks.into_iter().map(|r| if r < node.nranks { Ok(Rank(r)) } else { Err(Error::Wire(crate::error::WireError::BadLength)) });
    Ok((attr, ranks.collect::<Result<_>>()?))
}

/// Up to `max` of rank `rank`'s entries of directory `path`, in name order after `after`.
pub async fn list_page(node: &Node, rank: Rank, path: Vec<u8>, after: Vec<u8>, max: u32) -> Result<Vec<DirEntry>> {
    if rank.0 >= node.nranks {
        return Err(Error::InvalidArgument("no such rank"));
    }
    if rank == node.rank {
        return list(node, &path, &after, max);
    }
    // Each entry is 11 bytes plus its name.
    let mut buf = vec![0u8; max as usize * (11 + crate::path::MAX_NAME)];
    let dest = ReplyDest { ptr: buf.as_mut_ptr(), len: buf.len() };
    let request = Request::List { path, after, max };
    // SAFETY: buf outlives this awaited call.
    let (reply, received) = unsafe { node.transport.call(rank, &request, SendBuf::None, Some(dest)) }.await?;
    let ReplyBody::Count(count) = reply.body else { return Err(Error::Internal("list reply without a count")) };
    Ok(wire::decode_entries(&buf[..received], count)?)
}
