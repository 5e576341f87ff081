use super::*;

fn all_requests() -> Vec<Request> {
    vec![
        Request::Open { path: "/a/b".into(), flags: 0o1101, mode: 0o644, uid: 1000, gid: 100, ino: (1 << 40) | 5 },
        Request::Stat { path: "/x".into() },
        Request::Publish { path: "/x".into(), ino: 9, size: 1 << 40, cuts: 3, release: true },
        Request::Register { path: "/x".into(), ino: 10 },
        Request::Release { path: "/x".into(), ino: 11, to: "/y".into() },
        Request::Release { path: "/x".into(), ino: 11, to: Vec::new() },
        Request::Unlink { path: "/y".into() },
        Request::Write { ino: 3, offset: 12345, len: 4096 },
        Request::Read { ino: 3, offset: 0, len: 1 },
        Request::TruncateChunks { ino: 4, len: 0 },
        Request::Fsync { ino: 5 },
        Request::Mkdir { path: "/d".into(), mode: 0o755, uid: 1, gid: 2 },
        Request::Rmdir { path: "/d".into() },
        Request::Touch { path: "/d".into() },
        Request::Enlist { rank: 3, path: "/d".into() },
        Request::Drain { path: "/d".into() },
        Request::Truncate { path: "/f".into(), ino: 0, len: 77 },
        Request::List { path: "/d".into(), after: Vec::new(), max: 100 },
        Request::List { path: "/d".into(), after: "name".into(), max: 1 },
        Request::List { path: b"/d\xff".to_vec(), after: b"caf\xe9".to_vec(), max: 1 },
        Request::Stat { path: b"/\xc3\x28/\xe6\x97\xa5".to_vec() },
        Request::Take { tree: false, path: "/a".into(), to: "/b".into() },
        Request::Take { tree: true, path: "/a".into(), to: "/b".into() },
        Request::Install { path: "/b".into(), attr: Attr { ino: 5, size: 6, ..Attr::default() } },
        Request::MoveTree { from: "/a".into(), to: "/b/c".into() },
        Request::InstallMany { count: 12 },
        Request::Unregister { count: 3 },
        Request::PublishMany { count: 4 },
        Request::StatFs,
        Request::Ping,
        Request::Holders { path: "/h".into() },
        Request::RemoveChunks { ino: 78 },
        Request::ChunkExtent { ino: 80 },
        Request::MoveBegin { mover: 1 << 40, from: "/a".into(), to: "/b".into() },
        Request::MoveEnd { mover: 9, moved: true },
    ]
}

#[test]
fn requests_round_trip() {
    for req in all_requests() {
        let buf = req.encode(7, 42);
        // Sized before it is written: the buffer is allocated once.
        assert_eq!(buf.capacity(), buf.len(), "{req:?}");
        let (env, back) = decode_request(&buf).unwrap();
        assert_eq!(back, req);
        assert_eq!(env, Envelope { opcode: req.opcode() as u16, source: 7, request_id: 42, credential: [0; CREDENTIAL_LEN] });
    }
}

#[test]
fn every_truncation_is_rejected() {
    for req in all_requests() {
        let buf = req.encode(1, 2);
        for cut in 0..buf.len() {
            assert!(decode_request(&buf[..cut]).is_err(), "{req:?} cut at {cut}");
        }
    }
}

#[test]
fn malformed_requests_are_rejected() {
    let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
    buf.push(0);
    assert_eq!(decode_request(&buf), Err(WireError::BadLength));
    let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
    buf[0] ^= 0xff;
    assert_eq!(decode_request(&buf), Err(WireError::BadMagic));
    let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
    buf[4] = 99;
    assert_eq!(decode_request(&buf), Err(WireError::UnknownOpcode(99)));
    let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
    buf[REQUEST_HEADER_LEN] = 0xff; // path length larger than the message
    buf[REQUEST_HEADER_LEN + 1] = 0x0f;
    assert!(decode_request(&buf).is_err());
}

