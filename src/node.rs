//! The state of one rank on its progress thread: what it serves and what its clients use.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use async_executor::LocalExecutor;

use crate::client::FileTable;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::{ChunkIndex, InodeId, Rank};
use crate::metadata::MetaTable;
use crate::placement::Ring;
use crate::rpc::Transport;
use crate::storage::{ChunkStore, PeerFiles};

pub struct Node {
    pub rank: Rank,
    pub nranks: u32,
    pub config: Config,
    /// This rank's chunk-store directory.
    pub data_dir: PathBuf,
    pub ring: Ring,
    pub transport: Transport,
    pub meta: RefCell<MetaTable>,
    /// The chunk store; `None` on an attached client, which serves nothing.
    store: Option<ChunkStore>,
    /// Open files of this rank's application threads.
    pub files: RefCell<FileTable>,
    /// Chunk files of same-node ranks, reached directly.
    pub peers: PeerFiles,
    /// Set by a job to end the progress loop.
    pub stop: Cell<bool>,
}

impl Node {
    pub fn store(&self) -> Result<&ChunkStore> {
        self.store.as_ref().ok_or(Error::Internal("an attached client stores no chunks"))
    }

    pub fn chunk_size(&self) -> u64 {
        self.config.chunk_size
    }

    pub fn chunk_of(&self, offset: u64) -> ChunkIndex {
        ChunkIndex(offset / self.config.chunk_size)
    }

    pub fn chunk_owner(&self, ino: u64, offset: u64) -> Rank {
        self.ring.chunk_owner(InodeId(ino), self.chunk_of(offset))
    }

    /// A chunk request must lie within one chunk that this rank owns.
    pub fn check_chunk_range(&self, ino: u64, offset: u64, len: u64) -> Result<()> {
        let end = offset.checked_add(len).ok_or(Error::InvalidArgument("chunk range overflows"))?;
        if len == 0 || len > self.config.chunk_size || self.chunk_of(offset) != self.chunk_of(end - 1) {
            return Err(Error::InvalidArgument("range is not within one chunk"));
        }
        if self.chunk_owner(ino, offset) != self.rank {
            return Err(Error::InvalidArgument("chunk is not owned by this rank"));
        }
        Ok(())
    }

    /// A metadata request must name a normalised path owned by this rank.
    pub fn check_meta_path(&self, path: &str) -> Result<()> {
        if crate::path::normalize(path)? != path {
            return Err(Error::InvalidArgument("path is not normalised"));
        }
        if self.ring.meta_owner(path) != self.rank {
            return Err(Error::InvalidArgument("path is not owned by this rank"));
        }
        Ok(())
    }

