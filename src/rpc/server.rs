//! Serving requests from other ranks, and the same operations run locally.
//!
//! Every request is validated before it touches a table or a file: the wire decoder checks the
//! layout, and the handlers check that paths are normalised and owned here, and that chunk
//! ranges lie within one chunk owned here. A bad request gets an errno, never a crash.

use std::rc::Rc;

use async_executor::LocalExecutor;

use super::entries;
use super::node::Node;
use super::transport::{Incoming, Payload, ReplyTo};
use super::wire::{self, Attr, Closed, FsUsage, Reply, ReplyBody, Request};
use crate::error::{Error, Result};
use crate::ids::{InodeId, Rank};
use crate::metadata::{Published, Record, Truncated};
use crate::storage::IoBuf;
use crate::ucx::SendBuf;

/// Serves one request and sends its reply: at once when it needs no waiting (see
/// [`serve_now`]), which spares the task, else in a task of its own.
pub fn spawn_serve(node: &Rc<Node>, executor: &LocalExecutor<'static>, incoming: Incoming) {
    let started = crate::stats::start();
    let Incoming { envelope, reply_to, request, payload, arrived } = incoming;
    crate::stats::phase(crate::stats::Phase::Queued, envelope.opcode, arrived, started);
    let request = request.and_then(|request| check_proposed_ino(&envelope, request));
    let request = match request.map(|request| serve_now(node, request)) {
        Ok(Ok(result)) => return answer(node, envelope, reply_to, started, result, SendBuf::None),
        Ok(Err(request)) => request,
        Err(e) => return answer(node, envelope, reply_to, started, Err(e), SendBuf::None),
    };
    let node = node.clone();
    executor
        .spawn(async move {
            let (result, data) = execute(&node, request, payload).await;
            answer(&node, envelope, reply_to, started, result, data);
        })
        .detach();
}

/// An `Open` that proposes the inode number of the file it may create must propose one its
/// sender made: a number of another rank's would put the file's first chunk there, and one of
/// the owner's own could be given to two files.
fn check_proposed_ino(envelope: &wire::Envelope, request: Request) -> Result<Request> {
    if let Request::Open { ino, .. } = request {
        let ino = InodeId(ino);
        if ino.0 != 0 && (ino.creator() != Some(Rank(envelope.source)) || ino.sequence() == 0) {
            return Err(Error::InvalidArgument("proposed inode number not made by the sender"));
        }
    }
    Ok(request)
}

/// Serves in place a request whose handler cannot wait: one that reads or changes a record
/// only, a create whose rank is already enlisted in the parent directory (see
/// `entries::enlisted`), the removal of a directory no rank holds an entry of, an unlink or a
/// cut or removal of chunks whose data here no read mapping pins, or a writer's registration,
/// publication or cut that reaches its file under the name it was sent to. Gives back every
/// other request.
fn serve_now(node: &Node, request: Request) -> std::result::Result<Result<ReplyBody>, Request> {
    let now = match &request {
        Request::Stat { .. }
        | Request::Touch { .. }
        | Request::Enlist { .. }
        | Request::Take { .. }
        | Request::Release { .. }
        | Request::Drain { .. }
        | Request::Ping => true,
        Request::Open { path, flags, .. } => {
            (!creates(node, path, *flags) || entries::is_enlisted(node, path)) && !cuts(node, path, *flags)
        }
        Request::Mkdir { path, .. } => entries::is_enlisted(node, path),
        Request::Rmdir { path } => !node.meta.borrow().is_held(path),
        Request::Unlink { path } => unlinks_now(node, path),
        Request::Publish { path, ino, cuts, .. } => node.meta.borrow().file_at(path, *ino).is_some_and(|a| a.cuts <= *cuts),
        Request::Register { path, ino } => node.meta.borrow().file_at(path, *ino).is_some(),
        Request::RemoveChunks { ino } | Request::TruncateChunks { ino, .. } => {
            node.chunk_store().is_some_and(|store| !store.is_pinned(InodeId(*ino)))
        }
        _ => false,
    };
    if !now {
        return Err(request);
    }
    if let Some(path) = request.routing_path() {
        if let Err(e) = node.check_meta_path(path) {
            return Ok(Err(e));
        }
    }
    Ok(match request {
        Request::Open { path, flags, mode, uid, gid, ino } => open_here(node, &path, flags, mode, uid, gid, ino),
        Request::Mkdir { path, mode, uid, gid } => mkdir_here(node, &path, mode, uid, gid),
        Request::Rmdir { path } => entries::remove_unheld_dir(node, &path).map(ReplyBody::Attr),
        Request::Unlink { path } => unlink_here(node, &path),
        Request::Publish { path, ino, size, cuts, release } => {
            published_here(node.meta.borrow_mut().publish(&path, ino, size, cuts, release))
        }
        Request::Register { path, ino } => published_here(node.meta.borrow_mut().register(&path, ino)),
        Request::Ping => Ok(ReplyBody::Empty),
        Request::RemoveChunks { ino } => remove_unpinned_chunks(node, ino).map(|()| ReplyBody::Empty),
        Request::TruncateChunks { ino, len } => cut_unpinned_chunks(node, ino, len).map(|()| ReplyBody::Empty),
        record => serve_record(node, &record),
    })
}

