//! `benchfs-find`: a parallel `find` over a running BenchFS, for IO500's find phase and for
//! people. It attaches to the serving job through its contact file, walks the tree with
//! readdir, stats the regular files (each rank a share of them) and prints `MATCHED x/y`:
//! x files matched out of y examined.
//!
//! ```text
//! mpirun -np 4 benchfs-find [--contact FILE] [--print] PATH [-name GLOB] [-size [+|-]N[c|k|M|G]] [-newer FILE]
//! ```
//!
//! Like IO500's own pfind, it examines regular files; directories are descended into, not
//! matched. `-newer FILE` compares with FILE's mtime on the local file system (where IO500
//! keeps its timestamp file), or in BenchFS when no such local file exists. A relative PATH is
//! taken from the BenchFS root, as the IOR/mdtest backend does.

mod query;

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use mpi::collective::SystemOperation;
use mpi::traits::*;

use query::{benchfs_path, glob_matches, parse_args, size_matches, Parsed, Query, USAGE};

/// Modification time of the -newer reference, in nanoseconds since the epoch.
fn reference_mtime(path: &PathBuf) -> Result<i64, String> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            Ok(meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
        }
        Err(local) => benchfs::stat(benchfs_path(path.as_os_str().as_bytes()))
            .map(|st| st.mtime_ns)
            .map_err(|e| format!("-newer {}: not found locally ({local}) nor in BenchFS ({e})", path.display())),
    }
}

/// A path as text for messages (names are bytes; those that are not UTF-8 show as U+FFFD).
fn shown(path: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(path)
}

/// Prints a matching path as its bytes, one per line, as find does.
fn print_path(path: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(path)?;
    out.write_all(b"\n")
}

/// A cheap, stable share of the files for each rank.
fn owner_of(path: &[u8], size: u64) -> u64 {
    path.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3)) % size
}

#[derive(Default)]
struct Counts {
    examined: u64,
    matched: u64,
    errors: u64,
}

/// Whether the regular file `path`, named `name`, passes the query's tests. Only the -size and
/// -newer tests need a stat; a file removed since it was listed no longer exists to match.
fn matches(q: &Query, newer_than: Option<i64>, path: &[u8], name: &[u8], counts: &mut Counts) -> bool {
    if q.name.as_ref().is_some_and(|p| !glob_matches(p, name)) {
        return false;
    }
    if q.size.is_none() && newer_than.is_none() {
        return true;
    }
    let st = match benchfs::stat(path) {
        Ok(st) => st,
        Err(e) if e.errno() == libc::ENOENT => return false,
        Err(e) => {
            eprintln!("benchfs-find: {}: {e}", shown(path));
            counts.errors += 1;
            return false;
        }
    };
    let size_fails = q.size.as_ref().is_some_and(|(t, unit)| !size_matches(t, *unit, st.size));
    let age_fails = newer_than.is_some_and(|t| st.mtime_ns <= t);
    !size_fails && !age_fails
}

/// Walks the tree breadth-first; this rank examines its share of the regular files.
fn walk(q: &Query, newer_than: Option<i64>, rank: u64, size: u64) -> Counts {
    let mut counts = Counts::default();
    let mut dirs = VecDeque::from([benchfs_path(&q.root)]);
    while let Some(dir) = dirs.pop_front() {
        let entries = match benchfs::opendir(&dir) {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("benchfs-find: {}: {e}", shown(&dir));
                counts.errors += 1;
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    eprintln!("benchfs-find: {}: {e}", shown(&dir));
                    counts.errors += 1;
                    break;
                }
            };
            if entry.name == b"." || entry.name == b".." {
                continue;
            }
            let parent: &[u8] = if dir == b"/" { b"" } else { &dir };
            let path = [parent, b"/", &entry.name].concat();
            if entry.kind == libc::DT_DIR {
                dirs.push_back(path);
            } else if owner_of(&path, size) == rank {
                counts.examined += 1;
                if matches(q, newer_than, &path, &entry.name, &mut counts) {
                    counts.matched += 1;
                    if q.print {
                        if let Err(e) = print_path(&path) {
                            eprintln!("benchfs-find: cannot print {}: {e}", shown(&path));
                            counts.errors += 1;
                        }
                    }
                }
            }
        }
    }
    counts
}

/// The query, or how the program ends when there is nothing to run (help, or bad arguments).
fn query_or_exit() -> Result<Query, ExitCode> {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(q)) => Ok(q),
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("benchfs-find: {e}");
            eprintln!("{USAGE}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let query = match query_or_exit() {
        Ok(q) => q,
        Err(code) => return code,
    };
    let Some(universe) = mpi::initialize() else {
        eprintln!("benchfs-find: MPI is already initialized");
        return ExitCode::from(2);
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as u64, world.size() as u64);
    let contact = query.contact.clone().or_else(|| std::env::var_os("BENCHFS_CONTACT_FILE").map(PathBuf::from));
    let Some(contact) = contact else {
        eprintln!("benchfs-find: no contact file: pass --contact FILE or set BENCHFS_CONTACT_FILE");
        return ExitCode::from(2);
    };
    if let Err(e) = benchfs::attach(&world, &contact) {
        eprintln!("benchfs-find: cannot attach through {}: {e}", contact.display());
        return ExitCode::from(1);
    }
    let newer_than = match query.newer.as_ref().map(reference_mtime).transpose() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("benchfs-find: {msg}");
            let _ = benchfs::finalize();
            return ExitCode::from(2);
        }
    };
    let counts = walk(&query, newer_than, rank, size);
    let mut totals = [0u64; 3];
    world.all_reduce_into(&[counts.examined, counts.matched, counts.errors][..], &mut totals[..], SystemOperation::sum());
    if let Err(e) = benchfs::finalize() {
        eprintln!("benchfs-find: detach: {e}");
    }
    if rank == 0 {
        if totals[2] > 0 {
            eprintln!("benchfs-find: {} errors", totals[2]);
        }
        println!("MATCHED {}/{}", totals[1], totals[0]);
    }
    if totals[2] > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
