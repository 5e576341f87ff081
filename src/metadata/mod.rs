//! The metadata this rank owns: one record per path whose hash places it here.
//!
//! Records live in memory for the job's lifetime. The inode number is allocated here at creation
//! and is globally unique (the owner's rank is in its high bits), so chunk placement, which hashes
//! the inode number, never depends on the name.
//!
//! A directory's entries are spread over the ranks by their own paths. Two structures make the
//! namespace work without a central server:
//! * every record of a directory counts its entries (`children`), kept up to date by the parent
//!   link calls that accompany each create and remove, so `rmdir` can refuse a non-empty one;
//! * every rank indexes the records it owns by parent, sorted by name, so a listing is the union
//!   of one sorted stream per rank, read in pages.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::path::{is_below, join, split_parent};

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
    /// How many times the file was cut (truncated, or opened with `O_TRUNC`). A writer
    /// publishes its size with the count it knows; an older count means some of what it wrote
    /// may have been cut since.
    pub cuts: u64,
    /// Descriptors that have written to the file and not closed yet: while there are any, its
    /// data may lie beyond its size on any rank, and its old names must forward their closes.
    pub writers: u32,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's inode number.
    pub ino: u64,
    /// `DT_REG` or `DT_DIR`.
    pub kind: u8,
    /// The entry's name within its directory: bytes, as it was created (never empty, and
    /// without `/` or NUL).
    pub name: Vec<u8>,
}

/// Bits of the inode number below the creating rank's field.
const INO_RANK_SHIFT: u32 = 40;

/// One record: attributes, and for a directory the number of its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub attr: Attr,
    /// Signed: a remove's parent update may arrive before the failure that undoes it, so the
    /// count can dip below zero for a moment; saturating at zero would lose the undo.
    pub children: i64,
    /// Held by a rename between taking it and moving it: it still answers reads, and every
    /// change waits (`Error::Locked`), so that what the rename installs elsewhere is what it took.
    pub locked: bool,
}

impl Record {
    pub fn is_dir(&self) -> bool {
        self.attr.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// What `open` found or made.
#[derive(Clone, Copy, Debug)]
pub struct Opened {
    pub attr: Attr,
    /// The size before `O_TRUNC` cut it.
    pub old_size: u64,
    pub created: bool,
}

/// What a writer's publish did.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// The size was raised (if it was larger); the attributes now.
    Done(Attr),
    /// The file was renamed while the writer had it open: its record lives at this path now.
    Moved(Vec<u8>),
    /// The file was cut after the writer last learned its cut count, which is `cuts` now: part
    /// of the size published may have been cut, so nothing was published.
    Cut { cuts: u64 },
}

/// Where the file that left a path lives now, for the writers that still hold the old name.
struct Forward {
    to: Vec<u8>,
    /// Writers yet to close through this note; it goes when the last one has.
    writers: u32,
}

pub struct MetaTable {
    records: HashMap<Vec<u8>, Record>,
    /// Files renamed away from a path here: (old path, inode) -> new path. A writer that still
    /// holds the old name publishes its size through this. Keyed by inode too: several files
    /// leave one path in turn (log rotation), and each writer must find its own file's way.
    moved: HashMap<(Vec<u8>, u64), Forward>,
    /// Parent path -> names of the records here in that directory.
    index: HashMap<Vec<u8>, BTreeMap<Vec<u8>, ()>>,
    rank: Rank,
    next_ino: u64,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The inode number of "/", the same on every rank.
pub const ROOT_INO: u64 = 1;

impl MetaTable {
    /// `owns_root`: this rank holds the record of "/".
    pub fn new(rank: Rank, owns_root: bool) -> MetaTable {
        let mut table = MetaTable { records: HashMap::new(), moved: HashMap::new(), index: HashMap::new(), rank, next_ino: 1 };
        if owns_root {
            let now = now_ns();
            // SAFETY: getuid/getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let attr = Attr {
                ino: ROOT_INO,
                size: 0,
                mode: libc::S_IFDIR | 0o755,
                uid,
                gid,
                nlink: 2,
                atime_ns: now,
                mtime_ns: now,
                ctime_ns: now,
                cuts: 0,
                writers: 0,
            };
            table.records.insert(b"/".to_vec(), Record { attr, children: 0, locked: false });
        }
        table
    }

