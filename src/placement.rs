//! Placement: which rank stores a chunk, and which rank holds the metadata of a path.
//!
//! Every rank builds the same [`Ring`] from the job size alone, so placement needs no
//! communication: two ranks that agree on `nranks` agree on every owner.
//!
//! # Design: equal partitions, assigned by replaying the job's growth
//!
//! The 64-bit hash space is cut into `Q` equal partitions, the virtual nodes, and a table maps
//! each partition to its rank. With `V` virtual nodes per rank (rounded up to a power of two) and
//! `N` ranks, `Q = V * N.next_power_of_two()`, so `Q` is a power of two and a key's partition is
//! the top `log2(Q)` bits of its hash. A lookup is one xxh64 and one array read.
//!
//! The table for `N` ranks is the result of growing a job one rank at a time from a single rank
//! that owns all `V` partitions. Adding rank `n` (going from `n` to `n + 1` ranks) is two steps:
//!
//! 1. If `n` is a power of two, every partition is split into its two halves, both kept by the
//!    same rank. No key changes owner. At that moment every rank holds exactly `V * n / n = V`
//!    partitions, so after the split they still hold equal numbers (this is why `V` is rounded
//!    up to a power of two).
//! 2. The new rank takes `floor(Q / (n + 1))` partitions, one at a time, each from a rank that
//!    currently holds the most: the existing ranks give in a fixed round-robin order that is
//!    carried over from one step to the next and puts ranks holding an extra partition first.
//!    Which of its partitions a donor gives up is picked by a fixed hash, so each rank's
//!    partitions end up scattered over the hash space.
//!
//! Consequences:
//!
//! * Balance: every rank owns `floor(Q / N)` or `ceil(Q / N)` partitions, i.e. the same share of
//!   the hash space to within `1 / V` (0.4 % with the default `V = 256`). What remains is the
//!   sampling noise of the keys themselves, which no hash-based placement can remove.
//! * Consistency: the table for `N + 1` ranks differs from the one for `N` only in the partitions
//!   taken by rank `N`, so exactly a fraction `floor(Q / (N + 1)) / Q ~ 1 / (N + 1)` of all keys
//!   moves, and every one of them moves to the new rank.
//! * Cost: building takes `O(Q)` steps (milliseconds at 1024 ranks) and the table takes
//!   `4 * Q` bytes, between 4 and 8 bytes per rank per virtual node (1 MiB at 1024 ranks).
//!
//! Random virtual-node points on a ring would be simpler to build but each rank's share of the
//! hash space would then vary by about `1 / sqrt(V)`; at 1024 ranks, where the sampling noise of
//! a million chunks is already 2.5 %, keeping every rank within 10 % of the mean would need
//! thousands of points per rank.
//!
//! # Keys
//!
//! A chunk is placed by xxh64 of the 16 little-endian bytes of `(inode, chunk index)`: never by
//! its path, so a rename moves no data. Metadata is placed by xxh64 of the normalised path. The
//! two use different seeds so that a file's metadata rank and its chunk ranks are unrelated.

use std::collections::VecDeque;
use std::fmt;

use xxhash_rust::xxh64::xxh64;

use crate::ids::{ChunkIndex, InodeId, Rank};

/// Virtual nodes per rank used by [`Ring::new`].
pub const DEFAULT_VNODES_PER_RANK: u32 = 256;

/// The most ranks a job may have (a serving job at init, or the job a contact file names): the
/// ring's table then holds 2^28 partitions (1 GiB), and no job comes near it.
pub const MAX_RANKS: u32 = 1 << 20;

/// Seeds of the three hash functions. Every rank of a job must use the same values: changing one
/// relocates every chunk or every metadata record.
const CHUNK_SEED: u64 = 0x243f_6a88_85a3_08d3;
const PATH_SEED: u64 = 0x1319_8a2e_0370_7344;
const DONOR_SEED: u64 = 0xa409_3822_299f_31d0;

/// Maps chunks and paths to ranks. Immutable once built, so it can be shared between threads.
#[derive(Clone)]
pub struct Ring {
    nranks: u32,
    /// `owner[p]` is the rank owning partition `p`. The length is a power of two.
    owner: Box<[u32]>,
}

impl Ring {
    /// A ring over `nranks` ranks with [`DEFAULT_VNODES_PER_RANK`] virtual nodes per rank.
    ///
    /// # Panics
    /// If `nranks` is 0.
    pub fn new(nranks: u32) -> Ring {
        Ring::with_vnodes(nranks, DEFAULT_VNODES_PER_RANK)
    }

