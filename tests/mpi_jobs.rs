//! End-to-end tests: real MPI jobs of 1 to 16 ranks on this machine, and of 8 ranks across the
//! 4 hosts of a simulated cluster (`tests/cluster.sh`; see [`Cluster`]).
//!
//! The C programs in `tests/c/` are built the way a user builds against an
//! installed BenchFS (`make install-only`, then `mpicc` with the flags of
//! `pkg-config --cflags --libs benchfs`) and run under `mpirun`; so are the
//! Rust self-check examples, and one job attaches to another through its
//! contact file. Every program verifies each byte it reads and
//! ends with a `<name>: P passed, F failed` line; a job passes only if it
//! exits 0, prints that line with `0 failed`, finishes within
//! [`JOB_TIMEOUT`] and leaves no chunk files behind.
//!
//! Jobs run one at a time (see [`serial`]): a 4-rank job already
//! oversubscribes a small machine, and two at once would turn timing into
//! flakiness.
//!
//! `mpirun`, `mpicc`, `pkg-config`, `make` and `nm` are required; a missing
//! one fails the tests with a message saying what to install.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Longest a single `mpirun` job may take before it is killed and failed.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// How a job's ranks are configured.
#[derive(Clone, Copy)]
struct Settings {
    /// `BENCHFS_CHUNK_SIZE`, or the library's default.
    chunk: Option<u64>,
    /// `BENCHFS_NODE_LOCAL`: false makes all chunk data cross UCX even between ranks of one node,
    /// which is how every data path of a multi-node job gets exercised on one machine.
    node_local: bool,
    /// Every rank gets storage of its own (a private tmpfs over `BENCHFS_DATA_DIR`, in a mount
    /// namespace of its own) under the one host name: cloned machines or containers that share
    /// a host name but not a file system.
    split_storage: bool,
    /// The whole job shares one small tmpfs of this many MiB over `BENCHFS_DATA_DIR` (in a
    /// mount namespace of the job's own), so that storage runs full.
    small_store_mib: Option<u32>,
    /// `BENCHFS_SHARED_RECORDS`, or the library's default.
    shared_records: Option<u32>,
    /// The ranks run with the installed `libbenchfs-preload.so` in `LD_PRELOAD` (mpirun itself
    /// without it).
    preload: bool,
}

const DEFAULT: Settings =
    Settings { chunk: None, node_local: true, split_storage: false, small_store_mib: None, shared_records: None, preload: false };
/// Many chunks with small files.
const SMALL: Settings =
    Settings { chunk: Some(65536), node_local: true, split_storage: false, small_store_mib: None, shared_records: None, preload: false };
/// All chunk data through the transport.
const TRANSPORTED: Settings =
    Settings { chunk: None, node_local: false, split_storage: false, small_store_mib: None, shared_records: None, preload: false };
const SMALL_TRANSPORTED: Settings =
    Settings { chunk: Some(65536), node_local: false, split_storage: false, small_store_mib: None, shared_records: None, preload: false };
/// Small chunks, each rank on storage of its own under one host name.
const SMALL_SPLIT: Settings =
    Settings { chunk: Some(65536), node_local: true, split_storage: true, small_store_mib: None, shared_records: None, preload: false };
/// Large chunks, all through the transport: for incast.
const BIG_TRANSPORTED: Settings =
    Settings { chunk: Some(8 << 20), node_local: false, split_storage: false, small_store_mib: None, shared_records: None, preload: false };
/// Small chunks on one 24 MiB store that the whole job shares.
const SMALL_FULL: Settings = Settings {
    chunk: Some(65536),
    node_local: true,
    split_storage: false,
    small_store_mib: Some(24),
    shared_records: None,
    preload: false,
};
/// Shared record tables of at most 16,384 slots, which start at 4096 and so grow in tests.
const GROWING_TABLES: Settings = Settings { shared_records: Some(16384), ..DEFAULT };
/// Unmodified programs with the preload library.
const PRELOADED: Settings = Settings { preload: true, ..DEFAULT };
/// The same, with all chunk data through the transport.
const PRELOADED_TRANSPORTED: Settings = Settings { preload: true, ..TRANSPORTED };
/// Environment variables of the library that a job must not inherit from
/// the caller, so that each run sees exactly the configuration it sets.
const LIBRARY_ENV: &[&str] = &[
    "BENCHFS_DATA_DIR",
    "BENCHFS_CHUNK_SIZE",
    "BENCHFS_KEEP_DATA",
    "BENCHFS_CONTACT_FILE",
    "BENCHFS_NODE_LOCAL",
    "BENCHFS_SHARED_RECORDS",
    "BENCHFS_MOUNT",
    "LD_PRELOAD",
];

static JOB_LOCK: Mutex<()> = Mutex::new(());

/// Serialises the jobs. A test that panicked while holding the lock has
/// already reported its failure; the next one may still run.
fn serial() -> MutexGuard<'static, ()> {
    JOB_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Where cargo put things
// ---------------------------------------------------------------------------

/// The directories of the build this test binary belongs to.
struct BuildDirs {
    /// `target/<profile>` (or `target/<triple>/<profile>`).
    profile_dir: PathBuf,
    /// Parent of `profile_dir`: what `CARGO_TARGET_DIR` means to the Makefile.
    target_dir: PathBuf,
    /// `debug`, `release` or a custom profile's name.
    profile: String,
}

fn build_dirs() -> &'static BuildDirs {
    static DIRS: OnceLock<BuildDirs> = OnceLock::new();
    DIRS.get_or_init(|| {
        // This binary is target/<profile>/deps/mpi_jobs-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("test binary has a parent directory");
        let profile_dir = deps.parent().expect("deps/ has a parent directory").to_path_buf();
        let target_dir = profile_dir.parent().expect("profile dir has a parent").to_path_buf();
        let profile = profile_dir.file_name().and_then(OsStr::to_str).expect("profile directory name is UTF-8").to_string();
        BuildDirs { profile_dir, target_dir, profile }
    })
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Directory holding the library files of the current build.
///
/// `cargo test` builds the cdylib and staticlib into `deps/` without copying
/// them up to `target/<profile>/` (only `cargo build` does), so the copy in
/// the profile directory may be missing or left over from an older build:
/// take whichever `libbenchfs.so` is newer.
fn artifact_dir() -> Result<PathBuf, String> {
    let dirs = build_dirs();
    let deps = dirs.profile_dir.join("deps");
    let candidates = [deps, dirs.profile_dir.clone()];
    candidates
        .iter()
        .filter(|d| d.join("libbenchfs.so").is_file() && d.join("libbenchfs.a").is_file())
        .max_by_key(|d| mtime(&d.join("libbenchfs.so")))
        .cloned()
        .ok_or_else(|| {
            format!(
                "libbenchfs.so/libbenchfs.a not found in {} or {}/deps; Cargo.toml must keep \
                 crate-type = [\"rlib\", \"cdylib\", \"staticlib\"] so that cargo builds them",
                dirs.profile_dir.display(),
                dirs.profile_dir.display()
            )
        })
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// Scratch space
// ---------------------------------------------------------------------------

/// `$TMPDIR/benchfs-tests-<pid>`: install prefix, binaries, job data dirs.
/// Directories left by earlier test processes that no longer run are
/// removed first, so repeated runs do not fill the disk.
fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("benchfs-tests-")) else {
                    continue;
                };
                let alive = pid.parse::<u32>().map(|p| Path::new(&format!("/proc/{p}")).exists());
                if alive == Ok(false) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let root = tmp.join(format!("benchfs-tests-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("create scratch directory");
        root
    })
}

static JOB_COUNTER: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

fn require_tool(tool: &str) -> Result<PathBuf, String> {
    find_in_path(tool).ok_or_else(|| {
        format!(
            "`{tool}` is not on PATH. These tests need Open MPI (mpirun, mpicc), pkg-config, make \
             and binutils; on Debian: apt-get install openmpi-bin libopenmpi-dev libucx-dev \
             pkg-config make binutils (.ci/run does this)"
        )
    })
}

