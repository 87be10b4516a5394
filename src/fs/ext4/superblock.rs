//! The ext4 superblock (1024 bytes at byte 1024; backups at the first block
//! of groups 0, 1 and powers of 3, 5, 7).
//!
//! [`Superblock::from_bytes`] validates what every reader relies on (magic,
//! checksum, sizes that would make later arithmetic meaningless) and keeps
//! the raw bytes: fields ebsim does not name are written back unchanged by
//! [`Superblock::to_bytes`], so reading and writing an unknown superblock
//! changes only what ebsim meant to change.

use super::checksum::superblock_csum;
use super::error::Error;
use super::features::{compat, incompat, ro_compat};
use crate::bytes::{
    read_u16le, read_u32le, read_u64le, u64_from_hilo, write_u16le, write_u32le, write_u64le,
};

/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Its byte offset from the start of the filesystem.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;
/// `s_state` bit: cleanly unmounted.
pub const STATE_VALID: u16 = 1;
/// `s_state` bit: errors detected.
pub const STATE_ERROR: u16 = 2;
/// `s_flags` bit: directory hashes use signed chars (x86).
pub const FLAGS_SIGNED_HASH: u32 = 1;
/// `s_flags` bit: a test filesystem (`-E test_fs`; the kernel's ext4 mounts
/// it, ext4dev-era kernels asked for it).
pub const FLAGS_TEST_FILESYS: u32 = 4;

/// A parsed superblock. Field names are the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// 0x00
    pub s_inodes_count: u32,
    /// 0x04 lo, 0x150 hi
    pub s_blocks_count: u64,
    /// 0x08 lo, 0x154 hi
    pub s_r_blocks_count: u64,
    /// 0x0C lo, 0x158 hi
    pub s_free_blocks_count: u64,
    /// 0x10
    pub s_free_inodes_count: u32,
    /// 0x14
    pub s_first_data_block: u32,
    /// 0x18: block size = 1024 << this
    pub s_log_block_size: u32,
    /// 0x1C
    pub s_log_cluster_size: u32,
    /// 0x20
    pub s_blocks_per_group: u32,
    /// 0x24
    pub s_clusters_per_group: u32,
    /// 0x28
    pub s_inodes_per_group: u32,
    /// 0x2C (+ 0x275 hi byte)
    pub s_mtime: u64,
    /// 0x30 (+ 0x274 hi byte)
    pub s_wtime: u64,
    /// 0x34
    pub s_mnt_count: u16,
    /// 0x36 (signed on disk; -1 = no limit)
    pub s_max_mnt_count: u16,
    /// 0x38
    pub s_magic: u16,
    /// 0x3A
    pub s_state: u16,
    /// 0x3C
    pub s_errors: u16,
    /// 0x3E
    pub s_minor_rev_level: u16,
    /// 0x40 (+ 0x277 hi byte)
    pub s_lastcheck: u64,
    /// 0x44
    pub s_checkinterval: u32,
    /// 0x48
    pub s_creator_os: u32,
    /// 0x4C
    pub s_rev_level: u32,
    /// 0x54
    pub s_first_ino: u32,
    /// 0x58
    pub s_inode_size: u16,
    /// 0x5A
    pub s_block_group_nr: u16,
    /// 0x5C
    pub s_feature_compat: u32,
    /// 0x60
    pub s_feature_incompat: u32,
    /// 0x64
    pub s_feature_ro_compat: u32,
    /// 0x68
    pub s_uuid: [u8; 16],
    /// 0x78
    pub s_volume_name: [u8; 16],
    /// 0x88: directory where the filesystem was last mounted (NUL padded).
    pub s_last_mounted: [u8; 64],
    /// 0xCE
    pub s_reserved_gdt_blocks: u16,
    /// 0xE0
    pub s_journal_inum: u32,
    /// 0xE8
    pub s_last_orphan: u32,
    /// 0xEC
    pub s_hash_seed: [u8; 16],
    /// 0xFC
    pub s_def_hash_version: u8,
    /// 0xFD
    pub s_jnl_backup_type: u8,
    /// 0xFE
    pub s_desc_size: u16,
    /// 0x100
    pub s_default_mount_opts: u32,
    /// 0x104
    pub s_first_meta_bg: u32,
    /// 0x108 (+ 0x276 hi byte)
    pub s_mkfs_time: u64,
    /// 0x10C: journal inode's i_block[15], i_size_high, i_size
    pub s_jnl_blocks: [u32; 17],
    /// 0x15C
    pub s_min_extra_isize: u16,
    /// 0x15E
    pub s_want_extra_isize: u16,
    /// 0x160
    pub s_flags: u32,
    /// 0x164: RAID stride in blocks (mke2fs -E stride; resize2fs may set
    /// it from the groups' layout).
    pub s_raid_stride: u16,
    /// 0x170: RAID stripe width in blocks (mke2fs -E stripe_width).
    pub s_raid_stripe_width: u32,
    /// 0x174
    pub s_log_groups_per_flex: u8,
    /// 0x175
    pub s_checksum_type: u8,
    /// 0x178
    pub s_kbytes_written: u64,
    /// 0x248
    pub s_overhead_clusters: u32,
    /// 0x270
    pub s_checksum_seed: u32,
    /// 0x254: `s_encrypt_algos`, the fscrypt modes (with `encrypt`).
    pub s_encrypt_algos: [u8; 4],
    /// 0x27C: the filename encoding of casefolded directories (1: UTF-8
    /// 12.1), set with `casefold`.
    pub s_encoding: u16,
    /// 0x27E: `EXT4_ENC_STRICT_MODE_FL` (1): refuse invalid names.
    pub s_encoding_flags: u16,
    /// 0x3FC
    pub s_checksum: u32,
    /// The bytes it was read from (or zeros); fields not named above are
    /// kept from here.
    raw: Box<[u8; SUPERBLOCK_SIZE]>,
}

