//! What the benchmark prints: the configuration it runs with and the results table.

use crate::ctx::Ctx;
use crate::data::bytes_per_rank;
use crate::posix_dir::PosixSetup;
use crate::store::{Store, System};

/// `bytes` in the largest binary unit that divides it, e.g. `64 MiB`.
pub fn fmt_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {name}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// One line of the table: the best figure of each store over the iterations.
pub struct Row {
    name: String,
    unit: &'static str,
    benchfs: Option<f64>,
    posix: Option<f64>,
}

impl Row {
    fn new(name: String, unit: &'static str) -> Row {
        Row { name, unit, benchfs: None, posix: None }
    }

    fn record(slot: &mut Option<f64>, value: f64) {
        *slot = Some(slot.map_or(value, |best| best.max(value)));
    }
}

/// The results: one row per phase, in the order the phases first ran.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    /// Pairs of rows compared for each store under the table: (row, row it is divided by, what
    /// the quotient says).
    relations: Vec<(String, String, &'static str)>,
}

impl Table {
    /// The row `name`, added (without figures) if it is new: a phase that a store cannot run
    /// still gets its line, with `n/a`.
    pub fn row(&mut self, name: &str, unit: &'static str) -> &mut Row {
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(Row::new(name.to_string(), unit));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Keeps `value` in row `name` for `store` if it beats the figure already there.
    pub fn record(&mut self, name: &str, unit: &'static str, store: &impl Store, value: f64) {
        let row = self.row(name, unit);
        match store.system() {
            System::BenchFs => Row::record(&mut row.benchfs, value),
            System::Posix => Row::record(&mut row.posix, value),
        }
    }

    /// BenchFS's best figure in row `name`, if it has one.
    pub fn benchfs(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.name == name).and_then(|r| r.benchfs)
    }

    /// Asks for the quotient of rows `name` and `by`, for each store, under the table.
    pub fn relate(&mut self, name: &str, by: &str, meaning: &'static str) {
        if !self.relations.iter().any(|(a, b, _)| a == name && b == by) {
            self.relations.push((name.to_string(), by.to_string(), meaning));
        }
    }

    fn quotient(&self, name: &str, by: &str, figure: fn(&Row) -> Option<f64>) -> String {
        let find = |n: &str| self.rows.iter().find(|r| r.name == n).and_then(figure);
        match (find(name), find(by)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "n/a".to_string(),
        }
    }

    /// Prints the table with the ratio of BenchFS to POSIX for every row.
    pub fn print(&self, iterations: u32) {
        let how = if iterations == 1 { "1 iteration".to_string() } else { format!("best of {iterations} iterations") };
        println!();
        println!("results ({how}; rates = total bytes or operations / slowest rank's time)");
        println!("{:<20} {:>14} {:>14} {:>8}  unit", "pattern", "BenchFS", "POSIX", "ratio");
        println!("{}", "-".repeat(68));
        let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        for r in &self.rows {
            let ratio = match (r.benchfs, r.posix) {
                (Some(b), Some(p)) if p > 0.0 => format!("{:.2}", b / p),
                _ => "n/a".to_string(),
            };
            println!("{:<20} {:>14} {:>14} {:>8}  {}", r.name, fmt(r.benchfs), fmt(r.posix), ratio, r.unit);
        }
        for (name, by, meaning) in &self.relations {
            let benchfs = self.quotient(name, by, |r| r.benchfs);
            let posix = self.quotient(name, by, |r| r.posix);
            println!("{meaning} ({name} / {by}): BenchFS {benchfs}, POSIX {posix}");
        }
    }
}

/// The chunk size, as configured or as BenchFS reports it in `st_blksize`.
fn chunk_size_description() -> String {
    if let Ok(v) = std::env::var("BENCHFS_CHUNK_SIZE") {
        return format!("{v} (BENCHFS_CHUNK_SIZE)");
    }
    match chunk_size() {
        Ok(size) => format!("{} (st_blksize)", fmt_size(size)),
        Err(e) => format!("unknown ({e})"),
    }
}

/// BenchFS's chunk size, as `st_blksize` of a file made for the purpose.
pub fn chunk_size() -> Result<u64, benchfs::Error> {
    let probe = "/bench/.chunk-size-probe";
    benchfs::open(probe, libc::O_CREAT | libc::O_WRONLY, 0o644).and_then(|fd| {
        let st = benchfs::fstat(fd);
        benchfs::close(fd)?;
        benchfs::unlink(probe)?;
        st.map(|st| st.blksize)
    })
}

/// Prints what the run is configured to do (rank 0 only).
pub fn print_config(ctx: &Ctx, posix_root: &str, setup: &PosixSetup) {
    let o = &ctx.opts;
    let modes: Vec<&str> = [
        (o.fpp, "fpp"),
        (o.shared, "shared"),
        (o.meta, "meta"),
        (o.dirs, "dirs"),
        (o.small, "small"),
        (o.latency, "latency"),
        (o.scaling, "scaling"),
    ]
    .iter()
    .filter_map(|&(on, name)| on.then_some(name))
    .collect();
    let bandwidth = o.fpp || o.shared;
    let chunk = chunk_size_description();
    let per_rank = bytes_per_rank(ctx);
    println!("benchfs-bench configuration");
    println!("  ranks            {}", ctx.size);
    println!("  modes            {}", modes.join(" "));
    if bandwidth {
        println!("  transfer size    {}", fmt_size(o.transfer));
        println!("  block size       {} per rank", fmt_size(o.block));
        println!("  segments         {}", o.segments);
        println!("  data per rank    {}  (aggregate {})", fmt_size(per_rank), fmt_size(per_rank * ctx.size as u64));
    }
    if o.meta {
        println!("  files per rank   {} (meta)", o.files);
    }
    if o.dirs {
        println!("  dirs per rank    {} (mkdir, dir stat, rmdir)", o.dir_count);
        println!("  listed files     {} per rank, in one directory (readdir)", o.readdir_files);
        println!("  renames per rank {} (rename)", o.renames);
    }
    if o.small {
        println!("  small files      {} per rank of {} B each, in one directory (small)", o.small_files, o.small_size);
    }
    println!("  chunk size       {chunk}");
    println!("  iterations       {} (best reported)", o.iterations);
    // The small files' bytes are compared as the bandwidth patterns' are.
    let verify = match (o.verify, bandwidth || o.small, o.dirs) {
        (false, ..) => "off",
        (true, true, true) => "every byte after each read phase, every name after each listing (untimed)",
        (true, true, false) => "every byte, in an untimed pass after each read phase",
        (true, false, _) => "every result, untimed; every listed name in a second listing",
    };
    println!("  verify           {verify}");
    if bandwidth {
        println!("  fsync on write   {}", if o.fsync { "yes" } else { "no" });
    }
    println!(
        "  POSIX directory  {posix_root}{}",
        if setup.shared { "" } else { "  (not shared by all ranks: cross-rank POSIX patterns skipped)" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_the_largest_exact_unit() {
        assert_eq!(fmt_size(64 << 20), "64 MiB");
        assert_eq!(fmt_size(1536 << 10), "1536 KiB");
        assert_eq!(fmt_size(2 << 40), "2 TiB");
        assert_eq!(fmt_size(1000), "1000 B");
    }
}
