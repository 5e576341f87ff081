//! The C API of `include/benchfs.h`: the only `#[no_mangle]` code.
//!
//! Every exported function goes through [`boundary`], which catches panics, and converts a
//! `Result` into the POSIX convention: the value, or `-1` (NULL) with `errno` set.
//!
//! The header is generated from this module by cbindgen (`cbindgen.toml`; `make header`), and
//! `tests/header.rs` fails when the committed one differs. The doc comment of an exported function
//! is its comment in the header, so it is written for C callers: what the call does, its POSIX
//! counterpart and errors first, then a `# Safety` section with what the caller guarantees. Its
//! signature uses the C types (`libc::off_t`, `libc::ssize_t`, `usize` for `size_t`) so that the
//! header declares the POSIX ones.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::fs::{self, Dir, FileStat, Whence};

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

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = value };
}

/// Runs `f`, mapping an error or a panic to `T::FAILED` with `errno` set. A call that succeeds
/// leaves `errno` as the caller set it, whatever the system calls and waits inside changed it to
/// (the `errno = 0; while (readdir(d))` loop relies on that).
fn boundary<T: Failure>(name: &'static str, f: impl FnOnce() -> Result<T>) -> T {
    let caller_errno = errno();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => {
            set_errno(caller_errno);
            value
        }
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

/// A C path argument as its bytes. Names are bytes, as in POSIX: no encoding is assumed.
///
/// # Safety
/// `path` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn path_arg<'a>(path: *const c_char) -> Result<&'a [u8]> {
    if path.is_null() {
        return Err(Error::NullPointer("path"));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.len() > crate::path::MAX_PATH {
        return Err(Error::NameTooLong);
    }
    Ok(bytes)
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

/// Collective over `comm`; the job's counterpart of `mount(2)`: creates this rank's UCX worker,
/// exchanges worker addresses over `comm`, starts the progress thread, and returns when every
/// rank serves. Call after `MPI_Init` (`MPI_THREAD_SINGLE` is enough: only the calling thread
/// uses MPI, inside `benchfs_init` and `benchfs_finalize`). Reference counted: a nested call
/// returns 0 and does nothing else.
/// Returns 0, or -1 with errno (EINVAL for a bad configuration variable, EIO for a transport
/// failure).
///
/// # Safety
/// `comm` is a valid communicator handle (or `MPI_COMM_NULL`, which fails with EINVAL), and MPI
/// is initialized.
#[no_mangle]
pub unsafe extern "C" fn benchfs_init(comm: mpi::ffi::MPI_Comm) -> c_int {
    boundary("benchfs_init", || fs::init_raw(comm).map(|()| 0))
}

/// Collective over `comm`, the communicator of a separate MPI job (a tool such as a parallel
/// find); like `mount(2)` of a file system that another job serves: connects to a running BenchFS
/// as a pure client that serves nothing. `contact_file` is the file the serving job published
/// because `BENCHFS_CONTACT_FILE` named it at its `benchfs_init` (only rank 0 of `comm` reads
/// it). Every other call then works as usual; `benchfs_finalize` detaches.
/// Returns 0, or -1 with errno (ENOENT: no contact file; EINVAL: not a contact file; EIO: the
/// serving job cannot be reached).
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
        fs::attach_raw(comm, path).map(|()| 0)
    })
}

/// Collective over the communicator given to `benchfs_init`; the counterpart of `umount(2)`. Only
/// the outermost call tears down: it waits until every rank has stopped issuing requests, stops
/// the progress thread, closes UCX and removes this rank's chunk files (unless
/// `BENCHFS_KEEP_DATA=1`). Returns 0, or -1 with errno. If a rank of the job is found dead
/// while it waits (see `BENCHFS_PEER_TIMEOUT`), it tears down without it and fails with `EIO`.
/// `MPI_Finalize` calls it first if the application did not.
///
/// # Safety
/// Call from the thread that uses MPI, before `MPI_Finalize`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_finalize() -> c_int {
    boundary("benchfs_finalize", || fs::finalize().map(|()| 0))
}

/// Like `open(2)`. Flags: `O_RDONLY`, `O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_EXCL`, `O_TRUNC`,
/// `O_APPEND`, `O_DIRECTORY`. The parent directory must exist (ENOENT) and be a directory
/// (ENOTDIR); opening a directory for writing gives EISDIR.
/// Returns a BenchFS file descriptor (not a kernel one).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_open", || fs::open(unsafe { path_arg(path) }?, flags, mode))
}

