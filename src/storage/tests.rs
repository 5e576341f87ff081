//! Tests of the chunk store. Every test runs on both backends; where the kernel refuses io_uring
//! the io_uring variant fails, unless `BENCHFS_TEST_ALLOW_SKIP=io_uring` allows a printed skip.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_executor::{LocalExecutor, Task};
use futures_lite::future;

use super::{Backend, ChunkStore, IoBuf};
use crate::ids::InodeId;

const MIB: usize = 1 << 20;

/// A directory under /tmp unique to this test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempDir(PathBuf::from(format!("/tmp/benchfs-storage-test-{}-{tag}-{n}", std::process::id())))
    }

    fn store_dir(&self) -> PathBuf {
        self.0.join("chunks")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Set to `io_uring` to let the io_uring variants skip where the kernel refuses io_uring.
const ALLOW_SKIP: &str = "BENCHFS_TEST_ALLOW_SKIP";

/// Opens a store on `backend`. Where the kernel refuses io_uring the test fails, unless
/// `BENCHFS_TEST_ALLOW_SKIP=io_uring` allows a skip: then it says so on the terminal (not in
/// the captured output) and returns `None`.
fn open(dir: &TempDir, backend: Backend, queue_depth: u32) -> Option<ChunkStore> {
    // The test thread submits, as the progress thread does in a running rank.
    super::own_rings_here();
    match ChunkStore::open_with_backend(&dir.store_dir(), queue_depth, backend) {
        Ok(store) => Some(store),
        Err(e) if backend == Backend::Uring && std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "io_uring") => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP (allowed by {ALLOW_SKIP}=io_uring): io_uring unavailable: {e}");
            None
        }
        Err(e) => panic!("cannot open a {backend:?} store: {e} (set {ALLOW_SKIP}=io_uring to skip where the kernel refuses io_uring)"),
    }
}

/// Blocks until the store's eventfd is readable, then clears it. Panics if nothing arrives
/// for a long time, which would mean a lost wake-up.
fn wait_for_completion(store: &ChunkStore) {
    let Some(fd) = store.event_fd() else { return };
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert!(n != 0, "no completion within 10 s with {} operations in flight", store.inflight());
    store.clear_event();
}

/// The progress loop in miniature: runs `ex` until `task` finishes.
fn drive<T>(store: &ChunkStore, ex: &LocalExecutor<'_>, task: Task<T>) -> T {
    while !task.is_finished() {
        store.submit();
        let reaped = store.poll_completions();
        if ex.try_tick() || reaped > 0 {
            continue;
        }
        assert!(store.inflight() > 0, "stalled: no runnable task and no I/O in flight");
        wait_for_completion(store);
    }
    future::block_on(task)
}

fn run<T>(store: &ChunkStore, fut: impl Future<Output = T>) -> T {
    let ex = LocalExecutor::new();
    let task = ex.spawn(fut);
    drive(store, &ex, task)
}

/// Keeps polling completions until the kernel owns nothing.
fn drain(store: &ChunkStore) {
    store.submit();
    while store.inflight() > 0 {
        if store.poll_completions() == 0 {
            wait_for_completion(store);
        }
    }
}

/// Deterministic non-zero test bytes, distinct from holes.
fn pattern_byte(ino: u64, pos: u64) -> u8 {
    ((pos.wrapping_mul(31) ^ (pos >> 11) ^ ino.wrapping_mul(0x9e37)) % 251) as u8 + 1
}

fn pattern(ino: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(ino, offset + i)).collect()
}

/// xorshift64*: enough randomness for test workloads, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn read_vec(store: &ChunkStore, ino: InodeId, offset: u64, len: usize) -> (usize, Vec<u8>) {
    let (n, buf) = run(store, store.read(ino, offset, IoBuf::Owned(vec![0xee; len]))).unwrap();
    (n, buf.into_vec().unwrap())
}

/// Generates `#[test]`s `uring` and `sync` in a module named after the body function.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                super::$name(super::Backend::Uring);
            }
            #[test]
            fn sync() {
                super::$name(super::Backend::Sync);
            }
        }
    )*};
}

both_backends!(
    round_trip_unaligned,
    holes_and_eof,
    concurrent_writes_match_model,
    truncate_shrinks_and_removes,
    fsync_existing_and_missing,
    dropped_futures_leave_no_damage,
    waiting_for_a_slot_survives_drops,
    shutdown_removes_unless_kept,
);

