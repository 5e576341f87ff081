//! Serving requests from other ranks, and the same operations run locally.
//!
//! Every request is validated before it touches a table or a file: the wire decoder checks the
//! layout, and the handlers check that paths are normalised and owned here, and that chunk
//! ranges lie within one chunk owned here. A bad request gets an errno, never a crash.

use std::rc::Rc;

use async_executor::LocalExecutor;

use super::wire::{Attr, Reply, ReplyBody, Request};
use super::{Incoming, Payload};
use crate::error::{Error, Result};
use crate::ids::{InodeId, Rank};
use crate::node::Node;
use crate::storage::IoBuf;
use crate::ucx::SendBuf;

/// Spawns a task that serves one request and sends its reply.
pub fn spawn_serve(node: &Rc<Node>, executor: &LocalExecutor<'static>, incoming: Incoming) {
    executor.spawn(serve(node.clone(), incoming)).detach();
}

async fn serve(node: Rc<Node>, incoming: Incoming) {
    let envelope = incoming.envelope;
    let source = Rank(envelope.source);
    let (result, data) = match incoming.request {
        Ok(request) => execute(&node, request, incoming.payload).await,
        Err(e) => (Err(Error::Wire(e)), SendBuf::None),
    };
    let reply = match result {
        Ok(body) => Reply { request_id: envelope.request_id, opcode: envelope.opcode, errno: 0, body },
        Err(e) => {
            tracing::debug!(%source, opcode = envelope.opcode, error = %e, "request failed");
            Reply { request_id: envelope.request_id, opcode: envelope.opcode, errno: e.errno(), body: ReplyBody::Empty }
        }
    };
    node.transport.reply(source, &reply, data);
}

async fn execute(node: &Node, request: Request, payload: Payload) -> (Result<ReplyBody>, SendBuf) {
    match request {
        Request::Read { ino, offset, len } => match read_for_remote(node, ino, offset, len).await {
            Ok(data) => (Ok(ReplyBody::Count(data.len() as u64)), SendBuf::Owned(data)),
            Err(e) => (Err(e), SendBuf::None),
        },
        Request::Write { ino, offset, len } => (write_from_remote(node, ino, offset, len, payload).await, SendBuf::None),
        other => (execute_local(node, other).await, SendBuf::None),
    }
}

/// Metadata and chunk-maintenance operations: the same code serves remote and local callers.
pub async fn execute_local(node: &Node, request: Request) -> Result<ReplyBody> {
    match request {
        Request::Open { path, flags, mode, uid, gid } => {
            node.check_meta_path(&path)?;
            let (attr, old) = node.meta.borrow_mut().open(&path, flags as i32, mode, uid, gid)?;
            Ok(ReplyBody::Opened(attr, old))
        }
        Request::Stat { path } => {
            node.check_meta_path(&path)?;
            Ok(ReplyBody::Attr(node.meta.borrow().stat(&path)?))
        }
        Request::Publish { path, ino, size } => {
            node.check_meta_path(&path)?;
            Ok(ReplyBody::Attr(node.meta.borrow_mut().publish(&path, ino, size)?))
        }
        Request::Unlink { path } => {
            node.check_meta_path(&path)?;
            Ok(ReplyBody::Attr(node.meta.borrow_mut().unlink(&path)?))
        }
        Request::TruncateChunks { ino, len } => {
            node.store.truncate(InodeId(ino), len)?;
            Ok(ReplyBody::Empty)
        }
        Request::Fsync { ino } => {
            node.store.fsync(InodeId(ino)).await?;
            Ok(ReplyBody::Empty)
        }
        Request::Read { .. } | Request::Write { .. } => Err(Error::Internal("data request without a buffer")),
    }
}

async fn write_from_remote(node: &Node, ino: u64, offset: u64, len: u64, payload: Payload) -> Result<ReplyBody> {
    node.check_chunk_range(ino, offset, len)?;
    let data = match payload {
        Payload::Bytes(bytes) => bytes,
        Payload::Rndv(rndv) => {
            let n = rndv.len();
            let mut buf = Vec::with_capacity(n);
            // SAFETY: buf has capacity n and lives until the receive completes (awaited here).
            unsafe { rndv.recv_into(buf.as_mut_ptr(), None) }.await?;
            // SAFETY: the completed receive wrote all n bytes.
            unsafe { buf.set_len(n) };
            buf
        }
        Payload::None => Vec::new(),
    };
    if data.len() as u64 != len {
        return Err(Error::InvalidArgument("payload length differs from the request"));
    }
    let written = node.store.write(InodeId(ino), offset, IoBuf::Owned(data)).await?;
    Ok(ReplyBody::Count(written as u64))
}

async fn read_for_remote(node: &Node, ino: u64, offset: u64, len: u64) -> Result<Vec<u8>> {
    node.check_chunk_range(ino, offset, len)?;
    let (n, buf) = node.store.read(InodeId(ino), offset, IoBuf::Owned(vec![0u8; len as usize])).await?;
    let mut data = buf.into_vec().ok_or(Error::Internal("store returned a different buffer"))?;
    data.truncate(n);
    Ok(data)
}

/// Convenience for callers that want the attributes out of a metadata reply.
pub fn attr_of(body: ReplyBody) -> Result<Attr> {
    match body {
        ReplyBody::Attr(attr) | ReplyBody::Opened(attr, _) => Ok(attr),
        _ => Err(Error::Internal("reply carries no attributes")),
    }
}
