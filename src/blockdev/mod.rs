//! Storage: the devices every other layer reads and writes.
//!
//! A [`BlockDevice`] is a byte-addressed store with a fixed size. Reads go
//! straight to it; writes never do. Every change is described by a
//! [`WritePlan`] (the "plan" side of plan-then-apply) and handed to
//! [`BlockDevice::commit`], the single write path. A plan is walked, not
//! owned: the device asks it for its writes (offset and bytes) as many times
//! as it needs, so a plan can generate a terabyte filesystem's metadata
//! block by block from compact state instead of holding it. [`WriteBatch`]
//! is the plan for small writers that have their bytes already.
//!
//! For image files the commit is crash safe: the old contents of every range
//! it overwrites are saved in an undo log beside the image and fsynced first;
//! a later open of an image with a leftover log rolls the interrupted change
//! back, after checking the image is exactly in a state the log predicts
//! (see [`image`] and `undo.rs`).
//!
//! Devices:
//! - [`ImageFile`]: a sparse raw image file (grows by `set_len`, reports
//!   allocated extents with `SEEK_DATA`/`SEEK_HOLE`, exclusive `flock` while
//!   changing, fsync before success).
//! - [`Slice`]: a byte range of another device, e.g. a partition, seen as a
//!   device starting at offset 0.
//! - [`MemDevice`]: an in-memory device for unit tests.

mod error;
pub mod host;
pub mod image;
pub mod lock;
mod mem;
pub mod segmented;
mod slice;
mod staged;
mod undo;

pub use error::{CommitOutcome, Error};
pub use image::ImageFile;
pub use mem::MemDevice;
pub use slice::Slice;
pub use staged::Staged;

use std::ops::Range;

/// Where a plan's writes go: called with each write's offset and bytes, in
/// order. An error stops the walk and is returned by
/// [`WritePlan::for_each_write`].
pub type Sink<'a> = dyn FnMut(u64, &[u8]) -> Result<(), Error> + 'a;

/// A planned change of a device: an optional new length, then data writes,
/// then discards.
///
/// The device walks the writes with [`WritePlan::for_each_write`], possibly
/// more than once (an image file walks them once to save what they
/// overwrite, once to apply them), so every walk must produce exactly the
/// same writes. Writes must not overlap each other (the image file refuses a
/// plan whose writes do, before changing anything): the undo log checks each
/// block against one "new" content. ([`WriteBatch`] resolves overlaps
/// itself: the later write wins.)
pub trait WritePlan {
    /// Grow (or shrink) the device to this size first, when the device can.
    fn new_len(&self) -> Option<u64> {
        None
    }

    /// Calls `sink` with every write, in order, and returns the first error
    /// it returns.
    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), Error>;

    /// Ranges to make read as zeros (as holes where the device can) once
    /// every write is durable, except the bytes a write covers. This is the
    /// "discard the device" of the mkfs tools: it happens after the commit
    /// point, so the old contents it destroys never need saving.
    fn discards(&self) -> Vec<Range<u64>> {
        Vec::new()
    }

    /// True when the plan changes nothing (the device may then skip the
    /// commit altogether).
    fn is_empty(&self) -> bool {
        false
    }
}

/// One change of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Write these bytes at this offset.
    Data { offset: u64, bytes: Vec<u8> },
    /// Make this range read as zeros, as a hole where the device can (the
    /// real mkfs tools "discard" a file by punching holes). Wherever it
    /// appears in the batch, a discard happens after every data write and
    /// spares the bytes they cover (see [`WritePlan::discards`]).
    Discard { range: Range<u64> },
}

/// A [`WritePlan`] that owns its bytes: for writers of a few blocks
/// (partition tables, a superblock, snapshot chunks).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// Grow (or shrink) the device to this size first, when the device can.
    pub new_len: Option<u64>,
    /// The changes; data writes are made in this order (where two overlap,
    /// the later one's bytes are what the device ends with).
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a data write.
    pub fn write(&mut self, offset: u64, bytes: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Data {
            offset,
            bytes: bytes.into(),
        });
    }

    /// Appends a discard (zeroing) of `range`.
    pub fn discard(&mut self, range: Range<u64>) {
        if range.start < range.end {
            self.ops.push(WriteOp::Discard { range });
        }
    }

    /// Number of bytes of data the batch writes (discards excluded).
    pub fn data_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                WriteOp::Data { bytes, .. } => bytes.len() as u64,
                WriteOp::Discard { .. } => 0,
            })
            .sum()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.new_len.is_none() && self.ops.is_empty()
    }
}

