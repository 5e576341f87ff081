//! The reactors a serving rank's progress loop drives besides its executor.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;

use async_executor::LocalExecutor;

use super::Reactor;
use crate::rpc::{spawn_deferred, spawn_serve, Node};
use crate::storage::ChunkStore;

/// The UCX worker: progresses it and spawns a serving task for every request that arrived, and
/// the tasks that send the directory stamps and writer releases that are due.
pub struct UcxReactor<'a> {
    pub node: &'a Rc<Node>,
    pub executor: &'a LocalExecutor<'static>,
    /// This reactor's turns so far.
    pub turns: &'a Cell<u32>,
}

/// Every how many turns the reactor looks whether deferred requests are due. The look reads the
/// clock whenever something is queued, which it is all along while a rank creates files, and a
/// loop polling for a reply turns every 100-200 ns; rounds are due a millisecond after their
/// first request, so a look every few microseconds is soon enough.
const DUE_LOOK_EVERY: u32 = 16;

impl Reactor for UcxReactor<'_> {
    fn turn(&self) -> bool {
        let mut busy = false;
        while self.node.transport.worker().progress() != 0 {
            busy = true;
        }
        while let Some(incoming) = self.node.transport.next_incoming() {
            spawn_serve(self.node, self.executor, incoming);
            busy = true;
        }
        // What this rank's calls deferred (directory stamps, writer releases), once it is due.
        let turns = self.turns.get().wrapping_add(1);
        self.turns.set(turns);
        if turns % DUE_LOOK_EVERY == 0 {
            busy |= spawn_deferred(self.node, self.executor);
        }
        busy
    }
    fn arm(&self) -> bool {
        match self.node.transport.worker().arm() {
            Ok(can_sleep) => can_sleep,
            Err(e) => {
                tracing::error!(error = %e, "cannot arm the UCX worker; polling instead");
                false
            }
        }
    }
    fn event_fd(&self) -> Option<RawFd> {
        Some(self.node.transport.worker().event_fd())
    }
}

/// The chunk store's io_uring ring: submits queued operations and completes finished ones.
pub struct StoreReactor<'a> {
    pub store: &'a ChunkStore,
}

impl Reactor for StoreReactor<'_> {
    fn turn(&self) -> bool {
        let submitted = self.store.submit();
        let completed = self.store.poll_completions();
        submitted + completed > 0
    }
    fn arm(&self) -> bool {
        self.store.submit() == 0
    }
    fn event_fd(&self) -> Option<RawFd> {
        self.store.event_fd()
    }
    fn after_wake(&self) {
        self.store.clear_event();
    }
}
