//! Which ranks share this rank's storage, proved by a token each writes into its store directory:
//! their chunk files can then be used directly (see `storage::PeerFiles`).

use std::path::{Path, PathBuf};

use super::comm::JobComm;
use crate::storage::{node_token_matches, write_node_token};

/// Bytes of the random token that proves a store directory is reachable.
const TOKEN_LEN: usize = 16;

/// The store directories of the other ranks whose storage this rank shares, when same-node ranks
/// use each other's chunk files directly; `None` for this rank and for every other rank.
/// Collective; the exchange is among the ranks that share this node's memory.
///
/// A rank counts as same-node only if it has the same host name (a cheap first test) and its
/// store directory, read through the path it sent, holds the random token it wrote there: one
/// host name does not prove one file system (cloned machines, containers).
pub fn same_node_dirs(comm: &JobComm, my_dir: &Path, enabled: bool) -> Vec<Option<PathBuf>> {
    let token = random_token(comm.rank());
    let written = enabled
        && match write_node_token(my_dir, &token) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(dir = %my_dir.display(), error = %e, "cannot write the node token; same-node ranks will use the transport");
                false
            }
        };
    let host = host_name();
    // Every rank writes its token before this exchange completes anywhere.
    let mut mine = if written { token.to_vec() } else { vec![0; TOKEN_LEN] };
    mine.extend_from_slice(&host);
    mine.push(0);
    mine.extend_from_slice(my_dir.as_os_str().as_encoded_bytes());
    // Only ranks that share this node's memory can share its storage: the exchange stays
    // within the node.
    let entries = comm.allgather_on_node(&mine);
    let mut dirs = vec![None; comm.size() as usize];
    for (rank, entry) in entries.into_iter().filter(|&(rank, _)| written && rank != comm.rank()) {
        if let Some(slot) = dirs.get_mut(rank as usize) {
            *slot = peer_dir(&entry, &host);
        }
    }
    dirs
}

/// The store directory in a peer's entry (token, host, NUL, directory) if it is reachable here.
fn peer_dir(entry: &[u8], host: &[u8]) -> Option<PathBuf> {
    let (token, rest) = (entry.get(..TOKEN_LEN)?, entry.get(TOKEN_LEN..)?);
    let (their_host, their_dir) = rest.split_at(rest.iter().position(|&b| b == 0)?);
    if their_host != host || token == [0; TOKEN_LEN] {
        return None;
    }
    // SAFETY: the bytes are a path as another rank's OsStr held them, on a host of this name;
    // they are only used as a path.
    let dir = PathBuf::from(unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(&their_dir[1..]) });
    if node_token_matches(&dir, token) {
        Some(dir)
    } else {
        tracing::info!(dir = %dir.display(), "a rank with this host name keeps its chunks elsewhere; using the transport for it");
        None
    }
}

fn host_name() -> Vec<u8> {
    let mut host = [0u8; 256];
    // SAFETY: host is valid for writes of its length.
    unsafe { libc::gethostname(host.as_mut_ptr() as *mut libc::c_char, host.len()) };
    let len = host.iter().position(|&b| b == 0).unwrap_or(host.len());
    host[..len].to_vec()
}

/// Random bytes from the kernel; where it has none to give, bytes mixed from the clock, the
/// process and the rank, which tell storage apart just as well (the token is no secret).
fn random_token(rank: u32) -> [u8; TOKEN_LEN] {
    let mut token = [0u8; TOKEN_LEN];
    // SAFETY: token is valid for writes of its length.
    let got = unsafe { libc::getrandom(token.as_mut_ptr().cast(), TOKEN_LEN, 0) };
    if got != TOKEN_LEN as isize {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = [nanos.to_le_bytes().as_slice(), &std::process::id().to_le_bytes(), &rank.to_le_bytes()].concat();
        token[..8].copy_from_slice(&xxhash_rust::xxh64::xxh64(&seed, 1).to_le_bytes());
        token[8..].copy_from_slice(&xxhash_rust::xxh64::xxh64(&seed, 2).to_le_bytes());
    }
    token
}
