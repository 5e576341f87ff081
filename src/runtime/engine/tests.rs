//! Two ranks' loops in one process, each with a UCX worker of its own: how a rank's progress
//! thread and an application thread that turns the loop hand it over.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;

use super::AWAKE;
use crate::config::Config;
use crate::ids::Rank;
use crate::rpc::keys::{Access, Keys};
use crate::rpc::wire::Request;
use crate::rpc::{Node, Team};
use crate::runtime::{Peers, ProgressThread, RankState, Starting};
use crate::ucx::{Scale, SendBuf};

struct Bare {
    node: Rc<Node>,
}

impl RankState for Bare {
    fn new(node: Rc<Node>) -> Bare {
        Bare { node }
    }
    fn node(&self) -> &Rc<Node> {
        &self.node
    }
}

/// Serving ranks 0 and 1 of a job in this process, with stores under `base`.
fn two_ranks(base: &std::path::Path) -> Vec<ProgressThread<Bare>> {
    two_ranks_held(base, false)
}

/// [`two_ranks`]; with `hold_start`, rank 0's progress thread waits before its loop until the
/// test clears `start_held`.
fn two_ranks_held(base: &std::path::Path, hold_start: bool) -> Vec<ProgressThread<Bare>> {
    let config = Config::from_lookup(|name| (name == "BENCHFS_DATA_DIR").then(|| base.display().to_string())).expect("config");
    let keys = Keys::generate().expect("keys");
    let scale = Scale { endpoints: 2, per_node: 2 };
    let mut starting = Vec::new();
    let mut addresses = Vec::new();
    for rank in 0..2 {
        let dir: PathBuf = base.join(format!("rank{rank}"));
        crate::storage::make_store_dir(base, &dir).expect("store directory");
        let (start, address) = Starting::<Bare>::spawn(config.clone(), Rank(rank), Some(dir), scale).expect("progress thread");
        start.driver().start_held.store(hold_start && rank == 0, Ordering::SeqCst);
        starting.push(start);
        addresses.push(address.expect("worker address"));
    }
    starting
        .into_iter()
        .map(|start| {
            let team = Team {
                addresses: addresses.clone(),
                local_dirs: vec![None, None],
                access: Access::Rank(keys),
                lost: Arc::new(AtomicU32::new(0)),
            };
            let (progress, ready) = start.connect(Peers { team, ranks_on_node: 2 });
            ready.expect("rank serves");
            progress
        })
        .collect()
}

