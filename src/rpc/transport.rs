//! The transport: request/reply over UCX active messages.
//!
//! Every request carries a request id unique on its sender and unpredictable to anyone else; the
//! reply handler finds the waiting call by that id, so any number of calls of any kind may be in
//! flight to any rank, and a reply that does not carry the id of a pending call is dropped. Payloads up
//! to the rendezvous threshold travel eager; larger ones by rendezvous, received straight into
//! their destination buffer (the application's buffer for reads).

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::keys::{self, Access, Keys};
use super::wire::{self, Credential, Envelope, Reply, Request, AM_REPLY, AM_REQUEST};
use crate::error::{Error, Result, WireError};
use crate::ids::Rank;
use crate::stats::Phase;
use crate::ucx::{AmData, AmMessage, Endpoint, EpRef, Protocol, RndvData, SendBuf, Worker};

/// The calls waiting for their replies, by call id. The ids are already keyed hashes (see
/// `Transport::id_key`), so the map needs a fast hash, not a keyed one of its own.
type PendingCalls = foldhash::HashMap<u64, Rc<PendingCall>>;

/// A request's payload as received by the server.
pub enum Payload {
    None,
    Bytes(Vec<u8>),
    Rndv(RndvData),
}

/// Where a reply goes: a rank of the job, or an attached client through the endpoint UCX
/// handed to the request's handler.
#[derive(Clone, Copy, Debug)]
pub enum ReplyTo {
    Rank(Rank),
    Client(EpRef),
}

/// A request that arrived and waits to be served.
pub struct Incoming {
    pub envelope: Envelope,
    pub reply_to: ReplyTo,
    /// The request, or why it is answered with an error (it does not decode, or its sender may
    /// not send it).
    pub request: Result<Request>,
    pub payload: Payload,
    /// When it arrived, while statistics are recorded.
    pub arrived: Option<Instant>,
}

/// Where a call's reply payload goes: caller memory valid until the call completes.
#[derive(Clone, Copy)]
pub struct ReplyDest {
    pub ptr: *mut u8,
    pub len: usize,
}

enum ReplyData {
    None,
    /// No reply will come: the peer's endpoint failed.
    PeerLost,
    /// Eager payload already copied into the destination: its length.
    Copied(usize),
    Rndv(RndvData),
    /// A payload with nowhere to go or longer than the destination.
    Overflow,
}

struct Arrived {
    /// The reply, decoded as it arrived (its header is UCX's until the handler returns).
    reply: std::result::Result<Reply, WireError>,
    data: ReplyData,
    /// When it arrived, while statistics are recorded.
    at: Option<Instant>,
}

struct PendingCall {
    to: Rank,
    /// When it was sent: silence is counted from here or from the last word of its rank.
    since: Instant,
    dest: Option<ReplyDest>,
    arrived: RefCell<Option<Arrived>>,
    waker: Cell<Option<Waker>>,
}

pub struct Transport {
    worker: Worker,
    rank: Rank,
    addresses: Vec<Vec<u8>>,
    endpoints: RefCell<Vec<Option<Rc<Endpoint>>>>,
    rndv_threshold: usize,
    /// What this rank's requests carry (see `keys`).
    credential: Credential,
    /// An attached client: it serves nothing, so servers reply through UCX reply endpoints.
    attached: bool,
    /// Endpoints watch their peers, failing calls to a vanished rank with EIO.
    detect_failures: bool,
    /// Shut down: no endpoint is made any more.
    closed: Cell<bool>,
    /// Counts the calls; a call's request id is this count under a keyed hash.
    calls: Cell<u64>,
    /// The secret key of those ids (SipHash, keyed from the kernel's randomness): only the rank
    /// a request goes to learns its id, so no one else can forge the reply it waits for.
    id_key: RandomState,
    pending: Rc<RefCell<PendingCalls>>,
    incoming: Rc<RefCell<VecDeque<Incoming>>>,
    liveness: Rc<Liveness>,
    /// Silence after which a rank with calls pending counts as dead (`None`: never).
    peer_timeout: Option<Duration>,
    next_watch: Cell<Instant>,
    lost: Arc<AtomicU32>,
}