/// Sends the reply to a request served here, with `data` as its payload.
fn answer(
    node: &Node,
    envelope: wire::Envelope,
    source: ReplyTo,
    started: Option<std::time::Instant>,
    result: Result<ReplyBody>,
    data: SendBuf,
) {
    let reply = match result {
        Ok(body) => Reply { request_id: envelope.request_id, opcode: envelope.opcode, errno: 0, body },
        Err(e) => {
            tracing::debug!(?source, opcode = envelope.opcode, error = %e, "request failed");
            Reply { request_id: envelope.request_id, opcode: envelope.opcode, errno: e.errno(), body: ReplyBody::Empty }
        }
    };
    // Data moved: what a write brought, or a read sends back.
    let moved = match (envelope.opcode == wire::Opcode::Write as u16 || envelope.opcode == wire::Opcode::Read as u16, &reply.body) {
        (true, ReplyBody::Count(n)) => *n,
        _ => 0,
    };
    node.transport.reply(source, &reply, data);
    // What the request created goes into the shared table now that the reply is on its way.
    node.meta.borrow_mut().catch_up_shared();
    crate::stats::served(envelope.opcode, started, moved);
}

/// Whether an `open` of `path` with `flags` served here makes its entry, and so must first have
/// this rank enlisted in the parent directory.
fn creates(node: &Node, path: &[u8], flags: u32) -> bool {
    flags as i32 & libc::O_CREAT != 0 && node.meta.borrow().stat(path).is_err()
}

/// `open` of `path` here, once the rank is enlisted in its directory if it may create it; a
/// file it creates gets the inode number `ino` (0: one of this rank's).
fn open_here(node: &Node, path: &[u8], flags: u32, mode: u32, uid: u32, gid: u32, ino: u64) -> Result<ReplyBody> {
    let o = node.meta.borrow_mut().open(path, flags as i32, mode, uid, gid, ino)?;
    Ok(ReplyBody::Opened { attr: o.attr, old_size: o.old_size, created: o.created })
}

/// True for open flags that cut a file that exists (`O_TRUNC`, for writing).
fn cutting(flags: u32) -> bool {
    let flags = flags as i32;
    flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY
}

/// Whether an open of `path` here with `flags` cuts an existing file, which waits for its
/// chunks to be cut (see [`cut_chunks`]).
fn cuts(node: &Node, path: &[u8], flags: u32) -> bool {
    cutting(flags) && node.meta.borrow().stat(path).is_ok()
}

/// Cuts the chunks of the file `attr` at `path` (owned here) to `len`, after a cut of its
/// record that locked it, then unlocks it: on every rank while the file counts writers (their
/// data may lie anywhere), else on the owners of its chunks below its size before, `old_size`.
/// A writer that missed the cut and publishes meanwhile waits for the lock, so that it measures
/// what the chunk owners hold only once they are cut (see [`publish`]): a cut size never comes
/// back. The record is unlocked whether or not every cut succeeded.
async fn cut_chunks(node: &Node, path: &[u8], attr: &Attr, old_size: u64, len: u64) -> Result<()> {
    let ranks = if attr.writers > 0 {
        (0..node.nranks).map(Rank).collect()
    } else if old_size > len {
        node.chunk_owners(attr.ino, old_size)
    } else {
        Vec::new()
    };
    let cut = call_all(node, ranks, Request::TruncateChunks { ino: attr.ino, len }).await;
    node.meta.borrow_mut().unlock_cut(path, attr.ino);
    cut.map(drop)
}

