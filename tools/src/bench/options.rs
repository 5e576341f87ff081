//! The command line: options, their defaults and checks, and the `--help` text.
//!
//! Parsed with lexopt: it has no dependencies, splits `--name value` and `--name=value` and
//! leaves the values to us, which is all these options need.

use std::ffi::OsString;

use lexopt::prelude::*;

pub const USAGE: &str = "benchfs-bench: IOR/mdtest-like comparison of BenchFS with a local POSIX directory

usage: mpirun -np N benchfs-bench [options]

  --mode fpp|shared|meta|dirs|small|all|latency|scaling
                              patterns to run (default all: every one but latency,
                              which times single remote operations while the other
                              ranks idle, it needs 2 ranks or more; and scaling,
                              which reports init and finalize times, memory per rank
                              and single operations of every kind, for fitting
                              against the number of ranks)
  --transfer SIZE             size of one read or write (default 1M; a multiple of 8)
  --block SIZE                bytes per rank and segment (default 64M; a multiple of --transfer)
  --segments N                segments (default 1)
  --files N                   files per rank in meta mode (default 2000)
  --dirs N                    directories per rank for mkdir/dir stat/rmdir (default 2000)
  --readdir-files N           files per rank in the shared directory that readdir lists
                              (default 5000)
  --renames N                 files per rank that rename moves (default 2000)
  --small-files N             files per rank in small mode (default 2000)
  --small-size SIZE           bytes of each file in small mode (default 3901, as in
                              IO500's mdtest-hard; 16 to 16M)
  --latency-ops N             timed operations of each kind in latency and scaling modes
                              (default 2000)
  --scaling-entries N         entries of the directory that scaling mode lists (default 10000)
  --posix-dir DIR             POSIX directory to compare with
                              (default /dev/shm/benchfs-bench-posix-<job id or pid of rank 0>)
  --iterations N              repeat every pattern N times and report the best (default 1)
  --no-verify                 skip the untimed checks: every byte read back, every name
                              listed, the state after mkdir/rmdir/rename (lengths, stamps,
                              stat types and listed entry counts are still checked)
  --fsync                     fsync before close in write phases
  --help                      this text

SIZE accepts a suffix k, m or g (powers of 1024).
Environment: BENCHFS_CHUNK_SIZE and the other BENCHFS_* variables configure BenchFS itself;
BENCHFS_STATS=1 ends the run with BenchFS's per-operation statistics.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub fpp: bool,
    pub shared: bool,
    pub meta: bool,
    pub dirs: bool,
    pub small: bool,
    pub latency: bool,
    pub scaling: bool,
    pub transfer: u64,
    pub block: u64,
    pub segments: u64,
    pub files: u64,
    pub dir_count: u64,
    pub readdir_files: u64,
    pub renames: u64,
    pub small_files: u64,
    pub small_size: u64,
    pub latency_ops: u64,
    pub scaling_entries: u64,
    pub posix_dir: Option<String>,
    pub iterations: u32,
    pub verify: bool,
    pub fsync: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fpp: true,
            shared: true,
            meta: true,
            dirs: true,
            small: true,
            latency: false,
            scaling: false,
            transfer: 1 << 20,
            block: 64 << 20,
            segments: 1,
            files: 2000,
            dir_count: 2000,
            readdir_files: 5000,
            renames: 2000,
            small_files: 2000,
            small_size: 3901,
            latency_ops: 2000,
            scaling_entries: 10000,
            posix_dir: None,
            iterations: 1,
            verify: true,
            fsync: false,
        }
    }
}