/// Runs a short command to completion; its failure is an error with output.
fn run_checked(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------
// Install and compile
// ---------------------------------------------------------------------------

struct Installed {
    prefix: PathBuf,
    bin_dir: PathBuf,
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let out = run_checked(Command::new("pkg-config").args(args).arg("benchfs").env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")))?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// `make install-only` into a fresh prefix, then checks the installed layout.
fn install(prefix: &Path) -> Result<(), String> {
    require_tool("make")?;
    require_tool("pkg-config")?;
    build_package_target("benchfs-preload", &["--lib"])?;
    let dirs = build_dirs();
    let artifacts = artifact_dir()?;
    run_checked(
        Command::new("make")
            .current_dir(manifest_dir())
            .arg("--no-print-directory")
            .arg("install-only")
            .arg(format!("PREFIX={}", prefix.display()))
            .arg(format!("PROFILE={}", dirs.profile))
            .arg(format!("ARTIFACT_DIR={}", artifacts.display()))
            .env("CARGO_TARGET_DIR", &dirs.target_dir),
    )?;
    for file in ["lib/libbenchfs.so", "lib/libbenchfs.a", "lib/libbenchfs-preload.so", "include/benchfs.h", "lib/pkgconfig/benchfs.pc"] {
        if !prefix.join(file).is_file() {
            return Err(format!("make install-only did not install {file} into {}", prefix.display()));
        }
    }
    let flags = pkg_config(prefix, &["--cflags", "--libs"])?;
    let want = [format!("-I{}/include", prefix.display()), format!("-L{}/lib", prefix.display()), "-lbenchfs".to_string()];
    for w in &want {
        if !flags.contains(w) {
            return Err(format!("pkg-config --cflags --libs benchfs gave {flags:?}, missing {w}"));
        }
    }
    Ok(())
}

/// Compiles `tests/c/<program>.c` into `<bin_dir>/<program><suffix>` with
/// `flags` (default: `pkg-config --cflags --libs benchfs`) and an rpath to
/// the prefix, as a user of an installed BenchFS would.
fn compile_c(installed: &Installed, program: &str, suffix: &str, flags: Option<Vec<String>>) -> Result<PathBuf, String> {
    let source = manifest_dir().join("tests/c").join(format!("{program}.c"));
    let exe = installed.bin_dir.join(format!("{program}{suffix}"));
    let link = match flags {
        Some(flags) => flags,
        None => pkg_config(&installed.prefix, &["--cflags", "--libs"])?,
    };
    run_checked(
        Command::new("mpicc")
            .args(["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-pthread", "-o"])
            .arg(&exe)
            .arg(&source)
            .args(&link)
            .arg(format!("-Wl,-rpath,{}/lib", installed.prefix.display())),
    )?;
    Ok(exe)
}

/// Compiles `tests/unmodified/<program>.c` the way any MPI program is built: plain `mpicc`,
/// without BenchFS's header or library.
fn compile_unmodified(installed: &Installed, program: &str) -> Result<PathBuf, String> {
    let source = manifest_dir().join("tests/unmodified").join(format!("{program}.c"));
    let exe = installed.bin_dir.join(program);
    run_checked(Command::new("mpicc").args(["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-pthread", "-o"]).arg(&exe).arg(&source))?;
    Ok(exe)
}

/// Names of the `tests/c/*.c` programs, sorted.
fn c_programs() -> Result<Vec<String>, String> {
    c_sources("tests/c")
}

/// Names of the C programs in `dir` (relative to the repository), sorted.
fn c_sources(dir: &str) -> Result<Vec<String>, String> {
    let dir = manifest_dir().join(dir);
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".c").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn setup() -> Result<Installed, String> {
    require_tool("mpicc")?;
    require_tool("mpirun")?;
    let root = scratch_root();
    let installed = Installed { prefix: root.join("prefix"), bin_dir: root.join("bin") };
    install(&installed.prefix)?;
    fs::create_dir_all(&installed.bin_dir).map_err(|e| e.to_string())?;
    // Every program in tests/c/ is built, so that one that no longer
    // compiles against the header fails even if no test runs it yet.
    let c = c_programs()?;
    for program in &c {
        compile_c(&installed, program, "", None)?;
    }
    for program in c_sources("tests/unmodified")? {
        if c.contains(&program) {
            return Err(format!("tests/unmodified/{program}.c and tests/c/{program}.c would build the same binary; rename one"));
        }
        compile_unmodified(&installed, &program)?;
    }
    Ok(installed)
}

/// The shared installation; a setup failure fails every test that needs it.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    match INSTALLED.get_or_init(setup) {
        Ok(installed) => installed,
        Err(e) => panic!("test setup failed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Running a job
// ---------------------------------------------------------------------------

struct Job {
    command: String,
    status: Option<ExitStatus>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    leftover_files: Vec<PathBuf>,
}

/// Parent pid of every process, from /proc.
fn process_parents() -> HashMap<i32, i32> {
    let mut parents = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; the parent
        // pid is the second field after the closing one.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parents.insert(pid, ppid);
        }
    }
    parents
}

fn descendants(root: i32) -> Vec<i32> {
    let parents = process_parents();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|&(_, &pp)| pp == p).map(|(&c, _)| c));
        i += 1;
    }
    found
}

/// Ends a job that overran: asks mpirun to stop its ranks, then kills the
/// whole tree. The ranks may sit in their own process groups, so the tree
/// is collected from /proc before anything is signalled.
fn kill_job(pid: i32) {
    let tree = descendants(pid);
    // SAFETY: plain kill(2) calls on pids of this job's process tree.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    thread::sleep(Duration::from_secs(2));
    for p in tree {
        // SAFETY: as above; a pid that already exited gives ESRCH.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
    // SAFETY: the job was started in its own process group with id `pid`.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

fn regular_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => regular_files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// The caller's `LD_LIBRARY_PATH` minus cargo's target directory.
///
/// `cargo test` puts `target/<profile>` and its `deps/` first in
/// `LD_LIBRARY_PATH`, which the dynamic loader searches before the
/// programs' RUNPATH: the C programs would load whatever (possibly stale)
/// `libbenchfs.so` lies there instead of the installed one under test.
fn library_path_without_target_dir() -> std::ffi::OsString {
    let target = &build_dirs().target_dir;
    let current = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&current).filter(|p| !p.as_os_str().is_empty() && !p.starts_with(target)).collect();
    std::env::join_paths(kept).unwrap_or_default()
}

/// Where a job's chunk store is, and how to find what it left there.
enum Store {
    /// A fresh directory of this test's, removed after the job.
    Here(PathBuf),
    /// A fresh directory in the private store of each host of a simulated cluster, removed
    /// after the job.
    Hosts { state: PathBuf, hosts: u32, dir: PathBuf },
}

impl Store {
    fn base(&self) -> PathBuf {
        match self {
            Store::Here(dir) => dir.clone(),
            Store::Hosts { dir, .. } => dir.clone(),
        }
    }

    /// Runs `cmd args` on every host of a cluster; returns what each printed, by host name.
    fn on_each_host(state: &Path, hosts: u32, cmd: &[&OsStr]) -> Vec<(String, Result<String, String>)> {
        (0..hosts)
            .map(|host| {
                let name = format!("h{host}");
                let out = run_checked(Command::new(cluster_script()).arg("exec").arg(state).arg(&name).args(cmd));
                (name, out)
            })
            .collect()
    }

    /// The regular files in the store, after a job; the local one is removed.
    fn take_leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        match self {
            Store::Here(dir) => {
                regular_files_under(dir, &mut found);
                let _ = fs::remove_dir_all(dir);
            }
            Store::Hosts { state, hosts, dir } => {
                let find = [OsStr::new("find"), dir.as_os_str(), OsStr::new("-type"), OsStr::new("f")];
                for (host, out) in Store::on_each_host(state, *hosts, &find) {
                    match out {
                        Ok(out) => found.extend(out.lines().map(|l| PathBuf::from(format!("{host}:{l}")))),
                        Err(e) => found.push(PathBuf::from(format!("{host}: cannot list the store: {e}"))),
                    }
                }
                let _ = Store::on_each_host(state, *hosts, &[OsStr::new("rm"), OsStr::new("-rf"), dir.as_os_str()]);
            }
        }
        found
    }
}

/// Where a job runs.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// On this machine, as one host.
    Here,
    /// Across the hosts of a simulated cluster, ranks dealt out to them in turn.
    Hosts(&'a Cluster),
}

/// A job that has been started and not yet waited for.
struct RunningJob {
    child: Child,
    command: String,
    store: Store,
    out_path: PathBuf,
    err_path: PathBuf,
}

/// Starts `exe args` on `np` ranks with a fresh data directory, the given
/// settings and the extra environment.
fn spawn_job(exe: &Path, args: &[&str], np: u32, settings: Settings, extra_env: &[(&str, &Path)]) -> RunningJob {
    spawn_job_at(Place::Here, exe, args, np, settings, extra_env)
}

