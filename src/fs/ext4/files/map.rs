//! A file's block mapping in memory: which logical blocks are mapped to
//! which physical blocks, and whether each run is written or unwritten
//! (preallocated: reads as zeros). Runs are kept merged (logically and
//! physically contiguous runs of the same state are one run, whatever
//! their length); the on-disk extents are cut from them at the extent
//! length limits only when the tree is built ([`FileMap::disk_extents`]).

use crate::fs::ext4::extent::Extent;
use std::collections::BTreeMap;

/// Longest initialized extent (`ee_len` ≤ 32768).
pub const MAX_INIT_LEN: u64 = 32768;
/// Longest unwritten extent (`ee_len` − 32768 ≤ 32767).
pub const MAX_UNWRITTEN_LEN: u64 = 32767;

/// One mapped run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First logical block.
    pub lblk: u64,
    /// Blocks.
    pub len: u64,
    /// First physical block.
    pub pblk: u64,
    /// Preallocated, reads as zeros.
    pub unwritten: bool,
}

impl Run {
    /// One past the last logical block.
    pub fn end(&self) -> u64 {
        self.lblk + self.len
    }
}

/// A piece of a logical range: mapped (a run clipped to the range) or a
/// hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Mapped blocks.
    Mapped(Run),
    /// Unmapped blocks `start..end`.
    Hole {
        /// First block.
        start: u64,
        /// One past the last.
        end: u64,
    },
}

/// The mapping of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMap {
    /// lblk → (len, pblk, unwritten).
    runs: BTreeMap<u64, (u64, u64, bool)>,
    /// Σ len.
    blocks: u64,
}

