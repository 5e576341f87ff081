//! `benchfs-bench`: an IOR/mdtest-like benchmark that runs each access pattern twice in one job,
//! once against BenchFS and once against a local POSIX directory, and prints both figures side by
//! side. Measuring both in the same invocation keeps the ranks, nodes and moment identical, so the
//! ratio says what BenchFS costs or gains over the kernel file system underneath it.
//!
//! ```text
//! mpirun -np 4 target/release/benchfs-bench --mode all --transfer 1M --block 64M
//! ```
//!
//! Patterns (selected with `--mode`):
//! * `fpp`: every rank writes its own file `/bench/fpp.<rank>` (`segments * block` bytes in
//!   `transfer`-sized pieces), then reads back the file of rank `(rank + 1) % N`.
//! * `shared`: one file `/bench/shared` in IOR's segmented layout: segment `s` holds one block per
//!   rank, rank `r` owns block `s * N + r`. The read phase reads rank `(r + 1) % N`'s blocks.
//! * `meta`: every rank creates, stats, opens+closes and removes `--files` files of its own
//!   (`/meta/r<rank>.<i>`), each phase timed on its own.
//! * `dirs`: three namespace patterns, each phase timed on its own:
//!   - `mkdir`, `dir stat`, `rmdir`: every rank creates, stats and removes `--dirs` directories
//!     in a parent of its own (`/dirs/r<rank>/d<i>`);
//!   - `readdir`: all ranks fill one shared directory with `--readdir-files` files each
//!     (`/shared-dir/r<rank>.<i>`, untimed), then every rank lists all of it; the figure is the
//!     number of entries listed by all ranks over the slowest rank's time;
//!   - `rename`: every rank creates `--renames` files (untimed) and renames each of them
//!     (`/ren/r<rank>.<i>` to `/ren/r<rank>.<i>.moved`).
//!
//! The read phases are shifted by one rank (like IOR's `-C`) so that a rank never reads what it
//! has just written itself.
//!
//! Timing: an MPI barrier precedes every phase; each rank times from before its first `open` to
//! after its last `close`, and the phase time is the maximum over the ranks. Bandwidth is the total
//! number of bytes over that time (MiB/s), metadata rates the total number of operations (or
//! directory entries listed) over it. Setup and cleanup around a phase are never timed.
//!
//! Verification: every byte written is a function of (writer rank, iteration, file offset). The
//! timed read loop checks the length of each read and the first stamp word of each transfer; a
//! second, untimed pass then re-reads everything and compares every byte, so that generating the
//! expected data never counts against either file system. The namespace patterns check every
//! result (a created directory stats as a directory, a renamed file exists only under its new
//! name, a listing holds exactly the expected names plus `.` and `..`), again outside the timing
//! except for the entry count of each timed listing.

// `u64::is_multiple_of` is newer than the crate's minimum Rust version.
#![allow(clippy::manual_is_multiple_of)]

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::process::ExitCode;
use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

const MIB: f64 = 1024.0 * 1024.0;

/// A stamp (a word derived from the offset) is placed every `STAMP_BYTES` bytes of a file; the
/// words between stamps repeat a per-writer template. This keeps generating the data of a transfer
/// nearly free (a few hundred stores per MiB). Data of another writer or iteration, unwritten
/// zeros, data shifted by anything but a multiple of the transfer size, and any misplaced range
/// that spans a stamp all fail verification.
const STAMP_BYTES: u64 = 4096;

/// At most this many mismatch messages per rank and phase; the rest are only counted.
const MAX_REPORTS: u32 = 5;

fn usage() -> &'static str {
    "benchfs-bench: IOR/mdtest-like comparison of BenchFS with a local POSIX directory

usage: mpirun -np N benchfs-bench [options]

  --mode fpp|shared|meta|dirs|all
                              patterns to run (default all)
  --transfer SIZE             size of one read or write (default 1M; a multiple of 8)
  --block SIZE                bytes per rank and segment (default 64M; a multiple of --transfer)
  --segments N                segments (default 1)
  --files N                   files per rank in meta mode (default 2000)
  --dirs N                    directories per rank for mkdir/dir stat/rmdir (default 2000)
  --readdir-files N           files per rank in the shared directory that readdir lists
                              (default 5000)
  --renames N                 files per rank that rename moves (default 2000)
  --posix-dir DIR             POSIX directory to compare with
                              (default /dev/shm/benchfs-bench-posix-<job id or pid of rank 0>)
  --iterations N              repeat every pattern N times and report the best (default 1)
  --no-verify                 skip the untimed checks: every byte read back, every name
                              listed, the state after mkdir/rmdir/rename (lengths, stamps,
                              stat types and listed entry counts are still checked)
  --fsync                     fsync before close in write phases
  --help                      this text

SIZE accepts a suffix k, m, g or t (powers of 1024).
Environment: BENCHFS_CHUNK_SIZE and the other BENCHFS_* variables configure BenchFS itself."
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Options {
    fpp: bool,
    shared: bool,
    meta: bool,
    dirs: bool,
    transfer: u64,
    block: u64,
    segments: u64,
    files: u64,
    dir_count: u64,
    readdir_files: u64,
    renames: u64,
    posix_dir: Option<String>,
    iterations: u32,
    verify: bool,
    fsync: bool,
}

enum Parsed {
    Run(Options),
    Help,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, shift) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 10),
        Some('m') => (&digits[..digits.len() - 1], 20),
        Some('g') => (&digits[..digits.len() - 1], 30),
        Some('t') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("size too large: {s:?}"))
}

fn parse_count(key: &str, s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{key}: not a number: {s:?}"))
}

