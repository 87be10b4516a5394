//! The mkfs.xfs 6.1 geometry planner: from a device size (or
//! `-d size=`) to AG count and size, log size and place, inode limit.

use super::superblock::{SegmentedFsb, ceil_log2};

/// Block size mkfs uses by default.
pub const BLOCKSIZE: u32 = 4096;
/// log2 of [`BLOCKSIZE`].
pub const BLOCKLOG: u32 = 12;
/// `XFS_AG_MIN_BYTES`: 16 MiB.
pub const AG_MIN_BYTES: u64 = 16 << 20;
/// `XFS_AG_MIN_BLOCKS` for 4 KiB blocks.
pub const AG_MIN_BLOCKS: u64 = AG_MIN_BYTES >> BLOCKLOG;
/// `XFS_AG_MAX_BLOCKS` for 4 KiB blocks: (1 TiB − 1) / 4 KiB.
pub const AG_MAX_BLOCKS: u64 = ((1u64 << 40) - 1) >> BLOCKLOG;
/// mkfs 6.1 refuses filesystems under 300 MiB.
pub const MIN_DBLOCKS: u64 = (300 << 20) >> BLOCKLOG;
/// `XFS_MIN_REALISTIC_LOG_BLOCKS`: 64 MiB.
const MIN_REALISTIC_LOG_BLOCKS: u64 = (64 << 20) >> BLOCKLOG;
/// `XFS_MAX_LOG_BLOCKS`.
const MAX_LOG_BLOCKS: u64 = 1 << 20;
/// `XFS_MAX_LOG_BYTES`: 2 GiB − 10 MiB.
const MAX_LOG_BYTES: u64 = (2 << 30) - (10 << 20);
/// Blocks at the start of each AG that the fixed metadata takes (headers,
/// bno, cnt, ino, finobt and refcount roots) with the default features.
pub const PREALLOC: u32 = 6;
/// `xfs_alloc_ag_max_usable` subtracts: the header block, the AGFL
/// reserve (4) and the five btree roots.
const AG_RESERVED: u64 = 1 + 4 + 5;

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
}

/// A planned default filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub blocksize: u32,
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
}

impl Geometry {
    /// Plans a filesystem of `dblocks` 4 KiB blocks (the whole device, or
    /// `-d size=`), as mkfs.xfs 6.1 would with no other options.
    pub fn plan(dblocks: u64) -> Result<Self, GeometryError> {
        if dblocks < AG_MIN_BLOCKS {
            return Err(GeometryError::DataTooSmall {
                dblocks,
                min: AG_MIN_BLOCKS,
            });
        }
        let (agsize, mut agcount) = default_ag_geometry(dblocks);
        let mut dblocks = dblocks;
        // A last AG under the minimum is dropped with its blocks.
        let tail = dblocks % agsize;
        if tail != 0 && tail < AG_MIN_BLOCKS {
            agcount -= 1;
            dblocks = agcount * agsize;
        }
        if dblocks < MIN_DBLOCKS {
            return Err(GeometryError::Under300Mb);
        }
        let imaxpct = if dblocks < 1 << (40 - BLOCKLOG) {
            25
        } else if dblocks < 50 << (40 - BLOCKLOG) {
            5
        } else {
            1
        };
        // 2048:1 data to log, at least 64 MiB, at most what fits an AG, 2^20
        // blocks and 2 GiB − 10 MiB.
        let max_usable = agsize.saturating_sub(AG_RESERVED + 1);
        let logblocks = ((dblocks << BLOCKLOG) / 2048) >> BLOCKLOG;
        let logblocks = logblocks
            .max(MIN_REALISTIC_LOG_BLOCKS)
            .min(max_usable)
            .min(MAX_LOG_BLOCKS)
            .min(MAX_LOG_BYTES >> BLOCKLOG);
        // OK to unwrap-free convert: agsize <= AG_MAX_BLOCKS < 2^32 and the
        // AG count of a u64 block count over >= 4096-block AGs fits u32.
        let agblocks = u32::try_from(agsize).unwrap_or(u32::MAX);
        let agcount = u32::try_from(agcount).unwrap_or(u32::MAX);
        Ok(Geometry {
            blocksize: BLOCKSIZE,
            dblocks,
            agblocks,
            agcount,
            agblklog: u8::try_from(ceil_log2(agblocks)).unwrap_or(32),
            imaxpct,
            logblocks: u32::try_from(logblocks).unwrap_or(u32::MAX),
            logagno: agcount / 2,
            logagbno: PREALLOC,
            prealloc: PREALLOC,
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
fn default_ag_geometry(dblocks: u64) -> (u64, u64) {
    let agsize = if dblocks >= 1 << (42 - BLOCKLOG) {
        AG_MAX_BLOCKS
    } else {
        let shift = if dblocks >= 128 << (20 - BLOCKLOG) {
            2
        } else {
            // XFS_MULTIDISK_AGLOG (5), one less per threshold crossed.
            let mut s = 5u32;
            for limit in [512u64 << 30, 8 << 30] {
                if dblocks <= limit >> BLOCKLOG {
                    s -= 1;
                }
            }
            for limit in [128u64 << 20, 64 << 20, 32 << 20] {
                if dblocks < limit >> BLOCKLOG {
                    s -= 1;
                }
            }
            s
        };
        let mut blocks = dblocks >> shift;
        if dblocks & ((1 << shift) - 1) != 0 && blocks < AG_MAX_BLOCKS {
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