    fn allocate_ino(&mut self) -> u64 {
        let ino = ((self.rank.0 as u64 + 1) << INO_RANK_SHIFT) | self.next_ino;
        self.next_ino += 1;
        ino
    }

    fn insert(&mut self, path: &[u8], record: Record) -> Option<Record> {
        if let Some((parent, name)) = split_parent(path) {
            self.index.entry(parent.to_vec()).or_default().insert(name.to_vec(), ());
        }
        self.records.insert(path.to_owned(), record)
    }

    fn remove(&mut self, path: &[u8]) -> Option<Record> {
        let record = self.records.remove(path)?;
        if let Some((parent, name)) = split_parent(path) {
            if let Some(names) = self.index.get_mut(parent) {
                names.remove(name);
                if names.is_empty() {
                    self.index.remove(parent);
                }
            }
        }
        Some(record)
    }

    fn new_attr(&mut self, mode: u32, uid: u32, gid: u32) -> Attr {
        let now = now_ns();
        let nlink = if mode & libc::S_IFMT == libc::S_IFDIR { 2 } else { 1 };
        Attr { ino: self.allocate_ino(), size: 0, mode, uid, gid, nlink, atime_ns: now, mtime_ns: now, ctime_ns: now, cuts: 0, writers: 0 }
    }