/// The command that starts `mpirun` at `place`, with the store the job is to use.
fn launcher(place: Place, settings: Settings, n: usize) -> (Command, Store) {
    match place {
        Place::Hosts(cluster) => {
            assert!(!settings.split_storage && settings.small_store_mib.is_none(), "every simulated host has a store of its own");
            let mut cmd = Command::new(cluster_script());
            cmd.arg("mpirun").arg(&cluster.state).args(["--map-by", "node"]);
            match cluster.transports {
                Transports::Tcp => {
                    cmd.env("UCX_TLS", "tcp,self").args(["-x", "UCX_TLS"]);
                }
                Transports::Default => {
                    cmd.env_remove("UCX_TLS");
                }
            }
            let dir = Cluster::store_of(&cluster.state).join(format!("job{n}"));
            for (host, out) in Store::on_each_host(&cluster.state, cluster.hosts, &[OsStr::new("mkdir"), dir.as_os_str()]) {
                out.unwrap_or_else(|e| panic!("cannot make the job's store on {host}: {e}"));
            }
            (cmd, Store::Hosts { state: cluster.state.clone(), hosts: cluster.hosts, dir })
        }
        Place::Here => {
            let data_dir = scratch_root().join(format!("job{n}-data"));
            let _ = fs::remove_dir_all(&data_dir);
            fs::create_dir_all(&data_dir).expect("create job data directory");
            let cmd = match settings.small_store_mib {
                Some(mib) => {
                    // Needs root (CI runs as root), as the namespace test setups do.
                    let mut cmd = Command::new("unshare");
                    cmd.args(["--mount", "--propagation", "private", "sh", "-c"]);
                    cmd.arg(format!("mount -t tmpfs -o size={mib}m benchfs-small \"$BENCHFS_DATA_DIR\" && exec \"$0\" \"$@\""));
                    cmd.arg("mpirun");
                    cmd
                }
                None => Command::new("mpirun"),
            };
            (cmd, Store::Here(data_dir))
        }
    }
}

/// Starts `exe args` on `np` ranks at `place`.
fn spawn_job_at(place: Place, exe: &Path, args: &[&str], np: u32, settings: Settings, extra_env: &[(&str, &Path)]) -> RunningJob {
    let n = JOB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let root = scratch_root();
    let out_path = root.join(format!("job{n}.stdout"));
    let err_path = root.join(format!("job{n}.stderr"));

    let (mut cmd, store) = launcher(place, settings, n);
    cmd.args(["--oversubscribe", "-np", &np.to_string()]);
    for var in LIBRARY_ENV {
        cmd.env_remove(var);
    }
    cmd.env("LD_LIBRARY_PATH", library_path_without_target_dir());
    cmd.env("BENCHFS_DATA_DIR", store.base());
    let mut forwarded = vec!["BENCHFS_DATA_DIR"];
    if let Some(chunk) = settings.chunk {
        cmd.env("BENCHFS_CHUNK_SIZE", chunk.to_string());
        forwarded.push("BENCHFS_CHUNK_SIZE");
    }
    if let Some(slots) = settings.shared_records {
        cmd.env("BENCHFS_SHARED_RECORDS", slots.to_string());
        forwarded.push("BENCHFS_SHARED_RECORDS");
    }
    if !settings.node_local {
        cmd.env("BENCHFS_NODE_LOCAL", "0");
        forwarded.push("BENCHFS_NODE_LOCAL");
    }
    for &(var, value) in extra_env {
        cmd.env(var, value);
        forwarded.push(var);
    }
    // Local ranks inherit mpirun's environment anyway; -x makes the
    // forwarding explicit for launchers that do not.
    for var in forwarded {
        cmd.args(["-x", var]);
    }
    if settings.preload {
        // The ranks only: mpirun and its daemons run without it.
        cmd.arg("-x").arg(format!("LD_PRELOAD={}", installed().prefix.join("lib/libbenchfs-preload.so").display()));
    }
    if settings.split_storage {
        // Needs root (CI runs as root), as the namespace test setups do.
        cmd.args(["unshare", "--mount", "--propagation", "private", "sh", "-c"]);
        cmd.arg("mount -t tmpfs benchfs-split \"$BENCHFS_DATA_DIR\" && exec \"$0\" \"$@\"");
    }
    cmd.arg(exe).args(args);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .process_group(0);
    // The Debug form lists the changed environment variables too.
    let command = format!("{cmd:?}");
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start {command}: {e}"),
    };
    RunningJob { child, command, store, out_path, err_path }
}

impl RunningJob {
    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the job, killing it after `timeout`, and collects what it
    /// printed and left in its data directory.
    fn wait(mut self, timeout: Duration) -> Job {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    kill_job(self.child.id() as i32);
                    break self.child.wait().ok();
                }
                Ok(None) => thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("waiting for {}: {e}", self.command),
            }
        };

        let job = Job {
            command: self.command,
            status,
            timed_out,
            stdout: read_lossy(&self.out_path),
            stderr: read_lossy(&self.err_path),
            leftover_files: self.store.take_leftovers(),
        };
        let _ = fs::remove_file(&self.out_path);
        let _ = fs::remove_file(&self.err_path);
        job
    }
}

/// Runs `exe args` on `np` ranks with a fresh data directory.
fn run_job(exe: &Path, args: &[&str], np: u32, settings: Settings) -> Job {
    spawn_job(exe, args, np, settings, &[]).wait(JOB_TIMEOUT)
}

/// Parses `P passed, F failed` (optionally after one `word:` and followed
/// by more `, ...` fields) into `(P, F)`.
fn parse_summary(line: &str) -> Option<(u64, u64)> {
    let line = line.trim();
    let body = match line.split_once(": ") {
        Some((head, rest)) if !head.contains(char::is_whitespace) => rest,
        _ => line,
    };
    let mut fields = body.split(", ");
    let passed = fields.next()?.strip_suffix(" passed")?.parse().ok()?;
    let failed = fields.next()?.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

/// Keeps the end of a long output: that is where the failure usually is.
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// What is wrong with a finished job; `want_summary` for the programs that
/// print a `P passed, F failed` line.
fn job_problems(job: &Job, want_summary: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if job.timed_out {
        problems.push(format!("did not finish within {} s and was killed", JOB_TIMEOUT.as_secs()));
    }
    match job.status {
        Some(s) if s.success() => {}
        Some(s) => problems.push(format!("exited with {s}")),
        None => problems.push("exit status unknown".to_string()),
    }
    if want_summary {
        match job.stdout.lines().filter_map(parse_summary).next_back() {
            None => problems.push("printed no `P passed, F failed` summary line".to_string()),
            Some((_, failed)) if failed > 0 => problems.push(format!("reported {failed} failed checks")),
            Some((0, 0)) => problems.push("reported 0 passed checks".to_string()),
            Some(_) => {}
        }
    }
    if !job.leftover_files.is_empty() {
        let shown: Vec<_> = job.leftover_files.iter().take(10).map(|p| p.display().to_string()).collect();
        problems.push(format!("left {} files in BENCHFS_DATA_DIR after benchfs_finalize, e.g. {shown:?}", job.leftover_files.len()));
    }
    problems
}

/// A failure report: what went wrong, the command, and the job's output.
fn job_report(name: &str, job: &Job, problems: &[String]) -> String {
    format!(
        "{name}: {}\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        problems.join("; "),
        job.command,
        tail(&job.stdout, 20000),
        tail(&job.stderr, 20000)
    )
}

fn check_job(name: &str, job: &Job) {
    let problems = job_problems(job, true);
    if !problems.is_empty() {
        panic!("{}", job_report(name, job, &problems));
    }
}

fn run_c(program: &str, np: u32, settings: Settings, args: &[&str]) {
    let _guard = serial();
    let installed = installed();
    let exe = installed.bin_dir.join(program);
    let job = run_job(&exe, args, np, settings);
    check_job(&format!("{program} on {np} ranks"), &job);
}

/// The binary of `examples/<example>.rs`; panics with a hint if it is missing.
fn example_binary(example: &str) -> PathBuf {
    let exe = build_dirs().profile_dir.join("examples").join(example);
    if !exe.is_file() {
        panic!(
            "example binary {} not found: it comes from examples/{example}.rs, which `cargo test` \
             builds (a filtered run such as `cargo test --test mpi_jobs` does not: run \
             `cargo build --examples` first)",
            exe.display()
        );
    }
    exe
}

/// A binary of the `benchfs-tools` crate, built for this test's profile into this test's target
/// directory.
///
/// Cargo tells integration tests only where the binaries of their own package are, and
/// `cargo test` need not have built the tools' binaries (a filtered run such as
/// `cargo test --test mpi_jobs` does not), so the test builds the one it needs itself. When it is
/// up to date this costs one cargo invocation that compiles nothing.
fn tool_binary(bin: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = build_dirs().profile_dir.join(bin);
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if built.iter().any(|b| b == bin) {
        return exe;
    }
    build_package_target("benchfs-tools", &["--bin", bin]).unwrap_or_else(|e| panic!("cannot build {bin} from tools/: {e}"));
    if !exe.is_file() {
        panic!("cargo built {bin} but {} does not exist", exe.display());
    }
    built.push(bin.to_string());
    exe
}

/// Builds `target` (`--bin NAME`, `--lib`) of workspace package `package` for this test's
/// profile into this test's target directory.
fn build_package_target(package: &str, target: &[&str]) -> Result<String, String> {
    let dirs = build_dirs();
    // The profile directory of the built-in "dev" profile is called "debug".
    let profile = if dirs.profile == "debug" { "dev" } else { dirs.profile.as_str() };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .current_dir(manifest_dir())
            .args(["build", "--quiet", "--package", package])
            .args(target)
            .args(["--profile", profile])
            .env("CARGO_TARGET_DIR", &dirs.target_dir),
    )
}

