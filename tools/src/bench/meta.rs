//! The metadata patterns: files (create, stat, open+close, remove) and directories (mkdir,
//! dir stat, rmdir, readdir of a shared directory, rename).

use std::collections::HashMap;
use std::time::Instant;

use crate::ctx::{report_mismatch, Ctx};
use crate::posix_dir::PosixSetup;
use crate::report::Table;
use crate::store::{OpenMode, Store};

pub const META_PHASES: [&str; 4] = ["create", "stat", "open+close", "remove"];

/// Runs the four metadata phases; returns the aggregate rates (operations per second, in the
/// order of [`META_PHASES`]) and this rank's count of wrong results.
pub fn run_meta(ctx: &Ctx, store: &impl Store) -> ([f64; 4], u64) {
    let paths: Vec<String> = (0..ctx.opts.files).map(|i| format!("/meta/r{}.{i}", ctx.rank)).collect();
    let total_ops = ctx.sum_u64(ctx.opts.files) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;
    let mut rates = [0.0; 4];

    for (phase, rate) in rates.iter_mut().enumerate() {
        ctx.barrier();
        let start = Instant::now();
        for path in &paths {
            let what = || format!("{} {path}", META_PHASES[phase]);
            match phase {
                0 => {
                    let file = store.open(path, OpenMode::Create).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                }
                1 => {
                    let size = store.stat(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)).size;
                    if size != 0 {
                        bad += 1;
                        report_mismatch(ctx, store, &mut reports, format!("{path}: size {size} after create"));
                    }
                }
                2 => {
                    let file = store.open(path, OpenMode::Read).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
                }
                _ => store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &what(), e)),
            }
        }
        *rate = total_ops / ctx.max_f64(start.elapsed().as_secs_f64());
    }

    // Removed files must be gone (checked outside the timed phases).
    ctx.barrier();
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

/// The directories every pattern works in; they exist before any pattern runs.
pub const PARENTS: [&str; 5] = ["/bench", "/meta", "/dirs", SHARED_DIR, "/ren"];

/// The directory that all ranks fill and list in the readdir pattern.
pub const SHARED_DIR: &str = "/shared-dir";

/// The phases of the directory-tree pattern, in the order they run.
pub const TREE_PHASES: [&str; 3] = ["mkdir", "dir stat", "rmdir"];

/// Creates an empty file as untimed setup for a pattern.
pub fn create_empty(ctx: &Ctx, store: &impl Store, path: &str) {
    let what = || format!("create {path}");
    let file = store.open(path, OpenMode::CreateTruncate).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &what(), e));
}

/// Removes files as untimed cleanup after a pattern.
pub fn remove_files(ctx: &Ctx, store: &impl Store, paths: &[String]) {
    for path in paths {
        store.unlink(path).unwrap_or_else(|e| ctx.fatal(store, &format!("unlink {path}"), e));
    }
}

/// Checks that `path` no longer exists after `what` removed or moved it; returns 1 if it does.
pub fn expect_gone(ctx: &Ctx, store: &impl Store, path: &str, what: &str, reports: &mut u32) -> u64 {
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
pub fn check_listing(ctx: &Ctx, store: &impl Store, dir: &str, expected: &[String], reports: &mut u32) -> u64 {
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
pub fn run_tree(ctx: &Ctx, store: &impl Store) -> ([f64; 3], u64) {
    let parent = format!("/dirs/r{}", ctx.rank);
    let names: Vec<String> = (0..ctx.opts.dir_count).map(|i| format!("d{i}")).collect();
    let paths: Vec<String> = names.iter().map(|name| format!("{parent}/{name}")).collect();
    let total_ops = ctx.sum_u64(ctx.opts.dir_count) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;
    let mut rates = [0.0; 3];

    store.mkdir(&parent).unwrap_or_else(|e| ctx.fatal(store, &format!("mkdir {parent}"), e));
    for (phase, rate) in rates.iter_mut().enumerate() {
        ctx.barrier();
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
pub fn run_readdir(ctx: &Ctx, store: &impl Store) -> (f64, u64) {
    let n = ctx.opts.readdir_files;
    let own: Vec<String> = (0..n).map(|i| format!("{SHARED_DIR}/r{}.{i}", ctx.rank)).collect();
    for path in &own {
        create_empty(ctx, store, path);
    }
    // Both file systems return `.` and `..` from opendir/readdir.
    let expected = n * ctx.size as u64 + 2;
    let mut bad = 0u64;
    let mut reports = 0u32;

    ctx.barrier();
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
    ctx.barrier();
    remove_files(ctx, store, &own);
    ctx.barrier();
    (rate, bad)
}

/// Every rank renames `--renames` files of its own within one shared directory. Returns the
/// aggregate rate and this rank's count of wrong results.
pub fn run_rename(ctx: &Ctx, store: &impl Store) -> (f64, u64) {
    let from: Vec<String> = (0..ctx.opts.renames).map(|i| format!("/ren/r{}.{i}", ctx.rank)).collect();
    let to: Vec<String> = from.iter().map(|path| format!("{path}.moved")).collect();
    for path in &from {
        create_empty(ctx, store, path);
    }
    let total_ops = ctx.sum_u64(ctx.opts.renames) as f64;
    let mut bad = 0u64;
    let mut reports = 0u32;

    ctx.barrier();
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
    ctx.barrier();
    (rate, bad)
}

/// The file metadata pattern against one store, recorded in `table`; returns this rank's count
/// of wrong results.
pub fn run_files(ctx: &Ctx, store: &impl Store, table: &mut Table) -> u64 {
    let (rates, bad) = run_meta(ctx, store);
    for (phase, rate) in META_PHASES.iter().zip(rates) {
        table.record(&format!("meta {phase}"), "ops/s", store, rate);
    }
    bad
}

/// The directory patterns against one store, recorded in `table`; returns this rank's count of
/// wrong results.
pub fn run_dirs(ctx: &Ctx, store: &impl Store, setup: &PosixSetup, table: &mut Table) -> u64 {
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
