//! The descriptor and path calls: open, read, write and their variants, seeking, syncing,
//! truncating, removing, renaming, duplicating, the current directory.
//!
//! Each function first asks whether its descriptor stands for a BenchFS file ([`table::ours`])
//! or its path lies under the mount ([`path::resolve`]); if not, it calls the C library's
//! function with the same arguments. Functions taking a variable argument (`open`'s mode,
//! `fcntl`'s argument) take it as a fixed one: on the Linux ABIs this library is built for, a
//! variadic argument travels where a fixed one would, and it is read only when the flags say
//! it was passed.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use libc::{iovec, mode_t, off_t, size_t, ssize_t};

use crate::path::{self, Target};
use crate::real::real;
use crate::table;
use crate::{code, guard};

type Path = *const c_char;

/// Where `path` leads from the current directory; None for a null pointer (the C library
/// answers that).
pub(crate) unsafe fn target(path: Path) -> Option<Target> {
    if path.is_null() {
        return None;
    }
    // SAFETY: a non-null C string from the caller.
    Some(path::resolve(unsafe { CStr::from_ptr(path) }))
}

/// Where `path` leads from directory descriptor `dirfd` (or the current directory).
pub(crate) unsafe fn target_at(dirfd: c_int, path: Path) -> Option<Target> {
    if path.is_null() {
        return None;
    }
    // SAFETY: a non-null C string from the caller.
    let spelled = unsafe { CStr::from_ptr(path) };
    if dirfd == libc::AT_FDCWD || spelled.to_bytes().starts_with(b"/") {
        return Some(path::resolve(spelled));
    }
    match table::ours(dirfd).and_then(table::open_of) {
        Some(dir) => Some(path::resolve_from(Some(&dir.path), spelled)),
        None => Some(Target::Kernel(None)),
    }
}

/// The path to give the C library for a path that is not BenchFS's.
pub(crate) fn kernel_path(original: Path, absolute: &Option<CString>) -> Path {
    absolute.as_ref().map_or(original, |p| p.as_ptr())
}

// ---------------------------------------------------------------------------
// open and close
// ---------------------------------------------------------------------------

/// The flags BenchFS acts on; the others (close-on-exec, which the placeholder carries, and
/// hints such as `O_NOATIME`, `O_DIRECT`, `O_SYNC`) mean nothing to it.
const BENCHFS_FLAGS: c_int = libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND | libc::O_DIRECTORY;

pub(crate) fn open_ours(path: Vec<u8>, flags: c_int, mode: mode_t) -> Result<c_int, c_int> {
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Err(libc::EOPNOTSUPP);
    }
    let bfd = benchfs::open(&path, flags & BENCHFS_FLAGS, mode).map_err(code)?;
    table::install(bfd, path, flags)
}

unsafe fn open_common(dirfd: Option<c_int>, path: Path, flags: c_int, mode: mode_t, kernel: impl FnOnce(Path) -> c_int) -> c_int {
    // SAFETY (both): the caller's path, checked for null inside.
    let found = match dirfd {
        Some(dirfd) => unsafe { target_at(dirfd, path) },
        None => unsafe { target(path) },
    };
    match found {
        Some(Target::Ours(inside)) => guard(-1, || open_ours(inside, flags, mode)),
        Some(Target::Kernel(absolute)) => kernel(kernel_path(path, &absolute)),
        None => kernel(path),
    }
}

/// The mode argument is there only with `O_CREAT` or `O_TMPFILE`.
fn mode_if_passed(flags: c_int, mode: mode_t) -> mode_t {
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        mode
    } else {
        0
    }
}

type OpenFn = unsafe extern "C" fn(Path, c_int, ...) -> c_int;
type OpenAtFn = unsafe extern "C" fn(c_int, Path, c_int, ...) -> c_int;

/// Like `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn open(path: Path, flags: c_int, mode: mode_t) -> c_int {
    let mode = mode_if_passed(flags, mode);
    // SAFETY: the caller's arguments, passed on.
    unsafe { open_common(None, path, flags, mode, |p| real!("open" as OpenFn)(p, flags, mode)) }
}

/// Like `open64(2)`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: Path, flags: c_int, mode: mode_t) -> c_int {
    let mode = mode_if_passed(flags, mode);
    // SAFETY: as above.
    unsafe { open_common(None, path, flags, mode, |p| real!("open64" as OpenFn)(p, flags, mode)) }
}

/// Like `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat(dirfd: c_int, path: Path, flags: c_int, mode: mode_t) -> c_int {
    let mode = mode_if_passed(flags, mode);
    // SAFETY: as above.
    unsafe { open_common(Some(dirfd), path, flags, mode, |p| real!("openat" as OpenAtFn)(dirfd, p, flags, mode)) }
}

/// Like `openat64(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: Path, flags: c_int, mode: mode_t) -> c_int {
    let mode = mode_if_passed(flags, mode);
    // SAFETY: as above.
    unsafe { open_common(Some(dirfd), path, flags, mode, |p| real!("openat64" as OpenAtFn)(dirfd, p, flags, mode)) }
}

