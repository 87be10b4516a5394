//! The mkfs.xfs geometry planner: from a device size (or `-d size=`) to
//! AG count and size, log size and place, inode limit, with the default
//! features of the guest's xfsprogs version ([`MkfsDefaults`]).
//!
//! What changed between the versions ebsim's guests ship, from each
//! version's `mkfs/xfs_mkfs.c` (the `sb_feat` defaults and
//! `calculate_log_size`) and `libxfs/xfs_alloc.c`:
//!
//! | xfsprogs | finobt | sparse | reflink | bigtime, inobtcount | log (no `-l size=`) | smallest |
//! |---|---|---|---|---|---|---|
//! | 4.5 (CentOS 7 build) | 0 | 0 | – | – | ramp | 1 GiB* |
//! | 5.0 | 1 | 1 | 0 | 0 | ramp | 1 GiB* |
//! | 5.13 | 1 | 1 | 1 | 0 | ramp | 1 GiB* |
//! | 5.18 | 1 | 1 | 1 | 1 | 2048:1, at least 64 MiB | 300 MiB* |
//! | 6.1 | 1 | 1 | 1 | 1 | 2048:1, at least 64 MiB | 300 MiB |
//!
//! Reflink became a default in 5.1, bigtime and inobtcount in 5.15 (with
//! the new log rule). crc is on and rmapbt off in all of them; nrext64 exists from 5.19 and
//! is off by default in 6.1. Upstream 4.5 turns finobt on; Red Hat's 4.5
//! (CentOS 7, `xfsprogs-4.5.0-*.el7`) makes filesystems with finobt off,
//! as every CentOS 7 mkfs.xfs printout shows.
//!
//! The "ramp" (up to 5.14): under 1 GiB the minimum log; 1 GiB to 16 GiB
//! 10 MiB (2560 blocks: the minimum log, at least 10 MiB once the
//! filesystem is 1 GiB, times 5, capped at 10 MiB); from 16 GiB one log
//! block per 2048 data blocks, never under that minimum. From 5.15 the log
//! is one block per 2048 with a floor of 64 MiB, and filesystems under
//! 300 MiB get the minimum log; 5.19 refuses them.
//!
//! \* The minimum log is the largest transaction reservation, which
//! libxfs computes from its reservation tables per version; ebsim does not
//! port those, so where an older version would use the bare minimum (a
//! filesystem under 1 GiB, or under 300 MiB on 5.15 – 5.18) mkfs refuses
//! with [`GeometryError::MinimumLog`]. Above those sizes the minimum does
//! not matter: it is under 2560 blocks (6.1 reports 1986 for its default
//! features and 857 without reflink, finobt and sparse inodes), so the
//! 10 MiB rule and the 2048:1 rule win.
//!
//! The AG rules are the same in all of them for a single device: 4 AGs
//! from 128 MiB to 4 TiB, AGs of the largest size from 4 TiB on, and a
//! last AG under 16 MiB dropped.

use super::superblock::{SegmentedFsb, ceil_log2};
use crate::ec2::release::Version;

/// Block size mkfs uses by default.
pub const BLOCKSIZE: u32 = 4096;
/// The inode size mkfs.xfs makes on a CRC filesystem by default (and the
/// smallest it allows there).
pub const INODE_SIZE: u32 = 512;
/// The sector size mkfs.xfs uses on an image file (and the smallest).
pub const SECTOR_SIZE: u32 = 512;
/// `XFS_AG_MIN_BYTES`: 16 MiB.
pub const AG_MIN_BYTES: u64 = 16 << 20;
/// `XFS_MIN_REALISTIC_LOG_BLOCKS`: 64 MiB.
const MIN_REALISTIC_LOG_BYTES: u64 = 64 << 20;
/// `XFS_MAX_LOG_BLOCKS`.
const MAX_LOG_BLOCKS: u64 = 1 << 20;
/// `XFS_MAX_LOG_BYTES`: 2 GiB − 10 MiB.
const MAX_LOG_BYTES: u64 = (2 << 30) - (10 << 20);
/// `XFS_MIN_LOG_BYTES`: 10 MiB.
const MIN_LOG_BYTES_10M: u64 = 10 << 20;

