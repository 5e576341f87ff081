//! The C API of `include/benchfs.h`: the only `#[no_mangle]` code.
//!
//! Every exported function goes through [`boundary`], which catches panics, and converts a
//! `Result` into the POSIX convention: the value, or `-1` (NULL) with `errno` set.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::fs::{self as client, Dir, FileStat, Whence};

/// The failure value of a C return type.
trait Failure {
    const FAILED: Self;
}

impl Failure for c_int {
    const FAILED: c_int = -1;
}

impl Failure for isize {
    const FAILED: isize = -1;
}

impl Failure for i64 {
    const FAILED: i64 = -1;
}

impl<T> Failure for *mut T {
    const FAILED: *mut T = std::ptr::null_mut();
}

fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = value };
}

/// Runs `f`, mapping an error or a panic to `T::FAILED` with `errno` set.
fn boundary<T: Failure>(name: &'static str, f: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            tracing::debug!(call = name, error = %e, "call failed");
            set_errno(e.errno());
            T::FAILED
        }
        Err(_) => {
            tracing::error!(call = name, "internal panic caught at the C boundary");
            set_errno(libc::EIO);
            T::FAILED
        }
    }
}

/// A C path argument as `&str`.
///
/// # Safety
/// `path` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn path_arg<'a>(path: *const c_char) -> Result<&'a str> {
    if path.is_null() {
        return Err(Error::NullPointer("path"));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.len() > crate::path::MAX_PATH {
        return Err(Error::NameTooLong);
    }
    std::str::from_utf8(bytes).map_err(|_| Error::InvalidArgument("path is not valid UTF-8"))
}

fn offset_arg(offset: libc::off_t) -> Result<u64> {
    u64::try_from(offset).map_err(|_| Error::InvalidArgument("negative offset"))
}

fn count_arg(count: usize) -> Result<usize> {
    if count > isize::MAX as usize {
        return Err(Error::InvalidArgument("count exceeds SSIZE_MAX"));
    }
    Ok(count)
}

fn fill_stat(st: &mut libc::stat, s: &FileStat) {
    // SAFETY: libc::stat is plain old data; all-zero is a valid value.
    *st = unsafe { std::mem::zeroed() };
    st.st_ino = s.ino;
    st.st_mode = s.mode;
    st.st_nlink = s.nlink as _;
    st.st_uid = s.uid;
    st.st_gid = s.gid;
    st.st_size = s.size as i64;
    st.st_blksize = s.blksize as _;
    st.st_blocks = s.size.div_ceil(512) as i64;
    st.st_atime = s.atime_ns.div_euclid(1_000_000_000);
    st.st_atime_nsec = s.atime_ns.rem_euclid(1_000_000_000);
    st.st_mtime = s.mtime_ns.div_euclid(1_000_000_000);
    st.st_mtime_nsec = s.mtime_ns.rem_euclid(1_000_000_000);
    st.st_ctime = s.ctime_ns.div_euclid(1_000_000_000);
    st.st_ctime_nsec = s.ctime_ns.rem_euclid(1_000_000_000);
}

/// Collective over `comm`: starts BenchFS on this rank (see the header).
///
/// # Safety
/// `comm` is a valid communicator handle (or `MPI_COMM_NULL`, which fails with EINVAL), and MPI
/// is initialized.
#[no_mangle]
pub unsafe extern "C" fn benchfs_init(comm: mpi::ffi::MPI_Comm) -> c_int {
    boundary("benchfs_init", || client::init_raw(comm).map(|()| 0))
}

/// Collective over `comm` (the client job's): connects to a running BenchFS through the contact
/// file it published (`BENCHFS_CONTACT_FILE`), as a pure client that serves nothing.
///
/// # Safety
/// `comm` is a valid communicator handle and MPI is initialized; `contact_file` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_attach(comm: mpi::ffi::MPI_Comm, contact_file: *const c_char) -> c_int {
    boundary("benchfs_attach", || {
        if contact_file.is_null() {
            return Err(Error::NullPointer("contact_file"));
        }
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        let bytes = unsafe { CStr::from_ptr(contact_file) }.to_bytes();
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(bytes));
        client::attach_raw(comm, path).map(|()| 0)
    })
}

/// Collective: stops BenchFS on this rank; only the outermost call tears down.
///
/// # Safety
/// Call from the thread that uses MPI, before `MPI_Finalize`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_finalize() -> c_int {
    boundary("benchfs_finalize", || client::finalize().map(|()| 0))
}

/// Like `open(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_open", || client::open(unsafe { path_arg(path) }?, flags, mode))
}

/// Like `close(2)`.
///
/// # Safety
/// None beyond passing a BenchFS descriptor.
#[no_mangle]
pub unsafe extern "C" fn benchfs_close(fd: c_int) -> c_int {
    boundary("benchfs_close", || client::close(fd).map(|()| 0))
}

