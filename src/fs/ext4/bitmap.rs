//! Block and inode bitmaps.
//!
//! A whole filesystem's block bitmap can be 512 MiB (16 TiB of 4 KiB
//! blocks), while the used blocks of a fresh or lightly used filesystem
//! form a few thousand runs. So the allocator works on a [`BlockSet`], a set
//! of used runs, and the on-disk bitmaps (one block per group) are rendered
//! from it or parsed into it group by group.

use super::checksum::crc32c_raw;
use std::ops::Range;

/// A set of used blocks kept as sorted, non-overlapping, non-touching runs
/// in a vector: the allocators insert mostly in ascending order, so an
/// insert is usually an append, and lookups are binary searches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockSet {
    runs: Vec<Range<u64>>,
}

impl BlockSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `range` used (merging with neighbours).
    pub fn insert(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        // Runs touching or overlapping `range` are runs[i..j].
        let i = self.first_run_where(|r| r.end >= range.start);
        let j = i + self.runs[i..].partition_point(|r| r.start <= range.end);
        if i == j {
            self.runs.insert(i, range);
            return;
        }
        let start = range.start.min(self.runs[i].start);
        let end = range.end.max(self.runs[j - 1].end);
        self.runs[i] = start..end;
        self.runs.drain(i + 1..j);
    }

    /// The index of the first run for which `past` holds (`past` must be
    /// false for a prefix of the runs and true for the rest), like
    /// `partition_point` with the predicate negated. The writers (mkfs
    /// placing group tables, resize2fs placing new ones) work near the
    /// end of the set, so the search gallops back from the last run
    /// before it bisects: a handful of cache-near steps instead of a
    /// bisection of tens of thousands of runs.
    fn first_run_where(&self, past: impl Fn(&Range<u64>) -> bool) -> usize {
        let n = self.runs.len();
        // `hi`: a run known to satisfy `past` (or n); `lo`: everything
        // before it may be searched.
        let mut hi = n;
        let mut step = 1;
        while hi > 0 {
            let probe = hi.saturating_sub(step);
            if past(&self.runs[probe]) {
                hi = probe;
                step *= 2;
            } else {
                return probe + 1 + self.runs[probe + 1..hi].partition_point(|r| !past(r));
            }
        }
        0
    }

    /// Marks one block used.
    pub fn insert_block(&mut self, b: u64) {
        self.insert(b..b + 1);
    }

    /// Marks one block free (splitting its run).
    pub fn remove_block(&mut self, b: u64) {
        let i = self.first_run_where(|r| r.end > b);
        let Some(r) = self.runs.get(i).cloned() else {
            return;
        };
        if r.start > b {
            return;
        }
        match (r.start < b, b + 1 < r.end) {
            (false, false) => {
                self.runs.remove(i);
            }
            (true, false) => self.runs[i] = r.start..b,
            (false, true) => self.runs[i] = b + 1..r.end,
            (true, true) => {
                self.runs[i] = r.start..b;
                self.runs.insert(i + 1, b + 1..r.end);
            }
        }
    }

    /// Marks `range` free (cutting the runs it overlaps).
    pub fn remove(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let i = self.first_run_where(|r| r.end > range.start);
        let j = i + self.runs[i..].partition_point(|r| r.start < range.end);
        if i == j {
            return;
        }
        let (first, last) = (self.runs[i].clone(), self.runs[j - 1].clone());
        let mut keep = Vec::with_capacity(2);
        if first.start < range.start {
            keep.push(first.start..range.start);
        }
        if last.end > range.end {
            keep.push(range.end..last.end);
        }
        self.runs.splice(i..j, keep);
    }

    /// True when `b` is used.
    pub fn contains(&self, b: u64) -> bool {
        self.run_at_or_after(b).is_some_and(|(s, _)| s <= b)
    }

    /// The first run that ends after `b` (contains `b` or lies after it).
    fn run_at_or_after(&self, b: u64) -> Option<(u64, u64)> {
        let i = self.first_run_where(|r| r.end > b);
        self.runs.get(i).map(|r| (r.start, r.end))
    }

    /// The first `b` in `lo..hi` such that `b..b+num` holds no used block.
    pub fn find_fit(&self, lo: u64, hi: u64, num: u64) -> Option<u64> {
        let mut b = lo;
        let mut i = self.first_run_where(|r| r.end > b);
        while b < hi {
            match self.runs.get(i) {
                None => return Some(b),
                Some(r) => {
                    if r.start <= b {
                        b = r.end;
                        i += 1;
                    } else if r.start >= b.checked_add(num)? {
                        return Some(b);
                    } else {
                        b = r.end;
                        i += 1;
                    }
                }
            }
        }
        None
    }

    /// The first free block at or after `b`, below `end`.
    pub fn first_free(&self, b: u64, end: u64) -> Option<u64> {
        self.find_fit(b, end, 1)
    }

    /// The length of the free run starting at `b` (which must be free),
    /// capped at `max` and at `end`.
    pub fn free_run_len(&self, b: u64, max: u64, end: u64) -> u64 {
        let limit = end.min(b.saturating_add(max));
        match self.run_at_or_after(b) {
            Some((s, _)) if s < limit => s.saturating_sub(b),
            _ => limit.saturating_sub(b),
        }
    }

    /// Number of used blocks in `range`.
    pub fn count_in(&self, range: Range<u64>) -> u64 {
        self.runs_in(range).map(|r| r.end - r.start).sum()
    }

    /// Used blocks of each of `groups` groups of `bpg` blocks starting at
    /// `first`, in one pass over the runs (instead of one range query per
    /// group).
    pub fn count_per_group(&self, first: u64, bpg: u64, groups: u64) -> Vec<u64> {
        let mut out = vec![0u64; usize::try_from(groups).unwrap_or(0)];
        let end = first.saturating_add(bpg.saturating_mul(groups));
        for r in self.runs_in(first..end) {
            let mut s = r.start;
            while s < r.end {
                let g = (s - first) / bpg;
                let g_end = first + (g + 1) * bpg;
                let e = r.end.min(g_end);
                if let Some(c) = out.get_mut(g as usize) {
                    *c += e - s;
                }
                s = e;
            }
        }
        out
    }

    /// The used runs clipped to `range`, in order.
    pub fn runs_in(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let i = self.first_run_where(|r| r.end > range.start);
        let (start, end) = (range.start, range.end);
        self.runs[i..]
            .iter()
            .take_while(move |r| r.start < end)
            .map(move |r| r.start.max(start)..r.end.min(end))
            .filter(|r| !r.is_empty())
    }

    /// Every run, in order.
    pub fn runs(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.runs.iter().cloned()
    }

    /// Adds the set bits of `bitmap` (bit i = block `base + i`), reading
    /// `nbits` bits.
    pub fn insert_bitmap(&mut self, base: u64, bitmap: &[u8], nbits: u64) {
        let nbits = nbits.min(bitmap.len() as u64 * 8);
        let mut run: Option<u64> = None;
        let mut i = 0u64;
        while i < nbits {
            let byte = bitmap[(i / 8) as usize];
            // Whole bytes of one value go eight bits at a time.
            let (set, step) = if i % 8 == 0 && i + 8 <= nbits && (byte == 0 || byte == 0xFF) {
                (byte == 0xFF, 8)
            } else {
                (byte & (1 << (i % 8)) != 0, 1)
            };
            match (set, run) {
                (true, None) => run = Some(i),
                (false, Some(s)) => {
                    self.insert(base + s..base + i);
                    run = None;
                }
                _ => {}
            }
            i += step;
        }
        if let Some(s) = run {
            self.insert(base + s..base + nbits);
        }
    }
}

