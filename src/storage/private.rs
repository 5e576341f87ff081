//! The directories a rank keeps its chunks in, made so that no other user can reach into them.
//!
//! The data directory (`BENCHFS_DATA_DIR`, `/tmp` by default) is often shared and writable by
//! everyone. Below it a job keeps `benchfs-<uid>-<tag>/rank<N>`. Another user who made one of
//! those names first (a directory of theirs, or a symbolic link to one) would receive the
//! job's chunk files, or hand it files of theirs to write into. So:
//! * the base must be owned by this user or by root, and if others may write to it, it must be
//!   sticky (like `/tmp`), so that nobody can rename or remove what this user makes there;
//! * each directory below it is made with `mkdir` and mode 0700; one that is already there is
//!   used only if it is a real directory (not a link), owned by this user, that no one else may
//!   enter (checked with `lstat`, like OpenSSH's checks of its files).
//!
//! Everything inside is then this user's alone: nobody else can add, replace or read a file.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

/// Why a directory cannot be trusted: `EACCES`, with a reason in the log.
fn refuse(dir: &Path, reason: &str) -> io::Error {
    tracing::error!(dir = %dir.display(), "{reason}; refusing to keep chunks there");
    io::Error::from_raw_os_error(libc::EACCES)
}

fn my_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Checks the base directory (following links: a site may point it anywhere).
fn check_base(base: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(base)?;
    if !meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let mode = meta.mode();
    if meta.uid() != my_uid() && meta.uid() != 0 {
        return Err(refuse(base, "the data directory belongs to another user"));
    }
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(refuse(base, "others may write to the data directory and it is not sticky"));
    }
    Ok(())
}

/// Makes `dir` (mode 0700), or accepts it if it is already this user's own private directory.
fn make_or_check(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(refuse(dir, "a symbolic link stands where a directory of this job belongs"));
    }
    if !meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    if meta.uid() != my_uid() {
        return Err(refuse(dir, "a directory of this job belongs to another user"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(dir, "a directory of this job is open to other users"));
    }
    Ok(())
}

/// Makes the store directory `dir`, which lies below `base` (the configured data directory):
/// `base` is made if missing (like `mkdir -p`, mode 0700) and must be trustworthy; every
/// directory between it and `dir`, and `dir` itself, is this user's alone.
pub fn make_store_dir(base: &Path, dir: &Path) -> io::Result<()> {
    let below = dir.strip_prefix(base).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if !base.exists() {
        DirBuilder::new().recursive(true).mode(0o700).create(base)?;
    }
    check_base(base)?;
    let mut path = base.to_path_buf();
    for part in below.components() {
        path.push(part);
        make_or_check(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("benchfs-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Another user's id for planting, when this test may change owners (as root).
    fn other_user() -> Option<u32> {
        (my_uid() == 0).then_some(65534)
    }

    fn chown(path: &Path, uid: u32) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is NUL-terminated; lchown changes the link itself, never its target.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, uid) }, 0, "lchown {}", path.display());
    }

    #[test]
    fn a_fresh_tree_is_private_and_made_twice_without_harm() {
        let base = scratch("fresh");
        let dir = base.join("benchfs-job").join("rank0");
        make_store_dir(&base, &dir).unwrap();
        make_store_dir(&base, &dir).unwrap();
        for d in [base.join("benchfs-job"), dir.clone()] {
            assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700, "{}", d.display());
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn planted_links_and_open_directories_are_refused() {
        let base = scratch("planted");
        let elsewhere = scratch("planted-target");
        let job = base.join("benchfs-job");
        std::os::unix::fs::symlink(&elsewhere, &job).unwrap();
        let err = make_store_dir(&base, &job.join("rank0")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "a link where the job directory goes");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "nothing made through the link");
        std::fs::remove_file(&job).unwrap();
        std::fs::create_dir(&job).unwrap();
        chmod(&job, 0o777);
        let err = make_store_dir(&base, &job.join("rank0")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "a job directory others may write to");
        std::fs::remove_dir_all(&base).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }

    #[test]
    fn another_users_directories_are_refused() {
        let Some(other) = other_user() else {
            eprintln!("another_users_directories_are_refused: needs root to plant another user's directory; checks skipped");
            return;
        };
        let base = scratch("foreign");
        let job = base.join("benchfs-job");
        std::fs::create_dir(&job).unwrap();
        chmod(&job, 0o700);
        chown(&job, other);
        let err = make_store_dir(&base, &job.join("rank0")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "a job directory of another user");
        std::fs::remove_dir(&job).unwrap();
        // A base of another user that everyone may write to, without the sticky bit.
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o777);
        chown(&shared, other);
        let err = make_store_dir(&shared, &shared.join("benchfs-job").join("rank0")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "an untrusted base");
        // Root's sticky, world-writable base (like /tmp) is fine.
        chown(&shared, 0);
        chmod(&shared, 0o1777);
        make_store_dir(&shared, &shared.join("benchfs-job").join("rank0")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
