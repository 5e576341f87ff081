//! A model-based test of the namespace: random operation sequences, each operation run by a
//! random rank, compared one by one with a reference model of POSIX semantics.
//!
//! ```text
//! mpirun -np 4 target/debug/examples/model [SEED] [OPS] [RUNS]
//! ```
//!
//! For each of `RUNS` seeds (`SEED`, `SEED + 1`, ...; defaults 1, 400 ops, 3 runs) rank 0
//! generates `OPS` operations over a dozen names in a fresh directory, so that names collide
//! often: mkdir, rmdir, create, write at an offset, read, stat, unlink, rename, truncate and
//! readdir. The sequence is broadcast; the operations run one at a time, each on its assigned
//! rank, which broadcasts the result (an errno or a value). Every rank keeps the model, so every
//! rank compares every result.
//!
//! On the first mismatch the sequence is shrunk, delta-debugging style: chunks of operations and
//! then single ones are removed while the rest, replayed in a fresh directory, still fails. The
//! minimal sequence and its mismatch are printed. The last line on rank 0 is
//! `model: N passed, M failed` (N results that matched, M sequences that failed).

mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use common::{mix, pattern, write_all, Rng};

const DEFAULT_SEED: u64 = 1;
const DEFAULT_OPS: u64 = 400;
const DEFAULT_RUNS: u64 = 3;

/// Shrinking stops after this many replays or this long, whichever comes first.
const MAX_REPLAYS: u32 = 400;
const SHRINK_TIME: Duration = Duration::from_secs(40);

/// Every run directory lives below this one.
const TOP: &str = "/model";

/// The names the operations use, relative to the run directory ("" is the directory itself):
/// three at the top and three inside each of them, so that creating, removing and renaming
/// one changes what happens to others.
fn rel_paths() -> Vec<String> {
    let mut paths = vec![String::new()];
    for a in ["a", "b", "c"] {
        paths.push(a.to_owned());
    }
    for a in ["a", "b", "c"] {
        for b in ["a", "b", "c"] {
            paths.push(format!("{a}/{b}"));
        }
    }
    paths
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mkdir,
    Rmdir,
    /// open(O_CREAT | O_WRONLY [| O_EXCL] [| O_TRUNC]), pwrite at 0, close.
    Create,
    /// open(O_WRONLY), pwrite at an offset, close.
    WriteAt,
    /// open(O_RDONLY), read to the end, close.
    Read,
    Stat,
    Unlink,
    Rename,
    Truncate,
    Readdir,
}

const KINDS: [Kind; 10] = [
    Kind::Mkdir,
    Kind::Rmdir,
    Kind::Create,
    Kind::WriteAt,
    Kind::Read,
    Kind::Stat,
    Kind::Unlink,
    Kind::Rename,
    Kind::Truncate,
    Kind::Readdir,
];

const EXCL: u8 = 1;
const TRUNC: u8 = 2;

#[derive(Clone, Copy, Debug)]
struct Op {
    kind: Kind,
    rank: u32,
    /// Index into [`rel_paths`]; `b` is the rename target.
    a: u8,
    b: u8,
    flags: u8,
    /// Write offset, or the length of a truncate.
    off: u64,
    len: u64,
    /// Names the bytes written: `pattern(tag, offset, len)`.
    tag: u64,
}

impl Op {
    /// Four words, for the broadcast.
    fn encode(&self) -> [u64; 4] {
        let kind = KINDS.iter().position(|&k| k == self.kind).unwrap_or(0) as u64;
        let head = kind | (self.rank as u64) << 8 | (self.a as u64) << 40 | (self.b as u64) << 48 | (self.flags as u64) << 56;
        [head, self.off, self.len, self.tag]
    }

    fn decode(w: &[u64]) -> Op {
        let h = w[0];
        Op {
            kind: KINDS[(h & 0xff) as usize % KINDS.len()],
            rank: (h >> 8) as u32,
            a: (h >> 40) as u8,
            b: (h >> 48) as u8,
            flags: (h >> 56) as u8,
            off: w[1],
            len: w[2],
            tag: w[3],
        }
    }

