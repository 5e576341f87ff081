//! A self-checking MPI program for the namespace: directories, listings, names that are any
//! bytes, rename, truncate, access, statvfs, `O_APPEND` and `SEEK_END`. Run it under `mpirun` with any number of ranks:
//!
//! ```text
//! mpirun -np 4 target/debug/examples/namespace [ENTRIES_PER_RANK]
//! ```
//!
//! `ENTRIES_PER_RANK` (default 25000) is how many entries each rank creates in the shared
//! directory that every rank then lists. Every rank takes part in every test; results that other
//! ranks must see are checked from other ranks after a barrier. Each failed check is printed to
//! stderr with the rank; the last line on rank 0 is `namespace: N passed, M failed` (totals over
//! all ranks) and every rank exits 1 if M > 0.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use benchfs::{DirEntry, FileStat, Whence};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use common::{mix, pattern, read_at, write_all, Checker};

const DEFAULT_ENTRIES_PER_RANK: u64 = 25_000;

/// Failures beyond this many per rank are counted but not printed.
const MAX_PRINTED: u64 = 60;

/// Pause between two stats whose mtimes must differ: far above the clock's resolution.
const TICK: Duration = Duration::from_millis(20);

/// Everything this program creates lives below this directory.
const TOP: &str = "/ns";

// ---------------------------------------------------------------------------------------------
// Helpers over the API
// ---------------------------------------------------------------------------------------------

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The path of `name` in `dir`, for names that are any bytes.
fn join_bytes(dir: &str, name: &[u8]) -> Vec<u8> {
    let dir = if dir == "/" { "" } else { dir };
    [dir.as_bytes(), b"/", name].concat()
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A name or path as printable text: bytes outside ASCII as `\xNN`.
fn shown(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().escape_ascii().to_string()
}

/// Creates (or truncates) `path` holding `data`, and closes it.
fn create_file(c: &mut Checker, path: impl AsRef<[u8]>, data: &[u8]) -> Option<u64> {
    let (path, p) = (path.as_ref(), shown(path.as_ref()));
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    let fd = c.ok(benchfs::open(path, flags, 0o644), || format!("create {p}"))?;
    c.ok(write_all(fd, data, 0), || format!("write {} bytes to {p}", data.len()));
    let st = c.ok(benchfs::fstat(fd), || format!("fstat {p}"));
    c.ok(benchfs::close(fd), || format!("close {p}"));
    st.map(|st| st.ino)
}

/// Checks that `path` is a regular file holding exactly `expected`.
fn verify_file(c: &mut Checker, path: impl AsRef<[u8]>, expected: &[u8]) {
    let (path, p) = (path.as_ref(), shown(path.as_ref()));
    if let Some(st) = c.ok(benchfs::stat(path), || format!("stat {p}")) {
        c.check(st.size == expected.len() as u64 && st.mode & libc::S_IFMT == libc::S_IFREG, || {
            format!("stat {p}: size {} mode {:#o}, expected a file of {} bytes", st.size, st.mode, expected.len())
        });
    }
    let Some(fd) = c.ok(benchfs::open(path, libc::O_RDONLY, 0), || format!("open {p}")) else {
        return;
    };
    if let Some(data) = c.ok(read_at(fd, 0, expected.len() as u64 + 100), || format!("read {p}")) {
        c.bytes(&data, expected, 0, || format!("contents of {p}"));
    }
    c.ok(benchfs::close(fd), || format!("close {p}"));
}

fn stat_of(c: &mut Checker, path: impl AsRef<[u8]>) -> Option<FileStat> {
    c.ok(benchfs::stat(path.as_ref()), || format!("stat {}", shown(path.as_ref())))
}

fn is_dir(st: &FileStat) -> bool {
    st.mode & libc::S_IFMT == libc::S_IFDIR
}

/// Checks a listing: "." and ".." first (directories, with the inode numbers of the directory
/// and of its parent), then exactly the `expected` names, byte for byte, with their types, each
/// with the inode number `stat` reports for it.
fn check_listing(c: &mut Checker, dir: &str, expected: &BTreeMap<Vec<u8>, u8>) {
    let Some(entries) = c.ok(benchfs::readdir(dir), || format!("readdir {dir}")) else {
        return;
    };
    let dir_ino = benchfs::stat(dir).map(|s| s.ino).ok();
    let parent_ino = benchfs::stat(parent(dir)).map(|s| s.ino).ok();
    let head: Vec<_> = entries.iter().take(2).map(|e| (e.name.as_slice(), e.kind, Some(e.ino))).collect();
    let want_head = [(&b"."[..], libc::DT_DIR, dir_ino), (&b".."[..], libc::DT_DIR, parent_ino)];
    c.check(head == want_head, || format!("readdir {dir}: starts with {head:?}, expected {want_head:?}"));
    let mut got = BTreeMap::new();
    for e in entries.iter().skip(2) {
        if got.insert(e.name.clone(), e.kind).is_some() {
            c.fail(format!("readdir {dir}: {} listed twice", shown(&e.name)));
        }
        if let Ok(st) = benchfs::stat(join_bytes(dir, &e.name)) {
            c.check(st.ino == e.ino, || format!("readdir {dir}: {} has d_ino {:#x}, stat says {:#x}", shown(&e.name), e.ino, st.ino));
        }
    }
    let listed = |names: &BTreeMap<Vec<u8>, u8>| names.iter().map(|(n, k)| (shown(n), *k)).collect::<Vec<_>>();
    c.check(&got == expected, || format!("readdir {dir}: entries {:?}, expected {:?}", listed(&got), listed(expected)));
}

fn names(list: &[(&str, u8)]) -> BTreeMap<Vec<u8>, u8> {
    list.iter().map(|&(n, k)| (n.as_bytes().to_vec(), k)).collect()
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

struct Job {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    chunk: u64,
    entries_per_rank: u64,
}

impl Job {
    fn barrier(&self) {
        self.world.barrier();
    }

    /// This rank's private directory for a test, created here.
    fn own_dir(&self, c: &mut Checker, test: &str) -> String {
        let dir = format!("{TOP}/{test}.r{}", self.rank);
        c.ok(benchfs::mkdir(&dir, 0o755), || format!("mkdir {dir}"));
        dir
    }

    fn all_equal(&self, value: u64) -> bool {
        let mut all = vec![0u64; self.size];
        self.world.all_gather_into(&value, &mut all[..]);
        all.iter().all(|&v| v == value)
    }
}

/// The root exists from the start, is a directory, and lists as "." and ".." only until
/// something is created in it.
fn root(c: &mut Checker, job: &Job) {
    if let Some(st) = stat_of(c, "/") {
        c.check(is_dir(&st) && st.nlink >= 2, || format!("stat /: mode {:#o} nlink {}", st.mode, st.nlink));
    }
    check_listing(c, "/", &BTreeMap::new());
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::mkdir(TOP, 0o755), || format!("mkdir {TOP}"));
    }
    job.barrier();
    check_listing(c, "/", &names(&[("ns", libc::DT_DIR)]));
    c.errno(benchfs::mkdir("/", 0o755), libc::EEXIST, "mkdir /");
    c.errno(benchfs::rmdir("/"), libc::EBUSY, "rmdir /");
    c.errno(benchfs::unlink("/"), libc::EISDIR, "unlink /");
    c.errno_in(benchfs::rename("/", "/elsewhere"), &[libc::EBUSY, libc::EINVAL], "rename / away");
    job.barrier();
}

