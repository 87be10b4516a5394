//! XFS: make (`mkfs`), inspect (`Xfs::open`, `info`, `statfs`) and grow
//! (`growfs`) v5 filesystems inside a [`BlockDevice`], as xfsprogs 6.1 and
//! the kernel do.
//!
//! One module per on-disk structure (`superblock`, `agf`, `agi`, `agfl`,
//! `btree`, `inode`, `log`), the kernel's read verifiers for the per-AG
//! metadata (`verify`), the AG layout shared by mkfs and growfs (`ag`), the
//! planners (`geometry` for mkfs, `growfs`, with xfs_growfs's option rules
//! in `growfs_options`), `statfs` and the geometry
//! printout (`report`). Every change is planned as a
//! [`WriteBatch`](crate::blockdev::WriteBatch) first and committed second.

pub mod ag;
pub mod agf;
pub mod agfl;
pub mod agi;
pub mod bmap;
pub mod btree;
mod crc;
pub mod dinode;
pub mod dir2;
pub mod error;
pub mod files;
pub mod geometry;
pub mod growfs;
pub mod growfs_options;
pub mod inode;
pub mod log;
pub mod mkfs;
pub mod report;
pub mod sbtree;
pub mod size_arg;
pub mod statfs;
pub mod superblock;
pub mod symlink;
pub mod verify;

pub use error::{Error, Result, Structure};
pub use files::XfsFiles;
pub use log::LogHead;
pub use statfs::{MountMode, StatFs};
pub use superblock::Superblock;
pub use verify::{Corruption, MountEffect, Problem};

use crate::blockdev::BlockDevice;
use agf::Agf;
use agfl::Agfl;
use agi::Agi;

/// True when the device starts with the XFS superblock magic.
pub fn probe<D: BlockDevice + ?Sized>(dev: &D) -> Result<bool> {
    if dev.size() < 4 {
        return Ok(false);
    }
    let b = dev.read_vec(0, 4)?;
    Ok(crate::bytes::read_u32be(&b, 0) == superblock::XFS_SB_MAGIC)
}

/// What later layers want to know about a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfsInfo {
    pub uuid: [u8; 16],
    pub label: String,
    pub blocksize: u32,
    /// Data blocks (the filesystem's size in blocks).
    pub dblocks: u64,
    pub agcount: u32,
    pub agblocks: u32,
    pub logblocks: u32,
    /// Size of the filesystem in bytes.
    pub size_bytes: u64,
    /// Whether the log was cleanly unmounted.
    pub log_clean: bool,
}

/// An XFS on a device, opened read-only: its primary superblock checked
/// (magic, CRC, geometry, features).
#[derive(Debug)]
pub struct Xfs<D> {
    dev: D,
    sb: Superblock,
    limits: verify::Limits,
}

impl<D: BlockDevice> Xfs<D> {
    /// Reads and checks the primary superblock.
    pub fn open(dev: D) -> Result<Self> {
        let sb = read_primary(&dev)?;
        let limits = verify::Limits::new(&sb);
        Ok(Xfs { dev, sb, limits })
    }

    /// The primary superblock.
    pub fn sb(&self) -> &Superblock {
        &self.sb
    }

    /// The device.
    pub fn dev(&self) -> &D {
        &self.dev
    }

    /// Gives the device back.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Fails when the device is shorter than the filesystem.
    pub fn check_size(&self) -> Result<()> {
        let need = self.sb.dblocks << self.sb.blocklog;
        let size = self.dev.size();
        if size < need {
            let last = self.sb.agcount - 1;
            return Err(Error::Truncated {
                structure: Structure::Superblock,
                agno: last,
                offset: need,
                size,
            });
        }
        Ok(())
    }

    /// The sector address of header sector `index` (1 AGF, 2 AGI, 3 AGFL)
    /// of AG `agno`.
    fn header_daddr(&self, agno: u32, index: u64) -> u64 {
        (self.sb.ag_byte(agno, 0) + index * u64::from(self.sb.sectsize)) / 512
    }

    fn sector(&self, agno: u32, index: u64, structure: Structure) -> Result<Vec<u8>> {
        let ss = u64::from(self.sb.sectsize);
        let off = self.sb.ag_byte(agno, 0) + index * ss;
        if off + ss > self.dev.size() {
            return Err(Error::Truncated {
                structure,
                agno,
                offset: off,
                size: self.dev.size(),
            });
        }
        Ok(self.dev.read_vec(off, usize::from(self.sb.sectsize))?)
    }

