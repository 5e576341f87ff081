//! Plain system calls on chunk files: opening them (both backends) and the positional I/O of
//! `Backend::Sync`.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

/// Removes the file at `path`; one that is not there is fine.
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `mkdir -p dir`, with mode 0700 for the directories it creates.
pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens a chunk file for reading and writing; `create` makes a missing one with mode 0600.
/// The descriptor is close-on-exec.
pub(super) fn open(path: &Path, create: bool) -> io::Result<File> {
    // Never through a link: the store directory is private (see `private`), and stays so.
    OpenOptions::new().read(true).write(true).create(create).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(super) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes all of `buf`; returns its length.
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.write_all_at(buf, offset)?;
    Ok(buf.len())
}

/// True if `dir` lives on tmpfs (or shmem-backed `/dev/shm`).
pub(super) fn is_tmpfs(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs is plain old data; all-zero is valid and the call fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated and st is valid for writes.
    unsafe { libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC }
}
