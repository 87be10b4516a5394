//! The mke2fs geometry planner: from a size and options to block count,
//! group count, inodes per group, reserved GDT blocks, journal size and
//! reserved blocks, exactly as mke2fs 1.47.0 with Debian's mke2fs.conf
//! (e2fsprogs misc/mke2fs.c `PRS`, lib/ext2fs/initialize.c).

use super::error::{Error, MkfsError};
use super::features::{compat, incompat, ro_compat};
use super::superblock::has_super_sparse;

/// The `fs_types` size class mke2fs picks from the filesystem size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeType {
    /// < 3 MiB
    Floppy,
    /// < 512 MiB
    Small,
    /// < 4 TiB
    Default,
    /// < 16 TiB
    Big,
    /// ≥ 16 TiB
    Huge,
}

impl SizeType {
    /// By size in bytes.
    pub fn for_bytes(bytes: u64) -> Self {
        const MIB: u64 = 1 << 20;
        if bytes < 3 * MIB {
            SizeType::Floppy
        } else if bytes < 512 * MIB {
            SizeType::Small
        } else if bytes < 4 << 40 {
            SizeType::Default
        } else if bytes < 16 << 40 {
            SizeType::Big
        } else {
            SizeType::Huge
        }
    }

    /// mke2fs.conf's `inode_ratio` for this size type.
    pub fn inode_ratio(self) -> u64 {
        super::mke2fs::Usage::of(self.name()).inode_ratio
    }

    /// mke2fs.conf's `blocksize` for this size type.
    pub fn block_size(self) -> u32 {
        u32::try_from(super::mke2fs::Usage::of(self.name()).block_size).unwrap_or(4096)
    }

    /// Its name in mke2fs.conf.
    pub fn name(self) -> &'static str {
        match self {
            SizeType::Floppy => "floppy",
            SizeType::Small => "small",
            SizeType::Default => "default",
            SizeType::Big => "big",
            SizeType::Huge => "huge",
        }
    }
}

/// What the user asked for, resolved to blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct GeometryRequest {
    /// Block size in bytes (4096 only, for now).
    pub block_size: u32,
    /// Requested filesystem size in blocks (before mke2fs trims a too
    /// small last group).
    pub blocks: u64,
    /// The size class (from the size in the units mke2fs saw).
    pub size_type: SizeType,
    /// `-N`: inode count, or None for the ratio.
    pub inodes: Option<u64>,
    /// `-i`: bytes per inode, or None for the size class's ratio.
    pub inode_ratio: Option<u64>,
    /// `-m`: reserved percentage (default 5).
    pub reserved_ratio: f64,
    /// The feature set and inode size (mke2fs.conf's ext4, edited by `-O`
    /// and `-I`).
    pub profile: Profile,
}

/// The features and inode size of a new filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// `s_feature_compat`.
    pub feature_compat: u32,
    /// `s_feature_incompat`.
    pub feature_incompat: u32,
    /// `s_feature_ro_compat`.
    pub feature_ro_compat: u32,
    /// Inode size in bytes (128, 256, ... up to the block size).
    pub inode_size: u32,
    /// Reserved GDT blocks asked for by `-E resize=` (None: room for
    /// 1024× growth); asking also turns `resize_inode` on.
    pub reserved_gdt: Option<u64>,
    /// `-E stride=` (`s_raid_stride`; without flex_bg it staggers each
    /// group's bitmaps).
    pub raid_stride: u32,
    /// `-E stripe_width=` (`s_raid_stripe_width`).
    pub raid_stripe_width: u32,
    /// `-E encoding_flags=` (`s_encoding_flags`, with `casefold`).
    pub encoding_flags: u16,
    /// `-g`: blocks per group (None: eight per byte of a block, the most
    /// one bitmap block can map).
    pub blocks_per_group: Option<u64>,
    /// `-G`: log2 of the groups per flex group (None: 16 groups, mke2fs's
    /// `flex_bg_size` default, when flex_bg is on).
    pub log_groups_per_flex: Option<u8>,
    /// `-J size=`: journal blocks (None: the size-based default).
    pub journal_blocks: Option<u64>,
}

