//! A concurrent namespace and data test: every rank runs threads that issue random operations
//! on a small shared tree *at the same time*, with no barrier between operations; then the
//! tree is checked for what no POSIX file system could have produced.
//!
//! ```text
//! mpirun -np 4 target/debug/examples/chaos [SEED] [OPS_PER_THREAD] [THREADS] [none|files|all]
//! ```
//!
//! The operations (over two directory levels and a handful of names, so that they collide):
//! mkdir, rmdir, create (sometimes with `O_TRUNC`) and write at an offset, truncate, unlink,
//! stat and readdir; with `files`, renames of files too; with `all`, renames of directories as
//! well (into each other, onto files and into their own subtrees). Every byte written is a
//! tagged word:
//! 8-byte aligned words naming the writer, its operation and the word's own offset.
//!
//! After every rank's threads finish (a barrier), rank 0 checks:
//! * every name a listing shows can be stat'ed, and every name that stats is listed by its
//!   parent (no orphan record, no phantom entry);
//! * every byte of every file below its size is zero or part of a word that some operation
//!   wrote at exactly that offset (no stale or misplaced byte);
//! * the whole tree can then be removed, every rmdir succeeding once its listing is empty (no
//!   rank holds an entry that the listings miss).
//!
//! The last line on rank 0 is `chaos: N passed, M failed`. Longer runs (more operations,
//! threads and seeds) make a soak test.

mod common;

use std::collections::BTreeSet;

use mpi::traits::*;

use common::{mix, read_at, write_all, Checker, Rng};

const TOP: &str = "/chaos";
const DIRS: [&str; 3] = ["a", "b", "c"];
const FILES: [&str; 3] = ["x", "y", "z"];
/// Files stay below this size, so a word's offset fits its tag.
const MAX_FILE: u64 = 64 * 1024;
const WORD: u64 = 8;

/// A tagged word: marker, writer (rank and thread), operation, word index, check byte.
fn word(writer: u8, op: u32, offset: u64) -> [u8; 8] {
    let index = (offset / WORD) as u16;
    let op = op.to_le_bytes();
    let mut w = [0xb5, writer, op[0], op[1], op[2], index as u8, (index >> 8) as u8, 0];
    w[7] = w[..7].iter().fold(0x5a, |a, b| a ^ b.rotate_left(3));
    w
}

/// True if `w`, found at `offset`, is zero or a word some writer wrote at that offset.
fn valid_word(w: &[u8], offset: u64) -> bool {
    if w.iter().all(|&b| b == 0) {
        return true;
    }
    w.len() == 8
        && w[0] == 0xb5
        && u16::from_le_bytes([w[5], w[6]]) as u64 == offset / WORD
        && w[7] == w[..7].iter().fold(0x5a, |a, b| a ^ b.rotate_left(3))
}

/// Every name the operations use: directories, files in the top and in each directory.
fn universe() -> Vec<String> {
    let mut names = Vec::new();
    for d in DIRS {
        names.push(format!("{TOP}/{d}"));
        for sub in DIRS {
            names.push(format!("{TOP}/{d}/{sub}"));
        }
        for f in FILES {
            names.push(format!("{TOP}/{d}/{f}"));
        }
    }
    for f in FILES {
        names.push(format!("{TOP}/{f}"));
    }
    names
}

fn random_name(rng: &mut Rng, names: &[String]) -> String {
    names[rng.below(names.len() as u64) as usize].clone()
}

/// Which renames are in the mix.
#[derive(Clone, Copy)]
enum Renames {
    None,
    Files,
    All,
}

impl Renames {
    fn parse(arg: Option<&str>) -> Renames {
        match arg {
            Some("files") => Renames::Files,
            Some("all") => Renames::All,
            _ => Renames::None,
        }
    }
}

/// One random operation; failures with an errno are part of the game.
fn step(rng: &mut Rng, names: &[String], renames: Renames, writer: u8, op: u32) {
    let path = random_name(rng, names);
    match rng.below(10) {
        0 | 1 => drop(benchfs::mkdir(&path, 0o755)),
        2 => drop(benchfs::rmdir(&path)),
        3..=5 => {
            let flags = libc::O_CREAT | libc::O_WRONLY | if rng.below(4) == 0 { libc::O_TRUNC } else { 0 };
            if let Ok(fd) = benchfs::open(&path, flags, 0o644) {
                let offset = rng.below(MAX_FILE / WORD / 2) * WORD;
                let words = 1 + rng.below(MAX_FILE / WORD / 4);
                let data: Vec<u8> = (0..words).flat_map(|i| word(writer, op, offset + i * WORD)).collect();
                let _ = write_all(fd, &data, offset);
                let _ = benchfs::close(fd);
            }
        }
        6 => drop(benchfs::truncate(&path, rng.below(MAX_FILE / WORD) * WORD)),
        7 => match renames {
            Renames::All => drop(benchfs::rename(&path, random_name(rng, names))),
            Renames::Files => {
                // A directory may appear at `path` between the check and the rename; that is
                // a directory rename, rare enough here not to matter to what this mode tests.
                if benchfs::stat(&path).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFREG) {
                    drop(benchfs::rename(&path, random_name(rng, names)));
                }
            }
            Renames::None => drop(benchfs::stat(&path)),
        },
        8 => drop(benchfs::unlink(&path)),
        _ => drop(benchfs::readdir(&path)),
    }
}