/// Renders the bits of `set` for blocks `base..base+nbits` into a bitmap of
/// `len` bytes; bits from `nbits` to the end of the block are set (the
/// padding of the last group, and of groups smaller than a bitmap block).
pub fn render(set: &BlockSet, base: u64, nbits: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for r in set.runs_in(base..base + nbits) {
        set_bits(&mut out, r.start - base, r.end - base);
    }
    let total = len as u64 * 8;
    if nbits < total {
        set_bits(&mut out, nbits, total);
    }
    out
}

/// Sets bits `from..to` of `bm` (bits past its end are ignored): the odd
/// bits at either end one by one, the whole bytes between with one fill.
pub fn set_bits(bm: &mut [u8], from: u64, to: u64) {
    let to = to.min(bm.len() as u64 * 8);
    let mut i = from;
    while i < to && i % 8 != 0 {
        bm[(i / 8) as usize] |= 1 << (i % 8);
        i += 1;
    }
    let whole_end = to / 8 * 8;
    if i < whole_end {
        bm[(i / 8) as usize..(whole_end / 8) as usize].fill(0xFF);
        i = whole_end;
    }
    while i < to {
        bm[(i / 8) as usize] |= 1 << (i % 8);
        i += 1;
    }
}

/// True when bit `i` of `bm` is set.
pub fn test_bit(bm: &[u8], i: u64) -> bool {
    bm.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Number of set bits among the first `nbits`, and the 1-based index of
/// the last set one (0 when none).
pub fn count_and_last(bm: &[u8], nbits: u64) -> (u64, u64) {
    let mut count = 0;
    let mut last = 0;
    let nbits = nbits.min(bm.len() as u64 * 8);
    let full = (nbits / 8) as usize;
    for (i, &b) in bm[..full].iter().enumerate() {
        if b != 0 {
            count += u64::from(b.count_ones());
            last = i as u64 * 8 + 8 - u64::from(b.leading_zeros());
        }
    }
    for i in full as u64 * 8..nbits {
        if test_bit(bm, i) {
            count += 1;
            last = i + 1;
        }
    }
    (count, last)
}

/// A bitmap checksum: `crc32c_raw(seed, bitmap[..nbytes])`, stored split
/// into the descriptor's lo/hi 16-bit halves.
pub fn bitmap_csum(seed: u32, bitmap: &[u8], nbytes: usize) -> u32 {
    crc32c_raw(seed, &bitmap[..nbytes.min(bitmap.len())])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remove_block_splits_runs() {
        let mut s = BlockSet::new();
        s.insert(10..20);
        s.remove_block(15);
        s.remove_block(10);
        s.remove_block(19);
        s.remove_block(25);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![11..15, 16..19]);
        s.insert_block(7);
        s.remove_block(7);
        assert_eq!(s.count_in(0..100), 7);
    }

    #[test]
    fn insert_merges_and_counts() {
        let mut s = BlockSet::new();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..30);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![10..40]);
        s.insert(5..12);
        s.insert(50..60);
        s.insert(39..51);
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![5..60]);
        assert_eq!(s.count_in(0..100), 55);
        assert_eq!(s.count_in(10..20), 10);
        assert!(s.contains(5) && s.contains(59) && !s.contains(60) && !s.contains(4));
    }

    #[test]
    fn set_bits_matches_bit_by_bit() {
        for from in 0..40u64 {
            for to in from..48u64 {
                let mut fast = [0u8; 5];
                set_bits(&mut fast, from, to);
                let mut slow = [0u8; 5];
                for i in from..to.min(40) {
                    slow[(i / 8) as usize] |= 1 << (i % 8);
                }
                assert_eq!(fast, slow, "{from}..{to}");
            }
        }
    }

    #[test]
    fn galloping_search_agrees_with_bisection() {
        let mut s = BlockSet::new();
        for k in 0..300u64 {
            s.insert(k * 10..k * 10 + 1 + k % 7);
        }
        for b in 0..3100u64 {
            let want = s.runs.partition_point(|r| r.end <= b);
            assert_eq!(s.first_run_where(|r| r.end > b), want, "b = {b}");
        }
        let empty = BlockSet::new();
        assert_eq!(empty.first_run_where(|r| r.end > 5), 0);
    }

    #[test]
    fn find_fit_skips_used_runs() {
        let mut s = BlockSet::new();
        s.insert(0..10);
        s.insert(12..20);
        assert_eq!(s.find_fit(0, 100, 1), Some(10));
        assert_eq!(s.find_fit(0, 100, 3), Some(20));
        assert_eq!(s.find_fit(0, 15, 3), None);
        assert_eq!(s.free_run_len(10, 100, 100), 2);
        assert_eq!(s.free_run_len(20, 5, 100), 5);
        assert_eq!(s.free_run_len(20, 500, 100), 80);
    }

    #[test]
    fn bitmap_round_trip() {
        let mut s = BlockSet::new();
        s.insert(100..103);
        s.insert(107..200);
        s.insert(4000..4096);
        let bm = render(&s, 100, 4000, 512);
        let mut back = BlockSet::new();
        back.insert_bitmap(100, &bm, 4096);
        // Padding bits 4000..4096 relative read back as blocks 4100..4196.
        let want: Vec<_> = vec![100..103, 107..200, 4000..4096, 4100..4196];
        assert_eq!(back.runs().collect::<Vec<_>>(), want);
    }
}