#[test]
fn paths_are_carried_as_raw_bytes() {
    let odd: [&[u8]; 5] = [b"/a\xffb", b"/caf\xe9", b"/\xc3\x28", "/日本".as_bytes(), b"/\x01\x7f\x80\xfe"];
    for path in odd {
        let request = Request::Stat { path: path.to_vec() };
        let buf = request.encode(0, 1);
        assert_eq!(buf[REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + 2], (path.len() as u16).to_le_bytes());
        assert_eq!(&buf[REQUEST_HEADER_LEN + 2..], path);
        assert_eq!(decode_request(&buf).map(|(_, r)| r), Ok(request));
    }
    // The length rules still hold: no empty path, none over MAX_PATH bytes.
    let empty = Request::Stat { path: Vec::new() }.encode(0, 1);
    assert_eq!(decode_request(&empty), Err(WireError::BadLength));
    let mut long = vec![b'/'];
    long.extend([0xff; crate::path::MAX_PATH]);
    assert_eq!(decode_request(&Request::Stat { path: long.clone() }.encode(0, 1)), Err(WireError::BadLength));
    long.pop();
    assert!(decode_request(&Request::Stat { path: long }.encode(0, 1)).is_ok());
}

#[test]
fn field_rules_are_enforced() {
    // Take: the tree flag, then the paths; a flag is 0 or 1.
    let mut buf = Request::Take { tree: true, path: "/d".into(), to: "/e".into() }.encode(0, 1);
    buf[REQUEST_HEADER_LEN] = 2;
    assert_eq!(decode_request(&buf), Err(WireError::BadLength));
    // A path may not be empty; a name (List's `after`) may.
    let mut buf = Request::Stat { path: "/x".into() }.encode(0, 1);
    buf.truncate(REQUEST_HEADER_LEN);
    buf.extend_from_slice(&0u16.to_le_bytes());
    assert_eq!(decode_request(&buf), Err(WireError::BadLength));
    let list = Request::List { path: "/d".into(), after: Vec::new(), max: 1 };
    assert_eq!(decode_request(&list.encode(0, 1)).map(|(_, r)| r), Ok(list));
    // Nor longer than MAX_PATH, even when the bytes are there.
    let long = format!("/{}", "a".repeat(crate::path::MAX_PATH)).into_bytes();
    assert_eq!(decode_request(&Request::Stat { path: long }.encode(0, 1)), Err(WireError::BadLength));
    let longest = format!("/{}", "a".repeat(crate::path::MAX_PATH - 1)).into_bytes();
    assert!(decode_request(&Request::Stat { path: longest }.encode(0, 1)).is_ok());
    // Open's reply: attr (68 bytes), old size, then the created flag.
    let reply = Reply {
        request_id: 1,
        opcode: Opcode::Open as u16,
        errno: 0,
        body: ReplyBody::Opened { attr: Attr::default(), old_size: 0, created: true },
    };
    let mut buf = reply.encode();
    buf[HEADER_LEN + 76] = 2;
    assert_eq!(Reply::decode(&buf), Err(WireError::BadLength));
}

#[test]
fn metadata_requests_route_by_their_path() {
    for req in all_requests() {
        let expected = match &req {
            Request::Open { path, .. }
            | Request::Stat { path }
            | Request::Publish { path, .. }
            | Request::Register { path, .. }
            | Request::Release { path, .. }
            | Request::Unlink { path }
            | Request::Mkdir { path, .. }
            | Request::Rmdir { path }
            | Request::Touch { path }
            | Request::Holders { path }
            | Request::Enlist { path, .. }
            | Request::Truncate { path, .. }
            | Request::Take { path, .. }
            | Request::Install { path, .. } => Some(path.as_slice()),
            Request::Write { .. }
            | Request::Read { .. }
            | Request::TruncateChunks { .. }
            | Request::RemoveChunks { .. }
            | Request::Fsync { .. }
            | Request::List { .. }
            | Request::MoveTree { .. }
            | Request::MoveBegin { .. }
            | Request::MoveEnd { .. }
            | Request::ChunkExtent { .. }
            | Request::InstallMany { .. }
            | Request::Unregister { .. }
            | Request::PublishMany { .. }
            | Request::Drain { .. }
            | Request::StatFs
            | Request::Ping => None,
        };
        assert_eq!(req.routing_path(), expected, "{req:?}");
    }
}