    fn agf_with(&self, agno: u32, head: Option<&LogHead>) -> Result<Agf> {
        let daddr = self.header_daddr(agno, 1);
        let agf = Agf::from_bytes(&self.sector(agno, 1, Structure::Agf)?, agno)
            .map_err(|e| e.at(daddr))?;
        verify::check_agf(&self.sb, &self.limits, agno, &agf, head)
            .map_err(|p| Error::metadata(Structure::Agf, agno, p).at(daddr))?;
        Ok(agf)
    }

    fn agi_with(&self, agno: u32, head: Option<&LogHead>) -> Result<Agi> {
        let daddr = self.header_daddr(agno, 2);
        let agi = Agi::from_bytes(&self.sector(agno, 2, Structure::Agi)?, agno)
            .map_err(|e| e.at(daddr))?;
        verify::check_agi(&self.sb, &self.limits, agno, &agi, head)
            .map_err(|p| Error::metadata(Structure::Agi, agno, p).at(daddr))?;
        Ok(agi)
    }

    fn agfl_with(&self, agno: u32, head: Option<&LogHead>) -> Result<Agfl> {
        let daddr = self.header_daddr(agno, 3);
        let agfl = Agfl::from_bytes(&self.sector(agno, 3, Structure::Agfl)?, agno)
            .map_err(|e| e.at(daddr))?;
        verify::check_agfl(&self.sb, &self.limits, &agfl, head)
            .map_err(|p| Error::metadata(Structure::Agfl, agno, p).at(daddr))?;
        Ok(agfl)
    }

    /// Reads the AGF of `agno` with the kernel's read-verifier checks
    /// (all but the LSN's, which need the log: see [`Xfs::verify_ags`])
    /// and ebsim's exact-length check.
    pub fn read_agf(&self, agno: u32) -> Result<Agf> {
        self.agf_with(agno, None)
    }

    /// Reads the AGI of `agno`, checked as [`Xfs::read_agf`] is.
    pub fn read_agi(&self, agno: u32) -> Result<Agi> {
        self.agi_with(agno, None)
    }

    /// Reads the AGFL of `agno`, checked as [`Xfs::read_agf`] is.
    pub fn read_agfl(&self, agno: u32) -> Result<Agfl> {
        self.agfl_with(agno, None)
    }

    /// Where the log's next write goes; [`Error::DirtyLog`] unless the
    /// log was cleanly unmounted.
    pub fn log_head(&self) -> Result<LogHead> {
        log::check_clean(&self.dev, &self.sb)
    }

    /// Checks every AG's AGF, AGI and AGFL as the kernel's read verifiers
    /// do (LSNs against `head`, from [`Xfs::log_head`]), and the inode
    /// btree roots a mount reads: the root directory's AG's inobt root,
    /// and every finobt root when finobt is on without inobtcount (the
    /// kernel then walks the finobt to size its reservation). Stops at the
    /// first failure, an [`Error::Metadata`] that names the AG, the
    /// structure and what is wrong. A grow must pass this first.
    pub fn verify_ags(&self, head: &LogHead) -> Result<()> {
        self.check_size()?;
        let sb = &self.sb;
        let shift = u32::from(sb.agblklog) + u32::from(sb.inopblog);
        let root_ag = sb.rootino.checked_shr(shift).unwrap_or(u64::MAX);
        let walk_finobt = sb.has_ro_compat(superblock::ro_compat::FINOBT)
            && !sb.has_ro_compat(superblock::ro_compat::INOBTCNT);
        for agno in 0..sb.agcount {
            self.agf_with(agno, Some(head))?;
            let agi = self.agi_with(agno, Some(head))?;
            self.agfl_with(agno, Some(head))?;
            if u64::from(agno) == root_ag {
                self.verify_inobt_root(agno, agi.root, Structure::Inobt, head)?;
            }
            if walk_finobt {
                self.verify_inobt_root(agno, agi.free_root, Structure::Finobt, head)?;
            }
        }
        Ok(())
    }