/// The errno of each namespace call on a bad path, in this rank's own directory.
fn errno_cases(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "errno");
    let file = join(&dir, "file");
    let sub = join(&dir, "sub");
    create_file(c, &file, &pattern(7, 0, 10));
    c.ok(benchfs::mkdir(&sub, 0o750), || format!("mkdir {sub}"));
    if let Some(st) = stat_of(c, &sub) {
        c.check(is_dir(&st) && st.mode & 0o7777 == 0o750 && st.nlink >= 2, || {
            format!("stat {sub}: mode {:#o} nlink {}, expected a directory with mode 0750", st.mode, st.nlink)
        });
    }
    // New entries belong to the effective user and group of their creator, whichever rank holds
    // their records.
    // SAFETY: geteuid/getegid cannot fail.
    let creator = unsafe { (libc::geteuid(), libc::getegid()) };
    for path in [&file, &sub] {
        if let Some(st) = stat_of(c, path) {
            c.check((st.uid, st.gid) == creator, || {
                format!("stat {path}: owner {}:{}, expected {}:{}", st.uid, st.gid, creator.0, creator.1)
            });
        }
    }
    let create = libc::O_CREAT | libc::O_WRONLY;

    c.errno(benchfs::mkdir(&sub, 0o755), libc::EEXIST, "mkdir of an existing directory");
    c.errno(benchfs::mkdir(&file, 0o755), libc::EEXIST, "mkdir of an existing file");
    c.errno(benchfs::open(&sub, create | libc::O_EXCL, 0o644), libc::EEXIST, "O_CREAT|O_EXCL on a directory");
    c.errno(benchfs::open(&file, create | libc::O_EXCL, 0o644), libc::EEXIST, "O_CREAT|O_EXCL on a file");

    let missing = join(&dir, "missing");
    let deep = join(&missing, "x");
    c.errno(benchfs::mkdir(&deep, 0o755), libc::ENOENT, "mkdir with a missing parent");
    c.errno(benchfs::open(&deep, create, 0o644), libc::ENOENT, "create with a missing parent");
    c.errno(benchfs::open(&missing, libc::O_RDONLY, 0), libc::ENOENT, "open of a missing file");
    c.errno(benchfs::stat(&deep), libc::ENOENT, "stat with a missing parent");
    c.errno(benchfs::unlink(&missing), libc::ENOENT, "unlink of a missing name");
    c.errno(benchfs::rmdir(&missing), libc::ENOENT, "rmdir of a missing name");
    c.errno(benchfs::rmdir(&deep), libc::ENOENT, "rmdir with a missing parent");
    c.errno(benchfs::opendir(&missing).map(drop), libc::ENOENT, "opendir of a missing name");
    c.errno(benchfs::truncate(&missing, 0), libc::ENOENT, "truncate of a missing name");
    c.errno(benchfs::access(&missing, libc::F_OK), libc::ENOENT, "access of a missing name");

    // A file used as a directory.
    let under_file = join(&file, "x");
    c.errno(benchfs::mkdir(&under_file, 0o755), libc::ENOTDIR, "mkdir under a file");
    c.errno(benchfs::open(&under_file, create, 0o644), libc::ENOTDIR, "create under a file");
    c.errno(benchfs::open(&under_file, libc::O_RDONLY, 0), libc::ENOTDIR, "open under a file");
    c.errno(benchfs::stat(&under_file), libc::ENOTDIR, "stat under a file");
    c.errno(benchfs::unlink(&under_file), libc::ENOTDIR, "unlink under a file");
    c.errno(benchfs::rmdir(&under_file), libc::ENOTDIR, "rmdir under a file");
    c.errno(benchfs::rmdir(&file), libc::ENOTDIR, "rmdir of a file");
    c.errno(benchfs::opendir(&file).map(drop), libc::ENOTDIR, "opendir of a file");
    c.errno(benchfs::open(&file, libc::O_RDONLY | libc::O_DIRECTORY, 0), libc::ENOTDIR, "O_DIRECTORY on a file");

    // A directory used as a file.
    c.errno(benchfs::unlink(&sub), libc::EISDIR, "unlink of a directory");
    c.errno(benchfs::open(&sub, libc::O_WRONLY, 0), libc::EISDIR, "open of a directory O_WRONLY");
    c.errno(benchfs::open(&sub, libc::O_RDWR, 0), libc::EISDIR, "open of a directory O_RDWR");
    c.errno(benchfs::open(&sub, create, 0o644), libc::EISDIR, "O_CREAT on a directory");
    c.errno(benchfs::truncate(&sub, 0), libc::EISDIR, "truncate of a directory");
    if let Some(fd) = c.ok(benchfs::open(&sub, libc::O_RDONLY | libc::O_DIRECTORY, 0), || format!("open {sub} O_DIRECTORY")) {
        let mut buf = [0u8; 8];
        c.errno(benchfs::pread(fd, &mut buf, 0), libc::EISDIR, "pread on a directory");
        c.ok(benchfs::close(fd), || format!("close {sub}"));
    }

    // Non-empty directories stay until emptied.
    let inner = join(&sub, "inner");
    create_file(c, &inner, &[]);
    c.errno(benchfs::rmdir(&sub), libc::ENOTEMPTY, "rmdir of a non-empty directory");
    c.errno(benchfs::rmdir(&dir), libc::ENOTEMPTY, "rmdir of a directory with a subdirectory");
    c.ok(benchfs::unlink(&inner), || format!("unlink {inner}"));
    c.errno(benchfs::unlink(&inner), libc::ENOENT, "second unlink");
    c.ok(benchfs::rmdir(&sub), || format!("rmdir {sub} once empty"));
    c.errno(benchfs::stat(&sub), libc::ENOENT, "stat after rmdir");
    c.errno(benchfs::rmdir(&sub), libc::ENOENT, "second rmdir");
    c.ok(benchfs::unlink(&file), || format!("unlink {file}"));
    check_listing(c, &dir, &BTreeMap::new());
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// Listings of a small tree, from every rank: names, types and inode numbers.
fn small_listings(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "list");
    let mut made = Vec::new();
    for k in 0..5 {
        let name = format!("file{k}");
        create_file(c, join(&dir, &name), &pattern(k, 0, k * 100));
        made.push((name, libc::DT_REG));
    }
    for k in 0..3 {
        let name = format!("dir{k}");
        c.ok(benchfs::mkdir(join(&dir, &name), 0o755), || format!("mkdir {dir}/{name}"));
        made.push((name, libc::DT_DIR));
    }
    let expected: BTreeMap<Vec<u8>, u8> = made.iter().map(|(name, kind)| (name.clone().into_bytes(), *kind)).collect();
    create_file(c, join(&dir, "dir1/nested"), b"nested");
    job.barrier();
    for owner in 0..job.size {
        let dir = format!("{TOP}/list.r{owner}");
        check_listing(c, &dir, &expected);
        check_listing(c, &join(&dir, "dir1"), &names(&[("nested", libc::DT_REG)]));
        check_listing(c, &join(&dir, "dir0"), &BTreeMap::new());
    }
    let mut top: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
    for owner in 0..job.size {
        top.insert(format!("list.r{owner}").into_bytes(), libc::DT_DIR);
    }
    // Other tests' private directories may appear in /ns meanwhile; only these must be there.
    if let Some(entries) = c.ok(benchfs::readdir(TOP), || format!("readdir {TOP}")) {
        let seen: BTreeMap<Vec<u8>, u8> = entries.into_iter().filter(|e| e.name.starts_with(b"list.")).map(|e| (e.name, e.kind)).collect();
        c.check(seen == top, || format!("readdir {TOP}: list.* entries {seen:?}, expected {top:?}"));
    }
    job.barrier();
    c.ok(benchfs::unlink(join(&dir, "dir1/nested")), || "unlink nested".into());
    for (name, kind) in &made {
        let path = join(&dir, name);
        let r = if *kind == libc::DT_DIR { benchfs::rmdir(&path) } else { benchfs::unlink(&path) };
        c.ok(r, || format!("remove {path}"));
    }
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// The name of entry `i` of `rank` in the shared directory; every 16th is a directory.
fn big_entry(rank: usize, i: u64) -> (String, u8) {
    let kind = if i % 16 == 0 { libc::DT_DIR } else { libc::DT_REG };
    (format!("r{rank}-{i:07}"), kind)
}