impl FileMap {
    /// The empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mapped blocks (written and unwritten).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Every run in logical order.
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        self.runs
            .iter()
            .map(|(&lblk, &(len, pblk, unwritten))| Run {
                lblk,
                len,
                pblk,
                unwritten,
            })
    }

    /// One past the last mapped logical block (0 when empty).
    pub fn end(&self) -> u64 {
        self.runs
            .iter()
            .next_back()
            .map_or(0, |(&l, &(len, _, _))| l + len)
    }

    /// The run containing `lblk`.
    pub fn find(&self, lblk: u64) -> Option<Run> {
        let (&l, &(len, pblk, unwritten)) = self.runs.range(..=lblk).next_back()?;
        (l + len > lblk).then_some(Run {
            lblk: l,
            len,
            pblk,
            unwritten,
        })
    }

    /// The last run ending at or before `lblk` (for allocation goals).
    pub fn before(&self, lblk: u64) -> Option<Run> {
        let (&l, &(len, pblk, unwritten)) = self.runs.range(..lblk).next_back()?;
        Some(Run {
            lblk: l,
            len,
            pblk,
            unwritten,
        })
    }

    /// True when any block of `start..end` is mapped.
    pub fn any_mapped(&self, start: u64, end: u64) -> bool {
        start < end && (self.find(start).is_some() || self.runs.range(start..end).next().is_some())
    }

    /// The first mapped run that meets `start..end` (not clipped).
    pub fn first_in(&self, start: u64, end: u64) -> Option<Run> {
        if start >= end {
            return None;
        }
        if let Some(r) = self.find(start) {
            return Some(r);
        }
        let (&lblk, &(len, pblk, unwritten)) = self.runs.range(start..end).next()?;
        Some(Run {
            lblk,
            len,
            pblk,
            unwritten,
        })
    }

    /// The mapped parts of `start..end`, in order (runs clipped to it).
    pub fn mapped_in(&self, start: u64, end: u64) -> Vec<Run> {
        if start >= end {
            return Vec::new();
        }
        self.pieces(start, end)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Mapped(r) => Some(r),
                Piece::Hole { .. } => None,
            })
            .collect()
    }

    /// The pieces covering `start..end`, in order.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut pos = start;
        let first = match self.find(start) {
            Some(r) => r.lblk,
            None => start,
        };
        for (&l, &(len, pblk, unwritten)) in self.runs.range(first..end) {
            if l + len <= pos {
                continue;
            }
            if l > pos {
                out.push(Piece::Hole { start: pos, end: l });
                pos = l;
            }
            let s = pos.max(l);
            let e = (l + len).min(end);
            out.push(Piece::Mapped(Run {
                lblk: s,
                len: e - s,
                pblk: pblk + (s - l),
                unwritten,
            }));
            pos = e;
        }
        if pos < end {
            out.push(Piece::Hole { start: pos, end });
        }
        out
    }

    /// Adds a run over unmapped blocks (returns false, changing nothing,
    /// if any of them is mapped), merging with its neighbours.
    pub fn insert(&mut self, run: Run) -> bool {
        if run.len == 0 {
            return true;
        }
        if self.find(run.lblk).is_some() || self.runs.range(run.lblk..run.end()).next().is_some() {
            return false;
        }
        self.runs
            .insert(run.lblk, (run.len, run.pblk, run.unwritten));
        self.blocks += run.len;
        self.merge_at(run.lblk);
        true
    }

    /// Removes `start..end` from the map; returns the physical runs that
    /// were mapped there (to be freed).
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<(u64, u64)> {
        if start >= end {
            return Vec::new();
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.runs.range(start..end).map(|(&k, _)| k).collect();
        let mut freed = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some((len, pblk, _)) = self.runs.remove(&k) {
                self.blocks -= len;
                freed.push((pblk, len));
            }
        }
        freed
    }

    /// Marks `start..end` written where it is mapped unwritten (the
    /// kernel's split of an unwritten extent on write).
    pub fn set_written(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.runs.range(start..end).map(|(&k, _)| k).collect();
        for k in &keys {
            if let Some(v) = self.runs.get_mut(k) {
                v.2 = false;
            }
        }
        self.merge_range(start, end);
    }

    /// Merges every mergeable pair of runs from the one before `start` to
    /// the one at `end`.
    fn merge_range(&mut self, start: u64, end: u64) {
        let from = self.before(start).map_or(start, |r| r.lblk);
        let keys: Vec<u64> = self.runs.range(from..=end).map(|(&k, _)| k).collect();
        for k in keys {
            if self.runs.contains_key(&k) {
                self.merge_at(k);
            }
        }
    }

    /// Cuts the run containing `lblk` so that a run starts there.
    fn split_at(&mut self, lblk: u64) {
        let Some(r) = self.find(lblk) else { return };
        if r.lblk == lblk {
            return;
        }
        let left = lblk - r.lblk;
        self.runs.insert(r.lblk, (left, r.pblk, r.unwritten));
        self.runs
            .insert(lblk, (r.len - left, r.pblk + left, r.unwritten));
    }

    /// Merges the run starting at `lblk` with contiguous neighbours of the
    /// same state.
    fn merge_at(&mut self, lblk: u64) {
        let Some(&(len, pblk, unw)) = self.runs.get(&lblk) else {
            return;
        };
        let (mut l, mut n, mut p) = (lblk, len, pblk);
        if let Some((&pl, &(plen, pp, pu))) = self.runs.range(..lblk).next_back() {
            if pl + plen == lblk && pp + plen == pblk && pu == unw {
                self.runs.remove(&lblk);
                l = pl;
                n += plen;
                p = pp;
            }
        }
        if let Some(&(nlen, np, nu)) = self.runs.get(&(l + n)) {
            if np == p + n && nu == unw {
                self.runs.remove(&(l + n));
                n += nlen;
            }
        }
        self.runs.insert(l, (n, p, unw));
    }

    /// The on-disk extents: runs cut at the length limits (32768 written,
    /// 32767 unwritten).
    pub fn disk_extents(&self) -> Vec<Extent> {
        let mut out = Vec::with_capacity(self.runs.len());
        for r in self.runs() {
            let max = if r.unwritten {
                MAX_UNWRITTEN_LEN
            } else {
                MAX_INIT_LEN
            };
            let mut off = 0;
            while off < r.len {
                let n = (r.len - off).min(max);
                out.push(Extent {
                    // Logical blocks are below 2^32 (checked when mapped).
                    ee_block: (r.lblk + off) as u32,
                    ee_len: if r.unwritten {
                        (n + MAX_INIT_LEN) as u16
                    } else {
                        // 32768 is stored as-is for an initialized extent.
                        n as u16
                    },
                    start: r.pblk + off,
                });
                off += n;
            }
        }
        out
    }

    /// How many on-disk extents [`FileMap::disk_extents`] makes.
    pub fn disk_extent_count(&self) -> u64 {
        self.runs()
            .map(|r| {
                let max = if r.unwritten {
                    MAX_UNWRITTEN_LEN
                } else {
                    MAX_INIT_LEN
                };
                r.len.div_ceil(max)
            })
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(lblk: u64, len: u64, pblk: u64, unwritten: bool) -> Run {
        Run {
            lblk,
            len,
            pblk,
            unwritten,
        }
    }

    #[test]
    fn insert_merges_and_refuses_overlap() {
        let mut m = FileMap::new();
        assert!(m.insert(run(0, 10, 100, false)));
        assert!(m.insert(run(10, 5, 110, false)));
        assert_eq!(m.runs().collect::<Vec<_>>(), vec![run(0, 15, 100, false)]);
        assert!(!m.insert(run(14, 2, 500, false)));
        // Physically discontiguous: a new run.
        assert!(m.insert(run(15, 5, 200, false)));
        assert_eq!(m.runs().count(), 2);
        assert_eq!(m.blocks(), 20);
        assert_eq!(m.end(), 20);
    }

    #[test]
    fn write_into_unwritten_splits_in_three() {
        let mut m = FileMap::new();
        m.insert(run(0, 100, 1000, true));
        m.set_written(40, 50);
        assert_eq!(
            m.runs().collect::<Vec<_>>(),
            vec![
                run(0, 40, 1000, true),
                run(40, 10, 1040, false),
                run(50, 50, 1050, true)
            ]
        );
        m.set_written(0, 40);
        m.set_written(50, 100);
        assert_eq!(m.runs().collect::<Vec<_>>(), vec![run(0, 100, 1000, false)]);
    }

    #[test]
    fn remove_returns_physical_runs() {
        let mut m = FileMap::new();
        m.insert(run(0, 100, 1000, false));
        m.insert(run(200, 10, 5000, true));
        let freed = m.remove(50, 205);
        assert_eq!(freed, vec![(1050, 50), (5000, 5)]);
        assert_eq!(
            m.runs().collect::<Vec<_>>(),
            vec![run(0, 50, 1000, false), run(205, 5, 5005, true)]
        );
        assert_eq!(m.blocks(), 55);
        assert_eq!(
            m.pieces(40, 210),
            vec![
                Piece::Mapped(run(40, 10, 1040, false)),
                Piece::Hole {
                    start: 50,
                    end: 205
                },
                Piece::Mapped(run(205, 5, 5005, true)),
            ]
        );
    }

    #[test]
    fn disk_extents_cut_at_limits() {
        let mut m = FileMap::new();
        m.insert(run(0, 70000, 1 << 20, true));
        m.insert(run(70000, 40000, 1 << 24, false));
        let e = m.disk_extents();
        assert_eq!(m.disk_extent_count(), e.len() as u64);
        let lens: Vec<u16> = e.iter().map(|x| x.ee_len).collect();
        assert_eq!(
            lens,
            // 70000 unwritten = 32767 + 32767 + 4466; 40000 written =
            // 32768 + 7232.
            vec![65535u16, 65535, 32768 + 4466, 32768, 7232]
        );
        assert_eq!(e[3].ee_block, 70000);
    }
}
