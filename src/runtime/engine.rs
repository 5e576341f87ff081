//! The rank's loop state, and the lock that lets an application thread turn the loop itself.
//!
//! Everything the loop drives (executor, node, UCX worker, chunk store) lives in one [`Engine`]
//! that is not `Send`. It sits in a [`Driver`] behind a mutex: whichever thread holds the lock
//! may turn the loop, and nobody touches the engine without it. The progress thread holds it
//! for one turn at a time and never while it blocks. An application thread that calls finds the
//! lock free most of the time, runs its job and turns the loop itself until its reply is ready,
//! so a call costs no hand-off between threads (two context switches when both share a core);
//! only when the lock is taken (the progress thread mid-turn, or another application thread
//! driving) does the job go through the mailbox as before.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::reactors::{StoreReactor, UcxReactor};
use super::{Job, Mailbox, RankState, Reactor};
use crate::rpc::Node;

/// Tasks run per turn before the reactors get a turn again.
const TASKS_PER_TURN: usize = 64;
/// How long an application thread turning the loop for its reply polls without giving up its
/// core: a round trip to a peer rank on this node takes a few microseconds, and a peer that is
/// busy with calls of its own answers between them, often some microseconds later.
const HOT_SPIN: Duration = Duration::from_micros(20);
/// Turns an application thread runs after its reply, for the loop to come to rest before it
/// leaves; still busy after that, it wakes the progress thread.
const SETTLE_TURNS: usize = 8;
/// How long an application thread turns the loop for its reply before it leaves the rest to the
/// progress thread (which also watches that peers still answer).
const DRIVE_LIMIT: Duration = Duration::from_millis(1);
/// The longest single block of an application thread turning the loop.
const BLOCK_SLICE: Duration = Duration::from_micros(200);

/// The waker of a call polled on the thread that makes it: it only notes that the call may go
/// on, which this thread checks as it turns the loop.
#[derive(Default)]
struct CallWake {
    woken: AtomicBool,
}

impl Wake for CallWake {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
    }
}

thread_local! {
    /// One per thread, for every call it makes: a wake meant for an earlier call costs a poll
    /// of the current one at most.
    static CALL_WAKE: (Arc<CallWake>, Waker) = {
        let wake = Arc::new(CallWake::default());
        (wake.clone(), Waker::from(wake))
    };
}

/// What one turn of the loop did.
pub struct Turn {
    /// Anything at all: a job, a task, a reactor event.
    pub busy: bool,
    /// A job from this rank's application came through the mailbox.
    pub jobs: bool,
    /// A request or reply came from the network (or an I/O completion).
    pub traffic: bool,
}

/// The rank's loop state: built and dropped on the progress thread, used under the driver's lock.
pub struct Engine<S: RankState> {
    pub node: Rc<Node>,
    pub state: Rc<S>,
    pub executor: LocalExecutor<'static>,
    /// Turns of the UCX reactor so far (see `UcxReactor::turn`).
    pub ucx_turns: std::cell::Cell<u32>,
}

impl<S: RankState> Engine<S> {
    /// One turn: the mailbox's jobs, ready tasks, every reactor, then the tasks they woke.
    pub fn turn(&self, mailbox: &Mailbox<Job<S>>) -> Turn {
        let mut jobs = false;
        for job in mailbox.drain() {
            job(&self.state, &self.executor);
            jobs = true;
        }
        let mut busy = self.tick();
        let mut traffic = false;
        for reactor in self.reactors().iter() {
            traffic |= reactor.turn();
        }
        busy |= self.tick();
        Turn { busy: busy || jobs || traffic, jobs, traffic }
    }

    fn tick(&self) -> bool {
        let mut ran = false;
        for _ in 0..TASKS_PER_TURN {
            if !self.executor.try_tick() {
                break;
            }
            ran = true;
        }
        ran
    }

