//! The data the bandwidth patterns write: a function of (writer rank, iteration, file offset)
//! that is cheap to generate and to spot-check.

/// A stamp (a word derived from the offset) is placed every `STAMP_BYTES` bytes of a file; the
/// words between stamps repeat a per-writer template. This keeps generating the data of a transfer
/// nearly free (a few hundred stores per MiB). Data of another writer or iteration, unwritten
/// zeros, data shifted by anything but a multiple of the transfer size, and any misplaced range
/// that spans a stamp all fail verification.
const STAMP_BYTES: u64 = 4096;

/// The splitmix64 finaliser: a cheap bijective mix, so that nearby inputs give unrelated words.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The content one writer puts into a file in one iteration. The word at file offset `o` (a
/// multiple of 8) is a stamp `mix(key ^ o)` when `o` is a multiple of [`STAMP_BYTES`], and
/// otherwise the template word at `o % transfer`. Transfers start at multiples of `transfer`.
pub struct Pattern {
    key: u64,
    transfer: u64,
    template: Vec<u8>,
}

impl Pattern {
    pub fn new(writer: usize, iteration: u32, transfer: u64) -> Pattern {
        let key = mix(((writer as u64) << 32) | u64::from(iteration));
        let mut template = vec![0u8; transfer as usize];
        for (i, w) in template.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&mix(key.rotate_left(17) ^ i as u64).to_le_bytes());
        }
        Pattern { key, transfer, template }
    }

    fn stamp(&self, offset: u64) -> [u8; 8] {
        mix(self.key ^ offset).to_le_bytes()
    }

    /// Makes `buf` the content of the transfer at file `offset`. When `buf_holds_previous` is set,
    /// `buf` already holds this pattern's previous transfer and only the stamps need rewriting,
    /// which is what keeps the timed write loop free of data generation.
    pub fn fill(&self, buf: &mut [u8], offset: u64, buf_holds_previous: bool) {
        debug_assert_eq!(offset % self.transfer, 0);
        // Stamps sit at the same buffer positions in every transfer only if a transfer is a whole
        // number of stamp intervals; otherwise the old stamps must be overwritten by the template.
        if !buf_holds_previous || self.transfer % STAMP_BYTES != 0 {
            buf.copy_from_slice(&self.template);
        }
        let first = offset.next_multiple_of(STAMP_BYTES);
        let end = offset + buf.len() as u64;
        let mut o = first;
        while o < end {
            let at = (o - offset) as usize;
            buf[at..at + 8].copy_from_slice(&self.stamp(o));
            o += STAMP_BYTES;
        }
    }

    /// The stamp of small file number `index` (see [`Pattern::stamp_file`]).
    fn file_stamp(&self, index: u64) -> [u8; 8] {
        mix(self.key.rotate_left(29) ^ index).to_le_bytes()
    }

    /// Makes `buf` the content of this writer's small file number `index`: the template (the
    /// pattern's transfer is the file size), with the file's stamp in its first and last eight
    /// bytes. `buf` is at least 16 bytes long.
    pub fn fill_file(&self, buf: &mut [u8], index: u64) {
        buf.copy_from_slice(&self.template[..buf.len()]);
        self.stamp_file(buf, index);
    }

    /// Rewrites only the stamps of [`Pattern::fill_file`], for a `buf` that holds another file of
    /// this writer: what keeps the timed write loop free of data generation.
    pub fn stamp_file(&self, buf: &mut [u8], index: u64) {
        let (stamp, last) = (self.file_stamp(index), buf.len() - 8);
        buf[..8].copy_from_slice(&stamp);
        buf[last..].copy_from_slice(&stamp);
    }

    /// Checks both stamps of small file number `index`: the near-free test of the timed read.
    pub fn check_file(&self, buf: &[u8], index: u64) -> bool {
        let (stamp, last) = (self.file_stamp(index), buf.len() - 8);
        buf[..8] == stamp && buf[last..] == stamp
    }

    /// Checks the first stamp of the transfer at `offset`: a near-free test for the timed loop.
    pub fn spot_check(&self, buf: &[u8], offset: u64) -> bool {
        let o = offset.next_multiple_of(STAMP_BYTES);
        let at = (o - offset) as usize;
        at + 8 > buf.len() || buf[at..at + 8] == self.stamp(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content of `transfers` consecutive transfers, generated the way the write loop does.
    fn written(p: &Pattern, transfers: u64) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; p.transfer as usize];
        (0..transfers)
            .map(|t| {
                p.fill(&mut buf, t * p.transfer, t > 0);
                buf.clone()
            })
            .collect()
    }

    #[test]
    fn reusing_the_buffer_gives_the_same_data() {
        for transfer in [8, 4096, 3 * 4096, 5000 * 8] {
            let p = Pattern::new(3, 1, transfer);
            for (t, got) in written(&p, 5).iter().enumerate() {
                let mut fresh = vec![0u8; transfer as usize];
                p.fill(&mut fresh, t as u64 * transfer, false);
                assert_eq!(got, &fresh, "transfer size {transfer}, transfer {t}");
            }
        }
    }

    #[test]
    fn small_files_differ_by_writer_iteration_and_number() {
        let size = 3901;
        let p = Pattern::new(1, 0, size);
        let mut a = vec![0u8; size as usize];
        p.fill_file(&mut a, 7);
        let mut b = a.clone();
        p.stamp_file(&mut b, 8);
        let mut fresh = vec![0u8; size as usize];
        p.fill_file(&mut fresh, 8);
        assert_eq!(b, fresh, "restamping gives the file's content");
        assert!(p.check_file(&a, 7) && p.check_file(&b, 8));
        assert!(!p.check_file(&a, 8), "another file");
        assert!(!Pattern::new(2, 0, size).check_file(&a, 7), "another writer");
        assert!(!Pattern::new(1, 1, size).check_file(&a, 7), "another iteration");
        assert!(!p.check_file(&vec![0u8; size as usize], 7), "never written");
        let mut cut = a.clone();
        cut[size as usize - 1] = 0;
        assert!(!p.check_file(&cut, 7), "the last bytes are checked too");
    }

    #[test]
    fn spot_check_tells_writers_iterations_and_offsets_apart() {
        let transfer = 64 * 1024;
        let p = Pattern::new(1, 0, transfer);
        let data = written(&p, 2);
        assert!(p.spot_check(&data[0], 0) && p.spot_check(&data[1], transfer));
        assert!(!p.spot_check(&data[0], transfer), "data shifted by one transfer");
        assert!(!Pattern::new(2, 0, transfer).spot_check(&data[0], 0), "another writer");
        assert!(!Pattern::new(1, 1, transfer).spot_check(&data[0], 0), "another iteration");
        assert!(!p.spot_check(&vec![0u8; transfer as usize], 0), "never written");
    }
}
