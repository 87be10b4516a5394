//! Storage: the devices every other layer reads and writes.
//!
//! A [`BlockDevice`] is a byte-addressed store with a fixed size. Reads go
//! straight to it; writes never do. Every change is collected into a
//! [`WriteBatch`] (the "plan" side of plan-then-apply) and handed to
//! [`BlockDevice::commit`], the single write path. For image files the
//! commit is crash safe: the old contents of every range it overwrites are
//! saved in an undo log beside the image and fsynced first; a later open of
//! an image with a leftover log rolls the interrupted change back (see
//! [`image`]).
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
mod mem;
mod slice;

pub use error::Error;
pub use image::ImageFile;
pub use mem::MemDevice;
pub use slice::Slice;

use std::ops::Range;

/// One change of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Write these bytes at this offset.
    Data { offset: u64, bytes: Vec<u8> },
    /// Make this range read as zeros, as a hole where the device can
    /// (the real mkfs tools "discard" a file by punching holes).
    Discard { range: Range<u64> },
}

/// An ordered set of changes to a device, applied by
/// [`BlockDevice::commit`] in order. Build it completely before anything is
/// written: ordering inside the batch is how writers keep new structures
/// complete before anything points at them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// Grow (or shrink) the device to this size first, when the device can.
    pub new_len: Option<u64>,
    /// The changes, in the order they are made.
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

    /// The end offset of the furthest op, for bounds checks.
    fn max_end(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                WriteOp::Data { offset, bytes } => offset.saturating_add(bytes.len() as u64),
                WriteOp::Discard { range } => range.end,
            })
            .max()
            .unwrap_or(0)
    }

    /// Checks every op lies inside a device of `size` bytes (after `new_len`).
    pub fn check_bounds(&self, size: u64) -> Result<(), Error> {
        let size = self.new_len.unwrap_or(size);
        let end = self.max_end();
        if end > size {
            return Err(Error::OutOfRange {
                offset: end,
                len: 0,
                size,
            });
        }
        Ok(())
    }
}

/// A fixed-size, byte-addressed store.
pub trait BlockDevice {
    /// Size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`. Reading past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// Applies every change of `batch`, in order, then makes it durable.
    /// This is the only way bytes reach a device.
    fn commit(&mut self, batch: &WriteBatch) -> Result<(), Error>;

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
