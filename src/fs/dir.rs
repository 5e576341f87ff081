//! Directory streams: `.` and `..`, then the entries of the directory, fetched a page at a time
//! from one holder after another: only the ranks its owner knows to hold entries of it are asked
//! (see `metadata::members`), so an empty directory costs no listing at all, whatever the job's
//! size.

use std::collections::VecDeque;

use super::api::on_path;
use super::handle::{handle, session};
use crate::error::{Error, Result};
use crate::ids::Rank;
use crate::rpc::client as stub;
use crate::rpc::DirEntry;

/// Entries per listing page.
const LIST_PAGE: u32 = 256;

/// Where a directory stream is.
enum DirStage {
    Dot,
    DotDot,
    /// Reading the entries of the `at`-th holder after the name `after`.
    Ranks {
        at: usize,
        after: Vec<u8>,
    },
    Done,
}

/// An open directory stream: `.` and `..`, then its holders' entries of the directory, fetched a
/// page at a time from one holder after another.
pub struct Dir {
    path: Vec<u8>,
    ino: u64,
    parent_ino: u64,
    /// The ranks that hold entries of it, when it was opened.
    holders: Vec<Rank>,
    /// The session it was opened in.
    session: u64,
    stage: DirStage,
    page: VecDeque<DirEntry>,
}

/// Like `opendir(3)`.
pub fn opendir(path: impl AsRef<[u8]>) -> Result<Dir> {
    let (path, ino, parent_ino, holders) = super::api::timed(
        crate::stats::Call::Opendir,
        || {
            on_path(path.as_ref(), |client, path| async move {
                let node = &client.node;
                // The directory and its holders come from its owner, the parent's inode number
                // (for `..`) from the parent's, both at once: one round trip.
                let parent = async {
                    match crate::path::split_parent(&path) {
                        Some((parent, _)) => stub::stat(node, parent).await.ok().map(|a| a.ino),
                        None => None,
                    }
                };
                let (listed, parent_ino) = futures_lite::future::zip(stub::holders(node, &path), parent).await;
                let (attr, holders) = listed?;
                Ok((path, attr.ino, parent_ino.unwrap_or(attr.ino), holders))
            })
        },
        |_| 0,
    )?;
    Ok(Dir { path, ino, parent_ino, holders, session: session()?, stage: DirStage::Dot, page: Default::default() })
}

impl Dir {
    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<DirEntry>> {
        // A stream lives as long as the session it was opened in, buffered entries included.
        if session()? != self.session {
            return Err(Error::NotInitialized);
        }
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Ok(Some(entry));
            }
            match &mut self.stage {
                DirStage::Dot => {
                    self.stage = DirStage::DotDot;
                    return Ok(Some(DirEntry { ino: self.ino, kind: libc::DT_DIR, name: b".".to_vec() }));
                }
                DirStage::DotDot => {
                    self.stage = if self.holders.is_empty() { DirStage::Done } else { DirStage::Ranks { at: 0, after: Vec::new() } };
                    return Ok(Some(DirEntry { ino: self.parent_ino, kind: libc::DT_DIR, name: b"..".to_vec() }));
                }
                DirStage::Done => return Ok(None),
                DirStage::Ranks { at, after } => {
                    let (at, path, cursor) = (*at, self.path.clone(), after.clone());
                    let r = self.holders[at];
                    let page = super::api::timed(
                        crate::stats::Call::Readdir,
                        || {
                            handle()?.call(move |client| async move {
                                let node = &client.node;
                                let _pass = super::namespace::enter(node, &[&path]).await;
                                stub::list_page(node, r, path, cursor, LIST_PAGE).await
                            })
                        },
                        |_| 0,
                    )?;
                    match page.last() {
                        Some(last) if page.len() as u32 == LIST_PAGE => *after = last.name.clone(),
                        _ if at + 1 < self.holders.len() => self.stage = DirStage::Ranks { at: at + 1, after: Vec::new() },
                        _ => self.stage = DirStage::Done,
                    }
                    self.page.extend(page);
                }
            }
        }
    }
}

impl Iterator for Dir {
    type Item = Result<DirEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// All entries of a directory (including `.` and `..`).
pub fn readdir(path: impl AsRef<[u8]>) -> Result<Vec<DirEntry>> {
    opendir(path)?.collect()
}