/// Like `creat(2)`.
#[no_mangle]
pub unsafe extern "C" fn creat(path: Path, mode: mode_t) -> c_int {
    // SAFETY: as above.
    unsafe { open(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode) }
}

/// Like `creat64(2)`.
#[no_mangle]
pub unsafe extern "C" fn creat64(path: Path, mode: mode_t) -> c_int {
    // SAFETY: as above.
    unsafe { open64(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode) }
}

/// The `open` that `_FORTIFY_SOURCE` calls when no mode is passed.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: Path, flags: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { open_common(None, path, flags, 0, |p| real!("__open_2" as unsafe extern "C" fn(Path, c_int) -> c_int)(p, flags)) }
}

/// The `open64` that `_FORTIFY_SOURCE` calls when no mode is passed.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: Path, flags: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { open_common(None, path, flags, 0, |p| real!("__open64_2" as unsafe extern "C" fn(Path, c_int) -> c_int)(p, flags)) }
}

/// The `openat` that `_FORTIFY_SOURCE` calls when no mode is passed.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: Path, flags: c_int) -> c_int {
    let real = real!("__openat_2" as unsafe extern "C" fn(c_int, Path, c_int) -> c_int);
    // SAFETY: as above.
    unsafe { open_common(Some(dirfd), path, flags, 0, |p| real(dirfd, p, flags)) }
}

/// The `openat64` that `_FORTIFY_SOURCE` calls when no mode is passed.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: Path, flags: c_int) -> c_int {
    let real = real!("__openat64_2" as unsafe extern "C" fn(c_int, Path, c_int) -> c_int);
    // SAFETY: as above.
    unsafe { open_common(Some(dirfd), path, flags, 0, |p| real(dirfd, p, flags)) }
}

/// Like `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if table::ours(fd).is_some() {
        return guard(-1, || table::close(fd).map(|()| 0));
    }
    // SAFETY: the caller's descriptor.
    unsafe { real!("close" as unsafe extern "C" fn(c_int) -> c_int)(fd) }
}

// ---------------------------------------------------------------------------
// read and write
// ---------------------------------------------------------------------------

/// `buf` as a slice; a null buffer is EFAULT unless it is empty.
unsafe fn bytes<'a>(buf: *const c_void, len: size_t) -> Result<&'a [u8], c_int> {
    match (buf.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(libc::EFAULT),
        // SAFETY: the caller's buffer of `len` bytes.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(buf.cast(), len) }),
    }
}

unsafe fn bytes_mut<'a>(buf: *mut c_void, len: size_t) -> Result<&'a mut [u8], c_int> {
    match (buf.is_null(), len) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(libc::EFAULT),
        // SAFETY: the caller's buffer of `len` bytes.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast(), len) }),
    }
}

fn offset(off: off_t) -> Result<u64, c_int> {
    u64::try_from(off).map_err(|_| libc::EINVAL)
}

pub(crate) unsafe fn read_ours(bfd: i32, buf: *mut c_void, count: size_t, at: Option<off_t>) -> ssize_t {
    guard(-1, || {
        // SAFETY: the caller's buffer.
        let buf = unsafe { bytes_mut(buf, count)? };
        let n = match at {
            Some(off) => benchfs::pread(bfd, buf, offset(off)?),
            None => benchfs::read(bfd, buf),
        };
        n.map(|n| n as ssize_t).map_err(code)
    })
}

pub(crate) unsafe fn write_ours(bfd: i32, buf: *const c_void, count: size_t, at: Option<off_t>) -> ssize_t {
    guard(-1, || {
        // SAFETY: the caller's buffer.
        let buf = unsafe { bytes(buf, count)? };
        let n = match at {
            Some(off) => benchfs::pwrite(bfd, buf, offset(off)?),
            None => benchfs::write(bfd, buf),
        };
        n.map(|n| n as ssize_t).map_err(code)
    })
}

/// Like `read(2)`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    match table::ours(fd) {
        // SAFETY: the caller's buffer.
        Some(bfd) => unsafe { read_ours(bfd, buf, count, None) },
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("read" as unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t)(fd, buf, count) },
    }
}

/// The `read` that `_FORTIFY_SOURCE` calls when it knows the buffer's size.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t {
    match table::ours(fd) {
        Some(_) if count > buflen => guard(-1, || Err(libc::EFAULT)),
        // SAFETY: the caller's buffer.
        Some(bfd) => unsafe { read_ours(bfd, buf, count, None) },
        // SAFETY: the caller's arguments, passed on.
        None => unsafe {
            real!("__read_chk" as unsafe extern "C" fn(c_int, *mut c_void, size_t, size_t) -> ssize_t)(fd, buf, count, buflen)
        },
    }
}

/// Like `write(2)`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    match table::ours(fd) {
        // SAFETY: the caller's buffer.
        Some(bfd) => unsafe { write_ours(bfd, buf, count, None) },
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("write" as unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t)(fd, buf, count) },
    }
}

type PreadFn = unsafe extern "C" fn(c_int, *mut c_void, size_t, off_t) -> ssize_t;
type PwriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t;
type PreadChkFn = unsafe extern "C" fn(c_int, *mut c_void, size_t, off_t, size_t) -> ssize_t;