fn run_example(example: &str, np: u32, settings: Settings, args: &[&str]) {
    let _guard = serial();
    require_tool("mpirun").unwrap_or_else(|e| panic!("{e}"));
    let exe = example_binary(example);
    let job = run_job(&exe, args, np, settings);
    check_job(&format!("example {example} on {np} ranks"), &job);
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

macro_rules! mpi_test {
    ($name:ident, $job:expr) => {
        #[test]
        fn $name() {
            $job;
        }
    };
}

mpi_test!(cross_rank_np1, run_c("cross_rank", 1, DEFAULT, &[]));
mpi_test!(cross_rank_np2_small_chunks_transported, run_c("cross_rank", 2, SMALL_TRANSPORTED, &[]));
mpi_test!(cross_rank_np4_small_chunks_transported, run_c("cross_rank", 4, SMALL_TRANSPORTED, &[]));
mpi_test!(cross_rank_np4, run_c("cross_rank", 4, DEFAULT, &[]));

mpi_test!(shared_file_np1_small_chunks, run_c("shared_file", 1, SMALL, &[]));
mpi_test!(shared_file_np2, run_c("shared_file", 2, DEFAULT, &[]));
mpi_test!(shared_file_np4_small_chunks_transported, run_c("shared_file", 4, SMALL_TRANSPORTED, &[]));
mpi_test!(shared_file_np4, run_c("shared_file", 4, DEFAULT, &[]));

mpi_test!(bad_input_np1, run_c("bad_input", 1, DEFAULT, &[]));
mpi_test!(bad_input_np2, run_c("bad_input", 2, SMALL, &[]));
mpi_test!(bad_input_np4, run_c("bad_input", 4, DEFAULT, &[]));

/// The rows of a `BENCHFS_STATS=1` summary (in a job's stderr) for requests of opcode `op`
/// served: `server <op> <count> ...`.
fn served_rows<'a>(stderr: &'a str, op: &'a str) -> impl Iterator<Item = &'a str> {
    stderr.lines().filter(move |l| l.starts_with("server") && l.split_whitespace().nth(1) == Some(op))
}

/// Ranks fill the store they share (`full_store`): ENOSPC, space back after unlink; and every
/// write still went to same-node chunk files directly (the statistics show no write served
/// through the transport), so a full store did not switch ranks onto the slow path.
fn full_store(np: u32) {
    let _guard = serial();
    let installed = installed();
    let exe = installed.bin_dir.join("full_store");
    let job = spawn_job(&exe, &[], np, SMALL_FULL, &[("BENCHFS_STATS", Path::new("1"))]).wait(JOB_TIMEOUT);
    check_job(&format!("full_store on {np} ranks"), &job);
    let served_writes: Vec<&str> = served_rows(&job.stderr, "Write").collect();
    let summary = job.stderr.lines().any(|l| l.starts_with("side") && l.contains("operation"));
    assert!(summary, "no statistics summary on stderr:\n{}", tail(&job.stderr, 4000));
    assert!(served_writes.is_empty(), "writes went through the transport after the store ran full: {served_writes:?}");
}

mpi_test!(fd_budget_np4, run_c("fd_budget", 4, SMALL, &[]));

/// 16 ranks: listing an empty directory asks no rank for entries, only its owner for its
/// holders (in the statistics, the List requests are those of the filled directory alone).
#[test]
fn empty_dirs_np16() {
    let _guard = serial();
    let exe = installed().bin_dir.join("empty_dirs");
    let job = spawn_job(&exe, &[], 16, TRANSPORTED, &[("BENCHFS_STATS", Path::new("1"))]).wait(JOB_TIMEOUT);
    check_job("empty_dirs on 16 ranks", &job);
    let served = |op: &str| served_rows(&job.stderr, op).filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()).sum::<u64>();
    let (lists, holders) = (served("List"), served("Holders"));
    assert!(holders > 0, "no Holders request in the statistics:\n{}", tail(&job.stderr, 4000));
    // The requests' phases, timed where each ends, count every request once: as many sent
    // between ranks as served (this job's ranks ask themselves nothing through the transport).
    let sent = |op: &str| {
        job.stderr
            .lines()
            .filter(|l| l.starts_with("request") && l.split_whitespace().nth(1) == Some(op))
            .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert_eq!((sent("List"), sent("Holders")), (lists, holders), "requests sent and served differ:\n{}", tail(&job.stderr, 4000));
    // Only the filled directory's 17 listings ask for entries: its records' owners (its holders)
    // are most ranks, so at most the 15 others each. The 100 empty listings would add 1500.
    assert!(lists <= 17 * 15, "{lists} List requests served; the empty directory's listings must cost none");
}

/// A rank leaves the job in the middle (`dead_peer`, see the example): killed while the launcher
/// keeps the job (`kill`) or halted like a rank behind a dead link (`stop`), so that calls that
/// need it fail with EIO within `BENCHFS_PEER_TIMEOUT` (3 s here) and every survivor's finalize
/// returns EIO, including one that never called it; or gone through `MPI_Finalize` without
/// `benchfs_finalize` (`mpi-finalize`; the others finalize as usual). Each survivor reports on
/// its own (no MPI collective can span a dead rank).
fn dead_peer(mode: &str, np: u32) {
    let _guard = serial();
    let exe = example_binary("dead_peer");
    let env = [("BENCHFS_PEER_TIMEOUT", Path::new("3")), ("OMPI_MCA_orte_enable_recovery", Path::new("1"))];
    let job = spawn_job(&exe, &[mode], np, TRANSPORTED, &env).wait(JOB_TIMEOUT);
    let reports: Vec<(u64, u64)> =
        job.stdout.lines().filter(|l| l.starts_with("dead_peer: rank")).filter_map(|l| parse_summary(l.rsplit_once(": ")?.1)).collect();
    let mut problems = Vec::new();
    if job.timed_out {
        problems.push(format!("did not finish within {} s and was killed", JOB_TIMEOUT.as_secs()));
    }
    let survivors = np as usize - 1;
    if reports.len() != survivors || reports.iter().any(|&(passed, failed)| failed > 0 || passed == 0) {
        problems.push(format!("want {survivors} survivors' reports without failures, got {reports:?}"));
    }
    assert!(problems.is_empty(), "{}", job_report(&format!("dead_peer {mode} on {np} ranks"), &job, &problems));
}

mpi_test!(dead_peer_killed_np4, dead_peer("kill", 4));
mpi_test!(dead_peer_halted_np4, dead_peer("stop", 4));
mpi_test!(dead_peer_mpi_finalize_np3, dead_peer("mpi-finalize", 3));

/// Three ranks write 8 MiB chunks of one rank from four threads each; it may hold one at a time.
#[test]
fn incast_np4() {
    let _guard = serial();
    let exe = example_binary("incast");
    let job = spawn_job(&exe, &["4", "6"], 4, BIG_TRANSPORTED, &[("BENCHFS_INCOMING_BYTES", Path::new("8M"))]).wait(JOB_TIMEOUT);
    check_job("incast on 4 ranks", &job);
}
mpi_test!(full_store_np2, full_store(2));
mpi_test!(full_store_np4, full_store(4));

/// An MPMD launch whose two ranks have different `BENCHFS_CHUNK_SIZE`s: `settings` checks that
/// init fails on both with EINVAL, and works once they agree; the log names the variable and
/// both values.
#[test]
fn settings_that_differ_between_ranks() {
    let _guard = serial();
    let installed = installed();
    let exe = installed.bin_dir.join("settings");
    let exe = exe.to_str().expect("UTF-8 scratch path");
    let args = ["BENCHFS_CHUNK_SIZE=1M", exe, ":", "-np", "1", "env", "BENCHFS_CHUNK_SIZE=256K", exe];
    let job = run_job(Path::new("env"), &args, 1, DEFAULT);
    check_job("settings (MPMD, chunk sizes 1M and 256K)", &job);
    let named = job.stderr.lines().any(|l| l.contains("BENCHFS_CHUNK_SIZE") && l.contains("262144") && l.contains("1048576"));
    assert!(named, "no log line names BENCHFS_CHUNK_SIZE with both values:\n{}", tail(&job.stderr, 4000));
}

mpi_test!(errno_rules_np2, run_c("errno_rules", 2, DEFAULT, &[]));
mpi_test!(errno_rules_np4_transported, run_c("errno_rules", 4, TRANSPORTED, &[]));

mpi_test!(path_spelling_np1, run_c("path_spelling", 1, DEFAULT, &[]));
mpi_test!(path_spelling_np4, run_c("path_spelling", 4, DEFAULT, &[]));

mpi_test!(rename_limits_np1, run_c("rename_limits", 1, DEFAULT, &[]));
mpi_test!(rename_limits_np4, run_c("rename_limits", 4, DEFAULT, &[]));

mpi_test!(log_rotation_np2, run_c("log_rotation", 2, DEFAULT, &[]));
mpi_test!(log_rotation_np4, run_c("log_rotation", 4, DEFAULT, &[]));
mpi_test!(unlinked_open_np4_small, run_c("unlinked_open", 4, SMALL, &[]));
mpi_test!(unlinked_open_np4_small_transported, run_c("unlinked_open", 4, SMALL_TRANSPORTED, &[]));
mpi_test!(rmdir_race_np4, run_c("rmdir_race", 4, DEFAULT, &[]));
mpi_test!(remove_race_np4, run_c("remove_race", 4, DEFAULT, &[]));
mpi_test!(moved_open_np4, run_c("moved_open", 4, DEFAULT, &[]));
mpi_test!(moved_open_np4_small_transported, run_c("moved_open", 4, SMALL_TRANSPORTED, &[]));

mpi_test!(one_writer_np4_small, run_c("one_writer", 4, SMALL, &[]));
mpi_test!(one_writer_np4_split_storage, run_c("one_writer", 4, SMALL_SPLIT, &[]));

mpi_test!(unlink_final_np2, run_c("unlink_final", 2, DEFAULT, &[]));
mpi_test!(unlink_final_np4_transported, run_c("unlink_final", 4, TRANSPORTED, &[]));

mpi_test!(truncate_final_np2, run_c("truncate_final", 2, DEFAULT, &[]));
mpi_test!(truncate_final_np4_small_chunks, run_c("truncate_final", 4, SMALL, &[]));
mpi_test!(truncate_final_np4_transported, run_c("truncate_final", 4, TRANSPORTED, &[]));

mpi_test!(idle_cpu_np4, run_c("idle_cpu", 4, DEFAULT, &["10"]));

mpi_test!(threads_np2, run_c("threads", 2, DEFAULT, &["4", "3"]));
mpi_test!(threads_np4_small_chunks_transported, run_c("threads", 4, SMALL_TRANSPORTED, &["4", "2"]));

mpi_test!(create_race_np2, run_c("create_race", 2, DEFAULT, &["100"]));
mpi_test!(create_race_np4, run_c("create_race", 4, DEFAULT, &["200"]));

mpi_test!(namespace_np1, run_c("namespace", 1, DEFAULT, &[]));
mpi_test!(namespace_np2_small_chunks, run_c("namespace", 2, SMALL, &[]));
mpi_test!(namespace_np4, run_c("namespace", 4, DEFAULT, &[]));
// Rank counts that are not powers of two, and a larger (oversubscribed) job.
mpi_test!(namespace_np3, run_c("namespace", 3, DEFAULT, &[]));
mpi_test!(namespace_np16_transported, run_c("namespace", 16, TRANSPORTED, &[]));
mpi_test!(cross_rank_np5_transported, run_c("cross_rank", 5, TRANSPORTED, &[]));
mpi_test!(cross_rank_np16_transported, run_c("cross_rank", 16, TRANSPORTED, &[]));
mpi_test!(shared_file_np5_small_chunks, run_c("shared_file", 5, SMALL, &[]));

// Names that are not UTF-8 (and UTF-8 that is not ASCII) in every call, read back byte for byte.
mpi_test!(odd_names_np1, run_c("odd_names", 1, DEFAULT, &[]));
mpi_test!(odd_names_np4_small_chunks_transported, run_c("odd_names", 4, SMALL_TRANSPORTED, &[]));

// The IOR/mdtest backend's call sequences; the arguments are ior-hard
// segments, mdtest items per rank and ior-easy MiB per rank (IO500's
// ior-hard and mdtest shapes at a size a debug build runs in seconds).
mpi_test!(ior_sequences_np1, run_c("ior_sequences", 1, DEFAULT, &[]));
mpi_test!(ior_sequences_np2_small_chunks_transported, run_c("ior_sequences", 2, SMALL_TRANSPORTED, &["200", "100", "4"]));
mpi_test!(ior_sequences_np4_small_chunks_transported, run_c("ior_sequences", 4, SMALL_TRANSPORTED, &["200", "100", "4"]));
mpi_test!(ior_sequences_np4, run_c("ior_sequences", 4, DEFAULT, &["200", "100", "4"]));

mpi_test!(example_selfcheck_np1, run_example("selfcheck", 1, DEFAULT, &[]));
mpi_test!(example_selfcheck_np2_small_chunks, run_example("selfcheck", 2, SMALL, &[]));
mpi_test!(example_selfcheck_np4_small_chunks_transported, run_example("selfcheck", 4, SMALL_TRANSPORTED, &[]));
mpi_test!(example_selfcheck_np4, run_example("selfcheck", 4, DEFAULT, &[]));

// 2000 entries per rank keep the shared-directory listing several pages
// long without making the job slow in a debug build.
mpi_test!(example_namespace_np1, run_example("namespace", 1, DEFAULT, &["2000"]));
mpi_test!(example_namespace_np2_small_chunks, run_example("namespace", 2, SMALL, &["2000"]));
mpi_test!(example_namespace_np4, run_example("namespace", 4, DEFAULT, &["2000"]));
// 8000 entries per rank: each owner's shared record table grows (at 3072 records) while the
// directory fills, and the records change after it grew.
mpi_test!(example_namespace_np2_grown_tables, run_example("namespace", 2, GROWING_TABLES, &["8000"]));

mpi_test!(example_model_np2, run_example("model", 2, SMALL, &[]));
mpi_test!(example_model_np4_transported, run_example("model", 4, TRANSPORTED, &[]));

// Concurrent random operations, then the tree's invariants; seed, operations per thread,
// threads per rank, renames.
mpi_test!(example_small_files_np4, run_example("small_files", 4, DEFAULT, &[]));
mpi_test!(example_small_files_np4_transported, run_example("small_files", 4, TRANSPORTED, &["100"]));
mpi_test!(example_small_files_np2_small_chunks, run_example("small_files", 2, SMALL, &["100"]));
mpi_test!(example_chaos_np4_small, run_example("chaos", 4, SMALL, &["1", "500", "3", "files"]));
mpi_test!(example_chaos_np4_small_transported, run_example("chaos", 4, SMALL_TRANSPORTED, &["2", "500", "3", "all"]));
mpi_test!(example_chaos_np4_directory_renames, run_example("chaos", 4, SMALL, &["4", "1000", "4", "all"]));
mpi_test!(example_chaos_np4_no_renames, run_example("chaos", 4, SMALL, &["3", "500", "3", "none"]));

mpi_test!(example_progress_panic_np1, run_example("progress_panic", 1, DEFAULT, &[]));
mpi_test!(example_progress_panic_np4, run_example("progress_panic", 4, DEFAULT, &[]));
mpi_test!(example_malformed_np2, run_example("malformed", 2, DEFAULT, &[]));
mpi_test!(example_malformed_np4, run_example("malformed", 4, SMALL, &[]));
mpi_test!(example_forged_replies_np3_transported, run_example("forged_replies", 3, TRANSPORTED, &[]));

/// A second MPI job attaches to a running one through its contact file:
/// `examples/serve_tree` serves a known tree on `server_ranks` ranks while the C program
/// `attach` (2 ranks) reads it all back and `benchfs-find` (2 ranks)
/// counts its files; then the server is told to stop and must finish
/// cleanly. All of them run at `place`.
fn attach_and_find(place: Place, server_ranks: u32) {
    const FILES_PER_DIR: u32 = 5;
    const TREE_DIRS: u32 = 3;
    let installed = installed();
    let serve_tree = example_binary("serve_tree");
    let find = tool_binary("benchfs-find");
    let dir = scratch_root().join(format!("attach{}", JOB_COUNTER.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir_all(&dir).expect("create attach scratch directory");
    let (contact, ready, done) = (dir.join("contact"), dir.join("ready"), dir.join("done"));
    let text = |p: &Path| p.to_str().expect("scratch paths are UTF-8").to_string();
    let (contact_s, dir_s) = (text(&contact), text(&dir));
    let files = FILES_PER_DIR.to_string();
    let run = |exe: &Path, args: &[&str], np: u32| spawn_job_at(place, exe, args, np, DEFAULT, &[]).wait(JOB_TIMEOUT);

    let mut server = spawn_job_at(
        place,
        &serve_tree,
        &[&text(&ready), &text(&done), &files],
        server_ranks,
        SMALL,
        &[("BENCHFS_CONTACT_FILE", &contact)],
    );
    let ready_by = Instant::now() + JOB_TIMEOUT;
    while !ready.exists() && !server.has_exited() && Instant::now() < ready_by {
        thread::sleep(Duration::from_millis(50));
    }
    let mut clients = Vec::new();
    if ready.exists() {
        let attach = installed.bin_dir.join("attach");
        let ranks = server_ranks.to_string();
        let job = run(&attach, &[&contact_s, &ranks, &files, &dir_s], 2);
        clients.push(("attach", job, true, None));
        // Files of rank 1 among all files of the tree.
        let want = format!("MATCHED {}/{}", TREE_DIRS * FILES_PER_DIR, TREE_DIRS * FILES_PER_DIR * server_ranks);
        let args = ["--contact", &contact_s, "/tree", "-name", "f.r1.*"];
        let job = run(&find, &args, 2);
        clients.push(("benchfs-find", job, false, Some(want)));
        let hostile = example_binary("hostile_client");
        let job = run(&hostile, &[&contact_s, "/tree/a/f.r1.00"], 1);
        clients.push(("hostile_client", job, true, None));
    }
    fs::write(&done, b"done\n").expect("write the done marker");
    let server_job = server.wait(JOB_TIMEOUT);
    let _ = fs::remove_dir_all(&dir);

    let mut reports = Vec::new();
    let mut problems = job_problems(&server_job, false);
    if clients.is_empty() {
        problems.push("never created its ready marker".to_string());
    }
    if !problems.is_empty() {
        reports.push(job_report("serve_tree", &server_job, &problems));
    }
    for (name, job, want_summary, want_line) in &clients {
        let mut problems = job_problems(job, *want_summary);
        if let Some(want) = want_line {
            if !job.stdout.lines().any(|l| l.trim() == want) {
                problems.push(format!("did not print `{want}`"));
            }
        }
        if !problems.is_empty() {
            reports.push(job_report(name, job, &problems));
        }
    }
    assert!(reports.is_empty(), "{}", reports.join("\n\n"));
}

#[test]
fn attach_and_find_np2() {
    let _guard = serial();
    attach_and_find(Place::Here, 2);
}

/// A program linked against `libbenchfs.a` with only the flags of
/// `pkg-config --static` (so `Libs.private` and `Requires.private` are
/// complete) runs like the shared-library build.
#[test]
fn static_link_cross_rank_np2() {
    let _guard = serial();
    let installed = installed();
    let flags = pkg_config(&installed.prefix, &["--cflags", "--libs", "--static"]).unwrap_or_else(|e| panic!("{e}"));
    let flags: Vec<String> = flags
        .into_iter()
        .flat_map(|f| if f == "-lbenchfs" { vec!["-Wl,-Bstatic".to_string(), f, "-Wl,-Bdynamic".to_string()] } else { vec![f] })
        .collect();
    let exe = compile_c(installed, "cross_rank", "-static", Some(flags)).unwrap_or_else(|e| panic!("{e}"));
    let needed = run_checked(Command::new("ldd").arg(&exe)).unwrap_or_default();
    assert!(!needed.contains("libbenchfs.so"), "{} should not need libbenchfs.so:\n{needed}", exe.display());
    let job = run_job(&exe, &[], 2, SMALL);
    check_job("statically linked cross_rank on 2 ranks", &job);
}

/// Strips `/* */` and `//` comments so that names mentioned in prose do not
/// count as declarations.
fn strip_c_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.map_or(true, |l| b < l) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(end) => rest = &rest[b + 2 + end + 2..],
                    None => return out,
                }
                out.push(' ');
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                match rest[l..].find('\n') {
                    Some(end) => rest = &rest[l + end..],
                    None => return out,
                }
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
            (Some(_), None) => unreachable!("covered by the first arm"),
        }
    }
}