/// Like `close(2)`. Publishes the file's size and mtime to its metadata owner.
///
/// # Safety
/// No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
#[no_mangle]
pub unsafe extern "C" fn benchfs_close(fd: c_int) -> c_int {
    boundary("benchfs_close", || fs::close(fd).map(|()| 0))
}

/// Like `pwrite(2)`: any offset and length; chunks spread over all ranks.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for reads of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_pwrite(fd: c_int, buf: *const c_void, count: usize, offset: libc::off_t) -> libc::ssize_t {
    boundary("benchfs_pwrite", || {
        let count = count_arg(count)?;
        let offset = offset_arg(offset)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { in_slice(buf, count) }?;
        fs::pwrite(fd, data, offset).map(|n| n as isize)
    })
}

/// Like `pread(2)`: holes read as zeros; a read past the end returns a short count.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for writes of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_pread(fd: c_int, buf: *mut c_void, count: usize, offset: libc::off_t) -> libc::ssize_t {
    boundary("benchfs_pread", || {
        let count = count_arg(count)?;
        let offset = offset_arg(offset)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { out_slice(buf, count) }?;
        fs::pread(fd, data, offset).map(|n| n as isize)
    })
}

/// Like `write(2)`: writes at the file offset and advances it.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for reads of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_write(fd: c_int, buf: *const c_void, count: usize) -> libc::ssize_t {
    boundary("benchfs_write", || {
        let count = count_arg(count)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { in_slice(buf, count) }?;
        fs::write(fd, data).map(|n| n as isize)
    })
}

/// Like `read(2)`: reads at the file offset and advances it.
///
/// # Safety
/// `buf` is NULL (with `count == 0`) or valid for writes of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn benchfs_read(fd: c_int, buf: *mut c_void, count: usize) -> libc::ssize_t {
    boundary("benchfs_read", || {
        let count = count_arg(count)?;
        // SAFETY: forwarded caller contract.
        let data = unsafe { out_slice(buf, count) }?;
        fs::read(fd, data).map(|n| n as isize)
    })
}

/// Like `lseek(2)` with `SEEK_SET`, `SEEK_CUR` or `SEEK_END`.
///
/// # Safety
/// No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
#[no_mangle]
pub unsafe extern "C" fn benchfs_lseek(fd: c_int, offset: libc::off_t, whence: c_int) -> libc::off_t {
    boundary("benchfs_lseek", || {
        let whence = match whence {
            libc::SEEK_SET => Whence::Set,
            libc::SEEK_CUR => Whence::Cur,
            libc::SEEK_END => Whence::End,
            _ => return Err(Error::InvalidArgument("whence must be SEEK_SET, SEEK_CUR or SEEK_END")),
        };
        fs::lseek(fd, offset, whence).map(|pos| pos as libc::off_t)
    })
}

/// Like `fsync(2)`: the data is durable in the owners' data directories and the size is published
/// to the metadata owner.
///
/// # Safety
/// No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
#[no_mangle]
pub unsafe extern "C" fn benchfs_fsync(fd: c_int) -> c_int {
    boundary("benchfs_fsync", || fs::fsync(fd).map(|()| 0))
}

/// Like `stat(2)`: size, mode, inode number, block size (the chunk size), times.
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
        fill_stat(st, &fs::stat(path)?);
        Ok(0)
    })
}

/// Like `fstat(2)`; includes this rank's own unpublished writes to `fd`.
///
/// # Safety
/// `st` is NULL or valid for writes of a `struct stat`.
#[no_mangle]
pub unsafe extern "C" fn benchfs_fstat(fd: c_int, st: *mut libc::stat) -> c_int {
    boundary("benchfs_fstat", || {
        // SAFETY: forwarded caller contract.
        let st = unsafe { st.as_mut() }.ok_or(Error::NullPointer("st"))?;
        fill_stat(st, &fs::fstat(fd)?);
        Ok(0)
    })
}

/// Like `unlink(2)`: removes the metadata and every chunk on every owner. EISDIR for a directory.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_unlink(path: *const c_char) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_unlink", || fs::unlink(unsafe { path_arg(path) }?).map(|()| 0))
}

/// Like `mkdir(2)`: EEXIST if the name exists, ENOENT/ENOTDIR for a bad parent.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_mkdir", || fs::mkdir(unsafe { path_arg(path) }?, mode).map(|()| 0))
}

