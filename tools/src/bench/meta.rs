//! The metadata patterns: files (create, stat, open+close, remove), a directory tree (mkdir,
//! dir stat, rmdir), the listing of one shared directory (readdir) and rename.
//!
//! Files and directories go through the same loop, [`run_phases`]: each phase applies one
//! [`Op`] to every path of this rank, timed on its own between barriers.

use std::collections::HashMap;
use std::time::Instant;

use crate::ctx::{Ctx, Tally};
use crate::posix_dir::PosixSetup;
use crate::report::Table;
use crate::store::{OpenMode, Store};

/// The directories every pattern works in; they exist before any pattern runs.
pub const PARENTS: [&str; 6] = ["/bench", "/meta", "/dirs", SHARED_DIR, "/ren", crate::small::SMALL_DIR];

/// The directory that all ranks fill and list in the readdir pattern.
const SHARED_DIR: &str = "/shared-dir";

/// One timed metadata operation, applied to each path of a phase.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Open with `O_CREAT`, close; the new file must stat as empty in [`Op::Stat`].
    Create,
    Stat,
    OpenClose,
    Remove,
    Mkdir,
    /// Stat of a directory made by [`Op::Mkdir`]; it must be a directory.
    DirStat,
    Rmdir,
}

impl Op {
    /// The phase's name in the results table.
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Stat => "stat",
            Op::OpenClose => "open+close",
            Op::Remove => "remove",
            Op::Mkdir => "mkdir",
            Op::DirStat => "dir stat",
            Op::Rmdir => "rmdir",
        }
    }
}

/// The phases of the file pattern and of the directory-tree pattern, in the order they run.
const FILE_PHASES: [Op; 4] = [Op::Create, Op::Stat, Op::OpenClose, Op::Remove];
const TREE_PHASES: [Op; 3] = [Op::Mkdir, Op::DirStat, Op::Rmdir];

/// Applies `op` to `path`. A failed call stops the job; a wrong result is counted in `tally`.
fn apply(ctx: &Ctx, store: &impl Store, op: Op, path: &str, tally: &mut Tally) {
    let what = || format!("{} {path}", op.name());
    let open_close = |mode| {
        let file = store.open(path, mode).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
        store.close(file).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
    };
    match op {
        Op::Create => open_close(OpenMode::Create),
        Op::OpenClose => open_close(OpenMode::Read),
        Op::Stat => {
            let size = store.stat(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)).size;
            if size != 0 {
                tally.wrong(format!("{path}: size {size} after create"));
            }
        }
        Op::DirStat => {
            let attrs = store.stat(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
            if !attrs.is_dir() {
                tally.wrong(format!("{path}: mode {:o} after mkdir", attrs.mode));
            }
        }
        Op::Remove => store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
        Op::Mkdir => store.mkdir(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
        Op::Rmdir => store.rmdir(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
    }
}

/// One timed loop: a barrier, then `op` on each of this rank's `items`. Returns the aggregate
/// rate: the operations of all ranks per second of the slowest rank.
pub fn timed_loop<T>(ctx: &Ctx, items: &[T], mut op: impl FnMut(&T)) -> f64 {
    let total_ops = ctx.sum_u64(items.len() as u64) as f64;
    ctx.barrier();
    let start = Instant::now();
    for item in items {
        op(item);
    }
    total_ops / ctx.max_f64(start.elapsed().as_secs_f64())
}

/// Runs each of `phases` as one timed loop over `paths`, then `after` (untimed) with the phase
/// just run. Returns the aggregate rate of each phase, in the order of `phases`.
fn run_phases(
    ctx: &Ctx,
    store: &impl Store,
    paths: &[String],
    phases: &[Op],
    tally: &mut Tally,
    mut after: impl FnMut(Op, &mut Tally),
) -> Vec<f64> {
    let mut rates = Vec::with_capacity(phases.len());
    for &op in phases {
        rates.push(timed_loop(ctx, paths, |path| apply(ctx, store, op, path, tally)));
        after(op, tally);
    }
    rates
}

/// Records the rate of each phase in `table`, as `<prefix><phase name>`.
fn record_phases(table: &mut Table, store: &impl Store, prefix: &str, phases: &[Op], rates: Vec<f64>) {
    for (op, rate) in phases.iter().zip(rates) {
        table.record(&format!("{prefix}{}", op.name()), "ops/s", store, rate);
    }
}

/// Creates an empty file as untimed setup for a pattern.
fn create_empty(ctx: &Ctx, store: &impl Store, path: &str) {
    let what = || format!("create {path}");
    let file = store.open(path, OpenMode::CreateTruncate).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
}

/// Removes files as untimed cleanup after a pattern.
fn remove_files(ctx: &Ctx, store: &impl Store, paths: &[String]) {
    for path in paths {
        store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &format!("unlink {path}"), e));
    }
}

