//! POSIX asynchronous I/O on BenchFS files: `aio_read`, `aio_write`, `aio_fsync`, `lio_listio`,
//! `aio_error`, `aio_return`, `aio_suspend`, `aio_cancel` (and their `64` names). Open MPI's
//! MPI-IO uses them for `MPI_File_iwrite` and friends.
//!
//! A request on a BenchFS file is carried out when it is submitted (BenchFS's own calls already
//! keep many transfers in flight) and its result kept until `aio_return` collects it; it is
//! complete at once for `aio_error` and `aio_suspend`. Completion notices other than
//! `SIGEV_NONE` are not sent for BenchFS files (`EINVAL`). Requests on other files go to the C
//! library.

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use libc::{aiocb, sigevent, ssize_t, timespec};

use crate::real::real;
use crate::table;

/// Finished BenchFS requests: (errno, return value) by control block address.
static DONE: Mutex<Option<HashMap<usize, (c_int, ssize_t)>>> = Mutex::new(None);
static PENDING: AtomicUsize = AtomicUsize::new(0);

fn finished(cb: *const aiocb) -> Option<(c_int, ssize_t)> {
    if PENDING.load(Ordering::Acquire) == 0 {
        return None;
    }
    DONE.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.get(&(cb as usize)).copied()
}

fn record(cb: *const aiocb, result: (c_int, ssize_t)) {
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if done.get_or_insert_with(HashMap::new).insert(cb as usize, result).is_none() {
        PENDING.fetch_add(1, Ordering::AcqRel);
    }
}

/// What an operation code asks of a BenchFS file.
#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Sync,
}

/// Carries out `cb` if its file is BenchFS's: Some(0) once it is recorded, Some(-1) with errno
/// if it cannot be submitted, None if the file is not BenchFS's.
unsafe fn submit(cb: *mut aiocb, op: Op) -> Option<c_int> {
    // SAFETY: the caller's control block, checked for null.
    let c = unsafe { cb.as_ref() }?;
    let bfd = table::ours(c.aio_fildes)?;
    if c.aio_sigevent.sigev_notify != libc::SIGEV_NONE {
        crate::set_errno(libc::EINVAL);
        return Some(-1);
    }
    let result = match op {
        // SAFETY: the control block's buffer of `aio_nbytes` bytes.
        Op::Read => unsafe { crate::posix::read_ours(bfd, c.aio_buf, c.aio_nbytes, Some(c.aio_offset)) },
        // SAFETY: as above.
        Op::Write => unsafe { crate::posix::write_ours(bfd, c.aio_buf, c.aio_nbytes, Some(c.aio_offset)) },
        Op::Sync => crate::guard(-1, || benchfs::fsync(bfd).map(|()| 0).map_err(crate::code)),
    };
    record(cb, if result < 0 { (crate::errno(), -1) } else { (0, result) });
    Some(0)
}

macro_rules! aio_submit {
    ($name:ident, $real:literal, $op:expr) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(cb: *mut aiocb) -> c_int {
            // SAFETY: the caller's control block.
            match unsafe { submit(cb, $op) } {
                Some(r) => r,
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as unsafe extern "C" fn(*mut aiocb) -> c_int)(cb) },
            }
        }
    };
}

aio_submit!(aio_read, "aio_read", Op::Read);
aio_submit!(aio_read64, "aio_read64", Op::Read);
aio_submit!(aio_write, "aio_write", Op::Write);
aio_submit!(aio_write64, "aio_write64", Op::Write);

macro_rules! aio_fsync_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(op: c_int, cb: *mut aiocb) -> c_int {
            // SAFETY: the caller's control block.
            match unsafe { submit(cb, Op::Sync) } {
                Some(r) => r,
                // SAFETY: the caller's arguments, passed on.
                None => unsafe { real!($real as unsafe extern "C" fn(c_int, *mut aiocb) -> c_int)(op, cb) },
            }
        }
    };
}

aio_fsync_fn!(aio_fsync, "aio_fsync");
aio_fsync_fn!(aio_fsync64, "aio_fsync64");

macro_rules! aio_error_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(cb: *const aiocb) -> c_int {
            match finished(cb) {
                Some((errno, _)) => errno,
                // SAFETY: the caller's control block.
                None => unsafe { real!($real as unsafe extern "C" fn(*const aiocb) -> c_int)(cb) },
            }
        }
    };
}

