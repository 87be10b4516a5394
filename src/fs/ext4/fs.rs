//! An existing filesystem opened on a device: superblock and descriptor
//! table read and validated, inodes and blocks read on demand.

use super::error::Error;
use super::group_desc::{self, GroupDesc};
use super::inode::Inode;
use super::superblock::{
    EXT4_MAGIC, STATE_ERROR, STATE_VALID, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock,
};
use crate::blockdev::BlockDevice;
use crate::bytes::read_u16le;

/// Whether `dev` holds an ext2/3/4 superblock magic (nothing else is
/// checked; use [`Ext4::open`] to validate).
pub fn probe<D: BlockDevice + ?Sized>(dev: &D) -> Result<bool, Error> {
    if dev.size() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
        return Ok(false);
    }
    let mut m = [0u8; 2];
    dev.read_at(SUPERBLOCK_OFFSET + 0x38, &mut m)?;
    Ok(read_u16le(&m, 0) == EXT4_MAGIC)
}

/// Reads and validates the primary superblock.
pub fn read_superblock<D: BlockDevice + ?Sized>(dev: &D) -> Result<Superblock, Error> {
    if dev.size() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
        return Err(Error::DeviceTooSmall { size: dev.size() });
    }
    let b = dev.read_vec(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)?;
    Superblock::from_bytes(&b)
}

/// What later layers (df, lsblk, the shell) want to know about an ext4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Info {
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// The volume label.
    pub label: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// `s_blocks_count`.
    pub blocks: u64,
    /// `s_free_blocks_count` (the superblock's summary).
    pub free_blocks: u64,
    /// `s_r_blocks_count`.
    pub reserved_blocks: u64,
    /// `s_inodes_count`.
    pub inodes: u64,
    /// `s_free_inodes_count`.
    pub free_inodes: u64,
    /// Group count.
    pub groups: u64,
    /// Cleanly unmounted and no errors recorded.
    pub clean: bool,
    /// What blkid calls it (see [`blkid_type`]).
    pub blkid_type: BlkidType,
}

/// How libblkid names a filesystem of the ext family, from its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkidType {
    /// TYPE: `ext4dev` when `s_flags` marks a test filesystem; else `ext3`
    /// with a journal and `ext2` without one, when every feature is one
    /// ext3 (or ext2) knows; else `ext4`.
    pub name: &'static str,
    /// SEC_TYPE `ext2`: not ext2 itself, and no incompatible feature
    /// beyond `filetype` and `meta_bg`.
    pub sec_type: Option<&'static str>,
    /// VERSION: `s_rev_level.s_minor_rev_level`.
    pub version: String,
}

/// libblkid's ext probes (jbd aside: ebsim makes no journal devices).
pub fn blkid_type(sb: &Superblock) -> BlkidType {
    use super::features::{compat, incompat, ro_compat};
    // What libblkid's ext2 and ext3 probes accept.
    const RO_COMPAT_EXT2_EXT3: u32 =
        ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE | ro_compat::BTREE_DIR;
    const INCOMPAT_EXT2: u32 = incompat::FILETYPE | incompat::META_BG;
    const INCOMPAT_EXT3: u32 = INCOMPAT_EXT2 | incompat::RECOVER;
    let (incompat, ro) = (sb.s_feature_incompat, sb.s_feature_ro_compat);
    let journal = sb.s_feature_compat & compat::HAS_JOURNAL != 0;
    let name = if sb.s_flags & super::superblock::FLAGS_TEST_FILESYS != 0 {
        "ext4dev"
    } else if ro & !RO_COMPAT_EXT2_EXT3 != 0 || incompat & !INCOMPAT_EXT3 != 0 {
        "ext4"
    } else if journal {
        "ext3"
    } else if incompat & !INCOMPAT_EXT2 != 0 {
        // Not ext2 (recover without a journal), not ext3: libblkid's ext4
        // probe does not take it either, so it falls to ext4dev's, which
        // needs the test flag. Call it ext4, as the kernel would mount it.
        "ext4"
    } else {
        "ext2"
    };
    let sec_type = (name != "ext2" && incompat & !INCOMPAT_EXT2 == 0).then_some("ext2");
    BlkidType {
        name,
        sec_type,
        version: format!("{}.{}", sb.s_rev_level, sb.s_minor_rev_level),
    }
}

/// An opened ext4 filesystem.
#[derive(Debug)]
pub struct Ext4<D> {
    dev: D,
    sb: Superblock,
    descs: Vec<GroupDesc>,
}

