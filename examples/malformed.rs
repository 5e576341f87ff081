//! Sends malformed and hostile requests to every rank's server and checks that each one is
//! answered with an errno (or dropped when it cannot be answered), and that every server still
//! serves correct data afterwards. Run under mpirun; prints `malformed: N passed, M failed`.

mod common;

use benchfs::testing::{ChunkIndex, InodeId, Request, Ring, CREDENTIAL_LEN, EXTERNAL_SOURCE, HEADER_LEN, MAGIC, REQUEST_HEADER_LEN};
use mpi::traits::*;

use common::{peak_rss, Checker};

/// Every failure is printed: there are a few dozen checks per server, so the output stays short.
const MAX_PRINTED: u64 = u64::MAX;

/// Checks that the request `header` + `payload` sent to rank `to` is answered with `errno`.
fn answered(c: &mut Checker, what: &str, to: u32, header: Vec<u8>, payload: Vec<u8>, errno: i32) {
    let got = benchfs::testing::send_raw_request(to, header, payload, true);
    let ok = matches!(got, Ok(Some(e)) if e == errno);
    c.expect(what, ok, (to, got.map_err(|e| e.errno()), errno));
}

/// Checks that a request that cannot be answered is dropped without harm.
fn dropped(c: &mut Checker, what: &str, to: u32, header: Vec<u8>) {
    let got = benchfs::testing::send_raw_request(to, header, Vec::new(), false);
    c.expect(what, matches!(got, Ok(None)), got.map_err(|e| e.errno()));
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn header(opcode: u16, source: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&MAGIC.to_le_bytes());
    h.extend_from_slice(&opcode.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&source.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    // A zero credential: the sending transport puts its own in.
    h.extend_from_slice(&[0u8; CREDENTIAL_LEN]);
    h
}

/// A request without the job's credential, or claiming to come from elsewhere, is dropped
/// unserved: an unlink sent with a forged credential leaves the file in place.
fn forged_credentials(c: &mut Checker, me: u32, to: u32, ring: &Ring) {
    let Some(path) = (0..1000).map(|i| format!("/cred.{me}.{to}.{i}")).find(|p| ring.meta_owner(p.as_bytes()).0 == to) else { return };
    let created = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644).and_then(benchfs::close);
    c.expect("create a file to forge an unlink of", created.is_ok(), &path);
    for (what, credential) in
        [("a forged credential", [0x5au8; CREDENTIAL_LEN]), ("the rank key with its last bit flipped", [0; CREDENTIAL_LEN])]
    {
        let mut unlink = Request::Unlink { path: path.clone().into_bytes() }.encode(me, 0);
        unlink[HEADER_LEN..REQUEST_HEADER_LEN].copy_from_slice(&credential);
        if credential == [0; CREDENTIAL_LEN] {
            // All zero would be filled in: flip one bit of the real key instead.
            let real = benchfs::testing::credential().expect("this rank's credential");
            unlink[HEADER_LEN..REQUEST_HEADER_LEN].copy_from_slice(&real);
            unlink[REQUEST_HEADER_LEN - 1] ^= 1;
        }
        let sent = benchfs::testing::send_raw_request(to, unlink, Vec::new(), false);
        c.expect(&format!("unlink with {what} sent"), sent.is_ok(), sent.map_err(|e| e.errno()));
        // Served in order after it, on the same endpoint: the file must still be there.
        c.expect(&format!("unlink with {what} not served"), benchfs::stat(&path).is_ok(), &path);
    }
    let claimed = Request::Unlink { path: path.clone().into_bytes() }.encode(EXTERNAL_SOURCE, 0);
    let sent = benchfs::testing::send_raw_request(to, claimed, Vec::new(), false);
    c.expect("unlink claiming to be an attached client sent", sent.is_ok(), sent.map_err(|e| e.errno()));
    c.expect("a rank passing for an attached client not served", benchfs::stat(&path).is_ok(), &path);
    c.expect("clean up", benchfs::unlink(&path).is_ok(), &path);
}

