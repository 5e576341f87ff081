//! The namespace: files and directories as records on the metadata owner of each path.
//!
//! A create or a remove is one request to the entry's owner (which enlists in the parent
//! directory the first time it holds an entry there); the parent's times are stamped after the
//! change, several changes at once (`rpc::stamps`). A rename locks the record at the old name's
//! owner, installs it at the new name's and then removes the original, undoing the lock if the
//! install fails.

use std::rc::Rc;

use super::files::{OpenFile, MAX_FILE_SIZE};
use super::Client;
use crate::error::{Error, Result};
use crate::ids::InodeId;
use crate::ids::Rank;
use crate::path::{is_below, show, Spelled, MAX_PATH};
use crate::rpc::client::{self as stub, attr_of, broadcast, call_all, meta_call};
use crate::rpc::wire::{ReplyBody, Request};
use crate::rpc::{entry_changed, Attr, Node};

/// The ranks that may hold data of the file `attr` (as its owner replied to its removal)
/// within its first `reach` bytes, or beyond: every rank while writers that have not closed yet
/// may have put data anywhere (`Attr::writers`, less those this rank has released and so knows
/// where they wrote); otherwise the owners of the chunks below `reach`, which every closed
/// writer's published size covers, or the farthest write of this rank's released writers.
fn holders(node: &Node, attr: &Attr, reach: u64) -> Vec<Rank> {
    let (released, released_reach) = node.unregisters.pending(attr.ino);
    if attr.writers > released {
        (0..node.nranks).map(Rank).collect()
    } else {
        node.chunk_owners(attr.ino, reach.max(released_reach))
    }
}

/// Removes all data of the unlinked file `attr` from every rank that may hold some of it within
/// its first `reach` bytes or beyond; each of them also closes its cached descriptors of that
/// file's chunk files.
async fn remove_chunks(node: &Node, attr: &Attr, reach: u64) -> Result<()> {
    node.peers.forget(InodeId(attr.ino));
    call_all(node, holders(node, attr, reach), Request::RemoveChunks { ino: attr.ino }).await.map(drop)
}

/// Creates an entry (file or directory) on its owner, which enlists in the parent directory
/// first if it holds no entry there yet (the parent must exist and be a directory); the
/// parent's times are stamped afterwards if the entry is new (see `rpc::stamps`).
///
/// Invariant: a record exists only below a directory that knows its rank as a holder, so an
/// rmdir asks that rank before it may succeed (see `metadata::members`).
async fn create_entry(node: &Node, path: &[u8], request: Request) -> Result<ReplyBody> {
    let made = meta_call(node, request).await?;
    if !matches!(made, ReplyBody::Opened { created: false, .. }) {
        entry_changed(node, path);
    }
    Ok(made)
}

/// Removes an entry (an rmdir asks the directory's holders first) on its owner; the parent's
/// times are stamped afterwards.
async fn remove_entry(node: &Node, path: &[u8], request: Request) -> Result<ReplyBody> {
    let removed = meta_call(node, request).await?;
    entry_changed(node, path);
    Ok(removed)
}

/// What `stat` reports about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The inode number, unique in the file system.
    pub ino: u64,
    /// Size in bytes, including this rank's own unpublished writes.
    pub size: u64,
    /// File type and permission bits, as `st_mode`.
    pub mode: u32,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The chunk size.
    pub blksize: u64,
    /// Last access, nanoseconds since the epoch.
    pub atime_ns: i64,
    /// Last data change, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Last status change, nanoseconds since the epoch.
    pub ctime_ns: i64,
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

/// True for a directory's attributes.
pub fn is_dir(attr: &Attr) -> bool {
    attr.mode & libc::S_IFMT == libc::S_IFDIR
}

