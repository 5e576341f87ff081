//! Little-endian field codecs: `Writer` appends fields to a message, `Reader` takes them off the
//! front of one, validating each before it allocates.

use super::{Attr, HEADER_LEN, MAGIC};
use crate::error::WireError;
use crate::path::MAX_PATH;

pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn with_capacity(capacity: usize) -> Writer {
        Writer { buf: Vec::with_capacity(capacity) }
    }

    /// The common header; `word` is the source rank of a request or the errno of a reply.
    /// `body` bytes follow it: the buffer is allocated once, for both.
    pub(super) fn with_header(opcode: u16, word: u32, request_id: u64, body: usize) -> Writer {
        let mut w = Writer::with_capacity(HEADER_LEN + body);
        w.u32(MAGIC);
        w.u16(opcode);
        w.u16(0);
        w.u32(word);
        w.u32(0);
        w.u64(request_id);
        w
    }

    /// `n` zero bytes (a request's credential, filled in by its sender).
    pub(super) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Two's complement, as a `u64`.
    pub(super) fn i64(&mut self, v: i64) {
        self.u64(v as u64);
    }
    /// One byte, 0 or 1.
    pub(super) fn flag(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub(super) fn path(&mut self, p: &[u8]) {
        self.name(p);
    }
    /// A `u16`-length-prefixed byte string that may be empty (a path never is).
    pub(super) fn name(&mut self, p: &[u8]) {
        self.u16(p.len() as u16);
        self.buf.extend_from_slice(p);
    }
    pub(super) fn attr(&mut self, a: &Attr) {
        self.u64(a.ino);
        self.u64(a.size);
        self.u32(a.mode);
        self.u32(a.uid);
        self.u32(a.gid);
        self.u32(a.nlink);
        self.i64(a.atime_ns);
        self.i64(a.mtime_ns);
        self.i64(a.ctime_ns);
        self.u64(a.cuts);
        self.u32(a.writers);
    }
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// The common header: (opcode, source or errno, request id).
    pub(super) fn header(&mut self) -> Result<(u16, u32, u64), WireError> {
        if self.u32()? != MAGIC {
            return Err(WireError::BadMagic);
        }
        let opcode = self.u16()?;
        self.u16()?;
        let word = self.u32()?;
        self.u32()?;
        Ok((opcode, word, self.u64()?))
    }

    /// A request's credential.
    pub(super) fn credential(&mut self) -> Result<super::Credential, WireError> {
        let mut credential = [0u8; super::CREDENTIAL_LEN];
        credential.copy_from_slice(self.take(super::CREDENTIAL_LEN)?);
        Ok(credential)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.take(N)?.try_into().map_err(|_| WireError::Truncated)
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(super) fn i64(&mut self) -> Result<i64, WireError> {
        Ok(self.u64()? as i64)
    }
    /// Any byte but 0 or 1 is rejected, so that every value has one encoding.
    pub(super) fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::BadLength),
        }
    }
    /// A non-empty `name`.
    pub(super) fn path(&mut self) -> Result<Vec<u8>, WireError> {
        let path = self.name()?;
        if path.is_empty() {
            return Err(WireError::BadLength);
        }
        Ok(path)
    }
    /// A length-prefixed byte string of at most `MAX_PATH` bytes. Any byte may appear: a name
    /// is bytes, as in POSIX; what makes a path valid is checked where it is used.
    pub(super) fn name(&mut self) -> Result<Vec<u8>, WireError> {
        let len = self.u16()? as usize;
        if len > MAX_PATH {
            return Err(WireError::BadLength);
        }
        Ok(self.take(len)?.to_vec())
    }
    pub(super) fn attr(&mut self) -> Result<Attr, WireError> {
        Ok(Attr {
            ino: self.u64()?,
            size: self.u64()?,
            mode: self.u32()?,
            uid: self.u32()?,
            gid: self.u32()?,
            nlink: self.u32()?,
            atime_ns: self.i64()?,
            mtime_ns: self.i64()?,
            ctime_ns: self.i64()?,
            cuts: self.u64()?,
            writers: self.u32()?,
        })
    }
    /// Trailing bytes mean the sender and receiver disagree on the layout.
    pub(super) fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::BadLength)
        }
    }
}