macro_rules! positioned {
    ($name:ident, $real:literal, $buf:ty, $ours:ident, $fn:ty) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, buf: $buf, count: size_t, off: off_t) -> ssize_t {
            match table::ours(fd) {
                // SAFETY: the caller's buffer.
                Some(bfd) => unsafe { $ours(bfd, buf, count, Some(off)) },
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as $fn)(fd, buf, count, off) },
            }
        }
    };
}

positioned!(pread, "pread", *mut c_void, read_ours, PreadFn);
positioned!(pread64, "pread64", *mut c_void, read_ours, PreadFn);
positioned!(pwrite, "pwrite", *const c_void, write_ours, PwriteFn);
positioned!(pwrite64, "pwrite64", *const c_void, write_ours, PwriteFn);

macro_rules! positioned_read_chk {
    ($name:ident, $real:literal, $plain:literal) => {
        #[doc = concat!("The `", $plain, "` that `_FORTIFY_SOURCE` calls when it knows the buffer's size.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, buf: *mut c_void, count: size_t, off: off_t, buflen: size_t) -> ssize_t {
            match table::ours(fd) {
                Some(_) if count > buflen => guard(-1, || Err(libc::EFAULT)),
                // SAFETY: the caller's buffer.
                Some(bfd) => unsafe { read_ours(bfd, buf, count, Some(off)) },
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as PreadChkFn)(fd, buf, count, off, buflen) },
            }
        }
    };
}

positioned_read_chk!(__pread_chk, "__pread_chk", "pread");
positioned_read_chk!(__pread64_chk, "__pread64_chk", "pread64");

/// The caller's `iovcnt` buffers.
unsafe fn iovecs<'a>(iov: *const iovec, iovcnt: c_int) -> Result<&'a [iovec], c_int> {
    match iovcnt {
        0 => Ok(&[]),
        n if !(1..=libc::UIO_MAXIOV).contains(&n) => Err(libc::EINVAL),
        _ if iov.is_null() => Err(libc::EFAULT),
        // SAFETY: the caller's array of `iovcnt` entries.
        n => Ok(unsafe { std::slice::from_raw_parts(iov, n as usize) }),
    }
}

/// Reads into (or writes from) each buffer in turn, from `at` on (or the descriptor's offset);
/// stops at the first short transfer. A failure after some bytes moved returns those bytes.
unsafe fn vectored(bfd: i32, iov: *const iovec, iovcnt: c_int, at: Option<off_t>, writing: bool) -> ssize_t {
    guard(-1, || {
        // SAFETY: the caller's array.
        let parts = unsafe { iovecs(iov, iovcnt)? };
        let mut done: usize = 0;
        for part in parts {
            let at = at.map(|off| off + done as off_t);
            // SAFETY: each entry is a buffer of the caller's.
            let moved = unsafe {
                if writing {
                    write_ours(bfd, part.iov_base, part.iov_len, at)
                } else {
                    read_ours(bfd, part.iov_base, part.iov_len, at)
                }
            };
            if moved < 0 {
                return if done > 0 { Ok(done as ssize_t) } else { Err(crate::errno()) };
            }
            done += moved as usize;
            if (moved as usize) < part.iov_len {
                break;
            }
        }
        Ok(done as ssize_t)
    })
}

type VecFn = unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t;
type VecAtFn = unsafe extern "C" fn(c_int, *const iovec, c_int, off_t) -> ssize_t;
type VecAt2Fn = unsafe extern "C" fn(c_int, *const iovec, c_int, off_t, c_int) -> ssize_t;

/// Like `readv(2)`.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    match table::ours(fd) {
        // SAFETY: the caller's buffers.
        Some(bfd) => unsafe { vectored(bfd, iov, iovcnt, None, false) },
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("readv" as VecFn)(fd, iov, iovcnt) },
    }
}

/// Like `writev(2)`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    match table::ours(fd) {
        // SAFETY: the caller's buffers.
        Some(bfd) => unsafe { vectored(bfd, iov, iovcnt, None, true) },
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("writev" as VecFn)(fd, iov, iovcnt) },
    }
}

macro_rules! positioned_vector {
    ($name:ident, $real:literal, $writing:expr) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, iov: *const iovec, iovcnt: c_int, off: off_t) -> ssize_t {
            match table::ours(fd) {
                // SAFETY: the caller's buffers.
                Some(bfd) => unsafe { vectored(bfd, iov, iovcnt, Some(off), $writing) },
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as VecAtFn)(fd, iov, iovcnt, off) },
            }
        }
    };
}

positioned_vector!(preadv, "preadv", false);
positioned_vector!(preadv64, "preadv64", false);
positioned_vector!(pwritev, "pwritev", true);
positioned_vector!(pwritev64, "pwritev64", true);

