//! Which kernel descriptors stand for BenchFS files.
//!
//! Every BenchFS file a program opens also gets a real kernel descriptor, open on `/dev/null`
//! (its placeholder), and the program sees the placeholder's number: it can never collide with a
//! descriptor the kernel hands out, and close-on-exec, `dup2` onto it or `poll` keep working on
//! something harmless. One slot per descriptor number holds the BenchFS descriptor it stands for,
//! so a call on any other descriptor costs one atomic load before it goes to the C library.
//!
//! Descriptors duplicated with `dup`, `dup2`, `dup3` or `fcntl(F_DUPFD)` share one BenchFS
//! descriptor (and so its offset and flags), which is closed with the last of them.
//!
//! Opening `/dev/null` and closing it again would cost two system calls per file (a third of a
//! create on BenchFS); closed placeholders are kept instead, up to [`SPARES`] of each
//! close-on-exec setting, and handed out again after one `fstat` shows that the number still
//! holds `/dev/null` (the program may have closed it or `dup2`ed onto it meanwhile, as a
//! program that closes every descriptor it did not open does; such a number is let go).

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::real::real;

/// Descriptor numbers that can stand for BenchFS files: a placeholder above gets EMFILE.
const SLOTS: usize = 1 << 20;

#[allow(clippy::declare_interior_mutable_const)] // only the array's initial value
const EMPTY: AtomicU32 = AtomicU32::new(0);
/// Per kernel descriptor: 0, or the BenchFS descriptor it stands for plus one.
static SLOT: [AtomicU32; SLOTS] = [EMPTY; SLOTS];

/// What the program opened, per BenchFS descriptor.
#[derive(Clone)]
pub struct Open {
    /// The BenchFS path it was opened by (directories: for `fdopendir`, `fchdir` and `*at`).
    pub path: Vec<u8>,
    /// `open`'s flags.
    pub flags: c_int,
    /// Kernel descriptors that stand for it.
    refs: u32,
}

static OPEN: Mutex<Option<HashMap<i32, Open>>> = Mutex::new(None);