/// A log this large (20 MiB) is above the minimum the kernel's
/// transaction reservations ask of any 4 KiB-block filesystem mkfs.xfs
/// makes (measured with xfsprogs 6.1: 857 blocks without reflink, 1566
/// with it, 3273 with rmapbt, growing slowly with the AG size).
const SURELY_ABOVE_MINIMUM_LOG_BYTES: u64 = 20 << 20;

/// The block, sector, inode and directory block sizes of a filesystem
/// (`-b size=`, `-s size=`, `-i size=`, `-n size=`), in bytes. The
/// default is what mkfs.xfs makes on an image file: 4096, 512, 512 and
/// the block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sizes {
    pub blocksize: u32,
    pub sectsize: u32,
    pub inodesize: u32,
    pub dirblocksize: u32,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            blocksize: BLOCKSIZE,
            sectsize: SECTOR_SIZE,
            inodesize: INODE_SIZE,
            dirblocksize: BLOCKSIZE,
        }
    }
}

impl Sizes {
    /// log2 of the block size.
    pub fn blocklog(&self) -> u32 {
        self.blocksize.max(1).ilog2()
    }

    /// `XFS_AG_MIN_BLOCKS`.
    pub fn ag_min_blocks(&self) -> u64 {
        AG_MIN_BYTES >> self.blocklog()
    }

    /// `XFS_AG_MAX_BLOCKS`: (1 TiB − 1) in blocks.
    pub fn ag_max_blocks(&self) -> u64 {
        ((1u64 << 40) - 1) >> self.blocklog()
    }

    /// `XFS_AGFL_BLOCK`: the block holding the fourth header sector (the
    /// AGFL); the btree roots follow it.
    pub fn agfl_block(&self) -> u32 {
        3 * self.sectsize / self.blocksize.max(1)
    }

    /// The inode cluster mkfs records (`XFS_INODE_BIG_CLUSTER_SIZE`, 8 KiB,
    /// scaled by the inode size over 256 on a CRC filesystem), in blocks.
    pub fn cluster_blocks(&self) -> u32 {
        (8192 * (self.inodesize / 256)) >> self.blocklog()
    }

    /// A whole inode chunk (64 inodes) in blocks.
    pub fn chunk_blocks(&self) -> u32 {
        (64 * self.inodesize) >> self.blocklog()
    }

    /// An upper bound, in bytes, of the smallest log the kernel's
    /// transaction reservations accept for these sizes and features, or
    /// None for the default sizes (whose logs the version rules keep far
    /// above it). ebsim does not port the reservation tables; the bounds
    /// are the largest minimum xfsprogs 6.1 reports for each block size
    /// (with 1 TiB AGs, 64 KiB directory blocks and 2 KiB inodes), with
    /// room to spare: 1–4 KiB blocks 17 MiB, 8 KiB 31 MiB, 16 KiB 51
    /// MiB; 32 KiB 99 MiB with rmapbt, 48 MiB with reflink, 16 MiB
    /// without either; 64 KiB 173, 69 and 32 MiB.
    pub fn minimum_log_bound(&self, features: &MkfsDefaults) -> Option<u64> {
        if *self == Sizes::default() {
            return None;
        }
        let mib: u64 = match self.blocksize {
            ..=4096 => 20,
            8192 => 36,
            16384 => 56,
            32768 if features.rmapbt => 112,
            32768 if features.reflink => 56,
            32768 => 24,
            _ if features.rmapbt => 192,
            _ if features.reflink => 80,
            _ => 40,
        };
        Some(mib << 20)
    }
}

/// How mkfs sizes an internal log it is not told the size of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogRule {
    /// Up to 5.14: 10 MiB from 1 GiB to 16 GiB, 2048:1 above.
    Ramp,
    /// 5.15 – 5.18: 2048:1 with a 64 MiB floor from 300 MiB up.
    Realistic,
    /// From 5.19: as [`LogRule::Realistic`], and filesystems under
    /// 300 MiB are refused.
    Realistic300,
}

