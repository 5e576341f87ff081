//! Writers that closed without having written, released at their files' owners in batches.
//!
//! The open that creates a file for writing counts its descriptor among the file's writers
//! (`Attr::writers`) in the same request, so a create that goes on to write needs no
//! registration of its own before its first write. A descriptor so counted that closes without
//! having written has nothing to publish: its release is queued here, and `RELEASE_DELAY`
//! after the first one queued a task sends every queued release to its file's owner, one
//! `Unregister` request per owner (a create-only workload costs its owners one extra request
//! per delay and creating rank, not one per file). Until then the file counts one writer too
//! many, which only widens what a cut or a removal of it asks (every rank instead of the
//! owners of its chunks); this rank's own cuts and removals discount the releases it has not
//! had answered yet ([`Unregisters::pending`]).
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
use super::wire::{self, Request};
use crate::error::Result;
use crate::ids::Rank;
use crate::metadata::Published;
use crate::ucx::SendBuf;

/// How long after the first release is queued the queue is sent.
const RELEASE_DELAY: Duration = Duration::from_millis(1);

/// A writer to release: the path its file had when it was opened, and the file's inode number.
type Entry = (Vec<u8>, u64);

/// This rank's releases of writers that never wrote, queued or under way.
pub struct Unregisters {
    queued: RefCell<Vec<Entry>>,
    /// Releases not yet answered, by inode number: queued or under way.
    pending: RefCell<foldhash::HashMap<u64, u32>>,
    /// When the queue is sent; rounds may overlap.
    deferred: Deferred,
}

impl Default for Unregisters {
    fn default() -> Unregisters {
        Unregisters { queued: RefCell::default(), pending: RefCell::default(), deferred: Deferred::new(RELEASE_DELAY) }
    }
}

impl Unregisters {
    /// Queues the release of a writer of the file `ino`, opened as `path`.
    pub fn queue(&self, path: Vec<u8>, ino: u64) {
        *self.pending.borrow_mut().entry(ino).or_default() += 1;
        self.queued.borrow_mut().push((path, ino));
        self.deferred.queued();
    }

    /// How many of the file `ino`'s writers this rank has released and not had answered yet:
    /// writers that certainly wrote nothing.
    pub fn pending(&self, ino: u64) -> u32 {
        self.pending.borrow().get(&ino).copied().unwrap_or(0)
    }

    pub fn deferred(&self) -> &Deferred {
        &self.deferred
    }

    /// The queue, if it is due at `now`; then counted as a round under way.
    fn take_due(&self, now: Instant) -> Option<Vec<Entry>> {
        self.deferred.start_round(now, false).then(|| std::mem::take(&mut *self.queued.borrow_mut()))
    }

    /// A round ended: its releases are no longer pending.
    fn finished(&self, inos: &[u64]) {
        let mut pending = self.pending.borrow_mut();
        for ino in inos {
            if let Some(n) = pending.get_mut(ino) {
                *n -= 1;
                if *n == 0 {
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
    let Some(round) = node.unregisters.take_due(now) else { return false };
    let node = node.clone();
    executor
        .spawn(async move {
            let inos: Vec<u64> = round.iter().map(|&(_, ino)| ino).collect();
            if let Err(e) = send(&node, round).await {
                tracing::debug!(error = %e, "writers not released; their files count them until the job ends");
            }
            node.unregisters.finished(&inos);
        })
        .detach();
    true
}

/// Releases `entries` at their owners: those owned here at once, the others in one request per
/// owner (or a few, of `wire::MAX_UNREGISTERED` each), again where a file was renamed.
pub async fn send(node: &Node, mut entries: Vec<Entry>) -> Result<()> {
    let mut failed = Ok(());
    while !entries.is_empty() {
        let mut by_owner: BTreeMap<Rank, Vec<Entry>> = BTreeMap::new();
        for entry in entries {
            by_owner.entry(node.ring.meta_owner(&entry.0)).or_default().push(entry);
        }
        entries = release_here(node, by_owner.remove(&node.rank).unwrap_or_default());
        let sends = by_owner.into_iter().map(|(owner, batch)| async move {
            for part in batch.chunks(wire::MAX_UNREGISTERED as usize) {
                let request = Request::Unregister { count: part.len() as u32 };
                let payload = SendBuf::Owned(wire::encode_unregisters(part));
                // SAFETY: the payload is owned by the send; no reply payload is accepted.
                unsafe { node.transport.call(owner, &request, payload, None) }.await?;
            }
            Ok(())
        });
        for result in crate::join::join_all(sends.collect()).await {
            failed = failed.and(result);
        }
    }
    failed
}

/// Releases the writers of `entries` whose records are here; returns those whose files were
/// renamed away, at their paths now.
pub fn release_here(node: &Node, entries: Vec<Entry>) -> Vec<Entry> {
    let mut moved = Vec::new();
    for (path, ino) in entries {
        match node.meta.borrow_mut().unregister(&path, ino) {
            Ok(Published::Moved(to)) => moved.push((to, ino)),
            Ok(_) => {}
            Err(e) => tracing::debug!(path = %crate::path::show(&path), ino, error = %e, "writer not released"),
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_go_after_the_delay_and_stay_pending_until_answered() {
        let u = Unregisters::default();
        assert_eq!(u.deferred().due(), None);
        u.queue(b"/a".to_vec(), 7);
        u.queue(b"/b".to_vec(), 7);
        u.queue(b"/c".to_vec(), 8);
        assert_eq!((u.pending(7), u.pending(8), u.pending(9)), (2, 1, 0));
        let due = u.deferred().due().expect("due once queued");
        assert!(u.deferred().until_due().is_some_and(|d| d <= RELEASE_DELAY));
        assert_eq!(u.take_due(due - Duration::from_micros(1)), None, "sent before the delay");
        let round = u.take_due(due).expect("due after the delay");
        assert_eq!(round.len(), 3);
        assert_eq!(u.deferred().due(), None);
        assert_eq!(u.pending(7), 2, "under way is still pending");
        u.finished(&[7, 7, 8]);
        assert_eq!((u.pending(7), u.pending(8)), (0, 0));
    }

    #[test]
    fn rounds_overlap_and_each_keeps_its_releases_pending() {
        let u = Unregisters::default();
        let later = Instant::now() + 2 * RELEASE_DELAY;
        u.queue(b"/a".to_vec(), 1);
        assert_eq!(u.take_due(later), Some(vec![(b"/a".to_vec(), 1)]));
        u.queue(b"/b".to_vec(), 2);
        assert_eq!(u.take_due(later), Some(vec![(b"/b".to_vec(), 2)]), "a second round while the first is under way");
        u.finished(&[1]);
        assert_eq!((u.pending(1), u.pending(2)), (0, 1));
        u.finished(&[2]);
        assert_eq!(u.pending(2), 0);
    }
}
