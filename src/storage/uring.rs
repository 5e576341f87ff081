//! The io_uring backend: one ring per chunk store, driven by the progress loop.
//!
//! An operation is an [`Op`] future. Its first poll takes a slot of the op table, queues one
//! SQE tagged with the slot index and parks its waker in the slot. [`Ring::submit`] hands the
//! queued SQEs to the kernel in one `io_uring_enter`; [`Ring::poll_completions`] reads the CQEs
//! from the shared completion ring (no system call) and wakes the futures. Only the ring's
//! owner thread submits: a future first polled on another thread (a task the owner started,
//! resumed by an application thread that turns the loop) does its operation there with a plain
//! system call instead of queueing an SQE that nobody would hand to the kernel.
//!
//! Ownership: from the moment an SQE is queued until its CQE is reaped, its slot owns what the
//! kernel may touch, the buffer (for `IoBuf::Owned`) and an `Rc` of the file, so neither a
//! dropped future nor an fd-cache eviction can free them early. Dropping the ring first waits
//! for every outstanding CQE.
//!
//! Flow control: the table has exactly as many slots as the submission queue has entries, so
//! queued SQEs never exceed the SQ, and in-flight operations never exceed the CQ (which the
//! kernel makes twice the SQ): no CQE can overflow. A future that finds no free slot waits in
//! FIFO order and is woken when one frees.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue, types, IoUring, Probe};

use super::IoBuf;
use crate::error::StorageError;

/// Most bytes one SQE moves. The kernel stops a single read or write just short of 2 GiB
/// anyway; this keeps the count within `u32` and bounds the time one operation holds a kernel
/// worker. Longer requests are split into several operations.
const MAX_OP_BYTES: usize = 1 << 30;

pub(super) struct Ring {
    ring: RefCell<IoUring>,
    table: RefCell<OpTable>,
    /// SQEs in the submission queue not yet handed to the kernel.
    queued: Cell<usize>,
    /// SQEs queued or submitted whose CQE has not been reaped.
    awaiting: Cell<usize>,
    /// Wakers collected while reaping, woken after the borrows end; kept to reuse its memory.
    wake_list: RefCell<Vec<Waker>>,
    /// Registered with the ring: the kernel increments it for every CQE it posts.
    event: OwnedFd,
}

impl Ring {
    /// Sets up a ring of `queue_depth` entries (rounded up to a power of two, clamped to the
    /// kernel maximum) with an eventfd for completions.
    pub(super) fn new(queue_depth: u32) -> io::Result<Ring> {
        let ring = IoUring::builder().setup_clamp().build(queue_depth.max(1))?;
        require_opcodes(&ring)?;
        let event = new_eventfd()?;
        ring.submitter().register_eventfd(event.as_raw_fd())?;
        let slots = ring.params().sq_entries() as usize;
        tracing::debug!(slots, cq_entries = ring.params().cq_entries(), "io_uring ring ready");
        Ok(Ring {
            ring: RefCell::new(ring),
            table: RefCell::new(OpTable::new(slots)),
            queued: Cell::new(0),
            awaiting: Cell::new(0),
            wake_list: RefCell::new(Vec::new()),
            event,
        })
    }

    pub(super) fn event_fd(&self) -> RawFd {
        self.event.as_raw_fd()
    }