/// Whether the unlink of `path` here can be served without waiting: the file exists, and its
/// data here (if this rank removes it, see `Node::unlink_removes_data`) has no live read
/// mapping. Anything else (a missing record included) goes through a task.
fn unlinks_now(node: &Node, path: &[u8]) -> bool {
    let Ok(record) = node.meta.borrow().stat(path) else { return false };
    let attr = record.attr;
    !node.unlink_removes_data(&attr, node.rank) || node.chunk_store().is_some_and(|store| !store.is_pinned(InodeId(attr.ino)))
}

/// `unlink` of `path` here, when its data here has no live read mapping (see [`unlinks_now`]).
fn unlink_here(node: &Node, path: &[u8]) -> Result<ReplyBody> {
    let attr = node.meta.borrow_mut().unlink(path)?;
    if node.unlink_removes_data(&attr, node.rank) {
        remove_unpinned_chunks(node, attr.ino)?;
    }
    Ok(ReplyBody::Attr(attr))
}

/// The reply to a registration or publication served in place, which reached its file where
/// it was sent (see [`serve_now`]).
fn published_here(outcome: Result<Published>) -> Result<ReplyBody> {
    match outcome? {
        Published::Done(attr) => Ok(ReplyBody::Attr(attr)),
        Published::Moved(_) | Published::Cut { .. } => Err(Error::Internal("a writer's update served in place must go on elsewhere")),
    }
}

/// `mkdir` of `path` here, once the rank is enlisted in its parent.
fn mkdir_here(node: &Node, path: &[u8], mode: u32, uid: u32, gid: u32) -> Result<ReplyBody> {
    Ok(ReplyBody::Attr(node.meta.borrow_mut().mkdir(path, mode, uid, gid)?))
}

async fn execute(node: &Node, request: Request, payload: Payload) -> (Result<ReplyBody>, SendBuf) {
    match request {
        Request::Read { ino, offset, len } => match read_for_remote(node, ino, offset, len).await {
            Ok(data) => (Ok(ReplyBody::Count(data.len() as u64)), data),
            Err(e) => (Err(e), SendBuf::None),
        },
        Request::Write { ino, offset, len } => (write_from_remote(node, ino, offset, len, payload).await, SendBuf::None),
        Request::List { path, after, max } => match list(node, &path, &after, max) {
            Ok(entries) => (Ok(ReplyBody::Count(entries.len() as u64)), SendBuf::Owned(wire::encode_entries(&entries))),
            Err(e) => (Err(e), SendBuf::None),
        },
        Request::InstallMany { count } => (install_many(node, count, payload).await, SendBuf::None),
        Request::Unregister { count } => (unregister_many(node, count, payload).await, SendBuf::None),
        Request::PublishMany { count } => (publish_many(node, count, payload).await, SendBuf::None),
        Request::Holders { path } => match holders(node, &path) {
            Ok((attr, ranks)) => (Ok(ReplyBody::Attr(attr)), SendBuf::Owned(ranks.iter().flat_map(|r| r.to_le_bytes()).collect())),
            Err(e) => (Err(e), SendBuf::None),
        },
        other => (execute_local(node, &other).await, SendBuf::None),
    }
}

/// Runs a request without payloads on `rank`: in place through the handlers when that is this
/// rank, else through the transport.
pub async fn run_on(node: &Node, rank: Rank, request: &Request) -> Result<ReplyBody> {
    if rank == node.rank {
        return execute_local(node, request).await;
    }
    // SAFETY: no raw memory is involved; the call is awaited here.
    let (reply, _) = unsafe { node.transport.call(rank, request, SendBuf::None, None) }.await?;
    Ok(reply.body)
}

/// Most calls of one [`call_all`] in flight at once: a rank that asks every other (statvfs, a
/// tree rename's fences) keeps a bounded number of requests out, whatever the job's size.
pub(super) const FAN_OUT: usize = 64;

/// The same request to each of `ranks`, [`FAN_OUT`] at a time; the replies in order.
pub async fn call_all(node: &Node, ranks: impl IntoIterator<Item = Rank>, request: Request) -> Result<Vec<ReplyBody>> {
    let calls = ranks.into_iter().map(|rank| run_on(node, rank, &request));
    crate::join::join_window(calls.collect(), FAN_OUT).await.into_iter().collect()
}

