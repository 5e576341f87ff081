//! Awaiting many futures at once on one task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future and, once it finished, its output.
type Slot<F> = (Pin<Box<F>>, Option<<F as Future>::Output>);

/// Polls every future until all have finished; results in input order.
pub async fn join_all<F: Future>(mut futures: Vec<F>) -> Vec<F::Output> {
    if futures.len() == 1 {
        // Most calls have one piece: awaited in place, with no slot to allocate.
        let only = futures.pop().expect("one future");
        return vec![only.await];
    }
    let mut slots: Vec<Slot<F>> = futures.into_iter().map(|f| (Box::pin(f), None)).collect();
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut pending = false;
        for (future, out) in slots.iter_mut() {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *out = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(slots.iter_mut().map(|(_, out)| out.take().expect("every future finished")).collect())
        }
    })
    .await
}

/// Like [`join_all`], with at most `window` of the futures unfinished at once: the others start
/// as earlier ones finish, in input order. Results in input order.
pub async fn join_window<F: Future>(futures: Vec<F>, window: usize) -> Vec<F::Output> {
    let window = window.max(1);
    let mut slots: Vec<Slot<F>> = futures.into_iter().map(|f| (Box::pin(f), None)).collect();
    let mut started = 0;
    std::future::poll_fn(move |cx: &mut Context<'_>| loop {
        let mut running = 0;
        for (future, out) in slots[..started].iter_mut() {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *out = Some(value),
                    Poll::Pending => running += 1,
                }
            }
        }
        if started < slots.len() && running < window {
            // Room for more: start them (their first poll) in the next round.
            started = (started + window - running).min(slots.len());
            continue;
        }
        return if running > 0 {
            Poll::Pending
        } else {
            Poll::Ready(slots.iter_mut().map(|(_, out)| out.take().expect("every future finished")).collect())
        };
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A future that is pending for `turns` polls, counting how many of its kind run at once.
    async fn step(turns: usize, running: &Cell<usize>, peak: &Cell<usize>, id: usize) -> usize {
        running.set(running.get() + 1);
        peak.set(peak.get().max(running.get()));
        for _ in 0..turns {
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
        running.set(running.get() - 1);
        id
    }

    #[test]
    fn a_window_bounds_the_futures_in_flight_and_keeps_the_order() {
        let (running, peak) = (Cell::new(0), Cell::new(0));
        let futures: Vec<_> = (0..50).map(|i| step(i % 7, &running, &peak, i)).collect();
        let out = futures_lite::future::block_on(join_window(futures, 8));
        assert_eq!(out, (0..50).collect::<Vec<_>>());
        assert!(peak.get() <= 8 && peak.get() >= 2, "peak {}", peak.get());
        let futures: Vec<_> = (0..5).map(|i| step(1, &running, &peak, i)).collect();
        assert_eq!(futures_lite::future::block_on(join_window(futures, 0)), vec![0, 1, 2, 3, 4], "a window of 0 is 1");
    }
}
