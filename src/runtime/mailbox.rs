//! Jobs from application threads to the progress thread, with an eventfd to wake it.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Mailbox<J> {
    queue: Mutex<VecDeque<J>>,
    /// The queue's length, kept beside it so that a turn finding it empty takes no lock.
    queued: AtomicUsize,
    /// Set by the progress thread while it may be blocked; a sender that clears it must wake it.
    sleeping: AtomicBool,
    /// Closed: no new jobs are accepted.
    closed: AtomicBool,
    eventfd: OwnedFd,
}

impl<J> Mailbox<J> {
    pub fn new() -> std::io::Result<Mailbox<J>> {
        // SAFETY: plain syscall; the returned fd is checked and then owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mailbox {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Queues a job; gives it back if the mailbox is closed.
    pub fn send(&self, job: J) -> Result<(), J> {
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return Err(job);
            }
            queue.push_back(job);
            self.queued.store(queue.len(), Ordering::Release);
        }
        self.wake_if_sleeping();
        Ok(())
    }

    /// Wakes the consumer if it may be blocked.
    pub fn wake_if_sleeping(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Refuses all further jobs; returns those still queued.
    pub fn close(&self) -> Vec<J> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        self.queued.store(0, Ordering::Release);
        queue.drain(..).collect()
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd. A full counter (EAGAIN) still
        // leaves the fd readable, which is all a wake-up needs.
        unsafe { libc::write(self.eventfd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    /// The queued jobs. A job queued while this runs may be left for the next call; a consumer
    /// about to sleep checks the queue under its lock (`prepare_sleep`), so none is forgotten.
    pub(super) fn drain(&self) -> Vec<J> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.queued.store(0, Ordering::Release);
        queue.drain(..).collect()
    }

    /// Announces that the consumer is about to block. Returns false if jobs arrived meanwhile.
    pub(super) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        let empty = self.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        if !empty {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        empty
    }

    pub(super) fn finish_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (nothing to read) is fine.
        unsafe { libc::read(self.eventfd.as_raw_fd(), &mut counter as *mut u64 as *mut libc::c_void, 8) };
    }

    pub fn event_fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }
}
