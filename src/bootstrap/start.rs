//! Starting a rank (`benchfs_init`), attaching a client job (`benchfs_attach`), and stopping
//! either (`benchfs_finalize`).
//!
//! Each fallible step ends in an agreement over the communicator, so that a failure on any rank
//! makes every rank return an error rather than wait forever in the next collective.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::comm::JobComm;
use super::contact::Contact;
use super::same_node::same_node_dirs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::rpc::keys::{Access, Keys};
use crate::rpc::{Team, EXTERNAL_SOURCE};
use crate::runtime::{Peers, ProgressThread, RankState, Starting};
use crate::ucx::Scale;

/// A rank whose progress thread is serving (or, attached, is connected).
pub struct Running<S: RankState> {
    progress: ProgressThread<S>,
    comm: JobComm,
    /// The contact file this rank published, removed when the job stops serving.
    contact_file: Option<PathBuf>,
    /// For a serving rank: a dead rank's number plus one once one is found (0: none), and how
    /// long its stop may wait for the others before it asks whether they are still there.
    lost: Option<(Arc<AtomicU32>, Option<Duration>)>,
}

/// Collective: starts this rank's progress thread and returns once every rank serves.
pub fn start<S: RankState>(comm: JobComm) -> Result<Running<S>> {
    let config = agreed_config(&comm)?;
    let config = agreed(&comm, same_as_rank0(&comm, config))?;
    crate::stats::enable(config.stats);
    let rank = comm.rank();
    let tag = comm.broadcast_u64(job_tag());
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = config.data_dir.join(format!("benchfs-{uid}-{tag:016x}")).join(format!("rank{rank}"));
    let (chunk_size, contact_file) = (config.chunk_size, config.contact_file.clone());
    let probe = config.peer_timeout.map(|t| (t / 4).min(Duration::from_secs(1)));
    let made = crate::storage::make_store_dir(&config.data_dir, &dir).map_err(|e| Error::Storage(e.into()));
    agreed(&comm, made)?;
    let local_dirs = same_node_dirs(&comm, &dir, config.node_local);
    let keys = agreed(&comm, job_keys(&comm))?;
    let ranks_on_node = comm.ranks_on_node();
    let scale = Scale { endpoints: comm.size() as usize, per_node: ranks_on_node as usize };
    let (starting, address) = Starting::spawn(config, Rank(rank), Some(dir), scale)?;
    let address = agreed(&comm, address)?;
    let addresses = comm.allgather_bytes(&address);
    let table: usize = addresses.iter().map(Vec::len).sum();
    tracing::info!(address = address.len(), table, "worker addresses exchanged (bytes)");
    let published = match (&contact_file, rank) {
        (Some(path), 0) => {
            let contact = Contact { chunk_size, client_key: keys.client, addresses: addresses.clone() };
            contact.write(path).map_err(|e| Error::Storage(e.into()))
        }
        _ => Ok(()),
    };
    let lost = Arc::new(AtomicU32::new(0));
    let team = Team { addresses, local_dirs, access: Access::Rank(keys), lost: lost.clone() };
    let peers = Peers { team, ranks_on_node };
    let (progress, ready) = starting.connect(peers);
    let contact_file = if rank == 0 { contact_file } else { None };
    let running = Running { progress, comm, contact_file, lost: Some((lost, probe)) };
    agreed(&running.comm, ready.and(published))?;
    let (took, in_mpi) = running.comm.time_in_mpi();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    tracing::info!(init_ms = ms(took), mpi_ms = ms(in_mpi), "this rank serves");
    Ok(running)
}

/// Collective over the client job's `comm`: connects to the BenchFS job described by
/// `contact_file` as a pure client, serving nothing.
pub fn attach<S: RankState>(comm: JobComm, contact_file: &Path) -> Result<Running<S>> {
    let mut config = agreed_config(&comm)?;
    crate::stats::enable(config.stats);
    let text = if comm.rank() == 0 { std::fs::read(contact_file).map_err(|e| Error::Storage(e.into())) } else { Ok(Vec::new()) };
    let text = comm.broadcast_bytes(&agreed(&comm, text)?);
    let contact = agreed(&comm, Contact::parse(&text))?;
    config.chunk_size = contact.chunk_size;
    let ranks_on_node = comm.ranks_on_node();
    let scale = Scale { endpoints: contact.addresses.len(), per_node: ranks_on_node as usize };
    let (starting, address) = Starting::spawn(config, Rank(EXTERNAL_SOURCE), None, scale)?;
    agreed(&comm, address)?;
    let local_dirs = vec![None; contact.addresses.len()];
    let access = Access::Client(contact.client_key);
    let lost = Arc::new(AtomicU32::new(0));
    let team = Team { addresses: contact.addresses, local_dirs, access, lost };
    let (progress, ready) = starting.connect(Peers { team, ranks_on_node });
    let running = Running { progress, comm, contact_file: None, lost: None };
    agreed(&running.comm, ready)?;
    Ok(running)
}

