//! Hooks for the test programs only (cargo feature `testing`): not part of the API.

use super::handle::handle;
use crate::error::{Error, Result};
use crate::ids::Rank;

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
