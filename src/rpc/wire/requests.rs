//! Every request, once: the table at the bottom of this file generates the `Request` and
//! `Opcode` enums, each request's encoding and validated decoding, the kind of body its reply
//! carries, and the path that decides which rank owns it.
//!
//! A row of the table reads
//! ```text
//! /// What the request does (at least one doc line).
//! Name = opcode { field: codec, ... } -> ReplyKind, routed by field;
//! ```
//! * `opcode` is the `u16` in the header. It is part of the wire format: never reuse or renumber
//!   one. A duplicate does not compile. Retired: 11 (a directory's entry count, now
//!   `Enlist`, `Drain` and `Touch`), 19 (the undo of a create made at once with its parent's
//!   count), 21 (a tree's longest path, now the reply to `MoveBegin`).
//! * The fields are listed in wire order, after the header. A request without fields omits the
//!   braces and is a unit variant (`StatFs`). Each codec fixes the field's Rust type and bytes:
//!   `u32`, `u64`, `i64` (little-endian), `flag` (`bool` as one byte, 0 or 1), `path` (`Vec<u8>`:
//!   `u16` length then the path's bytes, any bytes, non-empty, at most `MAX_PATH` of them), `name`
//!   (as `path`, but may be empty) and `attr` (`Attr`, see `Writer::attr`).
//! * `ReplyKind` names the `ReplyBody` a successful reply carries.
//! * `routed by field` marks a metadata request: `field`, a `path`, names the record, whose owner
//!   rank serves it. Requests without it are addressed otherwise (chunk requests to the ranks
//!   holding the file's chunks; `List`, `MoveTree`, `MoveBegin`, `MoveEnd` and `StatFs` to every rank; `Drain` to a
//!   directory's holders; `InstallMany`,
//!   with records for many paths in its payload, to their new owner; `Unregister` and
//!   `PublishMany`, with entries of many paths in their payloads, to the owner of them all), and
//!   `routing_path`
//!   returns `None` for them.
//!
//! To add a request: add a row with the next free opcode, handle the new variant in
//! `rpc::server`, and pin its bytes in the golden tests.

use super::codec::{Reader, Writer};
use super::{decode_envelope, Attr, Envelope, ReplyKind, REQUEST_HEADER_LEN};
use crate::error::WireError;

/// The Rust type of a field with the given codec.
macro_rules! field_type {
    (u32) => {
        u32
    };
    (u64) => {
        u64
    };
    (i64) => {
        i64
    };
    (flag) => {
        bool
    };
    (path) => {
        Vec<u8>
    };
    (name) => {
        Vec<u8>
    };
    (attr) => {
        Attr
    };
}

/// Writes field `$v`, borrowed from its request, with codec `$codec`: numbers and flags are
/// copied out, byte strings and attributes passed by reference.
macro_rules! write_field {
    ($w:ident, path, $v:ident) => {
        $w.path($v)
    };
    ($w:ident, name, $v:ident) => {
        $w.name($v)
    };
    ($w:ident, attr, $v:ident) => {
        $w.attr($v)
    };
    ($w:ident, $copied:ident, $v:ident) => {
        $w.$copied(*$v)
    };
}

/// The bytes `write_field` writes for field `$v` with codec `$codec`.
macro_rules! field_len {
    (path, $v:ident) => {
        2 + $v.len()
    };
    (name, $v:ident) => {
        2 + $v.len()
    };
    (attr, $v:ident) => {{
        let _: &Attr = $v;
        super::ATTR_LEN
    }};
    // Numbers as their width, a flag as one byte.
    ($copied:ident, $v:ident) => {
        std::mem::size_of_val($v)
    };
}

