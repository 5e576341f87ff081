//! The small-file pattern, as the "hard" mdtest phases of IO500 make it: every rank makes
//! `--small-files` files of `--small-size` bytes (3901 by default, as in IO500) in one
//! directory of all ranks, each written whole by one write between its create and its close;
//! then every rank stats and reads back the files of the next rank (as mdtest's `-N 1` shifts
//! them), and removes its own. Each phase is timed on its own between barriers; the figure is the
//! files of all ranks per second of the slowest rank.
//!
//! A file's bytes are a function of (writer rank, iteration, file number): the writer's template
//! with the file's stamp in its first and last eight bytes (see `Pattern::fill_file`). The timed
//! stat checks the size, the timed read (of exactly that size) the length and both stamps; an
//! untimed pass then compares every byte and checks that nothing follows (unless `--no-verify`).

use crate::ctx::{Ctx, Tally};
use crate::meta::{expect_gone, timed_loop};
use crate::pattern::Pattern;
use crate::posix_dir::PosixSetup;
use crate::report::Table;
use crate::store::{OpenMode, Store};

/// The directory of all ranks' small files.
pub const SMALL_DIR: &str = "/small";

/// The phases, in the order they run, as named in the results table.
const ROWS: [&str; 4] = ["small write", "small stat", "small read", "small remove"];

fn path(writer: usize, index: u64) -> String {
    format!("{SMALL_DIR}/r{writer}.{index}")
}

/// One iteration of the small-file pattern against one store, recorded in `table`. Returns this
/// rank's count of wrong results.
pub fn run_small(ctx: &Ctx, store: &impl Store, setup: &PosixSetup, iteration: u32, table: &mut Table) -> u64 {
    // The stats and reads span ranks: a node-local POSIX directory cannot host them.
    if !setup.hosts_cross_rank(ctx, store) {
        for row in ROWS {
            table.row(row, "ops/s");
        }
        return 0;
    }
    let size = ctx.opts.small_size as usize;
    let files: Vec<u64> = (0..ctx.opts.small_files).collect();
    let writer = (ctx.rank + 1) % ctx.size;
    let mut tally = Tally::new(ctx, store);

    let mine = Pattern::new(ctx.rank, iteration, size as u64);
    let mut buf = vec![0u8; size];
    mine.fill_file(&mut buf, 0);
    let write = timed_loop(ctx, &files, |&i| {
        let path = path(ctx.rank, i);
        mine.stamp_file(&mut buf, i);
        let file = store.open(&path, OpenMode::Create).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        store.pwrite_all(&file, &buf, 0).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    });

    let stat = timed_loop(ctx, &files, |&i| {
        let path = path(writer, i);
        let found = store.stat(&path).unwrap_or_else(|e| ctx.fatal(store, &format!("stat {path}"), e)).size;
        if found != size as u64 {
            tally.wrong(format!("{path}: size {found}, expected {size}"));
        }
    });

    let theirs = Pattern::new(writer, iteration, size as u64);
    // Exactly the file's size, as mdtest reads (`-e`): a read past the size a reader knows makes
    // BenchFS ask the file's owner whether it grew. The untimed pass asks for one byte more.
    let mut got = vec![0u8; size];
    let read = timed_loop(ctx, &files, |&i| {
        let path = path(writer, i);
        let file = store.open(&path, OpenMode::Read).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        let n = store.pread_full(&file, &mut got, 0).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        if n != size {
            tally.wrong(format!("{path}: read {n} bytes, expected {size}"));
        } else if !theirs.check_file(&got[..n], i) {
            tally.wrong(format!("{path}: wrong stamp"));
        }
    });

    if ctx.opts.verify {
        verify_files(ctx, store, &theirs, writer, &files, &mut tally);
    }
    let remove = timed_loop(ctx, &files, |&i| {
        let path = path(ctx.rank, i);
        store.unlink(&path).unwrap_or_else(|e| ctx.fatal(store, &format!("unlink {path}"), e));
    });
    // Removed files must be gone (a sample, checked outside the timed phases).
    ctx.barrier();
    for &i in files.iter().step_by((files.len() / 16).max(1)) {
        expect_gone(store, &path(ctx.rank, i), "remove", &mut tally);
    }
    ctx.barrier();
    for (row, rate) in ROWS.into_iter().zip([write, stat, read, remove]) {
        table.record(row, "ops/s", store, rate);
    }
    tally.bad
}

/// The untimed check: reads every file of `writer` again, one byte more than it should hold (a
/// file that is too long reads as too long), and compares every byte.
fn verify_files(ctx: &Ctx, store: &impl Store, pattern: &Pattern, writer: usize, files: &[u64], tally: &mut Tally) {
    let size = ctx.opts.small_size as usize;
    let (mut got, mut expected) = (vec![0u8; size + 1], vec![0u8; size]);
    for &i in files {
        let path = path(writer, i);
        let file = store.open(&path, OpenMode::Read).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        let n = store.pread_full(&file, &mut got, 0).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
        pattern.fill_file(&mut expected, i);
        if got[..n] != expected[..] {
            match got[..n].iter().zip(&expected).position(|(a, b)| a != b) {
                Some(at) => {
                    tally.wrong(format!("{path}: first wrong byte at offset {at} (read {:#04x}, expected {:#04x})", got[at], expected[at]))
                }
                None => tally.wrong(format!("{path}: read {n} bytes, expected {size}")),
            }
        }
    }
}