/// A payload far larger than its request admits (a write of 10 bytes, one moved record, one
/// writer release) must be refused before its receiver allocates or receives it: the receiving
/// rank's peak memory does not grow by the payload's size.
fn oversized_payloads(c: &mut Checker, world: &mpi::topology::SimpleCommunicator, ring: &Ring, chunk: u64) {
    const BIG: usize = 256 << 20;
    let (me, n) = (world.rank() as u32, world.size() as u32);
    let victim = n - 1;
    let before = peak_rss();
    world.barrier();
    if me == 0 && victim != 0 {
        let payload = vec![0x5au8; BIG];
        let ino = 0x7778_0000u64;
        if let Some(k) = (0..10_000u64).find(|&k| ring.chunk_owner(InodeId(ino), ChunkIndex(k)).0 == victim) {
            let w = Request::Write { ino, offset: k * chunk, len: 10 }.encode(me, 0);
            answered(c, "write payload far longer than len", victim, w, payload.clone(), libc::EINVAL);
        }
        let install = Request::InstallMany { count: 1 }.encode(me, 0);
        let got = benchfs::testing::send_raw_request(victim, install, payload.clone(), true);
        c.expect("one moved record with a huge payload refused", matches!(got, Ok(Some(e)) if e != 0), got.map_err(|e| e.errno()));
        let unregister = Request::Unregister { count: 1 }.encode(me, 0);
        let got = benchfs::testing::send_raw_request(victim, unregister, payload, true);
        c.expect("one writer release with a huge payload refused", matches!(got, Ok(Some(e)) if e != 0), got.map_err(|e| e.errno()));
    }
    world.barrier();
    if me == victim && victim != 0 {
        let grown = peak_rss().saturating_sub(before);
        c.expect("oversized payloads not allocated by their receiver", grown < BIG as u64 / 4, grown);
    }
    world.barrier();
}

