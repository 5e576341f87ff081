//! The progress thread of a rank: its start in two steps (worker address first, peers after),
//! the jobs application threads send it, and its orderly stop.
//!
//! The thread builds and drops everything that is not `Send`: the UCX worker, the [`Node`] built
//! on it, the executor, and the state `S` that the file-system layer keeps beside the node (its
//! descriptor table), all in one engine behind the [`Driver`]'s lock. Application threads reach
//! them only through [`Job`]s: run under the lock on their own thread, or sent to the mailbox.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_executor::LocalExecutor;

use super::engine::{Driver, Engine};
use super::{loop_poller, reply_pair, run_loop, Mailbox};
use crate::config::Config;
use crate::error::{BootstrapError, Error, Result};
use crate::ids::Rank;
use crate::rpc::{Node, Team};
use crate::ucx::{Context, Scale, Worker};

/// Work for the progress thread, sent by an application thread: it runs there with the rank's
/// state and may spawn tasks on the executor.
pub type Job<S> = Box<dyn FnOnce(&Rc<S>, &LocalExecutor<'static>) + Send>;

/// What the layer above keeps on the progress thread, built around the node once it serves.
pub trait RankState: 'static {
    fn new(node: Rc<Node>) -> Self;
    fn node(&self) -> &Rc<Node>;
}

/// What a starting progress thread learns about the other ranks.
pub struct Peers {
    /// The job as the node needs it.
    pub team: Team,
    /// Ranks of this job (the serving one, or the attaching one) on this node.
    pub ranks_on_node: u32,
}

/// Messages from a starting progress thread to the thread that starts it.
enum Boot {
    Address(Result<Vec<u8>>),
    Ready(Result<()>),
}

/// A rank's running progress thread, stopped (and joined) when dropped.
pub struct ProgressThread<S: RankState> {
    driver: Arc<Driver<S>>,
    spin: Duration,
    thread: Option<JoinHandle<()>>,
}

/// A progress thread that has created its worker and waits for the peers' addresses.
pub struct Starting<S: RankState> {
    progress: ProgressThread<S>,
    boot: mpsc::Receiver<Boot>,
    peers: mpsc::Sender<Peers>,
}

impl<S: RankState> Starting<S> {
    /// Spawns the thread of `rank` (`EXTERNAL_SOURCE` for an attached client, which has no
    /// chunk-store directory); returns it with its worker address, or the reason it has none.
    pub fn spawn(config: Config, rank: Rank, dir: Option<PathBuf>, scale: Scale) -> Result<(Starting<S>, Result<Vec<u8>>)> {
        let mailbox = Arc::new(Mailbox::new().map_err(BootstrapError::Thread)?);
        let (boot_tx, boot_rx) = mpsc::channel::<Boot>();
        let (peers_tx, peers_rx) = mpsc::channel::<Peers>();
        let spin = Duration::from_micros(config.spin_us);
        let driver = Arc::new(Driver::new(mailbox, spin));
        let thread_driver = driver.clone();
        let thread = std::thread::Builder::new()
            .name(format!("benchfs-progress-{}", rank.0))
            .spawn(move || progress_main::<S>(config, rank, dir, scale, thread_driver, boot_tx, peers_rx))
            .map_err(BootstrapError::Thread)?;
        let progress = ProgressThread { driver, spin, thread: Some(thread) };
        let address = match boot_rx.recv() {
            Ok(Boot::Address(a)) => a,
            _ => Err(Error::ProgressStopped),
        };
        Ok((Starting { progress, boot: boot_rx, peers: peers_tx }, address))
    }

    /// The starting thread's driver.
    #[cfg(test)]
    pub fn driver(&self) -> &Arc<Driver<S>> {
        &self.progress.driver
    }

    /// Hands the thread what it needs to know of its peers and waits until it serves.
    pub fn connect(self, peers: Peers) -> (ProgressThread<S>, Result<()>) {
        let _ = self.peers.send(peers);
        let ready = match self.boot.recv() {
            Ok(Boot::Ready(r)) => r,
            _ => Err(Error::ProgressStopped),
        };
        (self.progress, ready)
    }
}

impl<S: RankState> ProgressThread<S> {
    /// Where application threads run their jobs.
    pub fn driver(&self) -> &Arc<Driver<S>> {
        &self.driver
    }

    /// How long a thread waiting for a reply checks before it blocks.
    pub fn spin(&self) -> Duration {
        self.spin
    }

    /// Runs `job` on the progress thread and waits until the future it returns has finished.
    fn run(&self, job: impl FnOnce(&Rc<S>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static) {
        let (tx, rx) = reply_pair::<()>(self.spin);
        let sent = self.driver.mailbox().send(Box::new(move |state, executor| {
            let fut = job(state);
            executor
                .spawn(async move {
                    fut.await;
                    tx.send(())
                })
                .detach();
        }));
        if sent.is_ok() {
            rx.wait();
        }
    }

    /// Sends what this rank deferred (directory stamps, releases of writers that wrote
    /// nothing; see `rpc::stamps` and `rpc::unregisters`) and waits for the answers; the other
    /// ranks must still serve.
    pub fn settle_deferred(&self) {
        self.run(|state| {
            let node = state.node().clone();
            Box::pin(async move {
                futures_lite::future::zip(node.stamps.deferred().settled(), node.unregisters.deferred().settled()).await;
            })
        });
    }

    /// Completes all sends and closes every endpoint; the thread keeps running.
    pub fn close_transport(&self) {
        self.run(|state| {
            let node = state.node().clone();
            Box::pin(async move { node.transport.shutdown().await })
        });
    }

    /// Asks every other rank whether it is still there, without waiting for the answers (see
    /// `Transport::ping_all`): a rank that is gone is then found within the peer timeout.
    pub fn ping_all(&self) {
        drop(self.driver.mailbox().send(Box::new(|state: &Rc<S>, executor: &LocalExecutor<'static>| {
            let node = state.node().clone();
            executor.spawn(async move { node.transport.ping_all().await }).detach();
        })));
    }

