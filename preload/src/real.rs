//! The C library's own functions, which this library's functions of the same names hide.
//!
//! Every call that is not BenchFS's goes on to the next definition of the symbol after this
//! library (`dlsym(RTLD_NEXT)`), found once and kept. Calling `libc::open` here instead would
//! call this library's `open` again.

use std::ffi::CStr;

/// The address of the next definition of `name`; a missing one ends the process with a message
/// (every function this library defines exists in the C library it was built against).
pub fn lookup(name: &CStr) -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if found.is_null() {
        let message = b"benchfs-preload: a C library function is missing; cannot continue\n";
        // SAFETY: writing a static buffer to standard error, then ending the process: there is no
        // function to call on to.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::abort();
        }
    }
    found as usize
}

/// `real!("read" as unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t)`: the C
/// library's `read`, looked up on first use.
macro_rules! real {
    ($name:literal as $ty:ty) => {{
        static ADDRESS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut address = ADDRESS.load(std::sync::atomic::Ordering::Relaxed);
        if address == 0 {
            // SAFETY: the literal has no NUL inside and one is appended.
            #[allow(unused_unsafe)]
            let name = unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!($name, "\0").as_bytes()) };
            address = $crate::real::lookup(name);
            ADDRESS.store(address, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the address is that of the C library's function of this name, whose C type
        // `$ty` spells.
        #[allow(unused_unsafe)]
        let function = unsafe { std::mem::transmute::<usize, $ty>(address) };
        function
    }};
}
pub(crate) use real;
