//! The wire format of requests and replies: fixed little-endian headers, validated on decode.
//!
//! Request (active message `AM_REQUEST`, header part):
//! ```text
//!  0 u32 magic | 4 u16 opcode | 6 u16 0 | 8 u32 source rank | 12 u32 0 | 16 u64 request id
//! 24 [u8; 16] credential | 40 body
//! ```
//! Reply (active message `AM_REPLY`, header part):
//! ```text
//!  0 u32 magic | 4 u16 opcode | 6 u16 0 | 8 i32 errno (0 = ok) | 12 u32 0 | 16 u64 request id | 24 body
//! ```
//! Bulk data (chunk writes, read replies) travels as the message payload, never in the header.
//! No text crosses the wire; paths and names are bytes, errors are errno values.
//!
//! Each request's opcode, body layout and reply body are declared once, in the table of
//! `requests.rs`; `codec.rs` reads and writes the individual fields.

mod codec;
mod requests;
#[cfg(test)]
mod tests;

use crate::error::WireError;
pub use crate::metadata::{Attr, DirEntry};
use codec::{Reader, Writer};
pub use requests::{decode_request, Opcode, Request};

/// The first word of every message: "BFS1".
pub const MAGIC: u32 = 0x3153_4642;
/// Bytes of the common header that begins every request and reply.
pub const HEADER_LEN: usize = 24;
/// Bytes of the credential that follows the common header of a request.
pub const CREDENTIAL_LEN: usize = 16;
/// Bytes before a request's body: the common header and the sender's credential.
pub const REQUEST_HEADER_LEN: usize = HEADER_LEN + CREDENTIAL_LEN;

/// What a request carries to prove its sender may send it: the job's rank key for its ranks,
/// the client key for attached clients (see `rpc::keys`).
pub type Credential = [u8; CREDENTIAL_LEN];

/// The source rank of requests from an attached client, which serves nothing and is answered
/// through the endpoint UCX passes with its request.
pub const EXTERNAL_SOURCE: u32 = u32::MAX;

/// Active-message ids.
pub const AM_REQUEST: u16 = 1;
pub const AM_REPLY: u16 = 2;

/// Capacity of one rank's data directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// Identifies the file system (host and fsid hashed), to count a shared one once.
    pub fs_id: u64,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
    /// Metadata records on this rank.
    pub records: u64,
}

/// What a request header says about its sender, decodable even when the body is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub opcode: u16,
    pub source: u32,
    pub request_id: u64,
    pub credential: Credential,
}

/// Decodes a request's header; `Err` means the sender cannot even be answered.
pub fn decode_envelope(buf: &[u8]) -> Result<Envelope, WireError> {
    let mut r = Reader::new(buf);
    let (opcode, source, request_id) = r.header()?;
    let credential = r.credential()?;
    Ok(Envelope { opcode, source, request_id, credential })
}

/// Writes `credential` into an encoded request.
pub fn set_credential(request: &mut [u8], credential: &Credential) {
    if let Some(field) = request.get_mut(HEADER_LEN..REQUEST_HEADER_LEN) {
        field.copy_from_slice(credential);
    }
}

/// The body of a successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyBody {
    Empty,
    Attr(Attr),
    /// Open: the attributes, the size before `O_TRUNC`, and whether it was created.
    Opened {
        attr: Attr,
        old_size: u64,
        created: bool,
    },
    /// Truncate: the attributes and the size before.
    Sized {
        attr: Attr,
        old_size: u64,
    },
    /// Install: the record replaced, if any.
    Replaced(Option<Attr>),
    /// Write: bytes written; Read: bytes that follow as payload; List: entries in the payload.
    Count(u64),
    FsUsage(FsUsage),
}

/// Which `ReplyBody` variant a successful reply carries: fixed per opcode by the request table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyKind {
    Empty,
    Attr,
    Opened,
    Sized,
    Replaced,
    Count,
    FsUsage,
}