impl Profile {
    /// Debian's mke2fs.conf for ext4 (e2fsprogs 1.47.0): has_journal,
    /// ext_attr, resize_inode, dir_index, filetype, extent, 64bit, flex_bg,
    /// sparse_super, large_file, huge_file, dir_nlink, extra_isize,
    /// metadata_csum; 256-byte inodes.
    pub const EXT4: Profile = Profile {
        feature_compat: compat::HAS_JOURNAL
            | compat::EXT_ATTR
            | compat::RESIZE_INODE
            | compat::DIR_INDEX,
        feature_incompat: incompat::FILETYPE
            | incompat::EXTENTS
            | incompat::BIT64
            | incompat::FLEX_BG,
        feature_ro_compat: ro_compat::SPARSE_SUPER
            | ro_compat::LARGE_FILE
            | ro_compat::HUGE_FILE
            | ro_compat::DIR_NLINK
            | ro_compat::EXTRA_ISIZE
            | ro_compat::METADATA_CSUM,
        inode_size: INODE_SIZE,
        reserved_gdt: None,
        raid_stride: 0,
        raid_stripe_width: 0,
        encoding_flags: 0,
        blocks_per_group: None,
        log_groups_per_flex: None,
        journal_blocks: None,
    };

    /// Debian's mke2fs.conf `base_features` alone, the ext2 of mke2fs
    /// 1.47.0: ext_attr, resize_inode, dir_index, filetype, sparse_super,
    /// large_file; no journal, block-mapped files, 32-byte descriptors,
    /// every group's tables in the group.
    pub const EXT2: Profile = Profile {
        feature_compat: compat::EXT_ATTR | compat::RESIZE_INODE | compat::DIR_INDEX,
        feature_incompat: incompat::FILETYPE,
        feature_ro_compat: ro_compat::SPARSE_SUPER | ro_compat::LARGE_FILE,
        ..Profile::EXT4
    };

    /// mke2fs.conf's ext3: the base features and `has_journal`.
    pub const EXT3: Profile = Profile {
        feature_compat: compat::HAS_JOURNAL
            | compat::EXT_ATTR
            | compat::RESIZE_INODE
            | compat::DIR_INDEX,
        ..Profile::EXT2
    };

    /// The profile of an mke2fs.conf filesystem type: ext3 and ext4 have
    /// their stanzas; any other name (ext2, a usage type such as "small",
    /// or one mke2fs.conf does not define) gets the base features.
    pub fn of_type(fs_type: &str) -> Profile {
        match fs_type {
            "ext4" => Profile::EXT4,
            "ext3" => Profile::EXT3,
            _ => Profile::EXT2,
        }
    }

    /// With `64bit`.
    pub fn is_64bit(&self) -> bool {
        self.feature_incompat & incompat::BIT64 != 0
    }

    /// Group descriptor size: 64 with `64bit`, else 32.
    pub fn desc_size(&self) -> u64 {
        if self.is_64bit() { 64 } else { 32 }
    }
}

impl Profile {
    /// The features ebsim's mkfs can lay out besides the ext4 default's:
    /// group checksums by crc16 (`uninit_bg`), and the superblock-only
    /// `encrypt` and `casefold` (no inode is encrypted or casefolded yet).
    const EXTRA: [u32; 3] = [
        0,
        incompat::ENCRYPT | incompat::CASEFOLD,
        ro_compat::GDT_CSUM,
    ];
    /// What every filesystem ebsim makes has (its directories carry file
    /// types, its groups sparse superblock backups).
    const REQUIRED: [u32; 3] = [0, incompat::FILETYPE, ro_compat::SPARSE_SUPER];

    /// The feature words as `[compat, incompat, ro_compat]`.
    pub fn words(&self) -> [u32; 3] {
        [
            self.feature_compat,
            self.feature_incompat,
            self.feature_ro_compat,
        ]
    }

    /// Sets the feature words from `[compat, incompat, ro_compat]`.
    pub fn set_words(&mut self, w: [u32; 3]) {
        [
            self.feature_compat,
            self.feature_incompat,
            self.feature_ro_compat,
        ] = w;
    }