    fn describe(&self, paths: &[String]) -> String {
        let p = |i: u8| match paths[i as usize].as_str() {
            "" => ".".to_owned(),
            s => s.to_owned(),
        };
        let what = match self.kind {
            Kind::Mkdir => format!("mkdir {}", p(self.a)),
            Kind::Rmdir => format!("rmdir {}", p(self.a)),
            Kind::Create => format!(
                "create {}{}{} with {} bytes (tag {:#x})",
                p(self.a),
                if self.flags & EXCL != 0 { " O_EXCL" } else { "" },
                if self.flags & TRUNC != 0 { " O_TRUNC" } else { "" },
                self.len,
                self.tag
            ),
            Kind::WriteAt => format!("write {} bytes at {} of {} (tag {:#x})", self.len, self.off, p(self.a), self.tag),
            Kind::Read => format!("read {}", p(self.a)),
            Kind::Stat => format!("stat {}", p(self.a)),
            Kind::Unlink => format!("unlink {}", p(self.a)),
            Kind::Rename => format!("rename {} -> {}", p(self.a), p(self.b)),
            Kind::Truncate => format!("truncate {} to {}", p(self.a), self.off),
            Kind::Readdir => format!("readdir {}", p(self.a)),
        };
        format!("rank {}: {what}", self.rank)
    }
}

/// Offsets and lengths: mostly small, sometimes straddling the first or second chunk boundary.
fn span(rng: &mut Rng, chunk: u64) -> (u64, u64) {
    if rng.below(4) == 0 {
        let boundary = chunk * (1 + rng.below(2));
        (boundary - 1 - rng.below(600), 1 + rng.below(1200))
    } else {
        (rng.below(3000), rng.below(2500))
    }
}

fn generate(seed: u64, count: u64, nranks: u32, chunk: u64) -> Vec<Op> {
    let mut rng = Rng(mix(seed ^ 0x6d6f_64656c));
    let npaths = rel_paths().len() as u64;
    // Weights: creating is more frequent than removing, so that trees grow and renames of
    // non-empty directories occur.
    let weights: [(Kind, u64); 10] = [
        (Kind::Mkdir, 14),
        (Kind::Rmdir, 7),
        (Kind::Create, 16),
        (Kind::WriteAt, 9),
        (Kind::Read, 10),
        (Kind::Stat, 8),
        (Kind::Unlink, 7),
        (Kind::Rename, 12),
        (Kind::Truncate, 6),
        (Kind::Readdir, 8),
    ];
    let total: u64 = weights.iter().map(|w| w.1).sum();
    (0..count)
        .map(|_| {
            let mut pick = rng.below(total);
            let kind = weights
                .iter()
                .find(|(_, w)| {
                    pick < *w || {
                        pick -= w;
                        false
                    }
                })
                .map_or(Kind::Stat, |w| w.0);
            // The run directory itself only for the calls that may name it.
            let a = match kind {
                Kind::Readdir | Kind::Stat if rng.below(4) == 0 => 0,
                _ => 1 + rng.below(npaths - 1),
            } as u8;
            let b = (1 + rng.below(npaths - 1)) as u8;
            let (off, len) = span(&mut rng, chunk);
            let (off, len) = match kind {
                Kind::Create => (0, len),
                Kind::Truncate => (if rng.below(2) == 0 { rng.below(4000) } else { off + len }, 0),
                _ => (off, len),
            };
            Op { kind, rank: rng.below(nranks as u64) as u32, a, b, flags: rng.below(4) as u8, off, len, tag: rng.below(1 << 40) }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Err(i32),
    Done,
    Data(Vec<u8>),
    Stat {
        dir: bool,
        size: u64,
    },
    /// A listing sorted by name, "." and ".." included: (name, d_type).
    Names(Vec<(String, u8)>),
}

impl Outcome {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Outcome::Err(e) => {
                out.push(0);
                out.extend_from_slice(&e.to_le_bytes());
            }
            Outcome::Done => out.push(1),
            Outcome::Data(d) => {
                out.push(2);
                out.extend_from_slice(d);
            }
            Outcome::Stat { dir, size } => {
                out.push(3);
                out.push(*dir as u8);
                out.extend_from_slice(&size.to_le_bytes());
            }
            Outcome::Names(names) => {
                out.push(4);
                for (name, kind) in names {
                    out.push(*kind);
                    out.push(name.len() as u8);
                    out.extend_from_slice(name.as_bytes());
                }
            }
        }
        out
    }

    fn decode(b: &[u8]) -> Outcome {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        match b.first() {
            Some(0) => Outcome::Err(i32::from_le_bytes(b[1..5].try_into().unwrap_or_default())),
            Some(2) => Outcome::Data(b[1..].to_vec()),
            Some(3) => Outcome::Stat { dir: b[1] != 0, size: word(2) },
            Some(4) => {
                let mut names = Vec::new();
                let mut at = 1;
                while at + 2 <= b.len() {
                    let (kind, len) = (b[at], b[at + 1] as usize);
                    names.push((String::from_utf8_lossy(&b[at + 2..at + 2 + len]).into_owned(), kind));
                    at += 2 + len;
                }
                Outcome::Names(names)
            }
            _ => Outcome::Done,
        }
    }

    /// Short enough to print: data as its length and a digest.
    fn show(&self) -> String {
        match self {
            Outcome::Err(e) => format!("errno {e} ({})", std::io::Error::from_raw_os_error(*e)),
            Outcome::Data(d) => format!("{} bytes (digest {:#x})", d.len(), d.iter().fold(0u64, |h, &x| mix(h ^ x as u64))),
            other => format!("{other:?}"),
        }
    }
}

