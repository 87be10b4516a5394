//! What is already on a device, as blkid's low-level probe finds it before
//! a mkfs overwrites it: a filesystem (XFS by its magic; ext2/3/4 by the
//! superblock magic and its feature flags; swap by its magic at the end of
//! the first page) or a partition table (GPT
//! header, or an MBR with a partition). mkfs.xfs refuses to overwrite one
//! without `-f`.

use crate::blockdev::BlockDevice;
use std::fmt;

/// A signature found on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// A filesystem (`xfs`, `ext4`, `ext3`, `ext2`).
    Filesystem(&'static str),
    /// A partition table (`gpt`, `dos`).
    PartitionTable(&'static str),
}

impl fmt::Display for Signature {
    /// mkfs.xfs's words: "an existing filesystem (xfs)", "a partition
    /// table (gpt)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::Filesystem(k) => write!(f, "an existing filesystem ({k})"),
            Signature::PartitionTable(k) => write!(f, "a partition table ({k})"),
        }
    }
}

/// What blkid finds on `dev`, if anything, worded as mkfs.xfs reports it.
pub fn probe<D: BlockDevice>(dev: &D) -> Option<Signature> {
    let size = dev.size();
    if size == 0 {
        return None;
    }
    let head = dev
        .read_vec(0, usize::try_from(size.min(2048)).ok()?)
        .ok()?;
    let at = |off: usize, len: usize| head.get(off..off + len);
    let le32 = |off: usize| {
        at(off, 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    if at(0, 4) == Some(b"XFSB") {
        return Some(Signature::Filesystem("xfs"));
    }
    if at(0x438, 2) == Some(&[0x53, 0xef]) {
        if let (Some(compat), Some(incompat)) = (le32(0x45c), le32(0x460)) {
            // extents, 64bit, flex_bg (and friends) make it ext4; a journal
            // alone makes ext3.
            let kind = if incompat & 0x02c0 != 0 {
                "ext4"
            } else if compat & 0x4 != 0 {
                "ext3"
            } else {
                "ext2"
            };
            return Some(Signature::Filesystem(kind));
        }
    }
    if super::swap::probe(dev) {
        return Some(Signature::Filesystem("swap"));
    }
    if at(512, 8) == Some(b"EFI PART") {
        return Some(Signature::PartitionTable("gpt"));
    }
    if at(510, 2) == Some(&[0x55, 0xaa]) {
        let has_part = (0..4).any(|i| at(446 + 16 * i + 4, 1).is_some_and(|t| t[0] != 0));
        if has_part {
            return Some(Signature::PartitionTable("dos"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::MemDevice;

    #[test]
    fn signatures_and_short_devices() {
        let mut b = vec![0u8; 2048];
        assert_eq!(probe(&MemDevice::from_bytes(b.clone())), None);
        b[0x438] = 0x53;
        b[0x439] = 0xef;
        b[0x460] = 0x40;
        assert_eq!(
            probe(&MemDevice::from_bytes(b.clone()))
                .map(|s| s.to_string())
                .as_deref(),
            Some("an existing filesystem (ext4)")
        );
        // A device ending inside the ext superblock's feature words: no
        // panic, no signature.
        assert_eq!(probe(&MemDevice::from_bytes(b[..0x462].to_vec())), None);
        let mut g = vec![0u8; 1024];
        g[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(
            probe(&MemDevice::from_bytes(g)),
            Some(Signature::PartitionTable("gpt"))
        );
    }
}
