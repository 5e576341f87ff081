//! The blocking calls of the public API: each checks its arguments, then runs its operation
//! on the progress thread and waits for the result.
//!
//! Paths are bytes, as in POSIX (see `crate::path`): every call takes anything that is
//! `AsRef<[u8]>`, so `&str`, `String`, `&[u8]` and `Vec<u8>` all work.

use std::future::Future;
use std::rc::Rc;

use super::data::{self, UserBuf};
use super::handle::handle;
use super::namespace::{self, check_spelling, FileStat, FsStat};
use super::{Client, Whence};
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::path::{spell, Last, Spelled};
use crate::stats::{self, Call};

/// Runs `f`, counted as `call` in the statistics with the bytes `moved` says it moved.
pub(super) fn timed<T>(call: Call, f: impl FnOnce() -> Result<T>, moved: impl FnOnce(&T) -> u64) -> Result<T> {
    let started = stats::start();
    let result = f();
    stats::call(call, started, result.as_ref().map_or(0, moved));
    result
}

/// Runs `op` on the normal form of `path` on the progress thread, once what the path's spelling
/// demands (`/file/.` must be a directory, say) holds; it runs past this rank's gate (no
/// directory rename moves the path meanwhile).
pub(super) fn on_path<T, Fut>(path: &[u8], op: impl FnOnce(Rc<Client>, Vec<u8>) -> Fut + Send + 'static) -> Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
{
    let spelled = spell(path)?;
    handle()?.call(move |client| past_gate(client, spelled, op))
}

/// `op` on the normal form of `spelled`, once past this rank's gate and what the spelling
/// demands holds (see [`on_path`]).
async fn past_gate<T, Fut>(client: Rc<Client>, spelled: Spelled, op: impl FnOnce(Rc<Client>, Vec<u8>) -> Fut) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let node = client.node.clone();
    let _pass = namespace::enter(&node, &[&spelled.path]).await;
    check_spelling(&node, &spelled).await?;
    op(client, spelled.path).await
}

/// Like `open(2)`; returns a BenchFS descriptor.
pub fn open(path: impl AsRef<[u8]>, flags: i32, mode: u32) -> Result<i32> {
    timed(
        Call::Open,
        || {
            if flags & libc::O_ACCMODE == libc::O_ACCMODE {
                return Err(Error::InvalidArgument("O_RDONLY, O_WRONLY and O_RDWR are exclusive"));
            }
            let spelled = spell(path.as_ref())?;
            handle()?.now_or_call(
                spelled,
                |client, spelled| namespace::open_now(client, spelled, flags),
                move |client, spelled| async move {
                    let node = client.node.clone();
                    let _pass = namespace::enter(&node, &[&spelled.path]).await;
                    check_spelling(&node, &spelled).await?;
                    // A name spelled as a directory cannot be created as a file (and a directory
                    // cannot be opened for creation).
                    if spelled.dir_only && flags & libc::O_CREAT != 0 {
                        return Err(Error::IsDirectory);
                    }
                    namespace::open(client, spelled.path, flags, mode).await
                },
            )
        },
        |_| 0,
    )
}

/// Like `close(2)`.
pub fn close(fd: i32) -> Result<()> {
    timed(
        Call::Close,
        || handle()?.now_or_call((), |client, ()| data::close_now(client, fd), move |client, ()| data::close(client, fd)),
        |_| 0,
    )
}

/// Like `pwrite(2)`.
pub fn pwrite(fd: i32, buf: &[u8], offset: u64) -> Result<usize> {
    timed(
        Call::Write,
        || {
            let user = UserBuf::from_ref(buf);
            handle()?.now_or_call(
                (),
                |client, ()| data::pwrite_now(client, fd, user, offset),
                move |client, ()| data::pwrite(client, fd, user, offset),
            )
        },
        |&n| n as u64,
    )
}

/// Like `pread(2)`.
pub fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize> {
    timed(
        Call::Read,
        || {
            let user = UserBuf::from_mut(buf);
            handle()?.now_or_call(
                (),
                |client, ()| data::pread_now(client, fd, user, offset),
                move |client, ()| data::pread(client, fd, user, offset),
            )
        },
        |&n| n as u64,
    )
}

/// Like `write(2)`.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    timed(
        Call::Write,
        || {
            let user = UserBuf::from_ref(buf);
            handle()?.now_or_call(
                (),
                |client, ()| data::sequential_now(client, fd, user, true),
                move |client, ()| data::sequential(client, fd, user, true),
            )
        },
        |&n| n as u64,
    )
}

/// Like `read(2)`.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    timed(
        Call::Read,
        || {
            let user = UserBuf::from_mut(buf);
            handle()?.now_or_call(
                (),
                |client, ()| data::sequential_now(client, fd, user, false),
                move |client, ()| data::sequential(client, fd, user, false),
            )
        },
        |&n| n as u64,
    )
}