impl ReplyBody {
    fn encode(&self, w: &mut Writer) {
        match *self {
            ReplyBody::Empty => {}
            ReplyBody::Attr(attr) => w.attr(&attr),
            ReplyBody::Opened { attr, old_size, created } => {
                w.attr(&attr);
                w.u64(old_size);
                w.flag(created);
            }
            ReplyBody::Sized { attr, old_size } => {
                w.attr(&attr);
                w.u64(old_size);
            }
            ReplyBody::Replaced(attr) => {
                w.flag(attr.is_some());
                if let Some(attr) = attr {
                    w.attr(&attr);
                }
            }
            ReplyBody::Count(n) => w.u64(n),
            ReplyBody::FsUsage(u) => {
                for v in [u.fs_id, u.total_bytes, u.free_bytes, u.avail_bytes, u.total_files, u.free_files, u.records] {
                    w.u64(v);
                }
            }
        }
    }

    /// The bytes `encode` writes.
    fn encoded_len(&self) -> usize {
        match *self {
            ReplyBody::Empty => 0,
            ReplyBody::Attr(_) => ATTR_LEN,
            ReplyBody::Opened { .. } => ATTR_LEN + 8 + 1,
            ReplyBody::Sized { .. } => ATTR_LEN + 8,
            ReplyBody::Replaced(attr) => 1 + attr.map_or(0, |_| ATTR_LEN),
            ReplyBody::Count(_) => 8,
            ReplyBody::FsUsage(_) => 7 * 8,
        }
    }

    fn decode(kind: ReplyKind, r: &mut Reader<'_>) -> Result<ReplyBody, WireError> {
        Ok(match kind {
            ReplyKind::Empty => ReplyBody::Empty,
            ReplyKind::Attr => ReplyBody::Attr(r.attr()?),
            ReplyKind::Opened => ReplyBody::Opened { attr: r.attr()?, old_size: r.u64()?, created: r.flag()? },
            ReplyKind::Sized => ReplyBody::Sized { attr: r.attr()?, old_size: r.u64()? },
            ReplyKind::Replaced => ReplyBody::Replaced(if r.flag()? { Some(r.attr()?) } else { None }),
            ReplyKind::Count => ReplyBody::Count(r.u64()?),
            ReplyKind::FsUsage => ReplyBody::FsUsage(FsUsage {
                fs_id: r.u64()?,
                total_bytes: r.u64()?,
                free_bytes: r.u64()?,
                avail_bytes: r.u64()?,
                total_files: r.u64()?,
                free_files: r.u64()?,
                records: r.u64()?,
            }),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub request_id: u64,
    pub opcode: u16,
    /// 0, or the errno of a failed request (then the body is empty).
    pub errno: i32,
    pub body: ReplyBody,
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_header(self.opcode, self.errno as u32, self.request_id, self.body.encoded_len());
        self.body.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes a reply, checking that its body is the one its opcode's request returns (none
    /// when it failed) and nothing more.
    pub fn decode(buf: &[u8]) -> Result<Reply, WireError> {
        let mut r = Reader::new(buf);
        let (opcode, errno, request_id) = r.header()?;
        let errno = errno as i32;
        let body = if errno != 0 { ReplyBody::Empty } else { ReplyBody::decode(Opcode::from_u16(opcode)?.reply_kind(), &mut r)? };
        r.finish()?;
        Ok(Reply { request_id, opcode, errno, body })
    }
}

/// Encodes listing entries as a reply payload.
pub fn encode_entries(entries: &[DirEntry]) -> Vec<u8> {
    let mut w = Writer::with_capacity(entries.len() * 32);
    for e in entries {
        w.u64(e.ino);
        w.u8(e.kind);
        w.name(&e.name);
    }
    w.into_bytes()
}

/// Decodes exactly `count` listing entries from a payload.
pub fn decode_entries(buf: &[u8], count: u64) -> Result<Vec<DirEntry>, WireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let (ino, kind) = (r.u64()?, r.u8()?);
        let name = r.name()?;
        if name.is_empty() || name.len() > crate::path::MAX_NAME || name.contains(&b'/') || name.contains(&0) {
            return Err(WireError::BadPath);
        }
        entries.push(DirEntry { ino, kind, name });
    }
    r.finish()?;
    Ok(entries)
}

/// Most records one `InstallMany` carries.
pub const MAX_MOVED_RECORDS: u32 = 1024;

/// Bytes of a record's attributes on the wire (see `codec`).
const ATTR_LEN: usize = 8 + 8 + 4 * 4 + 8 * 3 + 8 + 4;

/// The longest a record can be on the wire: its attributes, a path length and the longest path.
pub const MAX_RECORD_LEN: usize = ATTR_LEN + 2 + crate::path::MAX_PATH;

/// Encodes records moved by a directory rename as a payload (attributes, then path, each).
pub fn encode_records(records: &[(Vec<u8>, Attr)]) -> Vec<u8> {
    let mut w = Writer::with_capacity(records.len() * 96);
    for (path, attr) in records {
        w.attr(attr);
        w.path(path);
    }
    w.into_bytes()
}

/// Decodes exactly `count` moved records from a payload.
pub fn decode_records(buf: &[u8], count: u32) -> Result<Vec<(Vec<u8>, Attr)>, WireError> {
    let mut r = Reader::new(buf);
    let mut records = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let attr = r.attr()?;
        records.push((r.path()?, attr));
    }
    r.finish()?;
    Ok(records)
}