#[test]
fn payload_codecs_round_trip_and_reject_garbage() {
    let entries =
        vec![DirEntry { ino: 1, kind: libc::DT_REG, name: "a".into() }, DirEntry { ino: 2, kind: libc::DT_DIR, name: "bb".into() }];
    let buf = encode_entries(&entries);
    assert_eq!(decode_entries(&buf, 2).unwrap(), entries);
    assert!(decode_entries(&buf, 3).is_err());
    assert!(decode_entries(&buf, 1).is_err());
    for name in [&b"a/b"[..], b"a\0b", b""] {
        let bad = encode_entries(&[DirEntry { ino: 1, kind: 0, name: name.to_vec() }]);
        assert_eq!(decode_entries(&bad, 1), Err(WireError::BadPath), "{name:?}");
    }
    let odd = vec![
        DirEntry { ino: 3, kind: libc::DT_REG, name: b"caf\xe9".to_vec() },
        DirEntry { ino: 4, kind: libc::DT_DIR, name: vec![0xff; crate::path::MAX_NAME] },
    ];
    assert_eq!(decode_entries(&encode_entries(&odd), 2).unwrap(), odd);
    let records = vec![(b"/x/y".to_vec(), Attr::default()), (b"/x/\xff".to_vec(), Attr { ino: 9, ..Attr::default() })];
    let buf = encode_records(&records);
    assert_eq!(decode_records(&buf, 2).unwrap(), records);
    for cut in 0..buf.len() {
        assert!(decode_records(&buf[..cut], 2).is_err());
    }
    let writers = vec![(b"/x".to_vec(), 7u64), (b"/\xff/y".to_vec(), u64::MAX)];
    let buf = encode_unregisters(&writers);
    let pinned = [[7, 0, 0, 0, 0, 0, 0, 0, 2, 0].as_slice(), b"/x", &[0xff; 8], &[4, 0], b"/\xff/y"].concat();
    assert_eq!(buf, pinned, "inode number, then path, each");
    assert_eq!(decode_unregisters(&buf, 2).unwrap(), writers);
    assert!(decode_unregisters(&buf, 3).is_err());
    assert!(decode_unregisters(&buf, 1).is_err(), "bytes left over");
    for cut in 0..buf.len() {
        assert!(decode_unregisters(&buf[..cut], 2).is_err());
    }
    let closed = vec![
        Closed { path: b"/x".to_vec(), ino: 7, end: 3901, cuts: 0 },
        Closed { path: b"/\xff/y".to_vec(), ino: u64::MAX, end: 1, cuts: 2 },
    ];
    let buf = encode_closed(&closed);
    let pinned = [
        [7, 0, 0, 0, 0, 0, 0, 0, 0x3d, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0].as_slice(),
        b"/x",
        &[0xff; 8],
        &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0],
        b"/\xff/y",
    ]
    .concat();
    assert_eq!(buf, pinned, "inode number, end, cuts, then path, each");
    assert_eq!(decode_closed(&buf, 2).unwrap(), closed);
    assert!(decode_closed(&buf, 3).is_err());
    assert!(decode_closed(&buf, 1).is_err(), "bytes left over");
    for cut in 0..buf.len() {
        assert!(decode_closed(&buf[..cut], 2).is_err());
    }
    assert!(decode_closed(&[[7u8; 24].as_slice(), &[0, 0]].concat(), 1).is_err(), "an empty path");
    let empty_path = [7u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(decode_unregisters(&empty_path, 1).is_err(), "an empty path");
}

#[test]
fn the_longest_unregister_entry_fits_its_bound() {
    let path = [b"/".as_slice(), &vec![b'x'; crate::path::MAX_PATH - 1]].concat();
    assert_eq!(encode_unregisters(&[(path, 1)]).len(), MAX_UNREGISTER_LEN);
}

