//! A self-checking MPI program for the Rust API: run it under `mpirun` with any number of ranks.
//!
//! ```text
//! mpirun -np 4 target/debug/examples/selfcheck
//! ```
//!
//! Every rank writes files that span several chunks (so their chunks live on other ranks), then
//! every rank reads every rank's files back and compares each byte; a shared file is written at
//! unaligned, interleaved offsets; holes, end of file, `unlink` and error codes are checked too.
//! Each failed check is printed to stderr with the rank and the details. The last line on rank 0 is
//! `selfcheck: N passed, M failed` (totals over all ranks) and every rank exits 1 if M > 0.

mod common;

use std::process::ExitCode;

use benchfs::{FileStat, Whence};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use common::{mix, pattern, read_at, write_all, Checker, Rng};

/// Segment size of the shared-file test: neither a power of two nor a divisor of any chunk size,
/// so segments straddle chunk boundaries at varying positions.
const SHARED_SEGMENT: u64 = 47008;

/// The largest per-rank file is kept below this size whatever the chunk size is.
const MAX_FILE: u64 = 48 << 20;

/// Failures beyond this many per rank are counted but not printed.
const MAX_PRINTED: u64 = 50;

// ---------------------------------------------------------------------------------------------
// Helpers over the API
// ---------------------------------------------------------------------------------------------

/// Opens `path` read-only, reads `len` bytes at `offset` and closes it.
fn read_file(c: &mut Checker, path: &str, offset: u64, len: u64) -> Option<Vec<u8>> {
    let fd = c.ok(benchfs::open(path, libc::O_RDONLY, 0), || format!("open {path} O_RDONLY"))?;
    let data = c.ok(read_at(fd, offset, len), || format!("pread {path} @ {offset} len {len}"));
    c.ok(benchfs::close(fd), || format!("close {path}"));
    data
}

fn check_stat(c: &mut Checker, path: &str, size: u64, chunk: u64) -> Option<FileStat> {
    let st = c.ok(benchfs::stat(path), || format!("stat {path}"))?;
    c.check(st.size == size, || format!("stat {path}: size {}, expected {size}", st.size));
    c.check(st.mode & libc::S_IFMT == libc::S_IFREG, || format!("stat {path}: mode {:#o} is not a regular file", st.mode));
    c.check(st.blksize == chunk, || format!("stat {path}: blksize {}, expected chunk size {chunk}", st.blksize));
    Some(st)
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

struct Job {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    chunk: u64,
}

impl Job {
    fn all_equal(&self, value: u64) -> bool {
        let mut all = vec![0u64; self.size];
        self.world.all_gather_into(&value, &mut all[..]);
        all.iter().all(|&v| v == value)
    }
}

/// Parses BENCHFS_CHUNK_SIZE the way a user writes it (`4194304`, `4M`, `512KiB`).
fn configured_chunk_size() -> Option<u64> {
    let v = std::env::var("BENCHFS_CHUNK_SIZE").ok()?.trim().to_ascii_lowercase();
    let v = v.trim_end_matches("ib").trim_end_matches('b');
    let shift = match v.chars().last()? {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => 0,
    };
    let digits = if shift == 0 { v } else { &v[..v.len() - 1] };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Learns the chunk size from `st_blksize`, and checks it against the configuration.
fn probe_chunk_size(c: &mut Checker, rank: usize) -> u64 {
    let path = format!("/selfcheck/probe.r{rank}");
    let mut chunk = 0;
    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644), || format!("create {path}")) {
        if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat {path}")) {
            chunk = st.blksize;
            c.check(st.size == 0, || format!("fstat {path}: size {} of a new file", st.size));
        }
        c.ok(benchfs::close(fd), || format!("close {path}"));
        c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
    }
    if let Some(configured) = configured_chunk_size() {
        c.check(chunk == configured, || format!("st_blksize {chunk}, BENCHFS_CHUNK_SIZE says {configured}"));
    }
    if chunk == 0 {
        c.fail("chunk size unknown (st_blksize is 0); assuming 1 MiB".into());
        chunk = 1 << 20;
    }
    chunk
}

/// The per-rank files: sizes around chunk boundaries and files of many chunks.
fn rank_files(job: &Job, rank: usize) -> Vec<(String, u64, u64)> {
    let c = job.chunk;
    let many = (2 * job.size as u64 + 3).min((MAX_FILE / c).max(3));
    let sizes = [1, 4097, c - 1, c, c + 1, 3 * c + 12345, many * c + 777];
    sizes.iter().enumerate().map(|(k, &size)| (format!("/selfcheck/r{rank}.f{k}"), size, mix(((rank as u64) << 16) | k as u64))).collect()
}