    /// The reactors: the UCX worker, and the chunk store's ring if this rank has one.
    fn reactors(&self) -> Reactors<'_> {
        Reactors {
            ucx: UcxReactor { node: &self.node, executor: &self.executor, turns: &self.ucx_turns },
            store: self.node.chunk_store().map(|store| StoreReactor { store }),
        }
    }

    /// Checks the ranks this rank's calls wait for, and pings the silent ones (see
    /// `Transport::watch`); cheap when it is not yet time.
    pub fn watch(&self) {
        for rank in self.node.transport.watch() {
            let node = self.node.clone();
            self.executor.spawn(async move { node.transport.ping(rank).await }).detach();
        }
    }

    /// How long the loop may sleep before it must watch again, or send directory stamps or
    /// writer releases; `None`: as long as it likes.
    pub fn sleep_limit(&self) -> Option<Duration> {
        [self.node.transport.watch_interval(), self.node.stamps.deferred().until_due(), self.node.unregisters.deferred().until_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Blocks the thread that holds the loop until a reactor or the mailbox has work, for `time`
    /// at most. A thread that waits for a reply this way is woken by the reply, or by a request
    /// it then serves, and is off the run queue meanwhile: with more runnable threads than
    /// cores, polling by yielding made every waiting thread take turns that did nothing, in
    /// place of the threads that had requests to serve.
    pub fn block(&self, mailbox: &Mailbox<Job<S>>, time: Duration) {
        // Jobs already queued run first, at the next turn.
        if !mailbox.prepare_sleep() {
            return;
        }
        if self.arm() {
            let mut fds = self.event_fds();
            fds.push(mailbox.event_fd());
            super::poll_fds(&fds, time);
            self.after_wake();
        }
        mailbox.finish_sleep();
    }

    /// True if a call that just finished in its first poll, with `issued` counting this
    /// thread's UCX operations before it, left the loop nothing to do: it issued no UCX
    /// operation, no task is ready (ready ones run here, and then the loop has work), and the
    /// chunk store has no I/O queued.
    pub fn untouched(&self, issued: u64) -> bool {
        crate::ucx::operations_issued() == issued && !self.tick() && self.node.chunk_store().map_or(true, |store| store.submit() == 0)
    }

    /// Prepares every reactor to block; false if there is already work.
    pub fn arm(&self) -> bool {
        self.reactors().iter().all(|r| r.arm())
    }

    pub fn after_wake(&self) {
        for reactor in self.reactors().iter() {
            reactor.after_wake();
        }
    }

    /// The fds that become readable when a reactor has work.
    pub fn event_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.reactors().iter().filter_map(|r| r.event_fd()).collect()
    }

    pub fn stopping(&self) -> bool {
        self.node.stop.get()
    }

    /// After the loop failed: waits (for a few seconds at most) until the kernel holds no
    /// buffer of a pending operation; true if none is left. UCX is not progressed again, so no
    /// transport moves data into a caller's buffer after this (on shared memory and TCP, data
    /// moves only while the worker is progressed).
    pub fn quiesce(&self) -> bool {
        let deadline = Instant::now() + QUIESCE_TIME;
        self.node.chunk_store().map_or(true, |store| store.drain_kernel(deadline))
    }
}

/// How long a failed loop waits for the kernel to finish the operations it holds.
const QUIESCE_TIME: Duration = Duration::from_secs(5);

struct Reactors<'a> {
    ucx: UcxReactor<'a>,
    store: Option<StoreReactor<'a>>,
}

impl Reactors<'_> {
    fn iter(&self) -> impl Iterator<Item = &dyn Reactor> {
        std::iter::once(&self.ucx as &dyn Reactor).chain(self.store.as_ref().map(|s| s as &dyn Reactor))
    }
}

/// The engine behind its lock.
struct Locked<S: RankState>(Option<Engine<S>>);

// SAFETY: an `Engine` (with its `Rc`s, the UCX worker in serialized mode and every task's
// future) is only ever touched by the thread that holds the driver's mutex, so no two threads
// use it at once, and the mutex orders each holder's accesses after the previous holder's. It is
// created and dropped on the progress thread. Task wakers, the only things that leave it, are
// `Send + Sync` themselves.
unsafe impl<S: RankState> Send for Locked<S> {}