#[test]
fn replies_round_trip() {
    let attr =
        Attr { ino: 1, size: 2, mode: 0o100644, uid: 3, gid: 4, nlink: 1, atime_ns: -5, mtime_ns: 6, ctime_ns: 7, cuts: 8, writers: 9 };
    let cases = [
        (Opcode::Open, ReplyBody::Opened { attr, old_size: 99, created: true }),
        (Opcode::Truncate, ReplyBody::Sized { attr, old_size: 3 }),
        (Opcode::Take, ReplyBody::Attr(attr)),
        (Opcode::Install, ReplyBody::Replaced(Some(attr))),
        (Opcode::Install, ReplyBody::Replaced(None)),
        (
            Opcode::StatFs,
            ReplyBody::FsUsage(FsUsage {
                fs_id: 1,
                total_bytes: 2,
                free_bytes: 3,
                avail_bytes: 4,
                total_files: 5,
                free_files: 6,
                records: 7,
            }),
        ),
        (Opcode::Stat, ReplyBody::Attr(attr)),
        (Opcode::Read, ReplyBody::Count(77)),
        (Opcode::Fsync, ReplyBody::Empty),
    ];
    for (opcode, body) in cases {
        let reply = Reply { request_id: 5, opcode: opcode as u16, errno: 0, body };
        let buf = reply.encode();
        assert_eq!(buf.capacity(), buf.len(), "{reply:?}");
        assert_eq!(Reply::decode(&buf).unwrap(), reply);
        assert_eq!(reply_request_id(&buf), Some(5));
        for cut in 0..buf.len() {
            assert!(Reply::decode(&buf[..cut]).is_err());
        }
    }
    let failed = Reply { request_id: 6, opcode: Opcode::Stat as u16, errno: libc::ENOENT, body: ReplyBody::Empty };
    assert_eq!(Reply::decode(&failed.encode()).unwrap(), failed);
}

/// The bytes every request and reply encodes to, pinned: other programs craft raw messages
/// at fixed offsets, so the layout may only change on purpose.
mod golden {
    use super::*;

    const ID: u64 = 0x0102_0304_0506_0708;
    /// `ATTR` below as encoded: ino, size, mode, uid, gid, nlink, atime, mtime, ctime, cuts, writers.
    const ATTR_HEX: &str = concat!(
        "1100000000000000",
        "2200000000000000",
        "a4810000",
        "33000000",
        "44000000",
        "55000000",
        "feffffffffffffff",
        "6600000000000000",
        "7700000000000000",
        "8800000000000000",
        "99000000",
    );
    const ATTR: Attr = Attr {
        ino: 0x11,
        size: 0x22,
        mode: 0o100644,
        uid: 0x33,
        gid: 0x44,
        nlink: 0x55,
        atime_ns: -2,
        mtime_ns: 0x66,
        ctime_ns: 0x77,
        cuts: 0x88,
        writers: 0x99,
    };

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// magic "BFS1" | opcode | 0 | source or errno | 0 | request id
    fn header_hex(opcode: u16, third_word: u32) -> String {
        format!("42465331{}0000{}00000000{}", hex(&opcode.to_le_bytes()), hex(&third_word.to_le_bytes()), hex(&ID.to_le_bytes()))
    }