fn round_trip_unaligned(backend: Backend) {
    let dir = TempDir::new("roundtrip");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    let ino = InodeId(0xabc);
    let offset = 3 * MIB as u64 + 4093;
    let data = pattern(ino.0, offset, 5 * MIB + 777);
    let written = run(&store, store.write(ino, offset, IoBuf::Owned(data.clone()))).unwrap();
    assert_eq!(written, data.len());

    let (n, back) = read_vec(&store, ino, offset, data.len());
    assert_eq!(n, data.len());
    assert!(back == data, "whole-range read differs");

    // An unaligned window inside, read into caller memory.
    let mut window = vec![0u8; 2 * MIB + 13];
    let start = 1_234_567;
    let raw = unsafe { IoBuf::from_raw(window.as_mut_ptr(), window.len()) };
    let (n, _) = run(&store, store.read(ino, offset + start as u64, raw)).unwrap();
    assert_eq!(n, window.len());
    assert!(window[..] == data[start..start + window.len()], "window read differs");

    // A write from caller memory overwriting part of it.
    let mut patch = pattern(7, 0, 300_001);
    let raw = unsafe { IoBuf::from_raw(patch.as_mut_ptr(), patch.len()) };
    run(&store, store.write(ino, offset + 999, raw)).unwrap();
    let (n, back) = read_vec(&store, ino, offset, data.len());
    assert_eq!(n, data.len());
    let mut expect = data;
    expect[999..999 + patch.len()].copy_from_slice(&patch);
    assert!(back == expect, "read after overwrite differs");
}

fn holes_and_eof(backend: Backend) {
    let dir = TempDir::new("holes");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    let ino = InodeId(1);
    let data = pattern(1, MIB as u64, 100);
    run(&store, store.write(ino, MIB as u64, IoBuf::Owned(data.clone()))).unwrap();

    let (n, buf) = read_vec(&store, ino, 4096, 8192);
    assert_eq!(n, 8192, "a hole inside the file reads in full");
    assert!(buf.iter().all(|&b| b == 0), "a hole reads as zeros");

    let (n, buf) = read_vec(&store, ino, MIB as u64 + 50, 4096);
    assert_eq!(n, 50, "the read stops at the local end of file");
    assert_eq!(buf[..50], data[50..]);

    assert_eq!(read_vec(&store, ino, 2 * MIB as u64, 4096).0, 0, "past the end reads 0 bytes");
    assert_eq!(read_vec(&store, InodeId(2), 0, 4096).0, 0, "a missing file reads 0 bytes");
    assert_eq!(run(&store, store.write(InodeId(3), 0, IoBuf::Owned(Vec::new()))).unwrap(), 0);
    assert!(run(&store, store.write(ino, u64::MAX, IoBuf::Owned(vec![1]))).is_err());
}

/// 200 writes of random sizes at random, non-overlapping places in 10 files, all in flight at
/// once through a small ring, then random concurrent reads, all checked against a model.
fn concurrent_writes_match_model(backend: Backend) {
    const FILES: u64 = 10;
    const SPAN: u64 = 8 * MIB as u64;
    let dir = TempDir::new("model");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    let mut rng = Rng(0x5eed_1234_abcd_0001);

    let mut extents: Vec<(u64, u64, usize)> = Vec::new();
    while extents.len() < 200 {
        let ino = rng.below(FILES);
        let len = 1 + rng.below(256 * 1024) as usize;
        let offset = rng.below(SPAN);
        let overlaps = extents.iter().any(|&(i, o, l)| i == ino && offset < o + l as u64 && o < offset + len as u64);
        if !overlaps {
            extents.push((ino, offset, len));
        }
    }
    let mut model: Vec<Vec<u8>> = vec![Vec::new(); FILES as usize];
    for &(ino, offset, len) in &extents {
        let file = &mut model[ino as usize];
        let end = offset as usize + len;
        if file.len() < end {
            file.resize(end, 0);
        }
        file[offset as usize..end].copy_from_slice(&pattern(ino, offset, len));
    }

    let ex = LocalExecutor::new();
    let writes: Vec<_> = extents
        .iter()
        .enumerate()
        .map(|(k, &(ino, offset, len))| {
            let store = &store;
            ex.spawn(async move {
                let mut data = pattern(ino, offset, len);
                let buf = if k % 2 == 0 {
                    IoBuf::Owned(data.clone())
                } else {
                    // SAFETY: `data` outlives the awaited write.
                    unsafe { IoBuf::from_raw(data.as_mut_ptr(), data.len()) }
                };
                let n = store.write(InodeId(ino), offset, buf).await.unwrap();
                assert_eq!(n, data.len());
                drop(data);
            })
        })
        .collect();
    let all = ex.spawn(async move {
        for write in writes {
            write.await;
        }
    });
    drive(&store, &ex, all);

    for ino in 0..FILES {
        let expect = &model[ino as usize];
        let (n, back) = read_vec(&store, InodeId(ino), 0, expect.len() + 4096);
        assert_eq!(n, expect.len(), "size of file {ino}");
        assert!(back[..n] == expect[..], "content of file {ino}");
    }

    let reads: Vec<_> = (0..100)
        .map(|_| {
            let ino = rng.below(FILES);
            let offset = rng.below(SPAN);
            let len = 1 + rng.below(512 * 1024) as usize;
            let store = &store;
            let expect = &model[ino as usize];
            ex.spawn(async move {
                let (n, buf) = store.read(InodeId(ino), offset, IoBuf::Owned(vec![0xee; len])).await.unwrap();
                let avail = expect.len().saturating_sub(offset as usize).min(len);
                assert_eq!(n, avail, "count of read at {offset}+{len} of file {ino}");
                let buf = buf.into_vec().unwrap();
                if n > 0 {
                    assert!(buf[..n] == expect[offset as usize..offset as usize + n]);
                }
            })
        })
        .collect();
    let all = ex.spawn(async move {
        for read in reads {
            read.await;
        }
    });
    drive(&store, &ex, all);
    assert_eq!(store.inflight(), 0);
}