/// The same request to every rank, all at once.
pub async fn broadcast(node: &Node, request: Request) -> Result<Vec<ReplyBody>> {
    call_all(node, (0..node.nranks).map(Rank), request).await
}

/// Most entries one listing page may carry.
pub const MAX_LIST_PAGE: u32 = 1024;

/// The ranks that hold entries of directory `path`, which this rank owns.
pub fn holders(node: &Node, path: &[u8]) -> Result<(Attr, Vec<u32>)> {
    node.check_meta_path(path)?;
    node.meta.borrow().holders_of(path)
}

/// A page of this rank's entries of directory `path`.
pub fn list(node: &Node, path: &[u8], after: &[u8], max: u32) -> Result<Vec<wire::DirEntry>> {
    crate::path::check_normal(path)?;
    if max == 0 || max > MAX_LIST_PAGE {
        return Err(Error::InvalidArgument("listing page size out of range"));
    }
    Ok(node.meta.borrow().list(path, after, max as usize))
}

/// The payload of a request that carries `count` entries of at most `entry_len` bytes each, and
/// at most `max` entries: refused before anything is allocated when it is longer than that
/// allows (the sender's length is not trusted; dropping the payload releases it unreceived).
async fn batch_bytes(payload: Payload, count: u32, max: u32, entry_len: usize) -> Result<Vec<u8>> {
    if count > max {
        return Err(Error::InvalidArgument("more entries than one message may carry"));
    }
    Ok(match payload {
        Payload::Bytes(bytes) => bytes,
        Payload::Rndv(rndv) if rndv.len() > count as usize * entry_len => {
            return Err(Error::InvalidArgument("payload longer than its count allows"));
        }
        Payload::Rndv(rndv) => {
            let mut buf = vec![0u8; rndv.len()];
            // SAFETY: buf lives until the receive completes (awaited here).
            unsafe { rndv.recv_into(buf.as_mut_ptr(), None) }.await?;
            buf
        }
        Payload::None => Vec::new(),
    })
}

/// Every path of a batch must be owned here.
fn check_paths<'a, T: 'a>(node: &Node, entries: impl IntoIterator<Item = &'a (Vec<u8>, T)>) -> Result<()> {
    entries.into_iter().try_for_each(|(path, _)| node.check_meta_path(path))
}

async fn install_many(node: &Node, count: u32, payload: Payload) -> Result<ReplyBody> {
    let bytes = batch_bytes(payload, count, wire::MAX_MOVED_RECORDS, wire::MAX_RECORD_LEN).await?;
    let records = wire::decode_records(&bytes, count)?;
    check_paths(node, &records)?;
    install_records(node, records);
    Ok(ReplyBody::Count(count as u64))
}

/// Releases writers that never wrote (see `rpc::unregisters`), owned here or forwarded to where
/// their files were renamed. A file removed since is skipped: it has no writers to release.
async fn unregister_many(node: &Node, count: u32, payload: Payload) -> Result<ReplyBody> {
    let bytes = batch_bytes(payload, count, wire::MAX_UNREGISTERED, wire::MAX_UNREGISTER_LEN).await?;
    let entries = wire::decode_unregisters(&bytes, count)?;
    check_paths(node, &entries)?;
    let moved = super::unregisters::release_here(node, entries);
    super::unregisters::send(node, moved).await?;
    Ok(ReplyBody::Empty)
}

/// Publishes and releases writers that closed with their writes in their files' first chunks
/// (see `rpc::unregisters`), owned here.
async fn publish_many(node: &Node, count: u32, payload: Payload) -> Result<ReplyBody> {
    let bytes = batch_bytes(payload, count, wire::MAX_PUBLISHED, wire::MAX_PUBLISHED_LEN).await?;
    let entries = wire::decode_closed(&bytes, count)?;
    entries.iter().try_for_each(|c| node.check_meta_path(&c.path))?;
    publish_all(node, entries).await?;
    Ok(ReplyBody::Empty)
}

