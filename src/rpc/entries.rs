//! Serving the requests that make and remove directory entries, on the entry's owner: the
//! enlistment with the directory's owner that a rank's first entry there needs, and the drain
//! of a directory's holders that an rmdir (or a rename onto a directory) needs. See
//! `metadata::members` for the protocol.

use std::time::{Duration, Instant};

use super::node::Node;
use super::server::run_on;
use super::wire::{Attr, Request};
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::metadata::Record;

/// How long a request keeps trying while a rename or an rmdir holds the record it changes.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Runs `request` on `rank`, again while the record it changes is locked (a rename or an rmdir
/// takes a few round trips); `EBUSY` if it stays locked for `LOCK_WAIT`.
pub async fn run_unlocked(node: &Node, rank: Rank, request: &Request) -> Result<super::wire::ReplyBody> {
    let mut started = None;
    loop {
        match run_on(node, rank, request).await {
            Err(e) if e.errno() == libc::EAGAIN => {
                if started.get_or_insert_with(Instant::now).elapsed() > LOCK_WAIT {
                    return Err(Error::Busy);
                }
                futures_lite::future::yield_now().await;
            }
            other => return other,
        }
    }
}

/// True if this rank is a holder of the directory that will hold `path` (or `path` is the
/// root): a create there need not wait for [`enlisted`].
pub fn is_enlisted(node: &Node, path: &[u8]) -> bool {
    crate::path::split_parent(path).map_or(true, |(dir, _)| node.meta.borrow().is_enlisted(dir))
}

/// Makes sure this rank is a holder of the directory that will hold `path`, enlisting with its
/// owner if it is not yet: the directory must exist and be one. Whatever the caller does next
/// without awaiting (making the entry) no drain can come between.
pub async fn enlisted(node: &Node, path: &[u8]) -> Result<()> {
    let Some((dir, _)) = crate::path::split_parent(path) else { return Ok(()) };
    if node.meta.borrow().is_enlisted(dir) {
        return Ok(());
    }
    node.meta.borrow_mut().start_enlisting(dir);
    let owner = node.ring.meta_owner(dir);
    let request = Request::Enlist { rank: node.rank.0, path: dir.to_vec() };
    // Boxed: the owner may be this rank, which makes the future recursive.
    let outcome = Box::pin(run_unlocked(node, owner, &request)).await;
    node.meta.borrow_mut().end_enlisting(dir, outcome.is_ok());
    outcome.map(drop)
}

/// Removes directory `path` (owned here) once every holder says it has no entry of it left:
/// `ENOTEMPTY` (and the directory stays) if one still has.
pub async fn remove_dir(node: &Node, path: &[u8]) -> Result<Attr> {
    if !node.meta.borrow().is_held(path) {
        return remove_unheld_dir(node, path);
    }
    let holders = node.meta.borrow_mut().lock_for_removal(path)?;
    let drain = Request::Drain { path: path.to_vec() };
    let asks = holders.iter().map(|&rank| Box::pin(run_on(node, Rank(rank), &drain)));
    let answers = crate::join::join_all(asks.collect()).await;
    let mut drained = Vec::new();
    let mut refused: Option<Error> = None;
    for (rank, answer) in holders.into_iter().zip(answers) {
        match answer {
            Ok(_) => drained.push(rank),
            // A holder that cannot answer might hold entries: the directory stays, and its
            // failure says more than another holder's ENOTEMPTY.
            Err(e) => match &refused {
                Some(first) if first.errno() != libc::ENOTEMPTY => {}
                _ => refused = Some(e),
            },
        }
    }
    let removed = node.meta.borrow_mut().finish_removal(path, &drained, refused.is_none());
    match (removed, refused) {
        (Err(_), Some(why)) => Err(why),
        (removed, _) => removed,
    }
}

/// Removes directory `path` (owned here) that no rank holds an entry of: there is nothing to
/// drain, so it is done at once (see [`remove_dir`]). Were there holders after all, it stays
/// (`ENOTEMPTY`): none of them was asked.
pub fn remove_unheld_dir(node: &Node, path: &[u8]) -> Result<Attr> {
    let mut meta = node.meta.borrow_mut();
    let holders = meta.lock_for_removal(path)?;
    meta.finish_removal(path, &[], holders.is_empty())
}

/// Installs a renamed record at `path` (owned here): enlists in its directory and, when it
/// replaces a directory, removes that one first as an rmdir would. Returns the replaced record.
pub async fn install(node: &Node, path: &[u8], attr: Attr) -> Result<Option<Attr>> {
    enlisted(node, path).await?;
    let existing = node.meta.borrow().stat(path).ok();
    let replaced_dir = match existing {
        Some(old) if old.is_dir() && attr.mode & libc::S_IFMT == libc::S_IFDIR => Some(remove_dir(node, path).await?),
        _ => None,
    };
    let replaced = node.meta.borrow_mut().install(path, Record { attr, locked: false })?;
    Ok(replaced_dir.or(replaced.map(|r| r.attr)))
}