macro_rules! positioned_vector2 {
    ($name:ident, $real:literal, $writing:expr) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`: an offset of -1 is the descriptor's own; the flags are hints.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, iov: *const iovec, iovcnt: c_int, off: off_t, flags: c_int) -> ssize_t {
            match table::ours(fd) {
                // SAFETY: the caller's buffers.
                Some(bfd) => unsafe { vectored(bfd, iov, iovcnt, (off != -1).then_some(off), $writing) },
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as VecAt2Fn)(fd, iov, iovcnt, off, flags) },
            }
        }
    };
}

positioned_vector2!(preadv2, "preadv2", false);
positioned_vector2!(pwritev2, "pwritev2", true);

// ---------------------------------------------------------------------------
// seek, sync, truncate
// ---------------------------------------------------------------------------

fn lseek_ours(bfd: i32, off: off_t, whence: c_int) -> off_t {
    guard(-1, || {
        let whence = match whence {
            libc::SEEK_SET => benchfs::Whence::Set,
            libc::SEEK_CUR => benchfs::Whence::Cur,
            libc::SEEK_END => benchfs::Whence::End,
            _ => return Err(libc::EINVAL),
        };
        benchfs::lseek(bfd, off, whence).map(|at| at as off_t).map_err(code)
    })
}

macro_rules! lseek_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, off: off_t, whence: c_int) -> off_t {
            match table::ours(fd) {
                Some(bfd) => lseek_ours(bfd, off, whence),
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as unsafe extern "C" fn(c_int, off_t, c_int) -> off_t)(fd, off, whence) },
            }
        }
    };
}

lseek_fn!(lseek, "lseek");
lseek_fn!(lseek64, "lseek64");

/// Like `fsync(2)`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    match table::ours(fd) {
        Some(bfd) => guard(-1, || benchfs::fsync(bfd).map(|()| 0).map_err(code)),
        // SAFETY: the caller's descriptor.
        None => unsafe { real!("fsync" as unsafe extern "C" fn(c_int) -> c_int)(fd) },
    }
}

/// Like `fdatasync(2)`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    match table::ours(fd) {
        Some(bfd) => guard(-1, || benchfs::fsync(bfd).map(|()| 0).map_err(code)),
        // SAFETY: the caller's descriptor.
        None => unsafe { real!("fdatasync" as unsafe extern "C" fn(c_int) -> c_int)(fd) },
    }
}

fn ftruncate_ours(bfd: i32, len: off_t) -> c_int {
    guard(-1, || benchfs::ftruncate(bfd, offset(len)?).map(|()| 0).map_err(code))
}

/// Like `ftruncate(2)`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    match table::ours(fd) {
        Some(bfd) => ftruncate_ours(bfd, len),
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("ftruncate" as unsafe extern "C" fn(c_int, off_t) -> c_int)(fd, len) },
    }
}

/// Like `ftruncate64(2)`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    match table::ours(fd) {
        Some(bfd) => ftruncate_ours(bfd, len),
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("ftruncate64" as unsafe extern "C" fn(c_int, off_t) -> c_int)(fd, len) },
    }
}

/// A path call: BenchFS's `ours` for a path under the mount, the C library's `kernel` (given
/// the path to use) otherwise.
pub(crate) unsafe fn on_path(path: Path, ours: impl FnOnce(Vec<u8>) -> Result<c_int, c_int>, kernel: impl FnOnce(Path) -> c_int) -> c_int {
    // SAFETY: the caller's path.
    match unsafe { target(path) } {
        Some(Target::Ours(inside)) => guard(-1, || ours(inside)),
        Some(Target::Kernel(absolute)) => kernel(kernel_path(path, &absolute)),
        None => kernel(path),
    }
}

/// As [`on_path`], for a path relative to `dirfd`.
unsafe fn on_path_at(
    dirfd: c_int,
    path: Path,
    ours: impl FnOnce(Vec<u8>) -> Result<c_int, c_int>,
    kernel: impl FnOnce(Path) -> c_int,
) -> c_int {
    // SAFETY: the caller's path.
    match unsafe { target_at(dirfd, path) } {
        Some(Target::Ours(inside)) => guard(-1, || ours(inside)),
        Some(Target::Kernel(absolute)) => kernel(kernel_path(path, &absolute)),
        None => kernel(path),
    }
}

/// Like `truncate(2)`.
#[no_mangle]
pub unsafe extern "C" fn truncate(path: Path, len: off_t) -> c_int {
    let real = real!("truncate" as unsafe extern "C" fn(Path, off_t) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::truncate(p, offset(len)?).map(|()| 0).map_err(code), |p| real(p, len)) }
}

/// Like `truncate64(2)`.
#[no_mangle]
pub unsafe extern "C" fn truncate64(path: Path, len: off_t) -> c_int {
    let real = real!("truncate64" as unsafe extern "C" fn(Path, off_t) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::truncate(p, offset(len)?).map(|()| 0).map_err(code), |p| real(p, len)) }
}

// ---------------------------------------------------------------------------
// names
// ---------------------------------------------------------------------------

/// Like `access(2)`.
#[no_mangle]
pub unsafe extern "C" fn access(path: Path, mode: c_int) -> c_int {
    let real = real!("access" as unsafe extern "C" fn(Path, c_int) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::access(p, mode).map(|()| 0).map_err(code), |p| real(p, mode)) }
}

/// Like `faccessat(2)`; BenchFS checks the calling user whatever the flags.
#[no_mangle]
pub unsafe extern "C" fn faccessat(dirfd: c_int, path: Path, mode: c_int, flags: c_int) -> c_int {
    let real = real!("faccessat" as unsafe extern "C" fn(c_int, Path, c_int, c_int) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path_at(dirfd, path, |p| benchfs::access(p, mode).map(|()| 0).map_err(code), |p| real(dirfd, p, mode, flags)) }
}

/// Like `unlink(2)`.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: Path) -> c_int {
    let real = real!("unlink" as unsafe extern "C" fn(Path) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::unlink(p).map(|()| 0).map_err(code), |p| real(p)) }
}

/// Like `remove(3)`: a file is unlinked, a directory removed. (glibc's own `remove` would call
/// the system directly.)
#[no_mangle]
pub unsafe extern "C" fn remove(path: Path) -> c_int {
    let real = real!("remove" as unsafe extern "C" fn(Path) -> c_int);
    let ours = |p: Vec<u8>| match benchfs::stat(&p).map_err(code)? {
        st if st.mode & libc::S_IFMT == libc::S_IFDIR => benchfs::rmdir(p).map(|()| 0).map_err(code),
        _ => benchfs::unlink(p).map(|()| 0).map_err(code),
    };
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, ours, |p| real(p)) }
}

/// Like `unlinkat(2)`, `AT_REMOVEDIR` included.
#[no_mangle]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: Path, flags: c_int) -> c_int {
    let real = real!("unlinkat" as unsafe extern "C" fn(c_int, Path, c_int) -> c_int);
    let ours = |p: Vec<u8>| {
        let removed = if flags & libc::AT_REMOVEDIR != 0 { benchfs::rmdir(p) } else { benchfs::unlink(p) };
        removed.map(|()| 0).map_err(code)
    };
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path_at(dirfd, path, ours, |p| real(dirfd, p, flags)) }
}

/// Like `mkdir(2)`.
#[no_mangle]
pub unsafe extern "C" fn mkdir(path: Path, mode: mode_t) -> c_int {
    let real = real!("mkdir" as unsafe extern "C" fn(Path, mode_t) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::mkdir(p, mode).map(|()| 0).map_err(code), |p| real(p, mode)) }
}

/// Like `mkdirat(2)`.
#[no_mangle]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: Path, mode: mode_t) -> c_int {
    let real = real!("mkdirat" as unsafe extern "C" fn(c_int, Path, mode_t) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path_at(dirfd, path, |p| benchfs::mkdir(p, mode).map(|()| 0).map_err(code), |p| real(dirfd, p, mode)) }
}

/// Like `rmdir(2)`.
#[no_mangle]
pub unsafe extern "C" fn rmdir(path: Path) -> c_int {
    let real = real!("rmdir" as unsafe extern "C" fn(Path) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::rmdir(p).map(|()| 0).map_err(code), |p| real(p)) }
}

/// A rename between `from` and `to` (each relative to its directory descriptor): BenchFS's if
/// both are under the mount, the C library's if neither is, `EXDEV` across.
unsafe fn rename_common(
    from_dir: c_int,
    from: Path,
    to_dir: c_int,
    to: Path,
    flags: c_int,
    kernel: impl FnOnce(Path, Path) -> c_int,
) -> c_int {
    // SAFETY: the caller's paths.
    let (source, dest) = unsafe { (target_at(from_dir, from), target_at(to_dir, to)) };
    match (source, dest) {
        (Some(Target::Ours(a)), Some(Target::Ours(b))) => guard(-1, || {
            if flags & !(libc::RENAME_NOREPLACE as c_int) != 0 {
                return Err(libc::EINVAL);
            }
            if flags & libc::RENAME_NOREPLACE as c_int != 0 && benchfs::stat(&b).is_ok() {
                return Err(libc::EEXIST);
            }
            benchfs::rename(a, b).map(|()| 0).map_err(code)
        }),
        (Some(Target::Ours(_)), Some(_)) | (Some(_), Some(Target::Ours(_))) => guard(-1, || Err(libc::EXDEV)),
        (Some(Target::Kernel(a)), Some(Target::Kernel(b))) => kernel(kernel_path(from, &a), kernel_path(to, &b)),
        _ => kernel(from, to),
    }
}

/// Like `rename(2)`.
#[no_mangle]
pub unsafe extern "C" fn rename(from: Path, to: Path) -> c_int {
    let real = real!("rename" as unsafe extern "C" fn(Path, Path) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { rename_common(libc::AT_FDCWD, from, libc::AT_FDCWD, to, 0, |a, b| real(a, b)) }
}

/// Like `renameat(2)`.
#[no_mangle]
pub unsafe extern "C" fn renameat(from_dir: c_int, from: Path, to_dir: c_int, to: Path) -> c_int {
    let real = real!("renameat" as unsafe extern "C" fn(c_int, Path, c_int, Path) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { rename_common(from_dir, from, to_dir, to, 0, |a, b| real(from_dir, a, to_dir, b)) }
}

/// Like `renameat2(2)`; on BenchFS `RENAME_NOREPLACE` checks first (not atomic with the rename)
/// and the other flags are `EINVAL`.
#[no_mangle]
pub unsafe extern "C" fn renameat2(from_dir: c_int, from: Path, to_dir: c_int, to: Path, flags: libc::c_uint) -> c_int {
    let real = real!("renameat2" as unsafe extern "C" fn(c_int, Path, c_int, Path, libc::c_uint) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { rename_common(from_dir, from, to_dir, to, flags as c_int, |a, b| real(from_dir, a, to_dir, b, flags)) }
}

/// BenchFS has no links: a link to or from it fails.
fn no_links(inside: Vec<u8>) -> Result<c_int, c_int> {
    match benchfs::stat(&inside) {
        Ok(_) => Err(libc::EPERM),
        Err(e) => Err(code(e)),
    }
}

/// Like `link(2)`: `EPERM` on BenchFS, `EXDEV` across.
#[no_mangle]
pub unsafe extern "C" fn link(from: Path, to: Path) -> c_int {
    let real = real!("link" as unsafe extern "C" fn(Path, Path) -> c_int);
    // SAFETY: the caller's paths.
    match unsafe { (target(from), target(to)) } {
        (Some(Target::Ours(a)), Some(Target::Ours(_))) => guard(-1, || no_links(a)),
        (Some(Target::Ours(_)), _) | (_, Some(Target::Ours(_))) => guard(-1, || Err(libc::EXDEV)),
        // SAFETY: the caller's arguments, passed on.
        (Some(Target::Kernel(a)), Some(Target::Kernel(b))) => unsafe { real(kernel_path(from, &a), kernel_path(to, &b)) },
        // SAFETY: as above.
        _ => unsafe { real(from, to) },
    }
}

/// Like `symlink(2)`: `EPERM` for a link made on BenchFS.
#[no_mangle]
pub unsafe extern "C" fn symlink(target_path: Path, link_path: Path) -> c_int {
    let real = real!("symlink" as unsafe extern "C" fn(Path, Path) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(link_path, |_| Err(libc::EPERM), |p| real(target_path, p)) }
}

/// Like `readlink(2)`: nothing on BenchFS is a link (`EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn readlink(path: Path, buf: *mut c_char, size: size_t) -> ssize_t {
    let real = real!("readlink" as unsafe extern "C" fn(Path, *mut c_char, size_t) -> ssize_t);
    // SAFETY: the caller's path.
    match unsafe { target(path) } {
        Some(Target::Ours(inside)) => guard(-1, || benchfs::stat(inside).map_err(code).and(Err(libc::EINVAL))),
        // SAFETY: the caller's arguments, passed on.
        Some(Target::Kernel(absolute)) => unsafe { real(kernel_path(path, &absolute), buf, size) },
        // SAFETY: as above.
        None => unsafe { real(path, buf, size) },
    }
}

/// Like `readlinkat(2)`: nothing on BenchFS is a link (`EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn readlinkat(dirfd: c_int, path: Path, buf: *mut c_char, size: size_t) -> ssize_t {
    let real = real!("readlinkat" as unsafe extern "C" fn(c_int, Path, *mut c_char, size_t) -> ssize_t);
    // SAFETY: the caller's path.
    match unsafe { target_at(dirfd, path) } {
        Some(Target::Ours(inside)) => guard(-1, || benchfs::stat(inside).map_err(code).and(Err(libc::EINVAL))),
        // SAFETY: the caller's arguments, passed on.
        Some(Target::Kernel(absolute)) => unsafe { real(dirfd, kernel_path(path, &absolute), buf, size) },
        // SAFETY: as above.
        None => unsafe { real(dirfd, path, buf, size) },
    }
}

