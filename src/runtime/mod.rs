//! The progress thread: a single-threaded executor plus the reactors it drives.
//!
//! [`progress`] starts and stops a rank's thread and carries application threads' jobs to it;
//! [`reactors`] are the UCX worker and the io_uring ring it drives; [`engine`] holds all of it
//! behind the lock that also lets an application thread turn the loop itself ([`Driver`]);
//! [`Mailbox`] and [`reply_pair`] are the two directions of the hand-off between application
//! and progress threads when the lock is taken; [`run_loop`] below is the progress thread's loop.
//!
//! One loop turn drains the mailbox (jobs from application threads), runs ready tasks, and lets
//! every reactor (UCX worker, io_uring ring) make progress. When a turn finds nothing to do it
//! blocks in epoll on the reactors' event fds and the mailbox's eventfd, so an idle rank costs
//! one turn a second (`IDLE_TURN`) while remote requests still wake it at once.
//!
//! Before blocking, the loop keeps polling for up to `spin`, yielding the CPU between polls, but
//! only while there is traffic: its own application is calling (a job arrived within the last
//! few spin windows), and, when this thread may run on a core of its own, other ranks' requests
//! or replies arrived as recently. The next request or reply is then microseconds away and a
//! wake-up from epoll costs more. A rank bound to one core (its application thread and this
//! thread share it) does not poll for other ranks' traffic while its application uses the core:
//! while its application does something else, for instance waits in an MPI collective that
//! busy-polls, a yielding poller gets the core only at the scheduler's next tick (4 ms per
//! request, measured), whereas a thread blocked in epoll preempts the busy one the moment work
//! arrives. It does poll when the application thread leaves the core free (the one that called
//! last used less than a tenth of it lately, see `AppWatch`): a request to a sleeping thread
//! then costs its sender a system call to signal it and the thread a wake-up, for a core nobody
//! else wanted. While an application thread holds the loop, this thread naps off the run queue
//! (see `Nap`).

mod app_watch;
mod engine;
mod mailbox;
mod poller;
mod progress;
mod reactors;
mod reply;

use app_watch::AppWatch;
pub use engine::Driver;
use engine::Engine;
pub use mailbox::Mailbox;
use poller::{nap as poll_fds, Poller};
pub use progress::{Job, Peers, ProgressThread, RankState, Starting};
pub use reply::reply_pair;

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

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

/// The application counts as busy calling for this many spin windows after its last job.
const ACTIVE_WINDOWS: u32 = 10;
/// How long the loop keeps polling, without yielding, after it had work.
const PEER_HOT_POLL: Duration = Duration::from_micros(3);

/// The longest the loop sleeps when nothing is due: it then turns once more. A lost wake-up
/// (a message that reaches the transport while no signal of it reaches the reactors' fds) so
/// costs this much at most, instead of stalling every rank that waits for this one; an idle
/// rank pays one turn per period.
const IDLE_TURN: Duration = Duration::from_secs(1);

/// How long the application must have been away from the loop before the progress thread
/// takes it back (see `Nap`).
const NAP: Duration = Duration::from_micros(1000);

/// How the progress thread waits while this rank's application calls. It cannot arm the worker
/// while an application thread holds the loop (only the holder turns it), so it naps: blocked on
/// the mailbox's eventfd (which a job, or an application thread that leaves work unfinished,
/// signals). It takes the loop back when signalled, or once the application has been away from
/// the loop for `NAP`: between two calls of a busy application the loop is free for moments
/// only, and a thread that took it then would send the next call through the mailbox, the slow
/// way. A thread that waited by yielding instead stayed on the run queue: with more runnable
/// threads than cores each of its turns was a context switch taken from the threads that serve
/// and wait for replies, and the scheduler favoured it over them for the little CPU it used.
/// The price is bounded: a request that comes after the application's last call waits `NAP` at
/// most (then this thread serves it, and sleeps in epoll with the worker armed); while the
/// application calls, its own thread serves other ranks as it waits.
struct Nap {
    /// The last nap ended by its time, not by a signal: the application was calling.
    napping: bool,
}

impl Nap {
    fn take<J>(&mut self, mailbox: &Mailbox<J>, time: Duration) {
        if !mailbox.prepare_sleep() {
            // Jobs are queued: whoever holds the loop runs them at its next turn.
            self.napping = false;
            std::thread::yield_now();
            return;
        }
        self.napping = !poller::nap(&[mailbox.event_fd()], time);
        mailbox.finish_sleep();
    }

    /// How much longer to nap before taking a free loop back: the application, calling until
    /// now, left it `away()` ago and may be back at once. Asks (and so reads the clock) only
    /// while napping.
    fn rest(&self, away: impl FnOnce() -> Duration) -> Option<Duration> {
        if !self.napping {
            return None;
        }
        let away = away();
        (away < NAP).then(|| NAP - away)
    }
}