/// Each rank writes its files in pieces of assorted sizes, one of them through `write`.
fn write_rank_files(c: &mut Checker, job: &Job) {
    let pieces = [u64::MAX, 7919, 65537, job.chunk / 3 + 1];
    for (k, (path, size, tag)) in rank_files(job, job.rank).into_iter().enumerate() {
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        let Some(fd) = c.ok(benchfs::open(&path, flags, 0o644), || format!("create {path}")) else {
            continue;
        };
        let piece = pieces[k % pieces.len()];
        let mut offset = 0;
        while offset < size {
            let len = piece.min(size - offset);
            let data = pattern(tag, offset, len);
            let r = if k == 2 {
                // Sequential writes through the file offset.
                benchfs::write(fd, &data).and_then(|n| if n == data.len() { Ok(()) } else { Err(benchfs::Error::Internal("short write")) })
            } else {
                write_all(fd, &data, offset)
            };
            if c.ok(r, || format!("write {path} @ {offset} len {len}")).is_none() {
                break;
            }
            offset += len;
        }
        if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat {path}")) {
            c.check(st.size == size, || format!("fstat {path} before close: size {}, expected {size}", st.size));
        }
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
}

/// Every rank reads every rank's files: whole, in random sub-ranges and across chunk boundaries.
fn verify_rank_files(c: &mut Checker, job: &Job) {
    let mut rng = Rng(mix(0x5eed ^ job.rank as u64));
    for owner in 0..job.size {
        let mut inos = Vec::new();
        for (path, size, tag) in rank_files(job, owner) {
            if let Some(st) = check_stat(c, &path, size, job.chunk) {
                inos.push(st.ino);
            }
            let Some(fd) = c.ok(benchfs::open(&path, libc::O_RDONLY, 0), || format!("open {path}")) else {
                continue;
            };
            // Asking for more than the file holds also checks the short count at end of file.
            if let Some(data) = c.ok(read_at(fd, 0, size + 100), || format!("read {path}")) {
                c.bytes(&data, &pattern(tag, 0, size), 0, || format!("whole {path}"));
            }
            let mut ranges: Vec<(u64, u64)> = (0..12)
                .map(|_| {
                    let off = rng.below(size);
                    (off, 1 + rng.below((size - off).min(job.chunk + 4096)))
                })
                .collect();
            let mut boundary = job.chunk;
            while boundary < size && ranges.len() < 24 {
                let off = boundary.saturating_sub(1 + rng.below(100));
                ranges.push((off, (2 + rng.below(200)).min(size - off)));
                boundary += job.chunk;
            }
            for (off, len) in ranges {
                if let Some(data) = c.ok(read_at(fd, off, len), || format!("pread {path} @ {off} len {len}")) {
                    c.bytes(&data, &pattern(tag, off, len), off, || format!("range of {path} @ {off} len {len}"));
                }
            }
            c.ok(benchfs::close(fd), || format!("close {path}"));
        }
        let mut sorted = inos.clone();
        sorted.sort_unstable();
        sorted.dedup();
        c.check(sorted.len() == inos.len(), || format!("files of rank {owner} share inode numbers: {inos:?}"));
    }
}

/// The owner of a byte of the shared file, and so the tag its data was generated with.
fn shared_tag(job: &Job, offset: u64) -> u64 {
    mix(0x5a4e_0000 | ((offset / SHARED_SEGMENT) % job.size as u64))
}

fn shared_pattern(job: &Job, offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    let end = offset + len;
    let mut o = offset;
    while o < end {
        let segment_end = (o / SHARED_SEGMENT + 1) * SHARED_SEGMENT;
        let n = segment_end.min(end) - o;
        out.extend_from_slice(&pattern(shared_tag(job, o), o, n));
        o += n;
    }
    out
}

