//! An in-memory device for unit tests.

use super::{BlockDevice, Error, WritePlan, check_range};
use std::ops::Range;

/// A device held in a `Vec<u8>`. Its "data ranges" are the 4 KiB blocks
/// that are not all zero, so sparse-discipline checks work on it too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemDevice {
    bytes: Vec<u8>,
    /// Number of commits made (tests check writers batch their work).
    pub commits: usize,
}

const MEM_BLOCK: u64 = 4096;

impl MemDevice {
    /// A zeroed device of `len` bytes.
    pub fn new(len: usize) -> Self {
        MemDevice {
            bytes: vec![0; len],
            commits: 0,
        }
    }

    /// A device holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemDevice { bytes, commits: 0 }
    }

    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        check_range(offset, buf.len() as u64, self.size())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }

    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), Error> {
        let size = plan.new_len().unwrap_or(self.size());
        let len = usize::try_from(size).map_err(|_| Error::FixedSize("memory".into()))?;
        // Check every write first: a refused plan changes nothing.
        plan.for_each_write(&mut |off, bytes| check_range(off, bytes.len() as u64, size))?;
        self.bytes.resize(len, 0);
        // Discards spare the written bytes, so zeroing them first and
        // writing after is the same.
        for d in plan.discards() {
            let end = d.end.min(size) as usize;
            let start = (d.start as usize).min(end);
            self.bytes[start..end].fill(0);
        }
        let bytes = &mut self.bytes;
        plan.for_each_write(&mut |off, b| {
            let start = off as usize;
            bytes[start..start + b.len()].copy_from_slice(b);
            Ok(())
        })?;
        self.commits += 1;
        Ok(())
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, Error> {
        let end = range.end.min(self.size());
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut block = range.start / MEM_BLOCK * MEM_BLOCK;
        while block < end {
            let b_end = (block + MEM_BLOCK).min(self.size());
            if self.bytes[block as usize..b_end as usize]
                .iter()
                .any(|&x| x != 0)
            {
                let r = block.max(range.start)..b_end.min(end);
                match out.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => out.push(r),
                }
            }
            block += MEM_BLOCK;
        }
        Ok(out)
    }

    fn name(&self) -> String {
        "memory".to_string()
    }
}