impl WritePlan for WriteBatch {
    fn new_len(&self) -> Option<u64> {
        self.new_len
    }

    /// The writes in order; where they overlap, the bytes of the later one
    /// (as if made one after the other), walked as disjoint pieces in
    /// offset order.
    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), Error> {
        let data = || {
            self.ops.iter().filter_map(|op| match op {
                WriteOp::Data { offset, bytes } if !bytes.is_empty() => Some((*offset, bytes)),
                _ => None,
            })
        };
        let mut spans: Vec<(u64, u64)> = data()
            .map(|(o, b)| (o, o.saturating_add(b.len() as u64)))
            .collect();
        spans.sort_unstable();
        if spans.windows(2).all(|w| w[0].1 <= w[1].0) {
            for (offset, bytes) in data() {
                sink(offset, bytes)?;
            }
            return Ok(());
        }
        let ops: Vec<(u64, &Vec<u8>)> = data().collect();
        let mut painted = std::collections::BTreeMap::new();
        for (i, (o, b)) in ops.iter().enumerate() {
            paint(&mut painted, *o, o.saturating_add(b.len() as u64), i);
        }
        for (&start, &(end, i)) in &painted {
            let (o, b) = ops[i];
            // Every piece lies inside the write it came from.
            let piece = b
                .get((start - o) as usize..(end - o) as usize)
                .unwrap_or(&[]);
            sink(start, piece)?;
        }
        Ok(())
    }

    fn discards(&self) -> Vec<Range<u64>> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Discard { range } => Some(range.clone()),
                WriteOp::Data { .. } => None,
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        WriteBatch::is_empty(self)
    }
}

/// Lays the write `idx` over `start..end` in `map` (piece start -> (end,
/// index of the write it shows)), cutting back what it covers.
fn paint(
    map: &mut std::collections::BTreeMap<u64, (u64, usize)>,
    start: u64,
    end: u64,
    idx: usize,
) {
    if let Some((&ps, &(pe, pi))) = map.range(..start).next_back()
        && pe > start
    {
        map.insert(ps, (start, pi));
        if pe > end {
            map.insert(end, (pe, pi));
        }
    }
    let inside: Vec<u64> = map.range(start..end).map(|(&k, _)| k).collect();
    for k in inside {
        if let Some((ke, ki)) = map.remove(&k)
            && ke > end
        {
            map.insert(end, (ke, ki));
        }
    }
    map.insert(start, (end, idx));
}

/// A fixed-size, byte-addressed store.
pub trait BlockDevice {
    /// Size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`. Reading past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// Applies `plan` (new length, writes, then discards), then makes it
    /// durable. This is the only way bytes reach a device.
    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error>;

    /// The byte ranges that hold data (everything else reads as zeros
    /// and costs no storage), clipped to `range`.
    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error>;

    /// A name for messages (the image path, or `memory`).
    fn name(&self) -> String;

    /// Reads `len` bytes at `offset` into a new vector.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
}

/// Checks that `offset..offset+len` lies inside a device of `size` bytes.
pub(crate) fn check_range(offset: u64, len: u64, size: u64) -> Result<(), Error> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::OutOfRange { offset, len, size }),
    }
}

/// The most bytes [`Coalescer`] gathers into one write.
pub const COALESCE_MAX: usize = 256 * 1024;

/// Merges writes that follow each other on the device (each starting where
/// the previous one ended) into writes of up to [`COALESCE_MAX`] bytes, so
/// a plan that produces one 4 KiB block at a time costs one system call per
/// 256 KiB. Writes as large as the limit pass through as they are. The
/// merged stream is a function of the input stream only, so two walks of
/// one plan coalesce identically.
pub struct Coalescer<'s, 'a> {
    sink: &'s mut Sink<'a>,
    offset: u64,
    buf: Vec<u8>,
}

impl<'s, 'a> Coalescer<'s, 'a> {
    /// A coalescer in front of `sink`.
    pub fn new(sink: &'s mut Sink<'a>) -> Self {
        Coalescer {
            sink,
            offset: 0,
            buf: Vec::new(),
        }
    }

    /// Takes one write.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        if !self.buf.is_empty()
            && self.offset.checked_add(self.buf.len() as u64) == Some(offset)
            && self.buf.len() + bytes.len() <= COALESCE_MAX
        {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush()?;
        if bytes.len() >= COALESCE_MAX {
            return (self.sink)(offset, bytes);
        }
        self.offset = offset;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Passes on what is gathered.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = (self.sink)(self.offset, &self.buf);
        self.buf.clear();
        r
    }
}