    /// Closes every endpoint at once, without a word with the peers; the thread keeps running.
    pub fn close_transport_now(&self) {
        self.run(|state| {
            let node = state.node().clone();
            Box::pin(async move { node.transport.shutdown_now().await })
        });
    }

    /// Stops the loop and joins the thread (which then tears the node down).
    pub fn stop(&mut self) {
        self.run(|state| {
            state.node().stop.set(true);
            Box::pin(async {})
        });
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the progress thread panicked");
            }
        }
    }
}

impl<S: RankState> Drop for ProgressThread<S> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// Closes the mailbox when the progress thread ends, on every path: the jobs still queued are
/// dropped, which releases their callers (they see the loop stopped), and later sends fail at
/// once instead of queueing for a thread that is gone.
struct Closing<'a, J>(&'a Mailbox<J>);

impl<J> Drop for Closing<'_, J> {
    fn drop(&mut self) {
        drop(self.0.close());
    }
}

/// The worker and its address, reported to the starting thread either way.
fn boot_worker(boot: &mpsc::Sender<Boot>, scale: Scale) -> Option<Worker> {
    let worker = Context::new(scale).map(Rc::new).and_then(Worker::new).map_err(Error::from);
    match worker.and_then(|w| w.address().map(|a| (w, a)).map_err(Error::from)) {
        Ok((worker, address)) => {
            let _ = boot.send(Boot::Address(Ok(address)));
            Some(worker)
        }
        Err(e) => {
            let _ = boot.send(Boot::Address(Err(e)));
            None
        }
    }
}

/// CPUs online on this node.
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

fn progress_main<S: RankState>(
    config: Config,
    rank: Rank,
    dir: Option<PathBuf>,
    scale: Scale,
    driver: Arc<Driver<S>>,
    boot: mpsc::Sender<Boot>,
    peers: mpsc::Receiver<Peers>,
) {
    crate::storage::own_rings_here();
    // However this thread ends, nothing is left waiting on its mailbox.
    let _closing = Closing(driver.mailbox());
    let Some(worker) = boot_worker(&boot, scale) else { return };
    let Ok(peers) = peers.recv() else { return };
    driver.set_hot_spin(peers.ranks_on_node as usize <= online_cpus());
    let node = match Node::build(config, rank, dir.as_deref(), worker, peers.team) {
        Ok(node) => Rc::new(node),
        Err(e) => {
            let _ = boot.send(Boot::Ready(Err(e)));
            return;
        }
    };
    let state = Rc::new(S::new(node.clone()));
    let spin = Duration::from_micros(node.config.spin_us);
    let engine = Engine { node: node.clone(), state, executor: LocalExecutor::new(), ucx_turns: Default::default() };
    let poller = match loop_poller(driver.mailbox(), &engine) {
        Ok(poller) => poller,
        Err(e) => {
            let _ = boot.send(Boot::Ready(Err(BootstrapError::Thread(e).into())));
            return;
        }
    };
    driver.set(Some(engine));
    let _ = boot.send(Boot::Ready(Ok(())));
    #[cfg(test)]
    driver.pass_start_gate();
    let failed = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_loop(&driver, spin, &poller))) {
        Ok(Ok(())) => false,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "progress loop failed; every call on this rank fails from now on");
            true
        }
        Err(_) => {
            tracing::error!("progress thread panicked; every call on this rank fails from now on");
            true
        }
    };
    if failed {
        // Before anything is released: later calls fail at once, and so do the calls whose
        // jobs are dropped below.
        driver.fail();
    }
    // Queued jobs are dropped unanswered: their callers see the loop stopped (or failed)
    // instead of waiting.
    drop(driver.mailbox().close());
    // Taken out under the lock: no application thread can reach it any more.
    let engine = driver.set(None);
    if failed {
        abandon(engine, node);
        return;
    }
    drop(engine);
    match Rc::try_unwrap(node) {
        Ok(node) => node.teardown(),
        Err(_) => tracing::error!("node still referenced at shutdown; chunk files left in place"),
    }
}

/// Tears a failed loop down in an order that frees no buffer something may still write into:
/// first the kernel's operations complete (or the engine is leaked whole), then the tasks go,
/// which releases the callers waiting on them; UCX is never progressed again.
fn abandon<S: RankState>(engine: Option<Engine<S>>, node: Rc<Node>) {
    if let Some(engine) = engine {
        if engine.quiesce() {
            drop(engine);
        } else {
            tracing::error!("the kernel still holds I/O of the failed loop; its memory is kept");
            std::mem::forget(engine);
            std::mem::forget(node);
            return;
        }
    }
    match Rc::try_unwrap(node) {
        Ok(node) => node.abandon(),
        Err(node) => std::mem::forget(node),
    }
}