impl<S: RankState> Running<S> {
    pub fn progress(&self) -> &ProgressThread<S> {
        &self.progress
    }

    /// Collective: no rank stops serving until every rank has stopped issuing requests.
    pub fn stop(mut self) -> Result<()> {
        if let Some(path) = self.contact_file.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the contact file");
            }
        }
        // While every rank still serves: the requests this rank deferred.
        self.progress.settle_deferred();
        if let Some((lost, probe)) = self.lost.clone() {
            if let Some(rank) = self.wait_for_all(&lost, probe) {
                return self.stop_without(rank);
            }
        } else {
            self.comm.barrier();
        }
        print_stats(&self.comm);
        self.progress.close_transport();
        self.comm.barrier();
        self.progress.stop();
        Ok(())
    }

    /// The first barrier of a serving rank's stop, which a dead rank would never join: while it
    /// waits longer than a probe interval, it asks every rank whether it is still there, and it
    /// gives up once one is found dead (returned). A slow rank that answers is waited for.
    fn wait_for_all(&self, lost: &AtomicU32, probe: Option<Duration>) -> Option<Rank> {
        let mut asked = false;
        let complete = self.comm.barrier_unless(|waited| {
            if !asked && probe.is_some_and(|p| waited >= p) {
                self.progress.ping_all();
                asked = true;
            }
            lost.load(Ordering::Acquire) != 0
        });
        (!complete).then(|| Rank(lost.load(Ordering::Acquire).saturating_sub(1)))
    }

    /// The end of a rank whose job lost `dead`: no statistics, no more MPI (its barriers would
    /// wait for the dead rank), every endpoint closed at once; the store is removed as usual.
    fn stop_without(self, dead: Rank) -> Result<()> {
        tracing::error!(%dead, "a rank of the job is gone: this rank stops without it (its data and records are lost)");
        let Running { mut progress, comm, .. } = self;
        progress.close_transport_now();
        progress.stop();
        // Its barrier never completes: MPI is not asked to free it.
        std::mem::forget(comm);
        Err(Error::PeerLost(dead))
    }
}

/// Collective: with `BENCHFS_STATS=1` on every rank, rank 0 prints the operation statistics
/// summed over the ranks on standard error. (Every rank takes part in deciding, so that ranks
/// started with different environments cannot leave some of them waiting in the sum.)
fn print_stats(comm: &JobComm) {
    if !comm.all_ok(crate::stats::enabled()) {
        return;
    }
    let sums = comm.sum_u64s(&crate::stats::snapshot());
    if comm.rank() == 0 {
        use std::io::Write;
        let text = crate::stats::summary(&sums, comm.size(), crate::rpc::wire::Opcode::name_of);
        // Asked for by the user (BENCHFS_STATS=1): written whole, and never an error.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Reads the configuration on every rank and agrees that all of them could.
fn agreed_config(comm: &JobComm) -> Result<Config> {
    let too_many = comm.size() > crate::placement::MAX_RANKS;
    let config = Config::from_env().map_err(Error::from).and_then(|c| {
        if too_many {
            Err(Error::InvalidArgument("more ranks than a job may have"))
        } else {
            Ok(c)
        }
    });
    if let Ok(config) = &config {
        init_logging(&config.log_filter);
    }
    agreed(comm, config)
}

/// The settings that decide where data lives must be rank 0's on every rank: a rank with
/// another chunk size would place and look for chunks elsewhere. A rank that differs logs the
/// variable with both values and fails (and so, through the agreement, does every rank).
fn same_as_rank0(comm: &JobComm, config: Config) -> Result<Config> {
    let theirs = comm.broadcast_u64(config.chunk_size);
    if theirs == config.chunk_size {
        return Ok(config);
    }
    let value = format!("{} here, {theirs} on rank 0", config.chunk_size);
    tracing::error!("BENCHFS_CHUNK_SIZE differs between ranks: {value}");
    Err(crate::error::ConfigError { var: "BENCHFS_CHUNK_SIZE", value, reason: "must be the same on every rank" }.into())
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

/// The job's keys (see `rpc::keys`): drawn by rank 0, shared with every rank over MPI.
fn job_keys(comm: &JobComm) -> Result<Keys> {
    let mine =
        if comm.rank() == 0 { Keys::generate().map_err(|e| Error::Storage(e.into())) } else { Ok(Keys { rank: [0; 16], client: [0; 16] }) };
    let mine = agreed(comm, mine)?;
    let shared = comm.broadcast_bytes(&mine.to_bytes());
    Keys::from_bytes(&shared).ok_or(Error::Internal("the job's keys did not arrive whole"))
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
