//! The ranks of the job become BenchFS at `MPI_Init` and stop being it at `MPI_Finalize`,
//! through MPI's profiling interface: this library's `MPI_Init` calls `PMPI_Init`, then
//! `benchfs_init(MPI_COMM_WORLD)`; its `MPI_Finalize` calls `benchfs_finalize` first, then
//! `PMPI_Finalize`. The Fortran entry points do the same around `pmpi_init_`, since Open MPI's
//! Fortran `mpi_init_` need not pass through the C `MPI_Init`.
//!
//! If BenchFS cannot start, the program still runs and says why on standard error; every call on
//! the mount then fails (`ENOTCONN`).

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::real::real;

/// BenchFS is running in this process (started here, so stopped here once).
static STARTED: AtomicBool = AtomicBool::new(false);

fn start() {
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: reading MPI's predefined communicator handle after MPI_Init.
    let world = unsafe { mpi::ffi::RSMPI_COMM_WORLD };
    if let Err(e) = benchfs::init_raw(world) {
        STARTED.store(false, Ordering::Release);
        crate::warn(format!("BenchFS did not start: {e} (errno {}); files under the mount are unavailable", e.errno()).as_bytes());
    }
}

fn stop() {
    if !STARTED.swap(false, Ordering::AcqRel) {
        return;
    }
    if let Err(e) = benchfs::finalize() {
        crate::warn(format!("benchfs_finalize failed: {e} (errno {})", e.errno()).as_bytes());
    }
}

type InitFn = unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char) -> c_int;
type InitThreadFn = unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char, c_int, *mut c_int) -> c_int;

/// `MPI_Init`, then BenchFS on `MPI_COMM_WORLD`.
#[no_mangle]
pub unsafe extern "C" fn MPI_Init(argc: *mut c_int, argv: *mut *mut *mut c_char) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let rc = unsafe { real!("PMPI_Init" as InitFn)(argc, argv) };
    if rc == 0 {
        start();
    }
    rc
}

/// `MPI_Init_thread`, then BenchFS on `MPI_COMM_WORLD`.
#[no_mangle]
pub unsafe extern "C" fn MPI_Init_thread(argc: *mut c_int, argv: *mut *mut *mut c_char, required: c_int, provided: *mut c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let rc = unsafe { real!("PMPI_Init_thread" as InitThreadFn)(argc, argv, required, provided) };
    if rc == 0 {
        start();
    }
    rc
}

/// BenchFS's finalize (collective, while MPI still works), then `MPI_Finalize`.
#[no_mangle]
pub unsafe extern "C" fn MPI_Finalize() -> c_int {
    stop();
    // SAFETY: plain call.
    unsafe { real!("PMPI_Finalize" as unsafe extern "C" fn() -> c_int)() }
}

/// Fortran `MPI_INIT`.
#[no_mangle]
pub unsafe extern "C" fn mpi_init_(ierr: *mut c_int) {
    // SAFETY: the caller's argument, passed on.
    unsafe { real!("pmpi_init_" as unsafe extern "C" fn(*mut c_int))(ierr) };
    // SAFETY: Fortran passes a valid INTEGER.
    if unsafe { ierr.as_ref() }.is_some_and(|&e| e == 0) {
        start();
    }
}

/// Fortran `MPI_INIT_THREAD`.
#[no_mangle]
pub unsafe extern "C" fn mpi_init_thread_(required: *const c_int, provided: *mut c_int, ierr: *mut c_int) {
    // SAFETY: the caller's arguments, passed on.
    unsafe { real!("pmpi_init_thread_" as unsafe extern "C" fn(*const c_int, *mut c_int, *mut c_int))(required, provided, ierr) };
    // SAFETY: Fortran passes a valid INTEGER.
    if unsafe { ierr.as_ref() }.is_some_and(|&e| e == 0) {
        start();
    }
}

/// Fortran `MPI_FINALIZE`.
#[no_mangle]
pub unsafe extern "C" fn mpi_finalize_(ierr: *mut c_int) {
    stop();
    // SAFETY: the caller's argument, passed on.
    unsafe { real!("pmpi_finalize_" as unsafe extern "C" fn(*mut c_int))(ierr) };
}