/// The features mkfs.xfs turns on by default, and its sizing rules, for
/// one xfsprogs version (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MkfsDefaults {
    /// Free inode btree.
    pub finobt: bool,
    /// Sparse inode chunks.
    pub sparse: bool,
    /// Reverse-mapping btree.
    pub rmapbt: bool,
    /// Reflink (refcount btree).
    pub reflink: bool,
    /// 64-bit timestamps.
    pub bigtime: bool,
    /// Inode btree block counters.
    pub inobtcount: bool,
    /// 64-bit extent counters.
    pub nrext64: bool,
    /// How the log is sized.
    pub log: LogRule,
}

impl MkfsDefaults {
    /// xfsprogs 6.1 (and 5.19 – 6.x before nrext64 became a default).
    pub const V6_1: MkfsDefaults = MkfsDefaults {
        finobt: true,
        sparse: true,
        rmapbt: false,
        reflink: true,
        bigtime: true,
        inobtcount: true,
        nrext64: false,
        log: LogRule::Realistic300,
    };

    /// The defaults of xfsprogs `v` as the guest's distribution builds
    /// it: 4.x is Red Hat's 4.5 (finobt off), 5.0 turns finobt and sparse
    /// inodes on, 5.1 reflink, 5.15 bigtime and inobtcount and the new log
    /// rule, 5.19 refuses filesystems under 300 MiB.
    pub fn of(v: Version) -> MkfsDefaults {
        let at_least = |major, minor| v >= Version::new(major, minor, 0);
        if !at_least(5, 0) {
            return MkfsDefaults {
                finobt: false,
                sparse: false,
                rmapbt: false,
                reflink: false,
                bigtime: false,
                inobtcount: false,
                nrext64: false,
                log: LogRule::Ramp,
            };
        }
        let log = if at_least(5, 19) {
            LogRule::Realistic300
        } else if at_least(5, 15) {
            LogRule::Realistic
        } else {
            LogRule::Ramp
        };
        MkfsDefaults {
            finobt: true,
            sparse: true,
            rmapbt: false,
            reflink: at_least(5, 1),
            bigtime: at_least(5, 15),
            inobtcount: at_least(5, 15),
            nrext64: false,
            log,
        }
    }

    /// Blocks the fixed metadata takes at the start of every AG
    /// (`xfs_prealloc_blocks`): the header block, the bno, cnt and inobt
    /// roots, and one root per optional btree.
    pub fn prealloc(&self) -> u32 {
        4 + u32::from(self.finobt) + u32::from(self.rmapbt) + u32::from(self.reflink)
    }
}

