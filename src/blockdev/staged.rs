//! A device that gathers several writers' commits in memory over a base
//! device and hands them to it as one plan: for a sequence of steps (a
//! partition grow, then a filesystem grow, then a file append) that must
//! reach the image all together or not at all. Each step reads what the
//! steps before it wrote; nothing reaches the base until [`Staged::finish`],
//! whose single commit goes through the base's own undo log.
//!
//! Handles are shared (`Rc`): each step may own one (a filesystem opened
//! on a slice of it owns its device) while the caller keeps another.

use super::{BlockDevice, Error, WriteBatch, WritePlan, check_range};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

/// What a staged piece holds: bytes, or zeros (a discard).
#[derive(Debug, Clone)]
enum Piece {
    Data(Vec<u8>),
    Zero,
}

#[derive(Debug)]
struct Inner<D> {
    base: D,
    /// Disjoint staged pieces: start -> (end, content).
    pieces: BTreeMap<u64, (u64, Piece)>,
}

/// A shared handle on a staging overlay (see the module doc).
#[derive(Debug)]
pub struct Staged<D> {
    inner: Rc<RefCell<Inner<D>>>,
}

impl<D> Clone for Staged<D> {
    fn clone(&self) -> Self {
        Staged {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<D: BlockDevice> Staged<D> {
    /// An overlay on `base` with nothing staged.
    pub fn new(base: D) -> Self {
        Staged {
            inner: Rc::new(RefCell::new(Inner {
                base,
                pieces: BTreeMap::new(),
            })),
        }
    }

    /// Commits everything staged to the base as one plan (data where bytes
    /// were written, discards where zeros were) and returns the number of
    /// pieces. Other handles still read the base (now changed) afterwards.
    pub fn finish(&self) -> Result<usize, Error> {
        let mut inner = self.inner.borrow_mut();
        let mut batch = WriteBatch::new();
        let pieces = std::mem::take(&mut inner.pieces);
        let n = pieces.len();
        for (start, (end, piece)) in pieces {
            match piece {
                Piece::Data(b) => batch.write(start, b),
                Piece::Zero => batch.discard(start..end),
            }
        }
        if !batch.is_empty() {
            inner.base.commit(&batch)?;
        }
        Ok(n)
    }
}

impl<D> Inner<D> {
    /// Lays `piece` over `start..end`, cutting back what it covers.
    fn paint(&mut self, start: u64, end: u64, piece: Piece) {
        if start >= end {
            return;
        }
        // Pieces that overlap start..end.
        let mut hit: Vec<u64> = self
            .pieces
            .range(..end)
            .rev()
            .take_while(|(_, (e, _))| *e > start)
            .map(|(s, _)| *s)
            .collect();
        // A piece starting before `start` may reach past it even when a
        // later one does not: look at the nearest one before too.
        if let Some((&s, (e, _))) = self.pieces.range(..start).next_back() {
            if *e > start && !hit.contains(&s) {
                hit.push(s);
            }
        }
        for s in hit {
            let Some((e, p)) = self.pieces.remove(&s) else {
                continue;
            };
            if s < start {
                self.pieces.insert(s, (start, cut(&p, s, s, start)));
            }
            if e > end {
                self.pieces.insert(end, (e, cut(&p, s, end, e)));
            }
        }
        self.pieces.insert(start, (end, piece));
    }
}

/// The part `from..to` of a piece that starts at `at`.
fn cut(p: &Piece, at: u64, from: u64, to: u64) -> Piece {
    match p {
        Piece::Zero => Piece::Zero,
        Piece::Data(b) => Piece::Data(
            b.get((from - at) as usize..(to - at) as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

impl<D: BlockDevice> BlockDevice for Staged<D> {
    fn size(&self) -> u64 {
        self.inner.borrow().base.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let inner = self.inner.borrow();
        inner.base.read_at(offset, buf)?;
        let end = offset.saturating_add(buf.len() as u64);
        let first = inner
            .pieces
            .range(..=offset)
            .next_back()
            .map_or(offset, |(s, _)| *s);
        for (&s, (e, p)) in inner.pieces.range(first..end) {
            let (from, to) = (s.max(offset), (*e).min(end));
            if from >= to {
                continue;
            }
            let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
            match p {
                Piece::Zero => dst.fill(0),
                Piece::Data(b) => {
                    if let Some(src) = b.get((from - s) as usize..(to - s) as usize) {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        let size = self.size();
        if plan.new_len().is_some_and(|l| l != size) {
            return Err(Error::FixedSize(self.name()));
        }
        // Check and gather first: a refused plan stages nothing.
        let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
        plan.for_each_write(&mut |off, bytes| {
            check_range(off, bytes.len() as u64, size)?;
            writes.push((off, bytes.to_vec()));
            Ok(())
        })?;
        let discards = plan.discards();
        for d in &discards {
            check_range(d.start, d.end.saturating_sub(d.start), size)?;
        }
        let mut inner = self.inner.borrow_mut();
        // A plan's discards spare its own writes: zero first, write after.
        for d in discards {
            inner.paint(d.start, d.end, Piece::Zero);
        }
        for (off, b) in writes {
            let end = off + b.len() as u64;
            inner.paint(off, end, Piece::Data(b));
        }
        Ok(())
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        // The base's data plus every staged piece (zeros included: a
        // range reported as data that reads as zeros costs only a read).
        let inner = self.inner.borrow();
        let mut v = inner.base.data_ranges(range.clone())?;
        for (&s, (e, _)) in &inner.pieces {
            let (a, b) = (s.max(range.start), (*e).min(range.end));
            if a < b {
                v.push(a..b);
            }
        }
        v.sort_unstable_by_key(|r| r.start);
        let mut out: Vec<Range<u64>> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(l) if r.start <= l.end => l.end = l.end.max(r.end),
                _ => out.push(r),
            }
        }
        Ok(out)
    }

    fn name(&self) -> String {
        self.inner.borrow().base.name()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;

    #[test]
    fn steps_read_each_other_and_reach_the_base_in_one_commit() {
        let base = MemDevice::from_bytes((0..=255u8).cycle().take(8192).collect());
        let want = {
            let mut m = base.clone();
            let mut b = WriteBatch::new();
            b.write(100, vec![1; 200]);
            m.commit(&b).unwrap();
            let mut b = WriteBatch::new();
            b.discard(0..4096);
            b.write(150, vec![2; 10]);
            m.commit(&b).unwrap();
            let mut b = WriteBatch::new();
            b.write(4090, vec![3; 20]);
            b.write(120, vec![4; 5]);
            m.commit(&b).unwrap();
            m
        };
        let s = Staged::new(base.clone());
        let mut h = s.clone();
        let mut b = WriteBatch::new();
        b.write(100, vec![1; 200]);
        h.commit(&b).unwrap();
        assert_eq!(h.read_vec(99, 3).unwrap(), vec![99, 1, 1]);
        let mut b = WriteBatch::new();
        b.discard(0..4096);
        b.write(150, vec![2; 10]);
        h.commit(&b).unwrap();
        let mut b = WriteBatch::new();
        b.write(4090, vec![3; 20]);
        b.write(120, vec![4; 5]);
        h.commit(&b).unwrap();
        assert_eq!(s.read_vec(0, 8192).unwrap(), want.bytes());
        assert_eq!(s.inner.borrow().base.commits, 0);
        s.finish().unwrap();
        let inner = s.inner.borrow();
        assert_eq!(inner.base.commits, 1);
        assert_eq!(inner.base.bytes(), want.bytes());
    }

    #[test]
    fn a_refused_plan_stages_nothing() {
        let mut s = Staged::new(MemDevice::new(100));
        let mut b = WriteBatch::new();
        b.write(10, vec![1; 5]);
        b.write(98, vec![1; 5]);
        assert!(s.commit(&b).is_err());
        assert_eq!(s.read_vec(0, 100).unwrap(), vec![0; 100]);
        assert_eq!(s.finish().unwrap(), 0);
    }
}
