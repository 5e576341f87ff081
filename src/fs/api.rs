//! The blocking calls of the public API: each checks its arguments, then runs its operation
//! on the progress thread and waits for the result.

use super::data::{self, UserBuf};
use super::handle::handle;
use super::namespace::{self, FileStat, FsStat};
use super::Whence;
use crate::error::{Error, Result};

pub(super) fn check_path(path: &str) -> Result<String> {
    crate::path::normalize(path)
}

/// Like `open(2)`; returns a BenchFS descriptor.
pub fn open(path: &str, flags: i32, mode: u32) -> Result<i32> {
    if flags & libc::O_ACCMODE == libc::O_ACCMODE {
        return Err(Error::InvalidArgument("O_RDONLY, O_WRONLY and O_RDWR are exclusive"));
    }
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::open(client, path, flags, mode))
}

/// Like `close(2)`.
pub fn close(fd: i32) -> Result<()> {
    handle()?.call(move |client| data::close(client, fd))
}

/// Like `pwrite(2)`.
pub fn pwrite(fd: i32, buf: &[u8], offset: u64) -> Result<usize> {
    let user = UserBuf::from_ref(buf);
    handle()?.call(move |client| data::pwrite(client, fd, user, offset))
}

/// Like `pread(2)`.
pub fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize> {
    let user = UserBuf::from_mut(buf);
    handle()?.call(move |client| data::pread(client, fd, user, offset))
}

/// Like `write(2)`.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    let user = UserBuf::from_ref(buf);
    handle()?.call(move |client| data::sequential(client, fd, user, true))
}

/// Like `read(2)`.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    let user = UserBuf::from_mut(buf);
    handle()?.call(move |client| data::sequential(client, fd, user, false))
}

/// Like `lseek(2)`.
pub fn lseek(fd: i32, offset: i64, whence: Whence) -> Result<u64> {
    handle()?.call(move |client| data::lseek(client, fd, offset, whence))
}

/// Like `fsync(2)`.
pub fn fsync(fd: i32) -> Result<()> {
    handle()?.call(move |client| data::fsync(client, fd))
}

/// Like `stat(2)`.
pub fn stat(path: &str) -> Result<FileStat> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::stat(client, path))
}

/// Like `fstat(2)`.
pub fn fstat(fd: i32) -> Result<FileStat> {
    handle()?.call(move |client| namespace::fstat(client, fd))
}

/// Like `unlink(2)`.
pub fn unlink(path: &str) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::unlink(client, path))
}

/// Like `mkdir(2)`.
pub fn mkdir(path: &str, mode: u32) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::mkdir(client, path, mode))
}

/// Like `rmdir(2)`.
pub fn rmdir(path: &str) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::rmdir(client, path))
}

/// Like `rename(2)`, for files and directory trees.
pub fn rename(from: &str, to: &str) -> Result<()> {
    let (from, to) = (check_path(from)?, check_path(to)?);
    handle()?.call(move |client| namespace::rename(client, from, to))
}

/// Like `truncate(2)`.
pub fn truncate(path: &str, len: u64) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::truncate(client, path, len))
}

/// Like `ftruncate(2)`.
pub fn ftruncate(fd: i32, len: u64) -> Result<()> {
    handle()?.call(move |client| namespace::ftruncate(client, fd, len))
}

/// Like `access(2)`.
pub fn access(path: &str, mode: i32) -> Result<()> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::access(client, path, mode))
}

/// Like `statvfs(2)`: totals over all ranks.
pub fn statvfs(path: &str) -> Result<FsStat> {
    let path = check_path(path)?;
    handle()?.call(move |client| namespace::statvfs(client, path))
}