/// Generates the request types and codecs from the table below; see the module documentation.
macro_rules! requests {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident = $opcode:literal $({ $($field:ident: $codec:ident),* $(,)? })? -> $reply:ident $(, routed by $route:ident)?;
    )*) => {
        /// The number in a request's header that says which request its body holds; the reply
        /// repeats it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Opcode {
            $(
                #[doc = concat!("The opcode of [`Request::", stringify!($name), "`].")]
                $name = $opcode,
            )*
        }

        impl Opcode {
            pub(super) fn from_u16(v: u16) -> Result<Opcode, WireError> {
                match v {
                    $($opcode => Ok(Opcode::$name),)*
                    other => Err(WireError::UnknownOpcode(other)),
                }
            }

            /// The name of the request with opcode `v`, if there is one.
            pub fn name_of(v: u16) -> Option<&'static str> {
                Self::from_u16(v).ok().map(|op| match op {
                    $(Opcode::$name => stringify!($name),)*
                })
            }

            /// The body of a successful reply to this request.
            pub(super) fn reply_kind(self) -> ReplyKind {
                match self {
                    $(Opcode::$name => ReplyKind::$reply,)*
                }
            }
        }

        /// A request, as the table above defines it. Each row's doc describes its fields.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Request {
            $(
                $(#[doc = $doc])+
                $name $({ $($field: field_type!($codec)),* })?,
            )*
        }

        impl Request {
            /// The opcode that names this request on the wire.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $(Request::$name { .. } => Opcode::$name,)*
                }
            }

            /// The path whose owner rank serves this request, for a metadata request; `None`
            /// for requests not addressed to one path's owner (see the table).
            pub fn routing_path(&self) -> Option<&[u8]> {
                match self {
                    $($(Request::$name { $route, .. } => Some($route.as_slice()),)?)*
                    _ => None,
                }
            }

            /// The header bytes of this request from rank `source` (or `EXTERNAL_SOURCE`), with
            /// a zero credential that the sender fills in (`set_credential`).
            pub fn encode(&self, source: u32, request_id: u64) -> Vec<u8> {
                let body = super::CREDENTIAL_LEN
                    + match self {
                        $(Request::$name { $($($field),*)? } => 0 $($(+ field_len!($codec, $field))*)?,)*
                    };
                let mut w = Writer::with_header(self.opcode() as u16, source, request_id, body);
                w.zeros(super::CREDENTIAL_LEN);
                match self {
                    $(Request::$name { $($($field),*)? } => { $($(write_field!(w, $codec, $field);)*)? })*
                }
                w.into_bytes()
            }
        }

        /// Decodes a whole request: envelope, then a body that must be exactly consumed.
        pub fn decode_request(buf: &[u8]) -> Result<(Envelope, Request), WireError> {
            let envelope = decode_envelope(buf)?;
            let mut r = Reader::new(&buf[REQUEST_HEADER_LEN..]);
            let request = match Opcode::from_u16(envelope.opcode)? {
                $(Opcode::$name => {
                    $($(let $field = r.$codec()?;)*)?
                    Request::$name { $($($field),*)? }
                })*
            };
            r.finish()?;
            Ok((envelope, request))
        }
    };
}