/// Like `pwrite(2)`.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for reads of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_pwrite(fd: c_int, buf: *const c_void, count: usize, offset: libc::off_t) -> isize {
    boundary("benchfs_pwrite", || {
        let count = count_arg(count)?;
        let offset = offset_arg(offset)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { in_slice(buf, count) }?;
        client::pwrite(fd, data, offset).map(|n| n as isize)
    })
}

/// Like `pread(2)`.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for writes of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_pread(fd: c_int, buf: *mut c_void, count: usize, offset: libc::off_t) -> isize {
    boundary("benchfs_pread", || {
        let count = count_arg(count)?;
        let offset = offset_arg(offset)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { out_slice(buf, count) }?;
        client::pread(fd, data, offset).map(|n| n as isize)
    })
}

/// Like `write(2)`.
///
/// # Safety
/// As for [`benchfs_pwrite`].
#[no_mangle]
pub unsafe extern "C" fn benchfs_write(fd: c_int, buf: *const c_void, count: usize) -> isize {
    boundary("benchfs_write", || {
        let count = count_arg(count)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { in_slice(buf, count) }?;
        client::write(fd, data).map(|n| n as isize)
    })
}

/// Like `read(2)`.
///
/// # Safety
/// As for [`benchfs_pread`].
#[no_mangle]
pub unsafe extern "C" fn benchfs_read(fd: c_int, buf: *mut c_void, count: usize) -> isize {
    boundary("benchfs_read", || {
        let count = count_arg(count)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { out_slice(buf, count) }?;
        client::read(fd, data).map(|n| n as isize)
    })
}

/// Like `lseek(2)` with `SEEK_SET`, `SEEK_CUR` or `SEEK_END`.
///
/// # Safety
/// None beyond passing a BenchFS descriptor.
#[no_mangle]
pub unsafe extern "C" fn benchfs_lseek(fd: c_int, offset: libc::off_t, whence: c_int) -> libc::off_t {
    boundary("benchfs_lseek", || {
        let whence = match whence {
            libc::SEEK_SET => Whence::Set,
            libc::SEEK_CUR => Whence::Cur,
            libc::SEEK_END => Whence::End,
            _ => return Err(Error::InvalidArgument("whence must be SEEK_SET, SEEK_CUR or SEEK_END")),
        };
        client::lseek(fd, offset, whence).map(|pos| pos as libc::off_t)
    })
}

/// Like `fsync(2)`.
///
/// # Safety
/// None beyond passing a BenchFS descriptor.
#[no_mangle]
pub unsafe extern "C" fn benchfs_fsync(fd: c_int) -> c_int {
    boundary("benchfs_fsync", || client::fsync(fd).map(|()| 0))
}

/// Like `stat(2)`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `st` is NULL or valid for writes of a `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_stat(path: *const c_char, st: *mut libc::stat) -> c_int {
    boundary("benchfs_stat", || {
        // SAFETY: forwarded caller contract.
        let path = unsafe { path_arg(path) }?;
        // SAFETY: forwarded caller contract.
        let st = unsafe { st.as_mut() }.ok_or(Error::NullPointer("st"))?;
        fill_stat(st, &client::stat(path)?);
        Ok(0)
    })
}

/// Like `fstat(2)`.
///
/// # Safety
/// `st` is NULL or valid for writes of a `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    boundary("benchfs_fstat", || {
        // SAFETY: forwarded caller contract.
        let st = unsafe { st.as_mut() }.ok_or(Error::NullPointer("st"))?;
        fill_stat(st, &client::fstat(fd)?);
        Ok(0)
    })
}

/// Like `unlink(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_unlink(path: *const c_char) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_unlink", || client::unlink(unsafe { path_arg(path) }?).map(|()| 0))
}

/// Like `mkdir(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_mkdir", || client::mkdir(unsafe { path_arg(path) }?, mode).map(|()| 0))
}

/// Like `rmdir(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_rmdir(path: *const c_char) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_rmdir", || client::rmdir(unsafe { path_arg(path) }?).map(|()| 0))
}

/// Like `rename(2)`.
///
/// # Safety
/// Both paths are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn benchfs_rename(oldpath: *const c_char, newpath: *const c_char) -> c_int {
    boundary("benchfs_rename", || {
        // SAFETY: forwarded caller contract.
        let (from, to) = unsafe { (path_arg(oldpath)?, path_arg(newpath)?) };
        client::rename(from, to).map(|()| 0)
    })
}

/// Like `truncate(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_truncate(path: *const c_char, length: libc::off_t) -> c_int {
    boundary("benchfs_truncate", || {
        // SAFETY: forwarded caller contract.
        let path = unsafe { path_arg(path) }?;
        client::truncate(path, offset_arg(length)?).map(|()| 0)
    })
}

/// Like `ftruncate(2)`.
///
/// # Safety
/// None beyond passing a BenchFS descriptor.
#[no_mangle]
pub unsafe extern "C" fn benchfs_ftruncate(fd: c_int, length: libc::off_t) -> c_int {
    boundary("benchfs_ftruncate", || client::ftruncate(fd, offset_arg(length)?).map(|()| 0))
}