/// Like `chmod(2)`: BenchFS keeps the mode it was created with (`EPERM`).
#[no_mangle]
pub unsafe extern "C" fn chmod(path: Path, mode: mode_t) -> c_int {
    let real = real!("chmod" as unsafe extern "C" fn(Path, mode_t) -> c_int);
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| benchfs::stat(p).map_err(code).and(Err(libc::EPERM)), |p| real(p, mode)) }
}

/// `realpath` of BenchFS path `inside` (no links, so its lexical form) into `resolved`, or a
/// new buffer the caller frees.
fn realpath_ours(inside: &[u8], resolved: *mut c_char) -> Result<*mut c_char, c_int> {
    benchfs::stat(inside).map_err(code)?;
    let mut full = path::outside(&path::normalize(inside));
    if full.len() >= libc::PATH_MAX as usize {
        return Err(libc::ENAMETOOLONG);
    }
    full.push(0);
    let out = if resolved.is_null() {
        // SAFETY: plain allocation; the caller frees it, as with glibc's realpath.
        unsafe { libc::malloc(libc::PATH_MAX as usize) }.cast::<c_char>()
    } else {
        resolved
    };
    if out.is_null() {
        return Err(libc::ENOMEM);
    }
    // SAFETY: `out` has PATH_MAX bytes (the caller's, as realpath requires, or ours).
    unsafe { std::ptr::copy_nonoverlapping(full.as_ptr().cast(), out, full.len()) };
    Ok(out)
}

