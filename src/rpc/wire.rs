//! The wire format of requests and replies: fixed little-endian headers, validated on decode.
//!
//! Request (active message `AM_REQUEST`, header part):
//! ```text
//!  0 u32 magic | 4 u16 opcode | 6 u16 0 | 8 u32 source rank | 12 u32 0 | 16 u64 request id | 24 body
//! ```
//! Reply (active message `AM_REPLY`, header part):
//! ```text
//!  0 u32 magic | 4 u16 opcode | 6 u16 0 | 8 i32 errno (0 = ok) | 12 u32 0 | 16 u64 request id | 24 body
//! ```
//! Bulk data (chunk writes, read replies) travels as the message payload, never in the header.
//! No text crosses the wire except paths; errors are errno values.

use crate::error::WireError;
use crate::path::MAX_PATH;

pub const MAGIC: u32 = 0x3153_4642; // "BFS1"
pub const HEADER_LEN: usize = 24;

/// The source rank of requests from an attached client, which serves nothing and is answered
/// through the endpoint UCX passes with its request.
pub const EXTERNAL_SOURCE: u32 = u32::MAX;

/// Active-message ids.
pub const AM_REQUEST: u16 = 1;
pub const AM_REPLY: u16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Opcode {
    Open = 1,
    Stat = 2,
    Publish = 3,
    Unlink = 4,
    Write = 5,
    Read = 6,
    TruncateChunks = 7,
    Fsync = 8,
    Mkdir = 9,
    Rmdir = 10,
    Link = 11,
    Truncate = 12,
    List = 13,
    Take = 14,
    Install = 15,
    MoveTree = 16,
    InstallMany = 17,
    StatFs = 18,
    Discard = 19,
    RemoveChunks = 20,
}

impl Opcode {
    fn from_u16(v: u16) -> Result<Opcode, WireError> {
        Ok(match v {
            1 => Opcode::Open,
            2 => Opcode::Stat,
            3 => Opcode::Publish,
            4 => Opcode::Unlink,
            5 => Opcode::Write,
            6 => Opcode::Read,
            7 => Opcode::TruncateChunks,
            8 => Opcode::Fsync,
            9 => Opcode::Mkdir,
            10 => Opcode::Rmdir,
            11 => Opcode::Link,
            12 => Opcode::Truncate,
            13 => Opcode::List,
            14 => Opcode::Take,
            15 => Opcode::Install,
            16 => Opcode::MoveTree,
            17 => Opcode::InstallMany,
            18 => Opcode::StatFs,
            19 => Opcode::Discard,
            20 => Opcode::RemoveChunks,
            other => return Err(WireError::UnknownOpcode(other)),
        })
    }
}

/// A file's attributes as kept by its metadata owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Open or create `path`; replies `Attr` and the size before an `O_TRUNC`.
    Open {
        path: String,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Stat {
        path: String,
    },
    /// Raises the size to at least `size` and stamps mtime: sent on close/fsync after writes.
    Publish {
        path: String,
        ino: u64,
        size: u64,
    },
    /// Removes the entry; replies its last `Attr` so the caller can free the chunks.
    Unlink {
        path: String,
    },
    /// Writes the payload (exactly `len` bytes) at `offset` of `ino`, within one chunk.
    Write {
        ino: u64,
        offset: u64,
        len: u64,
    },
    /// Reads up to `len` bytes at `offset` of `ino`, within one chunk.
    Read {
        ino: u64,
        offset: u64,
        len: u64,
    },
    /// Drops this rank's data of `ino` beyond `len`; the file stays.
    TruncateChunks {
        ino: u64,
        len: u64,
    },
    /// Removes this rank's data of the unlinked file `ino`.
    RemoveChunks {
        ino: u64,
    },
    Fsync {
        ino: u64,
    },
    Mkdir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Rmdir {
        path: String,
    },
    /// Adjusts directory `path`'s entry count by `delta`; `touch` also stamps its mtime.
    Link {
        path: String,
        delta: i64,
        touch: bool,
    },
    /// Sets a file's size; replies `Sized` with the size before.
    Truncate {
        path: String,
        len: u64,
    },
    /// Up to `max` entries of directory `path` held by this rank, in name order after `after`.
    List {
        path: String,
        after: String,
        max: u32,
    },
    /// Removes a record and replies it (`Record`): the first half of a rename to `to`.
    Take {
        path: String,
        to: String,
    },
    /// Puts a record at `path`: the second half of a rename. Replies `Replaced`.
    Install {
        path: String,
        attr: Attr,
        children: u64,
    },
    /// Moves every record below directory `from` to the same place below `to`.
    MoveTree {
        from: String,
        to: String,
    },
    /// Records moved here by a `MoveTree`, as `count` entries in the payload.
    InstallMany {
        count: u32,
    },
    /// Capacity of this rank's data directory and its number of records.
    StatFs,
    /// Removes the record `ino` at `path` that a create just made, unless another caller has
    /// used it since (then `EBUSY`): the undo of a create whose parent turned out missing.
    Discard {
        path: String,
        ino: u64,
    },
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    /// `DT_REG` or `DT_DIR`.
    pub kind: u8,
    pub name: String,
}

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

