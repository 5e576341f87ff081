//! The metadata this rank owns: one record per path whose hash places it here.
//!
//! Records live in memory for the job's lifetime. The inode number is allocated here at creation
//! and is globally unique (the owner's rank is in its high bits), so chunk placement, which hashes
//! the inode number, never depends on the name.
//!
//! A directory's entries are spread over the ranks by their own paths. Two structures make the
//! namespace work without a central server:
//! * a directory's owner knows which ranks hold entries of it ([`members`]): a rank enlists
//!   once, before its first entry there, so creates and removes need no word with the owner,
//!   and `rmdir` asks only the holders whether they still have entries;
//! * every rank indexes the records it owns by parent, sorted by name, so a listing is the union
//!   of one sorted stream per rank, read in pages.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::path::{is_below, join, split_parent};

mod members;
pub mod mirror;
mod notes;
use members::Members;
use mirror::Mirror;
use notes::{NoteUse, Notes};

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
    /// Descriptors that have written to the file and not closed yet, counting the one that
    /// created it for writing from the start: while there are any, its data may lie beyond its
    /// size on any rank, and its old names must forward their closes.
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

/// One record: attributes, and whether a rename or an rmdir holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub attr: Attr,
    /// Held by a rename between taking it and moving it, by an rmdir while it drains the
    /// holders, or by a cut while the file's chunks are cut: it still answers reads, and every
    /// change waits (`Error::Locked`), so that what the rename installs elsewhere is what it
    /// took, no entry is made while rmdir asks, and no writer that missed the cut measures the
    /// chunks before they are cut.
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

/// What a cut did.
#[derive(Debug, PartialEq, Eq)]
pub enum Truncated {
    /// Cut: the attributes now, and the size before.
    Done { attr: Attr, old_size: u64 },
    /// The file was renamed away from the path the cut named: it lives at this path now.
    Moved(Vec<u8>),
}

pub struct MetaTable {
    records: HashMap<Vec<u8>, Record>,
    /// Files renamed away from a path here, for the descriptors that still know the old name.
    notes: Notes,
    /// Parent path -> names of the records here in that directory. Ordered by parent, so that
    /// the directories at and below a path are one range (see `below`).
    index: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, ()>>,
    /// Which ranks hold entries of the directories here, and which this rank holds entries of.
    members: Members,
    /// The copy that same-node ranks read, if it could be made.
    mirror: Option<Mirror>,
    /// Paths new in the table that the mirror does not hold yet (see [`MetaTable::catch_up_shared`]).
    unshared: Vec<Vec<u8>>,
    rank: Rank,
    nranks: u32,
    next_ino: u64,
}