    /// The first feature ebsim cannot make as asked: (the name, whether it
    /// was asked for, not left out).
    pub fn unsupported(&self) -> Option<(String, bool)> {
        use super::features::{Word, name};
        let have = self.words();
        let words = [Word::Compat, Word::Incompat, Word::RoCompat];
        let default = Profile::EXT4.words();
        for i in 0..3 {
            let extra = have[i] & !(default[i] | Profile::EXTRA[i]);
            if extra != 0 {
                return Some((name(words[i], 1 << extra.trailing_zeros()), true));
            }
            let missing = Profile::REQUIRED[i] & !have[i];
            if missing != 0 {
                return Some((name(words[i], 1 << missing.trailing_zeros()), false));
            }
        }
        None
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::EXT4
    }
}

/// The resolved geometry of a new filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Block size in bytes.
    pub block_size: u32,
    /// `s_log_block_size`.
    pub log_block_size: u32,
    /// Final block count.
    pub blocks: u64,
    /// `s_first_data_block`.
    pub first_data_block: u64,
    /// `s_blocks_per_group`.
    pub blocks_per_group: u64,
    /// Group count.
    pub groups: u64,
    /// Group descriptor table blocks.
    pub desc_blocks: u64,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// Inode table blocks per group.
    pub inode_table_blocks: u64,
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// `s_reserved_gdt_blocks`.
    pub reserved_gdt_blocks: u64,
    /// `s_r_blocks_count`.
    pub r_blocks: u64,
    /// Journal blocks.
    pub journal_blocks: u64,
    /// The journal asked for was left out: the filesystem is under 2048
    /// blocks (mke2fs: "Filesystem too small for a journal").
    pub journal_dropped: bool,
    /// `s_raid_stride`.
    pub raid_stride: u32,
    /// `s_raid_stripe_width`.
    pub raid_stripe_width: u32,
    /// `s_encoding_flags`.
    pub encoding_flags: u16,
    /// Inode size.
    pub inode_size: u32,
    /// `s_log_groups_per_flex`.
    pub log_groups_per_flex: u8,
    /// Feature words.
    pub feature_compat: u32,
    /// Feature words.
    pub feature_incompat: u32,
    /// Feature words.
    pub feature_ro_compat: u32,
}

/// Inode size from mke2fs.conf's defaults.
pub const INODE_SIZE: u32 = 256;
/// First non-reserved inode.
pub const FIRST_INO: u32 = 11;

impl Geometry {
    /// Whether group `g` has a superblock backup (sparse_super).
    pub fn has_super(&self, g: u64) -> bool {
        has_super_sparse(g)
    }

    /// First block of group `g`.
    pub fn group_first(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }

    /// Last block of group `g` (inclusive).
    pub fn group_last(&self, g: u64) -> u64 {
        if g + 1 >= self.groups {
            self.blocks - 1
        } else {
            self.group_first(g) + self.blocks_per_group - 1
        }
    }

    /// Blocks in group `g`.
    pub fn group_blocks(&self, g: u64) -> u64 {
        self.group_last(g) + 1 - self.group_first(g)
    }

    /// Blocks at the head of group `g` taken by its superblock backup,
    /// descriptors and reserved GDT blocks (0 without a backup).
    pub fn super_overhead(&self, g: u64) -> u64 {
        if self.has_super(g) {
            (1 + self.desc_blocks + self.reserved_gdt_blocks).min(self.group_blocks(g))
        } else {
            0
        }
    }

    /// Whether the filesystem has a resize inode.
    pub fn has_resize_inode(&self) -> bool {
        self.feature_compat & compat::RESIZE_INODE != 0
    }

    /// Whether files are mapped by extent trees (else by block maps).
    pub fn has_extents(&self) -> bool {
        self.feature_incompat & incompat::EXTENTS != 0
    }

    /// Flex group size.
    pub fn flex_size(&self) -> u64 {
        1u64 << self.log_groups_per_flex
    }
}

/// mke2fs's `ext2fs_default_journal_size` by final block count.
pub fn default_journal_blocks(blocks: u64) -> Option<u64> {
    Some(match blocks {
        b if b < 2048 => return None,
        b if b < 32768 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131072,
        _ => 262144,
    })
}

