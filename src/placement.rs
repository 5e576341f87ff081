//! Placement: which rank stores a chunk, and which rank holds the metadata of a path.
//!
//! Every rank computes the same owners from the job size alone, so placement needs no
//! communication and no table: two ranks that agree on `nranks` agree on every owner.
//!
//! # Design: jump consistent hashing
//!
//! A key is hashed with xxh64, and the hash is mapped to a rank with the jump consistent hash of
//! Lamping and Veach ("A Fast, Minimal Memory, Consistent Hash Algorithm", 2014): a short loop
//! that follows the key's path as the job grows one rank at a time, jumping ahead by a random
//! (key-seeded) stride each step, and stops at the last rank it lands on below `nranks`.
//!
//! Consequences:
//!
//! * Balance: every rank receives a key with probability exactly `1 / nranks`; what remains is
//!   the sampling noise of the keys themselves, which no hash-based placement can remove.
//! * Consistency: going from `N` to `N + 1` ranks moves a fraction `1 / (N + 1)` of the keys,
//!   every one of them to the new rank.
//! * Cost: no state at all (placement for 10,000 ranks takes no memory; the table of equal
//!   partitions this replaced needed 1 KiB per rank per rank, 16 MiB each at 10,000 ranks), and
//!   `O(log N)` steps per lookup: about 2 at 4 ranks, 10 at 10,000 (tens of nanoseconds).
//! * Determinism: the loop uses 64-bit integer arithmetic and IEEE double division, which
//!   give the same results on every platform Rust supports (no fused operations are formed).
//!
//! # Keys
//!
//! A chunk is placed by xxh64 of the 16 little-endian bytes of `(inode, chunk index)`: never by
//! its path, so a rename moves no data. Metadata is placed by xxh64 of the normalised path. The
//! two use different seeds so that a file's metadata rank and its chunk ranks are unrelated.

use std::fmt;

use xxhash_rust::xxh64::xxh64;

use crate::ids::{ChunkIndex, InodeId, Rank};

/// The most ranks a job may have (a serving job at init, or the job a contact file names): a
/// bound on what a damaged contact file can make a client set up; no job comes near it.
pub const MAX_RANKS: u32 = 1 << 20;

/// Seeds of the two hash functions. Every rank of a job must use the same values: changing one
/// relocates every chunk or every metadata record.
const CHUNK_SEED: u64 = 0x243f_6a88_85a3_08d3;
const PATH_SEED: u64 = 0x1319_8a2e_0370_7344;

/// Maps chunks and paths to ranks. Holds only the job size; `Copy`, and shared freely.
#[derive(Clone, Copy)]
pub struct Ring {
    nranks: u32,
}

impl Ring {
    /// The placement over `nranks` ranks.
    ///
    /// # Panics
    /// If `nranks` is 0.
    pub fn new(nranks: u32) -> Ring {
        assert!(nranks >= 1, "a ring needs at least one rank");
        Ring { nranks }
    }

    /// The number of ranks the ring places data on.
    #[cfg(test)]
    pub fn nranks(&self) -> u32 {
        self.nranks
    }

    /// The rank storing chunk `chunk` of file `ino`. Independent of the file's path, so that a
    /// rename does not move data. The first chunk lives with the rank that made the inode
    /// number: the rank that created the file (see `Request::Open`), so that a small file's
    /// data is written where it was created, without a request, wherever its record lives (or
    /// its record's owner, for a file an attached client created); the others are placed by
    /// hash.
    pub fn chunk_owner(&self, ino: InodeId, chunk: ChunkIndex) -> Rank {
        if chunk.0 == 0 {
            if let Some(creator) = ino.creator().filter(|r| r.0 < self.nranks) {
                return creator;
            }
        }
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&ino.0.to_le_bytes());
        key[8..].copy_from_slice(&chunk.0.to_le_bytes());
        self.owner_of(xxh64(&key, CHUNK_SEED))
    }

    /// The rank holding the metadata of `path`, which must already be normalised: two
    /// spellings of one path would otherwise have different owners.
    pub fn meta_owner(&self, path: &[u8]) -> Rank {
        self.owner_of(xxh64(path, PATH_SEED))
    }

    fn owner_of(&self, hash: u64) -> Rank {
        Rank(jump(hash, self.nranks))
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("nranks", &self.nranks).finish()
    }
}

