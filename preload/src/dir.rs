//! Directory streams: `opendir`, `fdopendir`, `readdir`, `closedir`, `rewinddir`, `dirfd`,
//! `telldir`, `seekdir`.
//!
//! A BenchFS stream is a [`Stream`] of this library's, handed to the program as its `DIR *`; a
//! registry of those addresses tells them from the C library's streams (one lock and a lookup
//! per call while any BenchFS stream is open, one atomic load otherwise).

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_long};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use libc::{dirent, dirent64, DIR};

use crate::path::Target;
use crate::posix::{kernel_path, open_ours, target};
use crate::real::real;
use crate::table;
use crate::{code, guard};

const _: () = assert!(std::mem::size_of::<dirent>() == std::mem::size_of::<dirent64>());

/// A BenchFS directory stream.
struct Stream {
    /// Its BenchFS path.
    path: Vec<u8>,
    entries: benchfs::Dir,
    /// Entries returned so far (`telldir`).
    position: c_long,
    /// The entry `readdir` returned last.
    entry: dirent64,
    /// The descriptor `dirfd` returns: the one `fdopendir` was given, or one opened on demand;
    /// closed with the stream.
    fd: Option<c_int>,
}

static STREAMS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
/// How many BenchFS streams are open: none, and every call is the C library's at once.
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// The BenchFS stream `dir` is, if it is one.
fn stream(dir: *mut DIR) -> Option<&'static mut Stream> {
    if OPEN_STREAMS.load(Ordering::Acquire) == 0 || dir.is_null() {
        return None;
    }
    let known = STREAMS.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(&(dir as usize)));
    // SAFETY: registered addresses are live `Stream`s made by `open_stream`; a stream is used
    // by one thread at a time, as POSIX requires of `DIR` streams.
    known.then(|| unsafe { &mut *dir.cast::<Stream>() })
}

fn open_stream(path: Vec<u8>, fd: Option<c_int>) -> Result<*mut DIR, c_int> {
    let entries = benchfs::opendir(&path).map_err(code)?;
    // SAFETY: all-zero is a valid dirent64.
    let entry = unsafe { std::mem::zeroed() };
    let stream = Box::into_raw(Box::new(Stream { path, entries, position: 0, entry, fd }));
    STREAMS.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashSet::new).insert(stream as usize);
    OPEN_STREAMS.fetch_add(1, Ordering::AcqRel);
    Ok(stream.cast())
}

/// Like `opendir(3)`.
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut DIR {
    let real = real!("opendir" as unsafe extern "C" fn(*const c_char) -> *mut DIR);
    // SAFETY: the caller's path.
    match unsafe { target(path) } {
        Some(Target::Ours(inside)) => guard(std::ptr::null_mut(), || open_stream(inside, None)),
        // SAFETY: the caller's arguments, passed on.
        Some(Target::Kernel(absolute)) => unsafe { real(kernel_path(path, &absolute)) },
        // SAFETY: as above.
        None => unsafe { real(path) },
    }
}

/// Like `fdopendir(3)`: the stream owns the descriptor from then on.
#[no_mangle]
pub unsafe extern "C" fn fdopendir(fd: c_int) -> *mut DIR {
    let Some(bfd) = table::ours(fd) else {
        // SAFETY: the caller's descriptor.
        return unsafe { real!("fdopendir" as unsafe extern "C" fn(c_int) -> *mut DIR)(fd) };
    };
    guard(std::ptr::null_mut(), || {
        let path = table::open_of(bfd).ok_or(libc::EBADF)?.path;
        open_stream(path, Some(fd))
    })
}

/// The next entry of a BenchFS stream into its `entry`; None at the end.
fn next(s: &mut Stream) -> Result<Option<*mut dirent64>, c_int> {
    let Some(found) = s.entries.next() else { return Ok(None) };
    let found = found.map_err(code)?;
    let name = &found.name;
    if name.len() >= s.entry.d_name.len() {
        return Err(libc::ENAMETOOLONG);
    }
    s.position += 1;
    let e = &mut s.entry;
    e.d_ino = found.ino;
    e.d_off = s.position;
    e.d_type = found.kind;
    e.d_reclen = std::mem::size_of::<dirent64>() as u16;
    for (slot, &b) in e.d_name.iter_mut().zip(name.iter().chain(std::iter::once(&0))) {
        *slot = b as c_char;
    }
    Ok(Some(e))
}