    /// The read verifier of the inode btree block at `root` of AG `agno`.
    fn verify_inobt_root(
        &self,
        agno: u32,
        root: u32,
        structure: Structure,
        head: &LogHead,
    ) -> Result<()> {
        let length = self.sb.ag_length(agno);
        if root < self.limits.min_agbno || root >= length {
            return Err(Error::metadata(
                structure,
                agno,
                verify::Problem::RootOutside { root, length },
            ));
        }
        let daddr = self.sb.ag_byte(agno, root) / 512;
        let bad = |p| Error::metadata(structure, agno, p).at(daddr);
        let b = self.read_blocks(agno, root, self.sb.blocksize as usize, structure)?;
        // The read verifier checks the LSN with the CRC, before the rest.
        let (stored, computed) = crc::check(&b, btree::BTREE_CRC_OFF);
        let lsn = crate::bytes::read_u64be(&b, 0x18);
        if stored == computed && !head.allows(lsn) {
            return Err(bad(verify::Problem::LsnAhead {
                lsn,
                head: head.lsn(),
            }));
        }
        let magic = match structure {
            Structure::Finobt => btree::XFS_FIBT_CRC_MAGIC,
            _ => btree::XFS_IBT_CRC_MAGIC,
        };
        let h = btree::parse_header(&b, structure, agno, magic, &self.sb.metadata_uuid(), daddr)?;
        verify::check_inobt_block(&self.limits, &h, root, length).map_err(bad)
    }

    /// Reads `len` bytes at (AG, AG block).
    pub fn read_blocks(&self, agno: u32, agbno: u32, len: usize, s: Structure) -> Result<Vec<u8>> {
        let off = self.sb.ag_byte(agno, agbno);
        if off + len as u64 > self.dev.size() {
            return Err(Error::Truncated {
                structure: s,
                agno,
                offset: off,
                size: self.dev.size(),
            });
        }
        Ok(self.dev.read_vec(off, len)?)
    }

    /// Fails with [`Error::DirtyLog`] unless the log was cleanly unmounted.
    pub fn check_log_clean(&self) -> Result<()> {
        log::check_clean(&self.dev, &self.sb).map(|_| ())
    }

    /// Identity and sizes, and whether the log is clean.
    pub fn info(&self) -> XfsInfo {
        let sb = &self.sb;
        XfsInfo {
            uuid: sb.uuid,
            label: sb.label(),
            blocksize: sb.blocksize,
            dblocks: sb.dblocks,
            agcount: sb.agcount,
            agblocks: sb.agblocks,
            logblocks: sb.logblocks,
            size_bytes: sb.dblocks << sb.blocklog,
            log_clean: self.check_log_clean().is_ok(),
        }
    }

    /// What statfs would report once this filesystem is mounted `mode`.
    pub fn statfs(&self, mode: MountMode) -> Result<StatFs> {
        self.check_size()?;
        let log_ag = self.sb.log_ag();
        let mut ags = Vec::with_capacity(self.sb.agcount as usize);
        for agno in 0..self.sb.agcount {
            let agf = self.read_agf(agno)?;
            let agi = self.read_agi(agno)?;
            let finobt_blocks = if self.sb.has_ro_compat(superblock::ro_compat::INOBTCNT) {
                agi.fblocks
            } else {
                // Without the counters, a one-level tree is its root.
                u32::from(agi.free_level > 0)
            };
            ags.push(statfs::AgUsage {
                length: agf.length,
                btreeblks: agf.btreeblks,
                rmap_blocks: agf.rmap_blocks,
                refcount_blocks: agf.refcount_blocks,
                finobt_blocks,
                holds_log: agno == log_ag,
            });
        }
        Ok(statfs::compute(&self.sb, &ags, mode))
    }
}

/// Reads the primary superblock: magic, CRC, and the geometry checks.
pub fn read_primary<D: BlockDevice + ?Sized>(dev: &D) -> Result<Superblock> {
    let size = dev.size();
    if size < 512 {
        if size >= 4 {
            let magic = crate::bytes::read_u32be(&dev.read_vec(0, 4)?, 0);
            if magic != superblock::XFS_SB_MAGIC {
                return Err(Error::NotXfs { magic });
            }
        }
        return Err(Error::Truncated {
            structure: Structure::Superblock,
            agno: 0,
            offset: 0,
            size,
        });
    }
    let head = dev.read_vec(0, 512)?;
    let sb = Superblock::from_bytes(&head, 0)?;
    let ss = u64::from(sb.sectsize).clamp(512, 32768);
    let sector = if ss > 512 && ss <= size {
        dev.read_vec(0, ss as usize)?
    } else {
        head
    };
    // A v4 superblock has no CRC: say what it is rather than "bad CRC".
    if !sb.is_v5() {
        sb.validate(0)?;
    }
    Superblock::verify_crc(&sector, 0)?;
    sb.validate(0)?;
    Ok(sb)
}
