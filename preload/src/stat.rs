//! Attributes: the `stat` family (with glibc's older `__xstat` entry points, which programs built
//! against glibc before 2.33 call), `statx`, and the file-system totals of `statfs` and
//! `statvfs`.

use std::ffi::{c_char, c_int};

use benchfs::{FileStat, FsStat};

use crate::path::Target;
use crate::posix::{kernel_path, on_path, target_at};
use crate::real::real;
use crate::table;
use crate::{code, guard};

type Path = *const c_char;

/// The device number BenchFS files report.
const DEVICE: u64 = 0xbf5;
/// `f_type` of `statfs`: no kernel file system's magic number (so that, for one, MPI-IO does
/// not take BenchFS for NFS and lock around every write).
const MAGIC: i64 = 0x4246_5346;

macro_rules! fill_stat {
    ($out:expr, $st:expr) => {{
        let (out, st) = ($out, $st);
        out.st_dev = DEVICE as _;
        out.st_ino = st.ino as _;
        out.st_mode = st.mode as _;
        out.st_nlink = st.nlink as _;
        out.st_uid = st.uid;
        out.st_gid = st.gid;
        out.st_rdev = 0;
        out.st_size = st.size as _;
        out.st_blksize = st.blksize as _;
        out.st_blocks = st.size.div_ceil(512) as _;
        out.st_atime = st.atime_ns.div_euclid(1_000_000_000) as _;
        out.st_atime_nsec = st.atime_ns.rem_euclid(1_000_000_000) as _;
        out.st_mtime = st.mtime_ns.div_euclid(1_000_000_000) as _;
        out.st_mtime_nsec = st.mtime_ns.rem_euclid(1_000_000_000) as _;
        out.st_ctime = st.ctime_ns.div_euclid(1_000_000_000) as _;
        out.st_ctime_nsec = st.ctime_ns.rem_euclid(1_000_000_000) as _;
    }};
}

/// A C struct the caller passes to be filled from `S` (a file's attributes, or file-system
/// totals); all-zero is a valid value of each.
trait Fill<S> {
    fn fill(&mut self, from: &S);
}

impl Fill<FileStat> for libc::stat {
    fn fill(&mut self, st: &FileStat) {
        fill_stat!(self, st);
    }
}

impl Fill<FileStat> for libc::stat64 {
    fn fill(&mut self, st: &FileStat) {
        fill_stat!(self, st);
    }
}

/// Writes `from` into the caller's struct at `out`, zeroed first (`EFAULT` for a null one).
fn write_out<T: Fill<S>, S>(out: *mut T, from: &S) -> Result<c_int, c_int> {
    // SAFETY: the caller's struct, checked for null; all-zero is valid for these C structs.
    let out = unsafe { out.as_mut() }.ok_or(libc::EFAULT)?;
    // SAFETY: as above.
    *out = unsafe { std::mem::zeroed() };
    out.fill(from);
    Ok(0)
}

fn stat_path(inside: Vec<u8>) -> Result<FileStat, c_int> {
    benchfs::stat(inside).map_err(code)
}

fn stat_fd(bfd: i32) -> Result<FileStat, c_int> {
    benchfs::fstat(bfd).map_err(code)
}

/// A stat of `path` into `out`: BenchFS's, or `kernel`'s given the path to use.
unsafe fn by_path<T: Fill<FileStat>>(path: Path, out: *mut T, kernel: impl FnOnce(Path) -> c_int) -> c_int {
    // SAFETY: the caller's path.
    unsafe { on_path(path, |inside| write_out(out, &stat_path(inside)?), kernel) }
}

/// A stat of descriptor `fd` into `out`: BenchFS's, or the C library's (`kernel`).
fn by_fd<T: Fill<FileStat>>(fd: c_int, out: *mut T, kernel: impl FnOnce() -> c_int) -> c_int {
    match table::ours(fd) {
        Some(bfd) => guard(-1, || write_out(out, &stat_fd(bfd)?)),
        None => kernel(),
    }
}

/// A stat of `path` relative to `dirfd` (`fstatat`, `statx`): BenchFS's, or `kernel`'s given
/// the path to use (a relative path leading out of a BenchFS directory becomes absolute).
unsafe fn by_path_at<T: Fill<FileStat>>(dirfd: c_int, path: Path, flags: c_int, out: *mut T, kernel: impl FnOnce(Path) -> c_int) -> c_int {
    // SAFETY: the caller's arguments.
    match unsafe { fstatat_ours(dirfd, path, flags) } {
        Some(st) => guard(-1, || write_out(out, &st?)),
        // SAFETY: as above.
        None => match unsafe { target_at(dirfd, path) } {
            Some(Target::Kernel(absolute)) => kernel(kernel_path(path, &absolute)),
            _ => kernel(path),
        },
    }
}

