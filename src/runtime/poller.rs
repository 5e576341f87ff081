//! A minimal epoll set: level-triggered readability of a few fds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub struct Poller {
    epoll: OwnedFd,
}

impl Poller {
    pub fn new() -> std::io::Result<Poller> {
        // SAFETY: plain syscall; the fd is checked and then owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is fresh and owned by nobody else.
        Ok(Poller { epoll: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn add(&self, fd: RawFd) -> std::io::Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
        // SAFETY: both fds are valid; event is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Blocks until some fd is readable or the timeout passes. EINTR counts as a wake-up.
    /// True if an fd was readable.
    pub fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // Rounded up: a wait that must end within a millisecond still blocks for one, instead
        // of returning at once, again and again, until its time.
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
        // SAFETY: events is a valid array of the length passed.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(n > 0)
    }
}

/// Blocks until one of `fds` is readable or `time` has passed (finer than epoll's
/// milliseconds); true if one is readable.
pub fn nap(fds: &[RawFd], time: Duration) -> bool {
    let mut pollfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let timeout = libc::timespec { tv_sec: time.as_secs() as libc::time_t, tv_nsec: time.subsec_nanos() as libc::c_long };
    // SAFETY: valid pollfds of the length passed and a valid timespec; no signal mask is
    // changed. An error (EINTR) counts as a nap that ended early without an event.
    unsafe { libc::ppoll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, &timeout, std::ptr::null()) > 0 }
}