/// Checks that `path` no longer exists after `what` removed or moved it.
pub fn expect_gone(store: &impl Store, path: &str, what: &str, tally: &mut Tally) {
    match store.stat(path) {
        Err(e) if e.errno == libc::ENOENT => {}
        other => tally.wrong(format!("stat {path} after {what}: {other:?}, expected ENOENT")),
    }
}

/// Lists `dir` (untimed) and checks that it holds exactly the names in `expected`, plus `.` and
/// `..`, each once; every missing, unexpected or repeated entry counts as wrong.
fn check_listing(ctx: &Ctx, store: &impl Store, dir: &str, expected: &[String], tally: &mut Tally) {
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

    for name in strays {
        tally.wrong(format!("{dir}: unexpected or repeated entry {name:?}"));
    }
    for (name, _) in expected.iter().zip(&seen).filter(|(_, &seen)| !seen) {
        tally.wrong(format!("{dir}: entry {name:?} missing"));
    }
    for (name, count) in [".", ".."].into_iter().zip(dots) {
        if count != 1 {
            tally.wrong(format!("{dir}: {name:?} listed {count} times, expected once"));
        }
    }
}

/// Every rank creates, stats, opens+closes and removes `--files` files of its own in one
/// directory of all ranks, each phase timed on its own, and creates as many in a directory of
/// its own: after the other phases in even iterations, before them in odd ones, so that the two
/// kinds of creates find the store in either state alike. The rates go into `table`. Returns
/// this rank's count of wrong results.
pub fn run_files(ctx: &Ctx, store: &impl Store, iteration: u32, table: &mut Table) -> u64 {
    let paths: Vec<String> = (0..ctx.opts.files).map(|i| format!("/meta/r{}.{i}", ctx.rank)).collect();
    let mut tally = Tally::new(ctx, store);
    let own_first = iteration % 2 == 1;
    let own_before = own_first.then(|| run_own_dir_creates(ctx, store, &mut tally));
    let rates = run_phases(ctx, store, &paths, &FILE_PHASES, &mut tally, |_, _| {});
    // Removed files must be gone (a sample, checked outside the timed phases).
    ctx.barrier();
    for path in paths.iter().step_by((paths.len() / 16).max(1)) {
        expect_gone(store, path, "remove", &mut tally);
    }
    record_phases(table, store, "meta ", &FILE_PHASES, rates);
    let own = own_before.unwrap_or_else(|| run_own_dir_creates(ctx, store, &mut tally));
    table.record(OWN_DIR_CREATE, "ops/s", store, own);
    table.relate("meta create", OWN_DIR_CREATE, "creates in one shared directory / in per-rank directories");
    tally.bad
}

/// The row of creates in per-rank directories.
const OWN_DIR_CREATE: &str = "meta create, own dir";

/// Creates `--files` files in a directory of this rank's own (timed), as the shared-directory
/// creates of [`run_files`] did in one directory of all ranks, then removes them and the
/// directory (untimed). Returns the aggregate rate.
fn run_own_dir_creates(ctx: &Ctx, store: &impl Store, tally: &mut Tally) -> f64 {
    let dir = format!("/meta/own.r{}", ctx.rank);
    store.mkdir(&dir).unwrap_or_else(|e| ctx.fatal(store, &format!("mkdir {dir}"), e));
    let paths: Vec<String> = (0..ctx.opts.files).map(|i| format!("{dir}/f{i}")).collect();
    let rate = timed_loop(ctx, &paths, |path| apply(ctx, store, Op::Create, path, tally));
    remove_files(ctx, store, &paths);
    store.rmdir(&dir).unwrap_or_else(|e| ctx.fatal(store, &format!("rmdir {dir}"), e));
    rate
}

