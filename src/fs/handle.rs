//! The process-wide handle: set by the outermost init or attach, torn down by the matching
//! finalize. Application threads reach the progress thread only through it.

use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::Client;
use crate::bootstrap::{self, JobComm, Running};
use crate::error::{Error, Result};
use crate::runtime::{reply_pair, Driver, Job};

/// What application threads hold: a way to reach the rank's loop.
pub struct Handle {
    driver: Arc<Driver<Client>>,
    spin: Duration,
}

impl Handle {
    /// Runs `op` on the rank's loop (on this thread when the loop is free, else on the progress
    /// thread) and blocks until it finishes.
    pub fn call<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        if self.driver.failed() {
            return Err(Error::ProgressFailed);
        }
        if let Some(held) = self.driver.try_hold() {
            return self.driver.call_held(held, |client| op(client.clone()), self.spin).unwrap_or_else(|| Err(self.gone()));
        }
        let (tx, rx) = reply_pair(self.spin);
        let job: Job<Client> = Box::new(move |client, executor| {
            let fut = op(client.clone());
            executor.spawn(async move { tx.send(fut.await) }).detach();
        });
        self.driver.run(job, || rx.is_ready()).map_err(|_| self.gone())?;
        rx.wait().unwrap_or_else(|| Err(self.gone()))
    }

    /// Runs `now` on the rank's loop on this thread, when the loop is free and `now` answers
    /// there without waiting and without leaving work on the loop (see `Driver::now_held`);
    /// otherwise `op` with `input`, as [`Handle::call`] runs it, under the same hold of the loop
    /// when it was free (a `now` that answers `None` did nothing).
    pub fn now_or_call<I, T, Fut>(
        &self,
        input: I,
        now: impl FnOnce(&Client, &I) -> Option<Result<T>>,
        op: impl FnOnce(Rc<Client>, I) -> Fut + Send + 'static,
    ) -> Result<T>
    where
        I: Send + 'static,
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        if self.driver.failed() {
            return Err(Error::ProgressFailed);
        }
        let Some(held) = self.driver.try_hold() else { return self.call(move |client| op(client, input)) };
        match self.driver.now_held(held, |client| now(client, &input)) {
            Ok(done) => done,
            Err(held) => self.driver.call_held(held, |client| op(client.clone(), input), self.spin).unwrap_or_else(|| Err(self.gone())),
        }
    }

    /// Wakes the progress thread if it sleeps.
    #[cfg(feature = "testing")]
    pub fn wake_progress(&self) {
        self.driver.mailbox().wake();
    }

    /// Why a call found no loop to run on: it failed, or it stopped.
    fn gone(&self) -> Error {
        if self.driver.failed() {
            Error::ProgressFailed
        } else {
            Error::ProgressStopped
        }
    }
}

struct Global {
    depth: u32,
    handle: Option<Arc<Handle>>,
    running: Option<Running<Client>>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global { depth: 0, handle: None, running: None });

/// The session the outermost init or attach started: 0 while BenchFS is down, a new value each
/// time it comes up. State kept outside the handle (a directory stream) belongs to one session.
static SESSION: AtomicU64 = AtomicU64::new(0);
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// The current session, or `ENOTCONN` while BenchFS is down.
pub fn session() -> Result<u64> {
    match SESSION.load(Ordering::Acquire) {
        0 => Err(Error::NotInitialized),
        session => Ok(session),
    }
}

/// Set in a child made by `fork()` once BenchFS has been started in this process (or its
/// parent): every call there fails at once. Checked before the global lock, which the fork may
/// have copied locked.
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn mark_forked_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// `Err` in a forked child.
fn not_forked() -> Result<()> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(Error::ForkedChild);
    }
    Ok(())
}

/// Registers the fork handler, once per process.
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe and valid
        // in the child of a multithreaded process.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(mark_forked_child)) };
        if rc != 0 {
            tracing::warn!(rc, "cannot watch for fork(); a forked child's calls are undefined");
        }
    });
}

fn global() -> MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handle, or `ENOTCONN` before init and after the last finalize.
pub fn handle() -> Result<Arc<Handle>> {
    not_forked()?;
    global().handle.clone().ok_or(Error::NotInitialized)
}

/// Collective over `comm`: like `benchfs_init`.
///
/// ```no_run
/// use benchfs::mpi;
///
/// let universe = mpi::initialize().unwrap();
/// benchfs::init(&universe.world())?;
/// benchfs::mkdir("/out", 0o755).or_else(|e| if e.errno() == libc::EEXIST { Ok(()) } else { Err(e) })?;
/// benchfs::finalize()?;
/// # Ok::<(), benchfs::Error>(())
/// ```
pub fn init<C: mpi::traits::Communicator>(comm: &C) -> Result<()> {
    init_raw(comm.as_raw())
}

/// Like [`init`], for a raw `MPI_Comm` (the C API).
pub fn init_raw(comm: mpi::ffi::MPI_Comm) -> Result<()> {
    enter(comm, bootstrap::start)
}

/// Collective over the client job's `comm`: like `benchfs_attach`. The job becomes a pure
/// client of the BenchFS job that published `contact_file`; [`finalize`] detaches.
pub fn attach<C: mpi::traits::Communicator>(comm: &C, contact_file: &Path) -> Result<()> {
    attach_raw(comm.as_raw(), contact_file)
}

/// Like [`attach`], for a raw `MPI_Comm` (the C API).
pub fn attach_raw(comm: mpi::ffi::MPI_Comm, contact_file: &Path) -> Result<()> {
    enter(comm, |comm| bootstrap::attach(comm, contact_file))
}

/// The outermost init or attach starts a progress thread; nested ones only count.
fn enter(comm: mpi::ffi::MPI_Comm, start: impl FnOnce(JobComm) -> Result<Running<Client>>) -> Result<()> {
    not_forked()?;
    watch_forks();
    let mut g = global();
    if g.depth > 0 {
        g.depth += 1;
        return Ok(());
    }
    let running = start(JobComm::duplicate(comm)?)?;
    bootstrap::on_mpi_finalize(finalize_left_open);
    let progress = running.progress();
    g.handle = Some(Arc::new(Handle { driver: progress.driver().clone(), spin: progress.spin() }));
    g.running = Some(running);
    g.depth = 1;
    SESSION.store(NEXT_SESSION.fetch_add(1, Ordering::Relaxed), Ordering::Release);
    Ok(())
}

/// What `MPI_Finalize` runs first: the finalize an application left out, so that its rank still
/// takes part in the others' `benchfs_finalize` (which would otherwise wait for it).
fn finalize_left_open() {
    let open = global().depth;
    if open > 0 {
        tracing::warn!("MPI_Finalize without benchfs_finalize: finalizing BenchFS first");
    }
    for _ in 0..open {
        if let Err(e) = finalize() {
            tracing::warn!(error = %e, "finalize at MPI_Finalize failed");
        }
    }
}

/// Collective: like `benchfs_finalize`. Only the outermost call tears down.
pub fn finalize() -> Result<()> {
    not_forked()?;
    let mut g = global();
    match g.depth {
        0 => return Err(Error::NotInitialized),
        1 => {}
        _ => {
            g.depth -= 1;
            return Ok(());
        }
    }
    g.depth = 0;
    g.handle = None;
    SESSION.store(0, Ordering::Release);
    let Some(running) = g.running.take() else {
        return Err(Error::Internal("initialized state is incomplete"));
    };
    running.stop()
}
