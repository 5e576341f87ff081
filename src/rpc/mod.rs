//! The request path between ranks.
//!
//! * [`wire`]: the format of requests and replies, validated on decode.
//! * [`transport`]: request/reply over UCX active messages, matched by request id.
//! * [`node`]: the state one rank serves from (transport, metadata records, chunk store).
//! * [`fence`]: the gate path operations pass, which directory renames close over their trees.
//! * [`server`]: the handlers that serve requests, from other ranks or from this one;
//!   [`entries`] those that make and remove directory entries.
//! * [`stamps`]: the directory times that this rank's creates, removes and renames stamp
//!   afterwards; [`unregisters`]: the writers that closed without waiting for their owners.
//! * [`client`]: typed stubs that send each request to the rank that must serve it.

pub mod client;
mod credit;
mod deferred;
mod entries;
pub mod fence;
pub mod keys;
mod node;
mod server;
mod stamps;
mod transport;
mod unregisters;
pub mod wire;

pub use deferred::spawn_due as spawn_deferred;
pub use node::{Node, Team};
pub use server::spawn_serve;
pub use stamps::entry_changed;
#[cfg(feature = "testing")]
pub use unregisters::release_now;
pub use unregisters::Closed;
pub use wire::{Attr, DirEntry, EXTERNAL_SOURCE};
