//! stdio on BenchFS files: `fopen`, `fopen64`, `fdopen` and `fileno`.
//!
//! A BenchFS file opened through stdio is a glibc stream made with `fopencookie`, whose reads,
//! writes, seeks and close are this library's calls on the file's descriptor: glibc keeps the
//! buffering, formatting and everything else (`fprintf`, `fgets`, `fseek`, `ftell`, `fflush`,
//! `fclose` work unchanged). `fileno` of such a stream is its descriptor. `freopen` onto a
//! BenchFS path cannot keep the stream glibc has and is refused (`EOPNOTSUPP`).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use libc::{off64_t, size_t, ssize_t, FILE};

use crate::guard;
use crate::path::Target;
use crate::posix::{kernel_path, open_ours, target};
use crate::real::real;
use crate::table;

#[repr(C)]
struct CookieIo {
    read: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, size_t) -> ssize_t>,
    write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, size_t) -> ssize_t>,
    seek: Option<unsafe extern "C" fn(*mut c_void, *mut off64_t, c_int) -> c_int>,
    close: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

extern "C" {
    fn fopencookie(cookie: *mut c_void, mode: *const c_char, io: CookieIo) -> *mut FILE;
}

/// BenchFS streams and their descriptors, for `fileno`.
static STREAMS: Mutex<Option<HashMap<usize, c_int>>> = Mutex::new(None);
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

fn fd_of(cookie: *mut c_void) -> c_int {
    cookie as usize as c_int
}

unsafe extern "C" fn cookie_read(cookie: *mut c_void, buf: *mut c_char, size: size_t) -> ssize_t {
    // SAFETY: glibc's buffer of `size` bytes.
    unsafe { crate::posix::read(fd_of(cookie), buf.cast(), size) }
}

unsafe extern "C" fn cookie_write(cookie: *mut c_void, buf: *const c_char, size: size_t) -> ssize_t {
    // SAFETY: glibc's buffer of `size` bytes.
    let wrote = unsafe { crate::posix::write(fd_of(cookie), buf.cast(), size) };
    // glibc takes 0 from a cookie writer as an error.
    if wrote < 0 {
        0
    } else {
        wrote
    }
}

unsafe extern "C" fn cookie_seek(cookie: *mut c_void, offset: *mut off64_t, whence: c_int) -> c_int {
    // SAFETY: glibc passes a valid offset to read and update.
    let Some(offset) = (unsafe { offset.as_mut() }) else { return -1 };
    // SAFETY: the stream's own descriptor.
    let at = unsafe { crate::posix::lseek64(fd_of(cookie), *offset, whence) };
    if at < 0 {
        return -1;
    }
    *offset = at;
    0
}

unsafe extern "C" fn cookie_close(cookie: *mut c_void) -> c_int {
    let fd = fd_of(cookie);
    let mut streams = STREAMS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(map) = streams.as_mut() {
        let before = map.len();
        map.retain(|_, f| *f != fd);
        OPEN_STREAMS.fetch_sub(before - map.len(), Ordering::AcqRel);
    }
    drop(streams);
    // SAFETY: the stream owned its descriptor.
    unsafe { crate::posix::close(fd) }
}

/// A glibc stream on descriptor `fd` (BenchFS's), which it owns from then on.
fn stream_on(fd: c_int, mode: *const c_char) -> Result<*mut FILE, c_int> {
    let io = CookieIo { read: Some(cookie_read), write: Some(cookie_write), seek: Some(cookie_seek), close: Some(cookie_close) };
    // SAFETY: the cookie is the descriptor's number; `mode` is the caller's C string.
    let file = unsafe { fopencookie(fd as usize as *mut c_void, mode, io) };
    if file.is_null() {
        return Err(crate::errno());
    }
    STREAMS.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).insert(file as usize, fd);
    OPEN_STREAMS.fetch_add(1, Ordering::AcqRel);
    Ok(file)
}

