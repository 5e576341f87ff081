//! The command line: options, their defaults and checks, and the `--help` text.

pub fn usage() -> &'static str {
    "benchfs-bench: IOR/mdtest-like comparison of BenchFS with a local POSIX directory

usage: mpirun -np N benchfs-bench [options]

  --mode fpp|shared|meta|dirs|all
                              patterns to run (default all)
  --transfer SIZE             size of one read or write (default 1M; a multiple of 8)
  --block SIZE                bytes per rank and segment (default 64M; a multiple of --transfer)
  --segments N                segments (default 1)
  --files N                   files per rank in meta mode (default 2000)
  --dirs N                    directories per rank for mkdir/dir stat/rmdir (default 2000)
  --readdir-files N           files per rank in the shared directory that readdir lists
                              (default 5000)
  --renames N                 files per rank that rename moves (default 2000)
  --posix-dir DIR             POSIX directory to compare with
                              (default /dev/shm/benchfs-bench-posix-<job id or pid of rank 0>)
  --iterations N              repeat every pattern N times and report the best (default 1)
  --no-verify                 skip the untimed checks: every byte read back, every name
                              listed, the state after mkdir/rmdir/rename (lengths, stamps,
                              stat types and listed entry counts are still checked)
  --fsync                     fsync before close in write phases
  --help                      this text

SIZE accepts a suffix k, m, g or t (powers of 1024).
Environment: BENCHFS_CHUNK_SIZE and the other BENCHFS_* variables configure BenchFS itself."
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Options {
    pub fpp: bool,
    pub shared: bool,
    pub meta: bool,
    pub dirs: bool,
    pub transfer: u64,
    pub block: u64,
    pub segments: u64,
    pub files: u64,
    pub dir_count: u64,
    pub readdir_files: u64,
    pub renames: u64,
    pub posix_dir: Option<String>,
    pub iterations: u32,
    pub verify: bool,
    pub fsync: bool,
}

pub enum Parsed {
    Run(Options),
    Help,
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, shift) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 10),
        Some('m') => (&digits[..digits.len() - 1], 20),
        Some('g') => (&digits[..digits.len() - 1], 30),
        Some('t') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("size too large: {s:?}"))
}

pub fn parse_count(key: &str, s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{key}: not a number: {s:?}"))
}

pub fn parse_options(args: &[String]) -> Result<Parsed, String> {
    let mut o = Options {
        fpp: true,
        shared: true,
        meta: true,
        dirs: true,
        transfer: 1 << 20,
        block: 64 << 20,
        segments: 1,
        files: 2000,
        dir_count: 2000,
        readdir_files: 5000,
        renames: 2000,
        posix_dir: None,
        iterations: 1,
        verify: true,
        fsync: false,
    };
    let mut it = args.iter();
    while let Some(key) = it.next() {
        match key.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--no-verify" => o.verify = false,
            "--fsync" => o.fsync = true,
            "--mode" | "--transfer" | "--block" | "--segments" | "--files" | "--dirs" | "--readdir-files" | "--renames" | "--posix-dir"
            | "--iterations" => {
                let value = it.next().ok_or_else(|| format!("{key} needs a value"))?;
                match key.as_str() {
                    "--mode" => {
                        (o.fpp, o.shared, o.meta, o.dirs) = match value.as_str() {
                            "fpp" => (true, false, false, false),
                            "shared" => (false, true, false, false),
                            "meta" => (false, false, true, false),
                            "dirs" => (false, false, false, true),
                            "all" => (true, true, true, true),
                            _ => return Err(format!("--mode: unknown mode {value:?}")),
                        };
                    }
                    "--transfer" => o.transfer = parse_size(value)?,
                    "--block" => o.block = parse_size(value)?,
                    "--segments" => o.segments = parse_count(key, value)?,
                    "--files" => o.files = parse_count(key, value)?,
                    "--dirs" => o.dir_count = parse_count(key, value)?,
                    "--readdir-files" => o.readdir_files = parse_count(key, value)?,
                    "--renames" => o.renames = parse_count(key, value)?,
                    "--posix-dir" => o.posix_dir = Some(value.clone()),
                    "--iterations" => {
                        o.iterations = parse_count(key, value)?.try_into().map_err(|_| "--iterations: too large".to_string())?
                    }
                    _ => unreachable!(),
                }
            }
            _ => return Err(format!("unknown option {key:?} (see --help)")),
        }
    }
    if o.transfer == 0 || o.transfer % 8 != 0 {
        return Err("--transfer must be a positive multiple of 8".into());
    }
    if o.block == 0 || o.block % o.transfer != 0 {
        return Err("--block must be a positive multiple of --transfer".into());
    }
    if o.transfer > usize::MAX as u64 / 4 {
        return Err("--transfer is too large for this machine".into());
    }
    if o.segments == 0 || o.iterations == 0 {
        return Err("--segments and --iterations must be at least 1".into());
    }
    Ok(Parsed::Run(o))
}