fn parse_options(args: &[String]) -> Result<Parsed, String> {
    let mut o = Options {
        fpp: true,
        shared: true,
        meta: true,
        dirs: true,
        transfer: 1 << 20,
        block: 64 << 20,
        segments: 1,
        files: 2000,
        dir_count: 2000,
        readdir_files: 5000,
        renames: 2000,
        posix_dir: None,
        iterations: 1,
        verify: true,
        fsync: false,
    };
    let mut it = args.iter();
    while let Some(key) = it.next() {
        match key.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--no-verify" => o.verify = false,
            "--fsync" => o.fsync = true,
            "--mode" | "--transfer" | "--block" | "--segments" | "--files" | "--dirs" | "--readdir-files" | "--renames" | "--posix-dir"
            | "--iterations" => {
                let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
                match key.as_str() {
                    "--mode" => {
                        (o.fpp, o.shared, o.meta, o.dirs) = match value.as_str() {
                            "fpp" => (true, false, false, false),
                            "shared" => (false, true, false, false),
                            "meta" => (false, false, true, false),
                            "dirs" => (false, false, false, true),
                            "all" => (true, true, true, true),
                            _ => return Err(format!("--mode: unknown mode {value:?}")),
                        };
                    }
                    "--transfer" => o.transfer = parse_size(value)?,
                    "--block" => o.block = parse_size(value)?,
                    "--segments" => o.segments = parse_count(key, value)?,
                    "--files" => o.files = parse_count(key, value)?,
                    "--dirs" => o.dir_count = parse_count(key, value)?,
                    "--readdir-files" => o.readdir_files = parse_count(key, value)?,
                    "--renames" => o.renames = parse_count(key, value)?,
                    "--posix-dir" => o.posix_dir = Some(value.clone()),
                    "--iterations" => {
                        o.iterations = parse_count(key, value)?.try_into().map_err(|_| "--iterations: too large".to_string())?
                    }
                    _ => unreachable!(),
                }
            }
            _ => return Err(format!("unknown option {key:?} (see --help)")),
        }
    }
    if o.transfer == 0 || o.transfer % 8 != 0 {
        return Err("--transfer must be a positive multiple of 8".into());
    }
    if o.block == 0 || o.block % o.transfer != 0 {
        return Err("--block must be a positive multiple of --transfer".into());
    }
    if o.transfer > usize::MAX as u64 / 4 {
        return Err("--transfer is too large for this machine".into());
    }
    if o.segments == 0 || o.iterations == 0 {
        return Err("--segments and --iterations must be at least 1".into());
    }
    Ok(Parsed::Run(o))
}

fn fmt_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {name}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

// ---------------------------------------------------------------------------------------------
// The two file systems behind one interface
// ---------------------------------------------------------------------------------------------

/// A failed file-system call, with the errno it reported.
#[derive(Debug)]
struct OpError {
    op: &'static str,
    errno: i32,
    detail: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {} (errno {})", self.op, self.detail, self.errno)
    }
}

/// What the patterns need to know from `stat`.
#[derive(Clone, Copy, Debug)]
struct Attrs {
    size: u64,
    /// File type and permission bits, as `st_mode`.
    mode: u32,
}

impl Attrs {
    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// Which of the two compared file systems a [`Store`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    BenchFs,
    Posix,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::BenchFs => "BenchFS",
            System::Posix => "POSIX",
        }
    }
}

/// The calls a benchmark pattern makes. Both implementations take the same absolute paths and
/// return plain descriptors, so one pattern function drives both file systems call for call.
trait Store {
    fn system(&self) -> System;

    fn label(&self) -> &'static str {
        self.system().label()
    }

    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError>;
    fn close(&self, fd: i32) -> Result<(), OpError>;
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError>;
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError>;
    fn fsync(&self, fd: i32) -> Result<(), OpError>;
    /// What `stat` reports about `path` (following symbolic links, like `stat(2)`).
    fn stat(&self, path: &str) -> Result<Attrs, OpError>;
    fn unlink(&self, path: &str) -> Result<(), OpError>;
    fn mkdir(&self, path: &str) -> Result<(), OpError>;
    fn rmdir(&self, path: &str) -> Result<(), OpError>;
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError>;
    /// Opens the directory `path`, passes the name of every entry it returns (`.` and `..`
    /// included) to `visit`, and closes it: one `opendir`, `readdir` loop, `closedir`.
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError>;

    /// Writes all of `buf`, continuing after short writes as a POSIX program must.
    fn pwrite_all(&self, fd: i32, buf: &[u8], offset: u64) -> Result<(), OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pwrite(fd, &buf[done..], offset + done as u64)? {
                0 => return Err(OpError { op: "pwrite", errno: libc::EIO, detail: "wrote 0 bytes".into() }),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or end of file; returns the number of bytes read.
    fn pread_full(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pread(fd, &mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
}

struct BenchFs;

fn bfs_err(op: &'static str, e: benchfs::Error) -> OpError {
    OpError { op, errno: e.errno(), detail: e.to_string() }
}

impl Store for BenchFs {
    fn system(&self) -> System {
        System::BenchFs
    }
    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError> {
        benchfs::open(path, flags, 0o644).map_err(|e| bfs_err("open", e))
    }
    fn close(&self, fd: i32) -> Result<(), OpError> {
        benchfs::close(fd).map_err(|e| bfs_err("close", e))
    }
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pwrite(fd, buf, offset).map_err(|e| bfs_err("pwrite", e))
    }
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pread(fd, buf, offset).map_err(|e| bfs_err("pread", e))
    }
    fn fsync(&self, fd: i32) -> Result<(), OpError> {
        benchfs::fsync(fd).map_err(|e| bfs_err("fsync", e))
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        benchfs::stat(path).map(|st| Attrs { size: st.size, mode: st.mode }).map_err(|e| bfs_err("stat", e))
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        benchfs::unlink(path).map_err(|e| bfs_err("unlink", e))
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::mkdir(path, 0o755).map_err(|e| bfs_err("mkdir", e))
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::rmdir(path).map_err(|e| bfs_err("rmdir", e))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        benchfs::rename(from, to).map_err(|e| bfs_err("rename", e))
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        // The stream is closed when it is dropped, on every path out of this function.
        let dir = benchfs::opendir(path).map_err(|e| bfs_err("opendir", e))?;
        for entry in dir {
            visit(entry.map_err(|e| bfs_err("readdir", e))?.name.as_bytes());
        }
        Ok(())
    }
}

/// The kernel file system under `root`, through the same system calls IOR's POSIX backend uses.
struct Posix {
    root: String,
}

fn os_err(op: &'static str) -> OpError {
    let e = std::io::Error::last_os_error();
    OpError { op, errno: e.raw_os_error().unwrap_or(libc::EIO), detail: e.to_string() }
}