/// The sleep gate of a driver, held on a thread of its own until it is dropped, or at the
/// latest for `GATE_LIMIT`. A call made while it is held hands its wait to the progress thread
/// if its reply takes longer than `DRIVE_LIMIT` (a loaded machine), and that thread is held at
/// the gate: the call then ends late instead of never.
struct HeldGate {
    release: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const GATE_LIMIT: Duration = Duration::from_secs(5);

impl HeldGate {
    fn new(driver: &Arc<super::Driver<Bare>>) -> HeldGate {
        let (release, released) = std::sync::mpsc::channel();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let driver = driver.clone();
        let thread = std::thread::spawn(move || {
            let _gate = driver.sleep_gate.lock().expect("gate");
            locked.send(()).expect("test waits");
            let _ = released.recv_timeout(GATE_LIMIT);
        });
        is_locked.recv().expect("gate taken");
        HeldGate { release, thread: Some(thread) }
    }
}

impl Drop for HeldGate {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until the progress thread of `rank` has armed its reactors and is about to block on
/// them.
fn wait_asleep(ranks: &[ProgressThread<Bare>], rank: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ranks[rank].driver().asleep_until.load(Ordering::Relaxed) == AWAKE {
        assert!(Instant::now() < deadline, "rank {rank}'s progress thread never went to sleep");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A directory whose owner is rank 0.
fn dir_of_rank0(node: &Node) -> Vec<u8> {
    (0..).map(|i| format!("/d{i}").into_bytes()).find(|dir| node.ring.meta_owner(dir) == Rank(0)).expect("some directory")
}

/// An application thread of rank 1 changes an entry of a directory that rank 0 owns, while rank
/// 1's progress thread sleeps with no time limit: the directory's stamp, due a moment later,
/// is still sent, because the thread wakes the sleeper as it leaves the loop.
#[test]
fn a_stamp_left_by_an_application_thread_is_sent_while_the_progress_thread_sleeps() {
    let base = std::env::temp_dir().join(format!("benchfs-runtime-test-{}", std::process::id()));
    let ranks = two_ranks(&base);
    let driver = ranks[1].driver();
    // Rank 1's progress thread arms its reactors and is held just before it blocks on them,
    // with nothing due: no time limit.
    let gate = driver.sleep_gate.lock().expect("gate");
    wait_asleep(&ranks, 1);
    let held = driver.try_hold().expect("the loop is free");
    let node = held.engine().expect("engine").node.clone();
    let dir = dir_of_rank0(&node);
    let mut entry = dir.clone();
    entry.extend_from_slice(b"/file");
    crate::rpc::entry_changed(&node, &entry);
    assert!(node.stamps.deferred().due().is_some(), "the stamp waits for its round");
    driver.leave(held, true, false);
    drop(gate);
    let deadline = Instant::now() + Duration::from_secs(2);
    let sent = loop {
        let due = driver.hold().engine().map(|engine| engine.node.stamps.deferred().due());
        if due == Some(None) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(node);
    drop(ranks);
    let _ = std::fs::remove_dir_all(&base);
    assert!(sent, "rank 1's progress thread slept past the stamp's round");
}

/// An application thread that takes the loop as soon as the rank serves, before the progress
/// thread has entered its loop, does not keep that thread out: it finds the loop taken and naps,
/// as it does whenever the application calls.
#[test]
fn a_loop_taken_before_the_progress_thread_starts_keeps_it_from_nothing() {
    let base = std::env::temp_dir().join(format!("benchfs-runtime-test-start-{}", std::process::id()));
    let ranks = two_ranks_held(&base, true);
    let busy = ranks[0].driver();
    let held = busy.hold();
    busy.start_held.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut napped = false;
    while !napped && Instant::now() < deadline {
        napped = busy.napping.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(held);
    assert_eq!(busy.try_hold().and_then(|held| busy.now_held(held, |_| Some(())).ok()), Some(()), "the loop is free");
    drop(ranks);
    let _ = std::fs::remove_dir_all(&base);
    assert!(napped, "rank 0's progress thread waited for the loop instead of entering its own");
}

/// Rank 0's application thread calls only operations that finish within the call
/// (`Driver::now_held`, a read of a same-node chunk, say) while rank 1 asks rank 0 something:
/// rank 0's progress thread wakes for the request, finds the loop taken and naps until the
/// application is done with it, so the application thread must serve the request meanwhile.
#[test]
fn a_request_is_served_while_the_application_calls_only_what_finishes_within_the_call() {
    let base = std::env::temp_dir().join(format!("benchfs-runtime-test-now-{}", std::process::id()));
    let ranks = two_ranks(&base);
    let busy = ranks[0].driver();
    // Asleep on its reactors first: the nap awaited below can then only begin once the
    // request woke it, so the request has arrived when the loop is given back. (A nap that
    // began before the request came, with the loop taken since start-up, let the call below
    // find nothing to serve.)
    wait_asleep(&ranks, 0);
    // Held as by an application thread in the middle of a call.
    let held = busy.hold();
    let answered = ask_ping(&ranks, 1, 0);
    // The request wakes rank 0's progress thread, which finds the loop taken and naps.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !busy.napping.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "rank 0's progress thread never woke for the request");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(held);
    // The nap lasts a millisecond: the application thread takes the loop back long before.
    assert_eq!(busy.try_hold().and_then(|held| busy.now_held(held, |_| Some(())).ok()), Some(()), "the loop is free");
    // Held again, so that only what that call did can have served the request.
    let held = busy.hold();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !answered.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let served = answered.load(Ordering::Acquire);
    drop(held);
    drop(ranks);
    let _ = std::fs::remove_dir_all(&base);
    assert!(served, "rank 0's application thread left the request unserved");
}

/// A call of rank 1's application that needs nothing of the loop (it finishes in its first poll
/// and sends nothing) while rank 1's progress thread has armed the reactors to sleep: it leaves
/// without turning the loop, so the UCX worker stays armed, and a request that comes later still
/// wakes the sleeper. A call that does send (a ping to rank 0) in the same state turns the loop,
/// arms the worker again as it leaves, and the next request wakes the sleeper too.
#[test]
fn a_call_that_needs_no_loop_leaves_a_sleeping_progress_thread_armed() {
    let base = std::env::temp_dir().join(format!("benchfs-runtime-test-armed-{}", std::process::id()));
    let ranks = two_ranks(&base);
    let driver = ranks[1].driver();
    let gate = driver.sleep_gate.lock().expect("gate");
    wait_asleep(&ranks, 1);
    let turns = |driver: &super::Driver<Bare>| driver.hold().engine().expect("engine").ucx_turns.get();
    let before = turns(driver);
    let held = driver.try_hold().expect("the loop is free");
    let value = driver.call_held(held, |_| async { 7 }, Duration::ZERO);
    let untouched = turns(driver) == before;
    drop(gate);
    let woken_by_request = pinged(&ranks, 0, 1);
    // Asleep again (held before blocking, or already blocked), for a call that turns the loop.
    // The call waits for rank 0's answer: the gate is held so that it cannot hang the test.
    let gate = HeldGate::new(driver);
    wait_asleep(&ranks, 1);
    let held = driver.try_hold().expect("the loop is free");
    let sent = driver.call_held(
        held,
        |state| {
            let node = state.node().clone();
            // SAFETY: a ping carries no payload and expects none back: no raw memory.
            async move { unsafe { node.transport.call(Rank(0), &Request::Ping, SendBuf::None, None) }.await.is_ok() }
        },
        Duration::ZERO,
    );
    drop(gate);
    let woken_after_send = pinged(&ranks, 0, 1);
    drop(ranks);
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(value, Some(7));
    assert!(untouched, "a call that needed no loop turned it");
    assert!(woken_by_request, "a request to the sleeping rank went unanswered after a call that needed no loop");
    assert_eq!(sent, Some(true), "rank 0 answers rank 1's ping");
    assert!(woken_after_send, "a request to the sleeping rank went unanswered after a call that turned its loop");
}

/// True if rank `from` asks rank `to` whether it is there and has its answer within half a
/// second: less than the progress thread's idle turn, so `to` must have been woken by the
/// request itself.
fn pinged(ranks: &[ProgressThread<Bare>], from: usize, to: u32) -> bool {
    let answered = ask_ping(ranks, from, to);
    let deadline = Instant::now() + Duration::from_millis(500);
    while !answered.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    answered.load(Ordering::Acquire)
}

/// Has rank `from`'s progress thread ask rank `to` whether it is there; the flag is set once an
/// answer came.
fn ask_ping(ranks: &[ProgressThread<Bare>], from: usize, to: u32) -> Arc<AtomicBool> {
    let answered = Arc::new(AtomicBool::new(false));
    let flag = answered.clone();
    let sent = ranks[from].driver().mailbox().send(Box::new(move |state: &Rc<Bare>, executor: &LocalExecutor<'static>| {
        let node = state.node().clone();
        let ask = async move {
            // SAFETY: a ping carries no payload and expects none back: no raw memory.
            let replied = unsafe { node.transport.call(Rank(to), &Request::Ping, SendBuf::None, None) }.await;
            flag.store(replied.is_ok(), Ordering::Release);
        };
        executor.spawn(ask).detach();
    }));
    assert!(sent.is_ok(), "rank {from} takes jobs");
    answered
}