    pub(super) fn clear_event(&self) {
        let mut count = 0u64;
        // SAFETY: reads at most 8 bytes into `count`, which is 8 bytes. The fd is non-blocking;
        // EAGAIN (nothing to clear) is the only expected failure and needs no handling.
        unsafe { libc::read(self.event.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    #[cfg(test)]
    pub(super) fn inflight(&self) -> usize {
        self.awaiting.get()
    }

    /// Operations handed to the kernel whose completion has not been reaped yet: the kernel may
    /// still read or write their buffers.
    pub(super) fn in_kernel(&self) -> usize {
        self.awaiting.get().saturating_sub(self.queued.get())
    }

    /// Hands queued SQEs to the kernel; returns how many it took.
    pub(super) fn submit(&self) -> usize {
        if self.queued.get() == 0 {
            return 0;
        }
        let result = loop {
            match self.ring.borrow().submit() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                other => break other,
            }
        };
        match result {
            Ok(n) => {
                self.queued.set(self.queued.get().saturating_sub(n));
                n
            }
            // The kernel cannot take them now (EAGAIN: no memory for requests, EBUSY: CQEs
            // backlogged); they stay queued for the next turn.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => 0,
            Err(error) => {
                tracing::error!(%error, "io_uring_enter failed; queued operations stay pending");
                0
            }
        }
    }

    /// Reaps every posted CQE, waking the futures of the completed operations and freeing the
    /// slots of abandoned ones. Returns how many were reaped.
    pub(super) fn poll_completions(&self) -> usize {
        if self.awaiting.get() == 0 {
            return 0;
        }
        let mut wakers = mem::take(&mut *self.wake_list.borrow_mut());
        let mut reaped = 0;
        {
            let mut ring = self.ring.borrow_mut();
            let mut table = self.table.borrow_mut();
            for cqe in ring.completion() {
                reaped += 1;
                table.complete(cqe.user_data() as usize, cqe.result(), &mut wakers);
            }
        }
        self.awaiting.set(self.awaiting.get() - reaped);
        for waker in wakers.drain(..) {
            waker.wake();
        }
        *self.wake_list.borrow_mut() = wakers;
        reaped
    }

    /// Reads until `buf` is full or the file ends. Returns the count and the buffer.
    pub(super) async fn read_at(&self, file: Rc<File>, buf: IoBuf, offset: u64) -> (Result<usize, StorageError>, IoBuf) {
        self.transfer(file, buf, offset, false).await
    }

    /// Writes all of `buf`; returns its length.
    pub(super) async fn write_all_at(&self, file: Rc<File>, buf: IoBuf, offset: u64) -> Result<usize, StorageError> {
        self.transfer(file, buf, offset, true).await.0
    }

    /// Moves `buf` to or from `offset` in operations of at most `MAX_OP_BYTES`, resubmitting
    /// the rest after a short transfer. A read stops at the end of the file (the rest is a
    /// hole); a write that makes no progress is an error.
    async fn transfer(&self, file: Rc<File>, mut buf: IoBuf, offset: u64, writing: bool) -> (Result<usize, StorageError>, IoBuf) {
        let total = buf.len();
        let mut done = 0;
        while done < total {
            let (pos, len, at) = (done, (total - done).min(MAX_OP_BYTES) as u32, offset + done as u64);
            let kind = if writing { Kind::Write { pos, len, offset: at } } else { Kind::Read { pos, len, offset: at } };
            let (res, back) = Op::new(self, kind, Rc::clone(&file), buf).await;
            buf = back;
            match res {
                Ok(0) if writing => return (Err(io::Error::from(io::ErrorKind::WriteZero).into()), buf),
                Ok(0) => break,
                Ok(n) => done += n as usize,
                Err(e) if is_transient(&e) => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(done), buf)
    }

    pub(super) async fn fsync(&self, file: Rc<File>) -> Result<(), StorageError> {
        loop {
            let (res, _) = Op::new(self, Kind::Fsync, Rc::clone(&file), IoBuf::Owned(Vec::new())).await;
            match res {
                Err(e) if is_transient(&e) => {}
                other => return other.map(drop),
            }
        }
    }

    /// A free slot for an operation holding `ticket`, or `None` after queueing the waker.
    fn admit(&self, ticket: &mut Option<u64>, waker: &Waker) -> Option<usize> {
        let mut table = self.table.borrow_mut();
        if let Some(slot) = table.free.pop() {
            if let Some(id) = ticket.take() {
                table.waiters.retain(|(queued, _)| *queued != id);
            }
            return Some(slot);
        }
        if let Some(id) = *ticket {
            if let Some((_, queued)) = table.waiters.iter_mut().find(|(queued, _)| *queued == id) {
                if !queued.will_wake(waker) {
                    *queued = waker.clone();
                }
                return None;
            }
        }
        // A ticket that is no longer queued was woken for a slot another operation took
        // first: it goes back to the head of the line.
        let id = table.next_ticket;
        table.next_ticket += 1;
        match ticket.replace(id) {
            Some(_) => table.waiters.push_front((id, waker.clone())),
            None => table.waiters.push_back((id, waker.clone())),
        }
        None
    }

    /// Moves `hold` into `slot` and queues the SQE for it.
    fn start(&self, slot: usize, kind: Kind, mut hold: Hold, waker: &Waker) -> Result<(), (StorageError, Hold)> {
        let entry = kind.entry(&mut hold).user_data(slot as u64);
        self.table.borrow_mut().slots[slot] = Slot::InFlight { waker: waker.clone(), hold };
        // SAFETY: the entry points at the file and buffer now owned by `slot`, which keeps them
        // until the CQE tagged with `slot` is reaped (see `OpTable::complete` and `Drop`).
        match unsafe { self.push(&entry) } {
            Ok(()) => {
                self.awaiting.set(self.awaiting.get() + 1);
                Ok(())
            }
            Err(e) => {
                let mut table = self.table.borrow_mut();
                let Slot::InFlight { hold, .. } = mem::replace(&mut table.slots[slot], Slot::Vacant) else {
                    unreachable!("slot was filled just above");
                };
                let next = table.release(slot);
                drop(table);
                wake(next);
                Err((e, hold))
            }
        }
    }

    /// Queues `entry` in the submission queue.
    ///
    /// # Safety
    /// Everything `entry` points at must stay valid until its CQE is reaped.
    unsafe fn push(&self, entry: &squeue::Entry) -> Result<(), StorageError> {
        // SAFETY: forwarded to the caller.
        if unsafe { self.ring.borrow_mut().submission().push(entry) }.is_ok() {
            self.queued.set(self.queued.get() + 1);
            return Ok(());
        }
        // The SQ cannot be full while slots are never more than its entries; should it be,
        // submitting makes room.
        self.submit();
        // SAFETY: forwarded to the caller.
        unsafe { self.ring.borrow_mut().submission().push(entry) }.map_err(|_| StorageError::QueueFull)?;
        self.queued.set(self.queued.get() + 1);
        Ok(())
    }

    /// The result of the operation in `slot` if its CQE has arrived; else refreshes the waker.
    fn collect(&self, slot: usize, waker: &Waker) -> Option<(i32, Hold)> {
        let mut table = self.table.borrow_mut();
        match mem::replace(&mut table.slots[slot], Slot::Vacant) {
            Slot::Done { res, hold } => {
                let next = table.release(slot);
                drop(table);
                wake(next);
                Some((res, hold))
            }
            Slot::InFlight { waker: mut parked, hold } => {
                if !parked.will_wake(waker) {
                    parked = waker.clone();
                }
                table.slots[slot] = Slot::InFlight { waker: parked, hold };
                None
            }
            other => unreachable!("slot of a live operation is {}", other.state_name()),
        }
    }

    /// The future of the operation in `slot` is gone: leave the slot to the kernel until the
    /// CQE arrives, or free it now if it already has.
    fn abandon(&self, slot: usize) {
        let mut table = self.table.borrow_mut();
        match mem::replace(&mut table.slots[slot], Slot::Vacant) {
            Slot::InFlight { hold, .. } => table.slots[slot] = Slot::Orphaned(hold),
            Slot::Done { hold, .. } => {
                let next = table.release(slot);
                drop(table);
                drop(hold);
                wake(next);
            }
            other => unreachable!("slot of a live operation is {}", other.state_name()),
        }
    }

    /// A waiting operation is gone. If it had already been woken for a free slot, that wake-up
    /// passes to the next in line, so that no slot stays free while others wait.
    fn withdraw(&self, ticket: u64) {
        let mut table = self.table.borrow_mut();
        let before = table.waiters.len();
        table.waiters.retain(|(queued, _)| *queued != ticket);
        if table.waiters.len() == before && !table.free.is_empty() {
            let next = table.waiters.pop_front().map(|(_, waker)| waker);
            drop(table);
            wake(next);
        }
    }
}

impl Drop for Ring {
    /// Waits for the CQE of every operation still owned by the kernel, so that no buffer or
    /// file it uses is freed while it runs.
    fn drop(&mut self) {
        while self.awaiting.get() > 0 {
            let waited = self.ring.borrow().submit_and_wait(1);
            match waited {
                Ok(n) => self.queued.set(self.queued.get().saturating_sub(n)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)) => {}
                Err(error) => {
                    // Without completions there is no knowing when the kernel is done with the
                    // buffers: leaking them is the only safe choice.
                    tracing::error!(%error, inflight = self.awaiting.get(),
                        "cannot wait for io_uring operations; leaking their buffers");
                    mem::forget(mem::take(&mut self.table.get_mut().slots));
                    return;
                }
            }
            self.poll_completions();
        }
    }
}

/// What an operation does, with the part of its buffer it covers.
#[derive(Clone, Copy)]
enum Kind {
    Read { pos: usize, len: u32, offset: u64 },
    Write { pos: usize, len: u32, offset: u64 },
    Fsync,
}

impl Kind {
    fn entry(self, hold: &mut Hold) -> squeue::Entry {
        let fd = types::Fd(hold.file.as_raw_fd());
        match self {
            Kind::Read { pos, len, offset } => {
                let ptr = hold.buf.ptr_at(pos, len as usize);
                opcode::Read::new(fd, ptr, len).offset(offset).build()
            }
            Kind::Write { pos, len, offset } => {
                let ptr = hold.buf.ptr_at(pos, len as usize);
                opcode::Write::new(fd, ptr.cast_const(), len).offset(offset).build()
            }
            Kind::Fsync => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
        }
    }

    /// Does the operation with a plain system call on this thread; returns what its CQE would
    /// hold (a byte count, or minus the errno).
    fn run_now(self, hold: &mut Hold) -> i32 {
        let file = &*hold.file;
        let done = match self {
            Kind::Read { pos, len, offset } => file.read_at(&mut hold.buf.as_mut_slice()[pos..pos + len as usize], offset),
            Kind::Write { pos, len, offset } => file.write_at(&hold.buf.as_slice()[pos..pos + len as usize], offset),
            Kind::Fsync => file.sync_data().map(|()| 0),
        };
        match done {
            // At most `MAX_OP_BYTES`, which fits.
            Ok(n) => n as i32,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// What the kernel may touch while an operation is in flight.
struct Hold {
    file: Rc<File>,
    buf: IoBuf,
}

enum Slot {
    Vacant,
    /// SQE queued or submitted; a live future waits for it.
    InFlight {
        waker: Waker,
        hold: Hold,
    },
    /// CQE reaped; the future has not collected the result yet.
    Done {
        res: i32,
        hold: Hold,
    },
    /// SQE queued or submitted, its future dropped; freed when the CQE arrives.
    Orphaned(Hold),
}

impl Slot {
    fn state_name(&self) -> &'static str {
        match self {
            Slot::Vacant => "vacant",
            Slot::InFlight { .. } => "in flight",
            Slot::Done { .. } => "done",
            Slot::Orphaned(_) => "orphaned",
        }
    }
}

struct OpTable {
    /// Indexed by the `user_data` of SQEs and CQEs.
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Operations waiting for a free slot, by ticket, first come first served.
    waiters: VecDeque<(u64, Waker)>,
    next_ticket: u64,
}

impl OpTable {
    fn new(slots: usize) -> OpTable {
        OpTable {
            slots: (0..slots).map(|_| Slot::Vacant).collect(),
            free: (0..slots).rev().collect(),
            waiters: VecDeque::new(),
            next_ticket: 0,
        }
    }

    /// Returns the vacated `slot` to the free list; the waker returned is that of the first
    /// operation waiting for a slot, to be woken once the table is no longer borrowed.
    fn release(&mut self, slot: usize) -> Option<Waker> {
        debug_assert!(matches!(self.slots[slot], Slot::Vacant));
        self.free.push(slot);
        self.waiters.pop_front().map(|(_, waker)| waker)
    }

    /// Records the CQE of `slot`, pushing the wakers to wake onto `wakers`.
    fn complete(&mut self, slot: usize, res: i32, wakers: &mut Vec<Waker>) {
        match mem::replace(&mut self.slots[slot], Slot::Vacant) {
            Slot::InFlight { waker, hold } => {
                self.slots[slot] = Slot::Done { res, hold };
                wakers.push(waker);
            }
            Slot::Orphaned(hold) => {
                drop(hold);
                wakers.extend(self.release(slot));
            }
            other => {
                tracing::error!(slot, state = other.state_name(), "CQE for a slot with no operation in flight");
                self.slots[slot] = other;
            }
        }
    }
}

enum State {
    /// No slot yet; `ticket` is set once the operation has queued for one.
    Waiting {
        kind: Kind,
        hold: Hold,
        ticket: Option<u64>,
    },
    InFlight(usize),
    Finished,
}

/// One SQE's worth of I/O. Resolves to the kernel's result (a byte count) and the buffer.
struct Op<'r> {
    ring: &'r Ring,
    state: State,
}

impl<'r> Op<'r> {
    fn new(ring: &'r Ring, kind: Kind, file: Rc<File>, buf: IoBuf) -> Op<'r> {
        Op { ring, state: State::Waiting { kind, hold: Hold { file, buf }, ticket: None } }
    }
}

impl Future for Op<'_> {
    type Output = (Result<u32, StorageError>, IoBuf);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match mem::replace(&mut this.state, State::Finished) {
            // Only the ring's owner submits (see `own_rings_here`): another thread that resumes
            // the task before its operation has a slot (after the previous operation's
            // completion, or when a slot frees) does it here, or it would sit in the
            // submission queue until the owner happens to turn the loop again.
            State::Waiting { kind, mut hold, ticket } if !super::may_submit_here() => {
                if let Some(ticket) = ticket {
                    this.ring.withdraw(ticket);
                }
                let res = kind.run_now(&mut hold);
                Poll::Ready((byte_count(res), hold.buf))
            }
            State::Waiting { kind, hold, mut ticket } => match this.ring.admit(&mut ticket, cx.waker()) {
                None => {
                    this.state = State::Waiting { kind, hold, ticket };
                    Poll::Pending
                }
                Some(slot) => match this.ring.start(slot, kind, hold, cx.waker()) {
                    Ok(()) => {
                        this.state = State::InFlight(slot);
                        Poll::Pending
                    }
                    Err((e, hold)) => Poll::Ready((Err(e), hold.buf)),
                },
            },
            State::InFlight(slot) => match this.ring.collect(slot, cx.waker()) {
                Some((res, hold)) => Poll::Ready((byte_count(res), hold.buf)),
                None => {
                    this.state = State::InFlight(slot);
                    Poll::Pending
                }
            },
            State::Finished => panic!("io_uring operation polled after completion"),
        }
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        match mem::replace(&mut self.state, State::Finished) {
            State::Waiting { ticket: Some(ticket), .. } => self.ring.withdraw(ticket),
            State::InFlight(slot) => self.ring.abandon(slot),
            State::Waiting { ticket: None, .. } | State::Finished => {}
        }
    }
}

/// A CQE result: a byte count, or a negated errno.
fn byte_count(res: i32) -> Result<u32, StorageError> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res).into())
    } else {
        Ok(res as u32)
    }
}

fn is_transient(e: &StorageError) -> bool {
    matches!(e, StorageError::Io(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)))
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Fails unless the kernel's io_uring supports every opcode the store uses.
fn require_opcodes(ring: &IoUring) -> io::Result<()> {
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let needed = [(opcode::Read::CODE, "READ"), (opcode::Write::CODE, "WRITE"), (opcode::Fsync::CODE, "FSYNC")];
    match needed.iter().find(|(code, _)| !probe.is_supported(*code)) {
        Some((_, name)) => Err(io::Error::new(io::ErrorKind::Unsupported, format!("the kernel's io_uring lacks IORING_OP_{name}"))),
        None => Ok(()),
    }
}

fn new_eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