/// What `open` with `flags` demands of an existing file or directory with attributes `attr`.
pub fn check_open(attr: &Attr, flags: i32) -> Result<()> {
    let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
    let is_dir = attr.mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && (writable || flags & libc::O_TRUNC != 0) {
        return Err(Error::IsDirectory);
    }
    if !is_dir && flags & libc::O_DIRECTORY != 0 {
        return Err(Error::NotDirectory);
    }
    Ok(())
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The inode number of "/", the same on every rank.
pub const ROOT_INO: u64 = 1;

impl MetaTable {
    /// The table of `rank` among `nranks`; `owns_root`: this rank holds the record of "/".
    pub fn new(rank: Rank, nranks: u32, owns_root: bool) -> MetaTable {
        let mut table = MetaTable {
            records: HashMap::new(),
            notes: Notes::new(),
            index: BTreeMap::new(),
            members: Members::default(),
            mirror: None,
            unshared: Vec::new(),
            rank,
            nranks,
            next_ino: 1,
        };
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
            table.records.insert(b"/".to_vec(), Record { attr, locked: false });
        }
        table
    }

    /// An inode number of this rank's, for a file it creates whose record another rank owns (see
    /// `Request::Open`): no record of this table will ever have it.
    pub fn reserve_ino(&mut self) -> u64 {
        self.allocate_ino()
    }

    fn allocate_ino(&mut self) -> u64 {
        let ino = crate::ids::InodeId::made_by(self.rank, self.next_ino).0;
        self.next_ino += 1;
        ino
    }

    /// Keeps a copy of every record in `mirror` from now on, for same-node ranks to read.
    pub fn share(&mut self, mut mirror: Mirror) {
        self.unshared.clear();
        for (path, record) in &self.records {
            mirror.put(path, &record.attr);
        }
        self.mirror = Some(mirror);
    }

    /// Stops keeping the shared copy, and lets go of it (see `Mirror`'s drop).
    pub fn stop_sharing(&mut self) {
        self.unshared.clear();
        self.mirror = None;
    }

    /// Copies the records new since the last call into the mirror. A new path may wait for
    /// this until after its creation is answered: a reader that misses a path in the mirror
    /// asks its owner, so the mirror holding a path late is never wrong, and the reply does
    /// not wait for the copy (a slot's cache lines, a quarter of a KiB of shared memory). Every
    /// other change of the mirror catches up first, so the mirror sees the changes in the
    /// table's order; the server calls this right after it answers.
    pub fn catch_up_shared(&mut self) {
        let Some(mirror) = &mut self.mirror else { return };
        for path in self.unshared.drain(..) {
            if let Some(record) = self.records.get(&path) {
                mirror.put(&path, &record.attr);
            }
        }
    }

    /// Copies the attributes of `path` into the mirror: every change of a record's attributes
    /// ends with this, before the change is answered.
    fn mirrored(&mut self, path: &[u8]) {
        self.catch_up_shared();
        if let (Some(mirror), Some(record)) = (&mut self.mirror, self.records.get(path)) {
            mirror.put(path, &record.attr);
        }
    }

    fn insert(&mut self, path: &[u8], record: Record) -> Option<Record> {
        if let Some((parent, name)) = split_parent(path) {
            // The parent's key is copied only for its first entry.
            match self.index.get_mut(parent) {
                Some(names) => names.insert(name.to_vec(), ()),
                None => self.index.entry(parent.to_vec()).or_default().insert(name.to_vec(), ()),
            };
        }
        let attr = record.attr;
        let previous = self.records.insert(path.to_owned(), record);
        if previous.is_none() {
            // No slot holds the path: it may appear in the mirror later, and its slot is
            // fetched meanwhile.
            if let Some(mirror) = &self.mirror {
                mirror.prefetch(path);
                self.unshared.push(path.to_owned());
            }
        } else if self.mirror.is_some() {
            // Its slot holds the replaced record: changed before the change is answered.
            self.catch_up_shared();
            if let Some(mirror) = &mut self.mirror {
                mirror.put(path, &attr);
            }
        }
        previous
    }

    fn remove(&mut self, path: &[u8]) -> Option<Record> {
        let record = self.records.remove(path)?;
        self.catch_up_shared();
        if let Some(mirror) = &mut self.mirror {
            mirror.remove(path);
        }
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

    /// The attributes of a new entry; `ino` 0 for an inode number of this table's.
    fn new_attr(&mut self, ino: u64, mode: u32, uid: u32, gid: u32) -> Attr {
        let now = now_ns();
        let nlink = if mode & libc::S_IFMT == libc::S_IFDIR { 2 } else { 1 };
        let ino = if ino == 0 { self.allocate_ino() } else { ino };
        Attr { ino, size: 0, mode, uid, gid, nlink, atime_ns: now, mtime_ns: now, ctime_ns: now, cuts: 0, writers: 0 }
    }

    /// `open(2)` on the owner. A file it creates gets the inode number `ino`, which its creating
    /// rank made (see [`MetaTable::reserve_ino`]), or one of this table's if `ino` is 0.
    pub fn open(&mut self, path: &[u8], flags: i32, mode: u32, uid: u32, gid: u32, ino: u64) -> Result<Opened> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if let Some(record) = self.records.get_mut(path) {
            if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                return Err(Error::Exists);
            }
            check_open(&record.attr, flags)?;
            if record.locked && flags & libc::O_TRUNC != 0 && writable {
                return Err(Error::Locked);
            }
            let cut = flags & libc::O_TRUNC != 0 && writable;
            // Cut even an empty file: its writers may hold data it does not know of yet. Locked
            // until its chunks are cut too (`unlock_cut`).
            if cut {
                record.locked = true;
            }
            let attr = &mut record.attr;
            let old_size = attr.size;
            if cut {
                let now = now_ns();
                attr.size = 0;
                attr.cuts += 1;
                attr.mtime_ns = now;
                attr.ctime_ns = now;
            }
            let attr = *attr;
            // Only a cut changes anything same-node readers see.
            if flags & libc::O_TRUNC != 0 && writable {
                self.mirrored(path);
            }
            return Ok(Opened { attr, old_size, created: false });
        }
        if flags & libc::O_CREAT == 0 {
            return Err(Error::NotFound);
        }
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Error::InvalidArgument("O_CREAT with O_DIRECTORY"));
        }
        let mut attr = self.new_attr(ino, libc::S_IFREG | (mode & 0o7777), uid, gid);
        // The descriptor that creates a file for writing is its first writer from the start, so
        // that its first write needs no registration of its own (`register`).
        attr.writers = u32::from(writable);
        self.insert(path, Record { attr, locked: false });
        Ok(Opened { attr, old_size: 0, created: true })
    }

    pub fn mkdir(&mut self, path: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        if self.records.contains_key(path) {
            return Err(Error::Exists);
        }
        let attr = self.new_attr(0, libc::S_IFDIR | (mode & 0o7777), uid, gid);
        self.insert(path, Record { attr, locked: false });
        Ok(attr)
    }

    pub fn stat(&self, path: &[u8]) -> Result<Record> {
        self.records.get(path).copied().ok_or(Error::NotFound)
    }

    /// Records a writer's close (`release`) or fsync: the size grows to `size` and mtime moves
    /// on; or where the file lives now, when it was renamed away from `path`. A stale writer of
    /// a file since removed or replaced (`ino` differs, and no note) gets ENOENT.
    pub fn publish(&mut self, path: &[u8], ino: u64, size: u64, cuts: u64, release: bool) -> Result<Published> {
        let how = if release { NoteUse::Release } else { NoteUse::Look };
        let attr = match self.file_of(path, ino, how)? {
            Ok(attr) => attr,
            Err(to) => return Ok(Published::Moved(to)),
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
        let attr = *attr;
        self.mirrored(path);
        Ok(Published::Done(attr))
    }

    /// Counts a descriptor that is about to write to the file `ino` at `path`: until it closes,
    /// the file's data may lie beyond its size.
    pub fn register(&mut self, path: &[u8], ino: u64) -> Result<Published> {
        let attr = match self.file_of(path, ino, NoteUse::Hold)? {
            Ok(attr) => attr,
            Err(to) => return Ok(Published::Moved(to)),
        };
        attr.writers += 1;
        let attr = *attr;
        self.mirrored(path);
        Ok(Published::Done(attr))
    }

    /// Releases a writer that the open creating the file `ino` at `path` counted and that closed
    /// without having written: one writer less, and nothing else changes (no size, no times).
    pub fn unregister(&mut self, path: &[u8], ino: u64) -> Result<Published> {
        let attr = match self.file_of(path, ino, NoteUse::Release)? {
            Ok(attr) => attr,
            Err(to) => return Ok(Published::Moved(to)),
        };
        attr.writers = attr.writers.saturating_sub(1);
        let attr = *attr;
        self.mirrored(path);
        Ok(Published::Done(attr))
    }

    /// The attributes of the file `ino` at `path`, for a descriptor of it to change; or the path
    /// it lives at now (`Err`) when it was renamed away from `path`.
    fn file_of(&mut self, path: &[u8], ino: u64, how: NoteUse) -> Result<std::result::Result<&mut Attr, Vec<u8>>> {
        if !self.records.get(path).is_some_and(|r| r.attr.ino == ino) {
            return self.notes.follow(path, ino, how).map(Err).ok_or(Error::NotFound);
        }
        Ok(Ok(&mut self.unlocked_mut(path)?.attr))
    }

    /// The attributes of the file `ino` if it lives at `path` (and not only by a note that it
    /// was renamed away from there).
    pub fn file_at(&self, path: &[u8], ino: u64) -> Option<&Attr> {
        self.records.get(path).map(|r| &r.attr).filter(|a| a.ino == ino)
    }

    /// Remembers that the file `ino` at `from` now lives at `to`, for the descriptors that still
    /// know it as `from`; its `writers` hold the note until they close.
    pub fn note_moved(&mut self, from: &[u8], ino: u64, to: &[u8], writers: u32) {
        self.notes.add(from, ino, to, writers);
    }

    /// The directory `from` moved to `to`: notes that lead into it lead there now.
    pub fn tree_moved(&mut self, from: &[u8], to: &[u8]) {
        self.notes.retarget(from, to);
    }

    /// How many notes writers hold on this rank.
    #[cfg(test)]
    pub fn forwards(&self) -> usize {
        self.notes.held()
    }

    /// Sets the size of the file at `path` (or, with an `ino` other than 0, of that file, which
    /// a descriptor may know by an old name); returns its attributes and the size before, or
    /// where it lives now. The record stays locked until its chunks are cut (`unlock_cut`).
    pub fn truncate(&mut self, path: &[u8], ino: u64, len: u64) -> Result<Truncated> {
        let record = match ino {
            0 => self.unlocked_mut(path)?,
            _ => match self.file_of(path, ino, NoteUse::Look)? {
                Ok(_) => self.unlocked_mut(path)?,
                Err(to) => return Ok(Truncated::Moved(to)),
            },
        };
        if record.is_dir() {
            return Err(Error::IsDirectory);
        }
        record.locked = true;
        let attr = &mut record.attr;
        let old_size = attr.size;
        let now = now_ns();
        attr.size = len;
        attr.cuts += 1;
        attr.mtime_ns = now;
        attr.ctime_ns = now;
        let attr = *attr;
        self.mirrored(path);
        Ok(Truncated::Done { attr, old_size })
    }

    pub fn unlink(&mut self, path: &[u8]) -> Result<Attr> {
        match self.records.get(path) {
            None => Err(Error::NotFound),
            Some(r) if r.locked => Err(Error::Locked),
            Some(r) if r.is_dir() => Err(Error::IsDirectory),
            Some(_) => Ok(self.remove(path).map(|r| r.attr).ok_or(Error::NotFound)?),
        }
    }

    /// Ends the lock of a cut of the file `ino` at `path` (by `truncate`, or an `open` with
    /// `O_TRUNC`): its chunks are cut, or the cut of them failed.
    pub fn unlock_cut(&mut self, path: &[u8], ino: u64) {
        if let Some(record) = self.records.get_mut(path).filter(|r| r.attr.ino == ino) {
            record.locked = false;
        }
    }

    /// The first step of removing directory `path` (an rmdir, or a rename onto it): locks it and
    /// returns its holders, which must all be drained before it may go.
    pub fn lock_for_removal(&mut self, path: &[u8]) -> Result<Vec<u32>> {
        if path == b"/" {
            return Err(Error::Busy);
        }
        let record = self.unlocked_mut(path)?;
        if !record.is_dir() {
            return Err(Error::NotDirectory);
        }
        record.locked = true;
        Ok(self.members.holders(path))
    }

    /// The last step of removing directory `path`: the holders in `drained` have no entries of
    /// it left; with `all` (every holder drained) it goes and its attributes are returned,
    /// otherwise it is unlocked and stays (`ENOTEMPTY`).
    pub fn finish_removal(&mut self, path: &[u8], drained: &[u32], all: bool) -> Result<Attr> {
        self.members.drained(path, drained);
        let record = self.records.get_mut(path).filter(|r| r.locked).ok_or(Error::NotFound)?;
        record.locked = false;
        if !all {
            return Err(Error::NotEmpty);
        }
        self.members.forget_dir(path);
        self.remove(path).map(|r| r.attr).ok_or(Error::NotFound)
    }

    /// Stamps directory `dir`'s mtime and ctime: an entry was made or removed in it. (A rename
    /// or rmdir holding it does not stop this: they keep no copy of its times.)
    pub fn touch(&mut self, dir: &[u8]) -> Result<()> {
        let record = self.records.get_mut(dir).ok_or(Error::NotFound)?;
        if !record.is_dir() {
            return Err(Error::NotDirectory);
        }
        let now = now_ns();
        record.attr.mtime_ns = now;
        record.attr.ctime_ns = now;
        self.mirrored(dir);
        Ok(())
    }

    /// Counts `rank` among the holders of directory `dir` (owned here), before it makes its first
    /// entry there; `Error::Locked` while an rmdir or a rename holds `dir`.
    pub fn enlist(&mut self, dir: &[u8], rank: u32) -> Result<()> {
        if !self.unlocked_mut(dir)?.is_dir() {
            return Err(Error::NotDirectory);
        }
        self.members.add_holder(dir, rank);
        Ok(())
    }

    /// True if some rank may hold an entry of directory `dir`: its removal must ask them.
    pub fn is_held(&self, dir: &[u8]) -> bool {
        self.members.is_held(dir)
    }

    /// The ranks that hold entries of directory `dir` (a superset: a holder may have none left),
    /// in rank order: the ranks a listing of it must ask.
    pub fn holders_of(&self, dir: &[u8]) -> Result<(Attr, Vec<u32>)> {
        match self.records.get(dir) {
            None => Err(Error::NotFound),
            Some(r) if !r.is_dir() => Err(Error::NotDirectory),
            Some(r) => {
                let mut ranks = self.members.holders(dir);
                ranks.sort_unstable();
                Ok((r.attr, ranks))
            }
        }
    }

    /// True if this rank may make entries of `dir` without enlisting first.
    pub fn is_enlisted(&self, dir: &[u8]) -> bool {
        self.members.is_enlisted(dir)
    }

    /// A create on this rank waits for its enlistment in `dir`: drains of `dir` see it.
    pub fn start_enlisting(&mut self, dir: &[u8]) {
        self.members.start_enlisting(dir);
    }

    /// The enlistment in `dir` ended (`ok`: it succeeded); the create goes on at once.
    pub fn end_enlisting(&mut self, dir: &[u8], ok: bool) {
        self.members.end_enlisting(dir, ok);
    }

    /// This rank's side of an rmdir of `dir`: `ENOTEMPTY` while it holds or is making an entry
    /// of it; otherwise it stops being a holder.
    pub fn drain(&mut self, dir: &[u8]) -> Result<()> {
        let has_entries = self.index.contains_key(dir);
        self.members.drain(dir, has_entries)
    }

    /// Locks a record for a rename and returns it (the first step of a rename). A directory is
    /// locked only for a rename that fenced its trees (`tree`); else it is returned unlocked.
    pub fn take(&mut self, path: &[u8], tree: bool) -> Result<Record> {
        if path == b"/" {
            return Err(Error::Busy);
        }
        let record = self.unlocked_mut(path)?;
        record.locked = tree || !record.is_dir();
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
        if record.is_dir() {
            self.members.forget_dir(path);
        } else {
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
    /// rules; returns the replaced record. A directory there must have been removed first
    /// (`lock_for_removal`); a directory installed counts every rank as a holder, since its
    /// entries move to the owners of their new paths.
    pub fn install(&mut self, path: &[u8], record: Record) -> Result<Option<Record>> {
        if let Some(existing) = self.records.get(path) {
            // Its own rename holds it: waiting could deadlock two renames onto each other.
            if existing.locked {
                return Err(Error::Busy);
            }
            match (record.is_dir(), existing.is_dir()) {
                (false, true) => return Err(Error::IsDirectory),
                (true, false) => return Err(Error::NotDirectory),
                (true, true) => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        let mut record = record;
        record.attr.ctime_ns = now_ns();
        record.locked = false;
        self.notes.remove(path, record.attr.ino);
        if record.is_dir() {
            self.members.all_hold(path, self.nranks);
        }
        Ok(self.insert(path, record))
    }

    /// The paths of the records here strictly below directory `dir`, found through the index
    /// of their parents: the parents at and below `dir` are one range of it, so this costs the
    /// size of the subtree, never a scan of every record.
    fn below(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        let with_slash = if dir == b"/" { b"/".to_vec() } else { [dir, b"/"].concat() };
        // "/" is its own range: every parent starts with "/".
        let at = self.index.get_key_value(dir).filter(|_| dir != b"/").into_iter();
        let under = self
            .index
            .range::<[u8], _>((std::ops::Bound::Included(with_slash.as_slice()), std::ops::Bound::Unbounded))
            .take_while(|(parent, _)| parent.starts_with(&with_slash));
        at.chain(under).flat_map(|(parent, names)| names.keys().map(move |name| join(parent, name))).collect()
    }

    /// How many bytes the longest path below `dir` held here adds to `dir` (0 if none).
    pub fn span_below(&self, dir: &[u8]) -> usize {
        self.below(dir).iter().map(|p| p.len() - dir.len()).max().unwrap_or(0)
    }

    /// Removes every record strictly below directory `dir` and returns them; this rank's
    /// enlistments in `dir` and below go too (the tree moves on every rank at once).
    pub fn take_subtree(&mut self, dir: &[u8]) -> Vec<(Vec<u8>, Record)> {
        self.members.forget_tree(|d| d == dir || is_below(d, dir));
        let paths = self.below(dir);
        let moved: Vec<_> = paths.into_iter().filter_map(|p| self.remove(&p).map(|r| (p, r))).collect();
        for (path, record) in &moved {
            if record.is_dir() {
                self.members.forget_dir(path);
            }
        }
        moved
    }

    /// Inserts records moved here from another place (a directory rename); nothing is replaced.
    /// This rank holds an entry of the record's directory now; a moved directory counts every
    /// rank as a holder.
    pub fn install_moved(&mut self, path: &[u8], record: Record) {
        self.notes.remove(path, record.attr.ino);
        if let Some((parent, _)) = split_parent(path) {
            self.members.end_enlisting(parent, true);
        }
        if record.is_dir() {
            self.members.all_hold(path, self.nranks);
        }
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
