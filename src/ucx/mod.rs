//! A thin safe layer over UCP: context, worker, endpoints and active messages.
//!
//! This is the only module that touches the UCX FFI. None of these types is `Send`: they live in
//! the rank's engine (`runtime::engine`), used by one thread at a time under its lock, so the
//! worker is created in `UCS_THREAD_MODE_SERIALIZED`.
//!
//! Ownership rule for in-flight operations: a send or receive keeps its header and buffers in an
//! `Rc<OpCell>` shared with the UCX completion callback. Dropping the future that awaits the
//! operation therefore never frees memory UCX still reads or writes; for caller-provided raw
//! buffers the caller guarantees the same by always awaiting completion.

pub mod sys;

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use crate::error::UcxError;

type Status = sys::ucs_status_t;

fn status_message(status: Status) -> String {
    // SAFETY: ucs_status_string returns a pointer to a static NUL-terminated string for any value.
    unsafe { CStr::from_ptr(sys::ucs_status_string(status)) }.to_string_lossy().into_owned()
}

fn check(op: &'static str, status: Status) -> Result<(), UcxError> {
    if status == sys::UCS_OK {
        Ok(())
    } else {
        Err(UcxError { op, status: status as i32, message: status_message(status) })
    }
}

/// Decodes a `ucs_status_ptr_t`: NULL (done), an error code, or a live request.
enum StatusPtr {
    Done,
    Failed(Status),
    Pending,
}

fn decode_status_ptr(ptr: sys::ucs_status_ptr_t) -> StatusPtr {
    // UCS_PTR_IS_ERR: error codes are encoded as the pointer values (uintptr_t)-1 .. UCS_ERR_LAST.
    let value = ptr as isize;
    if ptr.is_null() {
        StatusPtr::Done
    } else if value < 0 && value > sys::UCS_ERR_LAST as isize {
        StatusPtr::Failed(value as Status)
    } else {
        StatusPtr::Pending
    }
}

/// A UCP context with the active-message and wakeup features.
pub struct Context {
    raw: sys::ucp_context_h,
}

/// What UCX is told of the job at start, to size its resources (endpoint tables, shared-memory
/// and network queues) for it rather than for its defaults.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Endpoints a worker may open: one per serving rank.
    pub endpoints: usize,
    /// Processes of the job on this node.
    pub per_node: usize,
}

/// The element size set for UCX's shared-memory transports (`UCX_MM_FIFO_ELEM_SIZE`), unless
/// the environment sets one. UCX sends a message that fits one element of the receiver's FIFO
/// within the call (its short protocol), and a longer one through a buffer from a pool, with a
/// request to complete. With the default 128-byte elements a create's reply (attributes and the
/// size before a cut: 101 bytes) and a request with a path of more than some 50 bytes took the
/// longer way: sending a create's reply cost its server 0.27-0.31 us at the median, against
/// 0.14-0.17 us in 256-byte elements. These take requests with paths of up to about 150 bytes
/// the short way, for 8 KiB more shared memory per FIFO (64 elements; a worker has one per
/// shared-memory transport, two here). A sender writes into the receiver's FIFO in elements of
/// its own size: every process of a job, and every client attached to it, must use the same
/// (they do, unless their environments differ).
const SHM_ELEMENT_SIZE: &CStr = c"256";