impl Request {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Mkdir { .. } => Opcode::Mkdir,
            Request::Rmdir { .. } => Opcode::Rmdir,
            Request::Link { .. } => Opcode::Link,
            Request::Truncate { .. } => Opcode::Truncate,
            Request::List { .. } => Opcode::List,
            Request::Take { .. } => Opcode::Take,
            Request::Install { .. } => Opcode::Install,
            Request::MoveTree { .. } => Opcode::MoveTree,
            Request::InstallMany { .. } => Opcode::InstallMany,
            Request::StatFs => Opcode::StatFs,
            Request::Discard { .. } => Opcode::Discard,
            Request::RemoveChunks { .. } => Opcode::RemoveChunks,
            Request::Open { .. } => Opcode::Open,
            Request::Stat { .. } => Opcode::Stat,
            Request::Publish { .. } => Opcode::Publish,
            Request::Unlink { .. } => Opcode::Unlink,
            Request::Write { .. } => Opcode::Write,
            Request::Read { .. } => Opcode::Read,
            Request::TruncateChunks { .. } => Opcode::TruncateChunks,
            Request::Fsync { .. } => Opcode::Fsync,
        }
    }

    pub fn encode(&self, source: u32, request_id: u64) -> Vec<u8> {
        let mut w = Writer::with_header(self.opcode(), source, request_id);
        match self {
            Request::Open { path, flags, mode, uid, gid } => {
                w.u32(*flags);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.path(path);
            }
            Request::Stat { path } | Request::Unlink { path } => w.path(path),
            Request::Publish { path, ino, size } => {
                w.u64(*ino);
                w.u64(*size);
                w.path(path);
            }
            Request::Write { ino, offset, len } | Request::Read { ino, offset, len } => {
                w.u64(*ino);
                w.u64(*offset);
                w.u64(*len);
            }
            Request::TruncateChunks { ino, len } => {
                w.u64(*ino);
                w.u64(*len);
            }
            Request::Fsync { ino } | Request::RemoveChunks { ino } => w.u64(*ino),
            Request::Mkdir { path, mode, uid, gid } => {
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.path(path);
            }
            Request::Rmdir { path } => w.path(path),
            Request::Take { path, to } => {
                w.path(path);
                w.path(to);
            }
            Request::Link { path, delta, touch } => {
                w.u64(*delta as u64);
                w.u8(u8::from(*touch));
                w.path(path);
            }
            Request::Truncate { path, len } => {
                w.u64(*len);
                w.path(path);
            }
            Request::List { path, after, max } => {
                w.u32(*max);
                w.path(path);
                w.name(after);
            }
            Request::Install { path, attr, children } => {
                w.attr(attr);
                w.u64(*children);
                w.path(path);
            }
            Request::MoveTree { from, to } => {
                w.path(from);
                w.path(to);
            }
            Request::InstallMany { count } => w.u32(*count),
            Request::StatFs => {}
            Request::Discard { path, ino } => {
                w.u64(*ino);
                w.path(path);
            }
        }
        w.buf
    }
}

/// What a request header says about its sender, decodable even when the body is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub opcode: u16,
    pub source: u32,
    pub request_id: u64,
}

