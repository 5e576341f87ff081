//! Unit tests of the metadata table.

use super::*;

const CREATE: i32 = libc::O_CREAT | libc::O_WRONLY;

#[test]
fn create_open_exclusive_and_missing() {
    let mut t = MetaTable::new(Rank(2), 4, false);
    let a = t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap();
    assert!(a.created);
    assert_eq!(a.attr.mode, libc::S_IFREG | 0o644);
    assert_eq!(crate::ids::InodeId(a.attr.ino).creator(), Some(Rank(2)));
    assert!(matches!(t.open(b"/f", CREATE | libc::O_EXCL, 0o644, 1, 1, 0), Err(Error::Exists)));
    let again = t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap();
    assert_eq!((again.attr.ino, again.created), (a.attr.ino, false));
    assert!(matches!(t.open(b"/g", libc::O_RDONLY, 0, 1, 1, 0), Err(Error::NotFound)));
    let b = t.open(b"/g", CREATE, 0o600, 1, 1, 0).unwrap();
    assert_ne!(a.attr.ino, b.attr.ino);
}

/// A file created at another rank's proposal gets the proposed inode number; an open that
/// creates nothing keeps the file's; the numbers a rank reserves for its creates elsewhere are
/// never those of its own records.
#[test]
fn a_created_file_takes_the_proposed_inode_number() {
    let mut t = MetaTable::new(Rank(2), 4, false);
    let proposed = crate::ids::InodeId::made_by(Rank(3), 7).0;
    let a = t.open(b"/f", CREATE, 0o644, 1, 1, proposed).unwrap();
    assert_eq!((a.attr.ino, a.created), (proposed, true));
    let again = t.open(b"/f", CREATE, 0o644, 1, 1, crate::ids::InodeId::made_by(Rank(1), 9).0).unwrap();
    assert_eq!((again.attr.ino, again.created), (proposed, false), "the file exists: the proposal is dropped");
    let reserved = t.reserve_ino();
    let own = t.open(b"/g", CREATE, 0o644, 1, 1, 0).unwrap().attr.ino;
    assert_ne!(reserved, own);
    assert_eq!(crate::ids::InodeId(reserved).creator(), Some(Rank(2)));
    // A directory's number is always the owner's.
    let d = t.mkdir(b"/d", 0o755, 1, 1).unwrap();
    assert_eq!(crate::ids::InodeId(d.ino).creator(), Some(Rank(2)));
}

#[test]
fn publish_grows_and_truncate_resets() {
    let mut t = MetaTable::new(Rank(0), 4, false);
    let a = t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let size = |p: Result<Published>| match p {
        Ok(Published::Done(attr)) => attr.size,
        other => panic!("not published: {other:?}"),
    };
    assert_eq!(size(t.publish(b"/f", a.ino, 100, 0, false)), 100);
    assert_eq!(size(t.publish(b"/f", a.ino, 50, 0, false)), 100, "a smaller writer never shrinks");
    assert!(matches!(t.publish(b"/f", a.ino + 1, 10, 0, false), Err(Error::NotFound)));
    t.register(b"/f", a.ino).unwrap();
    let rec = t.take(b"/f", true).unwrap();
    assert!(matches!(t.publish(b"/f", a.ino, 10, 0, false), Err(Error::Locked)), "a rename holds it");
    t.install(b"/g", rec).unwrap();
    t.release(b"/f", a.ino, Some(b"/g")).unwrap();
    assert_eq!(t.publish(b"/f", a.ino, 10, 0, false).unwrap(), Published::Moved(b"/g".to_vec()), "a renamed file forwards");
    t.note_moved(b"/f", a.ino + 7, b"/h", 1);
    assert_eq!(t.publish(b"/f", a.ino, 10, 0, false).unwrap(), Published::Moved(b"/g".to_vec()), "each file its own way");
    assert_eq!(t.publish(b"/f", a.ino + 7, 10, 0, false).unwrap(), Published::Moved(b"/h".to_vec()));
    assert!(matches!(t.publish(b"/f", a.ino + 1, 10, 0, false), Err(Error::NotFound)));
    let after = t.open(b"/g", libc::O_WRONLY | libc::O_TRUNC, 0, 1, 1, 0).unwrap();
    assert_eq!((after.attr.size, after.old_size, after.attr.cuts), (0, 100, 1));
    // A cut holds the record until its chunks are cut: a writer that missed it waits.
    assert!(matches!(t.publish(b"/g", a.ino, 10, 0, false), Err(Error::Locked)), "an O_TRUNC open holds it");
    assert!(matches!(t.truncate(b"/g", 0, 7), Err(Error::Locked)), "one cut at a time");
    assert_eq!(t.stat(b"/g").unwrap().attr.size, 0, "it still answers reads");
    t.unlock_cut(b"/g", a.ino + 1);
    assert!(t.stat(b"/g").unwrap().locked, "another file's unlock is not this one's");
    t.unlock_cut(b"/g", a.ino);
    assert_eq!(t.truncate(b"/g", 0, 7).unwrap(), Truncated::Done { attr: t.stat(b"/g").unwrap().attr, old_size: 0 });
    assert!(matches!(t.publish(b"/g", a.ino, 10, 2, false), Err(Error::Locked)), "a truncate holds it");
    t.unlock_cut(b"/g", a.ino);
    assert_eq!(t.truncate(b"/f", a.ino, 7).unwrap(), Truncated::Moved(b"/g".to_vec()), "a descriptor's cut follows its file");
    assert!(matches!(t.truncate(b"/g", a.ino + 1, 7), Err(Error::NotFound)), "and never cuts another file");
    assert_eq!(t.stat(b"/g").unwrap().attr.size, 7);
    assert_eq!(t.stat(b"/g").unwrap().attr.cuts, 2, "every cut counts");
    // A writer that knows an older count publishes nothing, and learns the count now.
    assert_eq!(t.publish(b"/g", a.ino, 500, 1, false).unwrap(), Published::Cut { cuts: 2 });
    assert_eq!(t.stat(b"/g").unwrap().attr.size, 7);
    assert_eq!(size(t.publish(b"/g", a.ino, 500, 2, false)), 500);
}