/// The jump consistent hash of `key` over `buckets` buckets (see the module documentation):
/// the last bucket below `buckets` that the key's path of jumps lands on.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut landed, mut next) = (0u64, 0u64);
    while next < u64::from(buckets) {
        landed = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The next bucket this key would move to as the job grows: `(landed + 1) / r` for a
        // uniform `r` in (0, 1], drawn from the top 31 bits of the key.
        next = ((landed + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as u64;
    }
    landed as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: u64 = 100_000;
    const CHUNKS_PER_FILE: u64 = 16;
    const PATHS: u64 = 100_000;

    /// Largest relative deviation of any count from the mean of `counts`.
    fn max_deviation(counts: &[u64]) -> f64 {
        let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - mean).abs() / mean).fold(0.0, f64::max)
    }

    /// The largest count divided by the mean.
    fn max_over_mean(counts: &[u64]) -> f64 {
        let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        *counts.iter().max().unwrap() as f64 / mean
    }

    /// Relative standard deviation of one rank's count when `items` keys fall independently and
    /// uniformly on `nranks` ranks (binomial with p = 1/nranks).
    fn sampling_sigma(items: u64, nranks: u32) -> f64 {
        let p = 1.0 / f64::from(nranks);
        ((1.0 - p) / (items as f64 * p)).sqrt()
    }

    /// The allowed deviation for `items` keys on `nranks` ranks: 10 %, unless sampling noise
    /// alone makes that unattainable. Even with exactly equal shares, a rank's count deviates
    /// from the mean by binomial noise; the largest of `nranks` such deviations exceeds 5 sigma
    /// with probability below `nranks * 5.8e-7` (0.6 % at 10,000 ranks). So the bound is the
    /// larger of 10 % and 5 sigma: for 1.6 M chunks that is 10 % up to 256 ranks and 39.5 % at
    /// 10,000 (mean 160 per rank); the tests keep at least 200 keys per rank on average.
    fn allowed_deviation(items: u64, nranks: u32) -> f64 {
        f64::max(0.10, 5.0 * sampling_sigma(items, nranks))
    }

    /// `n` well-spread 64-bit keys (splitmix64 of a counter), as xxh64 hashes would be.
    fn keys(n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(|i| {
            let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    }

    #[test]
    fn every_rank_gets_an_equal_share_of_the_keys() {
        let sizes = (1..=70).chain([100, 255, 256, 257, 1000, 1023, 1024, 1025, 10_000]);
        for nranks in sizes {
            let samples = 2_000 * u64::from(nranks).min(500);
            let mut counts = vec![0u64; nranks as usize];
            for key in keys(samples) {
                counts[jump(key, nranks) as usize] += 1;
            }
            let deviation = max_deviation(&counts);
            let allowed = f64::max(0.05, 4.5 * sampling_sigma(samples, nranks));
            assert!(deviation <= allowed, "{nranks} ranks: a rank deviates {:.1}% (allowed {:.1}%)", deviation * 100.0, allowed * 100.0);
        }
    }

    #[test]
    fn chunks_are_balanced_overall_and_per_chunk_index() {
        for nranks in [3, 4, 5, 16, 64, 256, 1024, 10_000] {
            let ring = Ring::new(nranks);
            let mut per_rank = vec![0u64; nranks as usize];
            let mut per_index = vec![vec![0u64; nranks as usize]; CHUNKS_PER_FILE as usize];
            for ino in 1..=FILES {
                for k in 0..CHUNKS_PER_FILE {
                    let rank = ring.chunk_owner(InodeId(ino), ChunkIndex(k)).0 as usize;
                    per_rank[rank] += 1;
                    per_index[k as usize][rank] += 1;
                }
            }
            let deviation = max_deviation(&per_rank);
            let allowed = allowed_deviation(FILES * CHUNKS_PER_FILE, nranks);
            assert!(deviation <= allowed, "{nranks} ranks: a rank deviates {:.1}% from the mean chunk count", deviation * 100.0);
            // Chunk k of many files must not pile onto one rank, which would serialise a
            // parallel job whose processes all write the same offset of their own files. With
            // 100 k files per chunk index the mean is 1562 at 64 ranks, so 1.3x is 12 sigma;
            // beyond 64 ranks the sampling noise is too large for a bound this tight.
            if nranks <= 64 {
                for (k, counts) in per_index.iter().enumerate() {
                    let peak = max_over_mean(counts);
                    assert!(peak < 1.3, "{nranks} ranks: chunk {k} peaks at {peak:.2}x the mean");
                }
            }
        }
    }

    #[test]
    fn a_files_first_chunk_lives_with_the_rank_that_made_it() {
        let ring = Ring::new(16);
        for creator in [0, 7, 15] {
            for n in [1u64, 2, (1 << 40) - 1] {
                let ino = InodeId::made_by(Rank(creator), n);
                assert_eq!(ino.creator(), Some(Rank(creator)));
                assert_eq!(ring.chunk_owner(ino, ChunkIndex(0)), Rank(creator), "{ino}");
            }
        }
        // The other chunks of one creator's files still spread over every rank.
        let mut seen = std::collections::BTreeSet::new();
        for n in 1..=200 {
            seen.insert(ring.chunk_owner(InodeId::made_by(Rank(3), n), ChunkIndex(1)));
        }
        assert_eq!(seen.len(), 16);
        // A number no rank of this ring made (the rank field 0, or beyond the ring) is hashed.
        assert_eq!(InodeId(5).creator(), None);
        let foreign = InodeId::made_by(Rank(40), 1);
        assert!(ring.chunk_owner(foreign, ChunkIndex(0)).0 < 16);
    }

    #[test]
    fn metadata_is_balanced() {
        for nranks in [3, 4, 5, 16, 64, 256, 1024, 10_000] {
            let count = PATHS.max(200 * u64::from(nranks));
            let ring = Ring::new(nranks);
            let mut per_rank = vec![0u64; nranks as usize];
            for i in 0..count {
                per_rank[ring.meta_owner(format!("/dir{}/file{}", i % 100, i).as_bytes()).0 as usize] += 1;
            }
            let deviation = max_deviation(&per_rank);
            let allowed = allowed_deviation(count, nranks);
            assert!(
                deviation <= allowed,
                "{nranks} ranks: a rank deviates {:.1}% from the mean path count (allowed {:.1}%)",
                deviation * 100.0,
                allowed * 100.0
            );
        }
    }

    #[test]
    fn adding_a_rank_moves_its_share_and_only_to_it() {
        let sizes = (1..=80).chain([255, 256, 1023, 1024, 9_999]);
        let samples = 200_000u64;
        for n in sizes {
            let mut moved = 0u64;
            for key in keys(samples) {
                let (before, after) = (jump(key, n), jump(key, n + 1));
                if before != after {
                    assert_eq!(after, n, "{n} -> {} ranks: a key moved to an old rank", n + 1);
                    moved += 1;
                }
            }
            let expected = samples as f64 / f64::from(n + 1);
            let sigma = (expected * (1.0 - 1.0 / f64::from(n + 1))).sqrt();
            assert!(
                (moved as f64 - expected).abs() <= 5.0 * sigma + 1.0,
                "{n} -> {} ranks: {moved} keys moved, about {expected:.0} expected",
                n + 1
            );
        }
    }

    #[test]
    fn growing_from_16_to_17_ranks_moves_about_one_seventeenth_of_the_chunks() {
        let (before, after) = (Ring::new(16), Ring::new(17));
        let files = 20_000;
        let mut moved = 0u64;
        for ino in 1..=files {
            for k in 0..CHUNKS_PER_FILE {
                let (ino, k) = (InodeId(ino), ChunkIndex(k));
                let new_owner = after.chunk_owner(ino, k);
                if new_owner != before.chunk_owner(ino, k) {
                    assert_eq!(new_owner, Rank(16));
                    moved += 1;
                }
            }
        }
        let fraction = moved as f64 / (files * CHUNKS_PER_FILE) as f64;
        assert!(fraction < 2.0 / 17.0, "moved {:.2}% of the chunks", fraction * 100.0);
        assert!(fraction > 0.5 / 17.0, "moved {:.2}% of the chunks", fraction * 100.0);
    }

    #[test]
    fn independently_built_rings_agree() {
        for nranks in [3, 64, 1000] {
            let (a, b) = (Ring::new(nranks), Ring::new(nranks));
            for i in 0..10_000u64 {
                let (ino, k) = (InodeId(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), ChunkIndex(i % 7));
                assert_eq!(a.chunk_owner(ino, k), b.chunk_owner(ino, k));
                let path = format!("/d/{i}");
                assert_eq!(a.meta_owner(path.as_bytes()), b.meta_owner(path.as_bytes()));
            }
        }
    }

    /// Every rank of a job computes owners independently, possibly from different builds of the
    /// same source on different architectures; these values pin the hash, the seeds, the key
    /// encoding and the jump.
    #[test]
    fn placement_is_pinned() {
        let ring = Ring::new(16);
        let chunks: Vec<u32> = (0..8).map(|k| ring.chunk_owner(InodeId(42), ChunkIndex(k)).0).collect();
        let metas: Vec<u32> = ["/", "/a", "/a/b", "/dir7/file7"].iter().map(|p| ring.meta_owner(p.as_bytes()).0).collect();
        assert_eq!(chunks, PINNED_CHUNKS);
        assert_eq!(metas, PINNED_METAS);
    }
    const PINNED_CHUNKS: [u32; 8] = [6, 11, 1, 15, 12, 14, 0, 11];
    const PINNED_METAS: [u32; 4] = [0, 15, 6, 10];

    #[test]
    fn one_rank_owns_everything() {
        let ring = Ring::new(1);
        assert_eq!(ring.nranks(), 1);
        for i in 0..10_000u64 {
            assert_eq!(ring.chunk_owner(InodeId(i), ChunkIndex(i)), Rank(0));
            assert_eq!(ring.meta_owner(format!("/f{i}").as_bytes()), Rank(0));
        }
        assert_eq!(ring.meta_owner(b"/"), Rank(0));
    }

    #[test]
    fn owners_are_valid_ranks() {
        for nranks in [2, 3, 5, 7, 100, 1000] {
            let ring = Ring::new(nranks);
            assert_eq!(ring.nranks(), nranks);
            let mut seen = vec![false; nranks as usize];
            for i in 0..20_000u64 {
                let rank = ring.chunk_owner(InodeId(i / 4), ChunkIndex(i % 4));
                assert!(rank.0 < nranks);
                seen[rank.0 as usize] = true;
                assert!(ring.meta_owner(format!("/x/{i}").as_bytes()).0 < nranks);
            }
            assert!(seen.iter().all(|&s| s), "{nranks} ranks: some rank got no chunk");
        }
    }

    #[test]
    fn ring_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Ring>();
    }

    #[test]
    #[should_panic(expected = "at least one rank")]
    fn zero_ranks_is_rejected() {
        Ring::new(0);
    }
}
