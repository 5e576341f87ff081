//! Requests a rank defers and sends in rounds (directory stamps, writer releases): when the
//! next round is due, how many are under way, and waiting until all are answered, as a rank's
//! stop must while every rank still serves.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::node::Node;

/// The timing of one queue of deferred requests; the queue itself is its owner's.
pub struct Deferred {
    /// How long after its first request a round is sent.
    delay: Duration,
    /// When the next round is due; `None` while nothing is queued.
    due: Cell<Option<Instant>>,
    /// Rounds sent and not all answered.
    rounds: Cell<usize>,
    /// A stop waits: what is queued goes at once, whatever its time.
    flushing: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Deferred {
    pub fn new(delay: Duration) -> Deferred {
        Deferred { delay, due: Cell::new(None), rounds: Cell::new(0), flushing: Cell::new(false), waiters: RefCell::default() }
    }

    /// Something was queued: the next round is due `delay` after the first of it.
    pub fn queued(&self) {
        if self.due.get().is_none() {
            self.due.set(Some(Instant::now() + self.delay));
        }
    }

    /// When the next round is due, if anything is queued.
    pub fn due(&self) -> Option<Instant> {
        self.due.get()
    }

    /// How long until the next round is due (zero if it is), while anything is queued: the
    /// loop must not sleep past it.
    pub fn until_due(&self) -> Option<Duration> {
        self.due.get().map(|due| due.saturating_duration_since(Instant::now()))
    }

    /// Starts a round if one is due at `now` (or a stop waits) and, with `one_at_a_time`, none
    /// is under way; the caller then takes the whole queue.
    pub fn start_round(&self, now: Instant, one_at_a_time: bool) -> bool {
        let Some(due) = self.due.get() else { return false };
        if (one_at_a_time && self.rounds.get() > 0) || (!self.flushing.get() && now < due) {
            return false;
        }
        self.due.set(None);
        self.rounds.set(self.rounds.get() + 1);
        true
    }

    /// A round was sent and answered.
    pub fn round_done(&self) {
        self.rounds.set(self.rounds.get() - 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Sends what is queued at once from now on, and resolves when nothing is queued and every
    /// round is answered.
    pub fn settled(&self) -> impl Future<Output = ()> + '_ {
        self.flushing.set(true);
        futures_lite::future::poll_fn(move |cx| {
            if self.due.get().is_none() && self.rounds.get() == 0 {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }
}

/// Starts the tasks that send the deferred requests that are due (reading the clock once, and
/// only while something is queued); true if it started one.
pub fn spawn_due(node: &Rc<Node>, executor: &LocalExecutor<'static>) -> bool {
    if node.stamps.deferred().due().is_none() && node.unregisters.deferred().due().is_none() {
        return false;
    }
    let now = Instant::now();
    let stamps = super::stamps::spawn_sender(node, executor, now);
    let unregisters = super::unregisters::spawn_sender(node, executor, now);
    stamps || unregisters
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_round_is_due_after_the_delay() {
        let d = Deferred::new(Duration::from_millis(1));
        assert_eq!(d.due(), None);
        assert!(!d.start_round(Instant::now(), false), "nothing queued");
        d.queued();
        let due = d.due().expect("due once something is queued");
        d.queued();
        assert_eq!(d.due(), Some(due), "the first request sets the time");
        assert!(!d.start_round(due - Duration::from_micros(1), false), "before the delay");
        assert!(d.start_round(due, false));
        assert_eq!(d.due(), None);
        d.queued();
        assert!(!d.start_round(Instant::now() + Duration::from_secs(1), true), "one at a time");
        assert!(d.start_round(Instant::now() + Duration::from_secs(1), false), "or overlapping");
    }

    #[test]
    fn settled_sends_at_once_and_waits_for_every_round() {
        let d = Deferred::new(Duration::from_secs(60));
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(std::pin::pin!(d.settled()).as_mut().poll(&mut cx).is_ready(), "nothing queued");
        d.queued();
        let mut waiting = std::pin::pin!(d.settled());
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "queued");
        assert!(d.start_round(Instant::now(), true), "a stop sends without waiting for the delay");
        assert!(waiting.as_mut().poll(&mut cx).is_pending(), "under way");
        d.round_done();
        assert!(flag.0.load(Ordering::SeqCst), "the waiter is woken");
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }
}
