//! A byte range of a device, seen as a device of its own (a partition).

use super::{BlockDevice, Error, Sink, WritePlan, check_range};
use std::ops::Range;

/// `len` bytes of `inner` starting at `offset`, addressed from 0.
/// Filesystem code sees a partition only through this, so it never knows
/// about partition tables.
#[derive(Debug)]
pub struct Slice<D> {
    inner: D,
    offset: u64,
    len: u64,
}

impl<D: BlockDevice> Slice<D> {
    /// A window of `inner`; fails if it does not fit inside it.
    pub fn new(inner: D, offset: u64, len: u64) -> Result<Self, Error> {
        check_range(offset, len, inner.size())?;
        Ok(Slice { inner, offset, len })
    }

    /// Where the window starts in the underlying device.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The underlying device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Gives the underlying device back.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: BlockDevice> BlockDevice for Slice<D> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        check_range(offset, buf.len() as u64, self.len)?;
        self.inner.read_at(self.offset + offset, buf)
    }

    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        if plan.new_len().is_some() {
            return Err(Error::FixedSize(self.name()));
        }
        if plan.is_empty() {
            return Ok(());
        }
        self.inner.commit(&Shifted {
            plan,
            offset: self.offset,
            len: self.len,
        })
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        let end = range.end.min(self.len);
        if range.start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .inner
            .data_ranges(self.offset + range.start..self.offset + end)?
            .into_iter()
            .map(|r| r.start - self.offset..r.end - self.offset)
            .collect())
    }

    fn name(&self) -> String {
        format!(
            "{}[{}..{}]",
            self.inner.name(),
            self.offset,
            self.offset + self.len
        )
    }
}

/// A plan for a slice, seen by the device under it: every offset shifted by
/// the slice's start, every write checked against the slice's bounds.
struct Shifted<'p> {
    plan: &'p dyn WritePlan,
    offset: u64,
    len: u64,
}

impl WritePlan for Shifted<'_> {
    fn for_each_write(&self, sink: &mut Sink<'_>) -> Result<(), Error> {
        self.plan.for_each_write(&mut |off, bytes| {
            check_range(off, bytes.len() as u64, self.len)?;
            sink(self.offset + off, bytes)
        })
    }

    fn discards(&self) -> Vec<Range<u64>> {
        self.plan
            .discards()
            .into_iter()
            .filter_map(|d| {
                let end = d.end.min(self.len);
                (d.start < end).then(|| self.offset + d.start..self.offset + end)
            })
            .collect()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read_at(offset, buf)
    }
    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        (**self).commit(plan)
    }
    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        (**self).data_ranges(range)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// A shared reference reads through and refuses commits, so read-only
/// views (a partition `Slice` over `&ImageFile`) need no `&mut`.
impl<D: BlockDevice + ?Sized> BlockDevice for &D {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read_at(offset, buf)
    }
    fn commit(&mut self, _plan: &dyn WritePlan) -> Result<(), Error> {
        Err(Error::ReadOnlyView(self.name()))
    }
    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        (**self).data_ranges(range)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for Box<D> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read_at(offset, buf)
    }
    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        (**self).commit(plan)
    }
    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        (**self).data_ranges(range)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::{MemDevice, WriteBatch};

    #[test]
    fn slice_translates_and_bounds() {
        let mut mem = MemDevice::new(8192);
        {
            let mut s = Slice::new(&mut mem, 4096, 2048).unwrap();
            let mut b = WriteBatch::new();
            b.write(0, vec![5u8; 16]);
            s.commit(&b).unwrap();
            let mut bad = WriteBatch::new();
            bad.write(2040, vec![1u8; 16]);
            assert!(s.commit(&bad).is_err());
            assert!(s.read_vec(2047, 2).is_err());
            assert_eq!(s.data_ranges(0..2048).unwrap()[0].start, 0);
        }
        assert_eq!(mem.read_vec(4096, 1).unwrap(), [5]);
        assert!(Slice::new(&mut mem, 8000, 400).is_err());
    }
}