fn truncate_shrinks_and_removes(backend: Backend) {
    let dir = TempDir::new("truncate");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    let ino = InodeId(0x77);
    let data = pattern(ino.0, 0, 3 * MIB);
    run(&store, store.write(ino, 0, IoBuf::Owned(data.clone()))).unwrap();

    store.truncate(ino, MIB as u64 + 5).unwrap();
    let (n, back) = read_vec(&store, ino, MIB as u64 - 10, 4096);
    assert_eq!(n, 15);
    assert_eq!(back[..15], data[MIB - 10..MIB + 5]);

    // Writing past the cut leaves a hole where the old bytes were.
    run(&store, store.write(ino, 2 * MIB as u64, IoBuf::Owned(vec![9; 10]))).unwrap();
    let (n, back) = read_vec(&store, ino, MIB as u64, 4096);
    assert_eq!(n, 4096);
    assert_eq!(back[..5], data[MIB..MIB + 5]);
    assert!(back[5..].iter().all(|&b| b == 0), "bytes cut off come back as zeros");

    let path = dir.store_dir().join(format!("{:016x}", ino.0));
    assert!(path.exists());
    store.truncate(ino, 0).unwrap();
    assert!(path.exists(), "truncate to 0 keeps the (empty) file");
    assert_eq!(read_vec(&store, ino, 0, 4096).0, 0);
    store.remove(ino).unwrap();
    assert!(!path.exists(), "remove deletes the file");
    store.remove(ino).unwrap();
    store.truncate(InodeId(0x78), 100).unwrap();
    assert!(!dir.store_dir().join(format!("{:016x}", 0x78)).exists());

    // The file comes back on the next write.
    run(&store, store.write(ino, 10, IoBuf::Owned(vec![5; 10]))).unwrap();
    let (n, back) = read_vec(&store, ino, 0, 100);
    assert_eq!(n, 20);
    assert_eq!(back[..20], [[0; 10], [5; 10]].concat()[..]);
    store.truncate(ino, 4 * MIB as u64).unwrap();
    assert_eq!(read_vec(&store, ino, 0, 4096).0, 20, "truncate never extends");
}

fn fsync_existing_and_missing(backend: Backend) {
    let dir = TempDir::new("fsync");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    let ino = InodeId(5);
    run(&store, store.write(ino, 123, IoBuf::Owned(vec![1; 4096]))).unwrap();
    run(&store, store.fsync(ino)).unwrap();
    run(&store, store.fsync(InodeId(6))).unwrap();
    assert!(store.used_bytes() >= 4096);
}