    /// Ranks owning any chunk of the first `size` bytes of `ino`.
    pub fn chunk_owners(&self, ino: u64, size: u64) -> Vec<Rank> {
        let chunks = size.div_ceil(self.config.chunk_size);
        if chunks >= self.nranks as u64 * 4 {
            return (0..self.nranks).map(Rank).collect();
        }
        let mut owners: Vec<Rank> = (0..chunks).map(|c| self.ring.chunk_owner(InodeId(ino), ChunkIndex(c))).collect();
        owners.sort_unstable();
        owners.dedup();
        owners
    }
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping a rank's progress thread.

use std::cell::Cell;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bootstrap::JobComm;
use crate::client::Job;
use crate::config::IoBackend;
use crate::contact::Contact;
use crate::rpc::wire::EXTERNAL_SOURCE;
use crate::runtime::{reply_pair, run_loop, Mailbox, Reactor};
use crate::storage::Backend;
use crate::ucx::{Context, Worker};

/// Messages from a starting progress thread to `start`.
enum Boot {
    Address(Result<Vec<u8>>),
    Ready(Result<()>),
}

/// A rank whose progress thread is serving.
pub struct Running {
    pub mailbox: Arc<Mailbox<Job>>,
    pub spin_us: u64,
    thread: Option<JoinHandle<()>>,
    /// The contact file this rank published, removed when the job stops serving.
    contact_file: Option<PathBuf>,
}

/// Reads the configuration on every rank and agrees that all of them could.
fn agreed_config(comm: &JobComm) -> Result<Config> {
    let config = Config::from_env().map_err(Error::from);
    if let Ok(config) = &config {
        init_logging(&config.log_filter);
    }
    agreed(comm, config)
}

/// `Ok(value)` on every rank, or an error on every rank if any rank failed: a rank that failed
/// keeps its own error, the others report the errno of the lowest failed rank.
fn agreed<T>(comm: &JobComm, local: Result<T>) -> Result<T> {
    if comm.all_ok(local.is_ok()) {
        return local;
    }
    let mine = local.as_ref().err().map_or(0, Error::errno);
    let errnos = comm.allgather_bytes(&mine.to_le_bytes());
    let first = errnos.iter().filter_map(|b| b.as_slice().try_into().ok().map(i32::from_le_bytes)).find(|&e| e != 0).unwrap_or(libc::EIO);
    Err(local.err().unwrap_or(Error::PeerInitFailed { errno: first }))
}

/// A progress thread that has created its worker and waits for the peers' addresses.
struct Starting {
    running: Running,
    boot: mpsc::Receiver<Boot>,
    peers: mpsc::Sender<Peers>,
}

/// What a starting progress thread learns about the other ranks.
struct Peers {
    /// UCX worker addresses, by rank.
    addresses: Vec<Vec<u8>>,
    /// Store directories of the ranks on this node whose chunk files this rank may use directly.
    local_dirs: Vec<Option<PathBuf>>,
}

impl Starting {
    /// Spawns the thread; returns it with its worker address (or the reason it has none).
    fn spawn(config: Config, rank: Rank, nranks: u32, dir: Option<PathBuf>) -> Result<(Starting, Result<Vec<u8>>)> {
        let mailbox = Arc::new(Mailbox::new().map_err(crate::error::BootstrapError::Thread)?);
        let (boot_tx, boot_rx) = mpsc::channel::<Boot>();
        let (addr_tx, addr_rx) = mpsc::channel::<Peers>();
        let spin_us = config.spin_us;
        let thread_mailbox = mailbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("benchfs-progress-{}", rank.0))
            .spawn(move || progress_main(config, rank, nranks, dir, thread_mailbox, boot_tx, addr_rx))
            .map_err(crate::error::BootstrapError::Thread)?;
        let running = Running { mailbox, spin_us, thread: Some(thread), contact_file: None };
        let address = match boot_rx.recv() {
            Ok(Boot::Address(a)) => a,
            _ => Err(Error::ProgressStopped),
        };
        Ok((Starting { running, boot: boot_rx, peers: addr_tx }, address))
    }

    /// Hands the thread what it needs to know of its peers and waits until it serves.
    fn connect(self, peers: Peers) -> (Running, Result<()>) {
        let _ = self.peers.send(peers);
        let ready = match self.boot.recv() {
            Ok(Boot::Ready(r)) => r,
            _ => Err(Error::ProgressStopped),
        };
        (self.running, ready)
    }
}

/// Collective: starts this rank's progress thread and returns once every rank serves.
///
/// Each fallible step ends in an agreement, so that a failure on any rank makes every rank
/// return an error rather than wait forever in the next collective.
pub fn start(comm: &JobComm) -> Result<Running> {
    let config = agreed_config(comm)?;
    let (rank, nranks) = (comm.rank(), comm.size());
    let tag = comm.broadcast_u64(job_tag());
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = config.data_dir.join(format!("benchfs-{uid}-{tag:016x}")).join(format!("rank{rank}"));
    let (chunk_size, contact_file, node_local) = (config.chunk_size, config.contact_file.clone(), config.node_local);
    let local_dirs = same_node_dirs(comm, &dir, node_local);
    let (starting, address) = Starting::spawn(config, Rank(rank), nranks, Some(dir))?;
    let address = agreed(comm, address)?;
    let addresses = comm.allgather_bytes(&address);
    let published = match (&contact_file, rank) {
        (Some(path), 0) => {
            let contact = Contact { chunk_size, addresses: addresses.clone() };
            contact.write(path).map_err(|e| Error::Storage(e.into()))
        }
        _ => Ok(()),
    };
    let (mut running, ready) = starting.connect(Peers { addresses, local_dirs });
    if rank == 0 {
        running.contact_file = contact_file;
    }
    agreed(comm, ready.and(published))?;
    Ok(running)
}