macro_rules! stat_by_path {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: Path, out: *mut $ty) -> c_int {
            let real = real!($real as unsafe extern "C" fn(Path, *mut $ty) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            unsafe { by_path(path, out, |p| real(p, out)) }
        }
    };
}

stat_by_path!(stat, "stat", libc::stat);
stat_by_path!(lstat, "lstat", libc::stat);
stat_by_path!(stat64, "stat64", libc::stat64);
stat_by_path!(lstat64, "lstat64", libc::stat64);

macro_rules! stat_by_fd {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, out: *mut $ty) -> c_int {
            let real = real!($real as unsafe extern "C" fn(c_int, *mut $ty) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            by_fd(fd, out, || unsafe { real(fd, out) })
        }
    };
}

stat_by_fd!(fstat, "fstat", libc::stat);
stat_by_fd!(fstat64, "fstat64", libc::stat64);

/// `fstatat`'s BenchFS side, or None: the C library's.
unsafe fn fstatat_ours(dirfd: c_int, path: Path, flags: c_int) -> Option<Result<FileStat, c_int>> {
    // SAFETY: the caller's path, checked for null.
    let empty = !path.is_null() && unsafe { *path } == 0;
    if empty && flags & libc::AT_EMPTY_PATH != 0 {
        return table::ours(dirfd).map(stat_fd);
    }
    // SAFETY: as above.
    match unsafe { target_at(dirfd, path) } {
        Some(Target::Ours(inside)) => Some(stat_path(inside)),
        _ => None,
    }
}

macro_rules! stat_at {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: Path, out: *mut $ty, flags: c_int) -> c_int {
            let real = real!($real as unsafe extern "C" fn(c_int, Path, *mut $ty, c_int) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            unsafe { by_path_at(dirfd, path, flags, out, |p| real(dirfd, p, out, flags)) }
        }
    };
}

stat_at!(fstatat, "fstatat", libc::stat);
stat_at!(fstatat64, "fstatat64", libc::stat64);

// glibc before 2.33 had programs call these, with a version number first.

macro_rules! xstat_by_path {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("glibc's `", stringify!($name), "`, which older programs call for `stat`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(version: c_int, path: Path, out: *mut $ty) -> c_int {
            let real = real!($real as unsafe extern "C" fn(c_int, Path, *mut $ty) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            unsafe { by_path(path, out, |p| real(version, p, out)) }
        }
    };
}

xstat_by_path!(__xstat, "__xstat", libc::stat);
xstat_by_path!(__lxstat, "__lxstat", libc::stat);
xstat_by_path!(__xstat64, "__xstat64", libc::stat64);
xstat_by_path!(__lxstat64, "__lxstat64", libc::stat64);

macro_rules! xstat_by_fd {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("glibc's `", stringify!($name), "`, which older programs call for `fstat`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(version: c_int, fd: c_int, out: *mut $ty) -> c_int {
            let real = real!($real as unsafe extern "C" fn(c_int, c_int, *mut $ty) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            by_fd(fd, out, || unsafe { real(version, fd, out) })
        }
    };
}

xstat_by_fd!(__fxstat, "__fxstat", libc::stat);
xstat_by_fd!(__fxstat64, "__fxstat64", libc::stat64);

macro_rules! xstat_at {
    ($name:ident, $real:literal, $ty:ty) => {
        #[doc = concat!("glibc's `", stringify!($name), "`, which older programs call for `fstatat`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(version: c_int, dirfd: c_int, path: Path, out: *mut $ty, flags: c_int) -> c_int {
            let real = real!($real as unsafe extern "C" fn(c_int, c_int, Path, *mut $ty, c_int) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            unsafe { by_path_at(dirfd, path, flags, out, |p| real(version, dirfd, p, out, flags)) }
        }
    };
}

xstat_at!(__fxstatat, "__fxstatat", libc::stat);
xstat_at!(__fxstatat64, "__fxstatat64", libc::stat64);

