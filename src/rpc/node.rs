//! The state of one rank on its progress thread: its place in the job, its transport, the
//! metadata records and chunks it serves, and its same-node peers' chunk files.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use super::credit::Credit;
use super::fence::Fences;
use super::keys::Access;
use super::stamps::Stamps;
use super::transport::{Transport, TransportSettings};
use super::unregisters::Unregisters;
use super::wire::EXTERNAL_SOURCE;
use crate::config::{Config, IoBackend};
use crate::error::{Error, Result};
use crate::ids::{ChunkIndex, InodeId, Rank};
use crate::metadata::mirror::{self, Mirror, MirrorView};
use crate::metadata::{Attr, MetaTable};
use crate::placement::Ring;
use crate::storage::{Backend, ChunkStore, PeerFiles};
use crate::ucx::Worker;

/// What one rank serves from, and what its requests go through.
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
    /// Chunk files of same-node ranks, reached directly.
    pub peers: PeerFiles,
    /// The record tables of same-node ranks, mapped on first use (`None`: not readable).
    peer_records: RefCell<foldhash::HashMap<Rank, Option<MirrorView>>>,
    /// This rank's gate for path operations, and the directory renames fencing it.
    pub fences: Fences,
    /// Set by a job to end the progress loop.
    pub stop: Cell<bool>,
    /// Bytes of other ranks' writes this rank may hold at once.
    pub incoming: Credit,
    /// Directories whose times this rank has yet to stamp at their owners.
    pub stamps: Stamps,
    /// Writers this rank's creates counted that closed without writing, not yet released.
    pub unregisters: Unregisters,
}

impl Node {
    /// The attributes of `path` without a request: from this rank's table when it owns the
    /// path, else from a same-node owner's shared table (see [`Node::shared_record`]). `None`
    /// when neither holds it.
    pub fn record_now(&self, path: &[u8]) -> Option<Attr> {
        let owner = self.ring.meta_owner(path);
        if owner == self.rank {
            return self.meta.borrow().stat(path).ok().map(|record| record.attr);
        }
        self.shared_record(owner, path)
    }

    /// The attributes of `path` read straight from its owner's shared table, when the owner,
    /// `owner` (another rank: see [`Node::record_now`]), is of this node and its table holds
    /// the path (see `metadata::mirror`).
    fn shared_record(&self, owner: Rank, path: &[u8]) -> Option<Attr> {
        // A dead rank's table says what it held when it died: its calls fail instead.
        if self.transport.is_dead(owner) {
            return None;
        }
        let mut tables = self.peer_records.borrow_mut();
        let table = tables.entry(owner).or_insert_with(|| {
            let dir = self.peers.dir_of(owner)?;
            MirrorView::open(&dir).map_err(|e| tracing::debug!(%owner, error = %e, "shared record table not readable")).ok()
        });
        table.as_mut()?.get(path)
    }

    pub fn store(&self) -> Result<&ChunkStore> {
        self.store.as_ref().ok_or(Error::Internal("an attached client stores no chunks"))
    }