/// Lists `dir` without `.` and `..`, as full paths; `None` if it cannot be listed.
fn listing(dir: &str) -> Option<BTreeSet<String>> {
    let entries = benchfs::readdir(dir).ok()?;
    // The threads make ASCII names only: another name shows as U+FFFD and is then not found.
    let names = entries.into_iter().filter(|e| e.name != b"." && e.name != b"..");
    Some(names.map(|e| format!("{dir}/{}", String::from_utf8_lossy(&e.name))).collect())
}

/// Rank 0's checks of the tree the threads left.
fn check_tree(c: &mut Checker, names: &[String]) {
    let mut listed = BTreeSet::new();
    let mut dirs = vec![TOP.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Some(entries) = listing(&dir) else {
            c.fail(format!("{dir} is listed but cannot be listed itself"));
            continue;
        };
        for path in entries {
            match benchfs::stat(&path) {
                Ok(st) if st.mode & libc::S_IFMT == libc::S_IFDIR => dirs.push(path.clone()),
                Ok(st) => check_file(c, &path, st.size),
                Err(e) => c.fail(format!("{path} is listed but stat fails: {e}")),
            }
            listed.insert(path);
        }
    }
    for path in names {
        let exists = benchfs::stat(path).is_ok();
        c.check(exists == listed.contains(path), || format!("{path}: stat says {exists}, the listings say {}", !exists));
    }
    remove_tree(c, TOP, false);
}

/// Every word of the file below its size is zero or a word written at that offset.
fn check_file(c: &mut Checker, path: &str, size: u64) {
    let Ok(fd) = benchfs::open(path, libc::O_RDONLY, 0) else {
        c.fail(format!("{path} stats but cannot be opened"));
        return;
    };
    match read_at(fd, 0, size) {
        Ok(data) => {
            let bad = data.chunks(WORD as usize).enumerate().find(|(i, w)| !valid_word(w, *i as u64 * WORD));
            c.check(data.len() as u64 == size && bad.is_none(), || {
                format!("{path}: {} of {size} bytes read, bad word {bad:?}", data.len())
            });
        }
        Err(e) => c.fail(format!("{path}: read fails: {e}")),
    }
    let _ = benchfs::close(fd);
}

/// Removes the tree below `dir`; every rmdir of a directory whose listing is empty must work.
fn remove_tree(c: &mut Checker, dir: &str, remove_dir: bool) {
    for path in listing(dir).unwrap_or_default() {
        match benchfs::stat(&path) {
            Ok(st) if st.mode & libc::S_IFMT == libc::S_IFDIR => remove_tree(c, &path, true),
            _ => {
                let r = benchfs::unlink(&path);
                c.check(r.is_ok(), || format!("unlink {path}: {r:?}"));
            }
        }
    }
    if remove_dir {
        let r = benchfs::rmdir(dir);
        c.check(r.is_ok(), || format!("rmdir {dir} after its entries went: {r:?}"));
    }
}

fn main() -> std::process::ExitCode {
    let universe_ = mpi::initialize().expect("MPI initializes");
    let world = universe_.world();
    let me = world.rank() as u64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (seed, ops, threads) = (number(0, 1), number(1, 300), number(2, 2));
    let renames = Renames::parse(args.get(3).map(String::as_str));
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("chaos", me as usize, 20);
    if me == 0 {
        benchfs::mkdir(TOP, 0o755).expect("mkdir top");
    }
    world.barrier();
    let names = universe();
    std::thread::scope(|s| {
        for t in 0..threads {
            let names = &names;
            s.spawn(move || {
                let writer = (me * threads + t) as u8;
                let mut rng = Rng(mix(seed ^ (me << 32) ^ (t << 16)));
                for op in 0..ops as u32 {
                    step(&mut rng, names, renames, writer, op);
                }
            });
        }
    });
    world.barrier();
    if me == 0 {
        check_tree(&mut c, &names);
    }
    world.barrier();
    benchfs::finalize().expect("finalize");
    let totals = c.totals(&world);
    totals.print();
    totals.exit_code()
}