/// `readdir` of a BenchFS stream: null at the end with errno unchanged, null with errno set on
/// failure.
fn read_stream(s: &mut Stream) -> *mut dirent64 {
    guard(std::ptr::null_mut(), || Ok(next(s)?.unwrap_or(std::ptr::null_mut())))
}

/// Like `readdir(3)`.
#[no_mangle]
pub unsafe extern "C" fn readdir(dir: *mut DIR) -> *mut dirent {
    match stream(dir) {
        Some(s) => read_stream(s).cast(),
        // SAFETY: the caller's stream.
        None => unsafe { real!("readdir" as unsafe extern "C" fn(*mut DIR) -> *mut dirent)(dir) },
    }
}

/// Like `readdir64(3)`.
#[no_mangle]
pub unsafe extern "C" fn readdir64(dir: *mut DIR) -> *mut dirent64 {
    match stream(dir) {
        Some(s) => read_stream(s),
        // SAFETY: the caller's stream.
        None => unsafe { real!("readdir64" as unsafe extern "C" fn(*mut DIR) -> *mut dirent64)(dir) },
    }
}

/// Like `closedir(3)`.
#[no_mangle]
pub unsafe extern "C" fn closedir(dir: *mut DIR) -> c_int {
    if stream(dir).is_none() {
        // SAFETY: the caller's stream.
        return unsafe { real!("closedir" as unsafe extern "C" fn(*mut DIR) -> c_int)(dir) };
    }
    let removed = STREAMS.lock().unwrap_or_else(|p| p.into_inner()).as_mut().is_some_and(|s| s.remove(&(dir as usize)));
    if !removed {
        return guard(-1, || Err(libc::EBADF));
    }
    OPEN_STREAMS.fetch_sub(1, Ordering::AcqRel);
    // SAFETY: the address came from Box::into_raw in `open_stream` and left the registry just
    // now, so nothing else frees it.
    let s = unsafe { Box::from_raw(dir.cast::<Stream>()) };
    match s.fd {
        // SAFETY: the stream's own descriptor.
        Some(fd) => unsafe { crate::posix::close(fd) },
        None => 0,
    }
}

/// Starts `s` over from its first entry.
fn restart(s: &mut Stream) -> Result<(), c_int> {
    s.entries = benchfs::opendir(&s.path).map_err(code)?;
    s.position = 0;
    Ok(())
}

/// Like `rewinddir(3)`.
#[no_mangle]
pub unsafe extern "C" fn rewinddir(dir: *mut DIR) {
    match stream(dir) {
        Some(s) => {
            let saved = crate::errno();
            if let Err(e) = restart(s) {
                crate::warn(format!("rewinddir: the directory could not be read again (errno {e})").as_bytes());
            }
            crate::set_errno(saved);
        }
        // SAFETY: the caller's stream.
        None => unsafe { real!("rewinddir" as unsafe extern "C" fn(*mut DIR))(dir) },
    }
}

/// Like `telldir(3)`: the number of entries read.
#[no_mangle]
pub unsafe extern "C" fn telldir(dir: *mut DIR) -> c_long {
    match stream(dir) {
        Some(s) => s.position,
        // SAFETY: the caller's stream.
        None => unsafe { real!("telldir" as unsafe extern "C" fn(*mut DIR) -> c_long)(dir) },
    }
}

/// Like `seekdir(3)`: back to a position `telldir` gave (the listing is read again up to it).
#[no_mangle]
pub unsafe extern "C" fn seekdir(dir: *mut DIR, at: c_long) {
    let Some(s) = stream(dir) else {
        // SAFETY: the caller's stream.
        return unsafe { real!("seekdir" as unsafe extern "C" fn(*mut DIR, c_long))(dir, at) };
    };
    let saved = crate::errno();
    if restart(s).is_ok() {
        while s.position < at && matches!(next(s), Ok(Some(_))) {}
    }
    crate::set_errno(saved);
}

/// Like `dirfd(3)`.
#[no_mangle]
pub unsafe extern "C" fn dirfd(dir: *mut DIR) -> c_int {
    let Some(s) = stream(dir) else {
        // SAFETY: the caller's stream.
        return unsafe { real!("dirfd" as unsafe extern "C" fn(*mut DIR) -> c_int)(dir) };
    };
    if let Some(fd) = s.fd {
        return fd;
    }
    guard(-1, || {
        let fd = open_ours(s.path.clone(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?;
        s.fd = Some(fd);
        Ok(fd)
    })
}
