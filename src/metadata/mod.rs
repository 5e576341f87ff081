//! The metadata this rank owns: one record per path whose hash places it here.
//!
//! Records live in memory for the job's lifetime. The inode number is allocated here at creation
//! and is globally unique (the owner's rank is in its high bits), so chunk placement, which hashes
//! the inode number, never depends on the name.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::rpc::wire::Attr;

/// Bits of the inode number below the creating rank's field.
const INO_RANK_SHIFT: u32 = 40;

pub struct MetaTable {
    entries: HashMap<String, Attr>,
    rank: Rank,
    next_ino: u64,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl MetaTable {
    pub fn new(rank: Rank) -> MetaTable {
        MetaTable { entries: HashMap::new(), rank, next_ino: 1 }
    }

    fn allocate_ino(&mut self) -> u64 {
        let ino = ((self.rank.0 as u64 + 1) << INO_RANK_SHIFT) | self.next_ino;
        self.next_ino += 1;
        ino
    }

    /// `open(2)` on the owner: returns the attributes and the size before any `O_TRUNC`.
    pub fn open(&mut self, path: &str, flags: i32, mode: u32, uid: u32, gid: u32) -> Result<(Attr, u64)> {
        let now = now_ns();
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if let Some(attr) = self.entries.get_mut(path) {
            if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                return Err(Error::Exists);
            }
            let old_size = attr.size;
            if flags & libc::O_TRUNC != 0 && writable && attr.size != 0 {
                attr.size = 0;
                attr.mtime_ns = now;
                attr.ctime_ns = now;
            }
            return Ok((*attr, old_size));
        }
        if flags & libc::O_CREAT == 0 {
            return Err(Error::NotFound);
        }
        let attr = Attr {
            ino: self.allocate_ino(),
            size: 0,
            mode: libc::S_IFREG | (mode & 0o7777),
            uid,
            gid,
            nlink: 1,
            atime_ns: now,
            mtime_ns: now,
            ctime_ns: now,
        };
        self.entries.insert(path.to_owned(), attr);
        Ok((attr, 0))
    }

    pub fn stat(&self, path: &str) -> Result<Attr> {
        self.entries.get(path).copied().ok_or(Error::NotFound)
    }

    /// Records a writer's close or fsync: the size grows to `size` and mtime moves on.
    /// A stale writer of a file since removed or replaced (`ino` differs) gets ENOENT.
    pub fn publish(&mut self, path: &str, ino: u64, size: u64) -> Result<Attr> {
        let attr = self.entries.get_mut(path).filter(|a| a.ino == ino).ok_or(Error::NotFound)?;
        attr.size = attr.size.max(size);
        let now = now_ns();
        attr.mtime_ns = now;
        attr.ctime_ns = now;
        Ok(*attr)
    }

    pub fn unlink(&mut self, path: &str) -> Result<Attr> {
        self.entries.remove(path).ok_or(Error::NotFound)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: i32 = libc::O_CREAT | libc::O_WRONLY;

    #[test]
    fn create_open_exclusive_and_missing() {
        let mut t = MetaTable::new(Rank(2));
        let (a, _) = t.open("/f", CREATE, 0o644, 1, 1).unwrap();
        assert_eq!(a.mode, libc::S_IFREG | 0o644);
        assert_eq!(a.ino >> INO_RANK_SHIFT, 3);
        assert!(matches!(t.open("/f", CREATE | libc::O_EXCL, 0o644, 1, 1), Err(Error::Exists)));
        assert_eq!(t.open("/f", libc::O_RDONLY, 0, 1, 1).unwrap().0.ino, a.ino);
        assert!(matches!(t.open("/g", libc::O_RDONLY, 0, 1, 1), Err(Error::NotFound)));
        let (b, _) = t.open("/g", CREATE, 0o600, 1, 1).unwrap();
        assert_ne!(a.ino, b.ino);
    }

    #[test]
    fn publish_grows_and_truncate_resets() {
        let mut t = MetaTable::new(Rank(0));
        let (a, _) = t.open("/f", CREATE, 0o644, 1, 1).unwrap();
        assert_eq!(t.publish("/f", a.ino, 100).unwrap().size, 100);
        assert_eq!(t.publish("/f", a.ino, 50).unwrap().size, 100, "a smaller writer never shrinks");
        assert!(matches!(t.publish("/f", a.ino + 1, 10), Err(Error::NotFound)));
        let (after, old) = t.open("/f", libc::O_WRONLY | libc::O_TRUNC, 0, 1, 1).unwrap();
        assert_eq!((after.size, old), (0, 100));
        let (ro, _) = t.open("/f", libc::O_RDONLY | libc::O_TRUNC, 0, 1, 1).unwrap();
        assert_eq!(ro.size, 0);
    }

    #[test]
    fn unlink_removes() {
        let mut t = MetaTable::new(Rank(0));
        t.open("/f", CREATE, 0o644, 1, 1).unwrap();
        assert!(t.unlink("/f").is_ok());
        assert!(matches!(t.stat("/f"), Err(Error::NotFound)));
        assert!(matches!(t.unlink("/f"), Err(Error::NotFound)));
    }
}