fn with_open<T>(f: impl FnOnce(&mut HashMap<i32, Open>) -> T) -> T {
    let mut guard = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// The BenchFS descriptor kernel descriptor `fd` stands for, if any.
#[inline]
pub fn ours(fd: c_int) -> Option<i32> {
    let slot = SLOT.get(usize::try_from(fd).ok()?)?;
    match slot.load(Ordering::Acquire) {
        0 => None,
        n => Some(n as i32 - 1),
    }
}

/// What BenchFS descriptor `bfd` was opened as.
pub fn open_of(bfd: i32) -> Option<Open> {
    with_open(|open| open.get(&bfd).cloned())
}

/// Closed placeholders kept for reuse, by close-on-exec setting (index 1: set).
const SPARES: usize = 64;
static SPARE: Mutex<[Vec<c_int>; 2]> = Mutex::new([Vec::new(), Vec::new()]);

fn spares() -> std::sync::MutexGuard<'static, [Vec<c_int>; 2]> {
    SPARE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The device and inode of `/dev/null`, as a placeholder's `fstat` shows them.
static NULL_FILE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// The (device, inode) that kernel descriptor `fd` refers to.
fn identity(fd: c_int) -> Option<(u64, u64)> {
    let fstat = real!("fstat" as unsafe extern "C" fn(c_int, *mut libc::stat) -> c_int);
    // SAFETY: all-zero is a valid stat buffer, filled by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// A placeholder: a kernel descriptor on `/dev/null` (close-on-exec if `cloexec`), kept or new.
fn placeholder(cloexec: bool) -> Result<c_int, c_int> {
    loop {
        let Some(fd) = spares()[usize::from(cloexec)].pop() else { break };
        let id = identity(fd);
        if id.is_some() && id == NULL_FILE.get().copied() {
            return Ok(fd);
        }
    }
    let open = real!("open" as unsafe extern "C" fn(*const libc::c_char, c_int, ...) -> c_int);
    let flags = libc::O_RDWR | if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: a NUL-terminated path and plain flags.
    let fd = unsafe { open(c"/dev/null".as_ptr(), flags) };
    if fd < 0 {
        return Err(crate::errno());
    }
    if NULL_FILE.get().is_none() {
        if let Some(id) = identity(fd) {
            let _ = NULL_FILE.set(id);
        }
    }
    Ok(fd)
}

fn release_kernel(fd: c_int) {
    let close = real!("close" as unsafe extern "C" fn(c_int) -> c_int);
    // SAFETY: closing a descriptor this library opened.
    unsafe { close(fd) };
}

/// A placeholder the program closed: kept for the next open if there is room. It is known to
/// be one of this library's (it stood for a BenchFS file), on `/dev/null`, with the
/// close-on-exec flag that decides its pool.
fn retire(fd: c_int) {
    let fcntl = real!("fcntl" as unsafe extern "C" fn(c_int, c_int, ...) -> c_int);
    // SAFETY: reading the descriptor flags of a descriptor this library opened.
    let flags = unsafe { fcntl(fd, libc::F_GETFD) };
    if flags >= 0 {
        let mut pools = spares();
        let pool = &mut pools[usize::from(flags & libc::FD_CLOEXEC != 0)];
        if pool.len() < SPARES {
            pool.push(fd);
            return;
        }
    }
    release_kernel(fd);
}

/// Makes a kernel descriptor stand for the newly opened BenchFS descriptor `bfd`; on failure
/// `bfd` is closed.
pub fn install(bfd: i32, path: Vec<u8>, flags: c_int) -> Result<c_int, c_int> {
    let fd = match placeholder(flags & libc::O_CLOEXEC != 0) {
        Ok(fd) if (fd as usize) < SLOTS => fd,
        Ok(fd) => {
            release_kernel(fd);
            let _ = benchfs::close(bfd);
            return Err(libc::EMFILE);
        }
        Err(e) => {
            let _ = benchfs::close(bfd);
            return Err(e);
        }
    };
    with_open(|open| open.insert(bfd, Open { path, flags, refs: 1 }));
    SLOT[fd as usize].store(bfd as u32 + 1, Ordering::Release);
    Ok(fd)
}

/// Drops kernel descriptor `fd`'s claim on its BenchFS descriptor (closing that with its last
/// one); the kernel descriptor itself is left to the caller. Returns the BenchFS close's error.
fn unclaim(fd: c_int) -> Result<(), c_int> {
    let Some(slot) = usize::try_from(fd).ok().and_then(|i| SLOT.get(i)) else { return Ok(()) };
    let previous = slot.swap(0, Ordering::AcqRel);
    if previous == 0 {
        return Ok(());
    }
    let bfd = previous as i32 - 1;
    let last = with_open(|open| match open.get_mut(&bfd) {
        Some(entry) if entry.refs > 1 => {
            entry.refs -= 1;
            false
        }
        _ => {
            open.remove(&bfd);
            true
        }
    });
    if last {
        benchfs::close(bfd).map_err(|e| e.errno())?;
    }
    Ok(())
}

/// `close(fd)` of a descriptor that stands for a BenchFS file.
pub fn close(fd: c_int) -> Result<(), c_int> {
    let closed = unclaim(fd);
    retire(fd);
    closed
}

/// After the kernel made `new` a duplicate of `old`'s placeholder: `new` stands for the same
/// BenchFS file.
fn claim_duplicate(old_bfd: i32, new: c_int) -> Result<c_int, c_int> {
    if new as usize >= SLOTS {
        release_kernel(new);
        return Err(libc::EMFILE);
    }
    with_open(|open| {
        if let Some(entry) = open.get_mut(&old_bfd) {
            entry.refs += 1;
        }
    });
    SLOT[new as usize].store(old_bfd as u32 + 1, Ordering::Release);
    Ok(new)
}

/// `dup(old)`, `fcntl(old, F_DUPFD[_CLOEXEC], min)`, `dup2` and `dup3` where either side may
/// stand for a BenchFS file: `kernel_dup` makes the kernel duplicate (the placeholder, when `old`
/// is BenchFS's), `target` is the descriptor it will replace, if any.
pub fn duplicate(old: c_int, target: Option<c_int>, kernel_dup: impl FnOnce() -> c_int) -> Result<c_int, c_int> {
    let old_bfd = ours(old);
    if let Some(target) = target {
        if target == old {
            return Ok(target);
        }
        // The kernel closes the target's old file as it duplicates onto it; so must BenchFS.
        if ours(target).is_some() {
            unclaim(target)?;
        }
    }
    let new = kernel_dup();
    if new < 0 {
        return Err(crate::errno());
    }
    match old_bfd {
        Some(bfd) => claim_duplicate(bfd, new),
        None => Ok(new),
    }
}

/// Changes the flags kept for BenchFS descriptor `bfd` (`F_SETFL`).
pub fn set_flags(bfd: i32, flags: c_int) {
    with_open(|open| {
        if let Some(entry) = open.get_mut(&bfd) {
            entry.flags = flags;
        }
    });
}