/// Decodes the common header; `Err` means the sender cannot even be answered.
pub fn decode_envelope(buf: &[u8]) -> Result<Envelope, WireError> {
    let mut r = Reader::new(buf);
    if r.u32()? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let opcode = r.u16()?;
    r.u16()?;
    let source = r.u32()?;
    r.u32()?;
    let request_id = r.u64()?;
    Ok(Envelope { opcode, source, request_id })
}

/// Decodes a whole request: envelope, then a body that must be exactly consumed.
pub fn decode_request(buf: &[u8]) -> Result<(Envelope, Request), WireError> {
    let envelope = decode_envelope(buf)?;
    let mut r = Reader::new(&buf[HEADER_LEN..]);
    let request = match Opcode::from_u16(envelope.opcode)? {
        Opcode::Open => {
            let (flags, mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            Request::Open { flags, mode, uid, gid, path: r.path()? }
        }
        Opcode::Stat => Request::Stat { path: r.path()? },
        Opcode::Unlink => Request::Unlink { path: r.path()? },
        Opcode::Publish => {
            let (ino, size) = (r.u64()?, r.u64()?);
            Request::Publish { ino, size, path: r.path()? }
        }
        Opcode::Write => Request::Write { ino: r.u64()?, offset: r.u64()?, len: r.u64()? },
        Opcode::Read => Request::Read { ino: r.u64()?, offset: r.u64()?, len: r.u64()? },
        Opcode::TruncateChunks => Request::TruncateChunks { ino: r.u64()?, len: r.u64()? },
        Opcode::Fsync => Request::Fsync { ino: r.u64()? },
        Opcode::RemoveChunks => Request::RemoveChunks { ino: r.u64()? },
        Opcode::Mkdir => {
            let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
            Request::Mkdir { mode, uid, gid, path: r.path()? }
        }
        Opcode::Rmdir => Request::Rmdir { path: r.path()? },
        Opcode::Take => Request::Take { path: r.path()?, to: r.path()? },
        Opcode::Link => {
            let delta = r.u64()? as i64;
            let touch = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(WireError::BadLength),
            };
            Request::Link { delta, touch, path: r.path()? }
        }
        Opcode::Truncate => {
            let len = r.u64()?;
            Request::Truncate { len, path: r.path()? }
        }
        Opcode::List => {
            let max = r.u32()?;
            Request::List { max, path: r.path()?, after: r.name()? }
        }
        Opcode::Install => {
            let (attr, children) = (r.attr()?, r.u64()?);
            Request::Install { attr, children, path: r.path()? }
        }
        Opcode::MoveTree => Request::MoveTree { from: r.path()?, to: r.path()? },
        Opcode::InstallMany => Request::InstallMany { count: r.u32()? },
        Opcode::StatFs => Request::StatFs,
        Opcode::Discard => {
            let ino = r.u64()?;
            Request::Discard { ino, path: r.path()? }
        }
    };
    r.finish()?;
    Ok((envelope, request))
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
    /// Take: a whole record.
    Record {
        attr: Attr,
        children: u64,
    },
    /// Install: the record replaced, if any.
    Replaced(Option<Attr>),
    /// Write: bytes written; Read: bytes that follow as payload; List: entries in the payload.
    Count(u64),
    FsUsage(FsUsage),
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
        let mut w = Writer { buf: Vec::with_capacity(HEADER_LEN + 64) };
        w.u32(MAGIC);
        w.u16(self.opcode);
        w.u16(0);
        w.u32(self.errno as u32);
        w.u32(0);
        w.u64(self.request_id);
        match self.body {
            ReplyBody::Empty => {}
            ReplyBody::Attr(a) => w.attr(&a),
            ReplyBody::Opened { attr, old_size, created } => {
                w.attr(&attr);
                w.u64(old_size);
                w.u8(u8::from(created));
            }
            ReplyBody::Sized { attr, old_size } => {
                w.attr(&attr);
                w.u64(old_size);
            }
            ReplyBody::Record { attr, children } => {
                w.attr(&attr);
                w.u64(children);
            }
            ReplyBody::Replaced(None) => w.u8(0),
            ReplyBody::Replaced(Some(attr)) => {
                w.u8(1);
                w.attr(&attr);
            }
            ReplyBody::Count(n) => w.u64(n),
            ReplyBody::FsUsage(u) => {
                for v in [u.fs_id, u.total_bytes, u.free_bytes, u.avail_bytes, u.total_files, u.free_files, u.records] {
                    w.u64(v);
                }
            }
        }
        w.buf
    }

    /// Decodes a reply, checking the body against what `expected` (the request's opcode) returns.
    pub fn decode(buf: &[u8]) -> Result<Reply, WireError> {
        let mut r = Reader::new(buf);
        if r.u32()? != MAGIC {
            return Err(WireError::BadMagic);
        }
        let opcode = r.u16()?;
        r.u16()?;
        let errno = r.u32()? as i32;
        r.u32()?;
        let request_id = r.u64()?;
        let body = if errno != 0 {
            ReplyBody::Empty
        } else {
            match Opcode::from_u16(opcode)? {
                Opcode::Open => {
                    let (attr, old_size) = (r.attr()?, r.u64()?);
                    ReplyBody::Opened { attr, old_size, created: r.flag()? }
                }
                Opcode::Stat | Opcode::Publish | Opcode::Unlink | Opcode::Mkdir | Opcode::Rmdir => ReplyBody::Attr(r.attr()?),
                Opcode::Truncate => ReplyBody::Sized { attr: r.attr()?, old_size: r.u64()? },
                Opcode::Take => ReplyBody::Record { attr: r.attr()?, children: r.u64()? },
                Opcode::Install => ReplyBody::Replaced(if r.flag()? { Some(r.attr()?) } else { None }),
                Opcode::Write | Opcode::Read | Opcode::List | Opcode::MoveTree | Opcode::InstallMany => ReplyBody::Count(r.u64()?),
                Opcode::TruncateChunks | Opcode::RemoveChunks | Opcode::Fsync | Opcode::Link | Opcode::Discard => ReplyBody::Empty,
                Opcode::StatFs => ReplyBody::FsUsage(FsUsage {
                    fs_id: r.u64()?,
                    total_bytes: r.u64()?,
                    free_bytes: r.u64()?,
                    avail_bytes: r.u64()?,
                    total_files: r.u64()?,
                    free_files: r.u64()?,
                    records: r.u64()?,
                }),
            }
        };
        r.finish()?;
        Ok(Reply { request_id, opcode, errno, body })
    }
}

