//! Writers that closed, released at their files' owners in batches.
//!
//! The open that creates a file for writing counts its descriptor among the file's writers
//! (`Attr::writers`) in the same request, so a create that goes on to write needs no
//! registration of its own before its first write. Two kinds of close need no answer before
//! they return, and are queued here:
//! - a descriptor so counted that closes without having written has nothing to publish;
//! - a descriptor whose unpublished writes all lie in the file's first chunk has its size to
//!   publish, but anyone who reads the file's size while it counts writers also looks at how far
//!   the first chunk's data reaches (`client::stat`), which covers those writes: its close is
//!   complete without the owner's answer, and its size and mtime follow in a batch.
//!
//! `RELEASE_DELAY` after the first one queued, a task sends every queued release to its file's
//! owner: those that wrote nothing in one `Unregister` request per owner (a create-only workload
//! costs its owners one extra request per delay and creating rank, not one per file), the others
//! as `Publish` requests sent together. Until then the file counts one writer too many, which
//! only widens what a cut or a removal of it asks (every rank instead of the owners of its
//! chunks); this rank's own cuts and removals discount the releases it has not had answered yet,
//! reaching as far as their writes did ([`Unregisters::pending`]).
//!
//! A rank's stop sends what is queued at once and waits for the answers while every rank still
//! serves (`deferred::Deferred::settled`). A release whose file is gone is dropped: a removed file
//! has no writers left to count.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::deferred::Deferred;
use super::node::Node;
pub use super::wire::Closed;
use super::wire::{self, Request};
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::metadata::Published;
use crate::ucx::SendBuf;

/// How long after the first release is queued the queue is sent.
const RELEASE_DELAY: Duration = Duration::from_millis(1);

/// A writer to release that wrote nothing: the path its file had when it was opened, and the
/// file's inode number.
type Entry = (Vec<u8>, u64);

/// The releases of one file that this rank has not had answered yet.
#[derive(Clone, Copy, Default)]
struct Pending {
    count: u32,
    /// How far the writes of those released writers reach: 0 for writers that wrote nothing.
    reach: u64,
}

/// This rank's releases of closed writers, queued or under way.
pub struct Unregisters {
    queued: RefCell<Vec<Entry>>,
    closed: RefCell<Vec<Closed>>,
    /// Releases not yet answered, by inode number: queued or under way.
    pending: RefCell<foldhash::HashMap<u64, Pending>>,
    /// When the queue is sent; rounds may overlap.
    deferred: Deferred,
    /// Set by a test: what is queued stays queued until the stop or the hold's end.
    #[cfg(feature = "testing")]
    held: std::cell::Cell<bool>,
}

impl Default for Unregisters {
    fn default() -> Unregisters {
        Unregisters {
            queued: RefCell::default(),
            closed: RefCell::default(),
            pending: RefCell::default(),
            deferred: Deferred::new(RELEASE_DELAY),
            #[cfg(feature = "testing")]
            held: std::cell::Cell::default(),
        }
    }
}

impl Unregisters {
    /// Queues the release of a writer of the file `ino`, opened as `path`, that wrote nothing.
    pub fn queue(&self, path: Vec<u8>, ino: u64) {
        self.note_pending(ino, 0);
        self.queued.borrow_mut().push((path, ino));
        self.due_soon();
    }

    /// Queues the release of a writer whose unpublished writes all lie in the first chunk of
    /// its file: `closed.end` is at most the chunk size.
    pub fn queue_closed(&self, closed: Closed) {
        self.note_pending(closed.ino, closed.end);
        self.closed.borrow_mut().push(closed);
        self.due_soon();
    }

    fn note_pending(&self, ino: u64, reach: u64) {
        let mut pending = self.pending.borrow_mut();
        let p = pending.entry(ino).or_default();
        p.count += 1;
        p.reach = p.reach.max(reach);
    }

    fn due_soon(&self) {
        #[cfg(feature = "testing")]
        if self.held.get() {
            return;
        }
        self.deferred.queued();
    }

    /// While `on`, queued releases are not sent (a rank's stop still sends them): for tests of
    /// what other ranks see of a file whose writer closed and was not released yet.
    #[cfg(feature = "testing")]
    pub fn hold(&self, on: bool) {
        self.held.set(on);
        let anything_queued = !self.queued.borrow().is_empty() || !self.closed.borrow().is_empty();
        if !on && anything_queued {
            self.deferred.queued();
        }
    }

    /// How many of the file `ino`'s writers this rank has released and not had answered yet,
    /// and how far their writes reach (0 when none of them wrote).
    pub fn pending(&self, ino: u64) -> (u32, u64) {
        self.pending.borrow().get(&ino).map_or((0, 0), |p| (p.count, p.reach))
    }