    /// A ring over `nranks` ranks with at least `vnodes_per_rank` virtual nodes per rank. The
    /// count is rounded up to a power of two; each rank then owns between that many and twice
    /// that many partitions.
    ///
    /// # Panics
    /// If `nranks` or `vnodes_per_rank` is 0, or if the table would need 2^32 partitions or more.
    pub fn with_vnodes(nranks: u32, vnodes_per_rank: u32) -> Ring {
        assert!(nranks >= 1, "a ring needs at least one rank");
        assert!(vnodes_per_rank >= 1, "a rank needs at least one virtual node");
        let vnodes = u64::from(vnodes_per_rank).next_power_of_two();
        let partitions = vnodes * u64::from(nranks).next_power_of_two();
        assert!(partitions <= u64::from(u32::MAX), "{nranks} ranks with {vnodes} virtual nodes each need too many partitions");
        Ring { nranks, owner: assign(nranks, vnodes as u32) }
    }

    /// The number of ranks the ring places data on.
    #[cfg(test)]
    pub fn nranks(&self) -> u32 {
        self.nranks
    }

    /// The rank storing chunk `chunk` of file `ino`. Independent of the file's path, so that a
    /// rename does not move data.
    pub fn chunk_owner(&self, ino: InodeId, chunk: ChunkIndex) -> Rank {
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
        Rank(self.owner[scale(hash, self.owner.len())])
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("nranks", &self.nranks).field("partitions", &self.owner.len()).finish()
    }
}