/// Futures dropped while the kernel works for them: nothing crashes, the store stays usable,
/// and what the kernel completed is intact.
fn dropped_futures_leave_no_damage(backend: Backend) {
    let dir = TempDir::new("drop");
    let Some(store) = open(&dir, backend, 4) else {
        return;
    };
    let ino = InodeId(9);
    let offset = 12_345;
    let data = pattern(ino.0, offset, 8 * MIB + 3);

    let mut write = Box::pin(store.write(ino, offset, IoBuf::Owned(data.clone())));
    let first = future::block_on(future::poll_once(write.as_mut()));
    assert_eq!(first.is_none(), backend == Backend::Uring, "io_uring writes complete later");
    store.submit();
    drop(write);

    let mut read = Box::pin(store.read(ino, 0, IoBuf::Owned(vec![0; 4 * MIB])));
    let _ = future::block_on(future::poll_once(read.as_mut()));
    store.submit();
    drop(read);

    drain(&store);
    assert_eq!(store.inflight(), 0);

    // The dropped write went to the kernel as one operation; whatever it wrote is correct.
    let (n, back) = read_vec(&store, ino, offset, data.len());
    assert!(n > 0, "the submitted write reached the file");
    assert!(back[..n] == data[..n], "bytes of the dropped write differ");

    let more = pattern(ino.0, 0, 1000);
    run(&store, store.write(ino, 0, IoBuf::Owned(more.clone()))).unwrap();
    assert_eq!(read_vec(&store, ino, 0, 1000).1, more);

    // Shutting down with a dropped operation still in the kernel waits for it.
    let mut write = Box::pin(store.write(ino, 0, IoBuf::Owned(vec![4; 16 * MIB])));
    let _ = future::block_on(future::poll_once(write.as_mut()));
    store.submit();
    drop(write);
    store.shutdown(false).unwrap();
    assert!(!dir.store_dir().exists());
}

/// With a one-slot ring: an operation woken for the free slot and then dropped passes the
/// slot on, so the next waiting operation still runs.
fn waiting_for_a_slot_survives_drops(backend: Backend) {
    let dir = TempDir::new("admission");
    let Some(store) = open(&dir, backend, 1) else {
        return;
    };
    let ex = LocalExecutor::new();
    let big = ex.spawn(store.write(InodeId(1), 0, IoBuf::Owned(vec![1; 4 * MIB])));
    while ex.try_tick() {}

    let mut doomed = Box::pin(store.write(InodeId(2), 0, IoBuf::Owned(vec![2; 100])));
    let _ = future::block_on(future::poll_once(doomed.as_mut()));
    let next = ex.spawn(store.write(InodeId(3), 0, IoBuf::Owned(vec![3; 100])));
    while ex.try_tick() {}

    assert_eq!(drive(&store, &ex, big).unwrap(), 4 * MIB);
    drop(doomed);
    assert_eq!(drive(&store, &ex, next).unwrap(), 100);

    // Many more operations than slots, all at once.
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let store = &store;
            ex.spawn(async move { store.write(InodeId(4), i * 1000, IoBuf::Owned(vec![i as u8 + 1; 1000])).await })
        })
        .collect();
    let all = ex.spawn(async move {
        for task in tasks {
            task.await.unwrap();
        }
    });
    drive(&store, &ex, all);
    let (n, back) = read_vec(&store, InodeId(4), 0, 64_000);
    assert_eq!(n, 64_000);
    assert!(back.chunks(1000).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8 + 1)));
}

fn shutdown_removes_unless_kept(backend: Backend) {
    let dir = TempDir::new("shutdown");
    let Some(store) = open(&dir, backend, 8) else {
        return;
    };
    assert_eq!(store.used_bytes(), 0);
    for ino in 0..3 {
        run(&store, store.write(InodeId(ino), 0, IoBuf::Owned(vec![1; 10_000]))).unwrap();
    }
    assert!(store.used_bytes() >= 30_000);
    store.shutdown(true).unwrap();
    assert_eq!(std::fs::read_dir(dir.store_dir()).unwrap().count(), 3, "kept");

    let store = open(&dir, backend, 8).unwrap();
    assert_eq!(read_vec(&store, InodeId(2), 0, 20_000).0, 10_000, "data survives a kept shutdown");
    store.shutdown(false).unwrap();
    assert!(!dir.store_dir().exists(), "removed");
}

/// Throughput on /dev/shm for both backends: writes into a fresh file (tmpfs allocates pages),
/// overwrites of the same range, then reads.
/// `cargo test --release -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_throughput() {
    for (size, count) in [(4096usize, 65_536usize), (MIB, 1024)] {
        for (backend, depth) in [(Backend::Sync, 1), (Backend::Uring, 1), (Backend::Uring, 32)] {
            let dir = TempDir(PathBuf::from(format!("/dev/shm/benchfs-storage-bench-{}", std::process::id())));
            let Some(store) = open(&dir, backend, 64) else {
                continue;
            };
            let fresh = time_phase(&store, size, count, depth, true);
            let overwrite = time_phase(&store, size, count, depth, true);
            let read = time_phase(&store, size, count, depth, false);
            let mib = (size * count) as f64 / MIB as f64;
            let rate = |secs: f64| format!("{:>6.0} MiB/s {:>7.1} kop/s", mib / secs, count as f64 / secs / 1e3);
            eprintln!(
                "{backend:?} qd{depth:<2} {size:>7} B x {count:>5}: fresh write {} | overwrite {} | read {}",
                rate(fresh),
                rate(overwrite),
                rate(read),
            );
            store.shutdown(false).unwrap();
        }
    }
}