/// Publishes and releases each of `entries`, whose records are owned here, as a `Publish` with
/// `release` would (forwarded where its file was renamed). A file removed since is skipped: it
/// has nothing to publish to. Fails with the first other error, once every entry was tried.
pub async fn publish_all(node: &Node, entries: Vec<Closed>) -> Result<()> {
    let mut failed = Ok(());
    for c in entries {
        let request = Request::Publish { path: c.path, ino: c.ino, size: c.end, cuts: c.cuts, release: true };
        // Again while a rename or a cut holds the record.
        match Box::pin(entries::run_unlocked(node, node.rank, &request)).await {
            Err(e) if e.errno() != libc::ENOENT => failed = failed.and(Err(e)),
            _ => {}
        }
    }
    failed
}

/// Inserts records that a directory rename moved to this rank.
fn install_records(node: &Node, records: Vec<(Vec<u8>, Attr)>) {
    let mut meta = node.meta.borrow_mut();
    for (path, attr) in records {
        meta.install_moved(&path, Record { attr, locked: false });
    }
}

/// Moves this rank's records below `from` to the same place below `to`, sending each to its
/// new owner.
async fn move_tree(node: &Node, from: &[u8], to: &[u8]) -> Result<ReplyBody> {
    for p in [from, to] {
        crate::path::check_normal(p)?;
    }
    if from == b"/" || crate::path::is_below(to, from) {
        return Err(Error::InvalidArgument("cannot move a directory into itself"));
    }
    // The caller checked the lengths over all ranks; a create that raced with that check, or
    // a forged request, must still not make a path longer than any caller could name.
    if to.len() + node.meta.borrow().span_below(from) > crate::path::MAX_PATH {
        return Err(Error::NameTooLong);
    }
    let moved = node.meta.borrow_mut().take_subtree(from);
    let count = moved.len() as u64;
    let mut by_owner: std::collections::BTreeMap<Rank, Vec<(Vec<u8>, Attr)>> = Default::default();
    for (path, record) in moved {
        // No forwarding notes: every descriptor below the tree follows it at the move's end
        // (`MoveEnd`), and none is used while the tree is fenced.
        let new_path = crate::path::rebase(&path, from, to);
        by_owner.entry(node.ring.meta_owner(&new_path)).or_default().push((new_path, record.attr));
    }
    let sends = by_owner.into_iter().map(|(owner, records)| async move {
        if owner == node.rank {
            install_records(node, records);
            return Ok(());
        }
        // Each owner gets its records in messages of a bounded size, one after another.
        for batch in records.chunks(wire::MAX_MOVED_RECORDS as usize) {
            let request = Request::InstallMany { count: batch.len() as u32 };
            let payload = SendBuf::Owned(wire::encode_records(batch));
            // SAFETY: the payload is owned by the send; no reply payload is accepted.
            unsafe { node.transport.call(owner, &request, payload, None) }.await?;
        }
        Ok(())
    });
    let results = crate::join::join_all(sends.collect()).await;
    results.into_iter().collect::<Result<()>>()?;
    Ok(ReplyBody::Count(count))
}

fn fs_usage(node: &Node) -> Result<FsUsage> {
    let dir = std::ffi::CString::new(node.data_dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidArgument("data directory contains a NUL byte"))?;
    // SAFETY: statvfs is plain old data; all-zero is valid and it is filled by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: dir is NUL-terminated and st is valid for writes.
    if unsafe { libc::statvfs(dir.as_ptr(), &mut st) } != 0 {
        return Err(crate::error::StorageError::Io(std::io::Error::last_os_error()).into());
    }
    let frsize = st.f_frsize.max(1);
    let mut host = [0u8; 256];
    // SAFETY: host is valid for writes of its length; the result is NUL-terminated or truncated.
    unsafe { libc::gethostname(host.as_mut_ptr() as *mut libc::c_char, host.len()) };
    let mut id_bytes = host.to_vec();
    id_bytes.extend_from_slice(&(st.f_fsid as u64).to_le_bytes());
    Ok(FsUsage {
        fs_id: xxhash_rust::xxh64::xxh64(&id_bytes, 0),
        total_bytes: st.f_blocks * frsize,
        free_bytes: st.f_bfree * frsize,
        avail_bytes: st.f_bavail * frsize,
        total_files: st.f_files,
        free_files: st.f_ffree,
        records: node.meta.borrow().len() as u64,
    })
}

/// Metadata and chunk-maintenance operations: the same code serves remote and local callers.
/// A request routed by a path (the wire table says which) is served only if that path is
/// normalised and owned here.
pub async fn execute_local(node: &Node, request: &Request) -> Result<ReplyBody> {
    let result = execute_local_unshared(node, request).await;
    node.meta.borrow_mut().catch_up_shared();
    result
}