/// The size entry `i` of the shared directory is cut to, if it is a file.
fn big_size(i: u64) -> u64 {
    i % 97 + 1
}

/// All ranks fill one directory at once, list it in full, and empty it again.
fn big_directory(c: &mut Checker, job: &Job) {
    let dir = format!("{TOP}/big");
    if job.rank == 0 {
        c.ok(benchfs::mkdir(&dir, 0o755), || format!("mkdir {dir}"));
    }
    job.barrier();
    let n = job.entries_per_rank;
    let mut created_ok = true;
    for i in 0..n {
        let (name, kind) = big_entry(job.rank, i);
        let path = join(&dir, &name);
        let r = if kind == libc::DT_DIR {
            benchfs::mkdir(&path, 0o755)
        } else {
            benchfs::open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, 0o644).and_then(benchfs::close)
        };
        created_ok &= c.ok(r, || format!("create {path}")).is_some();
    }
    job.barrier();

    let total = n * job.size as u64;
    let listing: benchfs::Result<Vec<DirEntry>> = benchfs::readdir(&dir);
    if let Some(entries) = c.ok(listing, || format!("readdir {dir}")) {
        c.check(entries.len() as u64 == total + 2, || {
            format!("readdir {dir}: {} entries, expected {} plus . and ..", entries.len(), total)
        });
        let mut seen = HashSet::with_capacity(entries.len());
        let (mut duplicates, mut strangers, mut wrong_kind) = (0u64, 0u64, 0u64);
        for e in entries.iter().skip(2) {
            if !seen.insert(e.name.as_slice()) {
                duplicates += 1;
                continue;
            }
            let parsed = std::str::from_utf8(&e.name)
                .ok()
                .and_then(|name| name.strip_prefix('r'))
                .and_then(|s| s.split_once('-'))
                .and_then(|(r, i)| Some((r.parse::<usize>().ok()?, i.parse::<u64>().ok()?)));
            match parsed {
                Some((r, i)) if r < job.size && i < n && big_entry(r, i).0.as_bytes() == e.name => {
                    if big_entry(r, i).1 != e.kind {
                        wrong_kind += 1;
                    }
                }
                _ => strangers += 1,
            }
        }
        let missing =
            (0..job.size).flat_map(|r| (0..n).map(move |i| (r, i))).filter(|&(r, i)| !seen.contains(big_entry(r, i).0.as_bytes())).count();
        c.check(duplicates == 0, || format!("readdir {dir}: {duplicates} names listed twice"));
        c.check(strangers == 0, || format!("readdir {dir}: {strangers} names nobody created"));
        c.check(wrong_kind == 0, || format!("readdir {dir}: {wrong_kind} entries with the wrong d_type"));
        c.check(missing == 0, || format!("readdir {dir}: {missing} entries missing"));
        let inos: HashSet<u64> = entries.iter().skip(2).map(|e| e.ino).collect();
        c.check(inos.len() == entries.len() - 2, || {
            format!("readdir {dir}: {} distinct d_ino for {} entries", inos.len(), entries.len() - 2)
        });
        // A sample of entries against stat (all of them would cost a stat per entry per rank).
        let step = (entries.len() / 50).max(1);
        for e in entries.iter().skip(2 + job.rank).step_by(step) {
            if let Some(st) = stat_of(c, join_bytes(&dir, &e.name)) {
                let kind = if is_dir(&st) { libc::DT_DIR } else { libc::DT_REG };
                c.check(st.ino == e.ino && kind == e.kind, || {
                    format!("{dir}/{}: readdir says ino {:#x} type {}, stat says {:#x} {}", shown(&e.name), e.ino, e.kind, st.ino, kind)
                });
            }
        }
    }
    c.errno(benchfs::rmdir(&dir), libc::ENOTEMPTY, "rmdir of the full shared directory");
    job.barrier();

    // Records changed after the owners' shared tables grew with the directory: each rank cuts
    // its files to sizes of their own, then checks every entry of the next rank. A same-node
    // rank reads them from the owner's table; one still reading the table it mapped before it
    // grew would see the old sizes.
    for i in (0..n).filter(|&i| big_entry(job.rank, i).1 == libc::DT_REG) {
        let path = join(&dir, &big_entry(job.rank, i).0);
        c.ok(benchfs::truncate(&path, big_size(i)), || format!("truncate {path}"));
    }
    job.barrier();
    let next = (job.rank + 1) % job.size;
    let mut wrong = 0u64;
    for i in 0..n {
        let (name, kind) = big_entry(next, i);
        match benchfs::stat(join(&dir, &name)) {
            Ok(st) if kind == libc::DT_DIR && is_dir(&st) => {}
            Ok(st) if kind == libc::DT_REG && !is_dir(&st) && st.size == big_size(i) => {}
            other => {
                wrong += 1;
                if wrong <= 5 {
                    c.fail(format!("{dir}/{name}: stat gave {other:?}, expected type {kind} and size {}", big_size(i)));
                }
            }
        }
    }
    c.check(wrong == 0, || format!("{dir}: {wrong} entries of rank {next} with the wrong type or size"));
    job.barrier();

    // A rename moves every record of the tree to its new owner (more than one message's worth
    // per owner here), and back.
    let moved = format!("{TOP}/big-moved");
    if job.rank == 0 {
        c.ok(benchfs::rename(&dir, &moved), || format!("rename {dir} -> {moved}"));
    }
    job.barrier();
    let count = benchfs::readdir(&moved).map(|entries| entries.len() as u64);
    c.check(count.as_ref().ok() == Some(&(total + 2)), || format!("readdir {moved} after the rename: {count:?}, expected {}", total + 2));
    for i in [0, n / 2, n - 1] {
        let (name, kind) = big_entry(job.rank, i);
        let st = benchfs::stat(join(&moved, &name));
        c.check(st.as_ref().is_ok_and(|st| is_dir(st) == (kind == libc::DT_DIR)), || format!("{moved}/{name} after the rename: {st:?}"));
    }
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::rename(&moved, &dir), || format!("rename {moved} -> {dir}"));
    }
    job.barrier();

    for i in 0..n {
        let (name, kind) = big_entry(job.rank, i);
        let path = join(&dir, &name);
        let r = if kind == libc::DT_DIR { benchfs::rmdir(&path) } else { benchfs::unlink(&path) };
        c.ok(r, || format!("remove {path}"));
    }
    job.barrier();
    check_listing(c, &dir, &BTreeMap::new());
    job.barrier();
    if job.rank == 0 && created_ok {
        c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir} once empty"));
    }
    job.barrier();
}

