//! The namespace: files and directories as records on the metadata owner of each path.
//!
//! The protocols take more than one step: a create is its parent's entry count, then the record;
//! a remove the reverse; a rename locks the record at the old name's owner, installs it at the
//! new name's and then removes the original. Each says below which step undoes which when a
//! later one fails.

use std::rc::Rc;

use super::files::{OpenFile, MAX_FILE_SIZE};
use super::Client;
use crate::error::{Error, Result};
use crate::ids::InodeId;
use crate::ids::Rank;
use crate::path::{is_below, show, Spelled, MAX_PATH};
use crate::rpc::client::{self as stub, attr_of, broadcast, call_all, meta_call};
use crate::rpc::wire::{ReplyBody, Request};
use crate::rpc::{Attr, Node};

/// The ranks that may hold data of the file `attr` (as its owner replied to a cut or removal)
/// within its first `reach` bytes, or beyond: every rank while writers that have not closed yet
/// may have put data anywhere (`Attr::writers`); otherwise the owners of the chunks below
/// `reach`, which every closed writer's published size covers.
fn holders(node: &Node, attr: &Attr, reach: u64) -> Vec<Rank> {
    if attr.writers > 0 {
        (0..node.nranks).map(Rank).collect()
    } else {
        node.chunk_owners(attr.ino, reach)
    }
}

/// Drops the data of the file `attr` beyond `len`, on every rank that may hold data of its
/// first `reach` bytes or beyond.
async fn truncate_chunks(node: &Node, attr: &Attr, reach: u64, len: u64) -> Result<()> {
    let ino = attr.ino;
    call_all(node, holders(node, attr, reach), Request::TruncateChunks { ino, len }).await.map(drop)
}

/// Removes all data of the unlinked file `attr` from every rank that may hold some of it within
/// its first `reach` bytes or beyond; each of them also closes its cached descriptors of that
/// file's chunk files.
async fn remove_chunks(node: &Node, attr: &Attr, reach: u64) -> Result<()> {
    node.peers.forget(InodeId(attr.ino));
    call_all(node, holders(node, attr, reach), Request::RemoveChunks { ino: attr.ino }).await.map(drop)
}

/// Adjusts the entry count (and with `touch` the mtime) of the directory holding `path`.
async fn link_parent(node: &Node, path: &[u8], delta: i64, touch: bool) -> Result<()> {
    let Some((parent, _)) = crate::path::split_parent(path) else { return Ok(()) };
    meta_call(node, Request::Link { path: parent.to_owned(), delta, touch }).await.map(drop)
}

/// Undoes a parent link after the operation it accompanied failed; a failure here leaves the
/// count one off, which is logged.
async fn unlink_parent_quietly(node: &Node, path: &[u8], delta: i64) {
    if let Err(e) = link_parent(node, path, delta, false).await {
        tracing::warn!(path = %show(path), error = %e, "could not undo a parent directory update");
    }
}

/// Creates an entry (file or directory) under its parent. The parent's entry count goes up
/// first, so the parent must exist and be a directory, and no rmdir can remove it while the
/// entry is made; then the entry is made. If that fails, or finds the entry already there, the
/// count is taken back.
///
/// Invariant: a record exists only below a directory that counts it. (Making both at once, with
/// undo steps for either half, left records that no directory counted when a create raced an
/// rmdir of its parent and someone opened the new entry in between.)
async fn create_entry(node: &Node, path: &[u8], request: Request) -> Result<ReplyBody> {
    link_parent(node, path, 1, true).await?;
    let made = meta_call(node, request).await;
    let created = matches!(&made, Ok(ReplyBody::Opened { created: true, .. } | ReplyBody::Attr(_)));
    if !created {
        unlink_parent_quietly(node, path, -1).await;
    }
    made
}