/// [`execute_local`], leaving new records out of the shared table for now.
async fn execute_local_unshared(node: &Node, request: &Request) -> Result<ReplyBody> {
    if let Some(path) = request.routing_path() {
        node.check_meta_path(path)?;
    }
    match *request {
        Request::Unlink { ref path } => {
            // The table borrow ends with the statement: the removal below awaits.
            let attr = node.meta.borrow_mut().unlink(path)?;
            if node.unlink_removes_data(&attr, node.rank) {
                remove_chunks_here(node, attr.ino).await?;
            }
            Ok(ReplyBody::Attr(attr))
        }
        // Boxed, as the other rare requests with large futures below: the future of every
        // request served here is as large as its largest arm.
        Request::Publish { ref path, ino, size, cuts, release } => Box::pin(publish(node, path.clone(), ino, size, cuts, release)).await,
        Request::Register { ref path, ino } => {
            // The table borrow ends with the statement: the forward may be served here again.
            let outcome = node.meta.borrow_mut().register(path, ino)?;
            match outcome {
                Published::Done(attr) => Ok(ReplyBody::Attr(attr)),
                Published::Moved(to) => {
                    let owner = node.ring.meta_owner(&to);
                    Box::pin(run_on(node, owner, &Request::Register { path: to, ino })).await
                }
                Published::Cut { .. } => Err(Error::Internal("a registration is never cut")),
            }
        }
        Request::Truncate { ref path, ino, len } => {
            // The table borrow ends with the statement: the forward may be served here again.
            let outcome = node.meta.borrow_mut().truncate(path, ino, len)?;
            match outcome {
                Truncated::Done { attr, old_size } => {
                    Box::pin(cut_chunks(node, path, &attr, old_size, len)).await?;
                    Ok(ReplyBody::Sized { attr, old_size })
                }
                Truncated::Moved(to) => {
                    let owner = node.ring.meta_owner(&to);
                    Box::pin(run_on(node, owner, &Request::Truncate { path: to, ino, len })).await
                }
            }
        }
        Request::Open { ref path, flags, mode, uid, gid, ino } => {
            if creates(node, path, flags) {
                entries::enlisted(node, path).await?;
            }
            let opened = open_here(node, path, flags, mode, uid, gid, ino)?;
            if let ReplyBody::Opened { attr, old_size, created: false } = opened {
                if cutting(flags) {
                    Box::pin(cut_chunks(node, path, &attr, old_size, 0)).await?;
                }
            }
            Ok(opened)
        }
        Request::Mkdir { ref path, mode, uid, gid } => {
            entries::enlisted(node, path).await?;
            mkdir_here(node, path, mode, uid, gid)
        }
        Request::Rmdir { ref path } => Ok(ReplyBody::Attr(entries::remove_dir(node, path).await?)),
        Request::Install { ref path, attr } => Ok(ReplyBody::Replaced(Box::pin(entries::install(node, path, attr)).await?)),
        Request::Drain { .. } => serve_record(node, request),
        Request::ChunkExtent { ino } => Ok(ReplyBody::Count(node.store()?.extent(InodeId(ino))?)),
        Request::MoveTree { ref from, ref to } => Box::pin(move_tree(node, from, to)).await,
        Request::MoveBegin { mover, ref from, ref to } => {
            for p in [from, to] {
                crate::path::check_normal(p)?;
            }
            node.fences.begin(mover, from, to).await?;
            Ok(ReplyBody::Count(node.meta.borrow().span_below(from) as u64))
        }
        Request::MoveEnd { mover, moved } => {
            if let Some((from, to)) = node.fences.end(mover, moved) {
                node.meta.borrow_mut().tree_moved(&from, &to);
            }
            Ok(ReplyBody::Empty)
        }
        Request::StatFs => Ok(ReplyBody::FsUsage(fs_usage(node)?)),
        Request::Ping => Ok(ReplyBody::Empty),
        Request::TruncateChunks { ino, len } => {
            let store = node.store()?;
            store.unpinned(InodeId(ino)).await;
            cut_unpinned_chunks(node, ino, len).map(|()| ReplyBody::Empty)
        }
        Request::RemoveChunks { ino } => remove_chunks_here(node, ino).await.map(|()| ReplyBody::Empty),
        Request::Fsync { ino } => {
            node.store()?.fsync(InodeId(ino)).await?;
            Ok(ReplyBody::Empty)
        }
        Request::Read { .. }
        | Request::Write { .. }
        | Request::List { .. }
        | Request::InstallMany { .. }
        | Request::Holders { .. }
        | Request::Unregister { .. }
        | Request::PublishMany { .. } => Err(Error::Internal("request needs a payload path")),
        _ => serve_record(node, request),
    }
}