/// Why a size cannot be made into a filesystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// Less than one minimum AG (`size N of data subvolume is too small`).
    #[error("size {dblocks} of data subvolume is too small, minimum {min} blocks")]
    DataTooSmall {
        /// The data blocks asked for.
        dblocks: u64,
        /// `XFS_MIN_DATA_BLOCKS`.
        min: u64,
    },
    /// Under mkfs 6.1's 300 MB floor.
    #[error("Filesystem must be larger than 300MB.")]
    Under300Mb,
    /// `-d agsize=`/`agcount=` made AGs under the minimum.
    #[error("agsize ({agsize} blocks) too small, need at least {min} blocks")]
    AgTooSmall {
        /// The AG size in blocks.
        agsize: u64,
        /// `XFS_AG_MIN_BLOCKS`.
        min: u64,
    },
    /// `-d agsize=`/`agcount=` made AGs over the maximum.
    #[error("agsize ({agsize} blocks) too big, maximum is {max} blocks")]
    AgTooBig {
        /// The AG size in blocks.
        agsize: u64,
        /// `XFS_AG_MAX_BLOCKS`.
        max: u64,
    },
    /// `-d agsize=` larger than the data section.
    #[error("agsize ({agsize} blocks) too big, data area is {dblocks} blocks")]
    AgOverData {
        /// The AG size in blocks.
        agsize: u64,
        /// The data blocks.
        dblocks: u64,
    },
    /// `-l size=` as large as the data section.
    #[error("log size {0} too large for internal log")]
    LogOverData(u64),
    /// `-l size=` larger than an AG can hold.
    #[error("internal log size {blocks} too large, must be less than {max}")]
    LogOverAg {
        /// The log blocks asked for.
        blocks: u64,
        /// What an AG holds beside its headers.
        max: u64,
    },
    /// `-l size=` under 20 MiB: it may be under the minimum log the
    /// kernel's transaction reservations need, which ebsim does not compute
    /// (mkfs.xfs 6.1 wants 857 to 3273 blocks by features and AG size).
    #[error(
        "a log of {blocks} blocks may be under the minimum log size, which ebsim does not \
         compute: ask for {at_least} blocks or more"
    )]
    LogBelowMinimum {
        /// The log blocks asked for.
        blocks: u64,
        /// The smallest log ebsim is sure of.
        at_least: u64,
    },
    /// With non-default sizes, the default log may be under the minimum
    /// log size, which ebsim does not compute.
    #[error(
        "the default log of {blocks} blocks may be under the minimum log size for these \
         block size and features, which ebsim does not compute: ask for -l size= of \
         {at_least} blocks or more"
    )]
    DefaultLogMaybeUnderMinimum {
        /// The log blocks the size rules give.
        blocks: u64,
        /// The smallest log ebsim is sure of.
        at_least: u64,
    },
    /// `-l agnum=` past the last AG.
    #[error("log ag number {agno} too large, must be less than {agcount}")]
    LogAgTooLarge {
        /// The AG asked for.
        agno: u64,
        /// The AG count.
        agcount: u64,
    },
    /// One AG left: from 5.19 mkfs wants a backup superblock.
    #[error("Filesystem must have at least 2 superblocks for redundancy!")]
    OneAg,
    /// AGs too small for the 64 MiB log 5.19 and later insist on.
    #[error("Log size must be at least 64MB.")]
    LogUnder64Mb,
    /// An older mkfs would give this filesystem the bare minimum log, whose
    /// size ebsim does not compute (see the module notes).
    #[error(
        "ebsim cannot size the minimum log mkfs.xfs {version} gives a filesystem of \
         {dblocks} blocks: make it at least {at_least} blocks"
    )]
    MinimumLog {
        /// The xfsprogs version copied.
        version: String,
        /// The data blocks asked for.
        dblocks: u64,
        /// The smallest size ebsim makes with this version.
        at_least: u64,
    },
}

/// How the data section is cut into AGs: by mkfs's default rule, or as
/// `-d agcount=` or `-d agsize=` (in blocks) asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgRequest {
    /// `calc_default_ag_geometry`.
    #[default]
    Default,
    /// `-d agcount=N`: AGs of ⌈dblocks / N⌉ blocks.
    Count(u64),
    /// `-d agsize=`: AGs of this many blocks.
    Size(u64),
}

/// What the command line asks of the geometry besides the size and
/// features: the AG cut (`-d agcount=`/`agsize=`), the internal log's size
/// and AG (`-l size=`, `-l agnum=`) and the inode space cap (`-i
/// maxpct=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// How the data section is cut into AGs.
    pub ags: AgRequest,
    /// `-l size=` in blocks (20 MiB or more; see [`GeometryError::LogBelowMinimum`]).
    pub log_blocks: Option<u64>,
    /// `-l agnum=`: the AG holding the log (default: the middle one).
    pub log_agno: Option<u64>,
    /// `-i maxpct=` (0: the size-based default).
    pub imaxpct: Option<u8>,
    /// `-b`, `-s`, `-i size=` and `-n size=`.
    pub sizes: Sizes,
}

/// A planned default filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// The block, sector, inode and directory block sizes.
    pub sizes: Sizes,
    pub dblocks: u64,
    pub agblocks: u32,
    pub agcount: u32,
    pub agblklog: u8,
    pub imaxpct: u8,
    pub logblocks: u32,
    pub logagno: u32,
    /// First block of the log inside its AG.
    pub logagbno: u32,
    pub prealloc: u32,
    /// The features the filesystem gets.
    pub features: MkfsDefaults,
}