aio_error_fn!(aio_error, "aio_error");
aio_error_fn!(aio_error64, "aio_error64");

macro_rules! aio_return_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`: collects the result once.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(cb: *mut aiocb) -> ssize_t {
            let taken = finished(cb).and_then(|_| {
                let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
                let result = done.as_mut()?.remove(&(cb as usize))?;
                PENDING.fetch_sub(1, Ordering::AcqRel);
                Some(result)
            });
            match taken {
                Some((0, value)) => value,
                Some((errno, _)) => {
                    crate::set_errno(errno);
                    -1
                }
                // SAFETY: the caller's control block.
                None => unsafe { real!($real as unsafe extern "C" fn(*mut aiocb) -> ssize_t)(cb) },
            }
        }
    };
}

aio_return_fn!(aio_return, "aio_return");
aio_return_fn!(aio_return64, "aio_return64");

type SuspendFn = unsafe extern "C" fn(*const *const aiocb, c_int, *const timespec) -> c_int;

macro_rules! aio_suspend_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`: returns at once if a BenchFS request is among them.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(list: *const *const aiocb, n: c_int, timeout: *const timespec) -> c_int {
            if PENDING.load(Ordering::Acquire) > 0 && !list.is_null() && n > 0 {
                // SAFETY: the caller's array of `n` entries (null ones are skipped).
                let entries = unsafe { std::slice::from_raw_parts(list, n as usize) };
                if entries.iter().any(|&cb| !cb.is_null() && finished(cb).is_some()) {
                    return 0;
                }
            }
            // SAFETY: the caller's arguments, passed on.
            unsafe { real!($real as SuspendFn)(list, n, timeout) }
        }
    };
}

aio_suspend_fn!(aio_suspend, "aio_suspend");
aio_suspend_fn!(aio_suspend64, "aio_suspend64");

macro_rules! aio_cancel_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`: BenchFS requests are already done.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(fd: c_int, cb: *mut aiocb) -> c_int {
            if table::ours(fd).is_some() {
                return libc::AIO_ALLDONE;
            }
            // SAFETY: the caller's arguments, passed on.
            unsafe { real!($real as unsafe extern "C" fn(c_int, *mut aiocb) -> c_int)(fd, cb) }
        }
    };
}

aio_cancel_fn!(aio_cancel, "aio_cancel");
aio_cancel_fn!(aio_cancel64, "aio_cancel64");

type ListioFn = unsafe extern "C" fn(c_int, *const *mut aiocb, c_int, *mut sigevent) -> c_int;

macro_rules! lio_listio_fn {
    ($name:ident, $real:literal) => {
        #[doc = concat!("Like `", stringify!($name), "(3)`: BenchFS requests are carried out here, the rest passed on.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(mode: c_int, list: *const *mut aiocb, n: c_int, sig: *mut sigevent) -> c_int {
            let real = real!($real as ListioFn);
            if list.is_null() || n <= 0 {
                // SAFETY: the caller's arguments, passed on.
                return unsafe { real(mode, list, n, sig) };
            }
            // SAFETY: the caller's array of `n` entries.
            let entries = unsafe { std::slice::from_raw_parts(list, n as usize) };
            let mut rest = Vec::with_capacity(entries.len());
            let mut failed = false;
            for &cb in entries {
                // SAFETY: a control block of the caller's (or null).
                let op = unsafe { cb.as_ref() }.map(|c| c.aio_lio_opcode);
                let submitted = match op {
                    // SAFETY: as above.
                    Some(libc::LIO_READ) => unsafe { submit(cb, Op::Read) },
                    // SAFETY: as above.
                    Some(libc::LIO_WRITE) => unsafe { submit(cb, Op::Write) },
                    _ => None,
                };
                match submitted {
                    Some(r) => failed |= r < 0,
                    None => rest.push(cb),
                }
            }
            let others = if rest.iter().any(|cb| !cb.is_null()) {
                // SAFETY: the caller's remaining control blocks.
                unsafe { real(mode, rest.as_ptr(), rest.len() as c_int, sig) }
            } else {
                0
            };
            if failed {
                crate::set_errno(libc::EIO);
                return -1;
            }
            others
        }
    };
}

lio_listio_fn!(lio_listio, "lio_listio");
lio_listio_fn!(lio_listio64, "lio_listio64");
