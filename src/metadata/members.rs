//! Directory membership: which ranks hold entries of a directory, so that a create or remove
//! needs no word with the directory's owner, and `rmdir` asks only those ranks.
//!
//! A rank that makes an entry in directory `d` first **enlists** with `d`'s owner, once: the
//! owner checks that `d` is a directory and adds the rank to `d`'s holders. From then on the rank
//! makes and removes entries of `d` on its own (it stays enlisted when its last entry goes). An
//! `rmdir` of `d` locks `d` and **drains** every holder: a holder with no entry of `d` and no
//! create of one in progress leaves the holders and answers yes; any other answers `ENOTEMPTY`,
//! and the directory stays. While `d` is locked, enlisting waits, so no create slips in between.
//!
//! Holders are a superset of the ranks with entries: a holder without entries only costs `rmdir`
//! one question. After a directory rename, whose entries moved to new owners, every rank counts
//! as a holder of every moved directory.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashSet};

use crate::error::{Error, Result};

#[derive(Default)]
pub struct Members {
    /// Of directories owned here: the ranks that may hold entries of them.
    holders: HashMap<Vec<u8>, BTreeSet<u32>>,
    /// Directories this rank is a holder of.
    enlisted: HashSet<Vec<u8>>,
    /// Creates waiting for their enlistment, per directory: a drain must not let them through.
    pending: HashMap<Vec<u8>, u32>,
}

impl Members {
    pub fn is_enlisted(&self, dir: &[u8]) -> bool {
        self.enlisted.contains(dir)
    }

    pub fn start_enlisting(&mut self, dir: &[u8]) {
        *self.pending.entry(dir.to_vec()).or_default() += 1;
    }

    /// A create's enlistment ended; `enlisted`: it succeeded.
    pub fn end_enlisting(&mut self, dir: &[u8], enlisted: bool) {
        if let Some(n) = self.pending.get_mut(dir) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(dir);
            }
        }
        if enlisted {
            self.enlisted.insert(dir.to_vec());
        }
    }

    /// Adds `rank` to the holders of `dir` (owned here).
    pub fn add_holder(&mut self, dir: &[u8], rank: u32) {
        self.holders.entry(dir.to_vec()).or_default().insert(rank);
    }

    /// Makes every one of `nranks` ranks a holder of `dir` (owned here).
    pub fn all_hold(&mut self, dir: &[u8], nranks: u32) {
        self.holders.insert(dir.to_vec(), (0..nranks).collect());
    }

    /// True if some rank may hold an entry of `dir`.
    pub fn is_held(&self, dir: &[u8]) -> bool {
        self.holders.get(dir).is_some_and(|h| !h.is_empty())
    }

    pub fn holders(&self, dir: &[u8]) -> Vec<u32> {
        self.holders.get(dir).map(|h| h.iter().copied().collect()).unwrap_or_default()
    }

    /// `dir` drained at these ranks: they hold no entry of it any more.
    pub fn drained(&mut self, dir: &[u8], ranks: &[u32]) {
        if let Some(h) = self.holders.get_mut(dir) {
            for rank in ranks {
                h.remove(rank);
            }
        }
    }

    /// `dir` (owned here) is gone or moved away: its holders go with it.
    pub fn forget_dir(&mut self, dir: &[u8]) {
        self.holders.remove(dir);
    }

    /// This rank's side of a drain of `dir`: `ENOTEMPTY` while it holds an entry (`has_entries`)
    /// or a create of one waits; otherwise it stops being a holder.
    pub fn drain(&mut self, dir: &[u8], has_entries: bool) -> Result<()> {
        if has_entries || self.pending.contains_key(dir) {
            return Err(Error::NotEmpty);
        }
        self.enlisted.remove(dir);
        Ok(())
    }

    /// The tree `dir` moved away from every rank: enlistments in it or below are void.
    pub fn forget_tree(&mut self, below: impl Fn(&[u8]) -> bool) {
        self.enlisted.retain(|d| !below(d));
    }
}
