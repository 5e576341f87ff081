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

use std::collections::VecDeque;
use std::ffi::CString;
use std::path::PathBuf;
use std::process::ExitCode;

use mpi::collective::SystemOperation;
use mpi::traits::*;

const USAGE: &str = "usage: benchfs-find [--contact FILE] [--print] PATH [-name GLOB] [-size [+|-]N[c|k|M|G]] [-newer FILE]
  --contact FILE  contact file of the running BenchFS (default: $BENCHFS_CONTACT_FILE)
  --print         print every matching path (each rank prints its own share)";

#[derive(Debug, PartialEq, Eq)]
enum SizeTest {
    Exactly(u64),
    Above(u64),
    Below(u64),
}

/// `-size` in find's own units: a bare number counts 512-byte blocks, rounded up.
fn parse_size(arg: &str) -> Option<(SizeTest, u64)> {
    let (cmp, rest) = match arg.as_bytes().first()? {
        b'+' => ('+', &arg[1..]),
        b'-' => ('-', &arg[1..]),
        _ => ('=', arg),
    };
    let (digits, unit) = match rest.char_indices().last()? {
        (i, 'c') => (&rest[..i], 1),
        (i, 'k') => (&rest[..i], 1024),
        (i, 'M') => (&rest[..i], 1024 * 1024),
        (i, 'G') => (&rest[..i], 1024 * 1024 * 1024),
        (i, 'b') => (&rest[..i], 512),
        _ => (rest, 512),
    };
    let n: u64 = digits.parse().ok()?;
    let test = match cmp {
        '+' => SizeTest::Above(n),
        '-' => SizeTest::Below(n),
        _ => SizeTest::Exactly(n),
    };
    Some((test, unit))
}

fn size_matches(test: &SizeTest, unit: u64, size: u64) -> bool {
    let units = size.div_ceil(unit);
    match *test {
        SizeTest::Exactly(n) => units == n,
        SizeTest::Above(n) => units > n,
        SizeTest::Below(n) => units < n,
    }
}

struct Query {
    root: String,
    name: Option<CString>,
    size: Option<(SizeTest, u64)>,
    newer: Option<PathBuf>,
    print: bool,
    contact: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Query, String> {
    let mut q = Query { root: String::new(), name: None, size: None, newer: None, print: false, contact: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--contact" => q.contact = Some(PathBuf::from(value("a file")?)),
            "--print" => q.print = true,
            "-name" => q.name = Some(CString::new(value("a pattern")?).map_err(|_| "-name: NUL in pattern".to_string())?),
            "-size" => {
                let v = value("a size")?;
                q.size = Some(parse_size(&v).ok_or(format!("-size: cannot parse {v:?}"))?);
            }
            "-newer" => q.newer = Some(PathBuf::from(value("a file")?)),
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            path if q.root.is_empty() => q.root = path.to_string(),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    if q.root.is_empty() {
        return Err("no PATH given".into());
    }
    Ok(q)
}

/// The BenchFS path for PATH: relative paths start at the BenchFS root.
fn benchfs_path(path: &str) -> String {
    let trimmed = path.trim_start_matches("./");
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

fn glob_matches(pattern: &CString, name: &str) -> bool {
    let Ok(name) = CString::new(name) else { return false };
    // SAFETY: both are valid NUL-terminated strings.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), 0) == 0 }
}

/// Modification time of the -newer reference, in nanoseconds since the epoch.
fn reference_mtime(path: &PathBuf) -> Result<i64, String> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            Ok(meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
        }
        Err(local) => benchfs::stat(&benchfs_path(&path.to_string_lossy()))
            .map(|st| st.mtime_ns)
            .map_err(|e| format!("-newer {}: not found locally ({local}) nor in BenchFS ({e})", path.display())),
    }
}

/// A cheap, stable share of the files for each rank.
fn owner_of(path: &str, size: u64) -> u64 {
    path.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)) % size
}

#[derive(Default)]
struct Counts {
    examined: u64,
    matched: u64,
    errors: u64,
}

fn walk(q: &Query, newer_than: Option<i64>, rank: u64, size: u64) -> Counts {
    let mut counts = Counts::default();
    let mut dirs = VecDeque::from([benchfs_path(&q.root)]);
    while let Some(dir) = dirs.pop_front() {
        let entries = match benchfs::opendir(&dir) {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("benchfs-find: {dir}: {e}");
                counts.errors += 1;
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    eprintln!("benchfs-find: {dir}: {e}");
                    counts.errors += 1;
                    break;
                }
            };
            if entry.name == "." || entry.name == ".." {
                continue;
            }
            let path = if dir == "/" { format!("/{}", entry.name) } else { format!("{dir}/{}", entry.name) };
            if entry.kind == libc::DT_DIR {
                dirs.push_back(path);
                continue;
            }
            if owner_of(&path, size) != rank {
                continue;
            }
            counts.examined += 1;
            if q.name.as_ref().is_some_and(|p| !glob_matches(p, &entry.name)) {
                continue;
            }
            if q.size.is_some() || newer_than.is_some() {
                let st = match benchfs::stat(&path) {
                    Ok(st) => st,
                    // Removed since it was listed: it no longer exists to match.
                    Err(e) if e.errno() == libc::ENOENT => continue,
                    Err(e) => {
                        eprintln!("benchfs-find: {path}: {e}");
                        counts.errors += 1;
                        continue;
                    }
                };
                if q.size.as_ref().is_some_and(|(t, unit)| !size_matches(t, *unit, st.size)) {
                    continue;
                }
                if newer_than.is_some_and(|t| st.mtime_ns <= t) {
                    continue;
                }
            }
            counts.matched += 1;
            if q.print {
                println!("{path}");
            }
        }
    }
    counts
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let query = match parse_args(&args) {
        Ok(q) => q,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("benchfs-find: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_find_units() {
        let (t, u) = parse_size("3901c").unwrap();
        assert!(size_matches(&t, u, 3901) && !size_matches(&t, u, 3900));
        let (t, u) = parse_size("+1k").unwrap();
        assert!(size_matches(&t, u, 1025) && !size_matches(&t, u, 1024));
        let (t, u) = parse_size("-2M").unwrap();
        assert!(size_matches(&t, u, 1) && !size_matches(&t, u, 2 << 20));
        let (t, u) = parse_size("1").unwrap();
        assert!(size_matches(&t, u, 1) && size_matches(&t, u, 512) && !size_matches(&t, u, 513));
        assert!(parse_size("x").is_none() && parse_size("").is_none() && parse_size("+").is_none());
    }

    #[test]
    fn arguments_as_io500_passes_them() {
        let args: Vec<String> =
            ["./datafiles", "-newer", "/r/timestampfile", "-size", "3901c", "-name", "*01*"].iter().map(|s| s.to_string()).collect();
        let q = parse_args(&args).unwrap();
        assert_eq!(benchfs_path(&q.root), "/datafiles");
        assert!(glob_matches(q.name.as_ref().unwrap(), "file.mdtest.01.7"));
        assert!(!glob_matches(q.name.as_ref().unwrap(), "file.mdtest.10.7"));
        assert_eq!(q.size, Some((SizeTest::Exactly(3901), 1)));
        assert!(parse_args(&["-bogus".to_string()]).is_err());
        assert!(parse_args(&[]).is_err());
    }
}