/// Like `lseek(2)`.
pub fn lseek(fd: i32, offset: i64, whence: Whence) -> Result<u64> {
    timed(
        Call::Lseek,
        || {
            handle()?.now_or_call(
                (),
                |client, ()| data::lseek_now(client, fd, offset, whence),
                move |client, ()| data::lseek(client, fd, offset, whence),
            )
        },
        |_| 0,
    )
}

/// Like `fsync(2)`.
pub fn fsync(fd: i32) -> Result<()> {
    timed(Call::Fsync, || handle()?.call(move |client| data::fsync(client, fd)), |_| 0)
}

/// Like `stat(2)`.
pub fn stat(path: impl AsRef<[u8]>) -> Result<FileStat> {
    timed(
        Call::Stat,
        || {
            let spelled = spell(path.as_ref())?;
            handle()?.now_or_call(spelled, namespace::stat_now, |client, spelled| past_gate(client, spelled, namespace::stat))
        },
        |_| 0,
    )
}

/// Like `fstat(2)`.
pub fn fstat(fd: i32) -> Result<FileStat> {
    timed(
        Call::Fstat,
        || handle()?.now_or_call((), |client, ()| namespace::fstat_now(client, fd), move |client, ()| namespace::fstat(client, fd)),
        |_| 0,
    )
}

/// Like `unlink(2)`.
pub fn unlink(path: impl AsRef<[u8]>) -> Result<()> {
    timed(Call::Unlink, || on_path(path.as_ref(), namespace::unlink), |_| 0)
}

/// Like `mkdir(2)`.
pub fn mkdir(path: impl AsRef<[u8]>, mode: u32) -> Result<()> {
    timed(Call::Mkdir, || on_path(path.as_ref(), move |client, path| namespace::mkdir(client, path, mode)), |_| 0)
}

/// Like `rmdir(2)`.
pub fn rmdir(path: impl AsRef<[u8]>) -> Result<()> {
    timed(
        Call::Rmdir,
        || {
            let path = path.as_ref();
            match spell(path)?.last {
                Last::Dot => Err(Error::InvalidArgument("rmdir of a path ending in .")),
                Last::DotDot => Err(Error::NotEmpty),
                Last::Name => on_path(path, namespace::rmdir),
            }
        },
        |_| 0,
    )
}

/// Like `rename(2)`, for files and directory trees.
pub fn rename(from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> Result<()> {
    timed(
        Call::Rename,
        || {
            let (from, to) = (spell(from.as_ref())?, spell(to.as_ref())?);
            handle()?.call(move |client| async move {
                check_spelling(&client.node, &from).await?;
                check_spelling(&client.node, &to).await?;
                // A target spelled as a directory takes only a directory.
                if to.dir_only && !namespace::is_dir(&crate::rpc::client::stat(&client.node, &from.path).await?) {
                    return Err(Error::NotDirectory);
                }
                namespace::rename(client, from.path, to.path).await
            })
        },
        |_| 0,
    )
}

/// Like `truncate(2)`.
pub fn truncate(path: impl AsRef<[u8]>, len: u64) -> Result<()> {
    timed(Call::Truncate, || on_path(path.as_ref(), move |client, path| namespace::truncate(client, path, len)), |_| 0)
}

/// Like `ftruncate(2)`.
pub fn ftruncate(fd: i32, len: u64) -> Result<()> {
    timed(Call::Truncate, || handle()?.call(move |client| namespace::ftruncate(client, fd, len)), |_| 0)
}

/// Like `access(2)`.
pub fn access(path: impl AsRef<[u8]>, mode: i32) -> Result<()> {
    timed(
        Call::Access,
        || {
            let spelled = spell(path.as_ref())?;
            handle()?.now_or_call(
                spelled,
                |client, spelled| namespace::access_now(client, spelled, mode),
                move |client, spelled| past_gate(client, spelled, move |client, path| namespace::access(client, path, mode)),
            )
        },
        |_| 0,
    )
}

/// Like `statvfs(2)`: totals over all ranks.
pub fn statvfs(path: impl AsRef<[u8]>) -> Result<FsStat> {
    timed(Call::Statvfs, || on_path(path.as_ref(), namespace::statvfs), |_| 0)
}

/// The rank that holds the metadata record of `path` (where its `stat` is served). For tools
/// and benchmarks that care where a request goes; any path has one, existing or not.
pub fn metadata_rank(path: impl AsRef<[u8]>) -> Result<Rank> {
    let path = crate::path::normalize(path.as_ref())?;
    handle()?.call(move |client| async move { Ok(client.node.ring.meta_owner(&path)) })
}

/// The rank that holds the data of the open file `fd` at byte `offset`.
pub fn chunk_rank(fd: i32, offset: u64) -> Result<Rank> {
    handle()?.call(move |client| async move {
        let ino = client.files.borrow().get(fd)?.attr.ino;
        Ok(client.node.chunk_owner(ino, offset))
    })
}