/// One file, segments of [`SHARED_SEGMENT`] bytes interleaved by rank, written concurrently.
fn shared_file(c: &mut Checker, job: &Job) {
    let path = "/selfcheck/shared";
    let n = job.size as u64;
    let per_rank = ((3 * job.chunk).div_ceil(SHARED_SEGMENT * n) + 1).max(2);
    let size = per_rank * n * SHARED_SEGMENT;

    if job.rank == 0 {
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        if let Some(fd) = c.ok(benchfs::open(path, flags, 0o644), || format!("create {path}")) {
            c.ok(benchfs::close(fd), || format!("close {path}"));
        }
    }
    job.world.barrier();
    if let Some(fd) = c.ok(benchfs::open(path, libc::O_WRONLY, 0), || format!("open {path} O_WRONLY")) {
        for i in 0..per_rank {
            let offset = (i * n + job.rank as u64) * SHARED_SEGMENT;
            let data = shared_pattern(job, offset, SHARED_SEGMENT);
            // Some segments go in two unaligned pieces, last piece first.
            let split = if i % 3 == 1 { 1009 + 17 * job.rank } else { 0 };
            let (head, tail) = data.split_at(split);
            let r = write_all(fd, tail, offset + split as u64).and_then(|_| write_all(fd, head, offset));
            c.ok(r, || format!("pwrite {path} segment {i} @ {offset}"));
        }
        if job.rank % 2 == 1 {
            c.ok(benchfs::fsync(fd), || format!("fsync {path}"));
        }
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    job.world.barrier();

    let st = check_stat(c, path, size, job.chunk);
    let same_ino = job.all_equal(st.map_or(u64::MAX, |st| st.ino));
    c.check(same_ino, || format!("ranks disagree on the inode number of {path}"));
    if let Some(data) = read_file(c, path, 0, size) {
        c.bytes(&data, &shared_pattern(job, 0, size), 0, || format!("whole {path}"));
    }
    let mut rng = Rng(mix(0x5a4e ^ job.rank as u64));
    for _ in 0..8 {
        let off = rng.below(size);
        let len = 1 + rng.below((size - off).min(2 * SHARED_SEGMENT));
        if let Some(data) = read_file(c, path, off, len) {
            c.bytes(&data, &shared_pattern(job, off, len), off, || format!("range of {path} @ {off} len {len}"));
        }
    }
}

/// The pieces written into a rank's sparse file: a hole inside the first chunk and a whole chunk
/// that is never written.
fn hole_layout(job: &Job) -> [(u64, u64); 3] {
    [(0, 100), (5000, 100), (2 * job.chunk + 333, 1000)]
}

fn hole_file_write(c: &mut Checker, job: &Job) {
    let path = format!("/selfcheck/hole.r{}", job.rank);
    let tag = mix(0x401e ^ job.rank as u64);
    let flags = libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC;
    let Some(fd) = c.ok(benchfs::open(&path, flags, 0o644), || format!("create {path}")) else {
        return;
    };
    for (off, len) in hole_layout(job) {
        c.ok(write_all(fd, &pattern(tag, off, len), off), || format!("pwrite {path} @ {off}"));
    }
    let size = 2 * job.chunk + 1333;
    if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat {path}")) {
        c.check(st.size == size, || format!("fstat {path}: size {} before close, expected {size}", st.size));
    }
    c.ok(benchfs::close(fd), || format!("close {path}"));
}

/// Another rank's sparse file: holes read as zeros; reads at and past the end are short.
fn hole_file_verify(c: &mut Checker, job: &Job) {
    let owner = (job.rank + 1) % job.size;
    let path = format!("/selfcheck/hole.r{owner}");
    let tag = mix(0x401e ^ owner as u64);
    let size = 2 * job.chunk + 1333;
    let mut expected = vec![0u8; size as usize];
    for (off, len) in hole_layout(job) {
        expected[off as usize..(off + len) as usize].copy_from_slice(&pattern(tag, off, len));
    }
    check_stat(c, &path, size, job.chunk);
    let Some(fd) = c.ok(benchfs::open(&path, libc::O_RDONLY, 0), || format!("open {path}")) else {
        return;
    };
    if let Some(data) = c.ok(read_at(fd, 0, size), || format!("read {path}")) {
        c.bytes(&data, &expected, 0, || format!("sparse {path}"));
    }
    let unwritten_chunk = job.chunk;
    if let Some(data) = c.ok(read_at(fd, unwritten_chunk, job.chunk), || format!("read hole chunk of {path}")) {
        c.bytes(&data, &expected[job.chunk as usize..2 * job.chunk as usize], unwritten_chunk, || format!("unwritten chunk of {path}"));
    }
    let mut buf = [0u8; 100];
    for (off, want) in [(size - 10, 10), (size, 0), (size + 12345, 0)] {
        if let Some(n) = c.ok(benchfs::pread(fd, &mut buf, off), || format!("pread {path} @ {off}")) {
            c.check(n == want, || format!("pread {path} @ {off} (size {size}): {n} bytes, expected {want}"));
        }
    }
    c.ok(benchfs::close(fd), || format!("close {path}"));
}