    /// (request, its opcode number, its body in hex)
    fn requests() -> Vec<(Request, u16, String)> {
        let s = |text: &str| text.to_string();
        vec![
            (
                Request::Open { path: "/a/b".into(), flags: 0o1101, mode: 0o644, uid: 1000, gid: 100, ino: (1 << 40) | 5 },
                1,
                s("41020000a4010000e803000064000000050000000001000004002f612f62"),
            ),
            (Request::Stat { path: "/st".into() }, 2, s("03002f7374")),
            (Request::Stat { path: b"/\xff\xe9".to_vec() }, 2, s("03002fffe9")),
            (
                Request::Publish { path: "/pub".into(), ino: 9, size: 1 << 40, cuts: 2, release: true },
                3,
                s("0900000000000000000000000001000002000000000000000104002f707562"),
            ),
            (Request::Register { path: "/reg".into(), ino: 10 }, 23, s("0a0000000000000004002f726567")),
            (Request::Release { path: "/r".into(), ino: 12, to: "/t".into() }, 24, s("0c0000000000000002002f7402002f72")),
            (Request::Unlink { path: "/un".into() }, 4, s("03002f756e")),
            (Request::Write { ino: 3, offset: 12345, len: 4096 }, 5, s("030000000000000039300000000000000010000000000000")),
            (Request::Read { ino: 4, offset: 7, len: 1 }, 6, s("040000000000000007000000000000000100000000000000")),
            (Request::TruncateChunks { ino: 5, len: 6 }, 7, s("05000000000000000600000000000000")),
            (Request::Fsync { ino: 7 }, 8, s("0700000000000000")),
            (Request::Mkdir { path: "/d".into(), mode: 0o755, uid: 1, gid: 2 }, 9, s("ed010000010000000200000002002f64")),
            (Request::Rmdir { path: "/rd".into() }, 10, s("03002f7264")),
            (Request::Truncate { path: "/f".into(), ino: 0x0201, len: 77 }, 12, s("4d00000000000000010200000000000002002f66")),
            (Request::List { path: "/ls".into(), after: Vec::new(), max: 100 }, 13, s("6400000003002f6c730000")),
            (Request::List { path: "/ls".into(), after: "name".into(), max: 1 }, 13, s("0100000003002f6c7304006e616d65")),
            (Request::Take { tree: true, path: "/from".into(), to: "/to".into() }, 14, s("0105002f66726f6d03002f746f")),
            (Request::Install { path: "/in".into(), attr: ATTR }, 15, format!("{ATTR_HEX}03002f696e")),
            (Request::MoveTree { from: "/a".into(), to: "/b/c".into() }, 16, s("02002f6104002f622f63")),
            (Request::InstallMany { count: 12 }, 17, s("0c000000")),
            (Request::Unregister { count: 0x0102 }, 32, s("02010000")),
            (Request::PublishMany { count: 0x0304 }, 33, s("04030000")),
            (Request::StatFs, 18, s("")),
            (Request::Ping, 30, s("")),
            (Request::Holders { path: "/h".into() }, 31, s("02002f68")),
            (Request::RemoveChunks { ino: 79 }, 20, s("4f00000000000000")),
            (Request::ChunkExtent { ino: 81 }, 22, s("5100000000000000")),
            (Request::MoveBegin { mover: 0x0102, from: "/a".into(), to: "/b".into() }, 25, s("020100000000000002002f6102002f62")),
            (Request::MoveEnd { mover: 3, moved: true }, 26, s("030000000000000001")),
            (Request::Touch { path: "/t".into() }, 27, s("02002f74")),
            (Request::Enlist { rank: 0x0102, path: "/e".into() }, 28, s("0201000002002f65")),
            (Request::Drain { path: "/d".into() }, 29, s("02002f64")),
        ]
    }

    #[test]
    fn request_bytes_are_pinned() {
        let mut seen = std::collections::BTreeSet::new();
        for (request, opcode, body) in requests() {
            let buf = request.encode(7, ID);
            assert_eq!(hex(&buf[..HEADER_LEN]), header_hex(opcode, 7), "{request:?}");
            assert_eq!(buf[HEADER_LEN..REQUEST_HEADER_LEN], [0; CREDENTIAL_LEN], "{request:?}: the sender fills the credential in");
            assert_eq!(hex(&buf[REQUEST_HEADER_LEN..]), body, "{request:?}");
            assert_eq!(decode_request(&buf).map(|(_, r)| r), Ok(request));
            seen.insert(opcode);
        }
        // Retired: 11, a directory's entry count (now holders: Enlist, Drain, Touch); 19, the
        // undo of a create made at once with its parent's count; 21, a tree's longest path, now
        // the reply to a move's fence.
        let retired = [11, 19, 21];
        assert_eq!(seen, (1..=33).filter(|op| !retired.contains(op)).collect(), "every opcode is pinned");
        for unknown in [0u16, 11, 19, 21, 34, u16::MAX] {
            let mut buf = Request::StatFs.encode(7, ID);
            buf[4..6].copy_from_slice(&unknown.to_le_bytes());
            assert_eq!(decode_request(&buf), Err(WireError::UnknownOpcode(unknown)));
        }
    }