/// Reads a 32-bit timestamp with its high byte (ext4's post-2038 extension).
fn read_time(b: &[u8], lo: usize, hi: usize) -> u64 {
    u64::from(read_u32le(b, lo)) | (u64::from(b[hi]) << 32)
}

fn write_time(b: &mut [u8], lo: usize, hi: usize, t: u64) {
    // Low 32 bits, then the next 8 in the hi byte (truncation intended).
    write_u32le(b, lo, (t & 0xFFFF_FFFF) as u32);
    b[hi] = ((t >> 32) & 0xFF) as u8;
}

impl Superblock {
    /// An all-zero superblock with the magic set, for mkfs to fill in.
    pub fn zeroed() -> Self {
        let mut raw = Box::new([0u8; SUPERBLOCK_SIZE]);
        write_u16le(&mut raw[..], 0x38, EXT4_MAGIC);
        // OK: parsing an all-zero block with the magic cannot fail the
        // structural checks because `parse` does not validate.
        Self::parse(&raw[..])
    }

    /// Parses without validating anything but the length (`from_bytes`
    /// validates).
    fn parse(b: &[u8]) -> Self {
        let mut raw = Box::new([0u8; SUPERBLOCK_SIZE]);
        raw.copy_from_slice(&b[..SUPERBLOCK_SIZE]);
        let mut s_uuid = [0u8; 16];
        s_uuid.copy_from_slice(&b[0x68..0x78]);
        let mut s_volume_name = [0u8; 16];
        s_volume_name.copy_from_slice(&b[0x78..0x88]);
        let mut s_last_mounted = [0u8; 64];
        s_last_mounted.copy_from_slice(&b[0x88..0xC8]);
        let mut s_hash_seed = [0u8; 16];
        s_hash_seed.copy_from_slice(&b[0xEC..0xFC]);
        let mut s_jnl_blocks = [0u32; 17];
        for (i, v) in s_jnl_blocks.iter_mut().enumerate() {
            *v = read_u32le(b, 0x10C + 4 * i);
        }
        Superblock {
            s_inodes_count: read_u32le(b, 0x00),
            s_blocks_count: u64_from_hilo(read_u32le(b, 0x150), read_u32le(b, 0x04)),
            s_r_blocks_count: u64_from_hilo(read_u32le(b, 0x154), read_u32le(b, 0x08)),
            s_free_blocks_count: u64_from_hilo(read_u32le(b, 0x158), read_u32le(b, 0x0C)),
            s_free_inodes_count: read_u32le(b, 0x10),
            s_first_data_block: read_u32le(b, 0x14),
            s_log_block_size: read_u32le(b, 0x18),
            s_log_cluster_size: read_u32le(b, 0x1C),
            s_blocks_per_group: read_u32le(b, 0x20),
            s_clusters_per_group: read_u32le(b, 0x24),
            s_inodes_per_group: read_u32le(b, 0x28),
            s_mtime: read_time(b, 0x2C, 0x275),
            s_wtime: read_time(b, 0x30, 0x274),
            s_mnt_count: read_u16le(b, 0x34),
            s_max_mnt_count: read_u16le(b, 0x36),
            s_magic: read_u16le(b, 0x38),
            s_state: read_u16le(b, 0x3A),
            s_errors: read_u16le(b, 0x3C),
            s_minor_rev_level: read_u16le(b, 0x3E),
            s_lastcheck: read_time(b, 0x40, 0x277),
            s_checkinterval: read_u32le(b, 0x44),
            s_creator_os: read_u32le(b, 0x48),
            s_rev_level: read_u32le(b, 0x4C),
            s_first_ino: read_u32le(b, 0x54),
            s_inode_size: read_u16le(b, 0x58),
            s_block_group_nr: read_u16le(b, 0x5A),
            s_feature_compat: read_u32le(b, 0x5C),
            s_feature_incompat: read_u32le(b, 0x60),
            s_feature_ro_compat: read_u32le(b, 0x64),
            s_uuid,
            s_volume_name,
            s_last_mounted,
            s_reserved_gdt_blocks: read_u16le(b, 0xCE),
            s_journal_inum: read_u32le(b, 0xE0),
            s_last_orphan: read_u32le(b, 0xE8),
            s_hash_seed,
            s_def_hash_version: b[0xFC],
            s_jnl_backup_type: b[0xFD],
            s_desc_size: read_u16le(b, 0xFE),
            s_default_mount_opts: read_u32le(b, 0x100),
            s_first_meta_bg: read_u32le(b, 0x104),
            s_mkfs_time: read_time(b, 0x108, 0x276),
            s_jnl_blocks,
            s_min_extra_isize: read_u16le(b, 0x15C),
            s_want_extra_isize: read_u16le(b, 0x15E),
            s_flags: read_u32le(b, 0x160),
            s_raid_stride: read_u16le(b, 0x164),
            s_raid_stripe_width: read_u32le(b, 0x170),
            s_log_groups_per_flex: b[0x174],
            s_checksum_type: b[0x175],
            s_kbytes_written: read_u64le(b, 0x178),
            s_overhead_clusters: read_u32le(b, 0x248),
            s_checksum_seed: read_u32le(b, 0x270),
            s_encrypt_algos: [b[0x254], b[0x255], b[0x256], b[0x257]],
            s_encoding: read_u16le(b, 0x27C),
            s_encoding_flags: read_u16le(b, 0x27E),
            s_checksum: read_u32le(b, 0x3FC),
            raw,
        }
    }