/// Like `realpath(3)` (glibc's resolves names with its own internal calls).
#[no_mangle]
pub unsafe extern "C" fn realpath(path: Path, resolved: *mut c_char) -> *mut c_char {
    let real = real!("realpath" as unsafe extern "C" fn(Path, *mut c_char) -> *mut c_char);
    // SAFETY: the caller's path.
    match unsafe { target(path) } {
        Some(Target::Ours(inside)) => guard(std::ptr::null_mut(), || realpath_ours(&inside, resolved)),
        // SAFETY: the caller's arguments, passed on.
        Some(Target::Kernel(absolute)) => unsafe { real(kernel_path(path, &absolute), resolved) },
        // SAFETY: as above.
        None => unsafe { real(path, resolved) },
    }
}

/// Like `canonicalize_file_name(3)`.
#[no_mangle]
pub unsafe extern "C" fn canonicalize_file_name(path: Path) -> *mut c_char {
    // SAFETY: the caller's path; a null buffer makes realpath allocate.
    unsafe { realpath(path, std::ptr::null_mut()) }
}

// ---------------------------------------------------------------------------
// descriptors
// ---------------------------------------------------------------------------

/// Like `dup(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let real = real!("dup" as unsafe extern "C" fn(c_int) -> c_int);
    if table::ours(fd).is_none() {
        // SAFETY: the caller's descriptor.
        return unsafe { real(fd) };
    }
    // SAFETY: duplicating the placeholder.
    guard(-1, || table::duplicate(fd, None, || unsafe { real(fd) }))
}