/// Seconds to write (or read) `count` blocks of `size` bytes in one file, with `depth` tasks
/// each issuing its share one at a time from a buffer of its own.
fn time_phase(store: &ChunkStore, size: usize, count: usize, depth: usize, write: bool) -> f64 {
    let ex = LocalExecutor::new();
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..depth)
        .map(|t| {
            ex.spawn(async move {
                let mut buf = vec![t as u8 + 1; size];
                for k in (t..count).step_by(depth) {
                    // SAFETY: `buf` outlives the awaited operation.
                    let io = unsafe { IoBuf::from_raw(buf.as_mut_ptr(), size) };
                    let offset = (k * size) as u64;
                    let n = if write {
                        store.write(InodeId(1), offset, io).await.unwrap()
                    } else {
                        store.read(InodeId(1), offset, io).await.unwrap().0
                    };
                    assert_eq!(n, size);
                }
                drop(buf);
            })
        })
        .collect();
    let all = ex.spawn(async move {
        for task in tasks {
            task.await;
        }
    });
    drive(store, &ex, all);
    start.elapsed().as_secs_f64()
}

#[test]
fn node_tokens_prove_the_directory_and_go_with_the_store() {
    let dir = TempDir::new("token");
    let store_dir = dir.store_dir();
    assert!(!super::node_token_matches(&store_dir, b"token-a"), "no token before it is written");
    super::write_node_token(&store_dir, b"token-a").unwrap();
    assert!(super::node_token_matches(&store_dir, b"token-a"));
    assert!(!super::node_token_matches(&store_dir, b"token-b"), "another rank's token");
    let store = ChunkStore::open_with_backend(&store_dir, 8, Backend::Sync).unwrap();
    store.shutdown(false).unwrap();
    assert!(!store_dir.exists(), "shutdown removes the token with the directory");
}

/// A thread that does not own the rings (an application thread turning the loop) does its
/// chunk I/O with plain system calls: nothing is queued on the ring for it, so nothing it
/// leaves behind can be cancelled when it exits.
#[test]
fn other_threads_bypass_the_ring() {
    let dir = TempDir::new("bypass");
    let store_dir = dir.store_dir();
    std::thread::spawn(move || {
        let store = match ChunkStore::open_with_backend(&store_dir, 8, Backend::Uring) {
            Ok(store) => store,
            Err(e) if std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "io_uring") => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "SKIP (allowed by {ALLOW_SKIP}=io_uring): io_uring unavailable: {e}");
                return;
            }
            Err(e) => panic!("cannot open an io_uring store: {e}"),
        };
        let data = vec![7u8; 4096];
        let written = future::block_on(store.write(InodeId(5), 100, IoBuf::Owned(data.clone()))).unwrap();
        assert_eq!(written, 4096);
        assert_eq!(store.inflight(), 0, "nothing was queued on the ring");
        assert_eq!(store.submit(), 0);
        let (n, buf) = future::block_on(store.read(InodeId(5), 100, IoBuf::Owned(vec![0; 4096]))).unwrap();
        assert_eq!((n, buf.as_slice()), (4096, &data[..]));
    })
    .join()
    .unwrap();
}

/// An operation of a task that the ring's owner started and another thread resumes (an
/// application thread turning the loop reaps a completion and polls the task on) is done there
/// with a plain system call: queued on the ring, it would wait for a submit that thread may not
/// make, and the owner, asleep, would never learn of it.
#[test]
fn operations_resumed_on_another_thread_bypass_the_ring() {
    let dir = TempDir::new("resumed");
    let Some(store) = open(&dir, Backend::Uring, 8) else {
        return;
    };
    let ino = InodeId(9);
    let data = pattern(9, 0, 100);
    run(&store, store.write(ino, 0, IoBuf::Owned(data.clone()))).unwrap();
    // The chunk file is shorter than the read, which therefore takes a second operation after
    // the first (the one that finds the end of the file).
    let mut read = Box::pin(store.read(ino, 0, IoBuf::Owned(vec![0xee; 4096])));
    assert!(future::block_on(future::poll_once(&mut read)).is_none(), "the first operation is in flight");
    store.submit();
    while store.poll_completions() == 0 {
        wait_for_completion(&store);
    }
    super::disown_rings_here();
    let resumed = future::block_on(future::poll_once(&mut read));
    let left = store.inflight();
    super::own_rings_here();
    if resumed.is_none() {
        // Hand what was left to the kernel before the store is dropped (which waits for it).
        let finished = run(&store, read);
        panic!("resumed by a thread that may not submit, the read left {left} operation(s) on the ring ({finished:?})");
    }
    let (n, buf) = resumed.unwrap().unwrap();
    assert_eq!((n, &buf.as_slice()[..n]), (100, &data[..]));
    assert_eq!(left, 0);
}