/// The lock around a rank's engine, shared by its progress thread and its application threads.
pub struct Driver<S: RankState> {
    engine: Mutex<Locked<S>>,
    mailbox: Arc<Mailbox<Job<S>>>,
    spin: Duration,
    /// Poll without yielding for `HOT_SPIN` first: set when the node has a CPU for each of the
    /// job's ranks there. With more ranks than CPUs, a poll that keeps its core starves the
    /// peers that must answer it.
    hot_spin: AtomicBool,
    /// The loop failed: calls fail with EIO instead of finding it stopped.
    failed: AtomicBool,
    /// When an application thread last left the loop, in nanoseconds after `epoch`; written
    /// only while the progress thread naps, the one time it is read (see `Driver::napping`).
    left_at: AtomicU64,
    /// The progress thread naps while this rank's application calls, and will want to know
    /// how long ago the application last left the loop (see `Nap` in the runtime).
    napping: AtomicBool,
    /// While the progress thread blocks on the reactors' fds: until when at most, in
    /// nanoseconds after `epoch`; `AWAKE` otherwise. Written
    /// under the lock as it goes to sleep, so every later holder sees it.
    asleep_until: AtomicU64,
    epoch: Instant,
    /// The CPU clock of the application thread that last left the loop, first the one that
    /// made the driver; `NO_CLOCK` if it has none (see `AppWatch`).
    app_clock: AtomicI32,
    /// Held by a test to stop the progress thread between arming the reactors and blocking.
    #[cfg(test)]
    sleep_gate: Mutex<()>,
    /// Set by a test to stop the progress thread after it reported the rank ready and before it
    /// enters its loop.
    #[cfg(test)]
    start_held: AtomicBool,
}

/// `Driver::app_clock` of a thread without a CPU clock: CLOCK_REALTIME, never a thread's.
const NO_CLOCK: libc::clockid_t = libc::CLOCK_REALTIME;

/// `Driver::asleep_until` while the progress thread does not block on the reactors.
const AWAKE: u64 = 0;
/// The latest time `Driver::asleep_until` can hold.
const FOREVER: u64 = u64::MAX;

/// The engine, held; `None` before the progress thread built it and after it stopped.
pub struct Held<'a, S: RankState>(MutexGuard<'a, Locked<S>>);

impl<S: RankState> Held<'_, S> {
    pub fn engine(&self) -> Option<&Engine<S>> {
        self.0 .0.as_ref()
    }
}

impl<S: RankState> Driver<S> {
    pub fn new(mailbox: Arc<Mailbox<Job<S>>>, spin: Duration) -> Driver<S> {
        Driver {
            engine: Mutex::new(Locked(None)),
            mailbox,
            spin,
            hot_spin: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            left_at: AtomicU64::new(0),
            napping: AtomicBool::new(false),
            asleep_until: AtomicU64::new(AWAKE),
            epoch: Instant::now(),
            app_clock: AtomicI32::new(super::app_watch::this_thread_clock().unwrap_or(NO_CLOCK)),
            #[cfg(test)]
            sleep_gate: Mutex::new(()),
            #[cfg(test)]
            start_held: AtomicBool::new(false),
        }
    }

    /// The CPU clock of the application thread that last left the loop (before any call, the
    /// one that started the rank).
    pub fn app_clock(&self) -> Option<libc::clockid_t> {
        Some(self.app_clock.load(Ordering::Relaxed)).filter(|&clock| clock != NO_CLOCK)
    }

    pub fn set_hot_spin(&self, on: bool) {
        self.hot_spin.store(on, Ordering::Relaxed);
    }