/// Creates, stats and removes `--dirs` directories in this rank's own parent, each phase timed
/// on its own; the rates go into `table`. Returns this rank's count of wrong results.
fn run_tree(ctx: &Ctx, store: &impl Store, table: &mut Table) -> u64 {
    let parent = format!("/dirs/r{}", ctx.rank);
    let names: Vec<String> = (0..ctx.opts.dir_count).map(|i| format!("d{i}")).collect();
    let paths: Vec<String> = names.iter().map(|name| format!("{parent}/{name}")).collect();
    let mut tally = Tally::new(ctx, store);

    store.mkdir(&parent).unwrap_or_else(|e| ctx.fatal(store, &format!("mkdir {parent}"), e));
    let rates = run_phases(ctx, store, &paths, &TREE_PHASES, &mut tally, |op, tally| {
        // The new directories must be entries of their parent.
        if op == Op::Mkdir && ctx.opts.verify {
            check_listing(ctx, store, &parent, &names, tally);
        }
    });
    if ctx.opts.verify {
        for path in &paths {
            expect_gone(store, path, "rmdir", &mut tally);
        }
    }
    // Succeeds only if the parent agrees that all its entries are gone.
    if let Err(e) = store.rmdir(&parent) {
        tally.wrong(format!("rmdir {parent} after removing its entries: {e}"));
    }
    record_phases(table, store, "", &TREE_PHASES, rates);
    tally.bad
}

/// Every rank lists the whole of one shared directory holding `--readdir-files` files of every
/// rank. Returns the aggregate rate (entries listed by all ranks per second of the slowest rank)
/// and this rank's count of wrong results.
fn run_readdir(ctx: &Ctx, store: &impl Store) -> (f64, u64) {
    let n = ctx.opts.readdir_files;
    let own: Vec<String> = (0..n).map(|i| format!("{SHARED_DIR}/r{}.{i}", ctx.rank)).collect();
    for path in &own {
        create_empty(ctx, store, path);
    }
    // Both stores list `.` and `..` too.
    let expected = n * ctx.size as u64 + 2;
    let mut tally = Tally::new(ctx, store);

    ctx.barrier();
    let start = Instant::now();
    let mut listed = 0u64;
    store.list_dir(SHARED_DIR, &mut |_| listed += 1).unwrap_or_else(|e| ctx.fatal(store, &format!("list {SHARED_DIR}"), e));
    let elapsed = start.elapsed().as_secs_f64();
    let rate = ctx.sum_u64(listed) as f64 / ctx.max_f64(elapsed);

    if listed != expected {
        tally.wrong(format!("{SHARED_DIR}: listed {listed} entries, expected {expected} ({n} per rank, . and ..)"));
    }
    if ctx.opts.verify {
        let names: Vec<String> = (0..ctx.size).flat_map(|r| (0..n).map(move |i| format!("r{r}.{i}"))).collect();
        check_listing(ctx, store, SHARED_DIR, &names, &mut tally);
    }
    // Nobody removes a file before every rank has finished listing.
    ctx.barrier();
    remove_files(ctx, store, &own);
    ctx.barrier();
    (rate, tally.bad)
}

/// Every rank renames `--renames` files of its own within one shared directory. Returns the
/// aggregate rate and this rank's count of wrong results.
fn run_rename(ctx: &Ctx, store: &impl Store) -> (f64, u64) {
    let moves: Vec<(String, String)> = (0..ctx.opts.renames)
        .map(|i| {
            let from = format!("/ren/r{}.{i}", ctx.rank);
            let to = format!("{from}.moved");
            (from, to)
        })
        .collect();
    for (from, _) in &moves {
        create_empty(ctx, store, from);
    }
    let mut tally = Tally::new(ctx, store);

    let rate = timed_loop(ctx, &moves, |(old, new)| {
        store.rename(old, new).unwrap_or_else(|e| ctx.fatal(store, &format!("rename {old} {new}"), e));
    });

    if ctx.opts.verify {
        for (old, new) in &moves {
            expect_gone(store, old, "rename", &mut tally);
            match store.stat(new) {
                Ok(attrs) if attrs.is_file() && attrs.size == 0 => {}
                other => tally.wrong(format!("stat {new} after rename: {other:?}, expected an empty file")),
            }
        }
    }
    let moved: Vec<String> = moves.into_iter().map(|(_, to)| to).collect();
    remove_files(ctx, store, &moved);
    ctx.barrier();
    (rate, tally.bad)
}

/// The directory patterns against one store, recorded in `table`; returns this rank's count of
/// wrong results.
pub fn run_dirs(ctx: &Ctx, store: &impl Store, setup: &PosixSetup, table: &mut Table) -> u64 {
    let mut bad = 0u64;
    if ctx.opts.dir_count > 0 {
        bad += run_tree(ctx, store, table);
    }
    if ctx.opts.readdir_files > 0 {
        // Every rank lists the files of all ranks: a node-local POSIX directory cannot host that.
        if !setup.hosts_cross_rank(ctx, store) {
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