impl Geometry {
    /// Plans a filesystem of `dblocks` 4 KiB blocks (the whole device, or
    /// `-d size=`), as mkfs.xfs 6.1 would with no other options.
    pub fn plan(dblocks: u64) -> Result<Self, GeometryError> {
        Self::plan_as(dblocks, Version::new(6, 1, 0))
    }

    /// As [`Geometry::plan`], as mkfs.xfs of xfsprogs `version` would.
    pub fn plan_as(dblocks: u64, version: Version) -> Result<Self, GeometryError> {
        Self::plan_with(dblocks, version, MkfsDefaults::of(version))
    }

    /// As [`Geometry::plan_as`], with these features (`-m`, `-i sparse=`)
    /// instead of the version's defaults; the sizing rules stay the
    /// version's.
    pub fn plan_with(
        dblocks: u64,
        version: Version,
        features: MkfsDefaults,
    ) -> Result<Self, GeometryError> {
        Self::plan_ags(dblocks, version, features, &Ask::default())
    }

    /// As [`Geometry::plan_with`], with the AGs cut as `ags` asks
    /// (`calculate_initial_ag_geometry`, then `align_ag_geometry`'s drop
    /// of a last AG under the minimum and `validate_ag_geometry`).
    pub fn plan_ags(
        dblocks: u64,
        version: Version,
        features: MkfsDefaults,
        ask: &Ask,
    ) -> Result<Self, GeometryError> {
        let ags = ask.ags;
        let features = MkfsDefaults {
            log: MkfsDefaults::of(version).log,
            ..features
        };
        let sizes = ask.sizes;
        let blocklog = sizes.blocklog();
        let ag_min = sizes.ag_min_blocks();
        let ag_max = sizes.ag_max_blocks();
        if dblocks < ag_min {
            return Err(GeometryError::DataTooSmall {
                dblocks,
                min: ag_min,
            });
        }
        let (agsize, mut agcount) = match ags {
            AgRequest::Default => default_ag_geometry(dblocks, blocklog),
            AgRequest::Count(n) => {
                let agsize = dblocks.div_ceil(n.max(1));
                (agsize, dblocks.div_ceil(agsize))
            }
            AgRequest::Size(a) => (a.max(1), dblocks.div_ceil(a.max(1))),
        };
        let mut dblocks = dblocks;
        // A last AG under the minimum is dropped with its blocks.
        let tail = dblocks % agsize;
        if tail != 0 && tail < ag_min {
            agcount -= 1;
            dblocks = agcount * agsize;
        }
        if agsize < ag_min {
            return Err(GeometryError::AgTooSmall {
                agsize,
                min: ag_min,
            });
        }
        if agsize > ag_max {
            return Err(GeometryError::AgTooBig {
                agsize,
                max: ag_max,
            });
        }
        if agsize > dblocks {
            return Err(GeometryError::AgOverData { agsize, dblocks });
        }
        // The smallest filesystem this version makes, or ebsim can size.
        let floor = match features.log {
            LogRule::Realistic300 | LogRule::Realistic => (300 << 20) >> blocklog,
            LogRule::Ramp => 1 << (30 - blocklog),
        };
        if dblocks < floor {
            if features.log == LogRule::Realistic300 {
                return Err(GeometryError::Under300Mb);
            }
            return Err(GeometryError::MinimumLog {
                version: version.to_string(),
                dblocks,
                at_least: floor,
            });
        }
        let from_5_19 = features.log == LogRule::Realistic300;
        if agcount < 2 && from_5_19 {
            return Err(GeometryError::OneAg);
        }
        let imaxpct = if let Some(p) = ask.imaxpct.filter(|&p| p != 0) {
            p
        } else if dblocks < 1 << (40 - blocklog) {
            25
        } else if dblocks < 50 << (40 - blocklog) {
            5
        } else {
            1
        };
        let prealloc = sizes.agfl_block() + features.prealloc();
        // `xfs_alloc_ag_max_usable`: the AG less its header block, the
        // AGFL reserve (4) and the btree roots; less one more for the log.
        let max_usable = agsize.saturating_sub(u64::from(prealloc) + 4 + 1);
        let ratio = ((dblocks << blocklog) / 2048) >> blocklog;
        let min_realistic = MIN_REALISTIC_LOG_BYTES >> blocklog;
        let min_10m = MIN_LOG_BYTES_10M >> blocklog;
        let logblocks = match features.log {
            // 10 MiB up to 16 GiB, then 2048:1, never under 10 MiB (the
            // minimum log once the filesystem is 1 GiB or more).
            LogRule::Ramp if dblocks < 16 << (30 - blocklog) => min_10m,
            LogRule::Ramp => ratio.max(min_10m),
            // 2048:1, at least 64 MiB.
            LogRule::Realistic | LogRule::Realistic300 => ratio.max(min_realistic),
        };
        // At most what fits an AG, 2^20 blocks and 2 GiB − 10 MiB.
        let logblocks = logblocks
            .min(max_usable)
            .min(MAX_LOG_BLOCKS)
            .min(MAX_LOG_BYTES >> blocklog);
        // Only AGs made small on purpose can hold less than that.
        if from_5_19 && ask.log_blocks.is_none() && logblocks < min_realistic {
            return Err(GeometryError::LogUnder64Mb);
        }
        let bound = sizes.minimum_log_bound(&features);
        if let (Some(bound), None) = (bound, ask.log_blocks) {
            if logblocks << blocklog < bound {
                return Err(GeometryError::DefaultLogMaybeUnderMinimum {
                    blocks: logblocks,
                    at_least: bound >> blocklog,
                });
            }
        }
        let logblocks = match ask.log_blocks {
            None => logblocks,
            Some(asked) => {
                if asked >= dblocks {
                    return Err(GeometryError::LogOverData(asked));
                }
                if asked > max_usable {
                    return Err(GeometryError::LogOverAg {
                        blocks: asked,
                        max: max_usable,
                    });
                }
                if asked << blocklog < bound.unwrap_or(SURELY_ABOVE_MINIMUM_LOG_BYTES) {
                    return Err(GeometryError::LogBelowMinimum {
                        blocks: asked,
                        at_least: bound.unwrap_or(SURELY_ABOVE_MINIMUM_LOG_BYTES) >> blocklog,
                    });
                }
                if from_5_19 && asked < min_realistic {
                    return Err(GeometryError::LogUnder64Mb);
                }
                asked
            }
        };
        let logagno = match ask.log_agno {
            None => agcount / 2,
            Some(a) if a >= agcount => {
                return Err(GeometryError::LogAgTooLarge { agno: a, agcount });
            }
            Some(a) => a,
        };
        // OK to unwrap-free convert: agsize <= XFS_AG_MAX_BLOCKS < 2^32 and the
        // AG count of a u64 block count over >= 4096-block AGs fits u32.
        let agblocks = u32::try_from(agsize).unwrap_or(u32::MAX);
        let agcount = u32::try_from(agcount).unwrap_or(u32::MAX);
        Ok(Geometry {
            sizes,
            dblocks,
            agblocks,
            agcount,
            agblklog: u8::try_from(ceil_log2(agblocks)).unwrap_or(32),
            imaxpct,
            logblocks: u32::try_from(logblocks).unwrap_or(u32::MAX),
            logagno: u32::try_from(logagno).unwrap_or(u32::MAX),
            logagbno: prealloc,
            prealloc,
            features,
        })
    }