    /// `open(2)` on the owner.
    pub fn open(&mut self, path: &[u8], flags: i32, mode: u32, uid: u32, gid: u32) -> Result<Opened> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if let Some(record) = self.records.get_mut(path) {
            if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                return Err(Error::Exists);
            }
            let is_dir = record.is_dir();
            if is_dir && (writable || flags & libc::O_TRUNC != 0) {
                return Err(Error::IsDirectory);
            }
            if !is_dir && flags & libc::O_DIRECTORY != 0 {
                return Err(Error::NotDirectory);
            }
            if record.locked && flags & libc::O_TRUNC != 0 && writable {
                return Err(Error::Locked);
            }
            let attr = &mut record.attr;
            let old_size = attr.size;
            // Cut even an empty file: its writers may hold data it does not know of yet.
            if flags & libc::O_TRUNC != 0 && writable {
                let now = now_ns();
                attr.size = 0;
                attr.cuts += 1;
                attr.mtime_ns = now;
                attr.ctime_ns = now;
            }
            return Ok(Opened { attr: *attr, old_size, created: false });
        }
        if flags & libc::O_CREAT == 0 {
            return Err(Error::NotFound);
        }
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Error::InvalidArgument("O_CREAT with O_DIRECTORY"));
        }
        let attr = self.new_attr(libc::S_IFREG | (mode & 0o7777), uid, gid);
        self.insert(path, Record { attr, children: 0, locked: false });
        Ok(Opened { attr, old_size: 0, created: true })
    }

    pub fn mkdir(&mut self, path: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        if self.records.contains_key(path) {
            return Err(Error::Exists);
        }
        let attr = self.new_attr(libc::S_IFDIR | (mode & 0o7777), uid, gid);
        self.insert(path, Record { attr, children: 0, locked: false });
        Ok(attr)
    }

    pub fn stat(&self, path: &[u8]) -> Result<Record> {
        self.records.get(path).copied().ok_or(Error::NotFound)
    }

    /// Records a writer's close or fsync: the size grows to `size` and mtime moves on.
    /// `Ok(Err(new_path))`: the file was renamed away from `path`; publish there instead. A stale
    /// writer of a file since removed or replaced (`ino` differs) gets ENOENT.
    pub fn publish(&mut self, path: &[u8], ino: u64, size: u64, cuts: u64, release: bool) -> Result<Published> {
        let attr = match self.writer_attr(path, ino, release)? {
            Ok(attr) => attr,
            Err(elsewhere) => return Ok(elsewhere),
        };
        if cuts < attr.cuts {
            return Ok(Published::Cut { cuts: attr.cuts });
        }
        attr.size = attr.size.max(size);
        if release {
            attr.writers = attr.writers.saturating_sub(1);
        }
        let now = now_ns();
        attr.mtime_ns = now;
        attr.ctime_ns = now;
        Ok(Published::Done(*attr))
    }

    /// Counts a descriptor that is about to write to the file `ino` at `path`: until it closes,
    /// the file's data may lie beyond its size.
    pub fn register(&mut self, path: &[u8], ino: u64) -> Result<Published> {
        let attr = match self.writer_attr(path, ino, false)? {
            Ok(attr) => attr,
            Err(elsewhere) => return Ok(elsewhere),
        };
        attr.writers += 1;
        Ok(Published::Done(*attr))
    }

    /// The attributes of the file `ino` at `path`, for one of its writers to change; or where
    /// the writer goes on (`Published::Moved`) when the file left `path`.
    fn writer_attr(&mut self, path: &[u8], ino: u64, release: bool) -> Result<std::result::Result<&mut Attr, Published>> {
        if !self.records.get(path).is_some_and(|r| r.attr.ino == ino) {
            return self.forward(path, ino, release).map(Err);
        }
        Ok(Ok(&mut self.unlocked_mut(path)?.attr))
    }

    /// Where a writer of `ino` that knows it as `path` goes now; a writer's close (`release`)
    /// uses up the note's count for it.
    fn forward(&mut self, path: &[u8], ino: u64, release: bool) -> Result<Published> {
        let key = (path.to_vec(), ino);
        let Some(note) = self.moved.get_mut(&key) else { return Err(Error::NotFound) };
        let to = note.to.clone();
        if release {
            note.writers = note.writers.saturating_sub(1);
            if note.writers == 0 {
                self.moved.remove(&key);
            }
        } else {
            // A writer that registers through the old name will close through it too.
            note.writers += 1;
        }
        Ok(Published::Moved(to))
    }

    /// Remembers that the file `ino` at `from` now lives at `to`, for its `writers` (none: nothing
    /// to remember, and no note, so that renames cost no memory once their writers have closed).
    pub fn note_moved(&mut self, from: &[u8], ino: u64, to: &[u8], writers: u32) {
        if writers > 0 {
            self.moved.insert((from.to_vec(), ino), Forward { to: to.to_vec(), writers });
        }
    }

    /// How many forwarding notes this rank keeps.
    #[cfg(test)]
    pub fn forwards(&self) -> usize {
        self.moved.len()
    }

    /// Sets the size of a file; returns its attributes and the size before.
    pub fn truncate(&mut self, path: &[u8], len: u64) -> Result<(Attr, u64)> {
        let record = self.unlocked_mut(path)?;
        if record.is_dir() {
            return Err(Error::IsDirectory);
        }
        let attr = &mut record.attr;
        let old = attr.size;
        let now = now_ns();
        attr.size = len;
        attr.cuts += 1;
        attr.mtime_ns = now;
        attr.ctime_ns = now;
        Ok((*attr, old))
    }

    pub fn unlink(&mut self, path: &[u8]) -> Result<Attr> {
        match self.records.get(path) {
            None => Err(Error::NotFound),
            Some(r) if r.locked => Err(Error::Locked),
            Some(r) if r.is_dir() => Err(Error::IsDirectory),
            Some(_) => Ok(self.remove(path).map(|r| r.attr).ok_or(Error::NotFound)?),
        }
    }

    pub fn rmdir(&mut self, path: &[u8]) -> Result<Attr> {
        if path == b"/" {
            return Err(Error::Busy);
        }
        match self.records.get(path) {
            None => Err(Error::NotFound),
            Some(r) if r.locked => Err(Error::Locked),
            Some(r) if !r.is_dir() => Err(Error::NotDirectory),
            Some(r) if r.children > 0 => Err(Error::NotEmpty),
            Some(_) => Ok(self.remove(path).map(|r| r.attr).ok_or(Error::NotFound)?),
        }
    }

    /// Adjusts a directory's entry count by `delta`, and with `touch` its mtime: the parent side
    /// of every create, remove and rename.
    pub fn link(&mut self, dir: &[u8], delta: i64, touch: bool) -> Result<()> {
        let record = self.unlocked_mut(dir)?;
        if !record.is_dir() {
            return Err(Error::NotDirectory);
        }
        record.children = record.children.wrapping_add(delta);
        if touch {
            let now = now_ns();
            record.attr.mtime_ns = now;
            record.attr.ctime_ns = now;
        }
        Ok(())
    }

    /// Locks a record for a rename and returns it (the first step of a rename).
    pub fn take(&mut self, path: &[u8]) -> Result<Record> {
        if path == b"/" {
            return Err(Error::Busy);
        }
        let record = self.unlocked_mut(path)?;
        record.locked = true;
        Ok(*record)
    }

    /// The last step of a rename of the file or directory `ino` at `path`, which it locked: with
    /// `to`, the rename installed it there, and the record goes (leaving a note for its writers);
    /// without, the rename failed, and the record is unlocked.
    pub fn release(&mut self, path: &[u8], ino: u64, to: Option<&[u8]>) -> Result<()> {
        let record = self.records.get_mut(path).filter(|r| r.attr.ino == ino && r.locked).ok_or(Error::NotFound)?;
        record.locked = false;
        let Some(to) = to else { return Ok(()) };
        let record = self.remove(path).ok_or(Error::NotFound)?;
        if !record.is_dir() {
            self.note_moved(path, ino, to, record.attr.writers);
        }
        Ok(())
    }

    /// The record at `path`, to change: `Error::Locked` while a rename holds it.
    fn unlocked_mut(&mut self, path: &[u8]) -> Result<&mut Record> {
        match self.records.get_mut(path) {
            None => Err(Error::NotFound),
            Some(r) if r.locked => Err(Error::Locked),
            Some(r) => Ok(r),
        }
    }

    /// Puts a record at `path` (the second half of a rename), replacing what is there by POSIX
    /// rules; returns the replaced record.
    pub fn install(&mut self, path: &[u8], record: Record) -> Result<Option<Record>> {
        if let Some(existing) = self.records.get(path) {
            // Its own rename holds it: waiting could deadlock two renames onto each other.
            if existing.locked {
                return Err(Error::Busy);
            }
            match (record.is_dir(), existing.is_dir()) {
                (false, true) => return Err(Error::IsDirectory),
                (true, false) => return Err(Error::NotDirectory),
                (true, true) if existing.children > 0 => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        let mut record = record;
        record.attr.ctime_ns = now_ns();
        record.locked = false;
        Ok(self.insert(path, record))
    }

    /// How many bytes the longest path below `dir` held here adds to `dir` (0 if none).
    pub fn span_below(&self, dir: &[u8]) -> usize {
        self.records.keys().filter(|p| is_below(p, dir)).map(|p| p.len() - dir.len()).max().unwrap_or(0)
    }

    /// Removes every record strictly below directory `dir` and returns them.
    pub fn take_subtree(&mut self, dir: &[u8]) -> Vec<(Vec<u8>, Record)> {
        let paths: Vec<Vec<u8>> = self.records.keys().filter(|p| is_below(p, dir)).cloned().collect();
        paths.into_iter().filter_map(|p| self.remove(&p).map(|r| (p, r))).collect()
    }

    /// Inserts records moved here from another place (a directory rename); nothing is replaced.
    pub fn install_moved(&mut self, path: &[u8], record: Record) {
        self.insert(path, record);
    }

    /// The entries of `dir` held here, in byte order of their names, after `after`, up to `max`
    /// of them.
    pub fn list(&self, dir: &[u8], after: &[u8], max: usize) -> Vec<DirEntry> {
        let Some(names) = self.index.get(dir) else { return Vec::new() };
        let range = names.range::<[u8], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded));
        range
            .take(max)
            .filter_map(|(name, ())| {
                let record = self.records.get(&join(dir, name))?;
                let kind = if record.is_dir() { libc::DT_DIR } else { libc::DT_REG };
                Some(DirEntry { ino: record.attr.ino, kind, name: name.clone() })
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests;