/// Collective over the client job's `comm`: connects to the BenchFS job described by
/// `contact_file` as a pure client, serving nothing.
pub fn attach(comm: &JobComm, contact_file: &Path) -> Result<Running> {
    let mut config = agreed_config(comm)?;
    let text = if comm.rank() == 0 { std::fs::read(contact_file).map_err(|e| Error::Storage(e.into())) } else { Ok(Vec::new()) };
    let text = comm.broadcast_bytes(&agreed(comm, text)?);
    let contact = agreed(comm, Contact::parse(&text))?;
    config.chunk_size = contact.chunk_size;
    let nranks = contact.addresses.len() as u32;
    let (starting, address) = Starting::spawn(config, Rank(EXTERNAL_SOURCE), nranks, None)?;
    agreed(comm, address)?;
    let local_dirs = vec![None; contact.addresses.len()];
    let (running, ready) = starting.connect(Peers { addresses: contact.addresses, local_dirs });
    agreed(comm, ready)?;
    Ok(running)
}

impl Running {
    /// Runs `job` on the progress thread and waits for it to finish.
    fn run(
        &self,
        job: impl FnOnce(&Rc<Node>, &LocalExecutor<'static>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static,
    ) {
        let (tx, rx) = reply_pair::<()>(Duration::from_micros(self.spin_us));
        let sent = self.mailbox.send(Box::new(move |node, executor| {
            let fut = job(node, executor);
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

    /// Stops the loop and joins the thread (which then cleans up the node).
    fn halt(&mut self) {
        self.run(|node, _| {
            node.stop.set(true);
            Box::pin(async {})
        });
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the progress thread panicked");
            }
        }
    }

    /// Collective: no rank stops serving until every rank has stopped issuing requests.
    pub fn stop(mut self, comm: &JobComm) -> Result<()> {
        if let Some(path) = self.contact_file.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the contact file");
            }
        }
        comm.barrier();
        self.run(|node, _| {
            let node = node.clone();
            Box::pin(async move { node.transport.shutdown().await })
        });
        comm.barrier();
        self.halt();
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.halt();
        }
    }
}

/// The store directories of the other ranks on this node (by host name), when same-node ranks
/// use each other's chunk files directly; `None` for this rank and for ranks elsewhere.
fn same_node_dirs(comm: &JobComm, my_dir: &Path, enabled: bool) -> Vec<Option<PathBuf>> {
    let mut host = [0u8; 256];
    // SAFETY: host is valid for writes of its length.
    unsafe { libc::gethostname(host.as_mut_ptr() as *mut libc::c_char, host.len()) };
    let host_len = host.iter().position(|&b| b == 0).unwrap_or(host.len());
    let mut mine = host[..host_len].to_vec();
    mine.push(0);
    mine.extend_from_slice(my_dir.as_os_str().as_encoded_bytes());
    let all = comm.allgather_bytes(&mine);
    let me = comm.rank() as usize;
    all.iter()
        .enumerate()
        .map(|(r, entry)| {
            let (their_host, their_dir) = entry.split_at(entry.iter().position(|&b| b == 0)?);
            let same_node = enabled && r != me && their_host == &host[..host_len];
            // SAFETY: the bytes are another rank's path, sent as they were on this same host.
            same_node.then(|| PathBuf::from(unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(&their_dir[1..]) }))
        })
        .collect()
}

/// A tag shared by the job's ranks (rank 0's), naming this job's data directory.
fn job_tag() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ ((std::process::id() as u64) << 32)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::new(filter);
    // Another subscriber (the application's, or an earlier init's) wins; that is fine.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

struct UcxReactor<'a> {
    node: &'a Rc<Node>,
    executor: &'a LocalExecutor<'static>,
}

impl Reactor for UcxReactor<'_> {
    fn turn(&self) -> bool {
        let mut busy = false;
        while self.node.transport.worker().progress() != 0 {
            busy = true;
        }
        for incoming in self.node.transport.take_incoming() {
            crate::rpc::server::spawn_serve(self.node, self.executor, incoming);
            busy = true;
        }
        busy
    }
    fn arm(&self) -> bool {
        match self.node.transport.worker().arm() {
            Ok(can_sleep) => can_sleep,
            Err(e) => {
                tracing::error!(error = %e, "cannot arm the UCX worker; polling instead");
                false
            }
        }
    }
    fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.node.transport.worker().event_fd())
    }
}

struct StoreReactor<'a> {
    store: &'a ChunkStore,
}