/// A peer's periodic sweep closes the cached descriptors of files their owner removed, and keeps
/// the others (checked with a system call only when the owner removed something since).
#[test]
fn peer_sweeps_close_removed_files_only() {
    use super::peer::{PeerFiles, SWEEP_EVERY};
    use crate::ids::Rank;
    let dir = TempDir::new("sweep");
    let store_dir = dir.store_dir();
    let owner = ChunkStore::open_with_backend(&store_dir, 8, Backend::Sync).unwrap();
    let peers = PeerFiles::new(vec![Some(store_dir.clone())]);
    let write = |ino: u64| peers.write(Rank(0), InodeId(ino), 0, b"data").unwrap();
    for ino in 0..SWEEP_EVERY {
        assert_eq!(write(ino), Some(4));
    }
    owner.remove(InodeId(3)).unwrap();
    assert!(peers.caches(Rank(0), InodeId(3)), "no sweep yet");
    for ino in SWEEP_EVERY..2 * SWEEP_EVERY {
        assert_eq!(write(ino), Some(4));
    }
    assert!(!peers.caches(Rank(0), InodeId(3)), "the sweep closes the removed file");
    assert!(peers.caches(Rank(0), InodeId(4)), "and keeps the linked ones");
    owner.shutdown(false).unwrap();
}

/// Forgetting a removed file closes the cached descriptors of its chunk files on every same-node
/// peer, and only those.
#[test]
fn forgetting_a_file_closes_its_chunk_files_on_every_peer() {
    use super::peer::PeerFiles;
    use crate::ids::Rank;
    let (a, b) = (TempDir::new("forget-a"), TempDir::new("forget-b"));
    let stores = [a.store_dir(), b.store_dir()];
    let owners: Vec<_> = stores.iter().map(|d| ChunkStore::open_with_backend(d, 8, Backend::Sync).unwrap()).collect();
    // Ranks 1 and 3 share this node; 0, 2 and 4 do not.
    let peers = PeerFiles::new(vec![None, Some(stores[0].clone()), None, Some(stores[1].clone()), None]);
    for (rank, ino) in [(1, 7), (3, 7), (3, 8)] {
        assert_eq!(peers.write(Rank(rank), InodeId(ino), 0, b"data").unwrap(), Some(4));
    }
    peers.forget(InodeId(7));
    assert!(!peers.caches(Rank(1), InodeId(7)) && !peers.caches(Rank(3), InodeId(7)), "closed on both peers");
    assert!(peers.caches(Rank(3), InodeId(8)), "another file stays cached");
    for owner in owners {
        owner.shutdown(false).unwrap();
    }
}

/// A live read mapping pins its inode: a cut or removal waits until the last mapping of that
/// inode ends, and mappings of other inodes hold nothing up.
#[test]
fn mappings_pin_their_inode_until_the_last_ends() {
    let dir = TempDir::new("pins");
    let Some(store) = open(&dir, Backend::Sync, 8) else { return };
    let (a, b) = (InodeId(11), InodeId(12));
    for ino in [a, b] {
        run(&store, store.write(ino, 0, IoBuf::Owned(pattern(ino.0, 0, 8192)))).unwrap();
    }
    assert!(!store.is_pinned(a));
    let first = store.map_range(a, 100, 4000).unwrap().expect("a range within the file maps");
    let second = store.map_range(a, 5000, 100).unwrap().expect("a range within the file maps");
    // SAFETY: the mapping is live and `len()` bytes long.
    let seen = unsafe { std::slice::from_raw_parts(first.as_ptr(), first.len()) };
    assert_eq!(seen, &pattern(a.0, 100, 4000)[..]);
    assert!(store.is_pinned(a) && !store.is_pinned(b));
    assert!(store.map_range(a, 8192, 10).unwrap().is_none(), "nothing to map at the end");
    let ex = LocalExecutor::new();
    let waiting = ex.spawn(store.unpinned(a));
    // An inode without mappings waits for nothing (this would hang otherwise).
    future::block_on(store.unpinned(b));
    while ex.try_tick() {}
    assert!(!waiting.is_finished(), "two mappings of the inode are live");
    drop(first);
    while ex.try_tick() {}
    assert!(store.is_pinned(a) && !waiting.is_finished(), "one mapping of the inode is still live");
    drop(second);
    assert!(!store.is_pinned(a));
    while ex.try_tick() {}
    assert!(waiting.is_finished(), "the last mapping's end wakes the waiter");
}