/// Removes an entry together with its parent's update; a failed removal restores the count.
async fn remove_entry(node: &Node, path: &[u8], request: Request) -> Result<ReplyBody> {
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

fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

pub async fn open(client: Rc<Client>, path: Vec<u8>, flags: i32, mode: u32) -> Result<i32> {
    let node = &client.node;
    let (uid, gid) = ids();
    let request = Request::Open { path: path.clone(), flags: flags as u32, mode, uid, gid };
    let reply = if flags & libc::O_CREAT != 0 && path != b"/" {
        create_entry(node, &path, request).await?
    } else {
        meta_call(node, request).await?
    };
    let ReplyBody::Opened { attr, created, old_size } = reply else {
        return Err(Error::Internal("open reply without attributes"));
    };
    let truncated = flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY;
    // An empty file may hold data too, while it has writers.
    if truncated && !created {
        truncate_chunks(node, &attr, old_size, 0).await?;
    }
    let file = OpenFile { path, flags, attr, pos: 0, size: attr.size, dirty_end: None, written_owners: Vec::new(), registered: false };
    client.files.borrow_mut().insert(file)
}

pub async fn stat(client: Rc<Client>, path: Vec<u8>) -> Result<FileStat> {
    let node = &client.node;
    let attr = stub::stat(node, &path).await?;
    let size = client.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(node, &attr, size))
}

pub async fn fstat(client: Rc<Client>, fd: i32) -> Result<FileStat> {
    let node = &client.node;
    let (path, cached) = {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        (f.path.clone(), f.attr)
    };
    let attr = match stub::stat(node, &path).await {
        Ok(attr) if attr.ino == cached.ino => attr,
        // Removed or renamed since it was opened: the descriptor still describes its file.
        Ok(_) => cached,
        Err(e) if e.errno() == libc::ENOENT => cached,
        Err(e) => return Err(e),
    };
    let size = client.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    Ok(file_stat(node, &attr, size))
}

pub async fn unlink(client: Rc<Client>, path: Vec<u8>) -> Result<()> {
    let node = &client.node;
    let attr = attr_of(remove_entry(node, &path, Request::Unlink { path: path.clone() }).await?)?;
    let size = client.files.borrow().local_size(attr.ino).map_or(attr.size, |s| s.max(attr.size));
    remove_chunks(node, &attr, size).await
}

pub async fn mkdir(client: Rc<Client>, path: Vec<u8>, mode: u32) -> Result<()> {
    let node = &client.node;
    if path == b"/" {
        return Err(Error::Exists);
    }
    let (uid, gid) = ids();
    create_entry(node, &path, Request::Mkdir { path: path.clone(), mode, uid, gid }).await.map(drop)
}

pub async fn rmdir(client: Rc<Client>, path: Vec<u8>) -> Result<()> {
    let node = &client.node;
    if path == b"/" {
        return Err(Error::Busy);
    }
    remove_entry(node, &path, Request::Rmdir { path: path.clone() }).await.map(drop)
}

/// Cuts or extends a file to `len`, freeing the cut chunks on their owners.
async fn truncate_path(client: &Client, path: &[u8], len: u64) -> Result<()> {
    let node = &client.node;
    if len > MAX_FILE_SIZE {
        return Err(Error::FileTooLarge);
    }
    let ReplyBody::Sized { attr, old_size } = meta_call(node, Request::Truncate { path: path.to_owned(), len }).await? else {
        return Err(Error::Internal("truncate reply without sizes"));
    };
    // This rank's descriptors of the file learn of the cut at once.
    let mut reach = old_size;
    for f in client.files.borrow_mut().of_inode(attr.ino) {
        reach = reach.max(f.dirty_end.unwrap_or(0)).max(f.size);
        f.size = len;
        f.dirty_end = f.dirty_end.map(|e| e.min(len));
        f.attr.cuts = attr.cuts;
    }
    truncate_chunks(node, &attr, reach, len).await
}

pub async fn truncate(client: Rc<Client>, path: Vec<u8>, len: u64) -> Result<()> {
    truncate_path(&client, &path, len).await
}

pub async fn ftruncate(client: Rc<Client>, fd: i32, len: u64) -> Result<()> {
    let path = {
        let files = client.files.borrow();
        let f = files.get(fd)?;
        if f.is_dir() || !f.writable() {
            return Err(Error::InvalidArgument("descriptor is not open for writing"));
        }
        f.path.clone()
    };
    truncate_path(&client, &path, len).await
}