    /// The chunk store, if this rank serves one.
    pub fn chunk_store(&self) -> Option<&ChunkStore> {
        self.store.as_ref()
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

    /// Whether the rank `owner`, serving the unlink of the file `attr`, removes its data itself:
    /// the file has no writers (so its data lies below its size) and all of it is in chunks
    /// `owner` holds, as the single chunk of a small file that `owner` created is (see
    /// `Ring::chunk_owner`). The caller of the unlink then has nothing left to remove.
    pub fn unlink_removes_data(&self, attr: &Attr, owner: Rank) -> bool {
        if attr.writers != 0 || attr.mode & libc::S_IFMT != libc::S_IFREG {
            return false;
        }
        let owners = self.chunk_owners(attr.ino, attr.size);
        !owners.is_empty() && owners.iter().all(|&r| r == owner)
    }

    /// A metadata request must name a normalised path owned by this rank.
    pub fn check_meta_path(&self, path: &[u8]) -> Result<()> {
        crate::path::check_normal(path)?;
        if self.ring.meta_owner(path) != self.rank {
            return Err(Error::InvalidArgument("path is not owned by this rank"));
        }
        Ok(())
    }
}

/// What a rank knows of the job it serves in (or attaches to) when its node is built.
pub struct Team {
    /// UCX worker addresses of the serving ranks, by rank.
    pub addresses: Vec<Vec<u8>>,
    /// Store directories of the same-node ranks whose chunk files this rank may use directly.
    pub local_dirs: Vec<Option<PathBuf>>,
    /// The keys this rank sends and serves with.
    pub access: Access,
    /// Set to a dead rank's number plus one once one is found.
    pub lost: Arc<AtomicU32>,
}

impl Node {
    /// Builds the node of `rank` among `team.addresses.len()` serving ranks. `dir` is the
    /// chunk-store directory of a serving rank; an attached client (`EXTERNAL_SOURCE`) has none.
    pub fn build(config: Config, rank: Rank, dir: Option<&Path>, worker: Worker, team: Team) -> Result<Node> {
        let Team { addresses, local_dirs, access, lost } = team;
        let nranks = addresses.len() as u32;
        // A client attached from another job cannot rely on that job's mpirun to end it when the
        // serving job dies: it always watches its peers.
        let detect_failures = config.detect_peer_failure || rank.0 == EXTERNAL_SOURCE;
        let settings =
            TransportSettings { rndv_threshold: config.rndv_threshold, detect_failures, access, peer_timeout: config.peer_timeout, lost };
        let transport = Transport::new(worker, rank, addresses, settings)?;
        let mut store = match (dir, config.io_backend) {
            (None, _) => None,
            (Some(dir), IoBackend::Auto) => Some(ChunkStore::open(dir, config.uring_depth)?),
            (Some(dir), IoBackend::Uring) => Some(ChunkStore::open_with_backend(dir, config.uring_depth, Backend::Uring)?),
            (Some(dir), IoBackend::Sync) => Some(ChunkStore::open_with_backend(dir, config.uring_depth, Backend::Sync)?),
        };
        if let (Some(store), true) = (&mut store, config.pack_small) {
            store.pack_small_files(rank, config.chunk_size)?;
        }
        let ring = Ring::new(nranks);
        let owns_root = ring.meta_owner(b"/") == rank;
        let mut meta = MetaTable::new(rank, nranks, owns_root);
        // Kept only where a same-node rank may read it.
        let read_here = local_dirs.iter().any(Option::is_some);
        if let (Some(dir), true) = (dir, config.shared_records > 0 && store.is_some() && read_here) {
            match Mirror::create(dir, config.shared_records) {
                Ok(table) => meta.share(table),
                Err(e) => tracing::warn!(error = %e, "no shared copy of the records; same-node ranks ask for each"),
            }
        }
        Ok(Node {
            rank,
            nranks,
            ring,
            data_dir: dir.map(Path::to_path_buf).unwrap_or_default(),
            transport,
            meta: RefCell::new(meta),
            store,
            peers: PeerFiles::new(local_dirs),
            peer_records: RefCell::default(),
            fences: Fences::new(rank),
            stop: Cell::new(false),
            incoming: Credit::new(config.incoming_bytes),
            stamps: Stamps::default(),
            unregisters: Unregisters::default(),
            config,
        })
    }

    /// Removes the chunk files (unless the configuration keeps them) and closes the transport.
    /// After the loop failed: removes what the store holds, like [`Node::teardown`], but keeps
    /// the transport alive and unprogressed for the rest of the process (destroying a worker
    /// whose endpoints are still open is not allowed, and closing them needs a working loop).
    pub fn abandon(self) {
        self.release(true);
    }

    pub fn teardown(self) {
        self.release(false);
    }

    fn release(self, failed: bool) {
        let keep = self.config.keep_data;
        let dir = self.data_dir.clone();
        if self.store.is_some() {
            // First: a bigger table still being made ready is waited for, so that no file
            // appears after the table's files are removed.
            self.meta.borrow_mut().stop_sharing();
            if let Err(e) = mirror::FILES.iter().try_for_each(|name| crate::storage::remove_if_present(&dir.join(name))) {
                tracing::warn!(error = %e, "shared record table not removed");
            }
        }
        if let Some(Err(e)) = self.store.map(|store| store.shutdown(keep)) {
            tracing::warn!(error = %e, "chunk store cleanup failed");
        }
        if !keep {
            // The job directory goes once its last rank directory has gone.
            if let Some(job_dir) = dir.parent() {
                let _ = std::fs::remove_dir(job_dir);
            }
        }
        if failed {
            std::mem::forget(self.transport);
        } else {
            drop(self.transport);
        }
    }
}