    /// Parses and validates a superblock: magic, checksum (with
    /// `metadata_csum`), and the geometry fields every later computation
    /// divides or shifts by.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        if b.len() < SUPERBLOCK_SIZE {
            return Err(Error::DeviceTooSmall {
                size: b.len() as u64,
            });
        }
        let sb = Self::parse(b);
        if sb.s_magic != EXT4_MAGIC {
            return Err(Error::BadMagic { found: sb.s_magic });
        }
        if sb.has_ro_compat(ro_compat::METADATA_CSUM) {
            let computed = superblock_csum(b);
            if computed != sb.s_checksum {
                return Err(Error::SuperblockChecksum {
                    stored: sb.s_checksum,
                    computed,
                });
            }
        }
        sb.validate()?;
        Ok(sb)
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |field, value: u64, why| Err(Error::BadSuperblock { field, value, why });
        // Block sizes 1 KiB .. 64 KiB.
        if self.s_log_block_size > 6 {
            return bad(
                "s_log_block_size",
                self.s_log_block_size.into(),
                "block size above 64 KiB",
            );
        }
        let bs = self.block_size();
        if self.s_log_cluster_size < self.s_log_block_size
            || self.s_log_cluster_size > self.s_log_block_size + 16
        {
            return bad(
                "s_log_cluster_size",
                self.s_log_cluster_size.into(),
                "cluster smaller than a block or too large",
            );
        }
        // With bigalloc a group holds 8 × block size clusters.
        let ratio = 1u64 << (self.s_log_cluster_size - self.s_log_block_size);
        if self.s_clusters_per_group == 0
            || u64::from(self.s_clusters_per_group) > u64::from(bs) * 8
        {
            return bad(
                "s_clusters_per_group",
                self.s_clusters_per_group.into(),
                "must be 1 ..= 8 × block size",
            );
        }
        if u64::from(self.s_blocks_per_group) != u64::from(self.s_clusters_per_group) * ratio {
            return bad(
                "s_blocks_per_group",
                self.s_blocks_per_group.into(),
                "not clusters per group × cluster ratio",
            );
        }
        if self.s_inodes_per_group == 0 || u64::from(self.s_inodes_per_group) > u64::from(bs) * 8 {
            return bad(
                "s_inodes_per_group",
                self.s_inodes_per_group.into(),
                "must be 1 ..= 8 × block size",
            );
        }
        if self.s_blocks_count <= u64::from(self.s_first_data_block) {
            return bad(
                "s_blocks_count",
                self.s_blocks_count,
                "not above s_first_data_block",
            );
        }
        let expect_fdb = u32::from(bs == 1024);
        if self.s_first_data_block != expect_fdb {
            return bad(
                "s_first_data_block",
                self.s_first_data_block.into(),
                "must be 1 for 1 KiB blocks, else 0",
            );
        }
        if self.s_rev_level >= 1 {
            let isz = self.s_inode_size;
            if isz < 128 || u32::from(isz) > bs || !isz.is_power_of_two() {
                return bad(
                    "s_inode_size",
                    isz.into(),
                    "must be a power of two from 128 to the block size",
                );
            }
        }
        if self.has_incompat(incompat::BIT64) {
            let d = self.s_desc_size;
            if d < 64 || u32::from(d) > bs || !d.is_power_of_two() {
                return bad(
                    "s_desc_size",
                    d.into(),
                    "must be a power of two from 64 to the block size with 64bit",
                );
            }
        }
        let groups = self.group_count();
        if groups.checked_mul(u64::from(self.s_inodes_per_group))
            != Some(u64::from(self.s_inodes_count))
        {
            return bad(
                "s_inodes_count",
                self.s_inodes_count.into(),
                "not s_inodes_per_group × group count",
            );
        }
        Ok(())
    }

    /// Serializes: the raw bytes it was read from with every named field
    /// written over them, and the checksum recomputed when
    /// `metadata_csum` is on.
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = *self.raw;
        let lo = |v: u64| (v & 0xFFFF_FFFF) as u32;
        let hi = |v: u64| (v >> 32) as u32;
        write_u32le(&mut b, 0x00, self.s_inodes_count);
        write_u32le(&mut b, 0x04, lo(self.s_blocks_count));
        write_u32le(&mut b, 0x150, hi(self.s_blocks_count));
        write_u32le(&mut b, 0x08, lo(self.s_r_blocks_count));
        write_u32le(&mut b, 0x154, hi(self.s_r_blocks_count));
        write_u32le(&mut b, 0x0C, lo(self.s_free_blocks_count));
        write_u32le(&mut b, 0x158, hi(self.s_free_blocks_count));
        write_u32le(&mut b, 0x10, self.s_free_inodes_count);
        write_u32le(&mut b, 0x14, self.s_first_data_block);
        write_u32le(&mut b, 0x18, self.s_log_block_size);
        write_u32le(&mut b, 0x1C, self.s_log_cluster_size);
        write_u32le(&mut b, 0x20, self.s_blocks_per_group);
        write_u32le(&mut b, 0x24, self.s_clusters_per_group);
        write_u32le(&mut b, 0x28, self.s_inodes_per_group);
        write_time(&mut b, 0x2C, 0x275, self.s_mtime);
        write_time(&mut b, 0x30, 0x274, self.s_wtime);
        write_u16le(&mut b, 0x34, self.s_mnt_count);
        write_u16le(&mut b, 0x36, self.s_max_mnt_count);
        write_u16le(&mut b, 0x38, self.s_magic);
        write_u16le(&mut b, 0x3A, self.s_state);
        write_u16le(&mut b, 0x3C, self.s_errors);
        write_u16le(&mut b, 0x3E, self.s_minor_rev_level);
        write_time(&mut b, 0x40, 0x277, self.s_lastcheck);
        write_u32le(&mut b, 0x44, self.s_checkinterval);
        write_u32le(&mut b, 0x48, self.s_creator_os);
        write_u32le(&mut b, 0x4C, self.s_rev_level);
        write_u32le(&mut b, 0x54, self.s_first_ino);
        write_u16le(&mut b, 0x58, self.s_inode_size);
        write_u16le(&mut b, 0x5A, self.s_block_group_nr);
        write_u32le(&mut b, 0x5C, self.s_feature_compat);
        write_u32le(&mut b, 0x60, self.s_feature_incompat);
        write_u32le(&mut b, 0x64, self.s_feature_ro_compat);
        b[0x68..0x78].copy_from_slice(&self.s_uuid);
        b[0x78..0x88].copy_from_slice(&self.s_volume_name);
        b[0x88..0xC8].copy_from_slice(&self.s_last_mounted);
        write_u16le(&mut b, 0xCE, self.s_reserved_gdt_blocks);
        write_u32le(&mut b, 0xE0, self.s_journal_inum);
        write_u32le(&mut b, 0xE8, self.s_last_orphan);
        b[0xEC..0xFC].copy_from_slice(&self.s_hash_seed);
        b[0xFC] = self.s_def_hash_version;
        b[0xFD] = self.s_jnl_backup_type;
        write_u16le(&mut b, 0xFE, self.s_desc_size);
        write_u32le(&mut b, 0x100, self.s_default_mount_opts);
        write_u32le(&mut b, 0x104, self.s_first_meta_bg);
        write_time(&mut b, 0x108, 0x276, self.s_mkfs_time);
        for (i, v) in self.s_jnl_blocks.iter().enumerate() {
            write_u32le(&mut b, 0x10C + 4 * i, *v);
        }
        write_u16le(&mut b, 0x15C, self.s_min_extra_isize);
        write_u16le(&mut b, 0x15E, self.s_want_extra_isize);
        write_u32le(&mut b, 0x160, self.s_flags);
        write_u16le(&mut b, 0x164, self.s_raid_stride);
        write_u32le(&mut b, 0x170, self.s_raid_stripe_width);
        b[0x174] = self.s_log_groups_per_flex;
        b[0x175] = self.s_checksum_type;
        write_u64le(&mut b, 0x178, self.s_kbytes_written);
        write_u32le(&mut b, 0x248, self.s_overhead_clusters);
        write_u32le(&mut b, 0x270, self.s_checksum_seed);
        b[0x254..0x258].copy_from_slice(&self.s_encrypt_algos);
        write_u16le(&mut b, 0x27C, self.s_encoding);
        write_u16le(&mut b, 0x27E, self.s_encoding_flags);
        let csum = if self.has_ro_compat(ro_compat::METADATA_CSUM) {
            superblock_csum(&b)
        } else {
            self.s_checksum
        };
        write_u32le(&mut b, 0x3FC, csum);
        b
    }

    /// Block size in bytes (valid after `from_bytes`: at most 64 KiB).
    pub fn block_size(&self) -> u32 {
        1024u32 << self.s_log_block_size.min(6)
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self
            .s_blocks_count
            .saturating_sub(u64::from(self.s_first_data_block));
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Group descriptor size (32 without `64bit`).
    pub fn desc_size(&self) -> u32 {
        if self.has_incompat(incompat::BIT64) {
            u32::from(self.s_desc_size)
        } else {
            32
        }
    }

    /// Descriptors per block.
    pub fn descs_per_block(&self) -> u64 {
        u64::from(self.block_size() / self.desc_size().max(1))
    }

    /// Blocks the group descriptor table takes.
    pub fn desc_blocks(&self) -> u64 {
        self.group_count().div_ceil(self.descs_per_block().max(1))
    }

    /// Blocks of one group's inode table.
    pub fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.s_inodes_per_group) * u64::from(self.inode_size()))
            .div_ceil(u64::from(self.block_size()))
    }

    /// Inode size (128 for revision 0).
    pub fn inode_size(&self) -> u32 {
        if self.s_rev_level == 0 {
            128
        } else {
            u32::from(self.s_inode_size)
        }
    }

    /// True when the `compat` bit is set.
    pub fn has_compat(&self, bit: u32) -> bool {
        self.s_feature_compat & bit != 0
    }

    /// True when the `incompat` bit is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.s_feature_incompat & bit != 0
    }

    /// True when the `ro_compat` bit is set.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.s_feature_ro_compat & bit != 0
    }

    /// True with `metadata_csum`.
    pub fn has_metadata_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::METADATA_CSUM)
    }

    /// True with `sparse_super` (backups only in groups 0, 1, 3^n, 5^n, 7^n).
    pub fn sparse_super(&self) -> bool {
        self.has_ro_compat(ro_compat::SPARSE_SUPER)
    }

    /// True with `has_journal`.
    pub fn has_journal(&self) -> bool {
        self.has_compat(compat::HAS_JOURNAL)
    }

    /// `s_jnl_blocks[0..15]`: the backup of the journal inode's block
    /// map (`i_block`, 60 bytes) that e2fsck can restore the journal from.
    pub fn set_jnl_blocks(&mut self, i_block: &[u8]) {
        for (i, w) in self.s_jnl_blocks.iter_mut().take(15).enumerate() {
            *w = crate::bytes::read_u32le(i_block, i * 4);
        }
    }

    /// The seed metadata checksums start from.
    pub fn csum_seed(&self) -> u32 {
        if self.has_incompat(incompat::CSUM_SEED) {
            self.s_checksum_seed
        } else {
            super::checksum::fs_seed(&self.s_uuid)
        }
    }

    /// Whether the descriptor table is split into meta groups (`meta_bg`).
    pub fn meta_bg(&self) -> bool {
        self.has_incompat(incompat::META_BG)
    }

    /// Descriptor blocks kept in the classic table (at the start of the
    /// filesystem and in every backup group): all of them without
    /// `meta_bg`, the first `s_first_meta_bg` with it.
    pub fn classic_desc_blocks(&self) -> u64 {
        if self.meta_bg() {
            u64::from(self.s_first_meta_bg).min(self.desc_blocks())
        } else {
            self.desc_blocks()
        }
    }

    /// Where descriptor block `i` (the primary copy) lives: right after
    /// the primary superblock in the classic table, or, for a meta group
    /// (`meta_bg`, `i` ≥ `s_first_meta_bg`), in the first group of the
    /// meta group after its superblock backup if it has one
    /// (libext2fs `ext2fs_descriptor_block_loc2`).
    pub fn desc_block_location(&self, i: u64) -> u64 {
        let fdb = u64::from(self.s_first_data_block);
        if i < self.classic_desc_blocks() {
            return fdb + 1 + i;
        }
        let g = i * self.descs_per_block();
        fdb + g * u64::from(self.s_blocks_per_group) + u64::from(self.group_has_super(g))
    }

    /// Copies of the descriptor block of meta group `m` (`meta_bg`): in
    /// its first, second and last group, after a superblock backup when
    /// the group has one. Groups past the end are left out.
    pub fn meta_group_desc_copies(&self, m: u64) -> impl Iterator<Item = u64> + '_ {
        let dpb = self.descs_per_block();
        let first = m * dpb;
        let groups = self.group_count();
        let fdb = u64::from(self.s_first_data_block);
        let bpg = u64::from(self.s_blocks_per_group);
        [first, first + 1, first + dpb - 1]
            .into_iter()
            .filter(move |&g| g < groups)
            .map(move |g| fdb + g * bpg + u64::from(self.group_has_super(g)))
    }

    /// Blocks at the start of group `g` that hold a superblock and
    /// descriptors (and reserved descriptor blocks): the kernel's
    /// `ext4_num_base_meta_blocks`.
    pub fn base_meta_blocks(&self, g: u64) -> u64 {
        let sup = u64::from(self.group_has_super(g));
        let dpb = self.descs_per_block().max(1);
        if !self.meta_bg() || g / dpb < u64::from(self.s_first_meta_bg) {
            if sup == 0 {
                return 0;
            }
            return 1 + self.classic_desc_blocks() + u64::from(self.s_reserved_gdt_blocks);
        }
        let r = g % dpb;
        sup + u64::from(r == 0 || r == 1 || r == dpb - 1)
    }

    /// Whether group `g` holds a superblock backup.
    pub fn group_has_super(&self, g: u64) -> bool {
        if !self.sparse_super() {
            return true;
        }
        has_super_sparse(g)
    }

    /// The volume label, up to its first NUL.
    pub fn label(&self) -> String {
        let end = self
            .s_volume_name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(16);
        String::from_utf8_lossy(&self.s_volume_name[..end]).into_owned()
    }
}

