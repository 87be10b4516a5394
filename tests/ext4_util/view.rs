//! Reading files through the `ext4-view` crate over any [`BlockDevice`]
//! (an image, or a partition `Slice` of one: the
//! crate itself has no offset option, the slice provides it).

use ebsim::blockdev::BlockDevice;
use ext4_view::{Ext4, Ext4Error, Ext4Read};

/// [`Ext4Read`] over a device.
#[derive(Debug)]
pub struct DeviceReader<D>(pub D);

impl<D: BlockDevice> Ext4Read for DeviceReader<D> {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0
            .read_at(start_byte, dst)
            .map_err(|e| Box::new(e) as _)
    }
}

/// Loads an ext4-view filesystem from a device.
pub fn open<D: BlockDevice + 'static>(dev: D) -> Result<Ext4, Ext4Error> {
    Ext4::load(Box::new(DeviceReader(dev)))
}
