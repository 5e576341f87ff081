//! `libbenchfs-preload.so`: unmodified MPI programs keep their files on BenchFS.
//!
//! ```text
//! mpirun -np 64 -x LD_PRELOAD=$PREFIX/lib/libbenchfs-preload.so ./app --out /benchfs/run1
//! ```
//!
//! Loaded into every rank with `LD_PRELOAD`, the library
//! * wraps `MPI_Init`, `MPI_Init_thread` and `MPI_Finalize` (and the Fortran `mpi_init_`,
//!   `mpi_init_thread_`, `mpi_finalize_`) through MPI's profiling interface: the ranks of the job
//!   become BenchFS right after `MPI_Init` and stop being it right before `MPI_Finalize`
//!   ([`mpi`]);
//! * defines the C library's file functions under their own names: a call on a path under the
//!   mount prefix (`BENCHFS_MOUNT`, `/benchfs` by default; see [`path`]) or on a descriptor that
//!   stands for a BenchFS file ([`table`]) is served by BenchFS, every other call goes on to the
//!   C library untouched ([`real`]). [`posix`] has the descriptor and path calls, [`stat`] the
//!   attributes, [`dir`] directory streams, [`stdio`] `fopen` and friends, [`aio`] the POSIX
//!   asynchronous I/O that MPI-IO uses.
//!
//! What cannot work is refused with an errno, never faked: `mmap` of a BenchFS file (`ENODEV`),
//! record locks (`ENOLCK`), `O_TMPFILE`, links (`EPERM`/`EXDEV`). The README's "Running unmodified
//! applications" lists what works.
//!
//! No Rust panic crosses into the program: every function catches it ([`guard`]) and fails with
//! `EIO`.

// The interposed functions would replace the C library's in the crate's own test binary; the
// helpers they use are idle there.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(test))]
mod aio;
#[cfg(not(test))]
mod dir;
#[cfg(not(test))]
mod mpi;
mod path;
#[cfg(not(test))]
mod posix;
mod real;
#[cfg(not(test))]
mod stat;
#[cfg(not(test))]
mod stdio;
#[cfg(not(test))]
mod table;

use std::ffi::c_int;

/// The calling thread's errno.
pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// A line on standard error (through the C library's own `write`, never this library's).
pub(crate) fn warn(message: &[u8]) {
    let write = real::real!("write" as unsafe extern "C" fn(c_int, *const libc::c_void, libc::size_t) -> libc::ssize_t);
    let mut line = b"benchfs-preload: ".to_vec();
    line.extend_from_slice(message);
    line.push(b'\n');
    // SAFETY: a valid buffer of that length.
    unsafe { write(2, line.as_ptr().cast(), line.len()) };
}

/// Runs BenchFS's side of a call: `Ok(v)` returns `v` with errno as it was (BenchFS's own
/// system calls may leave theirs, and a program may look at errno after a call that succeeded,
/// as after the last `readdir`), `Err(e)` sets errno `e` and returns `failed`; a panic is `EIO`.
pub(crate) fn guard<T: Copy>(failed: T, f: impl FnOnce() -> Result<T, c_int>) -> T {
    let saved = errno();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => {
            set_errno(saved);
            v
        }
        Ok(Err(e)) => {
            set_errno(e);
            failed
        }
        Err(_) => {
            set_errno(libc::EIO);
            failed
        }
    }
}

/// BenchFS's errno for `e`.
pub(crate) fn code(e: benchfs::Error) -> c_int {
    e.errno()
}