/// `sparse_super` rule: groups 0 and 1, and odd powers of 3, 5 and 7.
pub fn has_super_sparse(g: u64) -> bool {
    // The largest powers of 3, 5 and 7 a u64 holds. As the bases are
    // prime, `g` is a power of one exactly when it divides that power:
    // one division each instead of a loop (mkfs and resize2fs ask this
    // for every group of every descriptor table copy).
    const POW3: u64 = 12_157_665_459_056_928_801; // 3^40
    const POW5: u64 = 7_450_580_596_923_828_125; // 5^27
    const POW7: u64 = 3_909_821_048_582_988_049; // 7^22
    if g <= 1 {
        return true;
    }
    g % 2 == 1 && (POW3 % g == 0 || POW5 % g == 0 || POW7 % g == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        let mut sb = Superblock::zeroed();
        sb.s_inodes_count = 65536;
        sb.s_blocks_count = 262144;
        sb.s_log_block_size = 2;
        sb.s_log_cluster_size = 2;
        sb.s_blocks_per_group = 32768;
        sb.s_clusters_per_group = 32768;
        sb.s_inodes_per_group = 8192;
        sb.s_rev_level = 1;
        sb.s_inode_size = 256;
        sb.s_feature_incompat = 0x2c2;
        sb.s_feature_ro_compat = 0x46b;
        sb.s_desc_size = 64;
        sb.s_uuid = [0x11; 16];
        sb.s_mtime = 0x1_2345_6789;
        sb
    }

    #[test]
    fn round_trip_keeps_unknown_bytes_and_checksums() {
        let sb = sample();
        let mut bytes = sb.to_bytes();
        bytes[0x200] = 0xAB; // an unnamed field
        // Re-checksum after poking the unnamed byte.
        let c = superblock_csum(&bytes);
        write_u32le(&mut bytes, 0x3FC, c);
        let back = Superblock::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.s_mtime, 0x1_2345_6789);
        assert_eq!(back.group_count(), 8);
        assert_eq!(back.desc_blocks(), 1);
        assert_eq!(back.inode_table_blocks(), 512);
    }

    #[test]
    fn refuses_bad_magic_and_checksum() {
        let sb = sample();
        let mut b = sb.to_bytes();
        b[0x200] ^= 1;
        assert!(matches!(
            Superblock::from_bytes(&b),
            Err(Error::SuperblockChecksum { .. })
        ));
        b[0x38] = 0;
        assert!(matches!(
            Superblock::from_bytes(&b),
            Err(Error::BadMagic { found: 0xEF00 })
        ));
    }

    #[test]
    fn backup_groups() {
        let v: Vec<u64> = (0..130).filter(|&g| has_super_sparse(g)).collect();
        assert_eq!(v, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
        // Against repeated multiplication: small groups, and every power
        // of 3, 5 and 7 a u64 holds with its neighbours.
        let slow = |g: u64| {
            g <= 1
                || [3u64, 5, 7].iter().any(|&base| {
                    let mut p = base;
                    while p < g {
                        match p.checked_mul(base) {
                            Some(n) => p = n,
                            None => return false,
                        }
                    }
                    p == g
                })
        };
        let mut probes: Vec<u64> = (0..200_000).collect();
        for base in [3u64, 5, 7] {
            let mut p = base;
            while let Some(n) = p.checked_mul(base) {
                probes.extend([n - 2, n - 1, n, n + 1, n + 2]);
                p = n;
            }
        }
        for g in probes {
            assert_eq!(has_super_sparse(g), slow(g), "group {g}");
        }
    }
}
