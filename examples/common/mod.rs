//! What the self-checking example programs share: a [`Checker`] that counts checks and reports
//! failures with the rank, the position-dependent data [`pattern`], a small deterministic [`Rng`]
//! and loops that write or read a whole buffer through the positional calls.
//!
//! Each example is a crate of its own that compiles this module and uses only part of it, hence
//! the `dead_code` allowance.

#![allow(dead_code)]

use std::fmt::Debug;
use std::process::ExitCode;

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/// Counts passed and failed checks on one rank. Each failure is printed to stderr as
/// `<name>: rank R: FAILED: <what>`, up to `max_printed` of them, so that a broken run stays
/// readable; later ones are only counted.
pub struct Checker {
    name: &'static str,
    rank: usize,
    max_printed: u64,
    passed: u64,
    failed: u64,
}

impl Checker {
    pub fn new(name: &'static str, rank: usize, max_printed: u64) -> Checker {
        Checker { name, rank, max_printed, passed: 0, failed: 0 }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn pass(&mut self) {
        self.passed += 1;
    }

    pub fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failed <= self.max_printed {
            eprintln!("{}: rank {}: FAILED: {what}", self.name, self.rank);
        } else if self.failed - 1 == self.max_printed {
            eprintln!("{}: rank {}: further failures are counted but not shown", self.name, self.rank);
        }
    }

    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if ok {
            self.pass();
        } else {
            self.fail(what());
        }
        ok
    }

    /// Like [`Checker::check`], with a value that explains a failure.
    pub fn expect(&mut self, what: &str, ok: bool, detail: impl Debug) {
        self.check(ok, || format!("{what}: {detail:?}"));
    }

    /// Passes if `r` is `Ok`, and hands the value on.
    pub fn ok<T>(&mut self, r: benchfs::Result<T>, what: impl FnOnce() -> String) -> Option<T> {
        match r {
            Ok(v) => {
                self.pass();
                Some(v)
            }
            Err(e) => {
                self.fail(format!("{}: {e} (errno {})", what(), e.errno()));
                None
            }
        }
    }

    /// Passes if `r` failed with one of `errnos`.
    pub fn errno_in<T: Debug>(&mut self, r: benchfs::Result<T>, errnos: &[i32], what: &str) {
        let wanted = match errnos {
            [one] => one.to_string(),
            _ => format!("{errnos:?}"),
        };
        match r {
            Err(e) if errnos.contains(&e.errno()) => self.pass(),
            Err(e) => self.fail(format!("{what}: errno {} ({e}), expected {wanted}", e.errno())),
            Ok(v) => self.fail(format!("{what}: succeeded with {v:?}, expected errno {wanted}")),
        }
    }

    /// Passes if `r` failed with exactly `errno`.
    pub fn errno<T: Debug>(&mut self, r: benchfs::Result<T>, errno: i32, what: &str) {
        self.errno_in(r, &[errno], what)
    }

    /// Compares data read back at file `offset` with the expected bytes.
    pub fn bytes(&mut self, got: &[u8], expected: &[u8], offset: u64, what: impl FnOnce() -> String) {
        if got.len() != expected.len() {
            self.fail(format!("{}: read {} bytes, expected {}", what(), got.len(), expected.len()));
        } else if got != expected {
            // Compared as whole slices first: a byte-by-byte search only when reporting.
            let i = got.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(0);
            self.fail(format!(
                "{}: first wrong byte at file offset {}: {:#04x}, expected {:#04x}",
                what(),
                offset + i as u64,
                got[i],
                expected[i]
            ));
        } else {
            self.pass();
        }
    }

    /// The counts summed over every rank of `world`; a collective call.
    pub fn totals(&self, world: &SimpleCommunicator) -> Totals {
        let (mut passed, mut failed) = (0u64, 0u64);
        world.all_reduce_into(&self.passed, &mut passed, SystemOperation::sum());
        world.all_reduce_into(&self.failed, &mut failed, SystemOperation::sum());
        Totals { name: self.name, rank: self.rank, passed, failed }
    }
}

/// The counts of a whole job, as every rank learns them from [`Checker::totals`].
pub struct Totals {
    name: &'static str,
    rank: usize,
    pub passed: u64,
    pub failed: u64,
}

impl Totals {
    /// Prints `<name>: N passed, M failed` on rank 0 only, so the job shows one summary line,
    /// the one the test harness looks for.
    pub fn print(&self) {
        if self.rank == 0 {
            println!("{}: {} passed, {} failed", self.name, self.passed, self.failed);
        }
    }

    /// Every rank fails the job if any rank saw a failure.
    pub fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

/// The splitmix64 finaliser: nearby inputs give unrelated words.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The bytes at `offset..offset + len` of a file tagged `tag`: the 8-byte little-endian word at
/// file offset `8 * i` is `mix(tag ^ i * K)`. Depending on both tag and offset means that data of
/// another file, or data moved to another offset, never passes for the right data; and any range
/// of a file can be generated on its own.
pub fn pattern(tag: u64, offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    let end = offset + len;
    let mut o = offset;
    while o < end {
        let word = mix(tag ^ (o / 8).wrapping_mul(0x100_0000_01b3)).to_le_bytes();
        let from = (o % 8) as usize;
        let n = (8 - from).min((end - o) as usize);
        out.extend_from_slice(&word[from..from + n]);
        o += n as u64;
    }
    out
}

/// A small deterministic generator, so that a failing run can be repeated exactly.
pub struct Rng(pub u64);

impl Rng {
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0) % n.max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Whole-buffer I/O
// ---------------------------------------------------------------------------------------------

/// Writes all of `buf` at `offset`, continuing after short writes.
pub fn write_all(fd: i32, buf: &[u8], offset: u64) -> benchfs::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match benchfs::pwrite(fd, &buf[done..], offset + done as u64)? {
            0 => return Err(benchfs::Error::Internal("pwrite wrote 0 bytes")),
            n => done += n,
        }
    }
    Ok(())
}

/// Reads up to `len` bytes at `offset`, stopping early only at end of file.
pub fn read_at(fd: i32, offset: u64, len: u64) -> benchfs::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        match benchfs::pread(fd, &mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------------------------

/// Peak resident memory of this process, in bytes.
pub fn peak_rss() -> u64 {
    // SAFETY: rusage is plain old data, filled by the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}