impl Reactor for StoreReactor<'_> {
    fn turn(&self) -> bool {
        let submitted = self.store.submit();
        let completed = self.store.poll_completions();
        submitted + completed > 0
    }
    fn arm(&self) -> bool {
        self.store.submit() == 0
    }
    fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        self.store.event_fd()
    }
    fn after_wake(&self) {
        self.store.clear_event();
    }
}

fn progress_main(
    config: Config,
    rank: Rank,
    nranks: u32,
    dir: Option<PathBuf>,
    mailbox: Arc<Mailbox<Job>>,
    boot: mpsc::Sender<Boot>,
    peers: mpsc::Receiver<Peers>,
) {
    let worker = Context::new().map(Rc::new).and_then(Worker::new).map_err(Error::from);
    let worker = match worker.and_then(|w| w.address().map(|a| (w, a)).map_err(Error::from)) {
        Ok((worker, address)) => {
            let _ = boot.send(Boot::Address(Ok(address)));
            worker
        }
        Err(e) => {
            let _ = boot.send(Boot::Address(Err(e)));
            return;
        }
    };
    let Ok(peers) = peers.recv() else { return };
    let node = match build_node(config, rank, nranks, dir.as_deref(), worker, peers) {
        Ok(node) => Rc::new(node),
        Err(e) => {
            let _ = boot.send(Boot::Ready(Err(e)));
            return;
        }
    };
    let _ = boot.send(Boot::Ready(Ok(())));
    let executor = LocalExecutor::new();
    let spin = Duration::from_micros(node.config.spin_us);
    let ucx = UcxReactor { node: &node, executor: &executor };
    let store = node.store.as_ref().map(|store| StoreReactor { store });
    let mut reactors: Vec<&dyn Reactor> = vec![&ucx];
    if let Some(store) = &store {
        reactors.push(store);
    }
    if let Err(e) = run_loop(&executor, &mailbox, |job: Job| job(&node, &executor), &reactors, &node.stop, spin) {
        tracing::error!(error = %e, "progress loop failed");
    }
    // Queued jobs are dropped unanswered: their callers see ENOTCONN instead of waiting.
    drop(mailbox.close());
    drop(executor);
    match Rc::try_unwrap(node) {
        Ok(node) => node.teardown(),
        Err(_) => tracing::error!("node still referenced at shutdown; chunk files left in place"),
    }
}

/// `dir` is the chunk-store directory of a serving rank; an attached client has none.
fn build_node(config: Config, rank: Rank, nranks: u32, dir: Option<&Path>, worker: Worker, peers: Peers) -> Result<Node> {
    // A client attached from another job cannot rely on that job's mpirun to end it when the
    // serving job dies: it always watches its peers.
    let detect_failures = config.detect_peer_failure || rank.0 == EXTERNAL_SOURCE;
    let transport = Transport::new(worker, rank, peers.addresses, config.rndv_threshold, detect_failures)?;
    let store = match (dir, config.io_backend) {
        (None, _) => None,
        (Some(dir), IoBackend::Auto) => Some(ChunkStore::open(dir, config.uring_depth)?),
        (Some(dir), IoBackend::Uring) => Some(ChunkStore::open_with_backend(dir, config.uring_depth, Backend::Uring)?),
        (Some(dir), IoBackend::Sync) => Some(ChunkStore::open_with_backend(dir, config.uring_depth, Backend::Sync)?),
    };
    let ring = Ring::new(nranks);
    let owns_root = ring.meta_owner("/") == rank;
    Ok(Node {
        rank,
        nranks,
        ring,
        data_dir: dir.map(Path::to_path_buf).unwrap_or_default(),
        transport,
        meta: RefCell::new(MetaTable::new(rank, owns_root)),
        store,
        files: RefCell::new(FileTable::default()),
        peers: PeerFiles::new(peers.local_dirs),
        stop: Cell::new(false),
        config,
    })
}

impl Node {
    fn teardown(self) {
        let keep = self.config.keep_data;
        let dir = self.data_dir.clone();
        if let Some(Err(e)) = self.store.map(|store| store.shutdown(keep)) {
            tracing::warn!(error = %e, "chunk store cleanup failed");
        }
        if !keep {
            // The job directory goes once its last rank directory has gone.
            if let Some(job_dir) = dir.parent() {
                let _ = std::fs::remove_dir(job_dir);
            }
        }
        drop(self.transport);
    }
}
