//! Forwarding notes: where a file renamed away from a path here lives now, for the descriptors
//! (on any rank) that still know it by the old name.
//!
//! A note is keyed by the old path and the inode: several files leave one path in turn (log
//! rotation), and each descriptor must find its own file's way. Notes that writers hold are kept
//! until the last of them closes; the others only while they are recent, in a bounded cache, so
//! that renames cost no memory without end. A descriptor whose note has gone gets `ENOENT`
//! (never another file's data).

use foldhash::{HashMap, HashMapExt};
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::path::{is_below, rebase};

/// How many notes no writer holds a rank keeps (the most recent ones).
const RECENT_NOTES: usize = 16384;

/// What a descriptor does through a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteUse {
    /// Only finds the file (a cut, a stat, an fsync's publish).
    Look,
    /// Registers as a writer: it will close through the note too, which keeps it until then.
    Hold,
    /// Closes as a writer: the note's count for it is used up.
    Release,
}

/// A note writers hold.
struct Held {
    to: Vec<u8>,
    /// Writers yet to close through this note; it goes when the last one has.
    writers: u32,
}

pub struct Notes {
    held: HashMap<(Vec<u8>, u64), Held>,
    recent: LruCache<(Vec<u8>, u64), Vec<u8>>,
}

/// `path` with the tree `from` at its start replaced by `to`, if it lies in that tree.
fn moved_into(path: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    (path == from || is_below(path, from)).then(|| rebase(path, from, to))
}

impl Notes {
    pub fn new() -> Notes {
        let capacity = NonZeroUsize::new(RECENT_NOTES).expect("a positive capacity");
        Notes { held: HashMap::new(), recent: LruCache::new(capacity) }
    }

    /// Remembers that the file `ino` at `from` now lives at `to`, held by its `writers`.
    pub fn add(&mut self, from: &[u8], ino: u64, to: &[u8], writers: u32) {
        let key = (from.to_vec(), ino);
        if writers > 0 {
            self.recent.pop(&key);
            self.held.insert(key, Held { to: to.to_vec(), writers });
        } else {
            self.held.remove(&key);
            self.recent.put(key, to.to_vec());
        }
    }

    /// The file `ino` came back to `path`: its note there is void. (Left, it would lead away
    /// from the file, and round in a circle if the file then went.)
    pub fn remove(&mut self, path: &[u8], ino: u64) {
        let key = (path.to_vec(), ino);
        self.held.remove(&key);
        self.recent.pop(&key);
    }

    /// Where the file `ino`, known as `path`, lives now.
    pub fn follow(&mut self, path: &[u8], ino: u64, how: NoteUse) -> Option<Vec<u8>> {
        let key = (path.to_vec(), ino);
        if let Some(note) = self.held.get_mut(&key) {
            let to = note.to.clone();
            match how {
                NoteUse::Look => {}
                NoteUse::Hold => note.writers += 1,
                NoteUse::Release => {
                    note.writers = note.writers.saturating_sub(1);
                    if note.writers == 0 {
                        self.held.remove(&key);
                    }
                }
            }
            return Some(to);
        }
        let to = self.recent.get(&key)?.clone();
        if how == NoteUse::Hold {
            self.recent.pop(&key);
            self.held.insert(key, Held { to: to.clone(), writers: 1 });
        }
        Some(to)
    }

    /// A directory `from` moved to `to`: notes that lead into it lead to the new place.
    pub fn retarget(&mut self, from: &[u8], to: &[u8]) {
        for note in self.held.values_mut() {
            if let Some(new) = moved_into(&note.to, from, to) {
                note.to = new;
            }
        }
        for (_, note) in self.recent.iter_mut() {
            if let Some(new) = moved_into(note, from, to) {
                *note = new;
            }
        }
    }

    /// How many notes writers hold.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// How many notes this rank keeps.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held.len() + self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_notes_last_as_long_as_their_writers() {
        let mut notes = Notes::new();
        notes.add(b"/a", 1, b"/b", 2);
        notes.add(b"/c", 2, b"/d", 0);
        assert_eq!(notes.follow(b"/a", 1, NoteUse::Look).as_deref(), Some(&b"/b"[..]));
        assert_eq!(notes.follow(b"/a", 9, NoteUse::Look), None, "each file its own way");
        assert_eq!(notes.follow(b"/c", 2, NoteUse::Hold).as_deref(), Some(&b"/d"[..]), "a writer holds a recent note");
        assert_eq!(notes.held(), 2);
        notes.follow(b"/c", 2, NoteUse::Release);
        notes.follow(b"/a", 1, NoteUse::Release);
        assert_eq!(notes.held(), 1);
        notes.follow(b"/a", 1, NoteUse::Release);
        assert_eq!((notes.held(), notes.len()), (0, 0));
        notes.add(b"/a", 1, b"/b", 1);
        notes.add(b"/c", 1, b"/d", 0);
        notes.remove(b"/a", 1);
        notes.remove(b"/c", 1);
        assert_eq!(notes.len(), 0, "a file back at its old name voids the note there");
    }

    #[test]
    fn recent_notes_are_bounded() {
        let mut notes = Notes::new();
        for i in 0..(RECENT_NOTES as u64 + 100) {
            notes.add(b"/log", i, b"/log.1", 0);
        }
        assert_eq!(notes.len(), RECENT_NOTES);
        assert_eq!(notes.follow(b"/log", 0, NoteUse::Look), None, "the oldest went");
        assert!(notes.follow(b"/log", RECENT_NOTES as u64 + 99, NoteUse::Look).is_some());
    }

    #[test]
    fn notes_follow_a_moved_directory() {
        let mut notes = Notes::new();
        notes.add(b"/x", 1, b"/d/x", 1);
        notes.add(b"/y", 2, b"/dd/y", 0);
        notes.retarget(b"/d", b"/e/f");
        assert_eq!(notes.follow(b"/x", 1, NoteUse::Look).as_deref(), Some(&b"/e/f/x"[..]));
        assert_eq!(notes.follow(b"/y", 2, NoteUse::Look).as_deref(), Some(&b"/dd/y"[..]), "a sibling with the prefix stays");
    }
}