impl Options {
    /// The constraints between options that the patterns rely on.
    fn check(&self) -> Result<(), String> {
        if self.transfer == 0 || self.transfer % 8 != 0 {
            return Err("--transfer must be a positive multiple of 8".into());
        }
        if self.block == 0 || self.block % self.transfer != 0 {
            return Err("--block must be a positive multiple of --transfer".into());
        }
        if self.transfer > usize::MAX as u64 / 4 {
            return Err("--transfer is too large for this machine".into());
        }
        if !(16..=16 << 20).contains(&self.small_size) {
            return Err("--small-size must lie between 16 and 16M".into());
        }
        if self.latency_ops == 0 {
            return Err("--latency-ops must be at least 1".into());
        }
        if self.segments == 0 || self.iterations == 0 {
            return Err("--segments and --iterations must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// The patterns `--mode` selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Modes {
    fpp: bool,
    shared: bool,
    meta: bool,
    dirs: bool,
    small: bool,
    latency: bool,
    scaling: bool,
}

fn mode(text: &str) -> Result<Modes, String> {
    let none = Modes::default();
    match text {
        "fpp" => Ok(Modes { fpp: true, ..none }),
        "shared" => Ok(Modes { shared: true, ..none }),
        "meta" => Ok(Modes { meta: true, ..none }),
        "dirs" => Ok(Modes { dirs: true, ..none }),
        "small" => Ok(Modes { small: true, ..none }),
        "all" => Ok(Modes { fpp: true, shared: true, meta: true, dirs: true, small: true, ..none }),
        "latency" => Ok(Modes { latency: true, ..none }),
        "scaling" => Ok(Modes { scaling: true, ..none }),
        _ => Err("expected fpp, shared, meta, dirs, small, all, latency or scaling".into()),
    }
}

fn size(text: &str) -> Result<u64, String> {
    benchfs::parse_size(text).ok_or_else(|| "expected a number with an optional k, m or g suffix".into())
}

fn count<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| "expected a whole number in range".into())
}

/// The value of option `name`, converted by `parse`; an error names the option and the value.
fn value<T>(parser: &mut lexopt::Parser, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, lexopt::Error> {
    parser.value()?.parse_with(parse).map_err(|e| format!("{name}: {e}").into())
}

/// Parses the arguments after the program name.
pub fn parse_options(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Parsed, lexopt::Error> {
    let mut o = Options::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Long("no-verify") => o.verify = false,
            Long("fsync") => o.fsync = true,
            Long("mode") => {
                let m = value(&mut parser, "--mode", mode)?;
                (o.fpp, o.shared, o.meta, o.dirs, o.small, o.latency, o.scaling) =
                    (m.fpp, m.shared, m.meta, m.dirs, m.small, m.latency, m.scaling);
            }
            Long("transfer") => o.transfer = value(&mut parser, "--transfer", size)?,
            Long("block") => o.block = value(&mut parser, "--block", size)?,
            Long("segments") => o.segments = value(&mut parser, "--segments", count)?,
            Long("files") => o.files = value(&mut parser, "--files", count)?,
            Long("dirs") => o.dir_count = value(&mut parser, "--dirs", count)?,
            Long("readdir-files") => o.readdir_files = value(&mut parser, "--readdir-files", count)?,
            Long("renames") => o.renames = value(&mut parser, "--renames", count)?,
            Long("small-files") => o.small_files = value(&mut parser, "--small-files", count)?,
            Long("small-size") => o.small_size = value(&mut parser, "--small-size", size)?,
            Long("latency-ops") => o.latency_ops = value(&mut parser, "--latency-ops", count)?,
            Long("scaling-entries") => o.scaling_entries = value(&mut parser, "--scaling-entries", count)?,
            Long("posix-dir") => o.posix_dir = Some(parser.value()?.string()?),
            Long("iterations") => o.iterations = value(&mut parser, "--iterations", count)?,
            _ => return Err(arg.unexpected()),
        }
    }
    o.check()?;
    Ok(Parsed::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        match parse_options(args.iter().copied()) {
            Ok(Parsed::Run(o)) => Ok(o),
            Ok(Parsed::Help) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let o = Options::default();
        assert!(o.fpp && o.shared && o.meta && o.dirs && o.small && o.verify && !o.fsync);
        assert_eq!((o.small_files, o.small_size), (2000, 3901));
        assert_eq!((o.transfer, o.block, o.segments, o.iterations), (1 << 20, 64 << 20, 1, 1));
    }

    #[test]
    fn every_option() {
        let o = parse(&[
            "--mode",
            "shared",
            "--transfer",
            "64k",
            "--block=4M",
            "--segments",
            "3",
            "--files",
            "10",
            "--dirs",
            "11",
            "--readdir-files",
            "12",
            "--renames",
            "13",
            "--small-files",
            "14",
            "--small-size",
            "4k",
            "--posix-dir",
            "/tmp/p",
            "--iterations",
            "2",
            "--no-verify",
            "--fsync",
        ])
        .unwrap();
        assert!(!o.fpp && o.shared && !o.meta && !o.dirs && !o.small);
        assert_eq!((o.small_files, o.small_size), (14, 4096));
        assert_eq!((o.transfer, o.block, o.segments), (64 << 10, 4 << 20, 3));
        assert_eq!((o.files, o.dir_count, o.readdir_files, o.renames, o.iterations), (10, 11, 12, 13, 2));
        assert_eq!(o.posix_dir.as_deref(), Some("/tmp/p"));
        assert!(!o.verify && o.fsync);
    }

    #[test]
    fn modes() {
        let modes = |m| {
            let o = parse(&["--mode", m]).unwrap();
            (o.fpp, o.shared, o.meta, o.dirs, o.small, o.latency, o.scaling)
        };
        assert_eq!(modes("fpp"), (true, false, false, false, false, false, false));
        assert_eq!(modes("shared"), (false, true, false, false, false, false, false));
        assert_eq!(modes("meta"), (false, false, true, false, false, false, false));
        assert_eq!(modes("dirs"), (false, false, false, true, false, false, false));
        assert_eq!(modes("small"), (false, false, false, false, true, false, false));
        assert_eq!(modes("all"), (true, true, true, true, true, false, false));
        assert_eq!(modes("latency"), (false, false, false, false, false, true, false));
        assert_eq!(modes("scaling"), (false, false, false, false, false, false, true));
        assert_eq!(parse(&["--scaling-entries", "7"]).unwrap().scaling_entries, 7);
        assert!(parse(&["--mode", "ior"]).unwrap_err().contains("--mode"));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--help"]), Err("help".into()));
        assert_eq!(parse(&["-h", "--bogus"]), Err("help".into()));
    }

    #[test]
    fn errors_name_the_option() {
        assert!(parse(&["--block", "12x"]).unwrap_err().contains("--block"));
        assert!(parse(&["--files", "-1"]).unwrap_err().contains("--files"));
        assert!(parse(&["--iterations", "5000000000"]).unwrap_err().contains("--iterations"));
        assert!(parse(&["--segments"]).unwrap_err().contains("--segments"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse(&["stray"]).unwrap_err().contains("stray"));
        assert!(parse(&["--fsync=yes"]).is_err());
    }

    #[test]
    fn constraints() {
        assert!(parse(&["--transfer", "12"]).unwrap_err().contains("multiple of 8"));
        assert!(parse(&["--transfer", "1M", "--block", "1536K"]).unwrap_err().contains("multiple of --transfer"));
        assert!(parse(&["--segments", "0"]).is_err());
        assert!(parse(&["--small-size", "15"]).unwrap_err().contains("--small-size"));
        assert!(parse(&["--small-size", "17M"]).unwrap_err().contains("--small-size"));
        assert!(parse(&["--small-size", "16"]).is_ok());
        assert!(parse(&["--iterations", "0"]).is_err());
        assert!(parse(&["--transfer", "1M", "--block", "1M"]).is_ok());
    }
}