impl<D: BlockDevice> Ext4<D> {
    /// Opens and validates: superblock (magic, checksum, geometry) and
    /// every group descriptor (checksum, locations).
    pub fn open(dev: D) -> Result<Self, Error> {
        let sb = read_superblock(&dev)?;
        let bs = u64::from(sb.block_size());
        let start = (u64::from(sb.s_first_data_block) + 1) * bs;
        let len = sb.desc_blocks().checked_mul(bs);
        let end = len.and_then(|l| l.checked_add(start));
        // Refuse before allocating: a corrupt count must not make us read
        // (or allocate) more than the device holds.
        let len = match (len, end) {
            (Some(l), Some(e)) if e <= dev.size() => l,
            _ => {
                return Err(Error::BadSuperblock {
                    field: "s_blocks_count",
                    value: sb.s_blocks_count,
                    why: "group descriptor table extends past the end of the device",
                });
            }
        };
        let classic = sb.classic_desc_blocks() * bs;
        let mut table = dev.read_vec(
            start,
            usize::try_from(classic).map_err(|_| Error::DeviceTooSmall { size: dev.size() })?,
        )?;
        // meta_bg: each later descriptor block sits in its meta group's
        // first group (its location grows with the block number, so the
        // last one bounds them all).
        let meta = sb.classic_desc_blocks()..sb.desc_blocks();
        if let Some(last) = meta.clone().last() {
            let end = sb.desc_block_location(last).checked_add(1);
            if end
                .and_then(|e| e.checked_mul(bs))
                .is_none_or(|e| e > dev.size())
            {
                return Err(Error::BadSuperblock {
                    field: "s_first_meta_bg",
                    value: u64::from(sb.s_first_meta_bg),
                    why: "a meta group's descriptor block lies past the end of the device",
                });
            }
            table.reserve(usize::try_from(len - classic).unwrap_or(0));
            let mut blk = vec![0u8; bs as usize];
            for i in meta {
                dev.read_at(sb.desc_block_location(i) * bs, &mut blk)?;
                table.extend_from_slice(&blk);
            }
        }
        let descs = group_desc::parse_table(&sb, &table)?;
        Ok(Ext4 { dev, sb, descs })
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The group descriptors.
    pub fn descriptors(&self) -> &[GroupDesc] {
        &self.descs
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, mutably (for committing a planned change).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Gives the device back.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// Reads filesystem block `b`.
    pub fn read_block(&self, b: u64) -> Result<Vec<u8>, Error> {
        let bs = u64::from(self.sb.block_size());
        let off = b.checked_mul(bs).ok_or(Error::BadSuperblock {
            field: "block",
            value: b,
            why: "block number overflows",
        })?;
        Ok(self.dev.read_vec(off, bs as usize)?)
    }

    /// The raw bytes of inode `ino` (1-based).
    pub fn read_inode_bytes(&self, ino: u32) -> Result<Vec<u8>, Error> {
        let ipg = self.sb.s_inodes_per_group;
        if ino == 0 || ino > self.sb.s_inodes_count {
            return Err(Error::BadInode {
                ino,
                why: "no such inode".into(),
            });
        }
        let g = ((ino - 1) / ipg) as usize;
        let idx = u64::from((ino - 1) % ipg);
        let d = self.descs.get(g).ok_or(Error::BadInode {
            ino,
            why: "group out of range".into(),
        })?;
        let isz = u64::from(self.sb.inode_size());
        let bs = u64::from(self.sb.block_size());
        // Checked: the table location comes from disk.
        let off = d
            .bg_inode_table
            .checked_mul(bs)
            .and_then(|o| o.checked_add(idx * isz))
            .ok_or(Error::BadInode {
                ino,
                why: "inode table offset overflows".into(),
            })?;
        Ok(self.dev.read_vec(off, isz as usize)?)
    }

    /// Inode `ino`, checksum verified with metadata_csum.
    pub fn read_inode(&self, ino: u32) -> Result<Inode, Error> {
        let b = self.read_inode_bytes(ino)?;
        if self.sb.has_metadata_csum()
            && !crate::bytes::is_zero(&b)
            && !Inode::verify(&b, ino, self.sb.csum_seed())
        {
            return Err(Error::InodeChecksum { ino });
        }
        Ok(Inode::from_bytes(&b))
    }

    /// Summary information.
    pub fn info(&self) -> Ext4Info {
        let sb = &self.sb;
        Ext4Info {
            uuid: sb.s_uuid,
            label: sb.label(),
            block_size: sb.block_size(),
            blocks: sb.s_blocks_count,
            free_blocks: sb.s_free_blocks_count,
            reserved_blocks: sb.s_r_blocks_count,
            inodes: u64::from(sb.s_inodes_count),
            free_inodes: u64::from(sb.s_free_inodes_count),
            groups: sb.group_count(),
            clean: sb.s_state & STATE_VALID != 0 && sb.s_state & STATE_ERROR == 0,
            blkid_type: blkid_type(sb),
        }
    }
}

/// Opens a device and returns its summary.
pub fn info<D: BlockDevice>(dev: D) -> Result<Ext4Info, Error> {
    Ok(Ext4::open(dev)?.info())
}