/// `write`, `read` and `lseek` through the file offset, `O_TRUNC` and `O_EXCL`.
fn file_offset_calls(c: &mut Checker, job: &Job) {
    let path = format!("/selfcheck/seq.r{}", job.rank);
    let tag = mix(0x5e9 ^ job.rank as u64);
    let all = pattern(tag, 0, 8000);
    let flags = libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC;
    let Some(fd) = c.ok(benchfs::open(&path, flags, 0o644), || format!("create {path}")) else {
        return;
    };
    let w1 = benchfs::write(fd, &all[..3000]);
    c.check(matches!(w1, Ok(3000)), || format!("write 3000 to {path}: {w1:?}"));
    let w2 = benchfs::write(fd, &all[3000..]);
    c.check(matches!(w2, Ok(5000)), || format!("write 5000 to {path}: {w2:?}"));
    for (off, whence, want) in [(0, Whence::Cur, 8000), (0, Whence::End, 8000), (100, Whence::Set, 100)] {
        let r = benchfs::lseek(fd, off, whence);
        c.check(matches!(r, Ok(p) if p == want), || format!("lseek({off}, {whence:?}) on {path}: {r:?}, expected {want}"));
    }
    let mut buf = [0u8; 50];
    if let Some(n) = c.ok(benchfs::read(fd, &mut buf), || format!("read {path}")) {
        c.bytes(&buf[..n], &all[100..150], 100, || format!("read after lseek in {path}"));
    }
    let r = benchfs::lseek(fd, -10, Whence::End);
    c.check(matches!(r, Ok(7990)), || format!("lseek(-10, End) on {path}: {r:?}"));
    let mut buf = [0u8; 100];
    if let Some(n) = c.ok(benchfs::read(fd, &mut buf), || format!("read at end of {path}")) {
        c.bytes(&buf[..n], &all[7990..], 7990, || format!("read past end of {path}"));
    }
    c.errno(benchfs::lseek(fd, -1, Whence::Set), libc::EINVAL, "lseek to a negative offset");
    c.ok(benchfs::close(fd), || format!("close {path}"));

    c.errno(benchfs::open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644), libc::EEXIST, "O_CREAT|O_EXCL on an existing file");
    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_WRONLY | libc::O_TRUNC, 0), || format!("O_TRUNC {path}")) {
        if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat {path}")) {
            c.check(st.size == 0, || format!("fstat {path} after O_TRUNC: size {}", st.size));
        }
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
}

/// Error codes through the Rust API.
fn error_cases(c: &mut Checker, job: &Job) {
    let missing = format!("/selfcheck/missing.r{}", job.rank);
    c.errno(benchfs::open("relative/path", libc::O_RDONLY, 0), libc::EINVAL, "open of a relative path");
    c.errno(benchfs::open("relative", libc::O_CREAT | libc::O_WRONLY, 0o644), libc::EINVAL, "create of a relative path");
    c.errno(benchfs::stat("relative"), libc::EINVAL, "stat of a relative path");
    c.errno(benchfs::unlink("relative"), libc::EINVAL, "unlink of a relative path");
    c.errno(benchfs::open(&missing, libc::O_RDONLY, 0), libc::ENOENT, "open of a missing file");
    c.errno(benchfs::stat(&missing), libc::ENOENT, "stat of a missing file");
    c.errno(benchfs::unlink(&missing), libc::ENOENT, "unlink of a missing file");
    let long = format!("/selfcheck/{}", "x".repeat(256));
    c.errno(benchfs::open(&long, libc::O_CREAT | libc::O_WRONLY, 0o644), libc::ENAMETOOLONG, "open of a 256-byte name");

    let mut buf = [0u8; 16];
    for fd in [-1, 1 << 20] {
        c.errno(benchfs::pread(fd, &mut buf, 0), libc::EBADF, &format!("pread on bad fd {fd}"));
        c.errno(benchfs::pwrite(fd, &buf, 0), libc::EBADF, &format!("pwrite on bad fd {fd}"));
        c.errno(benchfs::fstat(fd), libc::EBADF, &format!("fstat on bad fd {fd}"));
        c.errno(benchfs::close(fd), libc::EBADF, &format!("close of bad fd {fd}"));
    }

    let path = format!("/selfcheck/err.r{}", job.rank);
    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644), || format!("create {path}")) {
        c.errno(benchfs::pread(fd, &mut buf, 0), libc::EBADF, "pread on an O_WRONLY descriptor");
        c.ok(benchfs::close(fd), || format!("close {path}"));
        c.errno(benchfs::close(fd), libc::EBADF, "second close of a descriptor");
        c.errno(benchfs::pwrite(fd, &buf, 0), libc::EBADF, "pwrite on a closed descriptor");
    }
    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_RDONLY, 0), || format!("open {path}")) {
        c.errno(benchfs::pwrite(fd, &buf, 0), libc::EBADF, "pwrite on an O_RDONLY descriptor");
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
}