/// Names `benchfs_*` followed by `(`: the functions the header declares.
fn declared_functions(header: &str) -> BTreeSet<String> {
    let code = strip_c_comments(header);
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = code[i..].find("benchfs_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let boundary = start == 0 || !is_ident(bytes[start - 1]);
        let next = code[end..].trim_start().chars().next();
        if boundary && next == Some('(') {
            names.insert(code[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    names
}

#[test]
fn header_and_library_export_the_same_functions() {
    let nm = require_tool("nm").unwrap_or_else(|e| panic!("{e}"));
    let lib = artifact_dir().unwrap_or_else(|e| panic!("{e}")).join("libbenchfs.so");
    let header_path = manifest_dir().join("include/benchfs.h");
    let header = fs::read_to_string(&header_path).expect("read include/benchfs.h");
    let declared = declared_functions(&header);
    assert!(!declared.is_empty(), "no benchfs_* functions found in {}", header_path.display());

    let listing = run_checked(Command::new(nm).args(["-D", "--defined-only"]).arg(&lib)).unwrap_or_else(|e| panic!("{e}"));
    let exported: BTreeSet<String> =
        listing.lines().filter_map(|l| l.split_whitespace().last()).filter(|s| s.starts_with("benchfs_")).map(str::to_string).collect();

    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty() && undeclared.is_empty(),
        "include/benchfs.h and {} disagree:\n  declared but not exported: {missing:?}\n  \
         exported but not declared: {undeclared:?}",
        lib.display()
    );
}

#[test]
fn summary_line_parser() {
    assert_eq!(parse_summary("cross_rank: 12 passed, 0 failed"), Some((12, 0)));
    assert_eq!(parse_summary("3 passed, 1 failed, 2 skipped"), Some((3, 1)));
    assert_eq!(parse_summary("idle CPU: 0.1 s in 10 s"), None);
    assert_eq!(parse_summary("[x rank 0/1] 1 passed, 0 failed"), None);
}

#[test]
fn header_parser_ignores_comments() {
    let h = "/* benchfs_fake() */\nint benchfs_open(const char *p);\n// benchfs_x(\nint benchfs_close (int);";
    let names: Vec<_> = declared_functions(h).into_iter().collect();
    assert_eq!(names, ["benchfs_close", "benchfs_open"]);
}

/// An attached client whose serving job dies gets EIO from its next call and detaches, instead
/// of waiting forever: `examples/outlive` stats a path in a loop while the serving job is
/// killed under it.
#[test]
fn attached_client_outlives_its_server() {
    let _guard = serial();
    let serve_tree = example_binary("serve_tree");
    let outlive = example_binary("outlive");
    let dir = scratch_root().join(format!("outlive{}", JOB_COUNTER.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir_all(&dir).expect("create scratch directory");
    let (contact, ready, done) = (dir.join("contact"), dir.join("ready"), dir.join("done"));
    let text = |p: &Path| p.to_str().expect("scratch paths are UTF-8").to_string();

    let mut server = spawn_job(&serve_tree, &[&text(&ready), &text(&done), "2"], 2, DEFAULT, &[("BENCHFS_CONTACT_FILE", &contact)]);
    let ready_by = Instant::now() + JOB_TIMEOUT;
    while !ready.exists() && !server.has_exited() && Instant::now() < ready_by {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(ready.exists(), "serve_tree never became ready");
    let client = spawn_job(&outlive, &[&text(&contact), "/tree/a", "60"], 1, DEFAULT, &[]);
    thread::sleep(Duration::from_secs(2));
    // SAFETY: the serving job was started in its own process group; kill it outright.
    unsafe { libc::kill(-(server.child.id() as i32), libc::SIGKILL) };
    let client_job = client.wait(JOB_TIMEOUT);
    // The killed job's outcome and leftovers are expected; only reap it.
    let _ = server.wait(Duration::from_secs(10));
    let _ = fs::remove_dir_all(&dir);
    check_job("example outlive on 1 rank", &client_job);
}

/// `benchfs-bench` runs every pattern (tiny sizes) and its latency mode, and verifies what it
/// read back: the figures are not checked here (they are for people), the data and the exit
/// status are.
#[test]
fn bench_tool_np2() {
    let _guard = serial();
    require_tool("mpirun").unwrap_or_else(|e| panic!("{e}"));
    let bench = tool_binary("benchfs-bench");
    let small = [
        "--transfer",
        "64k",
        "--block",
        "256k",
        "--files",
        "50",
        "--dirs",
        "50",
        "--readdir-files",
        "50",
        "--renames",
        "50",
        "--small-files",
        "50",
    ];
    for args in [&["--mode", "all"][..], &["--mode", "latency", "--latency-ops", "50"][..]] {
        let args: Vec<&str> = args.iter().chain(&small).copied().collect();
        let job = run_job(&bench, &args, 2, SMALL_TRANSPORTED);
        let mut problems = job_problems(&job, false);
        if !job.stdout.contains("verification: passed") {
            problems.push("did not print `verification: passed`".to_string());
        }
        let want: &[&str] = if args[1] == "latency" { &["remote 4 KiB read"] } else { &["meta remove", "small read", "small remove"] };
        for row in want {
            if !job.stdout.contains(row) {
                problems.push(format!("printed no `{row}` row"));
            }
        }
        if !problems.is_empty() {
            panic!("{}", job_report(&format!("benchfs-bench {args:?}"), &job, &problems));
        }
    }
}

/// A small file's data lies with the rank that created it (docs/semantics.md, "Where things
/// live"): with every chunk through UCX, ranks that create and write small files, half of whose
/// names the other rank owns, have no write served by any rank, while their reads of the other
/// rank's files are served as reads; every byte read back is checked.
#[test]
fn small_files_are_written_where_created_np2() {
    let _guard = serial();
    require_tool("mpirun").unwrap_or_else(|e| panic!("{e}"));
    let bench = tool_binary("benchfs-bench");
    let args = ["--mode", "small", "--small-files", "200"];
    let job = spawn_job(&bench, &args, 2, SMALL_TRANSPORTED, &[("BENCHFS_STATS", Path::new("1"))]).wait(JOB_TIMEOUT);
    let mut problems = job_problems(&job, false);
    if !job.stdout.contains("verification: passed") {
        problems.push("did not print `verification: passed`".to_string());
    }
    let writes: Vec<&str> = served_rows(&job.stderr, "Write").collect();
    if !writes.is_empty() {
        problems.push(format!("small files' writes were served by another rank: {writes:?}"));
    }
    if served_rows(&job.stderr, "Read").next().is_none() {
        problems.push("no read was served: the job did not use the transport for data".to_string());
    }
    if !problems.is_empty() {
        panic!("{}", job_report(&format!("benchfs-bench {args:?} with BENCHFS_STATS=1"), &job, &problems));
    }
}

/// With `BENCHFS_STATS=1`, rank 0 prints at finalize the operation statistics summed over the
/// ranks: rows for the calls the job made and for the requests its ranks served, with counts
/// that add up (every rank creates, so there are at least as many creates as ranks).
#[test]
fn stats_summary_np2() {
    let _guard = serial();
    require_tool("mpirun").unwrap_or_else(|e| panic!("{e}"));
    let exe = example_binary("namespace");
    let job = spawn_job(&exe, &["200"], 2, SMALL_TRANSPORTED, &[("BENCHFS_STATS", Path::new("1"))]).wait(JOB_TIMEOUT);
    let mut problems = job_problems(&job, true);
    let count_of = |side: &str, op: &str| -> Option<u64> {
        let line = job.stderr.lines().find(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(side) && words.next() == Some(op)
        })?;
        line.split_whitespace().nth(2)?.parse().ok()
    };
    if !job.stderr.contains("benchfs stats over 2 ranks") {
        problems.push("printed no statistics header for 2 ranks".to_string());
    }
    for (side, op) in [("client", "open"), ("client", "mkdir"), ("client", "stat"), ("server", "Open"), ("server", "Stat")] {
        match count_of(side, op) {
            Some(n) if n >= 2 => {}
            other => problems.push(format!("{side} {op}: count {other:?}, want at least 2")),
        }
    }
    if job.stderr.matches("benchfs stats over").count() != 1 {
        problems.push("the summary must be printed once, by rank 0".to_string());
    }
    if !problems.is_empty() {
        panic!("{}", job_report("namespace with BENCHFS_STATS=1", &job, &problems));
    }
}

// ---------------------------------------------------------------------------
// Simulated hosts
// ---------------------------------------------------------------------------

/// UCX transports of the jobs on a simulated cluster.
#[derive(Clone, Copy, Debug)]
enum Transports {
    /// `UCX_TLS=tcp,self`: TCP between all ranks, on one host or not.
    Tcp,
    /// UCX's own choice: shared memory on a host, TCP between hosts.
    Default,
}

/// Hosts of the simulated cluster the cross-host tests run on, with two ranks each.
const HOSTS: u32 = 4;

fn cluster_script() -> PathBuf {
    manifest_dir().join("tests/cluster.sh")
}

/// A simulated cluster of `tests/cluster.sh`: hosts with a network, host name, IPC and mount
/// namespace and node-local store each. Dropping it (also when a test fails) kills everything
/// that ran on it and removes it; hosts left by a test process that was killed are removed by
/// the next one.
struct Cluster {
    state: PathBuf,
    hosts: u32,
    transports: Transports,
}

impl Cluster {
    /// Builds one, or says why it cannot and returns `None` where the tests may skip: only
    /// without root. As root (as in CI) a cluster that cannot be built fails the test.
    fn up(hosts: u32, transports: Transports) -> Option<Cluster> {
        let script = cluster_script();
        if let Err(why) = run_checked(Command::new(&script).arg("check")) {
            // SAFETY: geteuid cannot fail.
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("SKIP: the tests across simulated hosts need root and namespaces: {why}");
                return None;
            }
            panic!("cannot build a simulated cluster as root: {why}");
        }
        let state = scratch_root().join(format!("cluster{}", JOB_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let cluster = Cluster { state, hosts, transports };
        run_checked(Command::new(&script).arg("up").arg(&cluster.state).arg(hosts.to_string()))
            .unwrap_or_else(|e| panic!("cannot build a simulated cluster: {e}"));
        Some(cluster)
    }

    /// The directory each host has its own tmpfs at.
    fn store_of(state: &Path) -> PathBuf {
        state.join("store")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let down = Command::new(cluster_script()).arg("down").arg(&self.state).status();
        if !matches!(down, Ok(s) if s.success()) {
            eprintln!("cannot remove the simulated cluster in {}: {down:?}", self.state.display());
        }
    }
}

/// A C program on [`HOSTS`] simulated hosts, two ranks each, ranks dealt out to the hosts in
/// turn (ranks 0 and 4 share a host).
fn on_hosts(transports: Transports, program: &str, settings: Settings) {
    let _guard = serial();
    let exe = installed().bin_dir.join(program);
    let Some(cluster) = Cluster::up(HOSTS, transports) else { return };
    let job = spawn_job_at(Place::Hosts(&cluster), &exe, &[], 2 * HOSTS, settings, &[]).wait(JOB_TIMEOUT);
    check_job(&format!("{program} on {HOSTS} hosts of 2 ranks, {transports:?} transports"), &job);
}

/// The simulated hosts are what the tests across them assume: each rank's host name is its
/// host's, and no host sees another's store or shared memory.
#[test]
fn hosts_are_separate() {
    let _guard = serial();
    let Some(cluster) = Cluster::up(HOSTS, Transports::Tcp) else { return };
    let probe = r#"hostname; touch "/dev/shm/probe.$OMPI_COMM_WORLD_RANK" "$BENCHFS_DATA_DIR/probe.$OMPI_COMM_WORLD_RANK""#;
    let job = spawn_job_at(Place::Hosts(&cluster), Path::new("sh"), &["-c", probe], 2 * HOSTS, DEFAULT, &[]).wait(JOB_TIMEOUT);
    let problems = job_problems(&job, false);
    let mut names: Vec<&str> = job.stdout.lines().collect();
    names.sort();
    let want: Vec<String> = (0..2 * HOSTS).map(|r| format!("h{}", r / 2)).collect();
    assert_eq!(names, want, "host names of the ranks\n{}", job_report("probe", &job, &problems));
    // Each rank left a file in its host's store and shared memory: each host sees its two.
    let per_host =
        |files: Vec<String>| (0..HOSTS).map(|h| files.iter().filter(|f| f.starts_with(&format!("h{h}:"))).count()).collect::<Vec<_>>();
    let stored = job.leftover_files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(per_host(stored), vec![2; HOSTS as usize], "store files after the probe: {:?}", job.leftover_files);
    let list = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new("ls /dev/shm | grep '^probe\\.'")];
    let shm: Vec<String> = Store::on_each_host(&cluster.state, HOSTS, &list)
        .into_iter()
        .flat_map(|(host, out)| out.unwrap_or_default().lines().map(|l| format!("{host}:{l}")).collect::<Vec<_>>())
        .collect();
    assert_eq!(per_host(shm.clone()), vec![2; HOSTS as usize], "probe files in /dev/shm: {shm:?}");
}

mpi_test!(hosts_tcp_cross_rank, on_hosts(Transports::Tcp, "cross_rank", DEFAULT));
mpi_test!(hosts_tcp_shared_file, on_hosts(Transports::Tcp, "shared_file", SMALL));
mpi_test!(hosts_tcp_namespace, on_hosts(Transports::Tcp, "namespace", DEFAULT));
mpi_test!(hosts_cross_rank, on_hosts(Transports::Default, "cross_rank", DEFAULT));
mpi_test!(hosts_shared_file, on_hosts(Transports::Default, "shared_file", SMALL));
mpi_test!(hosts_namespace, on_hosts(Transports::Default, "namespace", DEFAULT));

fn attach_and_find_on_hosts(transports: Transports) {
    let _guard = serial();
    let Some(cluster) = Cluster::up(HOSTS, transports) else { return };
    attach_and_find(Place::Hosts(&cluster), 2 * HOSTS);
}

mpi_test!(hosts_tcp_attach_and_find, attach_and_find_on_hosts(Transports::Tcp));
mpi_test!(hosts_attach_and_find, attach_and_find_on_hosts(Transports::Default));

// ---------------------------------------------------------------------------
// Unmodified programs
// ---------------------------------------------------------------------------

/// An unmodified MPI program: `exe` with `leading` arguments, run with the preload library at
/// `place` and given a directory under the mount and a local one. It checks every byte it reads
/// and prints a `P passed, F failed` line; afterwards the mount path must not exist on the local
/// file system (its files went to BenchFS, not to the kernel) and the local directory must be
/// empty again.
fn run_unmodified_at(place: Place, name: &str, exe: &Path, leading: &[&str], np: u32, settings: Settings, env: &[(&str, &Path)]) {
    let n = JOB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let (mount, local) = (scratch_root().join(format!("mnt{n}")), scratch_root().join(format!("local{n}")));
    fs::create_dir_all(&local).expect("create the local directory");
    let text = |p: &Path| p.to_str().expect("scratch paths are UTF-8").to_string();
    let (dir, local_s) = (text(&mount.join("work")), text(&local));
    let args: Vec<&str> = leading.iter().copied().chain([dir.as_str(), local_s.as_str()]).collect();
    let mut env = env.to_vec();
    env.push(("BENCHFS_MOUNT", &mount));
    let job = spawn_job_at(place, exe, &args, np, settings, &env).wait(JOB_TIMEOUT);
    check_job(&format!("unmodified {name} on {np} ranks"), &job);
    assert!(!mount.exists(), "{} exists on the local file system: the program's files reached the kernel", mount.display());
    let left: Vec<_> = fs::read_dir(&local).expect("list the local directory").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the program's local files were not removed: {left:?}");
    let _ = fs::remove_dir(&local);
}

/// `tests/unmodified/<program>.c`, built with plain `mpicc`.
fn run_unmodified(program: &str, np: u32, settings: Settings, env: &[(&str, &Path)]) {
    let _guard = serial();
    let exe = installed().bin_dir.join(program);
    run_unmodified_at(Place::Here, program, &exe, &[], np, settings, env);
}

// Programs written against BenchFS's own API run as well with the preload library loaded (their
// benchfs_init nests inside the one of MPI_Init).
mpi_test!(preloaded_cross_rank_np4, run_c("cross_rank", 4, PRELOADED, &[]));
mpi_test!(preloaded_namespace_np3, run_c("namespace", 3, PRELOADED, &[]));

/// `tests/unmodified/hdf5/collective.c`, built with the flags of `pkg-config hdf5-openmpi` (Debian:
/// libhdf5-openmpi-dev, which CI installs): HDF5 through its MPI-IO driver.
#[test]
fn unmodified_hdf5_collective_np4() {
    let _guard = serial();
    let installed = installed();
    let flags = run_checked(Command::new("pkg-config").args(["--cflags", "--libs", "hdf5-openmpi"]))
        .unwrap_or_else(|e| panic!("parallel HDF5 is needed (Debian: apt-get install libhdf5-openmpi-dev; .ci/run does this): {e}"));
    let source = manifest_dir().join("tests/unmodified/hdf5/collective.c");
    let exe = installed.bin_dir.join("hdf5_collective");
    run_checked(
        Command::new("mpicc").args(["-std=gnu11", "-O2", "-Wall", "-Wextra", "-o"]).arg(&exe).arg(&source).args(flags.split_whitespace()),
    )
    .unwrap_or_else(|e| panic!("cannot build the HDF5 program: {e}"));
    run_unmodified_at(Place::Here, "hdf5_collective", &exe, &[], 4, PRELOADED, &[]);
}

/// `tests/unmodified/fortran/files.f90`, built with `mpifort` (Debian: gfortran, which CI
/// installs): Fortran I/O, and `mpi_init`/`mpi_finalize` from Fortran.
#[test]
fn unmodified_fortran_np3() {
    let _guard = serial();
    let installed = installed();
    require_tool("mpifort").unwrap_or_else(|e| panic!("{e}"));
    let source = manifest_dir().join("tests/unmodified/fortran/files.f90");
    let exe = installed.bin_dir.join("fortran_files");
    run_checked(Command::new("mpifort").args(["-O2", "-o"]).arg(&exe).arg(&source))
        .unwrap_or_else(|e| panic!("cannot build the Fortran program (Debian: apt-get install gfortran): {e}"));
    run_unmodified_at(Place::Here, "fortran files", &exe, &[], 3, PRELOADED, &[]);
}

/// `tests/unmodified/python/files.py` under the system's Python with mpi4py (Debian:
/// python3-mpi4py, which CI installs).
#[test]
fn unmodified_python_np4() {
    let _guard = serial();
    let python = Path::new("/usr/bin/python3");
    let probe = run_checked(Command::new(python).args(["-c", "import mpi4py"]));
    probe.unwrap_or_else(|e| panic!("mpi4py is needed (Debian: apt-get install python3-mpi4py; .ci/run does this): {e}"));
    let script = manifest_dir().join("tests/unmodified/python/files.py");
    let script = script.to_str().expect("the repository path is UTF-8");
    run_unmodified_at(Place::Here, "python files.py", python, &[script], 4, PRELOADED, &[]);
}

mpi_test!(unmodified_posix_stdio_np1, run_unmodified("posix_stdio", 1, PRELOADED, &[]));
mpi_test!(unmodified_posix_stdio_np4, run_unmodified("posix_stdio", 4, PRELOADED, &[]));
mpi_test!(unmodified_posix_stdio_np3_transported, run_unmodified("posix_stdio", 3, PRELOADED_TRANSPORTED, &[]));
// Threads of every rank open, write, duplicate, read and close at once, BenchFS and kernel files.
mpi_test!(unmodified_posix_threads_np3, run_unmodified("posix_threads", 3, PRELOADED, &[]));
mpi_test!(unmodified_posix_threads_np2_transported, run_unmodified("posix_threads", 2, PRELOADED_TRANSPORTED, &[]));
// Before MPI_Init, in a forked child and after MPI_Finalize the mount answers ENOTCONN.
mpi_test!(unmodified_lifecycle_np2, run_unmodified("lifecycle", 2, PRELOADED, &[]));
// MPI-IO through Open MPI's own implementation (OMPIO, the default) and through ROMIO.
mpi_test!(unmodified_mpiio_np4, run_unmodified("mpiio", 4, PRELOADED, &[]));
mpi_test!(unmodified_mpiio_np3_transported, run_unmodified("mpiio", 3, PRELOADED_TRANSPORTED, &[]));
mpi_test!(unmodified_mpiio_romio_np4, run_unmodified("mpiio", 4, PRELOADED, &[("OMPI_MCA_io", Path::new("romio321"))]));

/// The same across simulated hosts, over TCP: the mount and the program's current directory
/// are each rank's own.
#[test]
fn hosts_tcp_unmodified_posix_stdio() {
    let _guard = serial();
    let Some(cluster) = Cluster::up(HOSTS, Transports::Tcp) else { return };
    let exe = installed().bin_dir.join("posix_stdio");
    run_unmodified_at(Place::Hosts(&cluster), "posix_stdio", &exe, &[], 2 * HOSTS, PRELOADED, &[]);
}