/// Walks `plan` through a [`Coalescer`] into `sink`.
pub fn for_each_coalesced(plan: &dyn WritePlan, sink: &mut Sink<'_>) -> Result<(), Error> {
    let mut c = Coalescer::new(sink);
    plan.for_each_write(&mut |off, bytes| c.write(off, bytes))?;
    c.flush()
}

/// Sorts and merges touching ranges in place; fails on the first two that
/// overlap (a plan's writes must not).
pub(crate) fn merge_disjoint(mut v: Vec<Range<u64>>) -> Result<Vec<Range<u64>>, Error> {
    v.retain(|r| !r.is_empty());
    v.sort_unstable_by_key(|r| r.start);
    let mut kept = 0usize;
    for i in 0..v.len() {
        let r = v[i].clone();
        if kept > 0 {
            let last = &mut v[kept - 1];
            if last.end > r.start {
                return Err(Error::OverlappingWrites {
                    first: last.clone(),
                    second: r,
                });
            }
            if last.end == r.start {
                last.end = r.end;
                continue;
            }
        }
        v[kept] = r;
        kept += 1;
    }
    v.truncate(kept);
    v.shrink_to_fit();
    Ok(v)
}

/// `ranges` minus the sorted, disjoint `sorted`: what is left of each.
pub(crate) fn subtract(ranges: &[Range<u64>], sorted: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    for r in ranges {
        let mut pos = r.start;
        let first = sorted.partition_point(|w| w.end <= r.start);
        for w in sorted[first..].iter().take_while(|w| w.start < r.end) {
            if w.start > pos {
                out.push(pos..w.start);
            }
            pos = pos.max(w.end);
        }
        if pos < r.end {
            out.push(pos..r.end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescer_merges_neighbours_only() {
        let mut got: Vec<(u64, usize)> = Vec::new();
        let mut sink = |o: u64, b: &[u8]| {
            got.push((o, b.len()));
            Ok(())
        };
        let mut c = Coalescer::new(&mut sink);
        c.write(0, &[1; 512]).unwrap();
        c.write(512, &[2; 512]).unwrap();
        c.write(4096, &[3; 10]).unwrap();
        c.write(0, &[4; COALESCE_MAX]).unwrap();
        c.write(COALESCE_MAX as u64, &[5; 7]).unwrap();
        c.flush().unwrap();
        assert_eq!(
            got,
            vec![
                (0, 1024),
                (4096, 10),
                (0, COALESCE_MAX),
                (COALESCE_MAX as u64, 7)
            ]
        );
    }

    #[test]
    fn a_batch_walks_overlapping_writes_as_made_in_order() {
        let mut b = WriteBatch::new();
        b.write(0, vec![1u8; 8]);
        b.write(2, vec![2u8; 2]);
        b.write(6, vec![3u8; 4]);
        b.write(20, vec![4u8; 2]);
        b.write(1, vec![5u8; 1]);
        b.write(19, vec![6u8; 4]);
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        b.for_each_write(&mut |o, bytes| {
            got.push((o, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        let mut image = vec![0u8; 24];
        let mut seen: Vec<Range<u64>> = Vec::new();
        for (o, bytes) in &got {
            image[*o as usize..*o as usize + bytes.len()].copy_from_slice(bytes);
            seen.push(*o..*o + bytes.len() as u64);
        }
        merge_disjoint(seen).unwrap();
        let mut want = vec![0u8; 24];
        for op in &b.ops {
            if let WriteOp::Data { offset, bytes } = op {
                want[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
            }
        }
        assert_eq!(image, want);
        // Disjoint writes pass through as they are, in their order.
        let mut d = WriteBatch::new();
        d.write(8, vec![1u8; 2]);
        d.write(0, vec![2u8; 2]);
        let mut order = Vec::new();
        d.for_each_write(&mut |o, _| {
            order.push(o);
            Ok(())
        })
        .unwrap();
        assert_eq!(order, vec![8, 0]);
    }

    #[test]
    fn merge_and_subtract() {
        assert_eq!(
            merge_disjoint(vec![8..10, 0..4, 4..6]).unwrap(),
            vec![0..6, 8..10]
        );
        assert!(matches!(
            merge_disjoint(vec![0..4, 3..6]),
            Err(Error::OverlappingWrites { .. })
        ));
        assert_eq!(
            subtract(&[0..100, 200..300], &[10..20, 90..210, 250..260]),
            vec![0..10, 20..90, 210..250, 260..300]
        );
    }
}
