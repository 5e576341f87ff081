//! Unit tests of the record table.

use super::*;

const CREATE: i32 = libc::O_CREAT | libc::O_WRONLY;

#[test]
fn create_open_exclusive_and_missing() {
    let mut t = MetaTable::new(Rank(2), false);
    let a = t.open("/f", CREATE, 0o644, 1, 1).unwrap();
    assert!(a.created);
    assert_eq!(a.attr.mode, libc::S_IFREG | 0o644);
    assert_eq!(a.attr.ino >> INO_RANK_SHIFT, 3);
    assert!(matches!(t.open("/f", CREATE | libc::O_EXCL, 0o644, 1, 1), Err(Error::Exists)));
    let again = t.open("/f", CREATE, 0o644, 1, 1).unwrap();
    assert_eq!((again.attr.ino, again.created), (a.attr.ino, false));
    assert!(matches!(t.open("/g", libc::O_RDONLY, 0, 1, 1), Err(Error::NotFound)));
    let b = t.open("/g", CREATE, 0o600, 1, 1).unwrap();
    assert_ne!(a.attr.ino, b.attr.ino);
}

#[test]
fn publish_grows_and_truncate_resets() {
    let mut t = MetaTable::new(Rank(0), false);
    let a = t.open("/f", CREATE, 0o644, 1, 1).unwrap().attr;
    let size = |p: Result<Published>| match p {
        Ok(Published::Done(attr)) => attr.size,
        other => panic!("not published: {other:?}"),
    };
    assert_eq!(size(t.publish("/f", a.ino, 100, 0, false)), 100);
    assert_eq!(size(t.publish("/f", a.ino, 50, 0, false)), 100, "a smaller writer never shrinks");
    assert!(matches!(t.publish("/f", a.ino + 1, 10, 0, false), Err(Error::NotFound)));
    t.register("/f", a.ino).unwrap();
    let rec = t.take("/f").unwrap();
    assert!(matches!(t.publish("/f", a.ino, 10, 0, false), Err(Error::Locked)), "a rename holds it");
    t.install("/g", rec).unwrap();
    t.release("/f", a.ino, Some("/g")).unwrap();
    assert_eq!(t.publish("/f", a.ino, 10, 0, false).unwrap(), Published::Moved("/g".to_string()), "a renamed file forwards");
    t.note_moved("/f", a.ino + 7, "/h", 1);
    assert_eq!(t.publish("/f", a.ino, 10, 0, false).unwrap(), Published::Moved("/g".to_string()), "each file its own way");
    assert_eq!(t.publish("/f", a.ino + 7, 10, 0, false).unwrap(), Published::Moved("/h".to_string()));
    assert!(matches!(t.publish("/f", a.ino + 1, 10, 0, false), Err(Error::NotFound)));
    let after = t.open("/g", libc::O_WRONLY | libc::O_TRUNC, 0, 1, 1).unwrap();
    assert_eq!((after.attr.size, after.old_size, after.attr.cuts), (0, 100, 1));
    assert_eq!(t.truncate("/g", 7).unwrap(), (t.stat("/g").unwrap().attr, 0));
    assert_eq!(t.stat("/g").unwrap().attr.size, 7);
    assert_eq!(t.stat("/g").unwrap().attr.cuts, 2, "every cut counts");
    // A writer that knows an older count publishes nothing, and learns the count now.
    assert_eq!(t.publish("/g", a.ino, 500, 1, false).unwrap(), Published::Cut { cuts: 2 });
    assert_eq!(t.stat("/g").unwrap().attr.size, 7);
    assert_eq!(size(t.publish("/g", a.ino, 500, 2, false)), 500);
}

#[test]
fn directories() {
    let mut t = MetaTable::new(Rank(0), true);
    assert!(t.stat("/").unwrap().is_dir());
    t.mkdir("/d", 0o755, 1, 1).unwrap();
    assert!(matches!(t.mkdir("/d", 0o755, 1, 1), Err(Error::Exists)));
    assert!(matches!(t.open("/d", libc::O_WRONLY, 0, 1, 1), Err(Error::IsDirectory)));
    assert!(t.open("/d", libc::O_RDONLY | libc::O_DIRECTORY, 0, 1, 1).is_ok());
    assert!(matches!(t.unlink("/d"), Err(Error::IsDirectory)));
    t.link("/d", 1, true).unwrap();
    assert!(matches!(t.rmdir("/d"), Err(Error::NotEmpty)));
    t.link("/d", -1, true).unwrap();
    // A remove's decrement may precede its undo: the count must come back exactly.
    t.link("/d", -1, true).unwrap();
    t.link("/d", 1, false).unwrap();
    assert_eq!(t.stat("/d").unwrap().children, 0);
    t.open("/f", CREATE, 0o644, 1, 1).unwrap();
    assert!(matches!(t.rmdir("/f"), Err(Error::NotDirectory)));
    assert!(matches!(t.link("/f", 1, false), Err(Error::NotDirectory)));
    assert!(matches!(t.open("/f", libc::O_RDONLY | libc::O_DIRECTORY, 0, 1, 1), Err(Error::NotDirectory)));
    assert!(t.rmdir("/d").is_ok());
    assert!(matches!(t.rmdir("/"), Err(Error::Busy)));
}