/// Removes this rank's data of the unlinked file `ino` once no mapping pins it, and closes the
/// cached descriptors of its same-node chunk files.
async fn remove_chunks_here(node: &Node, ino: u64) -> Result<()> {
    node.store()?.unpinned(InodeId(ino)).await;
    remove_unpinned_chunks(node, ino)
}

/// Cuts the data of the file `ino` here, which no read mapping pins, to `len` bytes.
fn cut_unpinned_chunks(node: &Node, ino: u64, len: u64) -> Result<()> {
    Ok(node.store()?.truncate(InodeId(ino), len)?)
}

/// Removes the data of the file `ino` here, which no read mapping pins.
fn remove_unpinned_chunks(node: &Node, ino: u64) -> Result<()> {
    node.peers.forget(InodeId(ino));
    Ok(node.store()?.remove(InodeId(ino))?)
}

/// Cuts that may land while a cut writer's extent is being measured, before it gives up.
const PUBLISH_TRIES: usize = 4;

/// A writer's size, published to the record at `path` (which must be owned here). A writer that
/// missed a cut of the file may count bytes that were cut: then only what the chunk owners
/// still hold, up to its size, is published, so a cut size never comes back.
async fn publish(node: &Node, path: Vec<u8>, ino: u64, mut size: u64, mut cuts: u64, release: bool) -> Result<ReplyBody> {
    for _ in 0..PUBLISH_TRIES {
        // The table borrow ends with the statement: what follows may be served by this rank.
        let outcome = node.meta.borrow_mut().publish(&path, ino, size, cuts, release)?;
        match outcome {
            Published::Done(attr) => return Ok(ReplyBody::Attr(attr)),
            // Renamed while its writer had it open: the record lives at `to` now.
            Published::Moved(to) => {
                let owner = node.ring.meta_owner(&to);
                return Box::pin(run_on(node, owner, &Request::Publish { path: to, ino, size, cuts, release })).await;
            }
            Published::Cut { cuts: now } => {
                size = size.min(chunk_extent(node, ino).await?);
                cuts = now;
            }
        }
    }
    tracing::debug!(path = %crate::path::show(&path), ino, "file cut again and again while its size was published; nothing published");
    // Size 0 raises nothing; the writer still closes.
    match node.meta.borrow_mut().publish(&path, ino, 0, u64::MAX, release)? {
        Published::Done(attr) => Ok(ReplyBody::Attr(attr)),
        _ => Err(Error::NotFound),
    }
}

/// How far the data of `ino` reaches, over every rank's chunk file.
async fn chunk_extent(node: &Node, ino: u64) -> Result<u64> {
    let replies = broadcast(node, Request::ChunkExtent { ino }).await?;
    replies.into_iter().try_fold(0, |extent, reply| match reply {
        ReplyBody::Count(len) => Ok(extent.max(len)),
        _ => Err(Error::Internal("chunk extent reply without a count")),
    })
}

/// The requests that read or change one metadata record, at a path already checked.
fn serve_record(node: &Node, request: &Request) -> Result<ReplyBody> {
    let mut meta = node.meta.borrow_mut();
    match *request {
        Request::Stat { ref path } => Ok(ReplyBody::Attr(meta.stat(path)?.attr)),
        Request::Touch { ref path } => meta.touch(path).map(|()| ReplyBody::Empty),
        Request::Enlist { rank, ref path } => meta.enlist(path, rank).map(|()| ReplyBody::Empty),
        Request::Take { tree, ref path, ref to } => {
            crate::path::check_normal(to)?;
            Ok(ReplyBody::Attr(meta.take(path, tree)?.attr))
        }
        Request::Release { ref path, ino, ref to } => {
            let to = (!to.is_empty()).then_some(to);
            if let Some(to) = to {
                crate::path::check_normal(to)?;
            }
            meta.release(path, ino, to.map(|t| t.as_slice())).map(|()| ReplyBody::Empty)
        }
        Request::Drain { ref path } => {
            crate::path::check_normal(path)?;
            meta.drain(path).map(|()| ReplyBody::Empty)
        }
        _ => Err(Error::Internal("not a record request")),
    }
}