impl Posix {
    /// Runs a libc call that takes one path and returns -1 with errno on failure.
    fn path_call(&self, path: &str, op: &'static str, call: impl FnOnce(*const libc::c_char) -> libc::c_int) -> Result<(), OpError> {
        let p = self.cpath(path)?;
        if call(p.as_ptr()) < 0 {
            Err(os_err(op))
        } else {
            Ok(())
        }
    }

    fn cpath(&self, path: &str) -> Result<CString, OpError> {
        CString::new(format!("{}{}", self.root, path)).map_err(|_| OpError {
            op: "path",
            errno: libc::EINVAL,
            detail: "path contains a NUL byte".into(),
        })
    }
}

impl Store for Posix {
    fn system(&self) -> System {
        System::Posix
    }
    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError> {
        let p = self.cpath(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o644 as libc::c_uint) };
        if fd < 0 {
            Err(os_err("open"))
        } else {
            Ok(fd)
        }
    }
    fn close(&self, fd: i32) -> Result<(), OpError> {
        // SAFETY: closing a descriptor this process opened and closes only once.
        if unsafe { libc::close(fd) } < 0 {
            Err(os_err("close"))
        } else {
            Ok(())
        }
    }
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes of reading during the call.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) };
        usize::try_from(n).map_err(|_| os_err("pwrite"))
    }
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writing during the call.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset as libc::off_t) };
        usize::try_from(n).map_err(|_| os_err("pread"))
    }
    fn fsync(&self, fd: i32) -> Result<(), OpError> {
        // SAFETY: plain system call on a descriptor.
        if unsafe { libc::fsync(fd) } < 0 {
            Err(os_err("fsync"))
        } else {
            Ok(())
        }
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        let p = self.cpath(path)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `p` is NUL-terminated and `st` has room for a `struct stat`.
        if unsafe { libc::stat(p.as_ptr(), st.as_mut_ptr()) } < 0 {
            return Err(os_err("stat"));
        }
        // SAFETY: stat returned 0, so it filled in `st`.
        let st = unsafe { st.assume_init() };
        Ok(Attrs { size: st.st_size as u64, mode: st.st_mode })
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "unlink", |p| unsafe { libc::unlink(p) })
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "mkdir", |p| unsafe { libc::mkdir(p, 0o755) })
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "rmdir", |p| unsafe { libc::rmdir(p) })
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        let (f, t) = (self.cpath(from)?, self.cpath(to)?);
        // SAFETY: both paths are NUL-terminated strings that outlive the call.
        if unsafe { libc::rename(f.as_ptr(), t.as_ptr()) } < 0 {
            Err(os_err("rename"))
        } else {
            Ok(())
        }
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        let p = self.cpath(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let dir = unsafe { libc::opendir(p.as_ptr()) };
        if dir.is_null() {
            return Err(os_err("opendir"));
        }
        let listed = loop {
            // readdir reports an error only through errno, and leaves errno alone at the end of
            // the stream; clearing it first tells the two apart.
            // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `dir` is an open stream that only this function uses.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                break if errno == 0 { Ok(()) } else { Err(os_err("readdir")) };
            }
            // SAFETY: a non-null entry stays valid until the next readdir or closedir of `dir`,
            // and its d_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            visit(name.to_bytes());
        };
        // SAFETY: `dir` came from opendir and is closed exactly once.
        if unsafe { libc::closedir(dir) } < 0 {
            return listed.and(Err(os_err("closedir")));
        }
        listed
    }
}

// ---------------------------------------------------------------------------------------------
// Data pattern
// ---------------------------------------------------------------------------------------------

/// The splitmix64 finaliser: a cheap bijective mix, so that nearby inputs give unrelated words.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The content one writer puts into a file in one iteration. The word at file offset `o` (a
/// multiple of 8) is a stamp `mix(key ^ o)` when `o` is a multiple of [`STAMP_BYTES`], and
/// otherwise the template word at `o % transfer`. Transfers start at multiples of `transfer`.
struct Pattern {
    key: u64,
    transfer: u64,
    template: Vec<u8>,
}

impl Pattern {
    fn new(writer: usize, iteration: u32, transfer: u64) -> Pattern {
        let key = mix(((writer as u64) << 32) | u64::from(iteration));
        let mut template = vec![0u8; transfer as usize];
        for (i, w) in template.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&mix(key.rotate_left(17) ^ i as u64).to_le_bytes());
        }
        Pattern { key, transfer, template }
    }

    fn stamp(&self, offset: u64) -> [u8; 8] {
        mix(self.key ^ offset).to_le_bytes()
    }

    /// Makes `buf` the content of the transfer at file `offset`. When `buf_holds_previous` is set,
    /// `buf` already holds this pattern's previous transfer and only the stamps need rewriting,
    /// which is what keeps the timed write loop free of data generation.
    fn fill(&self, buf: &mut [u8], offset: u64, buf_holds_previous: bool) {
        debug_assert_eq!(offset % self.transfer, 0);
        // Stamps sit at the same buffer positions in every transfer only if a transfer is a whole
        // number of stamp intervals; otherwise the old stamps must be overwritten by the template.
        if !buf_holds_previous || self.transfer % STAMP_BYTES != 0 {
            buf.copy_from_slice(&self.template);
        }
        let first = offset.next_multiple_of(STAMP_BYTES);
        let end = offset + buf.len() as u64;
        let mut o = first;
        while o < end {
            let at = (o - offset) as usize;
            buf[at..at + 8].copy_from_slice(&self.stamp(o));
            o += STAMP_BYTES;
        }
    }

    /// Checks the first stamp of the transfer at `offset`: a near-free test for the timed loop.
    fn spot_check(&self, buf: &[u8], offset: u64) -> bool {
        let o = offset.next_multiple_of(STAMP_BYTES);
        let at = (o - offset) as usize;
        at + 8 > buf.len() || buf[at..at + 8] == self.stamp(o)
    }
}

// ---------------------------------------------------------------------------------------------
// Job context
// ---------------------------------------------------------------------------------------------

struct Ctx {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    opts: Options,
}