/// `figure_journal_size`'s checks of a journal size asked for with `-J
/// size=`: between 1024 and 10,240,000 blocks, and at most half the free
/// blocks the new filesystem has before its tables are placed (mke2fs
/// counts every block but the superblock and descriptor copies, and
/// without flex_bg each group's own bitmaps and inode table, as
/// `ext2fs_initialize` leaves the count).
fn check_journal_size(
    asked: u64,
    blocks: u64,
    fdb: u64,
    bpg: u64,
    groups: u64,
    overhead: impl Fn(u64) -> u64,
) -> Result<(), Error> {
    if !(1024..=10_240_000).contains(&asked) {
        return Err(Error::Mkfs(MkfsError::JournalSizeRange(asked)));
    }
    let free: u64 = (0..groups)
        .map(|g| {
            let first = fdb + g * bpg;
            let len = (blocks - first).min(bpg);
            len.saturating_sub(overhead(g))
        })
        .sum();
    if asked > free / 2 {
        return Err(Error::Mkfs(MkfsError::JournalTooBig));
    }
    Ok(())
}

/// Superblock and descriptor blocks of group `g` (`old_desc` = descriptor
/// plus reserved GDT blocks) in a filesystem with sparse backups.
fn super_overhead(g: u64, old_desc: u64) -> u64 {
    if has_super_sparse(g) { 1 + old_desc } else { 0 }
}

/// `calc_reserved_gdt_blocks`: room for 1024× growth (capped at 2^32
/// blocks and at one block of pointers).
fn reserved_gdt(blocks: u64, fdb: u64, bpg: u64, desc_blocks: u64, bs: u64, desc_size: u64) -> u64 {
    let gdpb = bs / desc_size;
    let max_blocks: u64 = if blocks < 0xFFFF_FFFF / 1024 {
        blocks * 1024
    } else {
        0xFFFF_FFFF
    };
    let rsv_groups = (max_blocks - fdb).div_ceil(bpg);
    let rsv = rsv_groups.div_ceil(gdpb).saturating_sub(desc_blocks);
    rsv.min(bs / 4)
}

/// `(u64)(ratio * blocks / 100.0)` in C double arithmetic.
fn percent_of(ratio: f64, blocks: u64) -> u64 {
    // The C code converts a double to blk64_t: truncation toward zero,
    // which `as` does too (values are far below 2^53 relative error).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let r = (ratio * blocks as f64 / 100.0) as u64;
    r
}

/// mke2fs's sanity checks of the block count (1, 2 or 4 KiB blocks): at
/// most 2^32 − 1 blocks without `64bit`, and fewer than 2^(32 + 3 +
/// log2(block size)) (as many groups as a 32-bit count holds) with it.
pub fn check_size(blocks: u64, block_size: u32, profile: &Profile) -> Result<(), Error> {
    let log_block_size = (block_size / 1024).trailing_zeros();
    if blocks > 0xFFFF_FFFF && !profile.is_64bit() {
        return Err(Error::Mkfs(MkfsError::TooBigFor32Bit {
            blocks,
            block_size,
        }));
    }
    if blocks > (1u64 << (10 + log_block_size + 3 + 32)) - 1 {
        return Err(Error::Mkfs(MkfsError::TooBig { blocks, block_size }));
    }
    Ok(())
}