    pub fn deferred(&self) -> &Deferred {
        &self.deferred
    }

    /// The queues, if they are due at `now`; then counted as a round under way.
    fn take_due(&self, now: Instant) -> Option<(Vec<Entry>, Vec<Closed>)> {
        self.deferred
            .start_round(now, false)
            .then(|| (std::mem::take(&mut *self.queued.borrow_mut()), std::mem::take(&mut *self.closed.borrow_mut())))
    }

    /// A round ended: its releases are no longer pending.
    fn finished(&self, inos: &[u64]) {
        let mut pending = self.pending.borrow_mut();
        for ino in inos {
            if let Some(p) = pending.get_mut(ino) {
                p.count -= 1;
                if p.count == 0 {
                    pending.remove(ino);
                }
            }
        }
        drop(pending);
        self.deferred.round_done();
    }
}

/// Starts a task that sends the queued releases, if they are due at `now`; true if it started
/// one.
pub fn spawn_sender(node: &Rc<Node>, executor: &LocalExecutor<'static>, now: Instant) -> bool {
    let Some((round, closed)) = node.unregisters.take_due(now) else { return false };
    let node = node.clone();
    executor
        .spawn(async move {
            if let Err(e) = release(&node, round, closed).await {
                tracing::debug!(error = %e, "writers not released; their files count them until the job ends");
            }
        })
        .detach();
    true
}

/// Ends the hold of [`Unregisters::hold`] and releases what is queued at once, answered
/// before this returns.
#[cfg(feature = "testing")]
pub async fn release_now(node: &Node) -> Result<()> {
    node.unregisters.hold(false);
    match node.unregisters.take_due(Instant::now() + RELEASE_DELAY) {
        Some((round, closed)) => release(node, round, closed).await,
        None => Ok(()),
    }
}

/// Sends one round of releases, taken from the queues; they stop being pending once answered.
async fn release(node: &Node, round: Vec<Entry>, closed: Vec<Closed>) -> Result<()> {
    let inos: Vec<u64> = round.iter().map(|&(_, ino)| ino).chain(closed.iter().map(|c| c.ino)).collect();
    let (released, published) = futures_lite::future::zip(send(node, round), publish_closed(node, closed)).await;
    node.unregisters.finished(&inos);
    released.and(published)
}

/// Publishes what each of `closed` wrote, releasing it, at its file's owner: those owned here at
/// once, the others in one request per owner (or a few, of `wire::MAX_PUBLISHED` each); each
/// owner forwards those whose files were renamed.
async fn publish_closed(node: &Node, closed: Vec<Closed>) -> Result<()> {
    let mut by_owner = by_owner(node, closed, |c| &c.path);
    let here = by_owner.remove(&node.rank).unwrap_or_default();
    let sends = by_owner.into_iter().map(|(owner, batch)| {
        send_parts(node, owner, batch, wire::MAX_PUBLISHED, |count| Request::PublishMany { count }, wire::encode_closed)
    });
    let (local, remote) = futures_lite::future::zip(super::server::publish_all(node, here), crate::join::join_all(sends.collect())).await;
    remote.into_iter().fold(local, Result::and)
}

/// `entries` by the owner of the path each names.
fn by_owner<T>(node: &Node, entries: Vec<T>, path: impl Fn(&T) -> &[u8]) -> BTreeMap<Rank, Vec<T>> {
    let mut by_owner: BTreeMap<Rank, Vec<T>> = BTreeMap::new();
    for entry in entries {
        by_owner.entry(node.ring.meta_owner(path(&entry))).or_default().push(entry);
    }
    by_owner
}

/// Sends `batch` to `owner` in requests of `max` entries at most, each made by `request` from
/// its count and carrying its entries as `encode` writes them.
async fn send_parts<T>(
    node: &Node,
    owner: Rank,
    batch: Vec<T>,
    max: u32,
    request: impl Fn(u32) -> Request,
    encode: impl Fn(&[T]) -> Vec<u8>,
) -> Result<()> {
    for part in batch.chunks(max as usize) {
        let payload = SendBuf::Owned(encode(part));
        // SAFETY: the payload is owned by the send; no reply payload is accepted.
        unsafe { node.transport.call(owner, &request(part.len() as u32), payload, None) }.await?;
    }
    Ok(())
}

