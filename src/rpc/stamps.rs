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
//! rank still serves ([`Stamps::settled`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::node::Node;
use super::server::run_on;
use super::settle::Settle;
use super::wire::Request;
use crate::path::{show, split_parent};

/// How long after a directory is first noted its stamp is sent.
const STAMP_DELAY: Duration = Duration::from_millis(1);

/// The directories this rank has changed entries of, not yet stamped at their owners.
#[derive(Default)]
pub struct Stamps {
    pending: RefCell<foldhash::HashSet<Vec<u8>>>,
    /// When the pending stamps are to be sent; `None` while none is pending.
    due: Cell<Option<Instant>>,
    /// A task is sending a round of stamps; the next waits for it.
    sending: Cell<bool>,
    settle: Settle,
}

impl Stamps {
    fn note(&self, dir: &[u8]) {
        let mut pending = self.pending.borrow_mut();
        if !pending.contains(dir) {
            pending.insert(dir.to_vec());
        }
        if self.due.get().is_none() {
            self.due.set(Some(Instant::now() + STAMP_DELAY));
        }
    }

    /// The round of stamps to send now, if one is due and no round is under way.
    fn take_due(&self) -> Option<Vec<Vec<u8>>> {
        if self.sending.get() || !self.due.get().is_some_and(|due| self.settle.flushing() || Instant::now() >= due) {
            return None;
        }
        self.due.set(None);
        self.sending.set(true);
        Some(self.pending.borrow_mut().drain().collect())
    }

    /// How long until stamps are due (zero if they are), while any are pending: the loop must
    /// not sleep past it.
    pub fn until_due(&self) -> Option<Duration> {
        self.due.get().map(|due| due.saturating_duration_since(Instant::now()))
    }

    /// A round was sent and answered.
    fn finished(&self) {
        self.sending.set(false);
        self.settle.wake();
    }

    /// Sends what is pending at once from now on, and resolves when every stamp is answered.
    pub fn settled(&self) -> impl Future<Output = ()> + '_ {
        self.settle.until(|| self.due.get().is_none() && !self.sending.get())
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

/// Starts a task that sends the stamps that are due (as many at once as any fan-out), if any
/// are and no round is under way; true if it started one.
pub fn spawn_sender(node: &Rc<Node>, executor: &LocalExecutor<'static>) -> bool {
    let Some(round) = node.stamps.take_due() else { return false };
    let node = node.clone();
    executor.spawn(async move { send(&node, round).await }).detach();
    true
}

async fn send(node: &Node, round: Vec<Vec<u8>>) {
    let touches = round.into_iter().map(|dir| async move {
        let owner = node.ring.meta_owner(&dir);
        if let Err(e) = run_on(node, owner, Request::Touch { path: dir.clone() }).await {
            tracing::debug!(path = %show(&dir), error = %e, "directory times not stamped");
        }
    });
    crate::join::join_window(touches.collect(), super::server::FAN_OUT).await;
    node.stamps.finished();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_one_directory_make_one_stamp_after_the_delay() {
        let stamps = Stamps::default();
        assert_eq!(stamps.until_due(), None);
        stamps.note(b"/a");
        stamps.note(b"/b");
        stamps.note(b"/a");
        assert!(stamps.until_due().is_some_and(|d| d <= STAMP_DELAY));
        assert_eq!(stamps.take_due(), None, "sent before the delay");
        std::thread::sleep(STAMP_DELAY);
        let mut round = stamps.take_due().expect("due after the delay");
        round.sort();
        assert_eq!(round, vec![b"/a".to_vec(), b"/b".to_vec()]);
        assert_eq!(stamps.until_due(), None);
    }

    #[test]
    fn a_stop_sends_at_once_and_waits_for_the_round() {
        use std::sync::Arc;
        use std::task::{Context, Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let stamps = Stamps::default();
        stamps.note(b"/a");
        let mut settled = std::pin::pin!(stamps.settled());
        assert!(settled.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(stamps.take_due(), Some(vec![b"/a".to_vec()]), "due at once, before the delay");
        assert!(settled.as_mut().poll(&mut Context::from_waker(&waker)).is_pending(), "under way");
        stamps.finished();
        assert!(settled.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    }

    #[test]
    fn one_round_at_a_time() {
        let stamps = Stamps::default();
        stamps.note(b"/a");
        std::thread::sleep(STAMP_DELAY);
        assert!(stamps.take_due().is_some());
        stamps.note(b"/a");
        std::thread::sleep(STAMP_DELAY);
        assert_eq!(stamps.take_due(), None, "a second round while the first is under way");
        stamps.finished();
        assert_eq!(stamps.take_due(), Some(vec![b"/a".to_vec()]));
    }
}
