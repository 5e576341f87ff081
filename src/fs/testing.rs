//! Hooks for the test programs only (cargo feature `testing`): not part of the API.

use super::handle::handle;
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::rpc::wire::{Opcode, Reply, ReplyBody};

/// The header of a successful reply to read request `request_id` that announces `count` bytes
/// of payload: what a forger would send.
pub fn read_reply_header(request_id: u64, count: u64) -> Vec<u8> {
    Reply { request_id, opcode: Opcode::Read as u16, errno: 0, body: ReplyBody::Count(count) }.encode()
}

/// Sends each of `headers` as a reply message to rank `to`, all with `payload`: forged replies,
/// for testing that they reach no call they do not answer.
pub fn send_raw_replies(to: u32, headers: Vec<Vec<u8>>, payload: Vec<u8>) -> Result<()> {
    handle()?.call(move |client| async move {
        let node = &client.node;
        if to >= node.nranks {
            return Err(Error::InvalidArgument("no such rank"));
        }
        for header in headers {
            node.transport.reply_raw(Rank(to), header, payload.clone()).await?;
        }
        Ok(())
    })
}

/// Sends raw request bytes to rank `to` and returns the errno of its reply (`Some(0)` when it
/// succeeded, `None` when no reply is expected). For testing that servers answer malformed
/// messages with an errno and keep serving.
pub fn send_raw_request(to: u32, header: Vec<u8>, payload: Vec<u8>, expect_reply: bool) -> Result<Option<i32>> {
    handle()?.call(move |client| async move {
        let node = &client.node;
        if to >= node.nranks {
            return Err(Error::InvalidArgument("no such rank"));
        }
        node.transport.call_raw(Rank(to), header, payload, expect_reply).await
    })
}

/// Makes this rank's progress thread panic at its next turn (it is woken for it), for testing
/// that every later call fails with EIO instead of waiting.
pub fn panic_progress_thread() -> Result<()> {
    crate::runtime::INJECTED_PANIC.store(true, std::sync::atomic::Ordering::Release);
    handle()?.wake_progress();
    Ok(())
}

/// The credential this rank's requests carry (see `rpc::keys`): for forging requests without it.
pub fn credential() -> Result<crate::rpc::wire::Credential> {
    handle()?.call(move |client| async move { Ok(client.node.transport.credential()) })
}

/// The most bytes of other ranks' writes this rank has held at once (see `rpc::credit`).
pub fn incoming_peak() -> Result<u64> {
    handle()?.call(move |client| async move { Ok(client.node.incoming.peak()) })
}

/// While `on`, this rank's closed writers are not released at their files' owners (see
/// `rpc::unregisters`): for testing what every rank sees of a file whose writer closed without
/// waiting for its owner. Ending the hold releases them at once, answered before this returns.
pub fn hold_releases(on: bool) -> Result<()> {
    handle()?.call(move |client| async move {
        if on {
            client.node.unregisters.hold(true);
            Ok(())
        } else {
            crate::rpc::release_now(&client.node).await
        }
    })
}
