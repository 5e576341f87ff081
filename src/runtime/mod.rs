//! The progress thread: a single-threaded executor plus the reactors it drives.
//!
//! [`progress`] starts and stops a rank's thread and carries application threads' jobs to it;
//! [`reactors`] are the UCX worker and the io_uring ring it drives; [`Mailbox`] and
//! [`reply_pair`] are the two directions of the hand-off between application and progress
//! threads; [`run_loop`] below is the loop itself.
//!
//! One loop turn drains the mailbox (jobs from application threads), runs ready tasks, and lets
//! every reactor (UCX worker, io_uring ring) make progress. When a turn finds nothing to do it
//! blocks in epoll on the reactors' event fds and the mailbox's eventfd, so an idle rank costs no
//! CPU while remote requests still wake it at once.
//!
//! Before blocking, the loop keeps polling for up to `spin`, yielding the CPU between polls, but
//! only while there is traffic: its own application is calling (a job arrived within the last
//! few spin windows) or other ranks' requests or replies arrived just as recently. The next
//! request or reply is then microseconds away and a wake-up from epoll costs more, also on a
//! rank that serves others while its own application computes. When the rank has had neither,
//! for instance while its application waits in an MPI collective that busy-polls on the same
//! core, yielding would hand that core to the poller for a whole time slice; blocking instead
//! lets the kernel preempt it the moment work arrives.

mod mailbox;
mod poller;
mod progress;
mod reactors;
mod reply;

pub use mailbox::Mailbox;
use poller::Poller;
pub use progress::{Job, Peers, ProgressThread, RankState, Starting};
pub use reply::reply_pair;

use std::cell::Cell;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

/// Something the loop drives besides the executor.
pub trait Reactor {
    /// Makes progress; returns true if anything happened.
    fn turn(&self) -> bool;
    /// Prepares to block: returns false if there is already work (do not block).
    fn arm(&self) -> bool;
    /// The fd that becomes readable when there is work again, if any.
    fn event_fd(&self) -> Option<RawFd>;
    /// Called after a wake-up, before the next turn (e.g. to drain an eventfd).
    fn after_wake(&self) {}
}

/// Tasks run per turn before the reactors get a turn again.
const TASKS_PER_TURN: usize = 64;
/// The application counts as busy calling for this many spin windows after its last job.
const ACTIVE_WINDOWS: u32 = 10;

/// Runs until `stop` is set, then returns (tasks still pending stay in the executor).
pub fn run_loop<J>(
    executor: &LocalExecutor<'_>,
    mailbox: &Mailbox<J>,
    dispatch: impl Fn(J),
    reactors: &[&dyn Reactor],
    stop: &Cell<bool>,
    spin: Duration,
) -> std::io::Result<()> {
    let poller = Poller::new()?;
    poller.add(mailbox.event_fd())?;
    for fd in reactors.iter().filter_map(|r| r.event_fd()) {
        poller.add(fd)?;
    }
    let mut idle_since = Instant::now();
    // The last job of this rank's application, or request or reply from the network.
    let mut last_traffic = Instant::now();
    let active_window = spin * ACTIVE_WINDOWS;
    while !stop.get() {
        let mut busy = false;
        for job in mailbox.drain() {
            dispatch(job);
            busy = true;
            last_traffic = Instant::now();
        }
        for _ in 0..TASKS_PER_TURN {
            if !executor.try_tick() {
                break;
            }
            busy = true;
        }
        let mut traffic = false;
        for reactor in reactors {
            traffic |= reactor.turn();
        }
        if traffic {
            busy = true;
            last_traffic = Instant::now();
        }
        // Tasks the reactors woke run now, and count as work.
        for _ in 0..TASKS_PER_TURN {
            if !executor.try_tick() {
                break;
            }
            busy = true;
        }
        if busy {
            idle_since = Instant::now();
            continue;
        }
        if idle_since.elapsed() < spin && last_traffic.elapsed() < active_window {
            std::thread::yield_now();
            continue;
        }
        if !mailbox.prepare_sleep() {
            continue;
        }
        if reactors.iter().all(|r| r.arm()) {
            poller.wait(None)?;
        }
        mailbox.finish_sleep();
        for reactor in reactors {
            reactor.after_wake();
        }
        idle_since = Instant::now();
    }
    Ok(())
}