/// Encodes listing entries as a reply payload.
pub fn encode_entries(entries: &[DirEntry]) -> Vec<u8> {
    let mut w = Writer { buf: Vec::with_capacity(entries.len() * 32) };
    for e in entries {
        w.u64(e.ino);
        w.u8(e.kind);
        w.name(&e.name);
    }
    w.buf
}

/// Decodes exactly `count` listing entries from a payload.
pub fn decode_entries(buf: &[u8], count: u64) -> Result<Vec<DirEntry>, WireError> {
    let mut r = Reader::new(buf);
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let (ino, kind) = (r.u64()?, r.u8()?);
        let name = r.name()?;
        if name.is_empty() || name.len() > crate::path::MAX_NAME || name.contains('/') {
            return Err(WireError::BadPath);
        }
        entries.push(DirEntry { ino, kind, name });
    }
    r.finish()?;
    Ok(entries)
}

/// Encodes records moved by a directory rename as a payload.
pub fn encode_records(records: &[(String, Attr, u64)]) -> Vec<u8> {
    let mut w = Writer { buf: Vec::with_capacity(records.len() * 96) };
    for (path, attr, children) in records {
        w.attr(attr);
        w.u64(*children);
        w.path(path);
    }
    w.buf
}

/// Decodes exactly `count` moved records from a payload.
pub fn decode_records(buf: &[u8], count: u32) -> Result<Vec<(String, Attr, u64)>, WireError> {
    let mut r = Reader::new(buf);
    let mut records = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let (attr, children) = (r.attr()?, r.u64()?);
        records.push((r.path()?, attr, children));
    }
    r.finish()?;
    Ok(records)
}

