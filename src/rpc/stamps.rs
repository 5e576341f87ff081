//! Directory times, stamped by the rank that changed an entry.
//!
//! A create or a removal (and each side of a rename) changes its parent directory's mtime and
//! ctime. The rank whose call made the change stamps the directory once the change is done: at
//! once when it owns the directory, otherwise it notes the directory here, and `STAMP_DELAY`
//! after the first note a task of its own sends one `Touch` per noted directory to that
//! directory's owner. A burst of changes in one directory so costs its owner one request per
//! delay and changing rank, not one per change (a rank that fills a directory of its own, one
//! per delay, however many ranks own the entries), and the caller of a change waits for none
//! of it: a create or a removal is one request. The price: a directory's times may lag its last
//! change by the delay and a round trip (see `docs/semantics.md`).
//!
//! Only times are at stake: a stamp that finds its directory gone is dropped (logged at debug
//! level). A rank's stop sends what is pending at once and waits for the answers, while every
//! rank still serves (`deferred::Deferred::settled`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::deferred::Deferred;
use super::node::Node;
use super::server::run_on;
use super::wire::Request;
use crate::path::{show, split_parent};

/// How long after a directory is first noted its stamp is sent.
const STAMP_DELAY: Duration = Duration::from_millis(1);

/// The directories this rank has changed entries of, not yet stamped at their owners.
pub struct Stamps {
    pending: RefCell<foldhash::HashSet<Vec<u8>>>,
    /// When they are sent; one round at a time.
    deferred: Deferred,
}

impl Default for Stamps {
    fn default() -> Stamps {
        Stamps { pending: RefCell::default(), deferred: Deferred::new(STAMP_DELAY) }
    }
}

impl Stamps {
    fn note(&self, dir: &[u8]) {
        let mut pending = self.pending.borrow_mut();
        if !pending.contains(dir) {
            pending.insert(dir.to_vec());
        }
        self.deferred.queued();
    }

    /// The round of stamps to send, if one is due at `now` and no round is under way.
    fn take_due(&self, now: Instant) -> Option<Vec<Vec<u8>>> {
        self.deferred.start_round(now, true).then(|| self.pending.borrow_mut().drain().collect())
    }

    pub fn deferred(&self) -> &Deferred {
        &self.deferred
    }
}

/// Notes that a call of this rank made or removed the entry at `path`: its directory's times
/// are stamped now if this rank owns the directory, else soon by [`spawn_sender`]'s task.
pub fn entry_changed(node: &Node, path: &[u8]) {
    let Some((dir, _)) = split_parent(path) else { return };
    if node.ring.meta_owner(dir) != node.rank {
        node.stamps.note(dir);
    } else if let Err(e) = node.meta.borrow_mut().touch(dir) {
        tracing::debug!(path = %show(dir), error = %e, "directory times not stamped");
    }
}

/// Starts a task that sends the stamps that are due at `now` (as many at once as any fan-out),
/// if any are and no round is under way; true if it started one.
pub fn spawn_sender(node: &Rc<Node>, executor: &LocalExecutor<'static>, now: Instant) -> bool {
    let Some(round) = node.stamps.take_due(now) else { return false };
    let node = node.clone();
    executor.spawn(async move { send(&node, round).await }).detach();
    true
}

async fn send(node: &Node, round: Vec<Vec<u8>>) {
    let touches = round.into_iter().map(|dir| async move {
        let owner = node.ring.meta_owner(&dir);
        if let Err(e) = run_on(node, owner, &Request::Touch { path: dir.clone() }).await {
            tracing::debug!(path = %show(&dir), error = %e, "directory times not stamped");
        }
    });
    crate::join::join_window(touches.collect(), super::server::FAN_OUT).await;
    node.stamps.deferred.round_done();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_one_directory_make_one_stamp_after_the_delay() {
        let stamps = Stamps::default();
        assert_eq!(stamps.deferred().due(), None);
        let before = Instant::now();
        stamps.note(b"/a");
        stamps.note(b"/b");
        stamps.note(b"/a");
        let due = stamps.deferred().due().expect("due once noted");
        assert!(due >= before + STAMP_DELAY && stamps.deferred().until_due().is_some_and(|d| d <= STAMP_DELAY));
        assert_eq!(stamps.take_due(due - Duration::from_micros(1)), None, "sent before the delay");
        let mut round = stamps.take_due(due).expect("due after the delay");
        round.sort();
        assert_eq!(round, vec![b"/a".to_vec(), b"/b".to_vec()]);
        assert_eq!(stamps.deferred().due(), None);
    }

    #[test]
    fn one_round_at_a_time() {
        let stamps = Stamps::default();
        let later = Instant::now() + 2 * STAMP_DELAY;
        stamps.note(b"/a");
        assert!(stamps.take_due(later).is_some());
        stamps.note(b"/a");
        assert_eq!(stamps.take_due(later), None, "a second round while the first is under way");
        stamps.deferred.round_done();
        assert_eq!(stamps.take_due(later), Some(vec![b"/a".to_vec()]));
    }
}