    /// Marks the loop as failed (see [`Driver::failed`]).
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// True once the loop has failed: no call can be served any more.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn mailbox(&self) -> &Arc<Mailbox<Job<S>>> {
        &self.mailbox
    }

    /// Waits for the lock.
    pub fn hold(&self) -> Held<'_, S> {
        Held(self.engine.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The lock if it is free; `None` while another thread turns the loop.
    pub fn try_hold(&self) -> Option<Held<'_, S>> {
        match self.engine.try_lock() {
            Ok(guard) => Some(Held(guard)),
            Err(TryLockError::Poisoned(p)) => Some(Held(p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Puts the engine in (`Some`, once the progress thread built it) or takes it out.
    pub fn set(&self, engine: Option<Engine<S>>) -> Option<Engine<S>> {
        std::mem::replace(&mut self.hold().0 .0, engine)
    }

    /// Runs `job` on the rank's loop, on this thread if the loop is free: then it turns the loop
    /// here until `done` or until nothing happens for the spin time (a reply from a slow peer),
    /// and leaves the rest to the progress thread. Otherwise the job goes through the mailbox.
    /// `Err` gives the job back when the loop has stopped.
    pub fn run(&self, job: Job<S>, done: impl Fn() -> bool) -> Result<(), Job<S>> {
        let Some(guard) = self.try_hold() else {
            // Taken (the progress thread mid-turn, or another caller driving): the holder, or the
            // progress thread after it, runs the job from the mailbox.
            return self.mailbox.send(job);
        };
        let Some(engine) = guard.engine().filter(|e| !e.stopping()) else { return Err(job) };
        job(&engine.state, &engine.executor);
        let settled = self.drive(engine, done, || false);
        self.leave(guard, settled, true);
        Ok(())
    }

    /// Runs `now` on the loop this thread holds (`guard`, from [`Driver::try_hold`]) and gives
    /// back what it returns. `now` must finish its work within the call without starting any on
    /// the loop (no send, no task woken or spawned, nothing deferred), so the loop needs no turn
    /// for it. It gets one all the same unless the progress thread sleeps on the reactors' fds:
    /// awake, that thread waits for the application to be done with the loop (it naps, see
    /// `Nap` in the runtime), and the requests and jobs that woke it are served by the calling
    /// threads meanwhile, as every call's turns serve them. When `now` answers `None` (it did
    /// nothing), or the loop has stopped, the loop is given back still held, without a turn,
    /// for the caller's slower way (see [`Driver::call_held`]).
    pub fn now_held<'a, T>(&'a self, guard: Held<'a, S>, now: impl FnOnce(&Rc<S>) -> Option<T>) -> Result<T, Held<'a, S>> {
        let Some(value) = guard.engine().filter(|e| !e.stopping()).and_then(|engine| now(&engine.state)) else {
            return Err(guard);
        };
        let asleep = self.progress_asleep();
        let settled = asleep || guard.engine().map_or(true, |engine| (0..SETTLE_TURNS).any(|_| !engine.turn(&self.mailbox).busy));
        self.leave(guard, settled, !asleep);
        Ok(value)
    }

    /// True while the progress thread blocks on the reactors' fds: events wake it, and none
    /// needs the thread that holds the loop to turn it.
    fn progress_asleep(&self) -> bool {
        self.asleep_until.load(Ordering::Relaxed) != AWAKE
    }

    /// Runs a call on the loop this thread holds (`guard`, from [`Driver::try_hold`]): the
    /// future `start` makes is polled here at once, and most calls that need no other rank end
    /// in that first poll, with no task, no reply slot and no turn of the loop before their
    /// result. A call that must wait is polled here again whenever it is woken, while this
    /// thread turns the loop for it as [`Driver::run`] does; only if it is still pending when
    /// this thread leaves the loop does it become a task that the progress thread finishes.
    /// A call that ends in its first poll turns the loop once or more before this thread
    /// leaves (serving what came meanwhile), unless the progress thread sleeps on the
    /// reactors' fds and the call left the loop nothing to do (see [`Engine::untouched`]): the
    /// sleeper is woken by whatever arrives, and a turn would only have cost it its armed worker.
    /// `None` if the loop has stopped.
    pub fn call_held<T, Fut>(&self, guard: Held<'_, S>, start: impl FnOnce(&Rc<S>) -> Fut, spin: Duration) -> Option<T>
    where
        T: 'static,
        Fut: Future<Output = T> + 'static,
    {
        let engine = guard.engine().filter(|e| !e.stopping())?;
        let issued = crate::ucx::operations_issued();
        let mut call = Box::pin(start(&engine.state));
        let (value, settled) = CALL_WAKE.with(|(wake, waker)| {
            wake.woken.store(false, Ordering::Relaxed);
            let mut cx = Context::from_waker(waker);
            let mut value = match call.as_mut().poll(&mut cx) {
                Poll::Ready(value) => Some(value),
                Poll::Pending => None,
            };
            if value.is_some() && self.progress_asleep() && engine.untouched(issued) {
                return (value, None);
            }
            // A finished call may have woken tasks (a fence it left) or started sends: the
            // loop still settles before this thread leaves it.
            let settled = self.drive(
                engine,
                || {
                    if value.is_none() && wake.woken.swap(false, Ordering::Acquire) {
                        if let Poll::Ready(done) = call.as_mut().poll(&mut cx) {
                            value = Some(done);
                        }
                    }
                    value.is_some()
                },
                // Woken again (by itself, say, to retry at once): as a runnable task was, it
                // keeps the loop from counting as quiet.
                || wake.woken.load(Ordering::Relaxed),
            );
            (value, Some(settled))
        });
        let Some(settled) = settled else {
            // Finished in its first poll, leaving the loop nothing to do, while the progress
            // thread sleeps on the reactors' fds: no turn, which would take a UCX signal that
            // thread then needs the worker re-armed for (two system calls or more).
            self.leave(guard, true, false);
            return value;
        };
        if value.is_some() {
            self.leave(guard, settled, true);
            return value;
        }
        // Still waiting as this thread leaves: the progress thread polls it from now on, as a
        // task with a waker of its own.
        let (tx, rx) = super::reply_pair(spin);
        engine.executor.spawn(async move { tx.send(call.await) }).detach();
        self.leave(guard, false, true);
        rx.wait()
    }

    /// Turns the loop on this thread until `done`: polling first, then, once nothing has
    /// happened for the spin time, blocked until a reactor or the mailbox has work (see
    /// [`Engine::block`]); after `DRIVE_LIMIT` it leaves the rest to the progress thread. A turn
    /// counts as busy also while `woken` (the call has a wake its next check will see). True if
    /// it came to rest after `done`.
    fn drive(&self, engine: &Engine<S>, mut done: impl FnMut() -> bool, woken: impl Fn() -> bool) -> bool {
        let hot = if self.hot_spin.load(Ordering::Relaxed) { HOT_SPIN } else { Duration::ZERO };
        // The clock is read only by turns that find nothing to do: most calls are done before
        // any such turn. Times count from the first of them.
        let mut started = None;
        let mut quiet_since = None;
        while !done() && !engine.stopping() {
            if engine.turn(&self.mailbox).busy || woken() {
                quiet_since = None;
                continue;
            }
            let now = Instant::now();
            let started = *started.get_or_insert(now);
            let quiet = now - *quiet_since.get_or_insert(now);
            if quiet >= self.spin {
                if now - started >= DRIVE_LIMIT {
                    break;
                }
                engine.block(&self.mailbox, BLOCK_SLICE);
            } else if quiet >= hot {
                // What the reply waits for may need this core: a peer rank's progress thread
                // (when ranks outnumber cores), a kernel worker finishing an io_uring operation.
                std::thread::yield_now();
            }
        }
        // Work this thread started or woke must not wait for an event that already came: it
        // leaves the loop with nothing ready, or wakes the progress thread to carry on.
        done() && (0..SETTLE_TURNS).any(|_| !engine.turn(&self.mailbox).busy)
    }

    /// The progress thread, holding the loop, has armed the reactors and blocks on their fds
    /// for `limit` at most once it lets the loop go.
    pub fn going_to_sleep(&self, limit: Duration) {
        let until = self.nanos_from_now(limit).clamp(AWAKE + 1, FOREVER);
        self.asleep_until.store(until, Ordering::Relaxed);
    }

    /// Waits while a test holds the progress thread before its loop.
    #[cfg(test)]
    pub fn pass_start_gate(&self) {
        while self.start_held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits while a test holds the progress thread before it blocks.
    #[cfg(test)]
    pub fn pass_sleep_gate(&self) {
        drop(self.sleep_gate.lock());
    }

    /// The progress thread no longer blocks on the reactors' fds.
    pub fn woke(&self) {
        self.asleep_until.store(AWAKE, Ordering::Relaxed);
    }

    /// `from_now` from now, in nanoseconds after `epoch`.
    fn nanos_from_now(&self, from_now: Duration) -> u64 {
        u64::try_from((self.epoch.elapsed() + from_now).as_nanos()).unwrap_or(FOREVER)
    }

    /// Whether the progress thread, blocked since before this thread took the loop, would sleep
    /// past something this thread leaves behind: a deferred round (directory stamps, writer
    /// releases) or a pending call to watch, due before the time the sleeper set itself.
    /// Nothing else would wake it for them: no event comes for a due time.
    fn sleeper_misses(&self, engine: &Engine<S>) -> bool {
        match self.asleep_until.load(Ordering::Relaxed) {
            AWAKE => false,
            until => engine.sleep_limit().is_some_and(|limit| self.nanos_from_now(limit) < until),
        }
    }

    /// The progress thread starts (`true`) or ends a nap. While it naps, threads that leave
    /// the loop note when; a thread that left before the nap began left at least the nap's
    /// length before the progress thread asks (see [`Driver::away`]).
    pub fn napping(&self, on: bool) {
        // Sequentially consistent, as is the load in `leave`: either the leaving thread sees
        // the nap and notes the time, or the nap's end sees that thread's earlier note.
        self.napping.store(on, Ordering::SeqCst);
    }

    /// How long ago an application thread last left the loop, as far as the progress thread,
    /// after a nap, can tell (see [`Driver::napping`]).
    pub fn away(&self) -> Duration {
        let left_at = Duration::from_nanos(self.left_at.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(left_at)
    }

    /// Notes when this thread leaves the loop, for a napping progress thread (see
    /// [`Driver::napping`]); for no one else: a call that reads the clock costs more. Notes
    /// which thread left it, whose CPU time the progress thread watches (see `AppWatch`).
    fn note_leaving(&self) {
        if self.napping.load(Ordering::SeqCst) {
            self.left_at.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        // Written only when another thread calls: the progress thread reads it.
        let clock = super::app_watch::this_thread_clock().unwrap_or(NO_CLOCK);
        if self.app_clock.load(Ordering::Relaxed) != clock {
            self.app_clock.store(clock, Ordering::Relaxed);
        }
    }

    /// Gives the loop back; the progress thread carries on with what did not come to rest, and
    /// is woken for what falls due before it would wake. A thread that `turned` the loop while
    /// the progress thread blocks on the reactors' fds arms them again first: a reactor signals
    /// its fd once per arming (UCX's worker), and the turns may have taken that signal with
    /// nothing left to show for it, so the progress thread would sleep through the messages
    /// that follow. A reactor that already holds work (it refuses to be armed) is the progress
    /// thread's to turn: it is woken.
    fn leave(&self, guard: Held<'_, S>, settled: bool, turned: bool) {
        let engine = guard.engine();
        // Arms only when nothing else wakes the progress thread.
        let disarmed = || turned && self.asleep_until.load(Ordering::Relaxed) != AWAKE && engine.is_some_and(|engine| !engine.arm());
        let wake = !settled || engine.is_some_and(|engine| self.sleeper_misses(engine)) || disarmed();
        self.note_leaving();
        drop(guard);
        if wake {
            // Always signalled: the progress thread may nap or sleep without having said so
            // (a thread blocked in `Engine::block` clears the mailbox's flag as it wakes).
            self.mailbox.wake();
        }
    }
}

#[cfg(test)]
mod tests;