/// Like `rmdir(2)`: ENOTEMPTY if the directory has entries, ENOTDIR for a file, EBUSY for "/".
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_rmdir(path: *const c_char) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_rmdir", || fs::rmdir(unsafe { path_arg(path) }?).map(|()| 0))
}

/// Like `rename(2)`, for files and directory trees; never copies file data. Replacing an
/// existing file is atomic as seen by stat/open. Renaming a directory into its own subtree gives
/// EINVAL.
///
/// # Safety
/// Both paths are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn benchfs_rename(oldpath: *const c_char, newpath: *const c_char) -> c_int {
    boundary("benchfs_rename", || {
        // SAFETY: forwarded caller contract.
        let (from, to) = unsafe { (path_arg(oldpath)?, path_arg(newpath)?) };
        fs::rename(from, to).map(|()| 0)
    })
}

/// Like `truncate(2)`: shrink (cut data is freed on its owners and reads as zeros if the file
/// grows again) or grow (a hole).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_truncate(path: *const c_char, length: libc::off_t) -> c_int {
    boundary("benchfs_truncate", || {
        // SAFETY: forwarded caller contract.
        let path = unsafe { path_arg(path) }?;
        fs::truncate(path, offset_arg(length)?).map(|()| 0)
    })
}

/// Like `ftruncate(2)`: `benchfs_truncate` on an open descriptor.
///
/// # Safety
/// No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
#[no_mangle]
pub unsafe extern "C" fn benchfs_ftruncate(fd: c_int, length: libc::off_t) -> c_int {
    boundary("benchfs_ftruncate", || fs::ftruncate(fd, offset_arg(length)?).map(|()| 0))
}

/// Like `access(2)` with `F_OK`, `R_OK`, `W_OK`, `X_OK`, checked against the mode bits and the
/// caller's uid/gid (root passes `R_OK` and `W_OK`).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_access(path: *const c_char, mode: c_int) -> c_int {
    // SAFETY: forwarded caller contract.
    boundary("benchfs_access", || fs::access(unsafe { path_arg(path) }?, mode).map(|()| 0))
}

/// Like `statvfs(2)`: capacity totals over the data directories of all ranks (each file system
/// counted once), and the number of entries.
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
        let fs = fs::statvfs(path)?;
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

/// The state of a `benchfs_dir_t`, opaque to C.
pub struct BenchfsDir {
    dir: Dir,
    entry: libc::dirent,
}

/// An open directory stream, as `DIR` is for `opendir(3)`.
#[allow(non_camel_case_types)]
pub type benchfs_dir_t = BenchfsDir;

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

/// Like `opendir(3)`: ENOENT, ENOTDIR as POSIX.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn benchfs_opendir(path: *const c_char) -> *mut benchfs_dir_t {
    boundary("benchfs_opendir", || {
        // SAFETY: forwarded caller contract.
        let dir = fs::opendir(unsafe { path_arg(path) }?)?;
        // SAFETY: dirent is plain old data; all-zero is a valid value.
        let entry = unsafe { std::mem::zeroed() };
        let ptr = Box::into_raw(Box::new(BenchfsDir { dir, entry }));
        open_dirs().get_or_insert_with(HashSet::new).insert(ptr as usize);
        Ok(ptr)
    })
}

/// Like `readdir(3)`: the next entry ("." and ".." first), with `d_name`, `d_type` and `d_ino`
/// set, or NULL at the end (errno unchanged) or on error (errno set). `d_name` holds the name's
/// bytes as it was created. Entries are fetched from their ranks in pages as the stream
/// advances. The returned struct is valid until the next call on the same stream.
///
/// # Safety
/// `dir` is NULL or a stream from `benchfs_opendir` not yet closed; one thread uses a stream at a
/// time.
#[no_mangle]
pub unsafe extern "C" fn benchfs_readdir(dir: *mut benchfs_dir_t) -> *mut libc::dirent {
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
        let n = entry.name.len().min(out.d_name.len() - 1);
        for (dst, &src) in out.d_name.iter_mut().zip(&entry.name[..n]) {
            *dst = src as c_char;
        }
        out.d_name[n] = 0;
        Ok(out as *mut libc::dirent)
    })
}

/// Like `closedir(3)`.
///
/// # Safety
/// `dir` is NULL or a stream from `benchfs_opendir` not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn benchfs_closedir(dir: *mut benchfs_dir_t) -> c_int {
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