/// How a transport sends and whom it serves.
pub struct TransportSettings {
    /// Payloads above this many bytes travel by rendezvous.
    pub rndv_threshold: usize,
    /// UCX reports dead peers (its failure-detecting transports only).
    pub detect_failures: bool,
    /// The keys it sends with, and checks what it serves against (see `keys`).
    pub access: Access,
    /// Silence after which a rank with calls pending counts as dead (`None`: never).
    pub peer_timeout: Option<Duration>,
    /// Set to a dead rank's number plus one when one is found (read by `benchfs_finalize`).
    pub lost: Arc<AtomicU32>,
}

/// What this rank has heard from each serving rank (see [`Transport::watch`]). A message only
/// counts, without reading the clock: the watch, which runs once per probe interval at most,
/// dates what it finds counted since its last look. So a rank counts as heard up to one probe
/// interval later than it was, and a dead rank is found that much later at most.
struct Liveness {
    /// Messages from each rank (wrapping).
    messages: Vec<Cell<u32>>,
    /// Each rank's message count at the last watch that found it changed, and when that was.
    heard: Vec<Cell<(u32, Instant)>>,
    dead: Vec<Cell<bool>>,
    pinging: Vec<Cell<bool>>,
}

impl Liveness {
    fn new(nranks: usize) -> Liveness {
        let now = Instant::now();
        Liveness {
            messages: (0..nranks).map(|_| Cell::new(0)).collect(),
            heard: (0..nranks).map(|_| Cell::new((0, now))).collect(),
            dead: (0..nranks).map(|_| Cell::new(false)).collect(),
            pinging: (0..nranks).map(|_| Cell::new(false)).collect(),
        }
    }

    fn heard_from(&self, rank: u32) {
        if let Some(count) = self.messages.get(rank as usize) {
            count.set(count.get().wrapping_add(1));
        }
    }

    /// When `rank` was last heard from, as far as the watches at `now` and before can tell.
    fn last_heard(&self, rank: u32, now: Instant) -> Option<Instant> {
        let (count, heard) = (self.messages.get(rank as usize)?.get(), self.heard.get(rank as usize)?);
        let (seen, at) = heard.get();
        if count == seen {
            return Some(at);
        }
        heard.set((count, now));
        Some(now)
    }
}

impl Transport {
    /// Registers the request and reply handlers on `worker`. `addresses` are the serving ranks'
    /// worker addresses; `rank` is this rank among them, or `wire::EXTERNAL_SOURCE` for an
    /// attached client.
    pub fn new(worker: Worker, rank: Rank, addresses: Vec<Vec<u8>>, settings: TransportSettings) -> Result<Transport> {
        let TransportSettings { rndv_threshold, detect_failures, access, peer_timeout, lost } = settings;
        let (credential, keys) = (access.credential(), access.keys());
        let pending: Rc<RefCell<PendingCalls>> = Rc::default();
        let incoming: Rc<RefCell<VecDeque<Incoming>>> = Rc::default();
        let nranks = addresses.len() as u32;
        let liveness = Rc::new(Liveness::new(addresses.len()));
        let (queue, heard) = (incoming.clone(), liveness.clone());
        worker.set_am_handler(AM_REQUEST, Box::new(move |msg| on_request(msg, nranks, keys.as_ref(), &heard, &queue)))?;
        let (calls, heard) = (pending.clone(), liveness.clone());
        worker.set_am_handler(AM_REPLY, Box::new(move |msg| on_reply(msg, &calls, &heard)))?;
        let endpoints = RefCell::new((0..addresses.len()).map(|_| None).collect());
        Ok(Transport {
            worker,
            rank,
            addresses,
            endpoints,
            rndv_threshold,
            credential,
            attached: rank.0 == wire::EXTERNAL_SOURCE,
            closed: Cell::new(false),
            detect_failures,
            calls: Cell::new(0),
            id_key: RandomState::new(),
            pending,
            incoming,
            liveness,
            peer_timeout,
            next_watch: Cell::new(Instant::now()),
            lost,
        })
    }

    /// True once `rank` has been found dead (see [`Transport::watch`]).
    pub fn is_dead(&self, rank: Rank) -> bool {
        self.liveness.dead.get(rank.0 as usize).is_some_and(Cell::get)
    }