/// Maps a uniform 64-bit hash to `0..n` as `floor(hash * n / 2^64)`. For `n` a power of two
/// this is the top `log2(n)` bits, so partition `p` of a table of size `n` is exactly the union
/// of partitions `2p` and `2p + 1` of a table of size `2n`.
fn scale(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// Builds the partition -> rank table for `nranks` ranks by adding ranks one at a time, as the
/// module documentation describes. `vnodes` is a power of two.
fn assign(nranks: u32, vnodes: u32) -> Box<[u32]> {
    let mut held: Vec<Vec<u32>> = Vec::with_capacity(nranks as usize);
    held.push((0..vnodes).collect());
    // The order in which ranks give partitions away. Invariant: every rank holds `c` or `c + 1`
    // partitions for some `c`, and those holding `c + 1` come first. Taking from the front and
    // requeueing at the back therefore always takes from a rank that holds the most, and keeps
    // the invariant.
    let mut donors: VecDeque<u32> = VecDeque::with_capacity(nranks as usize);
    donors.push_back(0);
    let mut partitions = vnodes as usize;
    for new in 1..nranks {
        if new.is_power_of_two() {
            // Every rank holds exactly `partitions / new`, so after doubling all still hold the
            // same number and the donor order stays valid.
            split_all(&mut held);
            partitions *= 2;
        }
        let share = partitions / (new as usize + 1);
        let mut taken = Vec::with_capacity(share);
        for draw in 0..share {
            let donor = donors.pop_front().expect("a ring has at least one rank");
            let parts = &mut held[donor as usize];
            // Donors keep at least `share >= vnodes >= 1` partitions, so `parts` is not empty.
            let pick = scale(donor_hash(new, draw as u32), parts.len());
            taken.push(parts.swap_remove(pick));
            donors.push_back(donor);
        }
        // All ranks now hold `share` or `share + 1` partitions; the new one holds `share`, so it
        // belongs at the back.
        held.push(taken);
        donors.push_back(new);
    }
    let mut owner = vec![0u32; partitions];
    for (rank, parts) in held.iter().enumerate() {
        for &p in parts {
            owner[p as usize] = rank as u32;
        }
    }
    owner.into_boxed_slice()
}

/// Doubles the number of partitions: partition `p` becomes `2p` and `2p + 1`, both kept by the
/// rank that owned `p`, so every hash keeps its owner.
fn split_all(held: &mut [Vec<u32>]) {
    for parts in held {
        let before = parts.len();
        parts.reserve(before);
        for i in 0..before {
            let p = parts[i];
            parts[i] = 2 * p;
            parts.push(2 * p + 1);
        }
    }
}

/// The hash that chooses which partition a donor gives up on the `draw`-th move to `new_rank`.
fn donor_hash(new_rank: u32, draw: u32) -> u64 {
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&new_rank.to_le_bytes());
    key[4..].copy_from_slice(&draw.to_le_bytes());
    xxh64(&key, DONOR_SEED)
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
    /// alone makes that unattainable. Even with exactly equal shares of the hash space, a rank's
    /// count deviates from the mean by binomial noise; the largest of `nranks` such deviations is
    /// typically 3 to 3.5 sigma and exceeds 4 sigma with probability below `nranks * 6.4e-5`.
    /// So the bound is the larger of 10 % and 4 sigma. For 1.6 M chunks that is 10 % up to 256
    /// ranks and 10.1 % at 1024 (sigma 2.53 %); for 100 k paths, sigma is 5 % at 256 ranks and
    /// 10 % at 1024, so no placement can keep every rank within 10 % there.
    fn allowed_deviation(items: u64, nranks: u32) -> f64 {
        f64::max(0.10, 4.0 * sampling_sigma(items, nranks))
    }

    fn partitions_per_rank(ring: &Ring) -> Vec<u64> {
        let mut held = vec![0u64; ring.nranks() as usize];
        for &r in ring.owner.iter() {
            held[r as usize] += 1;
        }
        held
    }

    #[test]
    fn every_rank_owns_an_equal_share_of_the_hash_space() {
        let sizes = (1..=70).chain([100, 255, 256, 257, 1000, 1023, 1024, 1025]);
        for nranks in sizes {
            let ring = Ring::new(nranks);
            let held = partitions_per_rank(&ring);
            let min = *held.iter().min().unwrap();
            let max = *held.iter().max().unwrap();
            assert!(max - min <= 1, "{nranks} ranks: {min}..={max} partitions per rank");
            assert!(min >= u64::from(DEFAULT_VNODES_PER_RANK), "{nranks} ranks: {min}");
        }
    }

    #[test]
    fn chunks_are_balanced_overall_and_per_chunk_index() {
        for nranks in [4, 16, 64, 256, 1024] {
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
    fn metadata_is_balanced() {
        let paths: Vec<String> = (0..PATHS).map(|i| format!("/dir{}/file{}", i % 100, i)).collect();
        for nranks in [4, 16, 64, 256, 1024] {
            let ring = Ring::new(nranks);
            let mut per_rank = vec![0u64; nranks as usize];
            for path in &paths {
                per_rank[ring.meta_owner(path.as_bytes()).0 as usize] += 1;
            }
            let deviation = max_deviation(&per_rank);
            let allowed = allowed_deviation(PATHS, nranks);
            assert!(
                deviation <= allowed,
                "{nranks} ranks: a rank deviates {:.1}% from the mean path count (allowed {:.1}%)",
                deviation * 100.0,
                allowed * 100.0
            );
        }
    }

    #[test]
    fn adding_a_rank_moves_exactly_its_share_and_only_to_it() {
        let sizes = (1..=80).chain([255, 256, 1023, 1024]);
        for n in sizes {
            let before = Ring::new(n);
            let after = Ring::new(n + 1);
            let (small, large) = (before.owner.len(), after.owner.len());
            let mut moved = 0;
            for (p, &owner) in after.owner.iter().enumerate() {
                // Partition p of the larger table lies inside partition p * small / large of the
                // smaller one (see `scale`).
                if owner != before.owner[p * small / large] {
                    assert_eq!(owner, n, "{n} -> {} ranks: partition {p} moved", n + 1);
                    moved += 1;
                }
            }
            assert_eq!(moved, large / (n as usize + 1), "{n} -> {} ranks", n + 1);
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
            assert_eq!(a.owner, b.owner);
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
    /// encoding and the assignment.
    #[test]
    fn placement_is_pinned() {
        let ring = Ring::new(16);
        let chunks: Vec<u32> = (0..8).map(|k| ring.chunk_owner(InodeId(42), ChunkIndex(k)).0).collect();
        let metas: Vec<u32> = ["/", "/a", "/a/b", "/dir7/file7"].iter().map(|p| ring.meta_owner(p.as_bytes()).0).collect();
        assert_eq!(chunks, PINNED_CHUNKS);
        assert_eq!(metas, PINNED_METAS);
    }
    const PINNED_CHUNKS: [u32; 8] = [10, 8, 8, 8, 12, 4, 6, 8];
    const PINNED_METAS: [u32; 4] = [12, 10, 13, 14];

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
    fn vnodes_are_rounded_up_to_a_power_of_two() {
        let ring = Ring::with_vnodes(3, 100);
        assert_eq!(ring.owner.len(), 128 * 4);
        let ring = Ring::with_vnodes(1, 1);
        assert_eq!(ring.owner.len(), 1);
        assert_eq!(ring.chunk_owner(InodeId(u64::MAX), ChunkIndex(u64::MAX)), Rank(0));
        let ring = Ring::with_vnodes(5, 1);
        assert_eq!(partitions_per_rank(&ring), vec![1, 2, 2, 2, 1]);
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
