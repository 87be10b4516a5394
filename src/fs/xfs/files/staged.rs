//! File data waiting for `sync`, by disk block: runs of contiguous blocks
//! (a write of a new extent is one run, written by one operation of the
//! batch without another copy), single blocks updated in place.

use std::collections::BTreeMap;

/// Staged blocks, as runs keyed by their first linear block.
#[derive(Debug, Default)]
pub struct Staged {
    runs: BTreeMap<u64, Vec<u8>>,
    bs: usize,
    blocks: u64,
}

impl Staged {
    /// Nothing staged, for blocks of `bs` bytes.
    pub fn new(bs: usize) -> Self {
        Staged {
            runs: BTreeMap::new(),
            bs: bs.max(1),
            blocks: 0,
        }
    }

    /// Blocks staged.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// The run holding block `lin`: its start.
    fn run_of(&self, lin: u64) -> Option<u64> {
        let (&s, v) = self.runs.range(..=lin).next_back()?;
        (lin < s + (v.len() / self.bs) as u64).then_some(s)
    }

    /// The staged bytes of block `lin`.
    #[cfg(test)]
    pub fn get(&self, lin: u64) -> Option<&[u8]> {
        let s = self.run_of(lin)?;
        let v = self.runs.get(&s)?;
        let at = (lin - s) as usize * self.bs;
        Some(&v[at..at + self.bs])
    }

    /// Copies staged bytes over `buf`, which holds the device's bytes
    /// from byte offset `off`.
    pub fn overlay(&self, off: u64, buf: &mut [u8]) {
        let bs = self.bs as u64;
        let end = off + buf.len() as u64;
        let first = off / bs;
        let start = self.run_of(first).unwrap_or(first);
        for (&s, v) in self.runs.range(start..end.div_ceil(bs)) {
            let rs = s * bs;
            let re = rs + v.len() as u64;
            let from = rs.max(off);
            let to = re.min(end);
            if from < to {
                buf[(from - off) as usize..(to - off) as usize]
                    .copy_from_slice(&v[(from - rs) as usize..(to - rs) as usize]);
            }
        }
    }

    /// Stages one block; returns what was staged for it before.
    pub fn put(&mut self, lin: u64, data: &[u8]) -> Option<Vec<u8>> {
        let bs = self.bs;
        if let Some(s) = self.run_of(lin) {
            let v = self.runs.get_mut(&s)?;
            let at = (lin - s) as usize * bs;
            let old = v[at..at + bs].to_vec();
            v[at..at + bs].copy_from_slice(&data[..bs]);
            return Some(old);
        }
        // Extend a run ending just before, else start one.
        let prev = self
            .runs
            .range(..lin)
            .next_back()
            .filter(|(s, v)| **s + (v.len() / bs) as u64 == lin)
            .map(|(s, _)| *s);
        match prev {
            Some(s) => {
                if let Some(v) = self.runs.get_mut(&s) {
                    v.extend_from_slice(&data[..bs]);
                }
            }
            None => {
                self.runs.insert(lin, data[..bs].to_vec());
            }
        }
        self.blocks += 1;
        None
    }

    /// Stages a run of blocks none of which is staged yet (the caller
    /// checked with [`Staged::any_in`]).
    pub fn put_run(&mut self, lin: u64, data: Vec<u8>) {
        self.blocks += (data.len() / self.bs) as u64;
        self.runs.insert(lin, data);
    }

    /// Whether any block of `[lin, lin+n)` is staged.
    pub fn any_in(&self, lin: u64, n: u64) -> bool {
        self.run_of(lin).is_some() || self.runs.range(lin..lin + n).next().is_some()
    }

    /// Unstages `[lin, lin+n)`, returning the blocks that were staged.
    pub fn remove(&mut self, lin: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
        let bs = self.bs;
        let end = lin + n;
        let start = self.run_of(lin).unwrap_or(lin);
        let keys: Vec<u64> = self.runs.range(start..end).map(|(&s, _)| s).collect();
        let mut out = Vec::new();
        for s in keys {
            let Some(v) = self.runs.remove(&s) else {
                continue;
            };
            let len = (v.len() / bs) as u64;
            let cut_a = lin.max(s);
            let cut_b = end.min(s + len);
            if cut_a > s {
                self.runs.insert(s, v[..(cut_a - s) as usize * bs].to_vec());
            }
            if cut_b < s + len {
                self.runs
                    .insert(cut_b, v[(cut_b - s) as usize * bs..].to_vec());
            }
            for b in cut_a..cut_b {
                let at = (b - s) as usize * bs;
                out.push((b, v[at..at + bs].to_vec()));
            }
            self.blocks -= cut_b.saturating_sub(cut_a);
        }
        out
    }

    /// Takes every run out (for a sync).
    pub fn take(&mut self) -> BTreeMap<u64, Vec<u8>> {
        self.blocks = 0;
        std::mem::take(&mut self.runs)
    }

    /// Puts runs taken by [`Staged::take`] back (a failed sync).
    pub fn restore(&mut self, runs: BTreeMap<u64, Vec<u8>>) {
        self.blocks = runs.values().map(|v| (v.len() / self.bs) as u64).sum();
        self.runs = runs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_and_overlay() {
        let mut s = Staged::new(4);
        s.put_run(10, vec![1; 16]);
        assert_eq!(s.put(11, &[2; 4]), Some(vec![1; 4]));
        assert_eq!(s.put(14, &[3; 4]), None);
        assert_eq!(s.put(20, &[4; 4]), None);
        assert_eq!(s.blocks(), 6);
        let mut buf = vec![0u8; 4 * 6];
        s.overlay(40, &mut buf);
        assert_eq!(&buf[..4], &[1; 4]);
        assert_eq!(&buf[4..8], &[2; 4]);
        assert_eq!(&buf[16..20], &[3; 4]);
        let gone = s.remove(11, 2);
        assert_eq!(gone.len(), 2);
        assert_eq!(s.blocks(), 4);
        assert!(s.get(11).is_none() && s.get(12).is_none());
        assert_eq!(s.get(13), Some(&[1u8; 4][..]));
        assert!(s.any_in(9, 2));
        assert!(!s.any_in(15, 5));
        let all = s.take();
        assert_eq!(s.blocks(), 0);
        s.restore(all);
        assert_eq!(s.blocks(), 4);
    }
}
