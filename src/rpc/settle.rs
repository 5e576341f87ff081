//! Waiting until the requests a rank defers (directory stamps, writer releases) are sent and
//! answered, as its stop must while every rank still serves.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// Who waits for one queue of deferred requests to settle, and whether it should go at once.
#[derive(Default)]
pub struct Settle {
    flushing: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Settle {
    /// True once a stop waits: what is deferred goes at once, whatever its time.
    pub fn flushing(&self) -> bool {
        self.flushing.get()
    }

    /// Lets the waiters look again; called whenever the queue may have settled.
    pub fn wake(&self) {
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves once `settled` holds; from now on the queue goes at once.
    pub fn until<'a>(&'a self, settled: impl Fn() -> bool + 'a) -> impl Future<Output = ()> + 'a {
        self.flushing.set(true);
        futures_lite::future::poll_fn(move |cx| {
            if settled() {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }
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
    fn waits_until_settled_and_asks_for_the_queue_at_once() {
        let settle = Settle::default();
        let done = Cell::new(false);
        assert!(!settle.flushing());
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut waiting = std::pin::pin!(settle.until(|| done.get()));
        assert!(waiting.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        assert!(settle.flushing(), "a stop waits: the queue goes at once");
        done.set(true);
        settle.wake();
        assert!(flag.0.load(Ordering::SeqCst), "the waiter is woken");
        assert!(waiting.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    }
}