/// Renames of files: within a directory, across directories, and onto an existing file.
fn rename_files(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "rnf");
    let other = join(&dir, "other");
    c.ok(benchfs::mkdir(&other, 0o755), || format!("mkdir {other}"));
    let tag = mix(0x7e11 ^ job.rank as u64);
    let moved = pattern(tag, 0, job.chunk + 1000);
    let (a, b, cpath) = (join(&dir, "a"), join(&dir, "b"), join(&other, "c"));
    let ino = create_file(c, &a, &moved);
    c.ok(benchfs::rename(&a, &b), || format!("rename {a} -> {b}"));
    c.errno(benchfs::stat(&a), libc::ENOENT, "stat of a renamed file's old name");
    c.check(benchfs::stat(&b).ok().map(|s| s.ino) == ino, || format!("{b}: inode changed by rename"));
    verify_file(c, &b, &moved);
    c.ok(benchfs::rename(&b, &cpath), || format!("rename {b} -> {cpath}"));
    c.errno(benchfs::stat(&b), libc::ENOENT, "stat of a renamed file's old name");
    c.ok(benchfs::rename(&cpath, &cpath), || format!("rename {cpath} onto itself"));

    // Onto an existing, longer file: none of the target's bytes may show through.
    let source_data = pattern(tag ^ 1, 0, job.chunk / 2 + 333);
    let target_data = pattern(tag ^ 2, 0, 3 * job.chunk + 4444);
    let (s, t) = (join(&dir, "s"), join(&other, "t"));
    let s_ino = create_file(c, &s, &source_data);
    let t_ino = create_file(c, &t, &target_data);
    c.ok(benchfs::rename(&s, &t), || format!("rename {s} onto {t}"));
    if let Some(st) = stat_of(c, &t) {
        c.check(Some(st.ino) == s_ino && Some(st.ino) != t_ino, || {
            format!("{t} after replacement: ino {:#x}, source was {s_ino:?}, target {t_ino:?}", st.ino)
        });
    }
    verify_file(c, &t, &source_data);
    c.errno(benchfs::stat(&s), libc::ENOENT, "stat of the replacing file's old name");
    check_listing(c, &dir, &names(&[("other", libc::DT_DIR)]));
    check_listing(c, &other, &names(&[("c", libc::DT_REG), ("t", libc::DT_REG)]));
    job.barrier();

    // Another rank sees the same.
    let peer = format!("{TOP}/rnf.r{}", (job.rank + 1) % job.size);
    let peer_tag = mix(0x7e11 ^ ((job.rank + 1) % job.size) as u64);
    verify_file(c, join(&peer, "other/c"), &pattern(peer_tag, 0, job.chunk + 1000));
    verify_file(c, join(&peer, "other/t"), &pattern(peer_tag ^ 1, 0, job.chunk / 2 + 333));
    for gone in ["a", "b", "s"] {
        c.errno(benchfs::stat(join(&peer, gone)), libc::ENOENT, "stat of a peer's renamed file");
    }
    job.barrier();
    for p in [&cpath, &t] {
        c.ok(benchfs::unlink(p), || format!("unlink {p}"));
    }
    // A file created anew under the replaced name starts empty: no old chunk shows through.
    create_file(c, &t, &[]);
    verify_file(c, &t, &[]);
    c.ok(benchfs::unlink(&t), || format!("unlink {t}"));
    c.ok(benchfs::rmdir(&other), || format!("rmdir {other}"));
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// The failing renames: into its own subtree, file onto directory and back, onto a non-empty
/// directory, from a missing name, into a missing directory. Nothing may change.
fn rename_errors(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "rne");
    let (x, y, z) = (join(&dir, "x"), join(&dir, "x/y"), join(&dir, "x/y/z"));
    let (file, full, empty) = (join(&dir, "file"), join(&dir, "full"), join(&dir, "empty"));
    for d in [&x, &y, &z, &full, &empty] {
        c.ok(benchfs::mkdir(d, 0o755), || format!("mkdir {d}"));
    }
    let data = pattern(0xe11 ^ job.rank as u64, 0, 5000);
    create_file(c, &file, &data);
    create_file(c, join(&full, "inside"), b"inside");
    let x_ino = benchfs::stat(&x).map(|s| s.ino).ok();

    c.errno(benchfs::rename(&x, join(&y, "x2")), libc::EINVAL, "rename of a directory into its child");
    c.errno(benchfs::rename(&x, join(&z, "x3")), libc::EINVAL, "rename of a directory into its grandchild");
    c.errno(benchfs::rename(&x, &z), libc::EINVAL, "rename of a directory onto its grandchild");
    c.errno(benchfs::rename(&file, &empty), libc::EISDIR, "rename of a file onto a directory");
    c.errno(benchfs::rename(&x, &file), libc::ENOTDIR, "rename of a directory onto a file");
    c.errno(benchfs::rename(&x, &full), libc::ENOTEMPTY, "rename of a directory onto a non-empty one");
    c.errno(benchfs::rename(join(&dir, "missing"), join(&dir, "m2")), libc::ENOENT, "rename of a missing name");
    c.errno(benchfs::rename(&file, join(&dir, "missing/f")), libc::ENOENT, "rename into a missing directory");
    c.errno(benchfs::rename(&file, join(&file, "f")), libc::ENOTDIR, "rename into a file");

    c.check(benchfs::stat(&x).map(|s| s.ino).ok() == x_ino, || format!("{x} changed by failed renames"));
    verify_file(c, &file, &data);
    check_listing(c, &dir, &names(&[("x", libc::DT_DIR), ("file", libc::DT_REG), ("full", libc::DT_DIR), ("empty", libc::DT_DIR)]));
    check_listing(c, &x, &names(&[("y", libc::DT_DIR)]));
    check_listing(c, &full, &names(&[("inside", libc::DT_REG)]));

    // A directory onto an empty directory replaces it.
    c.ok(benchfs::rename(&x, &empty), || format!("rename {x} onto empty {empty}"));
    c.check(benchfs::stat(&empty).map(|s| s.ino).ok() == x_ino, || format!("{empty}: not the moved directory"));
    check_listing(c, &join(&empty, "y"), &names(&[("z", libc::DT_DIR)]));
    check_listing(c, &dir, &names(&[("file", libc::DT_REG), ("full", libc::DT_DIR), ("empty", libc::DT_DIR)]));

    for p in [join(&dir, "empty/y/z"), join(&dir, "empty/y"), empty.clone()] {
        c.ok(benchfs::rmdir(&p), || format!("rmdir {p}"));
    }
    c.ok(benchfs::unlink(join(&full, "inside")), || "unlink inside".into());
    c.ok(benchfs::rmdir(&full), || format!("rmdir {full}"));
    c.ok(benchfs::unlink(&file), || format!("unlink {file}"));
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// Names that are not UTF-8 (a 0xff byte, Latin-1, a broken sequence) and UTF-8 beyond ASCII.
const BYTE_NAMES: [&[u8]; 4] = [b"a\xffb", b"caf\xe9", b"\xc3\x28", "日本".as_bytes()];