/// Set by a test (cargo feature `testing`) to make the progress thread panic at its next turn.
#[cfg(feature = "testing")]
pub static INJECTED_PANIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The epoll set the progress thread sleeps on: the mailbox's eventfd and the reactors' fds.
/// Built before the engine goes into the driver: from then on an application thread may hold
/// the loop, and the progress thread must not wait for it to start.
fn loop_poller<S: RankState>(mailbox: &Mailbox<Job<S>>, engine: &Engine<S>) -> std::io::Result<Poller> {
    let poller = Poller::new()?;
    poller.add(mailbox.event_fd())?;
    for fd in engine.event_fds() {
        poller.add(fd)?;
    }
    Ok(poller)
}

/// The progress thread's loop: turns the engine under the driver's lock, one turn at a time,
/// until the node is told to stop; blocks on `poller` (from [`loop_poller`], without the lock)
/// when there is nothing to do. Returns with the engine still in the driver.
pub fn run_loop<S: RankState>(driver: &Driver<S>, spin: Duration, poller: &Poller) -> std::io::Result<()> {
    // Polling for other ranks' traffic needs a core this thread does not share with its
    // application thread (see above), or an application thread that leaves it free.
    let poll_for_peers = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let mut app = AppWatch::new(driver.app_clock());
    let mailbox = driver.mailbox();
    let mut idle_since = Instant::now();
    // The last call of this rank's application through the mailbox, or, with `poll_for_peers`
    // or while the application leaves the core free, the last request or reply from another
    // rank.
    let mut last_call = Instant::now();
    let active_window = spin * ACTIVE_WINDOWS;
    let mut nap = Nap { napping: false };
    // The driver knows that this thread naps (see `Driver::napping`).
    let mut told_napping = false;
    // Woken from epoll, and the reactors not yet told (see `Reactor::after_wake`).
    let mut woken = false;
    // Woken by `IDLE_TURN` alone: the next turn finding work means a wake-up was lost.
    let mut idle_turn = false;
    loop {
        // Only this iteration's turn, right after the wait, tells.
        let after_idle_turn = std::mem::take(&mut idle_turn);
        #[cfg(feature = "testing")]
        if INJECTED_PANIC.swap(false, std::sync::atomic::Ordering::AcqRel) {
            panic!("progress-thread panic injected for a test");
        }
        // While this rank's application calls, its thread turns the loop for each call and
        // serves other ranks as it waits; this thread keeps out of its way, off the run queue
        // (see `Nap`).
        if let Some(rest) = nap.rest(|| driver.away()) {
            nap.take(mailbox, rest);
            continue;
        }
        let Some(held) = driver.try_hold() else {
            idle_since = Instant::now();
            if !std::mem::replace(&mut told_napping, true) {
                driver.napping(true);
            }
            nap.take(mailbox, NAP);
            continue;
        };
        nap.napping = false;
        if std::mem::take(&mut told_napping) {
            driver.napping(false);
        }
        let Some(engine) = held.engine().filter(|e| !e.stopping()) else { return Ok(()) };
        if std::mem::take(&mut woken) {
            engine.after_wake();
        }
        engine.watch();
        let turn = engine.turn(mailbox);
        if after_idle_turn && turn.busy {
            tracing::debug!("the idle turn found work: a wake-up did not reach this rank's progress thread");
        }
        let now = Instant::now();
        if turn.jobs || (turn.traffic && (poll_for_peers || app.idle(now, driver.app_clock()))) {
            last_call = now;
        }
        if turn.busy {
            idle_since = now;
            continue;
        }
        let idle = now - idle_since;
        if idle < spin && now - last_call < active_window {
            drop(held);
            // A core that this rank's application leaves free, on a rank bound to it, is this
            // thread's: it polls on without a system call between turns.
            if poll_for_peers || !app.idle(now, driver.app_clock()) {
                std::thread::yield_now();
            }
            continue;
        }
        if idle < PEER_HOT_POLL {
            // Just served: the core is this thread's anyway (a wake-up gave it), and requests
            // often come in pairs (a create and its directory's stamp). Polling without
            // yielding, for a moment, catches the next one without another wake-up, and never
            // hands the core to a busy application thread.
            continue;
        }
        if !mailbox.prepare_sleep() {
            continue;
        }
        let can_sleep = engine.arm();
        // With calls pending, the loop wakes to check that their ranks still answer; with
        // directory stamps pending, to send them when they are due.
        let due = engine.sleep_limit();
        let limit = due.map_or(IDLE_TURN, |due| due.min(IDLE_TURN));
        if can_sleep {
            // Said under the loop: a thread that takes it meanwhile and leaves something due
            // sooner wakes this one as it leaves (see `Driver::leave`).
            driver.going_to_sleep(limit);
        }
        drop(held);
        if can_sleep {
            #[cfg(test)]
            driver.pass_sleep_gate();
            let slept = poller.wait(limit);
            driver.woke();
            idle_turn = due.is_none() && !slept?;
        }
        mailbox.finish_sleep();
        // The reactors are told of the wake-up under the loop, when this thread next holds it.
        // Woken while this rank's application holds it (the application calls, and the same
        // events wake it), this thread naps instead of queueing for the lock: queued, it took
        // the loop between two of the application's calls, which sent the next call the slow
        // way, and on a core it shares with the application it preempted it twice.
        woken = true;
        idle_since = Instant::now();
    }
}