/// Checks what a path's spelling demands (see [`Spelled`]): every directory a `..` stepped out
/// of exists and is a directory, and a path spelled as a directory is one where it exists.
/// A plain spelling demands nothing and sends no request.
pub async fn check_spelling(node: &Node, spelled: &Spelled) -> Result<()> {
    for dir in &spelled.walked {
        if !is_dir(&stub::stat(node, dir).await?) {
            return Err(Error::NotDirectory);
        }
    }
    if spelled.dir_only {
        match stub::stat(node, &spelled.path).await {
            Ok(attr) if !is_dir(&attr) => return Err(Error::NotDirectory),
            Err(e) if e.errno() != libc::ENOENT => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The real user and group ids, which `access` checks against.
fn real_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

pub async fn open(client: Rc<Client>, path: Vec<u8>, flags: i32, mode: u32) -> Result<i32> {
    let node = &client.node;
    let (uid, gid) = client.creator;
    let request = |ino| Request::Open { path: path.clone(), flags: flags as u32, mode, uid, gid, ino };
    let reply = if let Some(found) = stub::open_now(node, &path, flags) {
        found?
    } else {
        let reply = open_at_owner(node, &path, flags, request).await?;
        stub::opened_with_closed_writes(node, reply, flags).await?
    };
    new_descriptor(&client, path, flags, reply)
}

/// The owner's reply to `open` of `path` with `flags` (`request` makes the request with the
/// inode number a create proposes).
async fn open_at_owner(node: &Node, path: &[u8], flags: i32, request: impl Fn(u64) -> Request) -> Result<ReplyBody> {
    Ok(if flags & libc::O_CREAT != 0 && path != b"/" {
        // A file this creates gets an inode number of this rank's, so that its first chunk is
        // this rank's (see `Ring::chunk_owner`): a small file's data is written where it was
        // created, without a request, wherever its record lives. An attached client stores
        // nothing and leaves the number to the owner.
        let ino = match node.chunk_store() {
            Some(store) => {
                let ino = node.meta.borrow_mut().reserve_ino();
                // Its first chunk is packed from the start (see `storage::small`): no other
                // rank can write it before this.
                store.pack(InodeId(ino));
                ino
            }
            None => 0,
        };
        let made = create_entry(node, path, request(ino)).await;
        let used = matches!(&made, Ok(ReplyBody::Opened { attr, created: true, .. }) if attr.ino == ino);
        if ino != 0 && !used {
            node.store()?.discard(InodeId(ino))?;
        }
        made?
    } else {
        meta_call(node, request(0)).await?
    })
}

/// [`open`] of `spelled` within the call (see [`stat_now`]): an open that makes and cuts nothing
/// of a path whose record `stub::open_now` has at hand. `None` otherwise: the caller takes
/// [`open`]'s way.
pub fn open_now(client: &Client, spelled: &Spelled, flags: i32) -> Option<Result<i32>> {
    if !answers_now(&client.node, spelled) {
        return None;
    }
    let reply = stub::open_now(&client.node, &spelled.path, flags)?;
    Some(reply.and_then(|reply| new_descriptor(client, spelled.path.clone(), flags, reply)))
}

/// The descriptor of `path` opened with `flags`, as the owner's `reply` describes the file.
fn new_descriptor(client: &Client, path: Vec<u8>, flags: i32, reply: ReplyBody) -> Result<i32> {
    let ReplyBody::Opened { attr, created, .. } = reply else {
        return Err(Error::Internal("open reply without attributes"));
    };
    // A create for writing counted this descriptor among the file's writers (`MetaTable::open`).
    let registered = created && flags & libc::O_ACCMODE != libc::O_RDONLY;
    let file =
        OpenFile { path, flags, attr, pos: 0, size: attr.size, dirty_end: None, written_owners: Vec::new(), registered, wrote: false };
    client.files.borrow_mut().insert(file)
}

/// Whether a call on `spelled` may be answered within the call, as far as its path goes: no
/// directory rename holds the path back (nothing can raise a fence while such a call runs, so
/// it need not register with the gate), and its spelling needs no other path checked.
fn answers_now(node: &Node, spelled: &Spelled) -> bool {
    spelled.walked.is_empty() && !spelled.dir_only && !node.fences.holds_back(&[&spelled.path], false)
}

pub async fn stat(client: Rc<Client>, path: Vec<u8>) -> Result<FileStat> {
    let attr = stub::stat(&client.node, &path).await?;
    Ok(stat_of(&client, &attr))
}

/// [`stat`] of `spelled` within the call, when nothing needs waiting for: its path allows it
/// (see [`answers_now`]) and `stub::stat_now` answers without a request. `None` otherwise: the
/// caller takes [`stat`]'s way.
pub fn stat_now(client: &Client, spelled: &Spelled) -> Option<Result<FileStat>> {
    Some(attr_now(&client.node, spelled)?.map(|attr| stat_of(client, &attr)))
}

/// The attributes a stat of `spelled` finds within the call: `stub::stat_now`'s answer when
/// the path allows one (see [`answers_now`]), else `None`.
fn attr_now(node: &Node, spelled: &Spelled) -> Option<Result<Attr>> {
    if !answers_now(node, spelled) {
        return None;
    }
    stub::stat_now(node, &spelled.path)
}

/// What `stat` says of the file `attr`, with the size this rank's open descriptors know of.
fn stat_of(client: &Client, attr: &Attr) -> FileStat {
    let size = client.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    file_stat(&client.node, attr, size)
}

/// [`fstat`] within the call, when `stub::stat_now` answers for the descriptor's path (or the
/// descriptor is bad); `None` otherwise.
pub fn fstat_now(client: &Client, fd: i32) -> Option<Result<FileStat>> {
    let files = client.files.borrow();
    let file = match files.get(fd) {
        Ok(file) => file,
        Err(e) => return Some(Err(e)),
    };
    Some(described(stub::stat_now(&client.node, &file.path)?, file.attr).map(|attr| stat_of(client, &attr)))
}

pub async fn fstat(client: Rc<Client>, fd: i32) -> Result<FileStat> {
    let node = &client.node;
    let (path, cached) = {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr)
    };
    let attr = described(stub::stat(node, &path).await, cached)?;
    Ok(stat_of(&client, &attr))
}

/// What a descriptor opened on the file `cached` describes, given what a stat of its path
/// `found`: that file, or, once it was removed or renamed away (another file at the path, or
/// none), still its own file as it opened it.
fn described(found: Result<Attr>, cached: Attr) -> Result<Attr> {
    match found {
        Ok(attr) if attr.ino == cached.ino => Ok(attr),
        Ok(_) => Ok(cached),
        Err(e) if e.errno() == libc::ENOENT => Ok(cached),
        Err(e) => Err(e),
    }
}

pub async fn unlink(client: Rc<Client>, path: Vec<u8>) -> Result<()> {
    let node = &client.node;
    let attr = attr_of(remove_entry(node, &path, Request::Unlink { path: path.clone() }).await?)?;
    if node.unlink_removes_data(&attr, node.ring.meta_owner(&path)) {
        node.peers.forget(InodeId(attr.ino));
        return Ok(());
    }
    let size = client.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    remove_chunks(node, &attr, size).await
}

pub async fn mkdir(client: Rc<Client>, path: Vec<u8>, mode: u32) -> Result<()> {
    let node = &client.node;
    if path == b"/" {
        return Err(Error::Exists);
    }
    let (uid, gid) = client.creator;
    create_entry(node, &path, Request::Mkdir { path: path.clone(), mode, uid, gid }).await.map(drop)
}

pub async fn rmdir(client: Rc<Client>, path: Vec<u8>) -> Result<()> {
    let node = &client.node;
    if path == b"/" {
        return Err(Error::Busy);
    }
    remove_entry(node, &path, Request::Rmdir { path: path.clone() }).await.map(drop)
}

/// Cuts or extends the file at `path` (with `ino` other than 0, that file, which a descriptor
/// may know by an old name) to `len`: its owner cuts the record and the chunks before it answers
/// (see `rpc::server::cut_chunks`).
async fn truncate_file(client: &Client, path: &[u8], ino: u64, len: u64) -> Result<()> {
    let node = &client.node;
    if len > MAX_FILE_SIZE {
        return Err(Error::FileTooLarge);
    }
    let ReplyBody::Sized { attr, .. } = meta_call(node, Request::Truncate { path: path.to_vec(), ino, len }).await? else {
        return Err(Error::Internal("truncate reply without sizes"));
    };
    // This rank's descriptors of the file learn of the cut at once.
    for f in client.files.borrow_mut().of_inode(attr.ino) {
        f.size = len;
        f.dirty_end = f.dirty_end.map(|e| e.min(len));
        f.attr.cuts = attr.cuts;
    }
    Ok(())
}

pub async fn truncate(client: Rc<Client>, path: Vec<u8>, len: u64) -> Result<()> {
    truncate_file(&client, &path, 0, len).await
}

pub async fn ftruncate(client: Rc<Client>, fd: i32, len: u64) -> Result<()> {
    {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        if f.is_dir() || !f.writable() {
            return Err(Error::InvalidArgument("descriptor is not open for writing"));
        }
    }
    let (_pass, path) = enter_descriptor(&client, fd).await?;
    let ino = client.files.borrow().get(fd)?.attr.ino;
    truncate_file(&client, &path, ino, len).await
}

/// `rename(2)`: the record moves from the old name's owner to the new name's; a directory's
/// descendants move with it, each to the owner of its new path. File data never moves.
///
/// Steps: lock the source (`Take`: it stays, answering reads, while every change to it waits);
/// install a copy at the new name (whose owner enlists in the new parent, and first removes an
/// empty directory it replaces); remove the source (`Release`, leaving a note for its
/// writers). Until the install, a failure unlocks the source, so a rename never loses a record.
/// A directory's rename first fences both trees on every rank (see `rpc::fence`), so that no
/// operation runs inside them while their records move.
pub async fn rename(client: Rc<Client>, from: Vec<u8>, to: Vec<u8>) -> Result<()> {
    let node = &client.node;
    if from == b"/" || to == b"/" {
        return Err(Error::Busy);
    }
    if is_below(&to, &from) {
        // The source decides the error: missing (ENOENT), a file (ENOTDIR), or a directory
        // that cannot move into itself (EINVAL).
        let source = stub::stat(node, &from).await?;
        return Err(if is_dir(&source) {
            Error::InvalidArgument("cannot move a directory into its own subtree")
        } else {
            Error::NotDirectory
        });
    }
    if from == to {
        return stub::stat(node, &from).await.map(drop);
    }
    {
        let _pass = enter(node, &[&from, &to]).await;
        let attr = take(node, &from, &to, false).await?;
        // A directory comes back unlocked: it moves the tree's way.
        if !is_dir(&attr) {
            return move_record(&client, &from, &to, attr, &std::cell::Cell::new(false)).await;
        }
    }
    rename_tree(&client, &from, &to).await
}

/// How long a directory rename keeps trying while other renames of overlapping trees go first.
const TREE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The rename of directory `from`: fences both trees on every rank, checks that no path below
/// grows too long, moves the records and lifts the fences.
async fn rename_tree(client: &Client, from: &[u8], to: &[u8]) -> Result<()> {
    let node = &client.node;
    let mover = node.fences.new_id();
    let started = std::time::Instant::now();
    loop {
        let _pass = node.fences.enter(&[from, to], Some(mover)).await;
        let fenced = broadcast(node, Request::MoveBegin { mover, from: from.to_vec(), to: to.to_vec() }).await;
        let tree_moved = std::cell::Cell::new(false);
        let moved = match fenced.and_then(|spans| fits_below(to, &spans)) {
            Ok(()) => match take(node, from, to, true).await {
                Ok(attr) => move_record(client, from, to, attr, &tree_moved).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = broadcast(node, Request::MoveEnd { mover, moved: tree_moved.get() }).await {
            tracing::error!(from = %show(from), to = %show(to), error = %e, "could not lift a rename's fences");
        }
        match moved {
            // An older rename of an overlapping tree is in the way: it goes first.
            Err(e) if e.errno() == libc::EAGAIN && started.elapsed() < TREE_WAIT => {}
            Err(e) if e.errno() == libc::EAGAIN => return Err(Error::Busy),
            other => return other,
        }
    }
}

/// Refuses, before anything moves, a new name `to` that would make a path below the tree too
/// long; `spans` are the ranks' replies to `MoveBegin`.
fn fits_below(to: &[u8], spans: &[ReplyBody]) -> Result<()> {
    let longest = spans.iter().try_fold(0usize, |longest, body| match body {
        ReplyBody::Count(span) => Ok(longest.max(*span as usize)),
        _ => Err(Error::Internal("move-begin reply without a count")),
    })?;
    match to.len() + longest <= MAX_PATH {
        true => Ok(()),
        false => Err(Error::NameTooLong),
    }
}

/// Passes this rank's gate for an operation on `paths` (see `rpc::fence`): it waits while a
/// directory rename moves a tree holding one of them, and holds such renames off until dropped.
pub async fn enter<'a>(node: &'a Node, paths: &[&[u8]]) -> crate::rpc::fence::Pass<'a> {
    node.fences.enter(paths, None).await
}

/// Passes this rank's gate for an operation on the file open as `fd`, by the path it has once
/// through (a directory rename that moved it while it waited has changed it).
pub async fn enter_descriptor(client: &Client, fd: i32) -> Result<(crate::rpc::fence::Pass<'_>, Vec<u8>)> {
    let path = client.files.borrow().get(fd)?.path.clone();
    let pass = enter(&client.node, &[&path]).await;
    let files = client.files.borrow();
    let now = &files.get(fd)?.path;
    Ok((pass, if *now == path { path } else { now.clone() }))
}

/// The record at `from`, locked for its rename to `to` (a directory only with `tree`).
async fn take(node: &Node, from: &[u8], to: &[u8], tree: bool) -> Result<Attr> {
    attr_of(meta_call(node, Request::Take { tree, path: from.to_vec(), to: to.to_vec() }).await?)
}

/// The rest of a rename once its source is locked: install, release (then both parents' times
/// are stamped), then the tree below a directory (`tree_moved` is set once it moved) and the
/// descriptors of this rank.
async fn move_record(client: &Client, from: &[u8], to: &[u8], attr: Attr, tree_moved: &std::cell::Cell<bool>) -> Result<()> {
    let node = &client.node;
    let replaced = match meta_call(node, Request::Install { path: to.to_vec(), attr }).await {
        Ok(ReplyBody::Replaced(replaced)) => replaced,
        Ok(_) => return Err(Error::Internal("install reply without an outcome")),
        Err(e) => {
            untake(node, from, attr).await;
            return Err(e);
        }
    };
    // Installed: the source goes (it was locked since the take, so it is what was installed).
    meta_call(node, Request::Release { path: from.to_vec(), ino: attr.ino, to: to.to_vec() }).await?;
    entry_changed(node, from);
    entry_changed(node, to);
    if let Some(old) = replaced {
        if old.mode & libc::S_IFMT == libc::S_IFREG && old.ino != attr.ino {
            remove_chunks(node, &old, old.size).await?;
        }
    }
    if is_dir(&attr) {
        // Whatever the outcome, some records below may have moved: the descriptors follow.
        tree_moved.set(true);
        broadcast(node, Request::MoveTree { from: from.to_vec(), to: to.to_vec() }).await?;
    }
    for f in client.files.borrow_mut().of_inode(attr.ino) {
        f.path = to.to_vec();
    }
    Ok(())
}

/// The undo of a rename's `Take`: the record at `from`, which stayed there, is unlocked.
async fn untake(node: &Node, from: &[u8], attr: Attr) {
    if let Err(undo) = meta_call(node, Request::Release { path: from.to_vec(), ino: attr.ino, to: Vec::new() }).await {
        tracing::error!(path = %show(from), error = %undo, "could not unlock a record after a failed rename");
    }
}

pub async fn access(client: Rc<Client>, path: Vec<u8>, mode: i32) -> Result<()> {
    check_access_mode(mode)?;
    permits(&stub::stat(&client.node, &path).await?, mode)
}

/// [`access`] of `spelled` within the call, when its stat would be (see [`stat_now`]).
pub fn access_now(client: &Client, spelled: &Spelled, mode: i32) -> Option<Result<()>> {
    if let Err(e) = check_access_mode(mode) {
        return Some(Err(e));
    }
    Some(attr_now(&client.node, spelled)?.and_then(|attr| permits(&attr, mode)))
}

fn check_access_mode(mode: i32) -> Result<()> {
    if mode & !(libc::F_OK | libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return Err(Error::InvalidArgument("unknown access mode bits"));
    }
    Ok(())
}

/// Whether the real user and group may access the file `attr` as `mode` asks.
fn permits(attr: &Attr, mode: i32) -> Result<()> {
    let (uid, gid) = real_ids();
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
    /// Capacity of the ranks' data directories, each file system counted once.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks available to unprivileged users.
    pub bavail: u64,
    /// Files and directories in BenchFS plus those that can still be created.
    pub files: u64,
    /// Inodes free in the data directories' file systems.
    pub ffree: u64,
    /// Longest name of a path component.
    pub namemax: u64,
}

pub async fn statvfs(client: Rc<Client>, path: Vec<u8>) -> Result<FsStat> {
    let node = &client.node;
    stub::stat(node, &path).await?;
    let mut seen = std::collections::HashSet::new();
    let mut total = FsStat { bsize: 4096, namemax: crate::path::MAX_NAME as u64, ..FsStat::default() };
    let (mut bytes, mut free, mut avail) = (0u64, 0u64, 0u64);
    for body in broadcast(node, Request::StatFs).await? {
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