async fn write_from_remote(node: &Node, ino: u64, offset: u64, len: u64, payload: Payload) -> Result<ReplyBody> {
    node.check_chunk_range(ino, offset, len)?;
    // Held until the data is in the chunk file (see `credit`).
    let _credit = node.incoming.take(len).await;
    let data = match payload {
        Payload::Bytes(bytes) => bytes,
        // Refused before anything is allocated: the sender's length is not trusted.
        Payload::Rndv(rndv) if rndv.len() as u64 != len => return Err(Error::InvalidArgument("payload length differs from the request")),
        Payload::Rndv(rndv) => {
            let n = rndv.len();
            let mut buf = Vec::with_capacity(n);
            // SAFETY: buf has capacity n and lives until the receive completes (awaited here).
            unsafe { rndv.recv_into(buf.as_mut_ptr(), None) }.await?;
            // SAFETY: the completed receive wrote all n bytes.
            unsafe { buf.set_len(n) };
            buf
        }
        Payload::None => Vec::new(),
    };
    if data.len() as u64 != len {
        return Err(Error::InvalidArgument("payload length differs from the request"));
    }
    let written = node.store()?.write(InodeId(ino), offset, IoBuf::Owned(data)).await?;
    Ok(ReplyBody::Count(written as u64))
}

/// The data of a remote read. A rendezvous-sized reply is sent straight from a mapping of the
/// chunk file, so the reader copies it once, out of the page cache; a small one is read into a
/// buffer and sent eagerly.
async fn read_for_remote(node: &Node, ino: u64, offset: u64, len: u64) -> Result<SendBuf> {
    node.check_chunk_range(ino, offset, len)?;
    if node.transport.is_rendezvous(len as usize) {
        return Ok(match node.store()?.map_range(InodeId(ino), offset, len as usize)? {
            // A short mapping may fall under the threshold; it still goes out as mapped memory.
            Some(map) => SendBuf::Guarded { ptr: map.as_ptr(), len: map.len(), _guard: Box::new(map) },
            None => SendBuf::None,
        });
    }
    let mut data: Vec<u8> = Vec::with_capacity(len as usize);
    // SAFETY: the spare capacity of `data` is valid for len bytes of writes and outlives the
    // awaited read. A serving task is only dropped mid-read at shutdown, which starts after every
    // rank has received every reply it asked for, so no read is in flight then.
    let buf = unsafe { IoBuf::from_raw(data.as_mut_ptr(), len as usize) };
    let (n, _) = node.store()?.read(InodeId(ino), offset, buf).await?;
    // SAFETY: the read initialised the first n <= len bytes.
    unsafe { data.set_len(n) };
    Ok(SendBuf::Owned(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(ino: u64) -> Request {
        Request::Open { path: b"/f".to_vec(), flags: (libc::O_CREAT | libc::O_WRONLY) as u32, mode: 0o644, uid: 1, gid: 1, ino }
    }

    /// A proposed inode number must be one its sender made; none (0) is always fine.
    #[test]
    fn a_proposed_inode_number_must_be_the_senders() {
        let from =
            |source: u32| wire::Envelope { opcode: wire::Opcode::Open as u16, source, request_id: 1, credential: Default::default() };
        let made_by = |rank: u32, n: u64| InodeId::made_by(Rank(rank), n).0;
        assert!(check_proposed_ino(&from(3), open(0)).is_ok());
        assert!(check_proposed_ino(&from(3), open(made_by(3, 1))).is_ok());
        for (source, ino) in [(3, made_by(2, 1)), (3, made_by(3, 0)), (3, 5), (wire::EXTERNAL_SOURCE, made_by(3, 1))] {
            let refused = check_proposed_ino(&from(source), open(ino));
            assert!(matches!(refused, Err(Error::InvalidArgument(_))), "source {source}, ino {ino:#x}");
        }
        assert!(check_proposed_ino(&from(3), Request::Stat { path: b"/f".to_vec() }).is_ok(), "other requests pass");
    }
}