/// Plans the geometry of a new ext4 with 1, 2 or 4 KiB blocks (Debian
/// defaults).
pub fn plan(req: &GeometryRequest) -> Result<Geometry, Error> {
    let bs = u64::from(req.block_size);
    if !matches!(req.block_size, 1024 | 2048 | 4096) {
        return Err(Error::Mkfs(MkfsError::BlockSize(bs)));
    }
    let log_block_size = (req.block_size / 1024).trailing_zeros();
    let param_blocks = req.blocks;
    check_size(param_blocks, req.block_size, &req.profile)?;
    // With 1 KiB blocks block 0 is the boot block, outside the filesystem.
    let fdb = u64::from(req.block_size == 1024);
    let profile = req.profile;
    let mut feature_compat = profile.feature_compat;
    if profile.reserved_gdt.is_some() {
        feature_compat |= compat::RESIZE_INODE;
    }
    let feature_incompat = profile.feature_incompat;
    let feature_ro_compat = profile.feature_ro_compat;
    let inode_size = profile.inode_size;
    let desc_size = profile.desc_size();
    if param_blocks > 0xFFFF_FFFF {
        // More than 2^32 blocks with 64bit: no resize inode (mke2fs PRS).
        feature_compat &= !compat::RESIZE_INODE;
    }
    let resize_inode = feature_compat & compat::RESIZE_INODE != 0;

    // Inode count from the requested size (mke2fs PRS).
    // mke2fs raises the profile's ratio to the block size; a ratio given
    // with -i is taken as it is (more inodes than blocks is allowed).
    let inode_ratio = req
        .inode_ratio
        .unwrap_or_else(|| req.size_type.inode_ratio().max(bs));
    let inodes_param: u64 = match req.inodes {
        Some(n) => {
            if n > 0xFFFF_FFFF {
                return Err(Error::Mkfs(MkfsError::TooManyInodes(n)));
            }
            n
        }
        None => {
            let n = param_blocks.saturating_mul(bs) / inode_ratio;
            n.min(0xFFFF_FFFF)
        }
    };
    if inodes_param.saturating_mul(u64::from(inode_size)) >= param_blocks.saturating_mul(bs) {
        return Err(Error::Mkfs(MkfsError::InodesTooBig {
            inode_size,
            inodes: inodes_param,
            blocks: param_blocks,
        }));
    }
    let param_r = percent_of(req.reserved_ratio, param_blocks);

    let mut bpg: u64 = profile.blocks_per_group.unwrap_or(bs * 8);
    let mut blocks = param_blocks;
    let mut r_blocks = param_r;
    if r_blocks >= param_blocks {
        return Err(Error::Mkfs(MkfsError::TooSmall {
            blocks: param_blocks,
        }));
    }
    // initialize.c `retry:`
    loop {
        let groups = (blocks.saturating_sub(fdb)).div_ceil(bpg);
        if groups == 0 {
            return Err(Error::Mkfs(MkfsError::TooSmall { blocks }));
        }
        let desc_blocks = groups.div_ceil(bs / desc_size);
        // With a request of 0 (never: mke2fs always passes one), the
        // library default would apply; keep the minimum of 12 inodes.
        let inodes_count = inodes_param.max(u64::from(FIRST_INO) + 1);
        let mut ipg = inodes_count.div_ceil(groups);
        if ipg > bs * 8 {
            if bpg >= 256 {
                bpg -= 8;
                blocks = param_blocks;
                continue;
            }
            return Err(Error::Mkfs(MkfsError::TooManyInodes(inodes_count)));
        }
        let max_ipg = (1u64 << 16) - bs / u64::from(inode_size);
        ipg = ipg.min(max_ipg);
        let (ipg, itb) = loop {
            let itb = (ipg * u64::from(inode_size)).div_ceil(bs);
            let mut real = itb * bs / u64::from(inode_size);
            real = real.max(8) & !7;
            let itb = (real * u64::from(inode_size)).div_ceil(bs);
            if real * groups > 0xFFFF_FFFF {
                ipg -= 1;
                continue;
            }
            break (real, itb);
        };
        let rsv = match (resize_inode, profile.reserved_gdt) {
            (false, _) => 0,
            (true, Some(r)) => r,
            (true, None) => reserved_gdt(blocks, fdb, bpg, desc_blocks, bs, desc_size),
        };
        if rsv + desc_blocks > bpg * 3 / 4 {
            return Err(Error::Unsupported(format!(
                "{rsv} reserved GDT + {desc_blocks} descriptor blocks exceed 3/4 of a group: mke2fs would switch to meta_bg, which ebsim does not make"
            )));
        }
        let overhead = 3 + itb + rsv + desc_blocks;
        if overhead > bpg {
            return Err(Error::Mkfs(MkfsError::TooManyInodes(inodes_count)));
        }
        // Drop a last group too small for its own metadata (+50 blocks).
        let mut last_ovh = 2 + itb;
        if has_super_sparse(groups - 1) {
            last_ovh += 1 + desc_blocks + rsv;
        }
        let rem = (blocks - fdb) % bpg;
        if groups == 1 && rem != 0 && rem < last_ovh {
            return Err(Error::Mkfs(MkfsError::TooSmall { blocks }));
        }
        if rem != 0 && rem < last_ovh + 50 {
            blocks -= rem;
            // Same percentage of the new count (initialize.c).
            #[allow(clippy::cast_precision_loss)]
            let ratio = 100.0 * param_r as f64 / param_blocks as f64;
            r_blocks = percent_of(ratio, blocks);
            continue;
        }
        let ipg32 = u32::try_from(ipg).map_err(|_| Error::Mkfs(MkfsError::TooManyInodes(ipg)))?;
        let inodes_total = u32::try_from(ipg * groups)
            .map_err(|_| Error::Mkfs(MkfsError::TooManyInodes(ipg * groups)))?;
        let flex_bg = feature_incompat & incompat::FLEX_BG != 0;
        let mut journal_dropped = false;
        let journal_blocks = if feature_compat & compat::HAS_JOURNAL == 0 {
            0
        } else if default_journal_blocks(blocks).is_none() {
            // Under 2048 blocks mke2fs says the filesystem is too small
            // for a journal and makes it without one, asked or not.
            journal_dropped = true;
            feature_compat &= !compat::HAS_JOURNAL;
            0
        } else if let Some(asked) = profile.journal_blocks {
            check_journal_size(asked, blocks, fdb, bpg, groups, |g| {
                super_overhead(g, desc_blocks + rsv) + if flex_bg { 0 } else { 2 + itb }
            })?;
            asked
        } else {
            default_journal_blocks(blocks).unwrap_or(0)
        };
        return Ok(Geometry {
            block_size: req.block_size,
            log_block_size,
            blocks,
            first_data_block: fdb,
            blocks_per_group: bpg,
            groups,
            desc_blocks,
            inodes_per_group: ipg32,
            inode_table_blocks: itb,
            inodes_count: inodes_total,
            reserved_gdt_blocks: rsv,
            r_blocks,
            journal_blocks,
            journal_dropped,
            raid_stride: profile.raid_stride,
            raid_stripe_width: profile.raid_stripe_width,
            encoding_flags: profile.encoding_flags,
            inode_size,
            log_groups_per_flex: if flex_bg {
                profile.log_groups_per_flex.unwrap_or(4)
            } else {
                0
            },
            feature_compat,
            feature_incompat,
            feature_ro_compat,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(bytes: u64) -> GeometryRequest {
        GeometryRequest {
            block_size: 4096,
            blocks: bytes / 4096,
            size_type: SizeType::for_bytes(bytes),
            inodes: None,
            inode_ratio: None,
            reserved_ratio: 5.0,
            profile: Profile::EXT4,
        }
    }

    #[test]
    fn golden_geometries() {
        // What mke2fs 1.47.0 made of files of these sizes (dumpe2fs).
        let g = plan(&req(1 << 30)).unwrap();
        assert_eq!(
            (g.blocks, g.inodes_count, g.r_blocks, g.reserved_gdt_blocks),
            (262144, 65536, 13107, 127)
        );
        assert_eq!(g.journal_blocks, 8192);
        let g = plan(&req(8 << 30)).unwrap();
        assert_eq!(
            (g.blocks, g.inodes_count, g.r_blocks, g.reserved_gdt_blocks),
            (2097152, 524288, 104857, 1023)
        );
        let g = plan(&req(16 << 40)).unwrap();
        assert_eq!(
            (g.blocks, g.inodes_count, g.r_blocks),
            (4294967296, 268435456, 214748364)
        );
        assert!(!g.has_resize_inode());
        assert_eq!(g.inodes_per_group, 2048);
        let g = plan(&req(4 << 40)).unwrap();
        assert_eq!(g.inodes_per_group, 4096);
        let g = plan(&req(10 << 40)).unwrap();
        assert_eq!(g.reserved_gdt_blocks, 768);
        // 513M: the partial last group is dropped, inodes redistributed.
        let g = plan(&req(513 << 20)).unwrap();
        assert_eq!((g.groups, g.inodes_per_group), (4, 8208));
    }
}