/// `open` flags for an `fopen` mode.
fn flags_of(mode: &[u8]) -> Result<c_int, c_int> {
    let plus = mode.contains(&b'+');
    let mut flags = match (mode.first(), plus) {
        (Some(b'r'), false) => libc::O_RDONLY,
        (Some(b'r'), true) => libc::O_RDWR,
        (Some(b'w'), false) => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
        (Some(b'w'), true) => libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
        (Some(b'a'), false) => libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
        (Some(b'a'), true) => libc::O_RDWR | libc::O_CREAT | libc::O_APPEND,
        _ => return Err(libc::EINVAL),
    };
    // Up to a ",ccs=" part: `x` exclusive, `e` close-on-exec; `b`, `t`, `m`, `c` change nothing.
    for &c in mode.iter().take_while(|&&c| c != b',') {
        match c {
            b'x' => flags |= libc::O_EXCL,
            b'e' => flags |= libc::O_CLOEXEC,
            _ => {}
        }
    }
    Ok(flags)
}

fn fopen_ours(inside: Vec<u8>, mode: *const c_char) -> Result<*mut FILE, c_int> {
    if mode.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: a non-null C string from the caller.
    let flags = flags_of(unsafe { CStr::from_ptr(mode) }.to_bytes())?;
    let fd = open_ours(inside, flags, 0o666)?;
    stream_on(fd, mode).map_err(|e| {
        // SAFETY: the descriptor just opened.
        unsafe { crate::posix::close(fd) };
        e
    })
}

type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;

macro_rules! fopen_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, mode: *const c_char) -> *mut FILE {
            // SAFETY: the caller's path.
            match unsafe { target(path) } {
                Some(Target::Ours(inside)) => guard(std::ptr::null_mut(), || fopen_ours(inside, mode)),
                // SAFETY: the caller's arguments, passed on.
                Some(Target::Kernel(absolute)) => unsafe { real!($real as FopenFn)(kernel_path(path, &absolute), mode) },
                // SAFETY: as above.
                None => unsafe { real!($real as FopenFn)(path, mode) },
            }
        }
    };
}

fopen_fn!(fopen, "fopen");
fopen_fn!(fopen64, "fopen64");

/// Like `fdopen(3)`.
#[no_mangle]
pub unsafe extern "C" fn fdopen(fd: c_int, mode: *const c_char) -> *mut FILE {
    if table::ours(fd).is_none() {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real!("fdopen" as unsafe extern "C" fn(c_int, *const c_char) -> *mut FILE)(fd, mode) };
    }
    guard(std::ptr::null_mut(), || {
        if mode.is_null() {
            return Err(libc::EINVAL);
        }
        stream_on(fd, mode)
    })
}

type FreopenFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut FILE) -> *mut FILE;

/// Like `freopen(3)`, except onto a BenchFS path (`EOPNOTSUPP`).
#[no_mangle]
pub unsafe extern "C" fn freopen(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE {
    // SAFETY: the caller's path.
    match unsafe { target(path) } {
        Some(Target::Ours(_)) => guard(std::ptr::null_mut(), || Err(libc::EOPNOTSUPP)),
        // SAFETY: the caller's arguments, passed on.
        Some(Target::Kernel(absolute)) => unsafe { real!("freopen" as FreopenFn)(kernel_path(path, &absolute), mode, stream) },
        // SAFETY: as above.
        None => unsafe { real!("freopen" as FreopenFn)(path, mode, stream) },
    }
}

fn our_stream(stream: *mut FILE) -> Option<c_int> {
    if OPEN_STREAMS.load(Ordering::Acquire) == 0 {
        return None;
    }
    STREAMS.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.get(&(stream as usize)).copied()
}

/// Like `fileno(3)`.
#[no_mangle]
pub unsafe extern "C" fn fileno(stream: *mut FILE) -> c_int {
    match our_stream(stream) {
        Some(fd) => fd,
        // SAFETY: the caller's stream.
        None => unsafe { real!("fileno" as unsafe extern "C" fn(*mut FILE) -> c_int)(stream) },
    }
}

/// Like `fileno_unlocked(3)`.
#[no_mangle]
pub unsafe extern "C" fn fileno_unlocked(stream: *mut FILE) -> c_int {
    match our_stream(stream) {
        Some(fd) => fd,
        // SAFETY: the caller's stream.
        None => unsafe { real!("fileno_unlocked" as unsafe extern "C" fn(*mut FILE) -> c_int)(stream) },
    }
}