#[test]
fn directories() {
    let mut t = MetaTable::new(Rank(0), 4, true);
    assert!(t.stat(b"/").unwrap().is_dir());
    let d = t.mkdir(b"/d", 0o755, 1, 1).unwrap();
    assert!(matches!(t.mkdir(b"/d", 0o755, 1, 1), Err(Error::Exists)));
    assert!(matches!(t.open(b"/d", libc::O_WRONLY, 0, 1, 1, 0), Err(Error::IsDirectory)));
    assert!(t.open(b"/d", libc::O_RDONLY | libc::O_DIRECTORY, 0, 1, 1, 0).is_ok());
    assert!(matches!(t.unlink(b"/d"), Err(Error::IsDirectory)));
    t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap();
    assert!(matches!(t.lock_for_removal(b"/f"), Err(Error::NotDirectory)));
    assert!(matches!(t.enlist(b"/f", 1), Err(Error::NotDirectory)));
    assert!(matches!(t.touch(b"/f"), Err(Error::NotDirectory)));
    assert!(matches!(t.open(b"/f", libc::O_RDONLY | libc::O_DIRECTORY, 0, 1, 1, 0), Err(Error::NotDirectory)));
    assert!(matches!(t.lock_for_removal(b"/"), Err(Error::Busy)));
    // Ranks 1 and 2 hold entries of /d; an rmdir must drain both.
    t.enlist(b"/d", 1).unwrap();
    t.enlist(b"/d", 2).unwrap();
    assert_eq!(t.lock_for_removal(b"/d").unwrap(), [1, 2]);
    assert!(matches!(t.enlist(b"/d", 3), Err(Error::Locked)), "no rank enlists while rmdir asks");
    assert!(t.touch(b"/d").is_ok(), "times are no change that a removal must wait for");
    assert!(matches!(t.finish_removal(b"/d", &[1], false), Err(Error::NotEmpty)), "rank 2 still held one");
    assert!(t.stat(b"/d").is_ok() && !t.stat(b"/d").unwrap().locked);
    assert_eq!(t.lock_for_removal(b"/d").unwrap(), [2], "a drained holder is no holder any more");
    assert_eq!(t.finish_removal(b"/d", &[2], true).unwrap().ino, d.ino);
    assert!(matches!(t.stat(b"/d"), Err(Error::NotFound)));
}