// Name = opcode { fields in wire order: codec } -> reply body kind, routed by the owner's path field;
requests! {
    /// Opens or creates `path`; replies its attributes, the size before an `O_TRUNC` (whose
    /// chunks the owner cuts before it answers), and whether it was created. `ino`: the inode
    /// number a file this creates gets, one the sending rank made (so that its first chunk is
    /// the sender's, see `Ring::chunk_owner`), or 0 for one of the owner's.
    Open = 1 { flags: u32, mode: u32, uid: u32, gid: u32, ino: u64, path: path } -> Opened, routed by path;
    /// The attributes of `path`.
    Stat = 2 { path: path } -> Attr, routed by path;
    /// Raises the size to at least `size` and stamps mtime: sent on close/fsync after writes.
    /// `cuts` is the file's cut count as the writer knows it; if the file was cut since, the
    /// owner publishes only what the chunk owners still hold, up to `size`. `release`: the
    /// writer closes, and no longer counts among the file's writers.
    Publish = 3 { ino: u64, size: u64, cuts: u64, release: flag, path: path } -> Attr, routed by path;
    /// Removes the entry; replies its last `Attr` so the caller can free the chunks.
    Unlink = 4 { path: path } -> Attr, routed by path;
    /// Writes the payload (exactly `len` bytes) at `offset` of `ino`, within one chunk.
    Write = 5 { ino: u64, offset: u64, len: u64 } -> Count;
    /// Reads up to `len` bytes at `offset` of `ino`, within one chunk.
    Read = 6 { ino: u64, offset: u64, len: u64 } -> Count;
    /// Drops this rank's data of `ino` beyond `len`; the file stays.
    TruncateChunks = 7 { ino: u64, len: u64 } -> Empty;
    /// Makes this rank's data of `ino` durable.
    Fsync = 8 { ino: u64 } -> Empty;
    /// Creates directory `path`; replies its attributes.
    Mkdir = 9 { mode: u32, uid: u32, gid: u32, path: path } -> Attr, routed by path;
    /// Removes the empty directory `path`; replies its last attributes.
    Rmdir = 10 { path: path } -> Attr, routed by path;
    /// Sets a file's size, its chunks cut by the owner before it answers; replies `Sized` with
    /// the size before. With `ino` other than 0 the cut
    /// is of that file (a descriptor's), followed like `Publish` if it was renamed, and never of
    /// another file at `path`.
    Truncate = 12 { len: u64, ino: u64, path: path } -> Sized, routed by path;
    /// Up to `max` entries of directory `path` held by this rank, in name order after `after`.
    List = 13 { max: u32, path: path, after: name } -> Count;
    /// Locks a record for a rename to `to` and replies its attributes: the first step of a
    /// rename. A directory is locked only with `tree` (its rename fenced the trees first);
    /// without, it is replied unlocked, so that the rename goes the directory's way.
    Take = 14 { tree: flag, path: path, to: path } -> Attr, routed by path;
    /// Puts a record at `path`: the second step of a rename. Replies `Replaced`.
    Install = 15 { attr: attr, path: path } -> Replaced, routed by path;
    /// Moves every record below directory `from` to the same place below `to`.
    MoveTree = 16 { from: path, to: path } -> Count;
    /// Records moved here by a `MoveTree`, as `count` entries in the payload.
    InstallMany = 17 { count: u32 } -> Count;
    /// Capacity of this rank's data directory and its number of records.
    StatFs = 18 -> FsUsage;
    /// Removes this rank's data of the unlinked file `ino`.
    RemoveChunks = 20 { ino: u64 } -> Empty;
    /// The length of this rank's chunk file of `ino` (0 if it has none): how far its data reaches.
    ChunkExtent = 22 { ino: u64 } -> Count;
    /// Counts a descriptor that is about to write to the file `ino` among its writers (until its
    /// closing `Publish` releases it); forwarded like `Publish` if the file was renamed.
    Register = 23 { ino: u64, path: path } -> Attr, routed by path;
    /// The last step of a rename: the locked record `ino` at `path` goes, now that it is installed
    /// at `to` (with a note for its writers); with `to` empty the rename failed and it is unlocked.
    Release = 24 { ino: u64, to: name, path: path } -> Empty, routed by path;
    /// Fences the trees `from` and `to` at this rank for the directory rename `mover` (see
    /// `rpc::fence`), once no operation of this rank is inside them. Replies how many bytes the
    /// longest path below `from` held here adds to `from` (0 if none): what the rename adds to
    /// each path below. EAGAIN (the fence is gone again): an older rename is in the way.
    MoveBegin = 25 { mover: u64, from: path, to: path } -> Count;
    /// Lifts the fences of the directory rename `mover` at this rank; `moved`: the tree did
    /// move, and this rank's descriptors and forwarding notes below it follow it.
    MoveEnd = 26 { mover: u64, moved: flag } -> Empty;
    /// Stamps the mtime and ctime of directory `path`: an entry was made or removed in it.
    Touch = 27 { path: path } -> Empty, routed by path;
    /// Counts `rank` among the holders of directory `path` before it makes its first entry
    /// there (see `metadata::members`); EAGAIN while an rmdir or a rename holds `path`.
    Enlist = 28 { rank: u32, path: path } -> Empty, routed by path;
    /// Asks a holder of directory `path` whether it still holds an entry of it (ENOTEMPTY);
    /// if not, it stops being a holder: a step of an rmdir.
    Drain = 29 { path: path } -> Empty;
    /// Answered at once: the sender has heard nothing from this rank for a while and asks
    /// whether it is still there (see `transport::Transport::watch`).
    Ping = 30 -> Empty;
    /// Directory `path`'s attributes, and the ranks that hold entries of it (see
    /// `metadata::members`) as little-endian `u32`s in the payload: what a listing starts from.
    Holders = 31 { path: path } -> Attr, routed by path;
    /// Releases `count` writers, as (`ino`, path) entries in the payload: each counted by the
    /// open that created its file for writing, and closed without having written (see
    /// `rpc::unregisters`); forwarded like `Publish` where the file was renamed.
    Unregister = 32 { count: u32 } -> Empty;
    /// Publishes and releases `count` writers, as entries in the payload (see `Closed`): each
    /// closed with its unpublished writes all in its file's first chunk (see `rpc::unregisters`);
    /// each as `Publish` with `release` would.
    PublishMany = 33 { count: u32 } -> Empty;
}

impl Opcode {
    /// True for the requests only ranks send each other, from their handlers (never a client's
    /// own step): an attached client may not send them. (`ChunkExtent` is not one: a client's
    /// own `stat` of a file with writers asks it, see `rpc::client::stat`.)
    pub fn is_internal(code: u16) -> bool {
        [Opcode::InstallMany, Opcode::Enlist, Opcode::Drain].iter().any(|op| *op as u16 == code)
    }
}