/// Like `access(2)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_access(path: *const c_char, mode: c_int) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_access", || client::access(unsafe { path_arg(path) }?, mode).map(|()| 0))
}

/// Like `statvfs(2)`, with totals over all ranks.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `st` is NULL or valid for writes of a `struct statvfs`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_statvfs(path: *const c_char, st: *mut libc::statvfs) -> c_int {
    boundary("benchfs_statvfs", || {
        // SAFETY: forwarded caller contract.
        let path = unsafe { path_arg(path) }?;
        // SAFETY: forwarded caller contract.
        let st = unsafe { st.as_mut() }.ok_or(Error::NullPointer("st"))?;
        let fs = client::statvfs(path)?;
        // SAFETY: statvfs is plain old data; all-zero is a valid value.
        *st = unsafe { std::mem::zeroed() };
        st.f_bsize = fs.bsize;
        st.f_frsize = fs.bsize;
        st.f_blocks = fs.blocks;
        st.f_bfree = fs.bfree;
        st.f_bavail = fs.bavail;
        st.f_files = fs.files;
        st.f_ffree = fs.ffree;
        st.f_favail = fs.ffree;
        st.f_namemax = fs.namemax;
        Ok(0)
    })
}

/// An open directory stream of the C API (`benchfs_dir_t`).
pub struct BenchfsDir {
    dir: Dir,
    entry: libc::dirent,
}

/// Streams handed out and not yet closed: a pointer not in here is rejected with EBADF
/// instead of being dereferenced.
static OPEN_DIRS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn open_dirs() -> std::sync::MutexGuard<'static, Option<HashSet<usize>>> {
    OPEN_DIRS.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_dir(dir: *mut BenchfsDir) -> Result<()> {
    if dir.is_null() {
        return Err(Error::NullPointer("dir"));
    }
    if !open_dirs().as_ref().is_some_and(|set| set.contains(&(dir as usize))) {
        return Err(Error::BadFd(-1));
    }
    Ok(())
}

/// Like `opendir(3)`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_opendir(path: *const c_char) -> *mut BenchfsDir {
    boundary("benchfs_opendir", || {
        // SAFETY: forwarded caller contract.
        let dir = client::opendir(unsafe { path_arg(path) }?)?;
        // SAFETY: dirent is plain old data; all-zero is a valid value.
        let entry = unsafe { std::mem::zeroed() };
        let ptr = Box::into_raw(Box::new(BenchfsDir { dir, entry }));
        open_dirs().get_or_insert_with(HashSet::new).insert(ptr as usize);
        Ok(ptr)
    })
}

/// Like `readdir(3)`: NULL with errno unchanged at the end, NULL with errno set on error.
///
/// # Safety
/// `dir` is NULL or a stream from [`benchfs_opendir`]; one thread uses a stream at a time.
#[no_mangle]
pub unsafe extern "C" fn benchfs_readdir(dir: *mut BenchfsDir) -> *mut libc::dirent {
    boundary("benchfs_readdir", || {
        check_dir(dir)?;
        // SAFETY: dir is a live stream (checked above), used by this thread only.
        let dir = unsafe { &mut *dir };
        let Some(entry) = dir.dir.next_entry()? else { return Ok(std::ptr::null_mut()) };
        let out = &mut dir.entry;
        out.d_ino = entry.ino;
        out.d_off = 0;
        out.d_reclen = std::mem::size_of::<libc::dirent>() as u16;
        out.d_type = entry.kind;
        let name = entry.name.as_bytes();
        let n = name.len().min(out.d_name.len() - 1);
        for (dst, &src) in out.d_name.iter_mut().zip(&name[..n]) {
            *dst = src as c_char;
        }
        out.d_name[n] = 0;
        Ok(out as *mut libc::dirent)
    })
}

/// Like `closedir(3)`.
///
/// # Safety
/// `dir` is NULL or a stream from [`benchfs_opendir`] not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn benchfs_closedir(dir: *mut BenchfsDir) -> c_int {
    boundary("benchfs_closedir", || {
        check_dir(dir)?;
        open_dirs().get_or_insert_with(HashSet::new).remove(&(dir as usize));
        // SAFETY: dir came from Box::into_raw in benchfs_opendir and was live until just now.
        drop(unsafe { Box::from_raw(dir) });
        Ok(0)
    })
}

/// # Safety
/// `buf` is NULL (then `count` must be 0) or valid for reads of `count` bytes.
unsafe fn in_slice<'a>(buf: *const c_void, count: usize) -> Result<&'a [u8]> {
    if count == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(Error::NullPointer("buf"));
    }
    // SAFETY: non-NULL and valid for count bytes per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(buf as *const u8, count) })
}

/// # Safety
/// `buf` is NULL (then `count` must be 0) or valid for writes of `count` bytes.
unsafe fn out_slice<'a>(buf: *mut c_void, count: usize) -> Result<&'a mut [u8]> {
    if count == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Error::NullPointer("buf"));
    }
    // SAFETY: non-NULL and valid for count bytes per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, count) })
}