impl Ctx {
    /// An operation that must not fail did: there is no meaningful way to continue the collective
    /// pattern on this rank alone, so the whole job is stopped.
    fn fatal(&self, store: &dyn Store, what: &str, e: OpError) -> ! {
        eprintln!("benchfs-bench: rank {}: {} {what}: {e}", self.rank, store.label());
        self.world.abort(2)
    }

    fn max_f64(&self, local: f64) -> f64 {
        let mut global = 0.0f64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::max());
        global
    }

    fn sum_u64(&self, local: u64) -> u64 {
        let mut global = 0u64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::sum());
        global
    }

    fn min_u64(&self, local: u64) -> u64 {
        let mut global = 0u64;
        self.world.all_reduce_into(&local, &mut global, SystemOperation::min());
        global
    }

    /// Rank 0's string, on every rank.
    fn broadcast_string(&self, s: String) -> String {
        let root = self.world.process_at_rank(0);
        let mut len = s.len() as u64;
        root.broadcast_into(&mut len);
        let mut bytes = if self.rank == 0 { s.into_bytes() } else { vec![0u8; len as usize] };
        root.broadcast_into(&mut bytes[..]);
        String::from_utf8(bytes).expect("rank 0 broadcasts UTF-8")
    }
}

// ---------------------------------------------------------------------------------------------
// Bandwidth patterns
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One file per rank.
    Fpp,
    /// One file for all ranks, IOR's segmented layout.
    Shared,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Fpp => "fpp",
            Layout::Shared => "shared",
        }
    }

    fn path(self, writer: usize) -> String {
        match self {
            Layout::Fpp => format!("/bench/fpp.{writer}"),
            Layout::Shared => "/bench/shared".to_string(),
        }
    }

    /// Every (file offset, length) that `writer` owns, in the order it writes them.
    fn transfers(self, ctx: &Ctx, writer: usize) -> impl Iterator<Item = u64> {
        let (block, transfer, n) = (ctx.opts.block, ctx.opts.transfer, ctx.size as u64);
        let per_block = block / transfer;
        let layout = self;
        (0..ctx.opts.segments).flat_map(move |s| {
            let base = match layout {
                Layout::Fpp => s * block,
                Layout::Shared => (s * n + writer as u64) * block,
            };
            (0..per_block).map(move |t| base + t * transfer)
        })
    }

    /// The size the file of `writer` has after everyone wrote.
    fn file_size(self, ctx: &Ctx) -> u64 {
        match self {
            Layout::Fpp => ctx.opts.segments * ctx.opts.block,
            Layout::Shared => ctx.opts.segments * ctx.size as u64 * ctx.opts.block,
        }
    }
}

/// Aggregate rates of one iteration of a bandwidth pattern, in MiB/s.
struct Rates {
    write: f64,
    read: f64,
}

fn bytes_per_rank(ctx: &Ctx) -> u64 {
    ctx.opts.segments * ctx.opts.block
}

/// Removes the files of this layout; absent files are fine. The barriers on both sides keep the
/// removal away from other ranks still reading the file and from the next phase.
fn remove_data_files(ctx: &Ctx, store: &dyn Store, layout: Layout) {
    let path = layout.path(ctx.rank);
    ctx.world.barrier();
    if layout == Layout::Fpp || ctx.rank == 0 {
        if let Err(e) = store.unlink(&path) {
            if e.errno != libc::ENOENT {
                ctx.fatal(store, &format!("unlink {path}"), e);
            }
        }
    }
    ctx.world.barrier();
}