/// Names are bytes: files and directories with the names of `BYTE_NAMES`, as `&[u8]` and
/// `Vec<u8>` through the API, listed byte for byte by every rank, renamed to other such names
/// and removed. A directory's name is the file's with the byte 0xfe added.
fn byte_names(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "bytes");
    let tag = |rank: usize, k: usize| mix(0xb17e ^ ((rank as u64) << 8) ^ k as u64);
    let dir_name = |name: &[u8]| [name, b"\xfe"].concat();
    let renamed = |name: &[u8]| [b"\xff.", name].concat();
    let listing = |rename: fn(&[u8]) -> Vec<u8>| -> BTreeMap<Vec<u8>, u8> {
        let files = BYTE_NAMES.iter().map(|name| (rename(name), libc::DT_REG));
        files.chain(BYTE_NAMES.iter().map(|name| (dir_name(&rename(name)), libc::DT_DIR))).collect()
    };
    for (k, name) in BYTE_NAMES.iter().enumerate() {
        create_file(c, join_bytes(&dir, name), &pattern(tag(job.rank, k), 0, job.chunk + 100 * k as u64));
        let sub = join_bytes(&dir, &dir_name(name));
        c.ok(benchfs::mkdir(&sub, 0o755), || format!("mkdir {}", shown(&sub)));
        create_file(c, [&sub[..], b"/", name].concat(), name);
    }
    let check_all = |c: &mut Checker, rename: fn(&[u8]) -> Vec<u8>| {
        job.barrier();
        for owner in 0..job.size {
            let dir = format!("{TOP}/bytes.r{owner}");
            check_listing(c, &dir, &listing(rename));
            for (k, name) in BYTE_NAMES.iter().enumerate() {
                verify_file(c, join_bytes(&dir, &rename(name)), &pattern(tag(owner, k), 0, job.chunk + 100 * k as u64));
                let sub = join_bytes(&dir, &dir_name(&rename(name)));
                verify_file(c, [&sub[..], b"/", name].concat(), name);
            }
        }
        job.barrier();
    };
    check_all(c, |name| name.to_vec());
    for name in BYTE_NAMES {
        for (from, to) in [(name.to_vec(), renamed(name)), (dir_name(name), dir_name(&renamed(name)))] {
            let (from, to) = (join_bytes(&dir, &from), join_bytes(&dir, &to));
            c.ok(benchfs::rename(from.as_slice(), to.clone()), || format!("rename {} -> {}", shown(&from), shown(&to)));
            c.errno(benchfs::stat(&from), libc::ENOENT, "stat of a renamed byte name");
        }
    }
    check_all(c, renamed);
    for name in BYTE_NAMES {
        let (file, sub) = (join_bytes(&dir, &renamed(name)), join_bytes(&dir, &dir_name(&renamed(name))));
        c.ok(benchfs::unlink(&file), || format!("unlink {}", shown(&file)));
        c.ok(benchfs::unlink([&sub[..], b"/", name].concat()), || format!("unlink in {}", shown(&sub)));
        c.ok(benchfs::rmdir(&sub), || format!("rmdir {}", shown(&sub)));
    }
    check_listing(c, &dir, &BTreeMap::new());
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// Directories of the renamed tree, relative to its root: three levels, two branches each.
fn tree_dirs() -> Vec<String> {
    let mut dirs = vec![String::new()];
    for a in 0..2 {
        dirs.push(format!("/a{a}"));
        for b in 0..2 {
            dirs.push(format!("/a{a}/b{b}"));
            for d in 0..2 {
                dirs.push(format!("/a{a}/b{b}/c{d}"));
            }
        }
    }
    dirs
}

/// The files each rank puts in directory `k` of the tree: (name, contents).
fn tree_files(job: &Job, rank: usize, k: usize) -> Vec<(String, Vec<u8>)> {
    (0..2)
        .map(|i| {
            let tag = mix(0x7233 ^ ((rank as u64) << 20) ^ ((k as u64) << 8) ^ i);
            // One file per rank spans chunks; the rest are small.
            let len = if k == 0 && i == 0 { job.chunk + 777 } else { 100 + 37 * (k as u64 + i) };
            (format!("f{rank}.{i}"), pattern(tag, 0, len))
        })
        .collect()
}

/// A directory tree whose entries were created by every rank is renamed by one rank; every
/// rank then finds each file, byte for byte, under its new path and nothing under the old one.
fn rename_tree(c: &mut Checker, job: &Job) {
    let (old, holder) = (format!("{TOP}/tree"), format!("{TOP}/holder"));
    let new = format!("{holder}/moved");
    let dirs = tree_dirs();
    if job.rank == 0 {
        for d in &dirs {
            c.ok(benchfs::mkdir(format!("{old}{d}"), 0o755), || format!("mkdir {old}{d}"));
        }
        c.ok(benchfs::mkdir(&holder, 0o755), || format!("mkdir {holder}"));
    }
    job.barrier();
    for (k, d) in dirs.iter().enumerate() {
        for (name, data) in tree_files(job, job.rank, k) {
            create_file(c, format!("{old}{d}/{name}"), &data);
        }
    }
    job.barrier();
    if job.rank == job.size - 1 {
        c.ok(benchfs::rename(&old, &new), || format!("rename {old} -> {new}"));
    }
    job.barrier();
    c.errno(benchfs::stat(&old), libc::ENOENT, "stat of a renamed tree's old root");
    for (k, d) in dirs.iter().enumerate() {
        let mut expected = BTreeMap::new();
        for owner in 0..job.size {
            for (name, data) in tree_files(job, owner, k) {
                verify_file(c, format!("{new}{d}/{name}"), &data);
                c.errno(benchfs::stat(format!("{old}{d}/{name}")), libc::ENOENT, "stat of a moved file's old path");
                expected.insert(name.into_bytes(), libc::DT_REG);
            }
        }
        for sub in dirs.iter().filter(|s| s.rsplit_once('/').map(|(p, _)| p) == Some(d.as_str())) {
            expected.insert(sub.rsplit('/').next().unwrap_or_default().as_bytes().to_vec(), libc::DT_DIR);
        }
        check_listing(c, &format!("{new}{d}"), &expected);
    }
    check_listing(c, &holder, &names(&[("moved", libc::DT_DIR)]));
    job.barrier();

    // The moved directories keep working: their holders must let them be emptied and removed.
    for (k, d) in dirs.iter().enumerate() {
        for (name, _) in tree_files(job, job.rank, k) {
            let path = format!("{new}{d}/{name}");
            c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
        }
    }
    job.barrier();
    if job.rank == 0 {
        for d in dirs.iter().rev() {
            c.ok(benchfs::rmdir(format!("{new}{d}")), || format!("rmdir {new}{d}"));
        }
        c.ok(benchfs::rmdir(&holder), || format!("rmdir {holder}"));
    }
    job.barrier();
}

/// A file renamed by another rank while its writer holds it open: the writer's close must
/// publish the size under the new name, as the descriptor follows the file.
fn rename_while_open(c: &mut Checker, job: &Job) {
    let (from, to) = (format!("{TOP}/open.r{}", job.rank), format!("{TOP}/open.r{}.renamed", job.rank));
    let data = pattern(mix(0x0be ^ job.rank as u64), 0, 3000);
    let fd = c.ok(benchfs::open(&from, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644), || format!("create {from}"));
    if let Some(fd) = fd {
        c.ok(write_all(fd, &data, 0), || format!("write {from}"));
    }
    job.barrier();
    let victim = (job.rank + 1) % job.size;
    let (vf, vt) = (format!("{TOP}/open.r{victim}"), format!("{TOP}/open.r{victim}.renamed"));
    c.ok(benchfs::rename(&vf, &vt), || format!("rename {vf} -> {vt} while its writer holds it open"));
    job.barrier();
    if let Some(fd) = fd {
        c.ok(benchfs::close(fd), || format!("close {from} after it was renamed"));
    }
    job.barrier();
    let reader_sees = (job.rank + job.size - 1) % job.size;
    let path = format!("{TOP}/open.r{reader_sees}.renamed");
    verify_file(c, &path, &pattern(mix(0x0be ^ reader_sees as u64), 0, 3000));
    job.barrier();
    c.ok(benchfs::unlink(&to), || format!("unlink {to}"));
}

