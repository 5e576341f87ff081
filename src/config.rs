//! One `Config`, read from environment variables and validated once, at init.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCHFS_DATA_DIR` | base directory of the node-local chunk store; it must belong to the user or to root, and be sticky if others may write to it | `$TMPDIR` or `/tmp` |
//! | `BENCHFS_CHUNK_SIZE` | bytes per chunk (suffix K, M, G allowed); the same on every rank, or init fails on every rank | `1M` |
//! | `BENCHFS_RNDV_THRESHOLD` | payloads above this many bytes travel by rendezvous | `16K` |
//! | `BENCHFS_NODE_LOCAL` | `1`: ranks on one node read and write each other's chunk files directly, and read each other's shared record tables; `0`: all chunk data and every metadata request move through UCX | `1` |
//! | `BENCHFS_SHARED_RECORDS` | the most slots in each rank's table of its metadata records that same-node ranks read directly (with `BENCHFS_NODE_LOCAL=1`), so a `stat` or an `open` that creates nothing needs no request; rounded up to a power of two, 264 bytes each (memory of the data directory's file system); the table starts with a quarter of them (65,536 at most, reserved at init) and grows fourfold once three quarters are in use, `0` turns it off | `262144` |
//! | `BENCHFS_INCOMING_BYTES` | bytes of other ranks' writes a rank holds at once (payloads being received and written); a write beyond it waits at its sender | `256M` |
//! | `BENCHFS_PEER_TIMEOUT` | seconds a rank that calls are waiting for may stay silent (not even answering a ping) before it counts as dead and those calls, and every later call to it, fail with EIO; `0`: wait forever | `30` |
//! | `BENCHFS_DETECT_PEER_FAILURE` | `1`: calls to a rank whose process died fail with EIO instead of waiting (UCX then uses only failure-detecting transports, which costs speed); attached clients always detect | `0` |
//! | `BENCHFS_KEEP_DATA` | `1` keeps the chunk files at finalize | `0` |
//! | `BENCHFS_PACK_SMALL` | `1`: the first chunk of a file a rank creates lies in a slot of one file of its store while it fits there (64 KiB, or the chunk size if smaller), instead of a chunk file of its own; `0`: every file with data has chunk files | `1` |
//! | `BENCHFS_IO_BACKEND` | `uring`, `sync` (plain pread/pwrite), or `auto` (io_uring, falling back to `sync` where the kernel refuses it) | `auto` |
//! | `BENCHFS_URING_DEPTH` | io_uring queue depth | `256` |
//! | `BENCHFS_SPIN_US` | microseconds a waiting thread keeps checking (yielding the CPU between checks) before it blocks | `100` |
//! | `BENCHFS_CONTACT_FILE` | where `benchfs_init` publishes the job's contact information for `benchfs_attach` | unset |
//! | `BENCHFS_STATS` | `1`: every rank counts each call and each request it serves (count, bytes, latency histogram); at `benchfs_finalize` rank 0 prints the sums over all ranks on standard error | `0` |
//! | `BENCHFS_LOG` | log filter (`tracing` env-filter syntax), logs go to stderr | `warn` |

use std::path::PathBuf;

use crate::error::ConfigError;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub chunk_size: u64,
    pub rndv_threshold: usize,
    pub keep_data: bool,
    /// Small files' first chunks packed into one file per rank (see `storage::small`).
    pub pack_small: bool,
    pub node_local: bool,
    pub detect_peer_failure: bool,
    /// Bytes of other ranks' writes a rank holds at once.
    pub incoming_bytes: u64,
    /// Silence after which a rank that calls wait for counts as dead (`None`: never).
    pub peer_timeout: Option<std::time::Duration>,
    /// The most slots of the shared record table (a power of two), 0: none.
    pub shared_records: usize,
    pub io_backend: IoBackend,
    pub uring_depth: u32,
    pub spin_us: u64,
    pub log_filter: String,
    pub contact_file: Option<PathBuf>,
    /// Operation statistics (see `stats`).
    pub stats: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackend {
    Auto,
    Uring,
    Sync,
}

const KIB: u64 = 1024;

/// The smallest and the largest chunk size a job may use.
pub const MIN_CHUNK_SIZE: u64 = 4 * KIB;
pub const MAX_CHUNK_SIZE: u64 = 1024 * 1024 * KIB;

