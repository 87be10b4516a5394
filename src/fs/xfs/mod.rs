//! XFS: make (`mkfs`), inspect (`Xfs::open`, `info`, `statfs`) and grow
//! (`growfs`) v5 filesystems inside a [`BlockDevice`], as xfsprogs 6.1 and
//! the kernel do (spec xfs.md).
//!
//! One module per on-disk structure (`superblock`, `agf`, `agi`, `agfl`,
//! `btree`, `inode`, `log`), the AG layout shared by mkfs and growfs (`ag`),
//! the planners (`geometry` for mkfs, `growfs`), `statfs` and the geometry
//! printout (`report`). Every change is planned as a
//! [`WriteBatch`](crate::blockdev::WriteBatch) first and committed second.

pub mod ag;
pub mod agf;
pub mod agfl;
pub mod agi;
pub mod btree;
mod crc;
pub mod error;
pub mod geometry;
pub mod growfs;
pub mod inode;
pub mod log;
pub mod mkfs;
pub mod report;
pub mod size_arg;
pub mod statfs;
pub mod superblock;

pub use error::{Error, Result, Structure};
pub use statfs::{MountMode, StatFs};
pub use superblock::Superblock;

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
}

impl<D: BlockDevice> Xfs<D> {
    /// Reads and checks the primary superblock.
    pub fn open(dev: D) -> Result<Self> {
        let sb = read_primary(&dev)?;
        Ok(Xfs { dev, sb })
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

    /// Reads and checks the AGF of `agno`.
    pub fn read_agf(&self, agno: u32) -> Result<Agf> {
        let agf = Agf::from_bytes(&self.sector(agno, 1, Structure::Agf)?, agno)?;
        let len = self.sb.ag_length(agno);
        if agf.length != len {
            return Err(Error::corrupt(
                Structure::Agf,
                agno,
                format!("length {} where the superblock says {len}", agf.length),
            ));
        }
        Ok(agf)
    }

    /// Reads and checks the AGI of `agno`.
    pub fn read_agi(&self, agno: u32) -> Result<Agi> {
        let agi = Agi::from_bytes(&self.sector(agno, 2, Structure::Agi)?, agno)?;
        let len = self.sb.ag_length(agno);
        if agi.length != len {
            return Err(Error::corrupt(
                Structure::Agi,
                agno,
                format!("length {} where the superblock says {len}", agi.length),
            ));
        }
        Ok(agi)
    }

    /// Reads and checks the AGFL of `agno`.
    pub fn read_agfl(&self, agno: u32) -> Result<Agfl> {
        Agfl::from_bytes(&self.sector(agno, 3, Structure::Agfl)?, agno)
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