#[test]
fn writers_are_counted_and_notes_last_as_long_as_they_do() {
    let mut t = MetaTable::new(Rank(0), false);
    let a = t.open("/f", CREATE, 0o644, 1, 1).unwrap().attr;
    assert!(matches!(t.register("/f", a.ino), Ok(Published::Done(attr)) if attr.writers == 1));
    assert!(matches!(t.register("/f", a.ino), Ok(Published::Done(attr)) if attr.writers == 2));
    let rec = t.take("/f").unwrap();
    assert_eq!(rec.attr.writers, 2);
    t.install("/g", rec).unwrap();
    t.release("/f", a.ino, Some("/g")).unwrap();
    // A rename without writers leaves no note behind.
    let b = t.open("/h", CREATE, 0o644, 1, 1).unwrap().attr;
    let rec = t.take("/h").unwrap();
    t.install("/i", rec).unwrap();
    t.release("/h", b.ino, Some("/i")).unwrap();
    assert_eq!(t.forwards(), 1);
    // Each writer's close goes through the note and uses it up; the last one removes it.
    assert_eq!(t.publish("/f", a.ino, 5, 0, true).unwrap(), Published::Moved("/g".into()));
    assert_eq!(t.forwards(), 1);
    assert_eq!(t.publish("/f", a.ino, 5, 0, true).unwrap(), Published::Moved("/g".into()));
    assert_eq!(t.forwards(), 0);
    assert!(matches!(t.publish("/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 1));
    assert!(matches!(t.publish("/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 0));
    assert!(matches!(t.publish("/g", a.ino, 5, 0, true), Ok(Published::Done(attr)) if attr.writers == 0), "never below 0");
}

#[test]
fn listing_pages_in_name_order() {
    let mut t = MetaTable::new(Rank(0), true);
    t.mkdir("/d", 0o755, 1, 1).unwrap();
    for i in 0..10 {
        t.open(&format!("/d/f{i}"), CREATE, 0o644, 1, 1).unwrap();
    }
    t.mkdir("/d/sub", 0o755, 1, 1).unwrap();
    t.open("/d/sub/deep", CREATE, 0o644, 1, 1).unwrap();
    let first = t.list("/d", "", 4);
    assert_eq!(first.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["f0", "f1", "f2", "f3"]);
    let rest = t.list("/d", "f3", 100);
    assert_eq!(rest.len(), 7);
    assert_eq!(rest.last().unwrap().name, "sub");
    assert_eq!(rest.last().unwrap().kind, libc::DT_DIR);
    t.unlink("/d/f5").unwrap();
    assert_eq!(t.list("/d", "", 100).len(), 10);
    assert_eq!(t.list("/", "", 100).len(), 1);
}

#[test]
fn rename_primitives() {
    let mut t = MetaTable::new(Rank(0), true);
    let f = t.open("/a", CREATE, 0o644, 1, 1).unwrap().attr;
    let g = t.open("/b", CREATE, 0o644, 1, 1).unwrap().attr;
    let rec = t.take("/a").unwrap();
    assert!(t.stat("/a").is_ok(), "a locked record still answers reads");
    assert!(matches!(t.unlink("/a"), Err(Error::Locked)), "and refuses changes");
    assert!(matches!(t.take("/a"), Err(Error::Locked)), "including another rename");
    let replaced = t.install("/b", rec).unwrap().unwrap();
    assert_eq!(replaced.attr.ino, g.ino);
    assert_eq!(t.stat("/b").unwrap().attr.ino, f.ino);
    t.release("/a", f.ino, Some("/b")).unwrap();
    assert!(matches!(t.stat("/a"), Err(Error::NotFound)));
    t.mkdir("/d", 0o755, 1, 1).unwrap();
    let rec = t.take("/b").unwrap();
    assert!(matches!(t.install("/d", rec), Err(Error::IsDirectory)));
    let other = t.open("/c", CREATE, 0o644, 1, 1).unwrap().attr;
    let moving = t.take("/c").unwrap();
    assert!(matches!(t.install("/b", moving), Err(Error::Busy)), "onto a name another rename holds");
    t.release("/c", other.ino, None).unwrap();
    t.release("/b", f.ino, None).unwrap();
    assert!(t.unlink("/b").is_ok(), "a failed rename unlocks");
    t.open("/b", CREATE, 0o644, 1, 1).unwrap();
    t.mkdir("/d/x", 0o755, 1, 1).unwrap();
    t.open("/d/x/y", CREATE, 0o644, 1, 1).unwrap();
    t.open("/dd", CREATE, 0o644, 1, 1).unwrap();
    let moved = t.take_subtree("/d");
    let mut names: Vec<_> = moved.iter().map(|(p, _)| p.as_str()).collect();
    names.sort();
    assert_eq!(names, ["/d/x", "/d/x/y"], "a sibling sharing the prefix is not moved");
    assert!(t.stat("/dd").is_ok());
}