    /// How often [`Transport::watch`] must run while calls are pending; `None` when there are
    /// none (or no timeout), so that an idle rank sleeps without a timer.
    pub fn watch_interval(&self) -> Option<Duration> {
        let timeout = self.peer_timeout?;
        (!self.pending.borrow().is_empty()).then(|| probe_interval(timeout))
    }

    /// Checks the ranks this rank waits for. A rank that has sent nothing since a call to it
    /// went out, for a probe interval, is asked whether it is there (the ranks returned, to be
    /// pinged); one silent for the whole timeout is dead: its pending calls fail with
    /// `PeerLost` (EIO) and so does every later call to it. A live rank answers pings however
    /// long its calls take, so only silence counts. Runs at most once per probe interval.
    pub fn watch(&self) -> Vec<Rank> {
        let Some(timeout) = self.peer_timeout else { return Vec::new() };
        // Called at every turn of the progress loop: with nothing pending there is nothing to
        // check, and no clock to read.
        if self.pending.borrow().is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        if now < self.next_watch.get() {
            return Vec::new();
        }
        let probe = probe_interval(timeout);
        self.next_watch.set(now + probe);
        let mut waited: HashMap<u32, Instant> = HashMap::new();
        for call in self.pending.borrow().values() {
            let since = waited.entry(call.to.0).or_insert(call.since);
            *since = (*since).min(call.since);
        }
        let mut ping = Vec::new();
        for (rank, since) in waited {
            let Some(heard) = self.liveness.last_heard(rank, now) else { continue };
            let silent = now.saturating_duration_since(heard.max(since));
            if silent >= timeout {
                tracing::warn!(rank, ?silent, "a rank stopped answering; calls to it fail with EIO from now on");
                self.declare_dead(Rank(rank));
            } else if silent >= probe && !self.liveness.pinging[rank as usize].get() {
                ping.push(Rank(rank));
            }
        }
        ping
    }

    /// Asks every other rank whether it is there, and returns when each has answered or is found
    /// dead: what `benchfs_finalize` does when its barrier is slow to complete.
    pub async fn ping_all(&self) {
        let others = (0..self.addresses.len() as u32).map(Rank).filter(|&r| r != self.rank);
        crate::join::join_window(others.map(|r| self.ping(r)).collect(), super::server::FAN_OUT).await;
    }

    /// Asks `rank` whether it is there (see [`Transport::watch`]).
    pub async fn ping(&self, rank: Rank) {
        let Some(pinging) = self.liveness.pinging.get(rank.0 as usize) else { return };
        pinging.set(true);
        // SAFETY: no raw memory is involved; the call is awaited here.
        let answered = unsafe { self.call(rank, &Request::Ping, SendBuf::None, None) }.await;
        pinging.set(false);
        match answered {
            // Answered (even with an error), or already found dead.
            Ok(_) | Err(Error::Remote { .. } | Error::PeerLost(_)) => {}
            // Not even sent (no endpoint can be made to it, say): it is out of reach.
            Err(e) => {
                tracing::warn!(%rank, error = %e, "a rank cannot be reached; calls to it fail with EIO from now on");
                self.declare_dead(rank);
            }
        }
    }

    /// From now on `rank` counts as dead: its pending calls fail with `PeerLost`, and so does
    /// every later call to it.
    fn declare_dead(&self, rank: Rank) {
        if let Some(dead) = self.liveness.dead.get(rank.0 as usize) {
            dead.set(true);
            self.lost.store(rank.0 + 1, Ordering::Release);
            fail_calls_to(&self.pending, rank);
        }
    }

