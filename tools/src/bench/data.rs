//! The bandwidth patterns: file per process and one shared file, each a timed write phase, a
//! timed read phase of another rank's data and an untimed full check.

use std::time::Instant;

use crate::ctx::{Ctx, Tally};
use crate::pattern::Pattern;
use crate::posix_dir::PosixSetup;
use crate::report::Table;
use crate::store::{OpenMode, Store};

const MIB: f64 = 1024.0 * 1024.0;

/// Where the ranks' data goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file per rank.
    Fpp,
    /// One file for all ranks, IOR's segmented layout.
    Shared,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Fpp => "fpp",
            Layout::Shared => "shared",
        }
    }

    fn path(self, writer: usize) -> String {
        match self {
            Layout::Fpp => format!("/bench/fpp.{writer}"),
            Layout::Shared => "/bench/shared".to_string(),
        }
    }

    /// Every (file offset, length) that `writer` owns, in the order it writes them.
    fn transfers(self, ctx: &Ctx, writer: usize) -> impl Iterator<Item = u64> {
        let (block, transfer, n) = (ctx.opts.block, ctx.opts.transfer, ctx.size as u64);
        let per_block = block / transfer;
        let layout = self;
        (0..ctx.opts.segments).flat_map(move |s| {
            let base = match layout {
                Layout::Fpp => s * block,
                Layout::Shared => (s * n + writer as u64) * block,
            };
            (0..per_block).map(move |t| base + t * transfer)
        })
    }

    /// The size the file of `writer` has after everyone wrote.
    fn file_size(self, ctx: &Ctx) -> u64 {
        match self {
            Layout::Fpp => ctx.opts.segments * ctx.opts.block,
            Layout::Shared => ctx.opts.segments * ctx.size as u64 * ctx.opts.block,
        }
    }
}

/// The bytes each rank writes (and reads) in one bandwidth phase.
pub fn bytes_per_rank(ctx: &Ctx) -> u64 {
    ctx.opts.segments * ctx.opts.block
}

/// Removes the files of this layout; absent files are fine. The barriers on both sides keep the
/// removal away from other ranks still reading the file and from the next phase.
fn remove_data_files(ctx: &Ctx, store: &impl Store, layout: Layout) {
    let path = layout.path(ctx.rank);
    ctx.barrier();
    if layout == Layout::Fpp || ctx.rank == 0 {
        if let Err(e) = store.unlink(&path) {
            if e.errno != libc::ENOENT {
                ctx.fatal(store, &format!("unlink {path}"), e);
            }
        }
    }
    ctx.barrier();
}

/// The timed write phase: this rank writes its own data. Returns the phase time (the slowest
/// rank's).
fn write_phase(ctx: &Ctx, store: &impl Store, layout: Layout, iteration: u32) -> f64 {
    let path = layout.path(ctx.rank);
    let pattern = Pattern::new(ctx.rank, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    pattern.fill(&mut buf, 0, false);
    // Every rank opens the shared file with O_CREAT and none truncates it: a late O_TRUNC would
    // destroy the blocks that faster ranks have already written.
    let mode = match layout {
        Layout::Fpp => OpenMode::CreateTruncate,
        Layout::Shared => OpenMode::Create,
    };

    ctx.barrier();
    let start = Instant::now();
    let file = store.open(&path, mode).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, ctx.rank) {
        pattern.fill(&mut buf, offset, true);
        store.pwrite_all(&file, &buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
    }
    if ctx.opts.fsync {
        store.fsync(&file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    }
    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    ctx.max_f64(start.elapsed().as_secs_f64())
}

/// The timed read phase: reads the data of the next rank, checking lengths and stamps only.
/// Returns the phase time and the number of bad transfers seen on this rank.
fn read_phase(ctx: &Ctx, store: &impl Store, layout: Layout, iteration: u32) -> (f64, u64) {
    let writer = (ctx.rank + 1) % ctx.size;
    let path = layout.path(writer);
    let pattern = Pattern::new(writer, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    let verify = ctx.opts.verify;
    let mut tally = Tally::new(ctx, store);

    ctx.barrier();
    let start = Instant::now();
    let file = store.open(&path, OpenMode::Read).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, writer) {
        let n = store.pread_full(&file, &mut buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
        if n != buf.len() {
            tally.wrong(format!("{path} @ {offset}: short read of {n} bytes"));
        } else if verify && !pattern.spot_check(&buf, offset) {
            tally.wrong(format!("{path} @ {offset}: wrong stamp"));
        }
    }
    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    let elapsed = start.elapsed().as_secs_f64();
    (ctx.max_f64(elapsed), tally.bad)
}

/// The untimed full check: re-reads the next rank's data and compares every byte, and checks the
/// size `stat` reports. Returns the number of bad transfers on this rank.
fn verify_pass(ctx: &Ctx, store: &impl Store, layout: Layout, iteration: u32) -> u64 {
    let writer = (ctx.rank + 1) % ctx.size;
    let path = layout.path(writer);
    let pattern = Pattern::new(writer, iteration, ctx.opts.transfer);
    let mut buf = vec![0u8; ctx.opts.transfer as usize];
    let mut expected = vec![0u8; ctx.opts.transfer as usize];
    let mut tally = Tally::new(ctx, store);

    let size = store.stat(&path).unwrap_or_else(|e| ctx.fatal(store, &path, e)).size;
    if size != layout.file_size(ctx) {
        tally.wrong(format!("{path}: stat size {size}, expected {}", layout.file_size(ctx)));
    }
    let file = store.open(&path, OpenMode::Read).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    for offset in layout.transfers(ctx, writer) {
        let n = store.pread_full(&file, &mut buf, offset).unwrap_or_else(|e| ctx.fatal(store, &format!("{path} @ {offset}"), e));
        pattern.fill(&mut expected, offset, false);
        if n != buf.len() || buf != expected {
            let at = buf[..n].iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(n);
            let what = if at < n {
                format!("{path}: first wrong byte at offset {} (read {:#04x}, expected {:#04x})", offset + at as u64, buf[at], expected[at])
            } else {
                format!("{path} @ {offset}: short read of {n} bytes")
            };
            tally.wrong(what);
        }
    }
    store.close(file).unwrap_or_else(|e| ctx.fatal(store, &path, e));
    tally.bad
}

/// One iteration of a bandwidth pattern against one store, recorded in `table`. Returns this
/// rank's count of verification failures.
pub fn run_layout(ctx: &Ctx, store: &impl Store, setup: &PosixSetup, layout: Layout, iteration: u32, table: &mut Table) -> u64 {
    let (write_row, read_row) = (format!("{} write", layout.name()), format!("{} read", layout.name()));
    // The reads (and, for the shared layout, the file) span ranks; a node-local POSIX directory
    // cannot host them, so those figures are left out.
    if !setup.hosts_cross_rank(ctx, store) {
        table.row(&write_row, "MiB/s");
        table.row(&read_row, "MiB/s");
        return 0;
    }
    remove_data_files(ctx, store, layout);
    let total = ctx.sum_u64(bytes_per_rank(ctx)) as f64;
    let write_time = write_phase(ctx, store, layout, iteration);
    let (read_time, mut bad) = read_phase(ctx, store, layout, iteration);
    if ctx.opts.verify {
        ctx.barrier();
        bad += verify_pass(ctx, store, layout, iteration);
    }
    remove_data_files(ctx, store, layout);
    table.record(&write_row, "MiB/s", store, total / MIB / write_time);
    table.record(&read_row, "MiB/s", store, total / MIB / read_time);
    bad
}