/// A descriptor describes the file it opened after its path names another file, or nothing.
fn fstat_after_replace(c: &mut Checker, job: &Job) {
    let name = |rank: usize, what: &str| format!("{TOP}/fst.r{rank}.{what}");
    let (replaced, removed) = (name(job.rank, "replaced"), name(job.rank, "removed"));
    let mut open = Vec::new();
    for p in [&replaced, &removed] {
        // Its size published by the fsync, so that the descriptor opened next knows it (a
        // descriptor of a removed file keeps the size it knew; see docs/semantics.md).
        let made = c.ok(benchfs::open(p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644), || format!("create {p}"));
        let ino = made.and_then(|fd| {
            c.ok(write_all(fd, &pattern(mix(0xf57), 0, 100), 0), || format!("write {p}"));
            c.ok(benchfs::fsync(fd), || format!("fsync {p}"));
            let st = c.ok(benchfs::fstat(fd), || format!("fstat {p}"));
            c.ok(benchfs::close(fd), || format!("close {p}"));
            st.map(|st| st.ino)
        });
        let fd = c.ok(benchfs::open(p, libc::O_RDONLY, 0), || format!("open {p}"));
        open.push((p.clone(), ino, fd));
    }
    job.barrier();
    // The next rank removes both, and makes the first again.
    let victim = (job.rank + 1) % job.size;
    let (vr, vx) = (name(victim, "replaced"), name(victim, "removed"));
    for p in [&vr, &vx] {
        c.ok(benchfs::unlink(p), || format!("unlink {p} while another rank holds it open"));
    }
    create_file(c, &vr, b"seven b");
    job.barrier();
    for (p, ino, fd) in &open {
        let (Some(ino), Some(fd)) = (*ino, *fd) else { continue };
        if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat of {p} after its path changed")) {
            c.check(st.ino == ino && st.size == 100, || format!("fstat {p}: ino {} size {}, expected ino {ino} size 100", st.ino, st.size));
        }
        c.ok(benchfs::close(fd), || format!("close {p}"));
    }
    if let (Some(st), Some(old)) = (stat_of(c, &replaced), open[0].1) {
        c.check(st.size == 7 && st.ino != old, || {
            format!("stat {replaced}: ino {} size {}, expected a new file of 7 bytes", st.ino, st.size)
        });
    }
    job.barrier();
    c.ok(benchfs::unlink(&replaced), || format!("unlink {replaced}, made again by the previous rank"));
}

/// Shrinking cuts the data; growing again reads zeros there; growing a file makes a hole.
fn truncation(c: &mut Checker, job: &Job) {
    let tag = mix(0x7c ^ job.rank as u64);
    let full = 3 * job.chunk + 100;
    let cut = job.chunk / 2 + 3;
    let with_hole = |len: u64| {
        let mut v = pattern(tag, 0, cut.min(len));
        v.resize(len as usize, 0);
        v
    };
    let by_path = format!("{TOP}/trunc.r{}", job.rank);
    create_file(c, &by_path, &pattern(tag, 0, full));
    c.ok(benchfs::truncate(&by_path, cut), || format!("truncate {by_path} to {cut}"));
    verify_file(c, &by_path, &pattern(tag, 0, cut));
    c.ok(benchfs::truncate(&by_path, full), || format!("truncate {by_path} up to {full}"));
    verify_file(c, &by_path, &with_hole(full));

    let by_fd = format!("{TOP}/ftrunc.r{}", job.rank);
    create_file(c, &by_fd, &pattern(tag, 0, full));
    if let Some(fd) = c.ok(benchfs::open(&by_fd, libc::O_RDWR, 0), || format!("open {by_fd}")) {
        c.ok(benchfs::ftruncate(fd, cut), || format!("ftruncate {by_fd} to {cut}"));
        c.check(benchfs::fstat(fd).ok().map(|s| s.size) == Some(cut), || format!("fstat {by_fd} after ftruncate"));
        c.ok(benchfs::ftruncate(fd, full + 10), || format!("ftruncate {by_fd} up"));
        c.check(benchfs::fstat(fd).ok().map(|s| s.size) == Some(full + 10), || format!("fstat {by_fd} after growing"));
        if let Some(data) = c.ok(read_at(fd, 0, full + 100), || format!("read {by_fd}")) {
            c.bytes(&data, &with_hole(full + 10), 0, || format!("{by_fd} through its descriptor"));
        }
        c.ok(benchfs::close(fd), || format!("close {by_fd}"));
    }
    if let Some(fd) = c.ok(benchfs::open(&by_fd, libc::O_RDONLY, 0), || format!("open {by_fd}")) {
        c.errno(benchfs::ftruncate(fd, 0), libc::EINVAL, "ftruncate of a read-only descriptor");
        c.ok(benchfs::close(fd), || format!("close {by_fd}"));
    }

    let grown = format!("{TOP}/grown.r{}", job.rank);
    create_file(c, &grown, b"head");
    c.ok(benchfs::truncate(&grown, 2 * job.chunk + 5), || format!("truncate {grown} up"));
    job.barrier();

    // Every rank sees every rank's results.
    for owner in 0..job.size {
        let tag = mix(0x7c ^ owner as u64);
        let mut expect = pattern(tag, 0, cut);
        expect.resize(full as usize, 0);
        verify_file(c, format!("{TOP}/trunc.r{owner}"), &expect);
        expect.resize(full as usize + 10, 0);
        verify_file(c, format!("{TOP}/ftrunc.r{owner}"), &expect);
        let mut expect = b"head".to_vec();
        expect.resize(2 * job.chunk as usize + 5, 0);
        verify_file(c, format!("{TOP}/grown.r{owner}"), &expect);
    }
    job.barrier();
    for p in [&by_path, &by_fd, &grown] {
        c.ok(benchfs::unlink(p), || format!("unlink {p}"));
    }
}

/// After the writer closes or fsyncs, every rank's stat shows the size, and a newer mtime.
fn publication(c: &mut Checker, job: &Job) {
    let path = format!("{TOP}/published");
    let writer = job.size - 1;
    let tag = 0x9b1;
    let (first, second) = (5000u64, job.chunk + 123);
    let mut fd = None;
    if job.rank == writer {
        create_file(c, &path, &pattern(tag, 0, first));
        // Its size is exact at once; its mtime reaches the owner with its release, which this
        // sends now rather than a millisecond later (see `closed_before_release`).
        c.ok(benchfs::testing::hold_releases(false), || "release the closed writer".into());
    }
    job.barrier();
    let before = stat_of(c, &path);
    if let Some(st) = before {
        c.check(st.size == first, || format!("stat {path} after close: size {}, expected {first}", st.size));
    }
    verify_file(c, &path, &pattern(tag, 0, first));
    c.check(job.all_equal(before.map_or(0, |s| s.mtime_ns as u64)), || format!("ranks disagree on the mtime of {path}"));
    job.barrier();
    std::thread::sleep(TICK);
    if job.rank == writer {
        fd = c.ok(benchfs::open(&path, libc::O_WRONLY, 0), || format!("open {path}"));
        if let Some(fd) = fd {
            c.ok(write_all(fd, &pattern(tag, first, second), first), || format!("write {path}"));
            c.ok(benchfs::fsync(fd), || format!("fsync {path}"));
        }
    }
    job.barrier();
    if let (Some(b), Some(st)) = (before, stat_of(c, &path)) {
        c.check(st.size == first + second, || format!("stat {path} after fsync: size {}, expected {}", st.size, first + second));
        c.check(st.mtime_ns > b.mtime_ns, || format!("stat {path} after fsync: mtime {} not after {}", st.mtime_ns, b.mtime_ns));
    }
    verify_file(c, &path, &pattern(tag, 0, first + second));
    job.barrier();
    if let Some(fd) = fd {
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
    }
}

