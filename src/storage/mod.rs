//! Temporary synchronous chunk store (replaced by the io_uring store).
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use crate::error::StorageError;
use crate::ids::InodeId;

pub enum IoBuf { Owned(Vec<u8>), Raw { ptr: *mut u8, len: usize } }
pub enum Backend { Uring, Sync }
pub struct ChunkStore { dir: PathBuf, files: RefCell<HashMap<InodeId, std::rc::Rc<File>>> }
impl ChunkStore {
    pub fn open_with_backend(dir: &Path, _q: u32, _b: Backend) -> Result<ChunkStore, StorageError> {
        std::fs::create_dir_all(dir)?;
        Ok(ChunkStore { dir: dir.to_owned(), files: RefCell::default() })
    }
    fn file(&self, ino: InodeId, create: bool) -> Result<Option<std::rc::Rc<File>>, StorageError> {
        if let Some(f) = self.files.borrow().get(&ino) { return Ok(Some(f.clone())); }
        let p = self.dir.join(format!("{:016x}", ino.0));
        let f = match std::fs::OpenOptions::new().read(true).write(true).create(create).open(&p) {
            Ok(f) => std::rc::Rc::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.files.borrow_mut().insert(ino, f.clone());
        Ok(Some(f))
    }
    pub async fn write(&self, ino: InodeId, offset: u64, buf: IoBuf) -> Result<usize, StorageError> {
        let f = self.file(ino, true)?.unwrap();
        let s = match &buf { IoBuf::Owned(v) => &v[..], IoBuf::Raw { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) } };
        f.write_all_at(s, offset)?; Ok(s.len())
    }
    pub async fn read(&self, ino: InodeId, offset: u64, mut buf: IoBuf) -> Result<(usize, IoBuf), StorageError> {
        let Some(f) = self.file(ino, false)? else { return Ok((0, buf)) };
        let s = match &mut buf { IoBuf::Owned(v) => &mut v[..], IoBuf::Raw { ptr, len } => unsafe { std::slice::from_raw_parts_mut(*ptr, *len) } };
        let mut n = 0;
        while n < s.len() { let k = f.read_at(&mut s[n..], offset + n as u64)?; if k == 0 { break; } n += k; }
        Ok((n, buf))
    }
    pub async fn fsync(&self, ino: InodeId) -> Result<(), StorageError> { if let Some(f) = self.file(ino, false)? { f.sync_data()?; } Ok(()) }
    pub fn truncate(&self, ino: InodeId, len: u64) -> Result<(), StorageError> {
        if len == 0 { self.files.borrow_mut().remove(&ino); let _ = std::fs::remove_file(self.dir.join(format!("{:016x}", ino.0))); return Ok(()); }
        if let Some(f) = self.file(ino, false)? { if f.metadata()?.len() > len { f.set_len(len)?; } } Ok(())
    }
    pub fn poll_completions(&self) -> usize { 0 }
    pub fn submit(&self) -> usize { 0 }
    pub fn event_fd(&self) -> Option<std::os::fd::RawFd> { None }
    pub fn clear_event(&self) {}
    pub fn shutdown(self, keep: bool) -> Result<(), StorageError> { if !keep { let _ = std::fs::remove_dir_all(&self.dir); } Ok(()) }
}