/// Like `dup2(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let real = real!("dup2" as unsafe extern "C" fn(c_int, c_int) -> c_int);
    if table::ours(old).is_none() && table::ours(new).is_none() {
        // SAFETY: the caller's descriptors.
        return unsafe { real(old, new) };
    }
    // SAFETY: as above.
    guard(-1, || table::duplicate(old, Some(new), || unsafe { real(old, new) }))
}

/// Like `dup3(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let real = real!("dup3" as unsafe extern "C" fn(c_int, c_int, c_int) -> c_int);
    if table::ours(old).is_none() && table::ours(new).is_none() {
        // SAFETY: the caller's descriptors.
        return unsafe { real(old, new, flags) };
    }
    if old == new {
        return guard(-1, || Err(libc::EINVAL));
    }
    // SAFETY: as above.
    guard(-1, || table::duplicate(old, Some(new), || unsafe { real(old, new, flags) }))
}

type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;

/// `fcntl` on a descriptor that stands for a BenchFS file.
fn fcntl_ours(fd: c_int, bfd: i32, cmd: c_int, arg: libc::c_ulong, real: FcntlFn) -> c_int {
    guard(-1, || match cmd {
        // SAFETY: duplicating the placeholder with the caller's lowest number.
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => table::duplicate(fd, None, || unsafe { real(fd, cmd, arg) }),
        libc::F_GETFD | libc::F_SETFD => {
            // SAFETY: the close-on-exec flag lives on the placeholder.
            let r = unsafe { real(fd, cmd, arg) };
            if r < 0 {
                Err(crate::errno())
            } else {
                Ok(r)
            }
        }
        libc::F_GETFL => {
            Ok(table::open_of(bfd).map_or(0, |o| o.flags & !libc::O_CLOEXEC & !libc::O_CREAT & !libc::O_EXCL & !libc::O_TRUNC))
        }
        libc::F_SETFL => {
            let Some(open) = table::open_of(bfd) else { return Err(libc::EBADF) };
            // BenchFS fixes O_APPEND at open; only the hints may change.
            if (arg as c_int ^ open.flags) & libc::O_APPEND != 0 {
                return Err(libc::EINVAL);
            }
            let hints = libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME;
            table::set_flags(bfd, (open.flags & !hints) | (arg as c_int & hints));
            Ok(0)
        }
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW => Err(libc::ENOLCK),
        _ => Err(libc::EINVAL),
    })
}