    #[test]
    fn reply_bytes_are_pinned() {
        let usage = FsUsage { fs_id: 1, total_bytes: 2, free_bytes: 3, avail_bytes: 4, total_files: 5, free_files: 6, records: 7 };
        let cases = [
            (Opcode::Fsync, 0, ReplyBody::Empty, String::new()),
            (Opcode::Stat, 0, ReplyBody::Attr(ATTR), ATTR_HEX.to_string()),
            (Opcode::Open, 0, ReplyBody::Opened { attr: ATTR, old_size: 99, created: true }, format!("{ATTR_HEX}630000000000000001")),
            (Opcode::Open, 0, ReplyBody::Opened { attr: ATTR, old_size: 98, created: false }, format!("{ATTR_HEX}620000000000000000")),
            (Opcode::Truncate, 0, ReplyBody::Sized { attr: ATTR, old_size: 3 }, format!("{ATTR_HEX}0300000000000000")),
            (Opcode::Take, 0, ReplyBody::Attr(ATTR), ATTR_HEX.to_string()),
            (Opcode::Install, 0, ReplyBody::Replaced(None), "00".to_string()),
            (Opcode::Install, 0, ReplyBody::Replaced(Some(ATTR)), format!("01{ATTR_HEX}")),
            (Opcode::Read, 0, ReplyBody::Count(0x1234), "3412000000000000".to_string()),
            (
                Opcode::StatFs,
                0,
                ReplyBody::FsUsage(usage),
                concat!(
                    "0100000000000000",
                    "0200000000000000",
                    "0300000000000000",
                    "0400000000000000",
                    "0500000000000000",
                    "0600000000000000",
                    "0700000000000000",
                )
                .to_string(),
            ),
            (Opcode::Stat, libc::ENOENT, ReplyBody::Empty, String::new()),
        ];
        for (opcode, errno, body, body_hex) in cases {
            let reply = Reply { request_id: ID, opcode: opcode as u16, errno, body };
            let buf = reply.encode();
            assert_eq!(hex(&buf[..HEADER_LEN]), header_hex(opcode as u16, errno as u32), "{reply:?}");
            assert_eq!(hex(&buf[HEADER_LEN..]), body_hex, "{reply:?}");
            assert_eq!(Reply::decode(&buf), Ok(reply));
        }
    }

    /// The body each opcode's successful reply carries; a body of another kind of the same
    /// length would decode to a different value.
    #[test]
    fn reply_body_kind_of_every_opcode() {
        let count = ReplyBody::Count(5);
        let cases = [
            (Opcode::Open, 1, ReplyBody::Opened { attr: ATTR, old_size: 1, created: false }),
            (Opcode::Stat, 2, ReplyBody::Attr(ATTR)),
            (Opcode::Publish, 3, ReplyBody::Attr(ATTR)),
            (Opcode::Unlink, 4, ReplyBody::Attr(ATTR)),
            (Opcode::Write, 5, count),
            (Opcode::Read, 6, count),
            (Opcode::TruncateChunks, 7, ReplyBody::Empty),
            (Opcode::Fsync, 8, ReplyBody::Empty),
            (Opcode::Mkdir, 9, ReplyBody::Attr(ATTR)),
            (Opcode::Rmdir, 10, ReplyBody::Attr(ATTR)),
            (Opcode::Truncate, 12, ReplyBody::Sized { attr: ATTR, old_size: 1 }),
            (Opcode::List, 13, count),
            (Opcode::Take, 14, ReplyBody::Attr(ATTR)),
            (Opcode::Install, 15, ReplyBody::Replaced(None)),
            (Opcode::MoveTree, 16, count),
            (Opcode::InstallMany, 17, count),
            (Opcode::StatFs, 18, ReplyBody::FsUsage(FsUsage::default())),
            (Opcode::RemoveChunks, 20, ReplyBody::Empty),
            (Opcode::ChunkExtent, 22, count),
            (Opcode::Register, 23, ReplyBody::Attr(ATTR)),
            (Opcode::Release, 24, ReplyBody::Empty),
            (Opcode::MoveBegin, 25, count),
            (Opcode::MoveEnd, 26, ReplyBody::Empty),
            (Opcode::Touch, 27, ReplyBody::Empty),
            (Opcode::Enlist, 28, ReplyBody::Empty),
            (Opcode::Drain, 29, ReplyBody::Empty),
            (Opcode::Unregister, 32, ReplyBody::Empty),
            (Opcode::PublishMany, 33, ReplyBody::Empty),
        ];
        for (opcode, number, body) in cases {
            assert_eq!(opcode as u16, number);
            let reply = Reply { request_id: ID, opcode: number, errno: 0, body };
            assert_eq!(Reply::decode(&reply.encode()), Ok(reply), "{opcode:?}");
        }
    }
}

#[test]
fn the_longest_record_fits_its_bound() {
    let path = [b"/".as_slice(), &vec![b'x'; crate::path::MAX_PATH - 1]].concat();
    let bytes = encode_records(&[(path, Attr::default())]);
    assert_eq!(bytes.len(), MAX_RECORD_LEN);
}