fn main() {
    let universe = mpi::initialize().expect("MPI initializes");
    let world = universe.world();
    let (me, n) = (world.rank() as u32, world.size() as u32);
    benchfs::init(&world).expect("benchfs initializes");
    let mut c = Checker::new("malformed", me as usize, MAX_PRINTED);
    let ring = Ring::new(n);
    let chunk: u64 = std::env::var("BENCHFS_CHUNK_SIZE").ok().and_then(|v| benchfs::parse_size(&v)).unwrap_or(1 << 20);
    let einval = libc::EINVAL;
    let eproto = libc::EPROTO;

    for to in 0..n {
        // Unanswerable: no magic, truncated envelope, sender outside the job.
        let mut bad_magic = header(2, me);
        bad_magic[0] ^= 0xff;
        dropped(&mut c, "bad magic", to, bad_magic);
        dropped(&mut c, "truncated envelope", to, header(2, me)[..10].to_vec());
        dropped(&mut c, "empty header", to, Vec::new());
        dropped(&mut c, "sender outside the job", to, header(2, n + 7));
        forged_credentials(&mut c, me, to, &ring);

        // Answerable but malformed.
        answered(&mut c, "unknown opcode", to, header(999, me), Vec::new(), eproto);
        let mut stat = Request::Stat { path: "/x".into() }.encode(me, 0);
        stat[REQUEST_HEADER_LEN] = 0xff;
        stat[REQUEST_HEADER_LEN + 1] = 0x7f;
        answered(&mut c, "path length beyond the message", to, stat, Vec::new(), eproto);
        let mut trailing = Request::Fsync { ino: 1 }.encode(me, 0);
        trailing.extend_from_slice(&[1, 2, 3]);
        answered(&mut c, "trailing bytes", to, trailing, Vec::new(), eproto);

        // Well-formed but invalid for this server.
        let unnormalised = Request::Stat { path: "/a//b/../c".into() }.encode(me, 0);
        answered(&mut c, "path not normalised", to, unnormalised, Vec::new(), einval);
        let relative = Request::Stat { path: "relative".into() }.encode(me, 0);
        answered(&mut c, "relative path", to, relative, Vec::new(), einval);
        let nul = Request::Stat { path: b"/a\0b".to_vec() }.encode(me, 0);
        answered(&mut c, "path with a NUL byte", to, nul, Vec::new(), einval);
        // Names are bytes: a path that is not UTF-8 is served like any other (here: not found).
        let odd = |i: u32| [&b"/\xff\xfe"[..], i.to_string().as_bytes()].concat();
        if let Some(path) = (0..1000).map(odd).find(|p| ring.meta_owner(p).0 == to) {
            let req = Request::Stat { path }.encode(me, 0);
            answered(&mut c, "path not UTF-8", to, req, Vec::new(), libc::ENOENT);
        }
        if let Some(foreign) = (0..1000).map(|i| format!("/foreign{i}").into_bytes()).find(|p| ring.meta_owner(p).0 != to) {
            let req = Request::Stat { path: foreign }.encode(me, 0);
            answered(&mut c, "path owned by another rank", to, req, Vec::new(), einval);
        }
        let ino = 0x7777_0000u64 + to as u64;
        if let Some(k) = (0..10_000u64).find(|&k| ring.chunk_owner(InodeId(ino), ChunkIndex(k)).0 == to) {
            let at = k * chunk;
            let w = Request::Write { ino, offset: at, len: 10 }.encode(me, 0);
            answered(&mut c, "write payload shorter than len", to, w, vec![1; 4], einval);
            let w = Request::Write { ino, offset: at + chunk - 2, len: 4 }.encode(me, 0);
            answered(&mut c, "write spanning two chunks", to, w, vec![1; 4], einval);
            let r = Request::Read { ino, offset: at, len: chunk + 1 }.encode(me, 0);
            answered(&mut c, "read longer than a chunk", to, r, Vec::new(), einval);
            let r = Request::Read { ino, offset: u64::MAX - 3, len: 8 }.encode(me, 0);
            answered(&mut c, "read offset overflow", to, r, Vec::new(), einval);
            let r = Request::Read { ino, offset: at, len: 0 }.encode(me, 0);
            answered(&mut c, "empty read", to, r, Vec::new(), einval);
        }
        if let Some(k) = (0..10_000u64).find(|&k| ring.chunk_owner(InodeId(ino), ChunkIndex(k)).0 != to) {
            let w = Request::Write { ino, offset: k * chunk, len: 4 }.encode(me, 0);
            answered(&mut c, "write to a chunk owned elsewhere", to, w, vec![1; 4], einval);
        }

        // Random bodies behind valid envelopes: every one must be answered (with any status).
        let mut rng = Lcg(0x5eed ^ ((me as u64) << 32) ^ to as u64);
        let mut unanswered = 0;
        for _ in 0..300 {
            let opcode = (rng.next() % 10) as u16;
            let mut h = header(opcode, me);
            let body_len = (rng.next() % 64) as usize;
            h.extend((0..body_len).map(|_| rng.next() as u8));
            let payload: Vec<u8> = (0..(rng.next() % 3) * 1000).map(|_| rng.next() as u8).collect();
            if benchfs::testing::send_raw_request(to, h, payload, true).map_or(true, |r| r.is_none()) {
                unanswered += 1;
            }
        }
        c.expect("random requests all answered", unanswered == 0, unanswered);
    }
    world.barrier();
    oversized_payloads(&mut c, &world, &ring, chunk);

    // Every server still serves: each rank writes a multi-chunk file and all verify it.
    let pattern = |owner: u32, i: usize| (owner as usize * 131 + i * 7 + i / 251) as u8;
    let len = (chunk * 3 + 1234) as usize;
    let path = format!("/after-malformed.{me}");
    let data: Vec<u8> = (0..len).map(|i| pattern(me, i)).collect();
    let fd = benchfs::open(&path, libc::O_CREAT | libc::O_WRONLY, 0o644).expect("create after malformed traffic");
    c.expect("write after malformed traffic", benchfs::pwrite(fd, &data, 0).ok() == Some(len), &path);
    c.expect("close", benchfs::close(fd).is_ok(), &path);
    world.barrier();
    for owner in 0..n {
        let path = format!("/after-malformed.{owner}");
        let fd = benchfs::open(&path, libc::O_RDONLY, 0).expect("open after malformed traffic");
        let mut back = vec![0u8; len + 10];
        let got = benchfs::pread(fd, &mut back, 0);
        let same = got.as_ref().ok() == Some(&len) && back[..len].iter().enumerate().all(|(i, &b)| b == pattern(owner, i));
        c.expect("data intact after malformed traffic", same, (&path, got.map_err(|e| e.errno())));
        benchfs::close(fd).expect("close");
    }
    world.barrier();

    let totals = c.totals(&world);
    benchfs::finalize().expect("benchfs finalizes");
    totals.print();
    if totals.failed > 0 {
        std::process::exit(1);
    }
}