    /// What this rank's requests carry.
    #[cfg(feature = "testing")]
    pub fn credential(&self) -> Credential {
        self.credential
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The oldest request received and not yet taken. The queue keeps its buffer: taking the
    /// whole queue instead made every turn that found requests allocate a new one.
    pub fn next_incoming(&self) -> Option<Incoming> {
        self.incoming.borrow_mut().pop_front()
    }

    fn endpoint(&self, to: Rank) -> Result<Rc<Endpoint>> {
        let mut endpoints = self.endpoints.borrow_mut();
        let slot = endpoints.get_mut(to.0 as usize).ok_or(Error::Internal("rank out of range"))?;
        if self.is_dead(to) {
            return Err(Error::PeerLost(to));
        }
        if self.closed.get() {
            // Nothing connects anew after the shutdown: a peer would answer a process that is
            // about to exit (see `shutdown`).
            return Err(Error::ProgressStopped);
        }
        if let Some(ep) = slot {
            return if ep.failed() { Err(Error::PeerLost(to)) } else { Ok(ep.clone()) };
        }
        let pending = self.pending.clone();
        let on_failure: Option<Box<dyn Fn()>> =
            self.detect_failures.then(|| Box::new(move || fail_calls_to(&pending, to)) as Box<dyn Fn()>);
        let ep = Rc::new(self.worker.connect(&self.addresses[to.0 as usize], on_failure)?);
        *slot = Some(ep.clone());
        Ok(ep)
    }

    /// True if a payload of `len` bytes travels by rendezvous (read by the receiver from the
    /// sender's memory) rather than being copied eagerly.
    pub fn is_rendezvous(&self, len: usize) -> bool {
        self.protocol(len) == Protocol::Rendezvous
    }

    fn protocol(&self, len: usize) -> Protocol {
        if len > self.rndv_threshold {
            Protocol::Rendezvous
        } else {
            Protocol::Eager
        }
    }

    /// Sends `request` with `data` to `to` and waits for the reply. A reply payload is received
    /// into `dest`; its length is returned beside the reply. A failed request is an error.
    ///
    /// # Safety
    /// Raw memory in `data` and `dest` must stay valid until the returned future completes, and
    /// the caller must drive it to completion.
    pub async unsafe fn call(&self, to: Rank, request: &Request, data: SendBuf, dest: Option<ReplyDest>) -> Result<(Reply, usize)> {
        let id = self.next_request_id();
        let mut header = request.encode(self.rank.0, id);
        wire::set_credential(&mut header, &self.credential);
        // SAFETY: forwarded caller contract.
        let (reply, received) = unsafe { self.exchange(to, id, header, data, dest) }.await?;
        if reply.errno != 0 {
            return Err(Error::Remote { rank: to, errno: reply.errno });
        }
        Ok((reply, received))
    }

    /// Sends arbitrary header bytes (for testing how servers treat malformed messages). When a
    /// reply is expected, bytes 16..24 are overwritten with a fresh request id; the reply's errno
    /// is returned.
    #[cfg(feature = "testing")]
    /// A header whose credential is all zero gets this rank's; any other is sent as it is.
    pub async fn call_raw(&self, to: Rank, mut header: Vec<u8>, payload: Vec<u8>, expect_reply: bool) -> Result<Option<i32>> {
        if header.get(wire::HEADER_LEN..wire::REQUEST_HEADER_LEN).is_some_and(|c| c.iter().all(|&b| b == 0)) {
            wire::set_credential(&mut header, &self.credential);
        }
        if !expect_reply || header.len() < wire::HEADER_LEN {
            let ep = self.endpoint(to)?;
            let protocol = self.protocol(payload.len());
            self.worker.am_send(ep.handle(), AM_REQUEST, header, SendBuf::Owned(payload), protocol, self.attached).await?;
            return Ok(None);
        }
        let id = self.next_request_id();
        header[16..24].copy_from_slice(&id.to_le_bytes());
        // SAFETY: all memory is owned by the op; no reply payload is accepted.
        let (reply, _) = unsafe { self.exchange(to, id, header, SendBuf::Owned(payload), None) }.await?;
        Ok(Some(reply.errno))
    }

    /// Sends arbitrary bytes as a reply message to `to` (for testing that a forged reply cannot
    /// reach a call it does not answer).
    #[cfg(feature = "testing")]
    pub async fn reply_raw(&self, to: Rank, header: Vec<u8>, payload: Vec<u8>) -> Result<()> {
        let ep = self.endpoint(to)?;
        let protocol = self.protocol(payload.len());
        self.worker.am_send(ep.handle(), AM_REPLY, header, SendBuf::Owned(payload), protocol, false).await?;
        Ok(())
    }

    /// A fresh request id that no pending call uses.
    fn next_request_id(&self) -> u64 {
        loop {
            let count = self.calls.get();
            self.calls.set(count.wrapping_add(1));
            let id = self.id_key.hash_one(count);
            if !self.pending.borrow().contains_key(&id) {
                return id;
            }
        }
    }

    /// Sends one request message and waits for the reply with the same id.
    ///
    /// # Safety
    /// As for [`Transport::call`].
    async unsafe fn exchange(&self, to: Rank, id: u64, header: Vec<u8>, data: SendBuf, dest: Option<ReplyDest>) -> Result<(Reply, usize)> {
        let ep = self.endpoint(to)?;
        let call = Rc::new(PendingCall { to, since: Instant::now(), dest, arrived: RefCell::new(None), waker: Cell::new(None) });
        self.pending.borrow_mut().insert(id, call.clone());
        let protocol = self.protocol(data.len());
        if let Err(e) = self.worker.am_send(ep.handle(), AM_REQUEST, header, data, protocol, self.attached).await {
            self.pending.borrow_mut().remove(&id);
            return Err(e.into());
        }
        let arrived = std::future::poll_fn(|cx| match call.arrived.borrow_mut().take() {
            Some(arrived) => Poll::Ready(arrived),
            None => {
                call.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        if let ReplyData::PeerLost = arrived.data {
            return Err(Error::PeerLost(to));
        }
        if let (Some(at), Ok(reply)) = (arrived.at, &arrived.reply) {
            crate::stats::phase(Phase::InFlight, reply.opcode, Some(call.since), Some(at));
            crate::stats::phase(Phase::ReplyWait, reply.opcode, Some(at), crate::stats::start());
        }
        let reply = arrived.reply?;
        let received = match arrived.data {
            ReplyData::None | ReplyData::PeerLost => 0,
            ReplyData::Copied(n) => n,
            ReplyData::Overflow => return Err(WireError::BadLength.into()),
            ReplyData::Rndv(rndv) => {
                let dest = dest.ok_or(Error::Wire(WireError::BadLength))?;
                let len = rndv.len();
                // SAFETY: on_reply only keeps a rendezvous payload that fits dest, which the
                // caller keeps valid until this call completes.
                unsafe { rndv.recv_into(dest.ptr, None) }.await?;
                len
            }
        };
        Ok((reply, received))
    }

    /// Sends a reply; its payload is kept alive by the send until UCX is done with it.
    pub fn reply(&self, to: ReplyTo, reply: &Reply, data: SendBuf) {
        let ep = match to {
            ReplyTo::Client(ep) => ep,
            ReplyTo::Rank(rank) => match self.endpoint(rank) {
                Ok(ep) => ep.handle(),
                Err(e) => {
                    tracing::warn!(%rank, error = %e, "cannot reply");
                    return;
                }
            },
        };
        let protocol = self.protocol(data.len());
        // The op owns header and payload until completion, so it can be dropped unawaited.
        drop(self.worker.am_send(ep, AM_REPLY, reply.encode(), data, protocol, false));
    }

    /// Completes all sends, then closes every endpoint.
    /// Closes every endpoint at once, without flushing or a word with the peers (some are gone):
    /// the end of a job that lost a rank.
    pub async fn shutdown_now(&self) {
        self.close_all(true).await;
    }

    /// Completes every send, then closes every endpoint.
    pub async fn shutdown(&self) {
        if let Err(e) = self.worker.flush().await {
            tracing::warn!(error = %e, "worker flush failed at shutdown");
        }
        self.close_all(false).await;
    }

    /// Closes every endpoint, all at once (with `now`, without a word with the peers); none is
    /// made after this.
    async fn close_all(&self, now: bool) {
        self.closed.set(true);
        let endpoints: Vec<Rc<Endpoint>> = self.endpoints.borrow_mut().iter_mut().filter_map(Option::take).collect();
        let closing = endpoints.into_iter().filter_map(|ep| Rc::try_unwrap(ep).ok()).map(|ep| {
            if now {
                self.worker.close_now(ep)
            } else {
                self.worker.close(ep)
            }
        });
        for closed in crate::join::join_all(closing.collect()).await {
            if let Err(e) = closed {
                tracing::debug!(error = %e, "endpoint close");
            }
        }
    }
}

/// Called from inside the worker's progress when the endpoint to `rank` failed: every call
/// waiting for a reply from it ends with `PeerLost` instead of waiting forever.
fn fail_calls_to(pending: &RefCell<PendingCalls>, rank: Rank) {
    let lost: Vec<Rc<PendingCall>> = {
        let mut pending = pending.borrow_mut();
        let ids: Vec<u64> = pending.iter().filter(|(_, call)| call.to == rank).map(|(id, _)| *id).collect();
        ids.into_iter().filter_map(|id| pending.remove(&id)).collect()
    };
    for call in lost {
        *call.arrived.borrow_mut() = Some(Arrived { reply: Err(WireError::BadLength), data: ReplyData::PeerLost, at: None });
        if let Some(waker) = call.waker.take() {
            waker.wake();
        }
    }
}

/// Called from inside the worker's progress: queue the request for a serving task.
fn on_request(msg: &AmMessage<'_>, nranks: u32, keys: Option<&Keys>, liveness: &Liveness, queue: &RefCell<VecDeque<Incoming>>) {
    let Some(keys) = keys else {
        tracing::debug!("request to an attached client dropped");
        return;
    };
    let (envelope, reply_to, allowed) = match wire::decode_envelope(msg.header) {
        Ok(env) if env.source < nranks && keys::same(&env.credential, &keys.rank) => {
            liveness.heard_from(env.source);
            (env, ReplyTo::Rank(Rank(env.source)), true)
        }
        // A client with the wrong key (a stale contact file, say) learns so at once (EACCES)
        // instead of waiting: it is answered through its own endpoint, never served.
        Ok(env) if env.source == wire::EXTERNAL_SOURCE && msg.reply_ep.is_some() => {
            let allowed = keys::same(&env.credential, &keys.client);
            (env, ReplyTo::Client(msg.reply_ep.expect("checked by the guard")), allowed)
        }
        Ok(env) => {
            // Debug only: a stranger must not be able to fill the log either.
            tracing::debug!(source = env.source, "request without a valid credential for its claimed source dropped");
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "unanswerable malformed request dropped");
            return;
        }
    };
    let request = match wire::decode_request(msg.header) {
        _ if !allowed => Err(Error::Access),
        Ok(_) if envelope.source == wire::EXTERNAL_SOURCE && wire::Opcode::is_internal(envelope.opcode) => {
            Err(Error::NotPermitted("only the job's ranks send this request"))
        }
        Ok((_, request)) => Ok(request),
        Err(e) => Err(e.into()),
    };
    let payload = match msg.data {
        AmData::None => Payload::None,
        AmData::Eager(bytes) => Payload::Bytes(bytes.to_vec()),
        AmData::Rendezvous { .. } => msg.take_rndv().map_or(Payload::None, Payload::Rndv),
    };
    queue.borrow_mut().push_back(Incoming { envelope, reply_to, request, payload, arrived: crate::stats::start() });
}

/// Called from inside the worker's progress: hand the reply to its waiting call.
fn on_reply(msg: &AmMessage<'_>, pending: &RefCell<PendingCalls>, liveness: &Liveness) {
    let Some(id) = wire::reply_request_id(msg.header) else {
        tracing::warn!("reply without a request id dropped");
        return;
    };
    let Some(call) = pending.borrow_mut().remove(&id) else {
        tracing::debug!(id, "reply to no pending request dropped");
        return;
    };
    liveness.heard_from(call.to.0);
    let data = match (msg.data, call.dest) {
        (AmData::None, _) => ReplyData::None,
        (AmData::Eager(bytes), Some(dest)) if bytes.len() <= dest.len => {
            // SAFETY: dest is caller memory of dest.len bytes, valid until the call completes,
            // and the call is still pending (it was in the table).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dest.ptr, bytes.len()) };
            ReplyData::Copied(bytes.len())
        }
        (AmData::Rendezvous { len }, Some(dest)) if len <= dest.len => msg.take_rndv().map_or(ReplyData::Overflow, ReplyData::Rndv),
        _ => ReplyData::Overflow,
    };
    *call.arrived.borrow_mut() = Some(Arrived { reply: Reply::decode(msg.header), data, at: crate::stats::start() });
    if let Some(waker) = call.waker.take() {
        waker.wake();
    }
}

/// How often a rank with calls pending is checked: a quarter of the timeout, at most a second.
fn probe_interval(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(1))
}