/// Most writers one `Unregister` may release.
pub const MAX_UNREGISTERED: u32 = 1024;

/// The longest an `Unregister` entry can be on the wire: the inode number, a path length and
/// the longest path.
pub const MAX_UNREGISTER_LEN: usize = 8 + 2 + crate::path::MAX_PATH;

/// Encodes the entries of an `Unregister` as its payload (inode number, then path, each).
pub fn encode_unregisters(entries: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let mut w = Writer::with_capacity(entries.len() * 48);
    for (path, ino) in entries {
        w.u64(*ino);
        w.path(path);
    }
    w.into_bytes()
}

/// Decodes exactly `count` entries of an `Unregister` from its payload.
pub fn decode_unregisters(buf: &[u8], count: u32) -> Result<Vec<(Vec<u8>, u64)>, WireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::with_capacity(count.min(MAX_UNREGISTERED) as usize);
    for _ in 0..count {
        let ino = r.u64()?;
        entries.push((r.path()?, ino));
    }
    r.finish()?;
    Ok(entries)
}

/// A writer that closed with its unpublished writes all in its file's first chunk, to be
/// published and released (see `rpc::unregisters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The path its file had when it was opened (or renamed to, by its rank).
    pub path: Vec<u8>,
    pub ino: u64,
    /// The end of its highest write since it last published.
    pub end: u64,
    /// The cuts of the file it knew (see `Attr::cuts`).
    pub cuts: u64,
}

/// Most writers one `PublishMany` may publish.
pub const MAX_PUBLISHED: u32 = 1024;

/// The longest a `PublishMany` entry can be on the wire: the inode number, the end, the cuts,
/// a path length and the longest path.
pub const MAX_PUBLISHED_LEN: usize = 3 * 8 + 2 + crate::path::MAX_PATH;

/// Encodes the entries of a `PublishMany` as its payload (inode number, end, cuts, then path,
/// each).
pub fn encode_closed(entries: &[Closed]) -> Vec<u8> {
    let mut w = Writer::with_capacity(entries.len() * 64);
    for c in entries {
        w.u64(c.ino);
        w.u64(c.end);
        w.u64(c.cuts);
        w.path(&c.path);
    }
    w.into_bytes()
}

/// Decodes exactly `count` entries of a `PublishMany` from its payload.
pub fn decode_closed(buf: &[u8], count: u32) -> Result<Vec<Closed>, WireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::with_capacity(count.min(MAX_PUBLISHED) as usize);
    for _ in 0..count {
        let (ino, end, cuts) = (r.u64()?, r.u64()?, r.u64()?);
        entries.push(Closed { path: r.path()?, ino, end, cuts });
    }
    r.finish()?;
    Ok(entries)
}

/// The reply's request id, readable even when the rest does not decode.
pub fn reply_request_id(buf: &[u8]) -> Option<u64> {
    let bytes = buf.get(16..24)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}
