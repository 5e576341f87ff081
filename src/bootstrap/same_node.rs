//! Which ranks share this rank's node, found by host name over the communicator: their chunk
//! files can then be used directly (see `storage::PeerFiles`).

use std::path::{Path, PathBuf};

use super::comm::JobComm;

/// The store directories of the other ranks on this node (by host name), when same-node ranks
/// use each other's chunk files directly; `None` for this rank and for ranks elsewhere.
pub fn same_node_dirs(comm: &JobComm, my_dir: &Path, enabled: bool) -> Vec<Option<PathBuf>> {
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