/// A writer whose unpublished writes all lie in its file's first chunk closes without waiting
/// for the file's owner, which learns its size later: every rank sees the size and the data at
/// once all the same, and a cut or a removal made meanwhile holds. The writer's releases are
/// held back until the end here, as if its owner were slow to get them.
fn closed_before_release(c: &mut Checker, job: &Job) {
    let writer = job.size - 1;
    let tag = 0xc105;
    let first = 5000.min(job.chunk);
    // Created, written and closed.
    let small = format!("{TOP}/closed.small");
    // Created empty by rank 0, then written at the end of its first chunk by a descriptor
    // that registers with its first write.
    let reopened = format!("{TOP}/closed.reopened");
    // Cut by rank 0 while its writer is not released.
    let cut = format!("{TOP}/closed.cut");
    // Removed and made again by its writer while the first one's writer is not released.
    let again = format!("{TOP}/closed.again");
    // Opened by every rank, then removed, while its writer is not released.
    let opened = format!("{TOP}/closed.opened");
    if job.rank == 0 {
        create_file(c, &reopened, &[]);
    }
    job.barrier();
    let tail = pattern(tag + 2, job.chunk - 10, 10);
    if job.rank == writer {
        c.ok(benchfs::testing::hold_releases(true), || "hold the releases".into());
        create_file(c, &small, &pattern(tag, 0, first));
        create_file(c, &cut, &pattern(tag + 1, 0, first));
        if let Some(fd) = c.ok(benchfs::open(&reopened, libc::O_WRONLY, 0), || format!("open {reopened}")) {
            c.ok(write_all(fd, &tail, job.chunk - 10), || format!("write the end of the first chunk of {reopened}"));
            c.ok(benchfs::close(fd), || format!("close {reopened}"));
        }
        create_file(c, &again, &pattern(tag + 3, 0, first));
        c.ok(benchfs::unlink(&again), || format!("unlink {again}"));
        create_file(c, &again, &pattern(tag + 4, 0, 10));
        create_file(c, &opened, &pattern(tag + 5, 0, first));
    }
    job.barrier();
    // A descriptor knows the size that a stat shows as it opens, and keeps it once the file is
    // removed (see docs/semantics.md).
    let fd = c.ok(benchfs::open(&opened, libc::O_RDONLY, 0), || format!("open {opened}"));
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::unlink(&opened), || format!("unlink {opened}"));
    }
    job.barrier();
    if let Some(fd) = fd {
        if let Some(st) = c.ok(benchfs::fstat(fd), || format!("fstat {opened} after its removal")) {
            c.check(st.size == first, || format!("fstat {opened} after its removal: size {}, expected {first}", st.size));
        }
        c.ok(benchfs::close(fd), || format!("close {opened}"));
    }
    job.barrier();
    let mut ends_first_chunk = vec![0u8; job.chunk as usize - 10];
    ends_first_chunk.extend_from_slice(&tail);
    let check_all = |c: &mut Checker| {
        verify_file(c, &small, &pattern(tag, 0, first));
        verify_file(c, &reopened, &ends_first_chunk);
        verify_file(c, &again, &pattern(tag + 4, 0, 10));
    };
    check_all(c);
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::truncate(&cut, 100), || format!("truncate {cut} to 100"));
    }
    job.barrier();
    verify_file(c, &cut, &pattern(tag + 1, 0, 100));
    job.barrier();
    if job.rank == writer {
        c.ok(benchfs::testing::hold_releases(false), || "release what was held".into());
    }
    job.barrier();
    // Published now: the cut size stays, and nothing else changed.
    verify_file(c, &cut, &pattern(tag + 1, 0, 100));
    check_all(c);
    job.barrier();
    if job.rank == 0 {
        for p in [&small, &reopened, &cut, &again] {
            c.ok(benchfs::unlink(p), || format!("unlink {p}"));
        }
    }
}

/// How long a directory's stamp may take to follow a change in it, at most, here.
const STAMP_WAIT: Duration = Duration::from_secs(5);