impl Context {
    pub fn new(scale: Scale) -> Result<Context, UcxError> {
        let mut config: *mut sys::ucp_config_t = ptr::null_mut();
        // SAFETY: NULL env prefix and file name select the defaults; `config` receives a handle.
        check("ucp_config_read", unsafe { sys::ucp_config_read(ptr::null(), ptr::null(), &mut config) })?;
        // A setting of the environment's wins (this one would override it: UCX applies it to the
        // transports after their environment).
        let user_set = std::env::vars_os().any(|(k, _)| k.to_str().is_some_and(|k| k.starts_with("UCX_") && k.ends_with("FIFO_ELEM_SIZE")));
        if !user_set {
            // SAFETY: config is live; name and value are NUL-terminated strings.
            let status = unsafe { sys::ucp_config_modify(config, c"MM_FIFO_ELEM_SIZE".as_ptr(), SHM_ELEMENT_SIZE.as_ptr()) };
            if status != sys::UCS_OK {
                tracing::debug!(status = %status_message(status), "UCX keeps its shared-memory element size");
            }
        }
        let fields = sys::UCP_PARAM_FIELD_FEATURES
            | sys::UCP_PARAM_FIELD_NAME
            | sys::UCP_PARAM_FIELD_ESTIMATED_NUM_EPS
            | sys::UCP_PARAM_FIELD_ESTIMATED_NUM_PPN;
        let params = sys::ucp_params_t {
            field_mask: fields as u64,
            features: (sys::UCP_FEATURE_AM | sys::UCP_FEATURE_WAKEUP) as u64,
            name: c"benchfs".as_ptr(),
            estimated_num_eps: scale.endpoints.max(1),
            estimated_num_ppn: scale.per_node.max(1),
            ..Default::default()
        };
        let mut raw: sys::ucp_context_h = ptr::null_mut();
        // SAFETY: params and config are valid for the call; ucp_init is a header inline for this.
        let status = unsafe { sys::ucp_init_version(sys::UCP_API_MAJOR, sys::UCP_API_MINOR, &params, config, &mut raw) };
        // SAFETY: config came from ucp_config_read and is released exactly once.
        unsafe { sys::ucp_config_release(config) };
        check("ucp_init", status)?;
        Ok(Context { raw })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every worker of this context has been destroyed (Worker holds an Rc<Context>).
        unsafe { sys::ucp_cleanup(self.raw) };
    }
}

/// Completion state of one UCX operation, shared between its future and its callback.
struct OpCell {
    status: Cell<Option<Status>>,
    length: Cell<usize>,
    waker: Cell<Option<Waker>>,
    /// Memory UCX may still read or write: released only once the callback has fired.
    _keep: RefCell<Option<Box<dyn std::any::Any>>>,
}

impl OpCell {
    fn new(keep: Option<Box<dyn std::any::Any>>) -> Rc<OpCell> {
        Rc::new(OpCell { status: Cell::new(None), length: Cell::new(0), waker: Cell::new(None), _keep: RefCell::new(keep) })
    }