both_backends!(packed_small_files_follow_a_model, kept_packed_files_become_chunk_files);

/// The names in a store directory, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// A store of rank 2 that packs small files in slots of 64 KiB.
fn packing_store(dir: &TempDir, backend: Backend) -> Option<ChunkStore> {
    let mut store = open(dir, backend, 8)?;
    store.pack_small_files(crate::ids::Rank(2), MIB as u64).unwrap();
    Some(store)
}

/// Writes, reads, cuts and the extent of a packed file follow a byte model while the data fits
/// in its slot, and go on following it once a write past the slot moves the data into a chunk
/// file of its own; the file's removal leaves nothing behind.
fn packed_small_files_follow_a_model(backend: Backend) {
    let dir = TempDir::new("packed");
    let Some(store) = packing_store(&dir, backend) else { return };
    let ino = InodeId::made_by(crate::ids::Rank(2), 5);
    store.pack(ino);
    let mut model: Vec<u8> = Vec::new();
    let check = |store: &ChunkStore, model: &[u8], what: &str| {
        assert_eq!(store.extent(ino).unwrap(), model.len() as u64, "{what}: extent");
        let (n, got) = read_vec(store, ino, 0, model.len() + 5000);
        assert_eq!(n, model.len(), "{what}: a read ends where the data does");
        assert_eq!(&got[..n], model, "{what}: bytes");
        assert_eq!(read_vec(store, ino, model.len() as u64 + 10, 100).0, 0, "{what}: nothing past the end");
    };
    let write = |store: &ChunkStore, model: &mut Vec<u8>, offset: usize, len: usize| {
        let data = pattern(ino.0, offset as u64 ^ 0x55, len);
        run(store, store.write(ino, offset as u64, IoBuf::Owned(data.clone()))).unwrap();
        if model.len() < offset + len {
            model.resize(offset + len, 0);
        }
        model[offset..offset + len].copy_from_slice(&data);
    };
    check(&store, &model, "empty");
    write(&store, &mut model, 0, 3901);
    check(&store, &model, "a small file");
    assert!(!names_in(&dir.store_dir()).iter().any(|n| n.len() == 16), "packed: no chunk file");
    write(&store, &mut model, 10_000, 100);
    check(&store, &model, "a write past the end leaves zeros between");
    store.truncate(ino, 2000).unwrap();
    model.truncate(2000);
    check(&store, &model, "cut");
    write(&store, &mut model, 3000, 10);
    check(&store, &model, "the cut bytes read as zeros after a write past them");
    let map = store.map_range(ino, 1000, 5000).unwrap().expect("packed bytes map");
    // SAFETY: the mapping is live and `len()` bytes long.
    assert_eq!(unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) }, &model[1000..3010], "a mapping ends with the data");
    drop(map);
    write(&store, &mut model, 60_000, 10_000);
    check(&store, &model, "moved to a chunk file");
    assert_eq!(names_in(&dir.store_dir()).iter().filter(|n| n.len() == 16).count(), 1, "the chunk file");
    write(&store, &mut model, 100, 100);
    check(&store, &model, "written in the chunk file");
    store.remove(ino).unwrap();
    assert_eq!(store.extent(ino).unwrap(), 0, "removed");
    assert!(!names_in(&dir.store_dir()).iter().any(|n| n.len() == 16), "no chunk file left");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(dir.store_dir().join("small")).unwrap().blocks(), 0, "the slab holds nothing");

    // A file that stays small leaves no bytes behind either.
    let other = InodeId::made_by(crate::ids::Rank(2), 6);
    store.pack(other);
    run(&store, store.write(other, 0, IoBuf::Owned(vec![7; 3901]))).unwrap();
    let slab_blocks = || std::fs::metadata(dir.store_dir().join("small")).unwrap().blocks();
    assert!(slab_blocks() * 512 >= 3901);
    store.remove(other).unwrap();
    assert_eq!(slab_blocks(), 0, "the slot is punched out");
    // Nor does one cut to nothing before its removal.
    let third = InodeId::made_by(crate::ids::Rank(2), 7);
    store.pack(third);
    run(&store, store.write(third, 0, IoBuf::Owned(vec![7; 100]))).unwrap();
    store.truncate(third, 0).unwrap();
    assert_eq!(read_vec(&store, third, 0, 10).0, 0, "cut to nothing");
    store.remove(third).unwrap();
    assert_eq!(slab_blocks(), 0, "a slot cut to nothing holds no page");
    store.shutdown(false).unwrap();
    assert!(!dir.store_dir().exists(), "the slab and its index go with the store");
}