macro_rules! fcntl_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(2)`: on BenchFS, descriptor flags, status flags (`O_APPEND` fixed at open) and duplication; record locks are `ENOLCK`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
            let real = real!($real as FcntlFn);
            match table::ours(fd) {
                Some(bfd) => fcntl_ours(fd, bfd, cmd, arg, real),
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real(fd, cmd, arg) },
            }
        }
    };
}

fcntl_fn!(fcntl, "fcntl");
fcntl_fn!(fcntl64, "fcntl64");

/// Like `flock(2)`: no locks on BenchFS (`ENOLCK`).
#[no_mangle]
pub unsafe extern "C" fn flock(fd: c_int, operation: c_int) -> c_int {
    match table::ours(fd) {
        Some(_) => guard(-1, || Err(libc::ENOLCK)),
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("flock" as unsafe extern "C" fn(c_int, c_int) -> c_int)(fd, operation) },
    }
}

type MmapFn = unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;

fn mmap_refused() -> *mut c_void {
    crate::set_errno(libc::ENODEV);
    libc::MAP_FAILED
}

/// Like `mmap(2)`; a BenchFS file cannot be mapped (`ENODEV`).
#[no_mangle]
pub unsafe extern "C" fn mmap(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 && table::ours(fd).is_some() {
        return mmap_refused();
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real!("mmap" as MmapFn)(addr, len, prot, flags, fd, off) }
}

/// Like `mmap64(2)`; a BenchFS file cannot be mapped (`ENODEV`).
#[no_mangle]
pub unsafe extern "C" fn mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void {
    if flags & libc::MAP_ANONYMOUS == 0 && table::ours(fd).is_some() {
        return mmap_refused();
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real!("mmap64" as MmapFn)(addr, len, prot, flags, fd, off) }
}

// ---------------------------------------------------------------------------
// the current directory
// ---------------------------------------------------------------------------

/// Makes BenchFS directory `inside` the current directory.
fn enter_dir(inside: &[u8]) -> Result<c_int, c_int> {
    let st = benchfs::stat(inside).map_err(code)?;
    if st.mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(libc::ENOTDIR);
    }
    path::set_cwd(Some(path::normalize(inside)));
    Ok(0)
}

/// Like `chdir(2)`; a directory under the mount becomes the current one for relative paths
/// here (the kernel's stays where it was).
#[no_mangle]
pub unsafe extern "C" fn chdir(path: Path) -> c_int {
    let real = real!("chdir" as unsafe extern "C" fn(Path) -> c_int);
    let kernel = |p: Path| {
        // SAFETY: the caller's path (or its absolute spelling).
        let r = unsafe { real(p) };
        if r == 0 {
            path::set_cwd(None);
        }
        r
    };
    // SAFETY: the caller's arguments, passed on.
    unsafe { on_path(path, |p| enter_dir(&p), kernel) }
}

/// Like `fchdir(2)`.
#[no_mangle]
pub unsafe extern "C" fn fchdir(fd: c_int) -> c_int {
    if let Some(bfd) = table::ours(fd) {
        return guard(-1, || enter_dir(&table::open_of(bfd).ok_or(libc::EBADF)?.path));
    }
    // SAFETY: the caller's descriptor.
    let r = unsafe { real!("fchdir" as unsafe extern "C" fn(c_int) -> c_int)(fd) };
    if r == 0 {
        path::set_cwd(None);
    }
    r
}

/// Writes the current directory inside the mount into `buf` (`size` bytes; a null `buf` is
/// allocated, as glibc does).
fn getcwd_ours(cwd: &[u8], buf: *mut c_char, size: size_t) -> Result<*mut c_char, c_int> {
    let mut full = path::outside(cwd);
    full.push(0);
    if buf.is_null() {
        let len = if size == 0 { full.len() } else { size };
        if len < full.len() {
            return Err(libc::ERANGE);
        }
        // SAFETY: plain allocation; the caller frees it, as with glibc's getcwd.
        let out = unsafe { libc::malloc(len) }.cast::<c_char>();
        if out.is_null() {
            return Err(libc::ENOMEM);
        }
        // SAFETY: `out` has room for `full`.
        unsafe { std::ptr::copy_nonoverlapping(full.as_ptr().cast(), out, full.len()) };
        return Ok(out);
    }
    if size < full.len() {
        return Err(if size == 0 { libc::EINVAL } else { libc::ERANGE });
    }
    // SAFETY: the caller's buffer has `size` bytes, enough for `full`.
    unsafe { std::ptr::copy_nonoverlapping(full.as_ptr().cast(), buf, full.len()) };
    Ok(buf)
}

/// Like `getcwd(3)`.
#[no_mangle]
pub unsafe extern "C" fn getcwd(buf: *mut c_char, size: size_t) -> *mut c_char {
    match path::cwd() {
        Some(cwd) => guard(std::ptr::null_mut(), || getcwd_ours(&cwd, buf, size)),
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("getcwd" as unsafe extern "C" fn(*mut c_char, size_t) -> *mut c_char)(buf, size) },
    }
}

/// The `getcwd` that `_FORTIFY_SOURCE` calls when it knows the buffer's size.
#[no_mangle]
pub unsafe extern "C" fn __getcwd_chk(buf: *mut c_char, size: size_t, buflen: size_t) -> *mut c_char {
    match path::cwd() {
        Some(_) if size > buflen => guard(std::ptr::null_mut(), || Err(libc::EFAULT)),
        Some(cwd) => guard(std::ptr::null_mut(), || getcwd_ours(&cwd, buf, size)),
        // SAFETY: the caller's arguments, passed on.
        None => unsafe { real!("__getcwd_chk" as unsafe extern "C" fn(*mut c_char, size_t, size_t) -> *mut c_char)(buf, size, buflen) },
    }
}

/// Like `get_current_dir_name(3)`.
#[no_mangle]
pub unsafe extern "C" fn get_current_dir_name() -> *mut c_char {
    match path::cwd() {
        Some(cwd) => guard(std::ptr::null_mut(), || getcwd_ours(&cwd, std::ptr::null_mut(), 0)),
        // SAFETY: plain call.
        None => unsafe { real!("get_current_dir_name" as unsafe extern "C" fn() -> *mut c_char)() },
    }
}