    fn complete(&self, status: Status, length: usize) {
        self.length.set(length);
        self.status.set(Some(status));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

unsafe extern "C" fn send_done(request: *mut c_void, status: Status, user_data: *mut c_void) {
    // SAFETY: user_data is the Rc<OpCell> leaked in `start_op`; this callback runs once.
    let cell = unsafe { Rc::from_raw(user_data as *const OpCell) };
    cell.complete(status, 0);
    // SAFETY: the request was handed to us by UCX and is no longer used.
    unsafe { sys::ucp_request_free(request) };
}

unsafe extern "C" fn recv_done(request: *mut c_void, status: Status, length: usize, user_data: *mut c_void) {
    // SAFETY: as in `send_done`.
    let cell = unsafe { Rc::from_raw(user_data as *const OpCell) };
    cell.complete(status, length);
    // SAFETY: as in `send_done`.
    unsafe { sys::ucp_request_free(request) };
}

/// A future for one UCX operation; resolves to the received length (0 for sends).
pub struct Op {
    /// `None`: a send that completed inside the call, with nothing kept.
    cell: Option<Rc<OpCell>>,
    op: &'static str,
}

impl Future for Op {
    type Output = Result<usize, UcxError>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let Some(cell) = &self.cell else { return Poll::Ready(Ok(0)) };
        match cell.status.get() {
            Some(status) => Poll::Ready(check(self.op, status).map(|()| cell.length.get())),
            None => {
                cell.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

thread_local! {
    /// Operations this thread has issued to UCX (sends, receives, flushes, closes, connections).
    static ISSUED: Cell<u64> = const { Cell::new(0) };
}

/// How many operations this thread has issued to UCX so far: a caller that compares two counts
/// learns whether it issued any in between, that is, whether it left UCX anything to progress.
pub fn operations_issued() -> u64 {
    ISSUED.with(Cell::get)
}

fn note_issued() {
    ISSUED.with(|n| n.set(n.get().wrapping_add(1)));
}

/// Issues an operation whose completion callback gets a leaked `Rc<OpCell>` as user data.
/// `immediate_len` is what the op resolves to if UCX completes it inside the call.
fn start_op(
    op: &'static str,
    keep: Option<Box<dyn std::any::Any>>,
    immediate_len: usize,
    issue: impl FnOnce(*mut c_void) -> sys::ucs_status_ptr_t,
) -> Op {
    note_issued();
    let cell = OpCell::new(keep);
    let user_data = Rc::into_raw(cell.clone()) as *mut c_void;
    let immediate = match decode_status_ptr(issue(user_data)) {
        StatusPtr::Pending => None,
        StatusPtr::Done => Some(sys::UCS_OK),
        StatusPtr::Failed(status) => Some(status),
    };
    if let Some(status) = immediate {
        // The callback will not run: take back the reference it would have consumed.
        // SAFETY: user_data came from Rc::into_raw above and was not consumed.
        drop(unsafe { Rc::from_raw(user_data as *const OpCell) });
        cell.complete(status, immediate_len);
    }
    Op { cell: Some(cell), op }
}

/// How an active message's payload travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Copied through bounce buffers along with the header.
    Eager,
    /// Pulled by the receiver straight from the sender's buffer (zero copy where UCX can).
    Rendezvous,
}

/// Payload of an outgoing active message.
pub enum SendBuf {
    None,
    Owned(Vec<u8>),
    /// Caller-owned memory that stays valid until the send completes.
    Raw {
        ptr: *const u8,
        len: usize,
    },
    /// Memory kept valid by `_guard`, which the send holds (never reads) until it completes.
    Guarded {
        ptr: *const u8,
        len: usize,
        _guard: Box<dyn std::any::Any>,
    },
}

impl SendBuf {
    pub fn len(&self) -> usize {
        self.parts().1
    }

    fn parts(&self) -> (*const u8, usize) {
        match self {
            SendBuf::None => (ptr::null(), 0),
            SendBuf::Owned(v) => (v.as_ptr(), v.len()),
            SendBuf::Raw { ptr, len } | SendBuf::Guarded { ptr, len, .. } => (*ptr, *len),
        }
    }
}

/// The payload of a received active message.
#[derive(Clone, Copy)]
pub enum AmData<'a> {
    None,
    /// Eager data: valid only during the handler call.
    Eager(&'a [u8]),
    /// Rendezvous data still at the sender: take it with [`AmMessage::take_rndv`].
    Rendezvous {
        len: usize,
    },
}

/// A non-owning handle to an endpoint: one of ours, or the one UCX hands a handler to reply to
/// a sender that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpRef(sys::ucp_ep_h);

/// A received active message, valid during the handler call.
pub struct AmMessage<'a> {
    pub header: &'a [u8],
    pub data: AmData<'a>,
    /// Where to reply, when the sender sent with `want_reply_ep`.
    pub reply_ep: Option<EpRef>,
    desc: *mut c_void,
    worker: sys::ucp_worker_h,
    taken: Cell<bool>,
}

impl AmMessage<'_> {
    /// Keeps a rendezvous payload beyond the handler call, to receive it later.
    pub fn take_rndv(&self) -> Option<RndvData> {
        match self.data {
            AmData::Rendezvous { len } if !self.taken.replace(true) => Some(RndvData { desc: self.desc, len, worker: self.worker }),
            _ => None,
        }
    }
}

/// A rendezvous payload waiting at its sender. Dropping it releases it unreceived.
pub struct RndvData {
    desc: *mut c_void,
    len: usize,
    worker: sys::ucp_worker_h,
}

impl RndvData {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Receives the payload into `ptr[..self.len()]`.
    ///
    /// # Safety
    /// `ptr` must be valid for `len` bytes of writes until the returned future completes, and
    /// the caller must await it (or keep the memory alive) until then.
    pub unsafe fn recv_into(self, ptr: *mut u8, keep: Option<Box<dyn std::any::Any>>) -> Op {
        let this = std::mem::ManuallyDrop::new(self);
        let (desc, len, worker) = (this.desc, this.len, this.worker);
        start_op("ucp_am_recv_data_nbx", keep, len, |user_data| {
            let param = sys::ucp_request_param_t {
                op_attr_mask: sys::UCP_OP_ATTR_FIELD_CALLBACK | sys::UCP_OP_ATTR_FIELD_USER_DATA,
                cb: sys::ucp_request_param_t__bindgen_ty_1 { recv_am: Some(recv_done) },
                user_data,
                ..Default::default()
            };
            // SAFETY: desc is a live rendezvous descriptor (taken once); ptr is valid per contract.
            unsafe { sys::ucp_am_recv_data_nbx(worker, desc, ptr as *mut c_void, len, &param) }
        })
    }
}

impl Drop for RndvData {
    fn drop(&mut self) {
        // SAFETY: the descriptor was kept (handler returned UCS_INPROGRESS) and never received.
        unsafe { sys::ucp_am_data_release(self.worker, self.desc) };
    }
}

/// An active-message handler: called from inside `Worker::progress`.
pub type AmHandler = Box<dyn Fn(&AmMessage<'_>)>;

struct HandlerSlot {
    worker: sys::ucp_worker_h,
    handler: AmHandler,
}

unsafe extern "C" fn am_trampoline(
    arg: *mut c_void,
    header: *const c_void,
    header_length: usize,
    data: *mut c_void,
    length: usize,
    param: *const sys::ucp_am_recv_param_t,
) -> Status {
    // SAFETY: arg is the HandlerSlot registered in set_am_handler, alive as long as the worker.
    let slot = unsafe { &*(arg as *const HandlerSlot) };
    // SAFETY: UCX passes a valid param for the duration of the callback.
    let attr = unsafe { (*param).recv_attr };
    let header = if header_length == 0 || header.is_null() {
        &[][..]
    } else {
        // SAFETY: UCX guarantees header_length readable bytes during the callback.
        unsafe { std::slice::from_raw_parts(header as *const u8, header_length) }
    };
    let is_rndv = attr & sys::UCP_AM_RECV_ATTR_FLAG_RNDV as u64 != 0;
    let payload = if is_rndv {
        AmData::Rendezvous { len: length }
    } else if length == 0 || data.is_null() {
        AmData::None
    } else {
        // SAFETY: eager data of `length` bytes is readable during the callback.
        AmData::Eager(unsafe { std::slice::from_raw_parts(data as *const u8, length) })
    };
    // SAFETY: as for `attr` above.
    let reply_ep = unsafe { (*param).reply_ep };
    let has_reply_ep = attr & sys::UCP_AM_RECV_ATTR_FIELD_REPLY_EP as u64 != 0 && !reply_ep.is_null();
    let reply_ep = has_reply_ep.then_some(EpRef(reply_ep));
    let message = AmMessage { header, data: payload, reply_ep, desc: data, worker: slot.worker, taken: Cell::new(false) };
    // A panic must not unwind into UCX's C frames.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (slot.handler)(&message)));
    if outcome.is_err() {
        tracing::error!("active-message handler panicked; message dropped");
    }
    // A taken rendezvous descriptor stays with UCX until received or released by RndvData.
    if message.taken.get() {
        sys::UCS_INPROGRESS
    } else {
        sys::UCS_OK
    }
}

/// A UCP worker in serialized mode (one thread at a time) with an event fd for blocking.
pub struct Worker {
    raw: sys::ucp_worker_h,
    efd: RawFd,
    /// Boxed: UCX keeps each slot's address, which must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    handlers: RefCell<Vec<Box<HandlerSlot>>>,
    _context: Rc<Context>,
}

impl Worker {
    pub fn new(context: Rc<Context>) -> Result<Worker, UcxError> {
        let params = sys::ucp_worker_params_t {
            field_mask: sys::UCP_WORKER_PARAM_FIELD_THREAD_MODE as u64,
            thread_mode: sys::UCS_THREAD_MODE_SERIALIZED,
            ..Default::default()
        };
        let mut raw: sys::ucp_worker_h = ptr::null_mut();
        // SAFETY: the context is live; params is valid for the call.
        check("ucp_worker_create", unsafe { sys::ucp_worker_create(context.raw, &params, &mut raw) })?;
        let mut efd: i32 = -1;
        // SAFETY: raw is a live worker created with the WAKEUP feature.
        if let Err(e) = check("ucp_worker_get_efd", unsafe { sys::ucp_worker_get_efd(raw, &mut efd) }) {
            // SAFETY: raw is live and not used afterwards.
            unsafe { sys::ucp_worker_destroy(raw) };
            return Err(e);
        }
        Ok(Worker { raw, efd, handlers: RefCell::new(Vec::new()), _context: context })
    }

    /// This worker's address, to be sent to peers.
    pub fn address(&self) -> Result<Vec<u8>, UcxError> {
        let mut addr: *mut sys::ucp_address_t = ptr::null_mut();
        let mut len: usize = 0;
        // SAFETY: raw is live; addr/len receive a buffer released below.
        check("ucp_worker_get_address", unsafe { sys::ucp_worker_get_address(self.raw, &mut addr, &mut len) })?;
        // SAFETY: UCX returned `len` readable bytes at addr.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, len) }.to_vec();
        // SAFETY: addr came from ucp_worker_get_address on this worker.
        unsafe { sys::ucp_worker_release_address(self.raw, addr) };
        Ok(bytes)
    }

    /// Makes progress; returns nonzero if anything happened.
    pub fn progress(&self) -> u32 {
        // SAFETY: raw is live and used from this thread only.
        unsafe { sys::ucp_worker_progress(self.raw) }
    }

    /// Arms the event fd. `Ok(true)`: nothing pending, safe to block on the fd.
    pub fn arm(&self) -> Result<bool, UcxError> {
        // SAFETY: raw is live.
        let status = unsafe { sys::ucp_worker_arm(self.raw) };
        if status == sys::UCS_ERR_BUSY {
            return Ok(false);
        }
        check("ucp_worker_arm", status).map(|()| true)
    }

    pub fn event_fd(&self) -> RawFd {
        self.efd
    }

    /// Routes active messages with `id` to `handler`.
    pub fn set_am_handler(&self, id: u16, handler: AmHandler) -> Result<(), UcxError> {
        let slot = Box::new(HandlerSlot { worker: self.raw, handler });
        let params = sys::ucp_am_handler_param_t {
            field_mask: (sys::UCP_AM_HANDLER_PARAM_FIELD_ID
                | sys::UCP_AM_HANDLER_PARAM_FIELD_FLAGS
                | sys::UCP_AM_HANDLER_PARAM_FIELD_CB
                | sys::UCP_AM_HANDLER_PARAM_FIELD_ARG) as u64,
            id: id as u32,
            flags: sys::UCP_AM_FLAG_WHOLE_MSG,
            cb: Some(am_trampoline),
            arg: &*slot as *const HandlerSlot as *mut c_void,
        };
        // SAFETY: the slot is boxed and kept in self.handlers for the worker's lifetime.
        check("ucp_worker_set_am_recv_handler", unsafe { sys::ucp_worker_set_am_recv_handler(self.raw, &params) })?;
        self.handlers.borrow_mut().push(slot);
        Ok(())
    }

    /// Connects to a peer worker by its address. With `on_failure`, UCX watches the peer and
    /// runs it (inside `progress`) if the peer is gone; operations on the endpoint then complete
    /// with an error. Watching costs: UCX then only uses transports that can detect failures.
    pub fn connect(&self, address: &[u8], on_failure: Option<Box<dyn Fn()>>) -> Result<Endpoint, UcxError> {
        // A new endpoint may send its wire-up messages at once.
        note_issued();
        let watched = on_failure.is_some();
        let failure = Box::new(FailureSlot { failed: Cell::new(false), on_failure: on_failure.unwrap_or_else(|| Box::new(|| {})) });
        let mut field_mask = sys::UCP_EP_PARAM_FIELD_REMOTE_ADDRESS as u64;
        if watched {
            field_mask |= (sys::UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | sys::UCP_EP_PARAM_FIELD_ERR_HANDLER) as u64;
        }
        let params = sys::ucp_ep_params_t {
            field_mask,
            address: address.as_ptr() as *const sys::ucp_address_t,
            err_mode: sys::UCP_ERR_HANDLING_MODE_PEER,
            err_handler: sys::ucp_err_handler_t { cb: Some(endpoint_failed), arg: &*failure as *const FailureSlot as *mut c_void },
            ..Default::default()
        };
        let mut raw: sys::ucp_ep_h = ptr::null_mut();
        // SAFETY: the address bytes are a peer's worker address and outlive the call; the
        // failure slot is boxed and lives in the Endpoint until the endpoint is closed.
        check("ucp_ep_create", unsafe { sys::ucp_ep_create(self.raw, &params, &mut raw) })?;
        Ok(Endpoint { raw: Cell::new(raw), failure })
    }

    /// Sends an active message. `header` and `data` are kept alive until the send completes.
    /// With `want_reply_ep` the receiver's handler gets an endpoint back to this worker, for
    /// senders the receiver has no endpoint of its own to.
    pub fn am_send(&self, ep: EpRef, id: u16, header: Vec<u8>, data: SendBuf, protocol: Protocol, want_reply_ep: bool) -> Op {
        let (data_ptr, data_len) = data.parts();
        let (header_ptr, header_len) = (header.as_ptr(), header.len());
        let ep_raw = ep.0;
        let mut flags = match protocol {
            Protocol::Eager => sys::UCP_AM_SEND_FLAG_EAGER,
            Protocol::Rendezvous => sys::UCP_AM_SEND_FLAG_RNDV,
        };
        if want_reply_ep {
            flags |= sys::UCP_AM_SEND_FLAG_REPLY;
        }
        let send = |param: &sys::ucp_request_param_t| {
            // SAFETY: ep is live; header and data stay valid until the send completes: for the
            // duration of the call when UCX completes it there (with FORCE_IMM_CMPL it keeps
            // no reference after it returns), else because the op owns them (or the caller
            // guarantees them) until its callback.
            unsafe {
                sys::ucp_am_send_nbx(ep_raw, id as u32, header_ptr as *const c_void, header_len, data_ptr as *const c_void, data_len, param)
            }
        };
        if protocol == Protocol::Eager {
            // Most messages fit UCX's short path, which copies them out inside the call: tried
            // first on its own, such a send needs neither a completion cell nor a box keeping
            // header and payload alive. Anything else (too long, no room) UCX refuses at once,
            // having sent nothing, and the send is issued in full below.
            let param = sys::ucp_request_param_t {
                op_attr_mask: sys::UCP_OP_ATTR_FIELD_FLAGS | sys::UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL,
                flags,
                ..Default::default()
            };
            if send(&param).is_null() {
                note_issued();
                return Op { cell: None, op: "ucp_am_send_nbx" };
            }
        }
        start_op("ucp_am_send_nbx", Some(Box::new((header, data))), 0, |user_data| {
            send(&sys::ucp_request_param_t {
                op_attr_mask: sys::UCP_OP_ATTR_FIELD_CALLBACK | sys::UCP_OP_ATTR_FIELD_USER_DATA | sys::UCP_OP_ATTR_FIELD_FLAGS,
                flags,
                cb: sys::ucp_request_param_t__bindgen_ty_1 { send: Some(send_done) },
                user_data,
                ..Default::default()
            })
        })
    }

    /// Completes every operation issued on this worker.
    pub fn flush(&self) -> Op {
        let raw = self.raw;
        start_op("ucp_worker_flush_nbx", None, 0, |user_data| {
            let param = sys::ucp_request_param_t {
                op_attr_mask: sys::UCP_OP_ATTR_FIELD_CALLBACK | sys::UCP_OP_ATTR_FIELD_USER_DATA,
                cb: sys::ucp_request_param_t__bindgen_ty_1 { send: Some(send_done) },
                user_data,
                ..Default::default()
            };
            // SAFETY: the worker is live.
            unsafe { sys::ucp_worker_flush_nbx(raw, &param) }
        })
    }

    /// Starts closing an endpoint, flushing what it has in flight (a failed one is closed at
    /// once). The endpoint's failure slot stays alive until the close completes.
    pub fn close(&self, ep: Endpoint) -> Op {
        let force = ep.failure.failed.get();
        self.close_with(ep, force)
    }

    /// Closes an endpoint without flushing or any word with its peer (which may be gone): what
    /// it has in flight is cancelled.
    pub fn close_now(&self, ep: Endpoint) -> Op {
        self.close_with(ep, true)
    }

    fn close_with(&self, ep: Endpoint, force: bool) -> Op {
        let raw = ep.raw.replace(ptr::null_mut());
        let flags = if force { sys::UCP_EP_CLOSE_FLAG_FORCE } else { 0 };
        start_op("ucp_ep_close_nbx", Some(Box::new(ep.failure)), 0, |user_data| {
            let param = sys::ucp_request_param_t {
                op_attr_mask: sys::UCP_OP_ATTR_FIELD_CALLBACK | sys::UCP_OP_ATTR_FIELD_USER_DATA | sys::UCP_OP_ATTR_FIELD_FLAGS,
                flags,
                cb: sys::ucp_request_param_t__bindgen_ty_1 { send: Some(send_done) },
                user_data,
                ..Default::default()
            };
            // SAFETY: raw is a live endpoint, closed exactly once (ep is consumed).
            unsafe { sys::ucp_ep_close_nbx(raw, &param) }
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: all endpoints were closed; no callback can run after destroy.
        unsafe { sys::ucp_worker_destroy(self.raw) };
    }
}

/// A connection to one peer worker. Close it with [`Worker::close`].
pub struct Endpoint {
    raw: Cell<sys::ucp_ep_h>,
    failure: Box<FailureSlot>,
}

/// What runs when UCX declares an endpoint's peer gone.
struct FailureSlot {
    failed: Cell<bool>,
    on_failure: Box<dyn Fn()>,
}

unsafe extern "C" fn endpoint_failed(arg: *mut c_void, _ep: sys::ucp_ep_h, status: Status) {
    // SAFETY: arg is the endpoint's boxed FailureSlot, alive until its close completes.
    let slot = unsafe { &*(arg as *const FailureSlot) };
    tracing::warn!(status = %status_message(status), "a peer is unreachable");
    slot.failed.set(true);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (slot.on_failure)())).is_err() {
        tracing::error!("endpoint failure handler panicked");
    }
}

impl Endpoint {
    pub fn handle(&self) -> EpRef {
        EpRef(self.raw.get())
    }

    pub fn failed(&self) -> bool {
        self.failure.failed.get()
    }
}
