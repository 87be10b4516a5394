//! File data waiting for the next sync: runs of whole blocks keyed by
//! their first physical block. Sequential writes extend one run (one
//! buffer, written as one range at sync) instead of allocating a buffer
//! per block.

use std::collections::BTreeMap;

/// Staged blocks.
#[derive(Debug, Default)]
pub struct Staged {
    bs: usize,
    /// First block → the run's bytes (a multiple of the block size).
    runs: BTreeMap<u64, Vec<u8>>,
    /// Bytes staged.
    bytes: u64,
    /// Run buffers given back after a sync, reused (no page faults, no
    /// allocator churn for the next run).
    pool: Vec<Vec<u8>>,
}

/// Runs stop growing at this many bytes (one write each at sync).
const MAX_RUN: usize = 1 << 20;

impl Staged {
    /// Nothing staged, for blocks of `bs` bytes.
    pub fn new(bs: usize) -> Self {
        Staged {
            bs,
            runs: BTreeMap::new(),
            bytes: 0,
            pool: Vec::new(),
        }
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Bytes staged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The run holding block `b`: (first block, bytes).
    fn run_of(&self, b: u64) -> Option<(u64, &Vec<u8>)> {
        let (&s, v) = self.runs.range(..=b).next_back()?;
        let n = (v.len() / self.bs) as u64;
        (b < s + n).then_some((s, v))
    }

    /// Block `b`'s staged bytes.
    pub fn get(&self, b: u64) -> Option<&[u8]> {
        let (s, v) = self.run_of(b)?;
        let at = (b - s) as usize * self.bs;
        Some(&v[at..at + self.bs])
    }

    /// Stages `data` (one block) for block `b`.
    pub fn put(&mut self, b: u64, data: &[u8]) {
        let bs = self.bs;
        if let Some((s, _)) = self.run_of(b) {
            if let Some(v) = self.runs.get_mut(&s) {
                let at = (b - s) as usize * bs;
                v[at..at + bs].copy_from_slice(&data[..bs]);
            }
            return;
        }
        self.bytes += bs as u64;
        if let Some((&s, v)) = self.runs.range_mut(..b).next_back() {
            if s + (v.len() / bs) as u64 == b && v.len() < MAX_RUN {
                v.extend_from_slice(&data[..bs]);
                return;
            }
        }
        let mut v = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_RUN.max(bs)));
        v.clear();
        v.extend_from_slice(&data[..bs]);
        self.runs.insert(b, v);
    }

    /// The staged blocks in `lo..hi`: (block, bytes).
    pub fn blocks_in(&self, lo: u64, hi: u64) -> Vec<(u64, &[u8])> {
        let mut out = Vec::new();
        let first = self.run_of(lo).map_or(lo, |(s, _)| s);
        for (&s, v) in self.runs.range(first..hi) {
            let n = (v.len() / self.bs) as u64;
            for b in s.max(lo)..(s + n).min(hi) {
                let at = (b - s) as usize * self.bs;
                out.push((b, &v[at..at + self.bs]));
            }
        }
        out
    }

    /// Drops whatever is staged for blocks `lo..hi`.
    pub fn remove(&mut self, lo: u64, hi: u64) {
        let first = self.run_of(lo).map_or(lo, |(s, _)| s);
        let keys: Vec<u64> = self.runs.range(first..hi).map(|(&k, _)| k).collect();
        for s in keys {
            let Some(v) = self.runs.remove(&s) else {
                continue;
            };
            let n = (v.len() / self.bs) as u64;
            let (cut_lo, cut_hi) = (lo.max(s), hi.min(s + n));
            if cut_lo > s {
                self.runs
                    .insert(s, v[..(cut_lo - s) as usize * self.bs].to_vec());
            }
            if cut_hi < s + n {
                self.runs
                    .insert(cut_hi, v[(cut_hi - s) as usize * self.bs..].to_vec());
            }
            self.bytes -= (cut_hi - cut_lo) * self.bs as u64;
        }
    }

    /// Takes every run (first block, bytes), leaving nothing staged.
    pub fn take(&mut self) -> BTreeMap<u64, Vec<u8>> {
        self.bytes = 0;
        std::mem::take(&mut self.runs)
    }

    /// Gives a run's buffer back for reuse (up to `keep` bytes of
    /// buffers are kept).
    pub fn recycle(&mut self, v: Vec<u8>, keep: u64) {
        if v.capacity() == MAX_RUN.max(self.bs)
            && (self.pool.len() as u64 + 1) * (MAX_RUN as u64) <= keep
        {
            self.pool.push(v);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn runs_grow_split_and_read() {
        let mut s = Staged::new(4);
        for b in 10..20u64 {
            s.put(b, &[b as u8; 4]);
        }
        s.put(30, &[1; 4]);
        assert_eq!(s.runs.len(), 2);
        assert_eq!(s.get(15), Some(&[15u8; 4][..]));
        s.put(15, &[99; 4]);
        assert_eq!(s.get(15), Some(&[99u8; 4][..]));
        assert_eq!(s.bytes(), 44);
        s.remove(12, 14);
        assert_eq!(s.get(12), None);
        assert_eq!(s.get(14), Some(&[14u8; 4][..]));
        assert_eq!(s.bytes(), 36);
        let got: Vec<u64> = s.blocks_in(9, 17).iter().map(|x| x.0).collect();
        assert_eq!(got, vec![10, 11, 14, 15, 16]);
        let all = s.take();
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), vec![10, 14, 30]);
        assert!(s.is_empty());
    }
}