impl Fill<FileStat> for libc::statx {
    fn fill(&mut self, st: &FileStat) {
        let out = self;
        let time = |ns: i64| {
            // SAFETY: all-zero is a valid timestamp.
            let mut t: libc::statx_timestamp = unsafe { std::mem::zeroed() };
            t.tv_sec = ns.div_euclid(1_000_000_000);
            t.tv_nsec = ns.rem_euclid(1_000_000_000) as u32;
            t
        };
        out.stx_mask = libc::STATX_BASIC_STATS;
        out.stx_blksize = st.blksize as u32;
        out.stx_nlink = st.nlink;
        out.stx_uid = st.uid;
        out.stx_gid = st.gid;
        out.stx_mode = st.mode as u16;
        out.stx_ino = st.ino;
        out.stx_size = st.size;
        out.stx_blocks = st.size.div_ceil(512);
        out.stx_atime = time(st.atime_ns);
        out.stx_mtime = time(st.mtime_ns);
        out.stx_ctime = time(st.ctime_ns);
        out.stx_dev_major = 0;
        out.stx_dev_minor = DEVICE as u32;
    }
}

/// Like `statx(2)`: the basic attributes (no birth time).
#[no_mangle]
pub unsafe extern "C" fn statx(dirfd: c_int, path: Path, flags: c_int, mask: libc::c_uint, out: *mut libc::statx) -> c_int {
    let real = real!("statx" as unsafe extern "C" fn(c_int, Path, c_int, libc::c_uint, *mut libc::statx) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { by_path_at(dirfd, path, flags, out, |p| real(dirfd, p, flags, mask, out)) }
}

// ---------------------------------------------------------------------------
// file-system totals
// ---------------------------------------------------------------------------

macro_rules! fill_statfs {
    ($out:expr, $fs:expr) => {{
        let (out, fs) = ($out, $fs);
        out.f_type = MAGIC as _;
        out.f_bsize = fs.bsize as _;
        out.f_frsize = fs.bsize as _;
        out.f_blocks = fs.blocks as _;
        out.f_bfree = fs.bfree as _;
        out.f_bavail = fs.bavail as _;
        out.f_files = fs.files as _;
        out.f_ffree = fs.ffree as _;
        out.f_namelen = fs.namemax as _;
    }};
}

macro_rules! fill_statvfs {
    ($out:expr, $fs:expr) => {{
        let (out, fs) = ($out, $fs);
        out.f_bsize = fs.bsize as _;
        out.f_frsize = fs.bsize as _;
        out.f_blocks = fs.blocks as _;
        out.f_bfree = fs.bfree as _;
        out.f_bavail = fs.bavail as _;
        out.f_files = fs.files as _;
        out.f_ffree = fs.ffree as _;
        out.f_favail = fs.ffree as _;
        out.f_fsid = MAGIC as _;
        out.f_namemax = fs.namemax as _;
    }};
}

macro_rules! totals {
    ($by_path:ident, $path_name:literal, $by_fd:ident, $fd_name:literal, $ty:ty, $fill:ident) => {
        #[doc = concat!("Like `", stringify!($by_path), "(2)`: BenchFS's totals over all ranks.")]
        #[no_mangle]
        pub unsafe extern "C" fn $by_path(path: Path, out: *mut $ty) -> c_int {
            let real = real!($path_name as unsafe extern "C" fn(Path, *mut $ty) -> c_int);
            // SAFETY: the caller's arguments, passed on.
            unsafe { on_path(path, |inside| write_out(out, &benchfs::statvfs(inside).map_err(code)?), |p| real(p, out)) }
        }

        #[doc = concat!("Like `", stringify!($by_fd), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $by_fd(fd: c_int, out: *mut $ty) -> c_int {
            if table::ours(fd).is_some() {
                return guard(-1, || write_out(out, &benchfs::statvfs("/").map_err(code)?));
            }
            // SAFETY: the caller's arguments, passed on.
            unsafe { real!($fd_name as unsafe extern "C" fn(c_int, *mut $ty) -> c_int)(fd, out) }
        }

        impl Fill<FsStat> for $ty {
            fn fill(&mut self, fs: &FsStat) {
                $fill!(self, fs);
            }
        }
    };
}

totals!(statfs, "statfs", fstatfs, "fstatfs", libc::statfs, fill_statfs);
totals!(statfs64, "statfs64", fstatfs64, "fstatfs64", libc::statfs64, fill_statfs);
totals!(statvfs, "statvfs", fstatvfs, "fstatvfs", libc::statvfs, fill_statvfs);
totals!(statvfs64, "statvfs64", fstatvfs64, "fstatvfs64", libc::statvfs64, fill_statvfs);