fn write_phase(ctx: &Ctx, store: &dyn Store, layout: Layout, iteration: u32) -> f64 {
    let path = layout.path(ctx.rank);
    let pattern = Pattern::new(ctx.rank, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    pattern.fill(&mut buf, 0, false);
    // Every rank opens the shared file with O_CREAT and none truncates it: a late O_TRUNC would
    // destroy the blocks that faster ranks have already written.
    let flags = match layout {
        Layout::Fpp => libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
        Layout::Shared => libc::O_CREAT | libc::O_WRONLY,
    };

    ctx.world.barrier();
    let start = Instant::now();
    let fd = store.open(&path, flags).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, ctx.rank) {
        pattern.fill(&mut buf, offset, true);
        store.pwrite_all(fd, &buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
    }
    if ctx.opts.fsync {
        store.fsync(fd).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    }
    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    ctx.max_f64(start.elapsed().as_secs_f64())
}

/// Reports one wrong transfer on stderr (up to [`MAX_REPORTS`] per phase).
fn report_mismatch(ctx: &Ctx, store: &dyn Store, reports: &mut u32, what: String) {
    if *reports < MAX_REPORTS {
        eprintln!("benchfs-bench: rank {}: {} verify: {what}", ctx.rank, store.label());
    } else if *reports == MAX_REPORTS {
        eprintln!("benchfs-bench: rank {}: {} verify: further mismatches not shown", ctx.rank, store.label());
    }
    *reports += 1;
}

/// The timed read phase: reads the data of the next rank, checking lengths and stamps only.
/// Returns the phase time and the number of bad transfers seen on this rank.
fn read_phase(ctx: &Ctx, store: &dyn Store, layout: Layout, iteration: u32) -> (f64, u64) {
    let writer = (ctx.rank + 1) % ctx.size;
    let path = layout.path(writer);
    let pattern = Pattern::new(writer, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    let verify = ctx.opts.verify;
    let mut bad = 0u64;
    let mut reports = 0u32;

    ctx.world.barrier();
    let start = Instant::now();
    let fd = store.open(&path, libc::O_RDONLY).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, writer) {
        let n = store.pread_full(fd, &mut buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
        if n != buf.len() {
            bad += 1;
            report_mismatch(ctx, store, &mut reports, format!("{path} @ {offset}: short read of {n} bytes"));
        } else if verify && !pattern.spot_check(&buf, offset) {
            bad += 1;
            report_mismatch(ctx, store, &mut reports, format!("{path} @ {offset}: wrong stamp"));
        }
    }
    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    let elapsed = start.elapsed().as_secs_f64();
    (ctx.max_f64(elapsed), bad)
}

/// The untimed full check: re-reads the next rank's data and compares every byte, and checks the
/// size `stat` reports. Returns the number of bad transfers on this rank.
fn verify_pass(ctx: &Ctx, store: &dyn Store, layout: Layout, iteration: u32) -> u64 {
    let writer = (ctx.rank + 1) % ctx.size;
    let path = layout.path(writer);
    let pattern = Pattern::new(writer, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    let mut expected = vec![0u8; ctx.opts.transfer as usize];
    let mut bad = 0u64;
    let mut reports = 0u32;

    let size = store.stat(&path).unwrap_or_else(|e| ctx.fatal(store, &path, e)).size;
    if size != layout.file_size(ctx) {
        bad += 1;
        report_mismatch(ctx, store, &mut reports, format!("{path}: stat size {size}, expected {}", layout.file_size(ctx)));
    }
    let fd = store.open(&path, libc::O_RDONLY).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, writer) {
        let n = store.pread_full(fd, &mut buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
        pattern.fill(&mut expected, offset, false);
        if n != buf.len() || buf != expected {
            bad += 1;
            let at = buf[..n].iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(n);
            let what = if at < n {
                format!("{path}: first wrong byte at offset {} (read {:#04x}, expected {:#04x})", offset + at as u64, buf[at], expected[at])
            } else {
                format!("{path} @ {offset}: short read of {n} bytes")
            };
            report_mismatch(ctx, store, &mut reports, what);
        }
    }
    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    bad
}

/// One iteration of a bandwidth pattern against one store. Returns the rates and this rank's
/// count of verification failures.
fn run_bandwidth(ctx: &Ctx, store: &dyn Store, layout: Layout, iteration: u32) -> (Rates, u64) {
    remove_data_files(ctx, store, layout);
    let total = ctx.sum_u64(bytes_per_rank(ctx)) as f64;
    let write_time = write_phase(ctx, store, layout, iteration);
    let (read_time, mut bad) = read_phase(ctx, store, layout, iteration);
    if ctx.opts.verify {
        ctx.world.barrier();
        bad += verify_pass(ctx, store, layout, iteration);
    }
    remove_data_files(ctx, store, layout);
    (Rates { write: total / MIB / write_time, read: total / MIB / read_time }, bad)
}

// ---------------------------------------------------------------------------------------------
// Metadata pattern
// ---------------------------------------------------------------------------------------------

const META_PHASES: [&str; 4] = ["create", "stat", "open+close", "remove"];

/// Runs the four metadata phases; returns the aggregate rates (operations per second, in the
/// order of [`META_PHASES`]) and this rank's count of wrong results.
fn run_meta(ctx: &Ctx, store: &dyn Store) -> ([f64; 4], u64) {
    let paths: Vec<String> = (0..ctx.opts.files).map(|i| format!("/meta/r{}.{i}", ctx.rank)).collect();
    let total_ops = ctx.sum_u64(ctx.opts.files) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;
    let mut rates = [0.0; 4];

    for (phase, rate) in rates.iter_mut().enumerate() {
        ctx.world.barrier();
        let start = Instant::now();
        for path in &paths {
            let what = || format!("{} {path}", META_PHASES[phase]);
            match phase {
                0 => {
                    let fd = store.open(path, libc::O_CREAT | libc::O_WRONLY).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                }
                1 => {
                    let size = store.stat(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)).size;
                    if size != 0 {
                        bad += 1;
                        report_mismatch(ctx, store, &mut reports, format!("{path}: size {size} after create"));
                    }
                }
                2 => {
                    let fd = store.open(path, libc::O_RDONLY).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                }
                _ => store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
            }
        }
        *rate = total_ops / ctx.max_f64(start.elapsed().as_secs_f64());
    }

    // Removed files must be gone (checked outside the timed phases).
    ctx.world.barrier();
    for path in paths.iter().step_by((paths.len() / 16).max(1)) {
        match store.stat(path) {
            Err(e) if e.errno == libc::ENOENT => {}
            other => {
                bad += 1;
                report_mismatch(ctx, store, &mut reports, format!("stat {path} after remove: {other:?}, expected ENOENT"));
            }
        }
    }
    (rates, bad)
}

// ---------------------------------------------------------------------------------------------
// Directory patterns
// ---------------------------------------------------------------------------------------------

/// The directories every pattern works in; they exist before any pattern runs.
const PARENTS: [&str; 5] = ["/bench", "/meta", "/dirs", SHARED_DIR, "/ren"];

/// The directory that all ranks fill and list in the readdir pattern.
const SHARED_DIR: &str = "/shared-dir";

/// The phases of the directory-tree pattern, in the order they run.
const TREE_PHASES: [&str; 3] = ["mkdir", "dir stat", "rmdir"];

/// Creates an empty file as untimed setup for a pattern.
fn create_empty(ctx: &Ctx, store: &dyn Store, path: &str) {
    let what = || format!("create {path}");
    let fd = store.open(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
    store.close(fd).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
}

/// Removes files as untimed cleanup after a pattern.
fn remove_files(ctx: &Ctx, store: &dyn Store, paths: &[String]) {
    for path in paths {
        store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &format!("unlink {path}"), e));
    }
}

/// Checks that `path` no longer exists after `what` removed or moved it; returns 1 if it does.
fn expect_gone(ctx: &Ctx, store: &dyn Store, path: &str, what: &str, reports: &mut u32) -> u64 {
    match store.stat(path) {
        Err(e) if e.errno == libc::ENOENT => 0,
        other => {
            report_mismatch(ctx, store, reports, format!("stat {path} after {what}: {other:?}, expected ENOENT"));
            1
        }
    }
}

/// Lists `dir` (untimed) and checks that it holds exactly the names in `expected`, plus `.` and
/// `..`, each once. Returns the number of wrong entries: missing, unexpected or repeated ones.
fn check_listing(ctx: &Ctx, store: &dyn Store, dir: &str, expected: &[String], reports: &mut u32) -> u64 {
    let index: HashMap<&[u8], usize> = expected.iter().enumerate().map(|(i, name)| (name.as_bytes(), i)).collect();
    let mut seen = vec![false; expected.len()];
    let mut dots = [0u32; 2];
    let mut strays = Vec::new();
    store
        .list_dir(dir, &mut |name| match name {
            b"." => dots[0] += 1,
            b".." => dots[1] += 1,
            _ => match index.get(name) {
                Some(&i) if !seen[i] => seen[i] = true,
                _ => strays.push(String::from_utf8_lossy(name).into_owned()),
            },
        })
        .unwrap_or_else(|e| ctx.fatal(store, &format!("list {dir}"), e));

    let mut bad = 0u64;
    for name in strays {
        bad += 1;
        report_mismatch(ctx, store, reports, format!("{dir}: unexpected or repeated entry {name:?}"));
    }
    for (name, _) in expected.iter().zip(&seen).filter(|(_, &seen)| !seen) {
        bad += 1;
        report_mismatch(ctx, store, reports, format!("{dir}: entry {name:?} missing"));
    }
    for (name, count) in [".", ".."].into_iter().zip(dots) {
        if count != 1 {
            bad += 1;
            report_mismatch(ctx, store, reports, format!("{dir}: {name:?} listed {count} times, expected once"));
        }
    }
    bad
}

/// Creates, stats and removes `--dirs` directories in this rank's own parent, each phase timed
/// on its own. Returns the aggregate rates (in the order of [`TREE_PHASES`]) and this rank's count
/// of wrong results.
fn run_tree(ctx: &Ctx, store: &dyn Store) -> ([f64; 3], u64) {
    let parent = format!("/dirs/r{}", ctx.rank);
    let names: Vec<String> = (0..ctx.opts.dir_count).map(|i| format!("d{i}")).collect();
    let paths: Vec<String> = names.iter().map(|name| format!("{parent}/{name}")).collect();
    let total_ops = ctx.sum_u64(ctx.opts.dir_count) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;
    let mut rates = [0.0; 3];

    store.mkdir(&parent).unwrap_or_else(|e| ctx.fatal(store, &format!("mkdir {parent}"), e));
    for (phase, rate) in rates.iter_mut().enumerate() {
        ctx.world.barrier();
        let start = Instant::now();
        for path in &paths {
            let what = || format!("{} {path}", TREE_PHASES[phase]);
            match phase {
                0 => store.mkdir(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
                1 => {
                    let attrs = store.stat(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                    if !attrs.is_dir() {
                        bad += 1;
                        report_mismatch(ctx, store, &mut reports, format!("{path}: mode {:o} after mkdir", attrs.mode));
                    }
                }
                _ => store.rmdir(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
            }
        }
        *rate = total_ops / ctx.max_f64(start.elapsed().as_secs_f64());
        // The new directories must be entries of their parent (checked outside the timing).
        if phase == 0 && ctx.opts.verify {
            bad += check_listing(ctx, store, &parent, &names, &mut reports);
        }
    }

    if ctx.opts.verify {
        for path in &paths {
            bad += expect_gone(ctx, store, path, "rmdir", &mut reports);
        }
    }
    // Succeeds only if the parent agrees that all its entries are gone.
    if let Err(e) = store.rmdir(&parent) {
        bad += 1;
        report_mismatch(ctx, store, &mut reports, format!("rmdir {parent} after removing its entries: {e}"));
    }
    (rates, bad)
}

/// Every rank lists the whole of one shared directory holding `--readdir-files` files of every
/// rank. Returns the aggregate rate (entries listed by all ranks per second of the slowest rank)
/// and this rank's count of wrong results.
fn run_readdir(ctx: &Ctx, store: &dyn Store) -> (f64, u64) {
    let n = ctx.opts.readdir_files;
    let own: Vec<String> = (0..n).map(|i| format!("{SHARED_DIR}/r{}.{i}", ctx.rank)).collect();
    for path in &own {
        create_empty(ctx, store, path);
    }
    // Both file systems return `.` and `..` from opendir/readdir.
    let expected = n * ctx.size as u64 + 2;
    let mut bad = 0u64;
    let mut reports = 0u32;

    ctx.world.barrier();
    let start = Instant::now();
    let mut listed = 0u64;
    store.list_dir(SHARED_DIR, &mut |_| listed += 1).unwrap_or_else(|e| ctx.fatal(store, &format!("list {SHARED_DIR}"), e));
    let elapsed = start.elapsed().as_secs_f64();
    let rate = ctx.sum_u64(listed) as f64 / ctx.max_f64(elapsed);

    if listed != expected {
        bad += 1;
        report_mismatch(
            ctx,
            store,
            &mut reports,
            format!(
                "{SHARED_DIR}: listed {listed} entries, expected {expected} \
                 ({n} per rank, . and ..)"
            ),
        );
    }
    if ctx.opts.verify {
        let names: Vec<String> = (0..ctx.size).flat_map(|r| (0..n).map(move |i| format!("r{r}.{i}"))).collect();
        bad += check_listing(ctx, store, SHARED_DIR, &names, &mut reports);
    }
    // Nobody removes a file before every rank has finished listing.
    ctx.world.barrier();
    remove_files(ctx, store, &own);
    ctx.world.barrier();
    (rate, bad)
}

/// Every rank renames `--renames` files of its own within one shared directory. Returns the
/// aggregate rate and this rank's count of wrong results.
fn run_rename(ctx: &Ctx, store: &dyn Store) -> (f64, u64) {
    let from: Vec<String> = (0..ctx.opts.renames).map(|i| format!("/ren/r{}.{i}", ctx.rank)).collect();
    let to: Vec<String> = from.iter().map(|path| format!("{path}.moved")).collect();
    for path in &from {
        create_empty(ctx, store, path);
    }
    let total_ops = ctx.sum_u64(ctx.opts.renames) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;

    ctx.world.barrier();
    let start = Instant::now();
    for (old, new) in from.iter().zip(&to) {
        store.rename(old, new).unwrap_or_else(|e| ctx.fatal(store, &format!("rename {old} {new}"), e));
    }
    let rate = total_ops / ctx.max_f64(start.elapsed().as_secs_f64());

    if ctx.opts.verify {
        for (old, new) in from.iter().zip(&to) {
            bad += expect_gone(ctx, store, old, "rename", &mut reports);
            match store.stat(new) {
                Ok(attrs) if attrs.is_file() && attrs.size == 0 => {}
                other => {
                    bad += 1;
                    report_mismatch(ctx, store, &mut reports, format!("stat {new} after rename: {other:?}, expected an empty file"));
                }
            }
        }
    }
    remove_files(ctx, store, &to);
    ctx.world.barrier();
    (rate, bad)
}

// ---------------------------------------------------------------------------------------------
// Results table
// ---------------------------------------------------------------------------------------------

/// One line of the table: the best figure of each store over the iterations.
struct Row {
    name: String,
    unit: &'static str,
    benchfs: Option<f64>,
    posix: Option<f64>,
}

impl Row {
    fn new(name: String, unit: &'static str) -> Row {
        Row { name, unit, benchfs: None, posix: None }
    }

    fn record(slot: &mut Option<f64>, value: f64) {
        *slot = Some(slot.map_or(value, |best| best.max(value)));
    }
}

struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn row(&mut self, name: &str, unit: &'static str) -> &mut Row {
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(Row::new(name.to_string(), unit));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    fn record(&mut self, name: &str, unit: &'static str, store: &dyn Store, value: f64) {
        let row = self.row(name, unit);
        match store.system() {
            System::BenchFs => Row::record(&mut row.benchfs, value),
            System::Posix => Row::record(&mut row.posix, value),
        }
    }

    fn print(&self, iterations: u32) {
        let how = if iterations == 1 { "1 iteration".to_string() } else { format!("best of {iterations} iterations") };
        println!();
        println!("results ({how}; rates = total bytes or operations / slowest rank's time)");
        println!("{:<18} {:>14} {:>14} {:>8}  unit", "pattern", "BenchFS", "POSIX", "ratio");
        println!("{}", "-".repeat(66));
        let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        for r in &self.rows {
            let ratio = match (r.benchfs, r.posix) {
                (Some(b), Some(p)) if p > 0.0 => format!("{:.2}", b / p),
                _ => "n/a".to_string(),
            };
            println!("{:<18} {:>14} {:>14} {:>8}  {}", r.name, fmt(r.benchfs), fmt(r.posix), ratio, r.unit);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setup and main
// ---------------------------------------------------------------------------------------------

/// The POSIX directory: as given, or a fresh one named after the job so that concurrent jobs on a
/// node do not collide. Rank 0 chooses it, because each rank has its own pid.
fn choose_posix_dir(ctx: &Ctx) -> String {
    let chosen = match (&ctx.opts.posix_dir, ctx.rank) {
        (Some(dir), _) => dir.clone(),
        (None, 0) => {
            let id = ["SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| std::process::id().to_string());
            let id: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
            format!("/dev/shm/benchfs-bench-posix-{id}")
        }
        (None, _) => String::new(),
    };
    ctx.broadcast_string(chosen).trim_end_matches('/').to_string()
}

/// What setting up the POSIX side found out.
struct PosixSetup {
    /// Whether rank 0 created the directory (and so removes it again at the end).
    created_root: bool,
    /// Whether every rank sees the same directory. Node-local directories (e.g. /dev/shm on
    /// several nodes) cannot host a shared file or a read of another rank's file.
    shared: bool,
}

/// The directories of [`PARENTS`] below `root`.
fn create_posix_parents(root: &str) -> std::io::Result<()> {
    PARENTS.iter().try_for_each(|dir| std::fs::create_dir_all(format!("{root}{dir}")))
}

fn setup_posix_dir(ctx: &Ctx, root: &str) -> PosixSetup {
    let marker = format!("{root}/.benchfs-bench-visible");
    let mut created = 0u64;
    if ctx.rank == 0 {
        created = u64::from(!std::path::Path::new(root).exists());
        let made = create_posix_parents(root).and_then(|_| std::fs::write(&marker, b""));
        if let Err(e) = made {
            eprintln!("benchfs-bench: cannot set up POSIX directory {root}: {e}");
            ctx.world.abort(2);
        }
    }
    ctx.world.barrier();
    let sees_marker = u64::from(std::path::Path::new(&marker).exists());
    ctx.world.barrier();
    if ctx.rank != 0 {
        if let Err(e) = create_posix_parents(root) {
            eprintln!("benchfs-bench: rank {}: cannot set up POSIX directory {root}: {e}", ctx.rank);
            ctx.world.abort(2);
        }
    }
    ctx.world.barrier();
    if ctx.rank == 0 {
        let _ = std::fs::remove_file(&marker);
    }
    let root_rank = ctx.world.process_at_rank(0);
    root_rank.broadcast_into(&mut created);
    PosixSetup { created_root: created == 1, shared: ctx.min_u64(sees_marker) == 1 }
}

/// Removes the directories the benchmark created. Only empty directories are removed (every file
/// was unlinked by its pattern), so a user-supplied directory never loses foreign files.
fn remove_posix_dir(ctx: &Ctx, root: &str, setup: &PosixSetup) {
    ctx.world.barrier();
    // Every rank tries, so that node-local directories on every node go too; whoever comes second
    // finds them gone, which is fine.
    for dir in PARENTS {
        let _ = std::fs::remove_dir(format!("{root}{dir}"));
    }
    if setup.created_root {
        let _ = std::fs::remove_dir(root);
    }
    ctx.world.barrier();
}

/// The chunk size, as configured or as BenchFS reports it in `st_blksize`.
fn chunk_size_description() -> String {
    if let Ok(v) = std::env::var("BENCHFS_CHUNK_SIZE") {
        return format!("{v} (BENCHFS_CHUNK_SIZE)");
    }
    let probe = "/bench/.chunk-size-probe";
    let size = benchfs::open(probe, libc::O_CREAT | libc::O_WRONLY, 0o644).and_then(|fd| {
        let st = benchfs::fstat(fd);
        benchfs::close(fd)?;
        benchfs::unlink(probe)?;
        st
    });
    match size {
        Ok(st) => format!("{} (st_blksize)", fmt_size(st.blksize)),
        Err(e) => format!("unknown ({e})"),
    }
}

fn print_config(ctx: &Ctx, posix_root: &str, setup: &PosixSetup) {
    let o = &ctx.opts;
    let modes: Vec<&str> = [(o.fpp, "fpp"), (o.shared, "shared"), (o.meta, "meta"), (o.dirs, "dirs")]
        .iter()
        .filter_map(|&(on, name)| on.then_some(name))
        .collect();
    let bandwidth = o.fpp || o.shared;
    let chunk = chunk_size_description();
    let per_rank = bytes_per_rank(ctx);
    println!("benchfs-bench configuration");
    println!("  ranks            {}", ctx.size);
    println!("  modes            {}", modes.join(" "));
    if bandwidth {
        println!("  transfer size    {}", fmt_size(o.transfer));
        println!("  block size       {} per rank", fmt_size(o.block));
        println!("  segments         {}", o.segments);
        println!("  data per rank    {}  (aggregate {})", fmt_size(per_rank), fmt_size(per_rank * ctx.size as u64));
    }
    if o.meta {
        println!("  files per rank   {} (meta)", o.files);
    }
    if o.dirs {
        println!("  dirs per rank    {} (mkdir, dir stat, rmdir)", o.dir_count);
        println!("  listed files     {} per rank, in one directory (readdir)", o.readdir_files);
        println!("  renames per rank {} (rename)", o.renames);
    }
    println!("  chunk size       {chunk}");
    println!("  iterations       {} (best reported)", o.iterations);
    let verify = match (o.verify, bandwidth, o.dirs) {
        (false, ..) => "off",
        (true, true, true) => "every byte after each read phase, every name after each listing (untimed)",
        (true, true, false) => "every byte, in an untimed pass after each read phase",
        (true, false, _) => "every result, untimed; every listed name in a second listing",
    };
    println!("  verify           {verify}");
    if bandwidth {
        println!("  fsync on write   {}", if o.fsync { "yes" } else { "no" });
    }
    println!(
        "  POSIX directory  {posix_root}{}",
        if setup.shared { "" } else { "  (not shared by all ranks: cross-rank POSIX patterns skipped)" }
    );
}

/// The directory patterns against one store; returns this rank's count of wrong results.
fn run_dirs(ctx: &Ctx, store: &dyn Store, setup: &PosixSetup, table: &mut Table) -> u64 {
    let mut bad = 0u64;
    if ctx.opts.dir_count > 0 {
        let (rates, b) = run_tree(ctx, store);
        bad += b;
        for (phase, rate) in TREE_PHASES.iter().zip(rates) {
            table.record(phase, "ops/s", store, rate);
        }
    }
    if ctx.opts.readdir_files > 0 {
        // Every rank lists the files of all ranks: a node-local POSIX directory cannot host that.
        if store.system() == System::Posix && !setup.shared && ctx.size > 1 {
            table.row("readdir", "entries/s");
        } else {
            let (rate, b) = run_readdir(ctx, store);
            bad += b;
            table.record("readdir", "entries/s", store, rate);
        }
    }
    if ctx.opts.renames > 0 {
        let (rate, b) = run_rename(ctx, store);
        bad += b;
        table.record("rename", "ops/s", store, rate);
    }
    bad
}

fn run(ctx: &Ctx, posix_root: &str, setup: &PosixSetup) -> u64 {
    let posix = Posix { root: posix_root.to_string() };
    let stores: [&dyn Store; 2] = [&BenchFs, &posix];
    let mut table = Table { rows: Vec::new() };
    let mut bad = 0u64;

    for iteration in 0..ctx.opts.iterations {
        for layout in [Layout::Fpp, Layout::Shared] {
            let selected = match layout {
                Layout::Fpp => ctx.opts.fpp,
                Layout::Shared => ctx.opts.shared,
            };
            if !selected {
                continue;
            }
            for store in stores {
                // The reads (and, for the shared layout, the file) span ranks; a node-local POSIX
                // directory cannot host them, so those figures are left out.
                if store.system() == System::Posix && !setup.shared && ctx.size > 1 {
                    table.row(&format!("{} write", layout.name()), "MiB/s");
                    table.row(&format!("{} read", layout.name()), "MiB/s");
                    continue;
                }
                let (rates, b) = run_bandwidth(ctx, store, layout, iteration);
                bad += b;
                table.record(&format!("{} write", layout.name()), "MiB/s", store, rates.write);
                table.record(&format!("{} read", layout.name()), "MiB/s", store, rates.read);
            }
        }
        if ctx.opts.meta && ctx.opts.files > 0 {
            for store in stores {
                let (rates, b) = run_meta(ctx, store);
                bad += b;
                for (phase, rate) in META_PHASES.iter().zip(rates) {
                    table.record(&format!("meta {phase}"), "ops/s", store, rate);
                }
            }
        }
        if ctx.opts.dirs {
            for store in stores {
                bad += run_dirs(ctx, store, setup, &mut table);
            }
        }
    }
    if ctx.rank == 0 {
        table.print(ctx.opts.iterations);
    }
    bad
}

fn main() -> ExitCode {
    let Some(universe) = mpi::initialize() else {
        eprintln!("benchfs-bench: MPI was already initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);

    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_options(&args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            if rank == 0 {
                println!("{}", usage());
            }
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            if rank == 0 {
                eprintln!("benchfs-bench: {msg}");
            }
            return ExitCode::from(2);
        }
    };

    if let Err(e) = benchfs::init(&world) {
        eprintln!("benchfs-bench: rank {rank}: benchfs::init failed: {e} (errno {})", e.errno());
        world.abort(2);
    }
    // The namespaces the patterns use; created once, by rank 0, before anyone uses them.
    if rank == 0 {
        for dir in PARENTS {
            if let Err(e) = benchfs::mkdir(dir, 0o755) {
                eprintln!("benchfs-bench: mkdir {dir}: {e} (errno {})", e.errno());
                world.abort(2);
            }
        }
    }
    world.barrier();
    let ctx = Ctx { world, rank, size, opts };

    let posix_root = choose_posix_dir(&ctx);
    let setup = setup_posix_dir(&ctx, &posix_root);
    if rank == 0 {
        print_config(&ctx, &posix_root, &setup);
    }

    let bad = ctx.sum_u64(run(&ctx, &posix_root, &setup));
    remove_posix_dir(&ctx, &posix_root, &setup);
    if rank == 0 && ctx.opts.verify {
        println!();
        match bad {
            0 => println!("verification: passed"),
            n => println!("verification: FAILED ({n} bad transfers or results)"),
        }
    }

    if let Err(e) = benchfs::finalize() {
        eprintln!("benchfs-bench: rank {rank}: benchfs::finalize failed: {e}");
        return ExitCode::FAILURE;
    }
    drop(ctx);
    drop(universe);
    if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