/// The mtime of directory `dir` once it is later than `m0`, or as it is after `STAMP_WAIT`.
fn stamped_after(dir: &str, m0: i64) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let m = benchfs::stat(dir).map_or(m0, |st| st.mtime_ns);
        if m > m0 || started.elapsed() > STAMP_WAIT {
            return m;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Creating, removing and renaming entries moves the parent directory's mtime on, as another
/// rank sees it.
fn parent_mtime(c: &mut Checker, job: &Job) {
    let (dir, aside) = (format!("{TOP}/mt"), format!("{TOP}/mt-aside"));
    let (actor, observer) = (0, 1 % job.size);
    if job.rank == actor {
        for d in [&dir, &aside] {
            c.ok(benchfs::mkdir(d, 0o755), || format!("mkdir {d}"));
        }
    }
    type Step = fn(&str, &str) -> benchfs::Result<()>;
    let steps: [(&str, Step); 6] = [
        ("create", |d, _| benchfs::open(join(d, "f"), libc::O_CREAT | libc::O_WRONLY, 0o644).and_then(benchfs::close)),
        ("rename out", |d, a| benchfs::rename(join(d, "f"), join(a, "f"))),
        ("rename in", |d, a| benchfs::rename(join(a, "f"), join(d, "f"))),
        ("unlink", |d, _| benchfs::unlink(join(d, "f"))),
        ("mkdir", |d, _| benchfs::mkdir(join(d, "sub"), 0o755)),
        ("rmdir", |d, _| benchfs::rmdir(join(d, "sub"))),
    ];
    for (what, step) in steps {
        job.barrier();
        let before = (job.rank == observer).then(|| (benchfs::stat(&dir).ok(), benchfs::stat(&aside).ok()));
        job.barrier();
        if job.rank == actor {
            std::thread::sleep(TICK);
            c.ok(step(&dir, &aside), || format!("{what} in {dir}"));
        }
        job.barrier();
        let Some((Some(d0), Some(a0))) = before else {
            continue;
        };
        // The stamp follows the change within milliseconds (docs/semantics.md); each step waits
        // for its own, so the next step starts from settled times.
        let mut changed = vec![(&dir, d0.mtime_ns)];
        if what.starts_with("rename") {
            changed.push((&aside, a0.mtime_ns));
        }
        for (d, m0) in changed {
            let m1 = stamped_after(d, m0);
            c.check(m1 > m0, || format!("{what}: mtime of {d} still {m0} after {STAMP_WAIT:?}"));
        }
    }
    job.barrier();
    if job.rank == actor {
        for d in [&dir, &aside] {
            c.ok(benchfs::rmdir(d), || format!("rmdir {d}"));
        }
    }
}

/// access() and statvfs().
fn access_and_statvfs(c: &mut Checker, job: &Job) {
    let dir = job.own_dir(c, "acc");
    let file = join(&dir, "f");
    create_file(c, &file, b"x");
    for path in [&dir, &file] {
        for (mode, name) in [(libc::F_OK, "F_OK"), (libc::R_OK, "R_OK"), (libc::W_OK, "W_OK"), (libc::R_OK | libc::W_OK, "R_OK|W_OK")] {
            c.ok(benchfs::access(path, mode), || format!("access({path}, {name})"));
        }
    }
    c.ok(benchfs::access(&dir, libc::X_OK), || format!("access({dir}, X_OK)"));
    c.errno(benchfs::access(&file, libc::X_OK), libc::EACCES, "access(X_OK) of a 0644 file");
    c.errno(benchfs::access(join(&dir, "missing"), libc::F_OK), libc::ENOENT, "access of a missing file");
    c.errno(benchfs::access(&file, 0x40), libc::EINVAL, "access with unknown mode bits");

    if let Some(s) = c.ok(benchfs::statvfs("/"), || "statvfs /".into()) {
        c.check(s.bsize > 0 && s.blocks > 0 && s.bfree <= s.blocks && s.bavail <= s.bfree, || format!("statvfs /: block counts {s:?}"));
        c.check(s.files > 0 && s.ffree <= s.files && s.files - s.ffree >= 3, || format!("statvfs /: file counts {s:?}"));
        c.check(s.namemax == 255, || format!("statvfs /: namemax {}", s.namemax));
    }
    c.ok(benchfs::statvfs(&file).map(drop), || format!("statvfs {file}"));
    c.errno(benchfs::statvfs("/no-such-dir"), libc::ENOENT, "statvfs of a missing path");
    c.ok(benchfs::unlink(&file), || format!("unlink {file}"));
    c.ok(benchfs::rmdir(&dir), || format!("rmdir {dir}"));
}

/// `O_APPEND` writes land at the end, whatever the file offset, from one rank and from each rank
/// in turn; `SEEK_END` finds the end.
fn append_and_seek_end(c: &mut Checker, job: &Job) {
    let tag = mix(0xa99 ^ job.rank as u64);
    let path = format!("{TOP}/append.r{}", job.rank);
    let pieces = [1000u64, 1, job.chunk - 7, 4096];
    let total: u64 = pieces.iter().sum();
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_APPEND;
    let mut at = 0;
    for (k, &len) in pieces.iter().enumerate() {
        // Each piece through a new descriptor for half of them, so that the end comes from the
        // metadata owner as well as from the descriptor itself.
        let Some(fd) = c.ok(benchfs::open(&path, flags, 0o644), || format!("open {path} O_APPEND")) else {
            break;
        };
        c.ok(benchfs::lseek(fd, 0, Whence::Set), || "lseek to 0".into());
        let r = benchfs::write(fd, &pattern(tag, at, len));
        c.check(matches!(r, Ok(n) if n as u64 == len), || format!("append {len} bytes to {path}: {r:?}"));
        at += len;
        let pos = benchfs::lseek(fd, 0, Whence::Cur);
        c.check(matches!(pos, Ok(p) if p == at), || format!("offset after append: {pos:?}, expected {at}"));
        if k % 2 == 0 {
            let r = benchfs::write(fd, &pattern(tag, at, 10));
            c.check(matches!(r, Ok(10)), || format!("second append: {r:?}"));
            at += 10;
        }
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    let size = total + 20;
    verify_file(c, &path, &pattern(tag, 0, size));

    if let Some(fd) = c.ok(benchfs::open(&path, libc::O_RDWR, 0), || format!("open {path}")) {
        let end = benchfs::lseek(fd, 0, Whence::End);
        c.check(matches!(end, Ok(e) if e == size), || format!("lseek(0, SEEK_END): {end:?}, expected {size}"));
        let pos = benchfs::lseek(fd, -5, Whence::End);
        c.check(matches!(pos, Ok(p) if p == size - 5), || format!("lseek(-5, SEEK_END): {pos:?}"));
        let mut tail = [0u8; 16];
        if let Some(n) = c.ok(benchfs::read(fd, &mut tail), || "read at SEEK_END - 5".into()) {
            c.bytes(&tail[..n], &pattern(tag, size - 5, 5), size - 5, || "the last 5 bytes".into());
        }
        c.errno(benchfs::lseek(fd, -(size as i64) - 1, Whence::End), libc::EINVAL, "lseek before the start from SEEK_END");
        let pos = benchfs::lseek(fd, 10, Whence::End);
        c.check(matches!(pos, Ok(p) if p == size + 10), || format!("lseek(10, SEEK_END): {pos:?}"));
        let r = benchfs::write(fd, b"tail");
        c.check(matches!(r, Ok(4)), || format!("write past the end: {r:?}"));
        c.ok(benchfs::close(fd), || format!("close {path}"));
    }
    let mut expected = pattern(tag, 0, size);
    expected.resize(size as usize + 10, 0);
    expected.extend_from_slice(b"tail");
    verify_file(c, &path, &expected);
    job.barrier();

    // Every rank appends to one shared file in turn; each turn must start at the previous end.
    let shared = format!("{TOP}/append.shared");
    let piece = |r: usize| 777 + 1000 * r as u64;
    let mut expected = Vec::new();
    for turn in 0..job.size {
        if job.rank == turn {
            if let Some(fd) = c.ok(benchfs::open(&shared, flags, 0o644), || format!("open {shared}")) {
                let at = expected.len() as u64;
                let r = benchfs::write(fd, &pattern(0x5a ^ turn as u64, at, piece(turn)));
                c.check(matches!(r, Ok(n) if n as u64 == piece(turn)), || format!("append to {shared}: {r:?}"));
                c.ok(benchfs::close(fd), || format!("close {shared}"));
            }
        }
        let at = expected.len() as u64;
        expected.extend(pattern(0x5a ^ turn as u64, at, piece(turn)));
        job.barrier();
    }
    verify_file(c, &shared, &expected);
    if let Some(fd) = c.ok(benchfs::open(&shared, libc::O_RDONLY, 0), || format!("open {shared}")) {
        let end = benchfs::lseek(fd, 0, Whence::End);
        c.check(matches!(end, Ok(e) if e == expected.len() as u64), || format!("lseek(0, SEEK_END) on {shared}: {end:?}"));
        c.ok(benchfs::close(fd), || format!("close {shared}"));
    }
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::unlink(&shared), || format!("unlink {shared}"));
    }
    c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
}

fn run(c: &mut Checker, job: &Job) {
    root(c, job);
    errno_cases(c, job);
    small_listings(c, job);
    job.barrier();
    big_directory(c, job);
    rename_files(c, job);
    rename_errors(c, job);
    byte_names(c, job);
    job.barrier();
    rename_tree(c, job);
    rename_while_open(c, job);
    job.barrier();
    fstat_after_replace(c, job);
    job.barrier();
    truncation(c, job);
    job.barrier();
    publication(c, job);
    job.barrier();
    closed_before_release(c, job);
    job.barrier();
    parent_mtime(c, job);
    job.barrier();
    access_and_statvfs(c, job);
    append_and_seek_end(c, job);
    job.barrier();
    // Everything was removed: the tree is back to the top directory alone.
    check_listing(c, TOP, &BTreeMap::new());
    job.barrier();
    if job.rank == 0 {
        c.ok(benchfs::rmdir(TOP), || format!("rmdir {TOP}"));
    }
    job.barrier();
    check_listing(c, "/", &BTreeMap::new());
}

/// The chunk size, from `st_blksize` of a scratch file.
fn probe_chunk_size(c: &mut Checker, rank: usize) -> u64 {
    let path = format!("/probe.r{rank}");
    let chunk = create_file(c, &path, &[]).and_then(|_| benchfs::stat(&path).ok()).map_or(0, |s| s.blksize);
    c.ok(benchfs::unlink(&path), || format!("unlink {path}"));
    if chunk == 0 {
        c.fail("chunk size unknown (st_blksize is 0); assuming 1 MiB".into());
        return 1 << 20;
    }
    chunk
}

fn main() -> ExitCode {
    let entries_per_rank = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => DEFAULT_ENTRIES_PER_RANK,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: namespace [ENTRIES_PER_RANK]");
            return ExitCode::FAILURE;
        }
    };
    let Some(universe) = mpi::initialize() else {
        eprintln!("namespace: MPI was already initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let rank = world.rank() as usize;
    let mut c = Checker::new("namespace", rank, MAX_PRINTED);

    match benchfs::init(&world) {
        Ok(()) => {
            let chunk = probe_chunk_size(&mut c, rank);
            world.barrier();
            let job = Job { world: universe.world(), rank, size: world.size() as usize, chunk, entries_per_rank };
            run(&mut c, &job);
            c.ok(benchfs::finalize(), || "benchfs::finalize".to_string());
        }
        Err(e) => c.fail(format!("benchfs::init: {e} (errno {})", e.errno())),
    }

    let totals = c.totals(&world);
    totals.print();
    totals.exit_code()
}
