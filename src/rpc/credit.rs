//! Admission of incoming data: how many bytes of other ranks' writes a rank holds at once.
//!
//! Many writers converging on one rank (incast) would each get a task and a buffer for their
//! payload. Instead a write takes credit for its payload before its buffer is allocated and its
//! rendezvous data received, and gives it back once the data is in the chunk file; a write that
//! finds too little credit waits (its sender waits for the reply, so the backlog stays at the
//! senders). The bound is `BENCHFS_INCOMING_BYTES`; a single payload larger than the whole bound
//! (a chunk larger than it) waits until it is alone.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

pub struct Credit {
    limit: u64,
    used: Cell<u64>,
    /// The most bytes held at once so far.
    peak: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

/// Credit taken; given back on drop.
pub struct Permit<'a> {
    credit: &'a Credit,
    bytes: u64,
}

impl Credit {
    pub fn new(limit: u64) -> Credit {
        Credit { limit: limit.max(1), used: Cell::new(0), peak: Cell::new(0), waiters: RefCell::default() }
    }

    /// Waits until `bytes` (at most the whole limit) fit, and takes them.
    pub async fn take(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.min(self.limit);
        std::future::poll_fn(|cx| {
            let used = self.used.get();
            if used + bytes <= self.limit {
                self.used.set(used + bytes);
                self.peak.set(self.peak.get().max(used + bytes));
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        Permit { credit: self, bytes }
    }

    /// The most bytes held at once so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.credit.used.set(self.credit.used.get() - self.bytes);
        // Each waiter checks again; those that do not fit wait anew.
        let waiters = std::mem::take(&mut *self.credit.waiters.borrow_mut());
        waiters.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn takers_wait_for_credit_and_the_peak_stays_within_the_limit() {
        let credit = Credit::new(100);
        let a = future::block_on(credit.take(60));
        let mut b = Box::pin(credit.take(60));
        assert!(future::block_on(future::poll_once(b.as_mut())).is_none(), "60 + 60 > 100: waits");
        drop(a);
        let b = future::block_on(b);
        let mut big = Box::pin(credit.take(1000));
        assert!(future::block_on(future::poll_once(big.as_mut())).is_none(), "larger than the limit: waits to be alone");
        drop(b);
        let big = future::block_on(big);
        assert_eq!(big.bytes, 100, "a payload larger than the limit takes all of it");
        drop(big);
        assert_eq!(credit.peak(), 100);
    }
}