/// Releases `entries` at their owners: those owned here at once, the others in one request per
/// owner (or a few, of `wire::MAX_UNREGISTERED` each), again where a file was renamed, and again
/// while a rename or a cut holds its record (for `LOCK_WAIT` at most).
pub async fn send(node: &Node, mut entries: Vec<Entry>) -> Result<()> {
    let mut failed = Ok(());
    let started = Instant::now();
    while !entries.is_empty() {
        if started.elapsed() > super::entries::LOCK_WAIT {
            tracing::debug!(left = entries.len(), "writers not released: their records stayed locked");
            break;
        }
        let mut by_owner = by_owner(node, entries, |e| &e.0);
        entries = release_here(node, by_owner.remove(&node.rank).unwrap_or_default());
        let sends = by_owner.into_iter().map(|(owner, batch)| {
            send_parts(node, owner, batch, wire::MAX_UNREGISTERED, |count| Request::Unregister { count }, wire::encode_unregisters)
        });
        for result in crate::join::join_all(sends.collect()).await {
            failed = failed.and(result);
        }
        if !entries.is_empty() {
            futures_lite::future::yield_now().await;
        }
    }
    failed
}

/// Releases the writers of `entries` whose records are here; returns those still to release:
/// whose files were renamed away, at their paths now, and those a rename or a cut holds.
pub fn release_here(node: &Node, entries: Vec<Entry>) -> Vec<Entry> {
    let mut left = Vec::new();
    for (path, ino) in entries {
        match node.meta.borrow_mut().unregister(&path, ino) {
            Ok(Published::Moved(to)) => left.push((to, ino)),
            Ok(_) => {}
            Err(Error::Locked) => left.push((path, ino)),
            Err(e) => tracing::debug!(path = %crate::path::show(&path), ino, error = %e, "writer not released"),
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(ino: u64, end: u64) -> Closed {
        Closed { path: format!("/c{ino}").into_bytes(), ino, end, cuts: 0 }
    }

    #[test]
    fn releases_go_after_the_delay_and_stay_pending_until_answered() {
        let u = Unregisters::default();
        assert_eq!(u.deferred().due(), None);
        u.queue(b"/a".to_vec(), 7);
        u.queue(b"/b".to_vec(), 7);
        u.queue(b"/c".to_vec(), 8);
        assert_eq!((u.pending(7), u.pending(8), u.pending(9)), ((2, 0), (1, 0), (0, 0)));
        let due = u.deferred().due().expect("due once queued");
        assert!(u.deferred().until_due().is_some_and(|d| d <= RELEASE_DELAY));
        assert_eq!(u.take_due(due - Duration::from_micros(1)), None, "sent before the delay");
        let (round, closed) = u.take_due(due).expect("due after the delay");
        assert_eq!((round.len(), closed.len()), (3, 0));
        assert_eq!(u.deferred().due(), None);
        assert_eq!(u.pending(7), (2, 0), "under way is still pending");
        u.finished(&[7, 7, 8]);
        assert_eq!((u.pending(7), u.pending(8)), ((0, 0), (0, 0)));
    }

    #[test]
    fn rounds_overlap_and_each_keeps_its_releases_pending() {
        let u = Unregisters::default();
        let later = Instant::now() + 2 * RELEASE_DELAY;
        u.queue(b"/a".to_vec(), 1);
        assert_eq!(u.take_due(later), Some((vec![(b"/a".to_vec(), 1)], vec![])));
        u.queue(b"/b".to_vec(), 2);
        assert_eq!(u.take_due(later), Some((vec![(b"/b".to_vec(), 2)], vec![])), "a second round while the first is under way");
        u.finished(&[1]);
        assert_eq!((u.pending(1), u.pending(2)), ((0, 0), (1, 0)));
        u.finished(&[2]);
        assert_eq!(u.pending(2), (0, 0));
    }

    #[test]
    fn closed_writers_go_in_the_same_round_and_their_writes_widen_the_pending_reach() {
        let u = Unregisters::default();
        let later = Instant::now() + 2 * RELEASE_DELAY;
        u.queue_closed(closed(5, 3901));
        assert!(u.deferred().due().is_some(), "a closed writer alone makes a round due");
        u.queue(b"/a".to_vec(), 5);
        assert_eq!(u.pending(5), (2, 3901), "the farthest write of the file");
        assert_eq!(u.take_due(later), Some((vec![(b"/a".to_vec(), 5)], vec![closed(5, 3901)])));
        u.queue_closed(closed(5, 100));
        u.queue_closed(closed(6, 4096));
        assert_eq!((u.pending(5), u.pending(6)), ((3, 3901), (1, 4096)));
        assert_eq!(u.take_due(later), Some((vec![], vec![closed(5, 100), closed(6, 4096)])), "in the order closed");
        u.finished(&[5, 5]);
        assert_eq!(u.pending(5), (1, 3901), "a reach stays while any release of the file is pending");
        u.finished(&[5, 6]);
        assert_eq!((u.pending(5), u.pending(6)), ((0, 0), (0, 0)));
    }
}