/// The reply's request id, readable even when the rest does not decode.
pub fn reply_request_id(buf: &[u8]) -> Option<u64> {
    let bytes = buf.get(16..24)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn with_header(opcode: Opcode, source: u32, request_id: u64) -> Writer {
        let mut w = Writer { buf: Vec::with_capacity(HEADER_LEN + 64) };
        w.u32(MAGIC);
        w.u16(opcode as u16);
        w.u16(0);
        w.u32(source);
        w.u32(0);
        w.u64(request_id);
        w
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn path(&mut self, p: &str) {
        self.name(p);
    }
    /// A length-prefixed string that may be empty (a path never is).
    fn name(&mut self, p: &str) {
        self.u16(p.len() as u16);
        self.buf.extend_from_slice(p.as_bytes());
    }
    fn attr(&mut self, a: &Attr) {
        self.u64(a.ino);
        self.u64(a.size);
        self.u32(a.mode);
        self.u32(a.uid);
        self.u32(a.gid);
        self.u32(a.nlink);
        self.u64(a.atime_ns as u64);
        self.u64(a.mtime_ns as u64);
        self.u64(a.ctime_ns as u64);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::BadLength),
        }
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| WireError::Truncated)?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| WireError::Truncated)?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| WireError::Truncated)?))
    }
    fn path(&mut self) -> Result<String, WireError> {
        let path = self.name()?;
        if path.is_empty() {
            return Err(WireError::BadLength);
        }
        Ok(path)
    }
    fn name(&mut self) -> Result<String, WireError> {
        let len = self.u16()? as usize;
        if len > MAX_PATH {
            return Err(WireError::BadLength);
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::BadPath)
    }
    fn attr(&mut self) -> Result<Attr, WireError> {
        Ok(Attr {
            ino: self.u64()?,
            size: self.u64()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            nlink: self.u32()?,
            atime_ns: self.u64()? as i64,
            mtime_ns: self.u64()? as i64,
            ctime_ns: self.u64()? as i64,
        })
    }
    /// Trailing bytes mean the sender and receiver disagree on the layout.
    fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::BadLength)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Open { path: "/a/b".into(), flags: 0o1101, mode: 0o644, uid: 1000, gid: 100 },
            Request::Stat { path: "/x".into() },
            Request::Publish { path: "/x".into(), ino: 9, size: 1 << 40 },
            Request::Unlink { path: "/y".into() },
            Request::Write { ino: 3, offset: 12345, len: 4096 },
            Request::Read { ino: 3, offset: 0, len: 1 },
            Request::TruncateChunks { ino: 4, len: 0 },
            Request::Fsync { ino: 5 },
            Request::Mkdir { path: "/d".into(), mode: 0o755, uid: 1, gid: 2 },
            Request::Rmdir { path: "/d".into() },
            Request::Link { path: "/d".into(), delta: -1, touch: true },
            Request::Truncate { path: "/f".into(), len: 77 },
            Request::List { path: "/d".into(), after: String::new(), max: 100 },
            Request::List { path: "/d".into(), after: "name".into(), max: 1 },
            Request::Take { path: "/a".into(), to: "/b".into() },
            Request::Install { path: "/b".into(), attr: Attr { ino: 5, size: 6, ..Attr::default() }, children: 3 },
            Request::MoveTree { from: "/a".into(), to: "/b/c".into() },
            Request::InstallMany { count: 12 },
            Request::StatFs,
            Request::Discard { path: "/d/f".into(), ino: 77 },
            Request::RemoveChunks { ino: 78 },
        ]
    }

    #[test]
    fn requests_round_trip() {
        for req in all_requests() {
            let buf = req.encode(7, 42);
            let (env, back) = decode_request(&buf).unwrap();
            assert_eq!(back, req);
            assert_eq!(env, Envelope { opcode: req.opcode() as u16, source: 7, request_id: 42 });
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        for req in all_requests() {
            let buf = req.encode(1, 2);
            for cut in 0..buf.len() {
                assert!(decode_request(&buf[..cut]).is_err(), "{req:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn malformed_requests_are_rejected() {
        let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
        buf.push(0);
        assert_eq!(decode_request(&buf), Err(WireError::BadLength));
        let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
        buf[0] ^= 0xff;
        assert_eq!(decode_request(&buf), Err(WireError::BadMagic));
        let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
        buf[4] = 99;
        assert_eq!(decode_request(&buf), Err(WireError::UnknownOpcode(99)));
        let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
        buf[HEADER_LEN + 2] = 0xff; // invalid UTF-8 in the path
        assert_eq!(decode_request(&buf), Err(WireError::BadPath));
        let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
        buf[HEADER_LEN] = 0xff; // path length larger than the message
        buf[HEADER_LEN + 1] = 0x0f;
        assert!(decode_request(&buf).is_err());
    }

    #[test]
    fn payload_codecs_round_trip_and_reject_garbage() {
        let entries =
            vec![DirEntry { ino: 1, kind: libc::DT_REG, name: "a".into() }, DirEntry { ino: 2, kind: libc::DT_DIR, name: "bb".into() }];
        let buf = encode_entries(&entries);
        assert_eq!(decode_entries(&buf, 2).unwrap(), entries);
        assert!(decode_entries(&buf, 3).is_err());
        assert!(decode_entries(&buf, 1).is_err());
        let bad = encode_entries(&[DirEntry { ino: 1, kind: 0, name: "a/b".into() }]);
        assert_eq!(decode_entries(&bad, 1), Err(WireError::BadPath));
        let records = vec![("/x/y".to_string(), Attr::default(), 0u64), ("/x/z".to_string(), Attr { ino: 9, ..Attr::default() }, 2)];
        let buf = encode_records(&records);
        assert_eq!(decode_records(&buf, 2).unwrap(), records);
        for cut in 0..buf.len() {
            assert!(decode_records(&buf[..cut], 2).is_err());
        }
    }

    #[test]
    fn replies_round_trip() {
        let attr = Attr { ino: 1, size: 2, mode: 0o100644, uid: 3, gid: 4, nlink: 1, atime_ns: -5, mtime_ns: 6, ctime_ns: 7 };
        let cases = [
            (Opcode::Open, ReplyBody::Opened { attr, old_size: 99, created: true }),
            (Opcode::Truncate, ReplyBody::Sized { attr, old_size: 3 }),
            (Opcode::Take, ReplyBody::Record { attr, children: 4 }),
            (Opcode::Install, ReplyBody::Replaced(Some(attr))),
            (Opcode::Install, ReplyBody::Replaced(None)),
            (
                Opcode::StatFs,
                ReplyBody::FsUsage(FsUsage {
                    fs_id: 1,
                    total_bytes: 2,
                    free_bytes: 3,
                    avail_bytes: 4,
                    total_files: 5,
                    free_files: 6,
                    records: 7,
                }),
            ),
            (Opcode::Stat, ReplyBody::Attr(attr)),
            (Opcode::Read, ReplyBody::Count(77)),
            (Opcode::Fsync, ReplyBody::Empty),
        ];
        for (opcode, body) in cases {
            let reply = Reply { request_id: 5, opcode: opcode as u16, errno: 0, body };
            let buf = reply.encode();
            assert_eq!(Reply::decode(&buf).unwrap(), reply);
            assert_eq!(reply_request_id(&buf), Some(5));
            for cut in 0..buf.len() {
                assert!(Reply::decode(&buf[..cut]).is_err());
            }
        }
        let failed = Reply { request_id: 6, opcode: Opcode::Stat as u16, errno: libc::ENOENT, body: ReplyBody::Empty };
        assert_eq!(Reply::decode(&failed.encode()).unwrap(), failed);
    }

    /// The bytes every request and reply encodes to, pinned: other programs craft raw messages
    /// at fixed offsets, so the layout may only change on purpose.
    mod golden {
        use super::*;

        const ID: u64 = 0x0102_0304_0506_0708;
        /// `ATTR` below as encoded: ino, size, mode, uid, gid, nlink, atime, mtime, ctime.
        const ATTR_HEX: &str = concat!(
            "1100000000000000",
            "2200000000000000",
            "a4810000",
            "33000000",
            "44000000",
            "55000000",
            "feffffffffffffff",
            "6600000000000000",
            "7700000000000000",
        );
        const ATTR: Attr =
            Attr { ino: 0x11, size: 0x22, mode: 0o100644, uid: 0x33, gid: 0x44, nlink: 0x55, atime_ns: -2, mtime_ns: 0x66, ctime_ns: 0x77 };

        fn hex(bytes: &[u8]) -> String {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }

        /// magic "BFS1" | opcode | 0 | source or errno | 0 | request id
        fn header_hex(opcode: u16, third_word: u32) -> String {
            format!("42465331{}0000{}00000000{}", hex(&opcode.to_le_bytes()), hex(&third_word.to_le_bytes()), hex(&ID.to_le_bytes()))
        }

        /// (request, its opcode number, its body in hex)
        fn requests() -> Vec<(Request, u16, String)> {
            let s = |text: &str| text.to_string();
            vec![
                (
                    Request::Open { path: "/a/b".into(), flags: 0o1101, mode: 0o644, uid: 1000, gid: 100 },
                    1,
                    s("41020000a4010000e80300006400000004002f612f62"),
                ),
                (Request::Stat { path: "/st".into() }, 2, s("03002f7374")),
                (Request::Publish { path: "/pub".into(), ino: 9, size: 1 << 40 }, 3, s("0900000000000000000000000001000004002f707562")),
                (Request::Unlink { path: "/un".into() }, 4, s("03002f756e")),
                (Request::Write { ino: 3, offset: 12345, len: 4096 }, 5, s("030000000000000039300000000000000010000000000000")),
                (Request::Read { ino: 4, offset: 7, len: 1 }, 6, s("040000000000000007000000000000000100000000000000")),
                (Request::TruncateChunks { ino: 5, len: 6 }, 7, s("05000000000000000600000000000000")),
                (Request::Fsync { ino: 7 }, 8, s("0700000000000000")),
                (Request::Mkdir { path: "/d".into(), mode: 0o755, uid: 1, gid: 2 }, 9, s("ed010000010000000200000002002f64")),
                (Request::Rmdir { path: "/rd".into() }, 10, s("03002f7264")),
                (Request::Link { path: "/ln".into(), delta: -1, touch: true }, 11, s("ffffffffffffffff0103002f6c6e")),
                (Request::Link { path: "/ln".into(), delta: 2, touch: false }, 11, s("02000000000000000003002f6c6e")),
                (Request::Truncate { path: "/f".into(), len: 77 }, 12, s("4d0000000000000002002f66")),
                (Request::List { path: "/ls".into(), after: String::new(), max: 100 }, 13, s("6400000003002f6c730000")),
                (Request::List { path: "/ls".into(), after: "name".into(), max: 1 }, 13, s("0100000003002f6c7304006e616d65")),
                (Request::Take { path: "/from".into(), to: "/to".into() }, 14, s("05002f66726f6d03002f746f")),
                (Request::Install { path: "/in".into(), attr: ATTR, children: 3 }, 15, format!("{ATTR_HEX}030000000000000003002f696e")),
                (Request::MoveTree { from: "/a".into(), to: "/b/c".into() }, 16, s("02002f6104002f622f63")),
                (Request::InstallMany { count: 12 }, 17, s("0c000000")),
                (Request::StatFs, 18, s("")),
                (Request::Discard { path: "/d/f".into(), ino: 78 }, 19, s("4e0000000000000004002f642f66")),
                (Request::RemoveChunks { ino: 79 }, 20, s("4f00000000000000")),
            ]
        }

        #[test]
        fn request_bytes_are_pinned() {
            let mut seen = std::collections::BTreeSet::new();
            for (request, opcode, body) in requests() {
                let buf = request.encode(7, ID);
                assert_eq!(hex(&buf[..HEADER_LEN]), header_hex(opcode, 7), "{request:?}");
                assert_eq!(hex(&buf[HEADER_LEN..]), body, "{request:?}");
                assert_eq!(decode_request(&buf).map(|(_, r)| r), Ok(request));
                seen.insert(opcode);
            }
            assert_eq!(seen, (1..=20).collect(), "every opcode is pinned");
            for unknown in [0u16, 21, u16::MAX] {
                let mut buf = Request::StatFs.encode(7, ID);
                buf[4..6].copy_from_slice(&unknown.to_le_bytes());
                assert_eq!(decode_request(&buf), Err(WireError::UnknownOpcode(unknown)));
            }
        }

        #[test]
        fn reply_bytes_are_pinned() {
            let usage = FsUsage { fs_id: 1, total_bytes: 2, free_bytes: 3, avail_bytes: 4, total_files: 5, free_files: 6, records: 7 };
            let cases = [
                (Opcode::Fsync, 0, ReplyBody::Empty, String::new()),
                (Opcode::Stat, 0, ReplyBody::Attr(ATTR), ATTR_HEX.to_string()),
                (Opcode::Open, 0, ReplyBody::Opened { attr: ATTR, old_size: 99, created: true }, format!("{ATTR_HEX}630000000000000001")),
                (Opcode::Open, 0, ReplyBody::Opened { attr: ATTR, old_size: 98, created: false }, format!("{ATTR_HEX}620000000000000000")),
                (Opcode::Truncate, 0, ReplyBody::Sized { attr: ATTR, old_size: 3 }, format!("{ATTR_HEX}0300000000000000")),
                (Opcode::Take, 0, ReplyBody::Record { attr: ATTR, children: 4 }, format!("{ATTR_HEX}0400000000000000")),
                (Opcode::Install, 0, ReplyBody::Replaced(None), "00".to_string()),
                (Opcode::Install, 0, ReplyBody::Replaced(Some(ATTR)), format!("01{ATTR_HEX}")),
                (Opcode::Read, 0, ReplyBody::Count(0x1234), "3412000000000000".to_string()),
                (
                    Opcode::StatFs,
                    0,
                    ReplyBody::FsUsage(usage),
                    concat!(
                        "0100000000000000",
                        "0200000000000000",
                        "0300000000000000",
                        "0400000000000000",
                        "0500000000000000",
                        "0600000000000000",
                        "0700000000000000",
                    )
                    .to_string(),
                ),
                (Opcode::Stat, libc::ENOENT, ReplyBody::Empty, String::new()),
            ];
            for (opcode, errno, body, body_hex) in cases {
                let reply = Reply { request_id: ID, opcode: opcode as u16, errno, body };
                let buf = reply.encode();
                assert_eq!(hex(&buf[..HEADER_LEN]), header_hex(opcode as u16, errno as u32), "{reply:?}");
                assert_eq!(hex(&buf[HEADER_LEN..]), body_hex, "{reply:?}");
                assert_eq!(Reply::decode(&buf), Ok(reply));
            }
        }

        /// The body each opcode's successful reply carries; a body of another kind of the same
        /// length would decode to a different value.
        #[test]
        fn reply_body_kind_of_every_opcode() {
            let count = ReplyBody::Count(5);
            let cases = [
                (Opcode::Open, 1, ReplyBody::Opened { attr: ATTR, old_size: 1, created: false }),
                (Opcode::Stat, 2, ReplyBody::Attr(ATTR)),
                (Opcode::Publish, 3, ReplyBody::Attr(ATTR)),
                (Opcode::Unlink, 4, ReplyBody::Attr(ATTR)),
                (Opcode::Write, 5, count),
                (Opcode::Read, 6, count),
                (Opcode::TruncateChunks, 7, ReplyBody::Empty),
                (Opcode::Fsync, 8, ReplyBody::Empty),
                (Opcode::Mkdir, 9, ReplyBody::Attr(ATTR)),
                (Opcode::Rmdir, 10, ReplyBody::Attr(ATTR)),
                (Opcode::Link, 11, ReplyBody::Empty),
                (Opcode::Truncate, 12, ReplyBody::Sized { attr: ATTR, old_size: 1 }),
                (Opcode::List, 13, count),
                (Opcode::Take, 14, ReplyBody::Record { attr: ATTR, children: 1 }),
                (Opcode::Install, 15, ReplyBody::Replaced(None)),
                (Opcode::MoveTree, 16, count),
                (Opcode::InstallMany, 17, count),
                (Opcode::StatFs, 18, ReplyBody::FsUsage(FsUsage::default())),
                (Opcode::Discard, 19, ReplyBody::Empty),
                (Opcode::RemoveChunks, 20, ReplyBody::Empty),
            ];
            for (opcode, number, body) in cases {
                assert_eq!(opcode as u16, number);
                let reply = Reply { request_id: ID, opcode: number, errno: 0, body };
                assert_eq!(Reply::decode(&reply.encode()), Ok(reply), "{opcode:?}");
            }
        }
    }
}