    /// The log's start as a segmented FSB number.
    pub fn logstart(&self) -> SegmentedFsb {
        SegmentedFsb((u64::from(self.logagno) << self.agblklog) | u64::from(self.logagbno))
    }

    /// The length of AG `agno`.
    pub fn ag_length(&self, agno: u32) -> u32 {
        let start = u64::from(agno) * u64::from(self.agblocks);
        let len = self
            .dblocks
            .saturating_sub(start)
            .min(u64::from(self.agblocks));
        u32::try_from(len).unwrap_or(self.agblocks)
    }
}

/// `calc_default_ag_geometry` for a single disk: 4 AGs from 128 MiB up to
/// 4 TiB, the largest AGs from there on; smaller devices get the multidisk
/// rule.
fn default_ag_geometry(dblocks: u64, blocklog: u32) -> (u64, u64) {
    let ag_max = ((1u64 << 40) - 1) >> blocklog;
    let agsize = if dblocks >= 1 << (42 - blocklog) {
        ag_max
    } else {
        let shift = if dblocks >= 128 << (20 - blocklog) {
            2
        } else {
            // XFS_MULTIDISK_AGLOG (5), one less per threshold crossed.
            let mut s = 5u32;
            for limit in [512u64 << 30, 8 << 30] {
                if dblocks <= limit >> blocklog {
                    s -= 1;
                }
            }
            for limit in [128u64 << 20, 64 << 20, 32 << 20] {
                if dblocks < limit >> blocklog {
                    s -= 1;
                }
            }
            s
        };
        let mut blocks = dblocks >> shift;
        if dblocks & ((1 << shift) - 1) != 0 && blocks < ag_max {
            blocks += 1;
        }
        blocks
    };
    (agsize, dblocks.div_ceil(agsize))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test may panic
mod tests {
    use super::*;

    fn g(bytes: u64) -> Geometry {
        Geometry::plan(bytes / 4096).unwrap()
    }

    #[test]
    fn ags_as_asked() {
        let counted = |n| Ask {
            ags: AgRequest::Count(n),
            ..Ask::default()
        };
        let sized = |n| Ask {
            ags: AgRequest::Size(n),
            ..Ask::default()
        };
        let v = Version::new(6, 1, 0);
        let f = MkfsDefaults::of(v);
        let g = Geometry::plan_ags(262_144, v, f, &counted(7)).unwrap();
        assert_eq!((g.agcount, g.agblocks, g.logagno), (7, 37_450, 3));
        // 100 MiB AGs of 1 GiB: ten and a 6144-block tail, kept.
        let g = Geometry::plan_ags(262_144, v, f, &sized(25_600)).unwrap();
        assert_eq!((g.agcount, g.dblocks), (11, 262_144));
        // A 511 MiB AG leaves a 512-block tail: dropped with its blocks.
        let g = Geometry::plan_ags(262_144, v, f, &sized(130_816)).unwrap();
        assert_eq!((g.agcount, g.dblocks), (2, 261_632));
        let e = |dblocks, ags| {
            let ask = Ask {
                ags,
                ..Ask::default()
            };
            Geometry::plan_ags(dblocks, v, f, &ask).unwrap_err()
        };
        assert_eq!(e(262_144, AgRequest::Count(1)), GeometryError::OneAg);
        assert_eq!(e(262_144, AgRequest::Size(261_120)), GeometryError::OneAg);
        assert_eq!(
            e(262_144, AgRequest::Count(32)),
            GeometryError::LogUnder64Mb
        );
        assert_eq!(
            e(51_200, AgRequest::Count(70)),
            GeometryError::AgTooSmall {
                agsize: 732,
                min: 4096
            }
        );
        assert_eq!(
            e(262_144, AgRequest::Size(524_288)),
            GeometryError::AgOverData {
                agsize: 524_288,
                dblocks: 262_144
            }
        );
    }

    #[test]
    fn spec_table() {
        // What mkfs.xfs 6.1 made of files of these sizes:
        // size -> agcount, agsize, dblocks, imaxpct, logblocks.
        let k = 1u64 << 10;
        let m = k << 10;
        let gb = m << 10;
        let t = gb << 10;
        let rows: &[(u64, u32, u32, u64, u8, u32)] = &[
            (300 * m, 4, 19200, 76800, 25, 16384),
            (gb, 4, 65536, 262144, 25, 16384),
            (gb + 4 * k, 4, 65537, 262145, 25, 16384),
            (8 * gb, 4, 524288, 2097152, 25, 16384),
            (200 * gb, 4, 13107200, 52428800, 25, 25600),
            (t, 4, 67108864, 268435456, 5, 131072),
            (4 * t - 4 * k, 4, 268435455, 1073741820, 5, 521728),
            (4 * t, 4, 268435455, 1073741820, 5, 521728),
            (16 * t - 4 * k, 16, 268435455, 4294967280, 5, 521728),
            (16 * t, 16, 268435455, 4294967280, 5, 521728),
            (64 * t, 64, 268435455, 17179869120, 1, 521728),
        ];
        for &(size, agcount, agsize, dblocks, imaxpct, logblocks) in rows {
            let geo = g(size);
            assert_eq!(
                (
                    geo.agcount,
                    geo.agblocks,
                    geo.dblocks,
                    geo.imaxpct,
                    geo.logblocks
                ),
                (agcount, agsize, dblocks, imaxpct, logblocks),
                "size {size}"
            );
        }
        assert_eq!(g(gb).logstart(), SegmentedFsb(131078));
        assert_eq!(g(200 * gb).logstart(), SegmentedFsb(33554438));
        assert_eq!(g(16 * t).logstart(), SegmentedFsb(2147483654));
        assert_eq!(g(gb + 4 * k).ag_length(3), 65534);
    }

    #[test]
    fn defaults_per_version() {
        let v = |a, b| MkfsDefaults::of(Version::new(a, b, 0));
        let d45 = v(4, 5);
        assert!(!d45.finobt && !d45.sparse && !d45.reflink && !d45.bigtime);
        assert_eq!((d45.prealloc(), d45.log), (4, LogRule::Ramp));
        let d50 = v(5, 0);
        assert!(d50.finobt && d50.sparse && !d50.reflink);
        assert_eq!(d50.prealloc(), 5);
        let d513 = v(5, 13);
        assert!(d513.reflink && !d513.bigtime && !d513.inobtcount);
        assert_eq!((d513.prealloc(), d513.log), (6, LogRule::Ramp));
        let d518 = v(5, 18);
        assert!(d518.bigtime && d518.inobtcount && !d518.nrext64);
        assert_eq!(d518.log, LogRule::Realistic);
        assert_eq!(v(6, 1), MkfsDefaults::V6_1);
        // Log sizes: 10 MiB from 1 to 16 GiB, then 2048:1 (at least
        // 10 MiB) before 5.15; 2048:1 with a 64 MiB floor from 5.15.
        let gb = 1u64 << 18;
        let log = |blocks, a, b| {
            Geometry::plan_as(blocks, Version::new(a, b, 0))
                .unwrap()
                .logblocks
        };
        assert_eq!(log(8 * gb, 4, 5), 2560);
        assert_eq!(log(20 * gb, 5, 13), 2560);
        assert_eq!(log(100 * gb, 5, 0), 12800);
        assert_eq!(log(8 * gb, 5, 18), 16384);
        assert_eq!(log(100 * gb, 5, 18), 16384);
        assert_eq!(log(200 * gb, 5, 18), 25600);
        assert_eq!(
            Geometry::plan_as(gb - 1, Version::new(5, 13, 0)),
            Err(GeometryError::MinimumLog {
                version: "5.13.0".into(),
                dblocks: gb - 1,
                at_least: gb
            })
        );
        assert!(matches!(
            Geometry::plan_as(76799, Version::new(5, 18, 0)),
            Err(GeometryError::MinimumLog { .. })
        ));
        assert_eq!(
            Geometry::plan_as(76799, Version::new(6, 1, 0)),
            Err(GeometryError::Under300Mb)
        );
        assert!(Geometry::plan_as(76800, Version::new(5, 18, 0)).is_ok());
    }

    #[test]
    fn too_small() {
        assert_eq!(
            Geometry::plan(4095),
            Err(GeometryError::DataTooSmall {
                dblocks: 4095,
                min: 4096
            })
        );
        assert_eq!(
            Geometry::plan(0).unwrap_err().to_string(),
            "size 0 of data subvolume is too small, minimum 4096 blocks"
        );
        assert_eq!(Geometry::plan(4096), Err(GeometryError::Under300Mb));
        assert_eq!(Geometry::plan(76799), Err(GeometryError::Under300Mb));
        assert!(Geometry::plan(76800).is_ok());
    }
}