/// A kept store holds one chunk file per inode, packed files included.
fn kept_packed_files_become_chunk_files(backend: Backend) {
    let dir = TempDir::new("packed-keep");
    let Some(store) = packing_store(&dir, backend) else { return };
    let ino = InodeId::made_by(crate::ids::Rank(2), 9);
    store.pack(ino);
    run(&store, store.write(ino, 0, IoBuf::Owned(pattern(ino.0, 0, 3901)))).unwrap();
    store.shutdown(true).unwrap();
    let names = names_in(&dir.store_dir());
    assert_eq!(names, vec![format!("{:016x}", ino.0)], "one chunk file, no slab");
    let store = open(&dir, backend, 8).unwrap();
    assert_eq!(read_vec(&store, ino, 0, 5000), (3901, [pattern(ino.0, 0, 3901), vec![0xee; 1099]].concat()));
    store.shutdown(false).unwrap();
}

/// A number proposed for a file that did not get it is packed no more: its data, if any is ever
/// written, goes to a chunk file as for any other file.
#[test]
fn a_discarded_number_packs_nothing() {
    let dir = TempDir::new("packed-discard");
    let Some(store) = packing_store(&dir, Backend::Sync) else { return };
    let ino = InodeId::made_by(crate::ids::Rank(2), 3);
    store.pack(ino);
    store.discard(ino).unwrap();
    run(&store, store.write(ino, 0, IoBuf::Owned(vec![1; 100]))).unwrap();
    assert_eq!(names_in(&dir.store_dir()).iter().filter(|n| n.len() == 16).count(), 1, "a chunk file");
    // Numbers another rank made are never packed here.
    let foreign = InodeId::made_by(crate::ids::Rank(1), 4);
    store.pack(foreign);
    run(&store, store.write(foreign, 0, IoBuf::Owned(vec![1; 100]))).unwrap();
    assert_eq!(names_in(&dir.store_dir()).iter().filter(|n| n.len() == 16).count(), 2, "another chunk file");
    store.shutdown(false).unwrap();
}

/// A same-node rank reads a packed file straight from the slot and sees its extent, but never
/// writes the slot: its writes go to the owner (`None`) until the data has moved to a chunk
/// file, which it then reads and writes directly.
#[test]
fn same_node_ranks_read_packed_files_and_leave_their_writes_to_the_owner() {
    use super::peer::PeerFiles;
    use crate::ids::Rank;
    let dir = TempDir::new("packed-peer");
    let Some(owner) = packing_store(&dir, Backend::Sync) else { return };
    let peers = PeerFiles::new(vec![None, None, Some(dir.store_dir())]);
    let ino = InodeId::made_by(Rank(2), 1);
    owner.pack(ino);
    run(&owner, owner.write(ino, 0, IoBuf::Owned(pattern(ino.0, 0, 3901)))).unwrap();
    let mut buf = vec![0u8; 5000];
    assert_eq!(peers.read(Rank(2), ino, 0, &mut buf).unwrap(), Some(3901));
    assert_eq!(&buf[..3901], &pattern(ino.0, 0, 3901)[..]);
    assert_eq!(peers.read(Rank(2), ino, 100, &mut buf[..10]).unwrap(), Some(10));
    assert_eq!(&buf[..10], &pattern(ino.0, 100, 10)[..], "at an offset");
    assert_eq!(peers.extent(Rank(2), ino).unwrap(), Some(3901));
    assert_eq!(peers.write(Rank(2), ino, 0, b"peer").unwrap(), None, "a packed chunk is the owner's to write");

    run(&owner, owner.write(ino, 65_536, IoBuf::Owned(vec![9; 10]))).unwrap();
    assert_eq!(peers.write(Rank(2), ino, 0, b"peer").unwrap(), Some(4), "moved: written directly");
    let mut expect = pattern(ino.0, 0, 3901);
    expect[..4].copy_from_slice(b"peer");
    assert_eq!(peers.read(Rank(2), ino, 0, &mut buf[..3901]).unwrap(), Some(3901));
    assert_eq!(&buf[..3901], &expect[..]);
    assert_eq!(read_vec(&owner, ino, 0, 3901).1, expect, "the owner reads the same chunk file");
    assert_eq!(peers.extent(Rank(2), ino).unwrap(), Some(65_546));
    owner.shutdown(false).unwrap();
}