#[test]
fn a_holder_drains_only_without_entries_or_creates() {
    let mut t = MetaTable::new(Rank(1), 4, false);
    assert!(t.drain(b"/d").is_ok(), "a rank that never held an entry drains at once");
    t.start_enlisting(b"/d");
    assert!(matches!(t.drain(b"/d"), Err(Error::NotEmpty)), "a create waits for its enlistment");
    t.end_enlisting(b"/d", true);
    assert!(t.is_enlisted(b"/d"));
    t.open(b"/d/x", CREATE, 0o644, 1, 1, 0).unwrap();
    assert!(matches!(t.drain(b"/d"), Err(Error::NotEmpty)), "an entry is here");
    t.unlink(b"/d/x").unwrap();
    assert!(t.is_enlisted(b"/d"), "the last entry's removal keeps the enlistment");
    assert!(t.drain(b"/d").is_ok());
    assert!(!t.is_enlisted(b"/d"), "a drained rank enlists again before its next entry");
}

#[test]
fn writers_are_counted_and_notes_last_as_long_as_they_do() {
    let mut t = MetaTable::new(Rank(0), 4, false);
    // Made read-only: its creator is no writer.
    let a = t.open(b"/f", libc::O_CREAT | libc::O_RDONLY, 0o644, 1, 1, 0).unwrap().attr;
    assert_eq!(a.writers, 0);
    assert!(matches!(t.register(b"/f", a.ino), Ok(Published::Done(attr)) if attr.writers == 1));
    assert!(matches!(t.register(b"/f", a.ino), Ok(Published::Done(attr)) if attr.writers == 2));
    let rec = t.take(b"/f", true).unwrap();
    assert_eq!(rec.attr.writers, 2);
    t.install(b"/g", rec).unwrap();
    t.release(b"/f", a.ino, Some(b"/g")).unwrap();
    // A rename without writers leaves no note behind.
    let b = t.open(b"/h", libc::O_CREAT | libc::O_RDONLY, 0o644, 1, 1, 0).unwrap().attr;
    let rec = t.take(b"/h", true).unwrap();
    t.install(b"/i", rec).unwrap();
    t.release(b"/h", b.ino, Some(b"/i")).unwrap();
    assert_eq!(t.forwards(), 1);
    // Each writer's close goes through the note and uses it up; the last one removes it.
    assert_eq!(t.publish(b"/f", a.ino, 5, 0, true).unwrap(), Published::Moved(b"/g".into()));
    assert_eq!(t.forwards(), 1);
    assert_eq!(t.publish(b"/f", a.ino, 5, 0, true).unwrap(), Published::Moved(b"/g".into()));
    assert_eq!(t.forwards(), 0);
    assert!(matches!(t.publish(b"/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 1));
    assert!(matches!(t.publish(b"/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 0));
    assert!(matches!(t.publish(b"/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 0), "never below 0");
}

#[test]
fn a_creator_for_writing_is_a_writer_until_unregistered() {
    let mut t = MetaTable::new(Rank(0), 4, false);
    let a = t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    assert_eq!(a.writers, 1, "the creating descriptor");
    assert_eq!(t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap().attr.writers, 1, "an open that creates nothing counts no writer");
    let Ok(Published::Done(after)) = t.unregister(b"/f", a.ino) else { panic!("unregister") };
    assert_eq!(after.writers, 0);
    assert_eq!((after.size, after.mtime_ns, after.ctime_ns), (a.size, a.mtime_ns, a.ctime_ns), "nothing else changes");
    assert!(matches!(t.unregister(b"/f", a.ino), Ok(Published::Done(attr)) if attr.writers == 0), "never below 0");
    assert!(matches!(t.unregister(b"/f", a.ino + 1), Err(Error::NotFound)), "another file");
    // Renamed before its creator closed: the release follows the note, which it uses up.
    let b = t.open(b"/m", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let rec = t.take(b"/m", true).unwrap();
    t.install(b"/n", rec).unwrap();
    t.release(b"/m", b.ino, Some(b"/n")).unwrap();
    assert_eq!(t.forwards(), 1);
    assert_eq!(t.unregister(b"/m", b.ino).unwrap(), Published::Moved(b"/n".into()));
    assert_eq!(t.forwards(), 0);
    assert!(matches!(t.unregister(b"/n", b.ino), Ok(Published::Done(attr)) if attr.writers == 0));
}

#[test]
fn listing_pages_in_name_order() {
    let mut t = MetaTable::new(Rank(0), 4, true);
    t.mkdir(b"/d", 0o755, 1, 1).unwrap();
    for i in 0..10 {
        t.open(format!("/d/f{i}").as_bytes(), CREATE, 0o644, 1, 1, 0).unwrap();
    }
    t.mkdir(b"/d/sub", 0o755, 1, 1).unwrap();
    t.open(b"/d/sub/deep", CREATE, 0o644, 1, 1, 0).unwrap();
    let first = t.list(b"/d", b"", 4);
    assert_eq!(first.iter().map(|e| e.name.as_slice()).collect::<Vec<_>>(), [b"f0", b"f1", b"f2", b"f3"]);
    let rest = t.list(b"/d", b"f3", 100);
    assert_eq!(rest.len(), 7);
    assert_eq!(rest.last().unwrap().name, b"sub");
    assert_eq!(rest.last().unwrap().kind, libc::DT_DIR);
    t.unlink(b"/d/f5").unwrap();
    assert_eq!(t.list(b"/d", b"", 100).len(), 10);
    assert_eq!(t.list(b"/", b"", 100).len(), 1);
}

#[test]
fn rename_primitives() {
    let mut t = MetaTable::new(Rank(0), 4, true);
    let f = t.open(b"/a", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let g = t.open(b"/b", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let rec = t.take(b"/a", true).unwrap();
    assert!(t.stat(b"/a").is_ok(), "a locked record still answers reads");
    assert!(matches!(t.unlink(b"/a"), Err(Error::Locked)), "and refuses changes");
    assert!(matches!(t.take(b"/a", true), Err(Error::Locked)), "including another rename");
    let replaced = t.install(b"/b", rec).unwrap().unwrap();
    assert_eq!(replaced.attr.ino, g.ino);
    assert_eq!(t.stat(b"/b").unwrap().attr.ino, f.ino);
    t.release(b"/a", f.ino, Some(b"/b")).unwrap();
    assert!(matches!(t.stat(b"/a"), Err(Error::NotFound)));
    t.mkdir(b"/d", 0o755, 1, 1).unwrap();
    let rec = t.take(b"/b", true).unwrap();
    assert!(matches!(t.install(b"/d", rec), Err(Error::IsDirectory)));
    let other = t.open(b"/c", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let moving = t.take(b"/c", true).unwrap();
    assert!(matches!(t.install(b"/b", moving), Err(Error::Busy)), "onto a name another rename holds");
    t.release(b"/c", other.ino, None).unwrap();
    t.release(b"/b", f.ino, None).unwrap();
    assert!(t.unlink(b"/b").is_ok(), "a failed rename unlocks");
    t.open(b"/b", CREATE, 0o644, 1, 1, 0).unwrap();
    t.mkdir(b"/d/x", 0o755, 1, 1).unwrap();
    t.open(b"/d/x/y", CREATE, 0o644, 1, 1, 0).unwrap();
    t.open(b"/dd", CREATE, 0o644, 1, 1, 0).unwrap();
    let dir = t.take(b"/d", false).unwrap();
    assert!(dir.is_dir() && !t.stat(b"/d").unwrap().locked, "a directory is locked only for a fenced rename");
    let moved = t.take_subtree(b"/d");
    let mut names: Vec<_> = moved.iter().map(|(p, _)| p.as_slice()).collect();
    names.sort();
    assert_eq!(names, [&b"/d/x"[..], b"/d/x/y"], "a sibling sharing the prefix is not moved");
    assert!(t.stat(b"/dd").is_ok());
}

#[test]
fn names_are_bytes() {
    let mut t = MetaTable::new(Rank(0), 4, true);
    let dir = b"/d\xff";
    t.mkdir(dir, 0o755, 1, 1).unwrap();
    t.mkdir(b"/d\xff\xfe", 0o755, 1, 1).unwrap();
    t.open(b"/d\xff\xfe/sibling", CREATE, 0o644, 1, 1, 0).unwrap();
    for name in [&b"caf\xe9"[..], b"\xc3\x28", "日本".as_bytes(), b"a\xffb"] {
        t.open(&crate::path::join(dir, name), CREATE, 0o644, 1, 1, 0).unwrap();
    }
    let names: Vec<Vec<u8>> = t.list(dir, b"", 100).into_iter().map(|e| e.name).collect();
    assert_eq!(names, [b"a\xffb".to_vec(), b"caf\xe9".to_vec(), b"\xc3\x28".to_vec(), "日本".into()], "in byte order");
    let after: Vec<Vec<u8>> = t.list(dir, b"caf\xe9", 100).into_iter().map(|e| e.name).collect();
    assert_eq!(after, [b"\xc3\x28".to_vec(), "日本".into()]);
    assert_eq!(t.span_below(dir), 1 + "日本".len());
    assert_eq!(t.take_subtree(dir).len(), 4, "a sibling sharing the prefix is not below");
    assert!(t.stat(b"/d\xff\xfe/sibling").is_ok());
}

/// Every record's attributes read the same through the mirror as from the table, but for the
/// count of writers (which the mirror does not follow), after every operation of a random
/// sequence that covers each way a record changes; removed paths miss.
#[test]
fn the_mirror_follows_every_change() {
    let dir = std::env::temp_dir().join(format!("benchfs-meta-mirror-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut t = MetaTable::new(Rank(0), 4, true);
    t.share(mirror::Mirror::create(&dir, 1 << 10).unwrap());
    let mut view = mirror::MirrorView::open(&dir).unwrap();
    let names: Vec<Vec<u8>> = (0..12).map(|i| format!("/d{}/f{}", i % 3, i).into_bytes()).collect();
    let mut state = 12345u64;
    let mut next = move |n: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    for step in 0..5000 {
        let path = &names[next(names.len())];
        let other = &names[next(names.len())];
        let ino = t.stat(path).map_or(0, |r| r.attr.ino);
        let _ = match next(12) {
            0 => t.open(path, CREATE, 0o644, 1, 1, 0).map(drop),
            // The chunks of a cut file are cut at once, here.
            1 => t.open(path, libc::O_WRONLY | libc::O_TRUNC, 0, 1, 1, 0).map(|_| t.unlock_cut(path, ino)),
            2 => t.publish(path, ino, next(1000) as u64, 0, next(2) == 0).map(drop),
            3 => t.register(path, ino).map(drop),
            11 => t.unregister(path, ino).map(drop),
            4 => t.truncate(path, 0, next(100) as u64).map(|_| t.unlock_cut(path, ino)),
            5 => t.unlink(path).map(drop),
            6 => t.mkdir(&path[..3], 0o755, 1, 1).map(drop),
            7 => t.touch(&path[..3]),
            8 => t.take(path, true).and_then(|rec| match t.install(other, rec) {
                Ok(_) => t.release(path, rec.attr.ino, Some(other)),
                Err(_) => t.release(path, rec.attr.ino, None),
            }),
            9 => {
                let moved = t.take_subtree(&path[..3]);
                let to = format!("/e{}", next(3)).into_bytes();
                moved.into_iter().for_each(|(p, rec)| {
                    let new = [to.as_slice(), &p[3..]].concat();
                    if t.stat(&new).is_err() {
                        t.install_moved(&new, rec);
                    }
                });
                Ok(())
            }
            _ => t.lock_for_removal(&path[..3]).and_then(|_| t.finish_removal(&path[..3], &[], next(2) == 0).map(drop)),
        };
        let uncounted = |attr: Attr| Attr { writers: 0, ..attr };
        // Before the server catches up (it does right after answering), a record new in the
        // table may be missing from the mirror, but nothing there may be out of date.
        for (path, record) in &t.records {
            if let Some(seen) = view.get(path) {
                assert_eq!(
                    uncounted(seen),
                    uncounted(record.attr),
                    "step {step}: {} differs before the catch-up",
                    String::from_utf8_lossy(path)
                );
            }
        }
        t.catch_up_shared();
        for (path, record) in &t.records {
            let seen = view.get(path).map(uncounted);
            assert_eq!(seen, Some(uncounted(record.attr)), "step {step}: {} differs", String::from_utf8_lossy(path));
        }
        let everything = names.iter().chain([b"/d0".to_vec(), b"/d1".to_vec(), b"/d2".to_vec()].iter()).cloned().collect::<Vec<_>>();
        for path in everything.iter().filter(|p| !t.records.contains_key(*p)) {
            assert_eq!(view.get(path), None, "step {step}: {} is gone", String::from_utf8_lossy(path));
        }
    }
    drop((t, view));
    std::fs::remove_file(dir.join(mirror::FILE)).unwrap();
    std::fs::remove_dir(&dir).unwrap();
}

/// A tree's records are found through the index of their parents, and only they: not a sibling
/// whose name extends the tree's (`/ab` beside `/a`), nor anything above.
#[test]
fn a_subtree_is_exactly_the_records_below_it() {
    let mut t = MetaTable::new(Rank(0), 1, true);
    for d in ["/a", "/a/b", "/ab", "/a/b/c", "/z"] {
        t.mkdir(d.as_bytes(), 0o755, 1, 1).unwrap();
    }
    for f in ["/a/f", "/a/b/g", "/a/b/c/h", "/ab/x", "/z/y", "/top"] {
        t.open(f.as_bytes(), CREATE, 0o644, 1, 1, 0).unwrap();
    }
    assert_eq!(t.span_below(b"/a"), "/b/c/h".len());
    assert_eq!(t.span_below(b"/"), "/a/b/c/h".len() - 1);
    let mut moved: Vec<String> = t.take_subtree(b"/a").into_iter().map(|(p, _)| String::from_utf8(p).unwrap()).collect();
    moved.sort();
    assert_eq!(moved, ["/a/b", "/a/b/c", "/a/b/c/h", "/a/b/g", "/a/f"]);
    for kept in ["/a", "/ab", "/ab/x", "/z", "/z/y", "/top", "/"] {
        assert!(t.stat(kept.as_bytes()).is_ok(), "{kept} stays");
    }
    let mut everything: Vec<Vec<u8>> = t.below(b"/");
    everything.sort();
    assert_eq!(everything, [b"/a".to_vec(), b"/ab".to_vec(), b"/ab/x".to_vec(), b"/top".to_vec(), b"/z".to_vec(), b"/z/y".to_vec()]);
}

/// The server serves a writer's update in place when `file_at` finds its file (with a cut count
/// no newer than the writer's); the update must then never need to go on elsewhere.
#[test]
fn file_at_finds_what_an_update_reaches_without_a_forward() {
    let mut t = MetaTable::new(Rank(0), 4, false);
    let a = t.open(b"/f", CREATE, 0o644, 1, 1, 0).unwrap().attr;
    let in_place = |t: &MetaTable, path: &[u8], ino: u64, cuts: u64| t.file_at(path, ino).is_some_and(|attr| attr.cuts <= cuts);
    let lands = |p: Result<Published>| !matches!(p, Ok(Published::Moved(_) | Published::Cut { .. }));
    assert!(in_place(&t, b"/f", a.ino, 0));
    assert!(lands(t.publish(b"/f", a.ino, 10, 0, false)));
    assert!(!in_place(&t, b"/f", a.ino + 1, 0), "another file's update is not this one's");
    assert!(!in_place(&t, b"/g", a.ino, 0), "nor is one for a name that holds nothing");
    // A cut makes updates that knew an older count go through the slow path.
    t.truncate(b"/f", 0, 0).unwrap();
    t.unlock_cut(b"/f", a.ino);
    assert!(!in_place(&t, b"/f", a.ino, 0));
    assert!(!lands(t.publish(b"/f", a.ino, 10, 0, false)));
    assert!(in_place(&t, b"/f", a.ino, 1));
    assert!(lands(t.publish(b"/f", a.ino, 10, 1, false)));
    // While a rename holds the record the update is refused in place (it retries).
    let rec = t.take(b"/f", true).unwrap();
    assert!(in_place(&t, b"/f", a.ino, 1));
    assert!(matches!(t.publish(b"/f", a.ino, 10, 1, false), Err(Error::Locked)));
    assert!(matches!(t.register(b"/f", a.ino), Err(Error::Locked)));
    // Renamed away: only the note knows where it went, and the update is forwarded.
    t.install(b"/g", rec).unwrap();
    t.release(b"/f", a.ino, Some(b"/g")).unwrap();
    assert!(!in_place(&t, b"/f", a.ino, 1));
    assert!(!lands(t.publish(b"/f", a.ino, 10, 1, false)));
    assert!(!lands(t.register(b"/f", a.ino)));
    assert!(in_place(&t, b"/g", a.ino, 1));
    assert!(lands(t.register(b"/g", a.ino)));
    assert!(matches!(t.truncate(b"/g", a.ino, 3), Ok(Truncated::Done { .. })));
    assert!(!in_place(&t, b"/f", a.ino, u64::MAX));
    assert!(matches!(t.truncate(b"/f", a.ino, 3), Ok(Truncated::Moved(_))));
}