/// Every path this rank created and has not removed yet.
fn own_paths(job: &Job) -> Vec<String> {
    let mut paths: Vec<String> = rank_files(job, job.rank).into_iter().map(|(p, _, _)| p).collect();
    paths.push(format!("/selfcheck/hole.r{}", job.rank));
    if job.rank == 0 {
        paths.push("/selfcheck/shared".to_string());
    }
    paths
}

/// After `unlink`, no rank finds the files; a new file under an old name starts empty, with none
/// of the old chunks showing through its holes.
fn unlink_everywhere(c: &mut Checker, job: &Job) {
    for path in own_paths(job) {
        c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
    }
    job.world.barrier();
    for owner in 0..job.size {
        for (path, _, _) in rank_files(job, owner) {
            c.errno(benchfs::stat(&path), libc::ENOENT, &format!("stat {path} after unlink"));
            c.errno(benchfs::open(&path, libc::O_RDONLY, 0), libc::ENOENT, &format!("open {path} after unlink"));
        }
    }
    c.errno(benchfs::stat("/selfcheck/shared"), libc::ENOENT, "stat /selfcheck/shared after unlink");
    job.world.barrier();

    let (path, old_size, _) = rank_files(job, job.rank).pop().expect("at least one file");
    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644), || format!("re-create {path}")) {
        c.ok(write_all(fd, &[0xa5], old_size - 1), || format!("pwrite {path} @ {}", old_size - 1));
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    job.world.barrier();
    let (path, size, _) = rank_files(job, (job.rank + 1) % job.size).pop().expect("at least one file");
    if let Some(data) = read_file(c, &path, 0, size) {
        let mut expected = vec![0u8; size as usize];
        expected[size as usize - 1] = 0xa5;
        c.bytes(&data, &expected, 0, || format!("re-created {path}"));
    }
    job.world.barrier();
    let (path, _, _) = rank_files(job, job.rank).pop().expect("at least one file");
    c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
}

fn run(c: &mut Checker, world: SimpleCommunicator) {
    let rank = c.rank();
    let size = world.size() as usize;
    let chunk = probe_chunk_size(c, rank);
    let job = Job { world, rank, size, chunk };
    c.check(job.all_equal(chunk), || format!("ranks disagree on the chunk size ({chunk} here)"));

    write_rank_files(c, &job);
    hole_file_write(c, &job);
    job.world.barrier();
    verify_rank_files(c, &job);
    hole_file_verify(c, &job);
    job.world.barrier();
    shared_file(c, &job);
    file_offset_calls(c, &job);
    error_cases(c, &job);
    job.world.barrier();
    unlink_everywhere(c, &job);
    job.world.barrier();
}

fn main() -> ExitCode {
    let Some(universe) = mpi::initialize() else {
        eprintln!("selfcheck: MPI was already initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let rank = world.rank() as usize;
    let mut c = Checker::new("selfcheck", rank, MAX_PRINTED);

    match benchfs::init(&world) {
        Ok(()) => {
            // Files live in a directory of their own, which must exist before they are created.
            if rank == 0 {
                c.ok(benchfs::mkdir("/selfcheck", 0o755), || "mkdir /selfcheck".to_string());
            }
            world.barrier();
            run(&mut c, universe.world());
            c.ok(benchfs::finalize(), || "benchfs::finalize".to_string());
            c.errno(benchfs::stat("/selfcheck"), libc::ENOTCONN, "stat after finalize");
        }
        Err(e) => c.fail(format!("benchfs::init: {e} (errno {})", e.errno())),
    }

    let totals = c.totals(&world);
    totals.print();
    drop(world);
    drop(universe);
    totals.exit_code()
}