impl Config {
    /// Reads and validates every variable; the first bad one is reported by name and value.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let data_dir = match get("BENCHFS_DATA_DIR") {
            Some(dir) if dir.is_empty() => return Err(bad("BENCHFS_DATA_DIR", dir, "must not be empty")),
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(get("TMPDIR").filter(|t| !t.is_empty()).unwrap_or_else(|| "/tmp".into())),
        };
        let chunk_size = size_var(&get, "BENCHFS_CHUNK_SIZE", 1024 * KIB, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)?;
        let rndv_threshold = size_var(&get, "BENCHFS_RNDV_THRESHOLD", 16 * KIB, 0, 1024 * 1024 * KIB)? as usize;
        let keep_data = bool_var(&get, "BENCHFS_KEEP_DATA", false)?;
        let pack_small = bool_var(&get, "BENCHFS_PACK_SMALL", true)?;
        let node_local = bool_var(&get, "BENCHFS_NODE_LOCAL", true)?;
        let detect_peer_failure = bool_var(&get, "BENCHFS_DETECT_PEER_FAILURE", false)?;
        let incoming_bytes = size_var(&get, "BENCHFS_INCOMING_BYTES", 256 * KIB * KIB, 64 * KIB, 64 * KIB * KIB * KIB)?;
        let peer_timeout = match size_var(&get, "BENCHFS_PEER_TIMEOUT", 30, 0, 86_400)? {
            0 => None,
            seconds => Some(std::time::Duration::from_secs(seconds)),
        };
        let shared_records = match size_var(&get, "BENCHFS_SHARED_RECORDS", 1 << 18, 0, 1 << 26)? as usize {
            0 => 0,
            slots => slots.max(2).next_power_of_two(),
        };
        let stats = bool_var(&get, "BENCHFS_STATS", false)?;
        let io_backend = match get("BENCHFS_IO_BACKEND").as_deref() {
            None | Some("auto") => IoBackend::Auto,
            Some("uring") => IoBackend::Uring,
            Some("sync") => IoBackend::Sync,
            Some(other) => return Err(bad("BENCHFS_IO_BACKEND", other.into(), "expected 'auto', 'uring' or 'sync'")),
        };
        let uring_depth = size_var(&get, "BENCHFS_URING_DEPTH", 256, 8, 32768)? as u32;
        let spin_us = size_var(&get, "BENCHFS_SPIN_US", 100, 0, 1_000_000)?;
        let log_filter = get("BENCHFS_LOG").unwrap_or_else(|| "warn".into());
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            return Err(bad("BENCHFS_LOG", log_filter, "not a valid log filter (e.g. 'info' or 'benchfs=debug')"));
        }
        let contact_file = match get("BENCHFS_CONTACT_FILE") {
            Some(path) if path.is_empty() => return Err(bad("BENCHFS_CONTACT_FILE", path, "must not be empty")),
            Some(path) => Some(PathBuf::from(path)),
            None => None,
        };
        Ok(Config {
            data_dir,
            chunk_size,
            rndv_threshold,
            keep_data,
            pack_small,
            node_local,
            detect_peer_failure,
            incoming_bytes,
            peer_timeout,
            shared_records,
            io_backend,
            uring_depth,
            spin_us,
            log_filter,
            contact_file,
            stats,
        })
    }
}

fn bad(var: &'static str, value: String, reason: &'static str) -> ConfigError {
    ConfigError { var, value, reason }
}

fn bool_var(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match get(var).as_deref() {
        None => Ok(default),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some("0") | Some("false") | Some("no") | Some("") => Ok(false),
        Some(other) => Err(bad(var, other.into(), "expected 0 or 1")),
    }
}

/// A byte count with an optional K/M/G suffix (powers of 1024), within `[min, max]`.
fn size_var(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    let Some(text) = get(var) else { return Ok(default) };
    let value = parse_size(&text).ok_or_else(|| bad(var, text.clone(), "expected a number with an optional K, M or G suffix"))?;
    if value < min || value > max {
        return Err(bad(var, text, "out of range"));
    }
    Ok(value)
}

/// Parses a byte count: decimal digits with an optional suffix `K`, `M` or `G` (either case,
/// powers of 1024). Surrounding whitespace is ignored; anything else, or a count that does not
/// fit in a `u64`, gives `None`. Every size BenchFS reads (its environment variables, the
/// tools' options) goes through this one function.
///
/// ```
/// assert_eq!(benchfs::parse_size("64K"), Some(64 * 1024));
/// assert_eq!(benchfs::parse_size("4m"), Some(4 << 20));
/// assert_eq!(benchfs::parse_size("4096"), Some(4096));
/// assert_eq!(benchfs::parse_size("1T"), None);
/// ```
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, multiplier) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], KIB),
        (i, 'm' | 'M') => (&text[..i], KIB * KIB),
        (i, 'g' | 'G') => (&text[..i], KIB * KIB * KIB),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.chunk_size, 1 << 20);
        assert_eq!(c.data_dir, PathBuf::from("/tmp"));
        assert_eq!(c.io_backend, IoBackend::Auto);
        assert!(!c.keep_data);
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("64K"), Some(65536));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("4m"), Some(4 << 20));
        assert_eq!(parse_size("4M"), Some(4 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size(" 8K\n"), Some(8192));
    }

    #[test]
    fn sizes_rejected() {
        for text in ["12Q", "", "K", " ", "-1", "1.5M", "1 K", "1KB", "1KiB", "1T", "0x10", "99999999999999999999"] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn sizes_that_overflow() {
        assert_eq!(parse_size("17179869183G"), Some(17179869183 << 30));
        assert_eq!(parse_size("17179869184G"), None);
        assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = with(&[("BENCHFS_CHUNK_SIZE", "12x")]).unwrap_err();
        assert_eq!(e.var, "BENCHFS_CHUNK_SIZE");
        assert_eq!(e.value, "12x");
        let e = with(&[("BENCHFS_CHUNK_SIZE", "100")]).unwrap_err();
        assert_eq!(e.reason, "out of range");
        let e = with(&[("BENCHFS_IO_BACKEND", "aio")]).unwrap_err();
        assert_eq!(e.var, "BENCHFS_IO_BACKEND");
        let e = with(&[("BENCHFS_KEEP_DATA", "maybe")]).unwrap_err();
        assert_eq!(e.var, "BENCHFS_KEEP_DATA");
        let e = with(&[("BENCHFS_DATA_DIR", "")]).unwrap_err();
        assert_eq!(e.var, "BENCHFS_DATA_DIR");
        assert!(e.to_string().contains("BENCHFS_DATA_DIR"));
    }
}