/// `rename(2)`: the record moves from the old name's owner to the new name's; a directory's
/// descendants move with it, each to the owner of its new path. File data never moves.
///
/// Steps: count the entry in the new parent; lock the source (`Take`: it stays, answering
/// reads, while every change to it waits); install a copy at the new name; remove the source
/// (`Release`, leaving a note for its writers). Until the install, a failure unlocks the source
/// and uncounts the entry, so a rename never loses a record.
pub async fn rename(client: Rc<Client>, from: Vec<u8>, to: Vec<u8>) -> Result<()> {
    let node = &client.node;
    if from == b"/" || to == b"/" {
        return Err(Error::Busy);
    }
    if is_below(&to, &from) {
        // The source decides the error: missing (ENOENT), a file (ENOTDIR), or a directory
        // that cannot move into itself (EINVAL).
        let source = attr_of(meta_call(node, Request::Stat { path: from.clone() }).await?)?;
        return Err(if source.mode & libc::S_IFMT == libc::S_IFDIR {
            Error::InvalidArgument("cannot move a directory into its own subtree")
        } else {
            Error::NotDirectory
        });
    }
    if from == to {
        return stub::stat(node, &from).await.map(drop);
    }
    // The new parent must exist; count the new entry now, undone below if it replaces one.
    link_parent(node, &to, 1, true).await?;
    let ReplyBody::Record { attr, children } = (match meta_call(node, Request::Take { path: from.clone(), to: to.clone() }).await {
        Ok(body) => body,
        Err(e) => {
            unlink_parent_quietly(node, &to, -1).await;
            return Err(e);
        }
    }) else {
        return Err(Error::Internal("take reply without a record"));
    };
    // Every path below a directory changes its prefix: refuse, before anything moves, a new
    // name that would make one of them too long.
    if is_dir(&attr) && to.len() > from.len() {
        let fits = tree_span(node, &from).await.and_then(|span| match to.len() + span <= MAX_PATH {
            true => Ok(()),
            false => Err(Error::NameTooLong),
        });
        if let Err(e) = fits {
            untake(node, &from, &to, attr).await;
            return Err(e);
        }
    }
    let replaced = match meta_call(node, Request::Install { path: to.clone(), attr, children }).await {
        Ok(ReplyBody::Replaced(replaced)) => replaced,
        Ok(_) => return Err(Error::Internal("install reply without an outcome")),
        Err(e) => {
            untake(node, &from, &to, attr).await;
            return Err(e);
        }
    };
    // Installed: the source goes (it was locked since the take, so it is what was installed).
    meta_call(node, Request::Release { path: from.clone(), ino: attr.ino, to: to.clone() }).await?;
    if let Some(old) = replaced {
        unlink_parent_quietly(node, &to, -1).await;
        if old.mode & libc::S_IFMT == libc::S_IFREG && old.ino != attr.ino {
            remove_chunks(node, &old, old.size).await?;
        }
    }
    if attr.mode & libc::S_IFMT == libc::S_IFDIR {
        broadcast(node, Request::MoveTree { from: from.clone(), to: to.clone() }).await?;
    }
    for f in client.files.borrow_mut().of_inode(attr.ino) {
        f.path = to.clone();
    }
    link_parent(node, &from, -1, true).await
}

/// The undo of a rename's `Take`: the record at `from`, which stayed there, is unlocked, and
/// the count added to the new parent is taken off again.
async fn untake(node: &Node, from: &[u8], to: &[u8], attr: Attr) {
    if let Err(undo) = meta_call(node, Request::Release { path: from.to_owned(), ino: attr.ino, to: Vec::new() }).await {
        tracing::error!(path = %show(from), error = %undo, "could not unlock a record after a failed rename");
    }
    unlink_parent_quietly(node, to, -1).await;
}

/// How many bytes the longest path below directory `dir` adds to it, over all ranks.
async fn tree_span(node: &Node, dir: &[u8]) -> Result<usize> {
    let spans = broadcast(node, Request::TreeSpan { path: dir.to_owned() }).await?;
    spans.into_iter().try_fold(0usize, |longest, body| match body {
        ReplyBody::Count(span) => Ok(longest.max(span as usize)),
        _ => Err(Error::Internal("tree span reply without a count")),
    })
}

pub async fn access(client: Rc<Client>, path: Vec<u8>, mode: i32) -> Result<()> {
    let node = &client.node;
    if mode & !(libc::F_OK | libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return Err(Error::InvalidArgument("unknown access mode bits"));
    }
    let attr = stub::stat(node, &path).await?;
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