/// What the model allows: one value, or any of several errnos (POSIX lets an implementation
/// report any one of the conditions that hold).
#[derive(Debug)]
enum Expect {
    Value(Outcome),
    AnyErr(Vec<i32>),
}

impl Expect {
    fn accepts(&self, got: &Outcome) -> bool {
        match (self, got) {
            (Expect::Value(v), got) => v == got,
            (Expect::AnyErr(errnos), Outcome::Err(e)) => errnos.contains(e),
            _ => false,
        }
    }

    fn show(&self) -> String {
        match self {
            Expect::Value(v) => v.show(),
            Expect::AnyErr(errnos) => {
                let names: Vec<String> = errnos.iter().map(|&e| format!("{e} ({})", std::io::Error::from_raw_os_error(e))).collect();
                format!("errno {}", names.join(" or "))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// The run directory's tree, keyed by path relative to it; "" is the directory itself.
struct Model {
    tree: BTreeMap<String, Node>,
}

fn parent_of(p: &str) -> &str {
    p.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn fail(errno: i32) -> Expect {
    Expect::AnyErr(vec![errno])
}

impl Model {
    fn new() -> Model {
        Model { tree: BTreeMap::from([(String::new(), Node::Dir)]) }
    }

    /// Path resolution: the first missing prefix gives ENOENT, the first non-directory ENOTDIR.
    fn resolve(&self, p: &str) -> Result<(), i32> {
        let mut prefix = String::new();
        let comps: Vec<&str> = p.split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            match self.tree.get(&prefix) {
                None => return Err(libc::ENOENT),
                Some(Node::File(_)) => return Err(libc::ENOTDIR),
                Some(Node::Dir) => {}
            }
        }
        Ok(())
    }

    fn children(&self, p: &str) -> Vec<(&String, &Node)> {
        self.tree.iter().filter(|(k, _)| !k.is_empty() && k.as_str() != p && parent_of(k) == p).collect()
    }

    fn below<'a>(p: &'a str) -> impl Fn(&String) -> bool + 'a {
        move |k: &String| k.len() > p.len() + 1 && k.starts_with(p) && k.as_bytes()[p.len()] == b'/'
    }

    fn write(data: &mut Vec<u8>, off: u64, bytes: &[u8]) {
        let end = off as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[off as usize..end].copy_from_slice(bytes);
    }

    /// Applies `op` (when it succeeds) and returns what the call must give.
    fn apply(&mut self, op: &Op, paths: &[String]) -> Expect {
        let p = paths[op.a as usize].clone();
        if op.kind != Kind::Rename {
            if let Err(e) = self.resolve(&p) {
                return fail(e);
            }
        }
        let node = self.tree.get(&p).cloned();
        match (op.kind, node) {
            (Kind::Mkdir, Some(_)) => fail(libc::EEXIST),
            (Kind::Mkdir, None) => {
                self.tree.insert(p, Node::Dir);
                Expect::Value(Outcome::Done)
            }
            (Kind::Rmdir | Kind::Unlink | Kind::Truncate | Kind::Read | Kind::Stat | Kind::WriteAt | Kind::Readdir, None) => {
                fail(libc::ENOENT)
            }
            (Kind::Rmdir, Some(Node::File(_))) => fail(libc::ENOTDIR),
            (Kind::Rmdir, Some(Node::Dir)) if !self.children(&p).is_empty() => Expect::AnyErr(vec![libc::ENOTEMPTY, libc::EEXIST]),
            (Kind::Rmdir, Some(Node::Dir)) | (Kind::Unlink, Some(Node::File(_))) => {
                self.tree.remove(&p);
                Expect::Value(Outcome::Done)
            }
            (Kind::Unlink | Kind::Truncate | Kind::WriteAt | Kind::Read, Some(Node::Dir)) => fail(libc::EISDIR),
            (Kind::Create, Some(Node::Dir)) => fail(if op.flags & EXCL != 0 { libc::EEXIST } else { libc::EISDIR }),
            (Kind::Create, Some(Node::File(_))) if op.flags & EXCL != 0 => fail(libc::EEXIST),
            (Kind::Create, existing) => {
                let mut data = match existing {
                    Some(Node::File(d)) if op.flags & TRUNC == 0 => d,
                    _ => Vec::new(),
                };
                Self::write(&mut data, 0, &pattern(op.tag, 0, op.len));
                self.tree.insert(p, Node::File(data));
                Expect::Value(Outcome::Done)
            }
            (Kind::WriteAt, Some(Node::File(mut data))) => {
                Self::write(&mut data, op.off, &pattern(op.tag, op.off, op.len));
                self.tree.insert(p, Node::File(data));
                Expect::Value(Outcome::Done)
            }
            (Kind::Truncate, Some(Node::File(mut data))) => {
                data.resize(op.off as usize, 0);
                self.tree.insert(p, Node::File(data));
                Expect::Value(Outcome::Done)
            }
            (Kind::Read, Some(Node::File(data))) => Expect::Value(Outcome::Data(data)),
            (Kind::Stat, Some(Node::Dir)) => Expect::Value(Outcome::Stat { dir: true, size: 0 }),
            (Kind::Stat, Some(Node::File(d))) => Expect::Value(Outcome::Stat { dir: false, size: d.len() as u64 }),
            (Kind::Readdir, Some(Node::File(_))) => fail(libc::ENOTDIR),
            (Kind::Readdir, Some(Node::Dir)) => {
                let mut names = vec![(".".to_owned(), libc::DT_DIR), ("..".to_owned(), libc::DT_DIR)];
                for (k, n) in self.children(&p) {
                    let kind = if matches!(n, Node::Dir) { libc::DT_DIR } else { libc::DT_REG };
                    names.push((k.rsplit('/').next().unwrap_or_default().to_owned(), kind));
                }
                names.sort();
                Expect::Value(Outcome::Names(names))
            }
            (Kind::Rename, _) => self.rename(&p, &paths[op.b as usize]),
        }
    }

    fn rename(&mut self, p: &str, q: &str) -> Expect {
        let mut errs = Vec::new();
        let old = match self.resolve(p) {
            Err(e) => {
                errs.push(e);
                None
            }
            Ok(()) => self.tree.get(p).cloned(),
        };
        if old.is_none() && errs.is_empty() {
            errs.push(libc::ENOENT);
        }
        if let Err(e) = self.resolve(q) {
            errs.push(e);
        }
        let new = self.tree.get(q).cloned();
        let old_is_dir = matches!(old, Some(Node::Dir));
        if old_is_dir && Self::below(p)(&q.to_owned()) {
            errs.push(libc::EINVAL);
        }
        if let (Some(o), Some(n)) = (&old, &new) {
            if p != q {
                match (o, n) {
                    (Node::File(_), Node::Dir) => errs.push(libc::EISDIR),
                    (Node::Dir, Node::File(_)) => errs.push(libc::ENOTDIR),
                    _ => {}
                }
                if matches!(n, Node::Dir) && !self.children(q).is_empty() {
                    errs.extend([libc::ENOTEMPTY, libc::EEXIST]);
                }
            }
        }
        if !errs.is_empty() {
            errs.sort_unstable();
            errs.dedup();
            return Expect::AnyErr(errs);
        }
        if p == q {
            return Expect::Value(Outcome::Done);
        }
        // Move p and everything below it to q, replacing q.
        self.tree.remove(q);
        let moved: Vec<String> = self.tree.keys().filter(|k| k.as_str() == p || Self::below(p)(k)).cloned().collect();
        for k in moved {
            if let Some(n) = self.tree.remove(&k) {
                self.tree.insert(format!("{q}{}", &k[p.len()..]), n);
            }
        }
        Expect::Value(Outcome::Done)
    }
}

// ---------------------------------------------------------------------------------------------
// Running operations against BenchFS
// ---------------------------------------------------------------------------------------------

fn errno_of(e: benchfs::Error) -> Outcome {
    Outcome::Err(e.errno())
}

/// open, pwrite, close: the first failing step gives the result.
fn open_write_close(path: &str, flags: i32, data: &[u8], offset: u64) -> Outcome {
    let fd = match benchfs::open(path, flags, 0o644) {
        Ok(fd) => fd,
        Err(e) => return errno_of(e),
    };
    let written = write_all(fd, data, offset);
    let closed = benchfs::close(fd);
    match written.and(closed) {
        Ok(()) => Outcome::Done,
        Err(e) => errno_of(e),
    }
}

fn read_whole(path: &str) -> Outcome {
    let fd = match benchfs::open(path, libc::O_RDONLY, 0) {
        Ok(fd) => fd,
        Err(e) => return errno_of(e),
    };
    let mut data = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let result = loop {
        match benchfs::pread(fd, &mut buf, data.len() as u64) {
            Ok(0) => break Ok(()),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let closed = benchfs::close(fd);
    match result.and(closed) {
        Ok(()) => Outcome::Data(data),
        Err(e) => errno_of(e),
    }
}

fn execute(op: &Op, dir: &str, paths: &[String]) -> Outcome {
    let abs = |i: u8| match paths[i as usize].as_str() {
        "" => dir.to_owned(),
        rel => format!("{dir}/{rel}"),
    };
    let p = abs(op.a);
    let done = |r: benchfs::Result<()>| r.map_or_else(errno_of, |()| Outcome::Done);
    match op.kind {
        Kind::Mkdir => done(benchfs::mkdir(&p, 0o755)),
        Kind::Rmdir => done(benchfs::rmdir(&p)),
        Kind::Unlink => done(benchfs::unlink(&p)),
        Kind::Rename => done(benchfs::rename(&p, abs(op.b))),
        Kind::Truncate => done(benchfs::truncate(&p, op.off)),
        Kind::Create => {
            let mut flags = libc::O_CREAT | libc::O_WRONLY;
            if op.flags & EXCL != 0 {
                flags |= libc::O_EXCL;
            }
            if op.flags & TRUNC != 0 {
                flags |= libc::O_TRUNC;
            }
            open_write_close(&p, flags, &pattern(op.tag, 0, op.len), 0)
        }
        Kind::WriteAt => open_write_close(&p, libc::O_WRONLY, &pattern(op.tag, op.off, op.len), op.off),
        Kind::Read => read_whole(&p),
        Kind::Stat => match benchfs::stat(&p) {
            Ok(st) if st.mode & libc::S_IFMT == libc::S_IFDIR => Outcome::Stat { dir: true, size: 0 },
            Ok(st) => Outcome::Stat { dir: false, size: st.size },
            Err(e) => errno_of(e),
        },
        Kind::Readdir => match benchfs::readdir(&p) {
            Ok(entries) => {
                // The model's names are ASCII: another name shows as U+FFFD and differs from it.
                let mut names: Vec<(String, u8)> =
                    entries.into_iter().map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.kind)).collect();
                names.sort();
                Outcome::Names(names)
            }
            Err(e) => errno_of(e),
        },
    }
}

/// Removes a tree through its listings, deepest first.
fn remove_tree(path: &[u8]) -> benchfs::Result<()> {
    for e in benchfs::readdir(path)?.into_iter().skip(2) {
        let child = [path, b"/", &e.name].concat();
        if e.kind == libc::DT_DIR {
            remove_tree(&child)?;
        } else {
            benchfs::unlink(&child)?;
        }
    }
    benchfs::rmdir(path)
}

// ---------------------------------------------------------------------------------------------
// Replaying sequences and shrinking them
// ---------------------------------------------------------------------------------------------

/// The first operation whose result the model does not allow.
struct Mismatch {
    index: usize,
    expected: String,
    got: String,
    /// What makes two mismatches the same failure while shrinking: the kind of operation (None
    /// for the cleanup) and what it gave.
    signature: (Option<Kind>, String),
}

/// The errno, or the kind of value, of a result.
fn result_class(o: &Outcome) -> String {
    match o {
        Outcome::Err(e) => format!("errno {e}"),
        other => format!("{other:?}").split([' ', '(', '{']).next().unwrap_or_default().to_owned(),
    }
}

struct Runner {
    world: SimpleCommunicator,
    rank: u32,
    paths: Vec<String>,
    /// Run directories made so far: each replay gets a fresh one.
    replays: u64,
}

impl Runner {
    /// Broadcasts `bytes` from `root` to every rank.
    fn broadcast_bytes(&self, root: u32, bytes: Vec<u8>) -> Vec<u8> {
        let mut len = bytes.len() as u64;
        let from = self.world.process_at_rank(root as i32);
        from.broadcast_into(&mut len);
        let mut buf = if self.rank == root { bytes } else { vec![0u8; len as usize] };
        if len > 0 {
            from.broadcast_into(&mut buf[..]);
        }
        buf
    }

    fn broadcast_flag(&self, value: bool) -> bool {
        let mut v = value as u8;
        self.world.process_at_rank(0).broadcast_into(&mut v);
        v != 0
    }

    /// Runs `ops` in a fresh directory; every rank returns the same verdict. `checked` counts
    /// the results that matched. A run that passed must also clean up after itself.
    fn replay(&mut self, ops: &[Op], seed: u64, checked: &mut u64) -> Option<Mismatch> {
        let dir = format!("{TOP}/s{seed}.{}", self.replays);
        self.replays += 1;
        let mut mismatch = None;
        let made = if self.rank == 0 { benchfs::mkdir(&dir, 0o755).map_err(|e| e.errno()).err().unwrap_or(0) } else { 0 };
        let made = i32::from_le_bytes(self.broadcast_bytes(0, made.to_le_bytes().to_vec()).try_into().unwrap_or_default());
        if made != 0 {
            let got = Outcome::Err(made);
            let signature = (None, result_class(&got));
            return Some(Mismatch { index: 0, expected: format!("mkdir {dir} succeeds"), got: got.show(), signature });
        }
        let mut model = Model::new();
        for (index, op) in ops.iter().enumerate() {
            let local = if op.rank == self.rank { execute(op, &dir, &self.paths).encode() } else { Vec::new() };
            let got = Outcome::decode(&self.broadcast_bytes(op.rank, local));
            let expected = model.apply(op, &self.paths);
            if expected.accepts(&got) {
                *checked += 1;
            } else {
                let signature = (Some(op.kind), result_class(&got));
                mismatch = Some(Mismatch { index, expected: expected.show(), got: got.show(), signature });
                break;
            }
        }
        self.world.barrier();
        let cleaned = if self.rank == 0 { remove_tree(dir.as_bytes()).map_err(|e| e.errno()).err().unwrap_or(0) } else { 0 };
        let cleaned = i32::from_le_bytes(self.broadcast_bytes(0, cleaned.to_le_bytes().to_vec()).try_into().unwrap_or_default());
        if mismatch.is_none() && cleaned != 0 {
            let got = Outcome::Err(cleaned);
            mismatch = Some(Mismatch {
                index: ops.len(),
                expected: format!("removing {dir} and everything in it succeeds"),
                signature: (None, result_class(&got)),
                got: got.show(),
            });
        }
        mismatch
    }

    /// Delta debugging over a failing sequence: removes chunks (halves, quarters, ... single
    /// operations) as long as what is left still fails the same way (see
    /// [`Mismatch::signature`]), and cuts each such candidate after its first mismatch.
    fn shrink(&mut self, mut ops: Vec<Op>, mut mismatch: Mismatch, seed: u64) -> (Vec<Op>, Mismatch) {
        let started = Instant::now();
        let mut replays = 0;
        let mut parts = 2usize;
        while ops.len() >= 2 {
            let size = ops.len().div_ceil(parts);
            let mut reduced = false;
            for start in (0..ops.len()).step_by(size) {
                let go_on = self.broadcast_flag(replays < MAX_REPLAYS && started.elapsed() < SHRINK_TIME);
                if !go_on {
                    return (ops, mismatch);
                }
                replays += 1;
                let candidate: Vec<Op> = ops[..start].iter().chain(&ops[(start + size).min(ops.len())..]).copied().collect();
                let still = self.replay(&candidate, seed, &mut 0).filter(|m| m.signature == mismatch.signature);
                if let Some(m) = still {
                    ops = candidate[..(m.index + 1).min(candidate.len())].to_vec();
                    mismatch = m;
                    parts = (parts - 1).max(2);
                    reduced = true;
                    break;
                }
            }
            if !reduced {
                if parts >= ops.len() {
                    break;
                }
                parts = (parts * 2).min(ops.len());
            }
        }
        (ops, mismatch)
    }
}

fn chunk_size() -> u64 {
    let probe = "/model-probe";
    let size = benchfs::open(probe, libc::O_CREAT | libc::O_WRONLY, 0o644)
        .and_then(|fd| benchfs::fstat(fd).and_then(|st| benchfs::close(fd).map(|()| st.blksize)));
    let _ = benchfs::unlink(probe);
    size.unwrap_or(1 << 20).max(4096)
}

fn arg(i: usize, default: u64) -> Result<u64, String> {
    match std::env::args().nth(i) {
        None => Ok(default),
        Some(a) => a.parse().map_err(|_| format!("argument {i} ({a:?}) is not a number")),
    }
}

fn main() -> ExitCode {
    let (seed, count, runs) = match (arg(1, DEFAULT_SEED), arg(2, DEFAULT_OPS), arg(3, DEFAULT_RUNS)) {
        (Ok(s), Ok(c), Ok(r)) => (s, c, r),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("model: {e}\nusage: model [SEED] [OPS] [RUNS]");
            return ExitCode::FAILURE;
        }
    };
    let Some(universe) = mpi::initialize() else {
        eprintln!("model: MPI was already initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let (rank, nranks) = (world.rank() as u32, world.size() as u32);
    if let Err(e) = benchfs::init(&world) {
        eprintln!("model: rank {rank}: benchfs::init: {e} (errno {})", e.errno());
        return ExitCode::FAILURE;
    }
    // The chunk size comes from one rank so that the generated offsets do not depend on who
    // generates them.
    let chunk = if rank == 0 { chunk_size() } else { 0 };
    let mut chunk_word = chunk;
    world.process_at_rank(0).broadcast_into(&mut chunk_word);
    if rank == 0 {
        if let Err(e) = benchfs::mkdir(TOP, 0o755) {
            eprintln!("model: mkdir {TOP}: {e}");
        }
    }
    world.barrier();

    let mut runner = Runner { world: universe.world(), rank, paths: rel_paths(), replays: 0 };
    let (mut passed, mut failed) = (0u64, 0u64);
    for seed in seed..seed + runs {
        let words: Vec<u64> =
            if rank == 0 { generate(seed, count, nranks, chunk_word).iter().flat_map(|op| op.encode()).collect() } else { Vec::new() };
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let bytes = runner.broadcast_bytes(0, bytes);
        let words: Vec<u64> = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        let ops: Vec<Op> = words.chunks_exact(4).map(Op::decode).collect();

        let Some(mismatch) = runner.replay(&ops, seed, &mut passed) else {
            if rank == 0 {
                eprintln!("model: seed {seed}: {} operations match the model", ops.len());
            }
            continue;
        };
        failed += 1;
        if rank == 0 {
            eprintln!(
                "model: seed {seed}: FAILED at operation {} of {}: {}\n  expected {}\n  got      {}\n  shrinking...",
                mismatch.index,
                ops.len(),
                ops.get(mismatch.index).map_or("cleanup".into(), |op| op.describe(&runner.paths)),
                mismatch.expected,
                mismatch.got
            );
        }
        let upto = (mismatch.index + 1).min(ops.len());
        let (minimal, m) = runner.shrink(ops[..upto].to_vec(), mismatch, seed);
        if rank == 0 {
            let mut report =
                format!("model: seed {seed}: minimal failing sequence ({} operations, in a fresh directory):\n", minimal.len());
            for (i, op) in minimal.iter().enumerate() {
                report.push_str(&format!("  {i:3}. {}\n", op.describe(&runner.paths)));
            }
            report.push_str(&format!("  operation {}: expected {}\n  got {}", m.index, m.expected, m.got));
            eprintln!("{report}");
        }
    }

    world.barrier();
    if rank == 0 {
        // The top directory is left only if a run failed to clean up (reported above).
        let _ = benchfs::rmdir(TOP);
    }
    world.barrier();
    if let Err(e) = benchfs::finalize() {
        eprintln!("model: rank {rank}: benchfs::finalize: {e}");
        failed += 1;
    }
    if rank == 0 {
        println!("model: {passed} passed, {failed} failed");
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
