//! Awaiting many futures at once on one task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future and, once it finished, its output.
type Slot<F> = (Pin<Box<F>>, Option<<F as Future>::Output>);

/// Polls every future until all have finished; results in input order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
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
