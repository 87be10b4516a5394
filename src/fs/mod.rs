//! Filesystems: ext4 and XFS, each with mkfs, open, grow and statfs; and
//! the small facade the guest layer uses: which filesystem is on a device
//! (by magic, as blkid would say it) and what statfs reports for it.

pub mod ext4;
pub mod node;
pub mod path;
pub mod signature;
pub mod swap;
pub mod vfat;
pub mod vfat_files;
pub mod xfs;

use crate::blockdev::BlockDevice;

/// A filesystem type ebsim can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext4.
    Ext4,
    /// XFS (v5).
    Xfs,
    /// FAT (the EFI system partitions): read for blkid and statfs only.
    Vfat,
    /// A swap area (`mkswap`): blkid's TYPE, never mounted.
    Swap,
}

impl FsKind {
    /// The name blkid, mount and df use.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Vfat => "vfat",
            FsKind::Swap => "swap",
        }
    }
}

/// What blkid reports about a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    /// Its type.
    pub kind: FsKind,
    /// UUID, lower-case with dashes.
    pub uuid: String,
    /// Label (may be empty).
    pub label: String,
    /// FSVER as blkid 2.38 shows it (`1.0` for ext4; none for XFS).
    pub version: Option<String>,
    /// Cleanly unmounted (ext4 state valid; XFS log clean).
    pub clean: bool,
    /// blkid's BLOCK_SIZE: the ext4 block size, the XFS and FAT sector
    /// size; none for swap.
    pub block_size: Option<u32>,
    /// blkid's TYPE: the kind's name, except in the ext family (`ext2`,
    /// `ext3`, `ext4`, `ext4dev` by the superblock's features).
    pub type_name: &'static str,
    /// blkid's SEC_TYPE: `msdos` for FAT12 and FAT16 (a boot sector with
    /// a 16-bit FAT size); `ext2` for an ext3 (or ext4dev) an ext2 driver
    /// could mount.
    pub sec_type: Option<&'static str>,
    /// The FAT boot sector's own label (LABEL_FATBOOT): present when the
    /// extended boot signature is 0x29 and the label is not `NO NAME`,
    /// trailing spaces cut.
    pub boot_label: Option<String>,
}

/// statfs(2) numbers, in units of `frsize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatFs {
    /// f_frsize (= f_bsize for ext4 and XFS).
    pub frsize: u64,
    /// f_blocks
    pub blocks: u64,
    /// f_bfree
    pub bfree: u64,
    /// f_bavail
    pub bavail: u64,
    /// f_files
    pub files: u64,
    /// f_ffree
    pub ffree: u64,
}

/// Errors of the facade: the filesystem's own, typed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The ext4 layer's.
    #[error("{0}")]
    Ext4(#[from] ext4::Error),
    /// The XFS layer's.
    #[error("{0}")]
    Xfs(#[from] xfs::Error),
    /// The FAT layer's.
    #[error("{0}")]
    Vfat(#[from] vfat::Error),
    /// A swap area has no statfs: it is never mounted.
    #[error("a swap area is not a mountable filesystem")]
    NotMountable,
}

/// Which filesystem `dev` holds, if any ebsim knows.
pub fn probe<D: BlockDevice>(dev: D) -> Result<Option<FsInfo>, FsError> {
    if ext4::probe(&dev)? {
        let i = ext4::info(dev)?;
        return Ok(Some(FsInfo {
            kind: FsKind::Ext4,
            uuid: crate::compat::uuid_unparse(&i.uuid),
            label: i.label,
            version: Some(i.blkid_type.version),
            clean: i.clean,
            block_size: Some(i.block_size),
            type_name: i.blkid_type.name,
            sec_type: i.blkid_type.sec_type,
            boot_label: None,
        }));
    }
    if xfs::probe(&dev)? {
        let fs = xfs::Xfs::open(dev)?;
        let i = fs.info();
        return Ok(Some(FsInfo {
            kind: FsKind::Xfs,
            type_name: FsKind::Xfs.name(),
            uuid: crate::compat::uuid_unparse(&i.uuid),
            label: i.label,
            version: None,
            clean: fs.check_log_clean().is_ok(),
            block_size: Some(u32::from(fs.sb().sectsize)),
            sec_type: None,
            boot_label: None,
        }));
    }
    if vfat::probe(&dev)? {
        let i = vfat::info(&dev)?;
        return Ok(Some(FsInfo {
            kind: FsKind::Vfat,
            type_name: FsKind::Vfat.name(),
            uuid: i.uuid,
            label: i.label,
            version: Some(i.version.to_string()),
            clean: true,
            block_size: u32::try_from(i.geometry.sector).ok(),
            sec_type: (!i.geometry.fat32_bpb).then_some("msdos"),
            boot_label: i.boot_label,
        }));
    }
    if let Some(i) = swap::info(&dev) {
        return Ok(Some(FsInfo {
            kind: FsKind::Swap,
            type_name: FsKind::Swap.name(),
            uuid: crate::compat::uuid_unparse(&i.uuid),
            label: i.label,
            version: Some(i.version.to_string()),
            clean: true,
            block_size: None,
            sec_type: None,
            boot_label: None,
        }));
    }
    Ok(None)
}

/// What statfs returns for the filesystem on `dev` while mounted
/// (read-only mounts of XFS reserve nothing).
pub fn statfs<D: BlockDevice>(dev: D, kind: FsKind, read_only: bool) -> Result<StatFs, FsError> {
    match kind {
        FsKind::Ext4 => {
            let fs = ext4::fs::Ext4::open(dev)?;
            let s = ext4::statfs(&fs)?;
            Ok(StatFs {
                frsize: u64::from(s.block_size),
                blocks: s.blocks,
                bfree: s.bfree,
                bavail: s.bavail,
                files: s.files,
                ffree: s.ffree,
            })
        }
        FsKind::Xfs => {
            let fs = xfs::Xfs::open(dev)?;
            let mode = if read_only {
                xfs::MountMode::ReadOnly
            } else {
                xfs::MountMode::ReadWrite
            };
            let s = fs.statfs(mode)?;
            Ok(StatFs {
                frsize: s.f_bsize,
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
            })
        }
        FsKind::Vfat => {
            let s = vfat::statfs(&dev)?;
            Ok(StatFs {
                frsize: s.cluster,
                blocks: s.blocks,
                bfree: s.free,
                bavail: s.free,
                files: 0,
                ffree: 0,
            })
        }
        FsKind::Swap => Err(FsError::NotMountable),
    }
}

/// Opens the filesystem on `dev` for file operations, as the kernel's mount
/// would pick it: ext4 first, then XFS. The result is addressed through the
/// filesystem-neutral [`node::FileSystem`] trait. `writable: false` opens
/// XFS read-only (every change is `EROFS`; ext4 opens the same either way,
/// and a read-only device refuses its commits). A device holding neither
/// is `Unsupported` ("no ext4 or XFS filesystem"); each filesystem's own
/// refusals (features it does not write, a journal or log needing
/// recovery) pass through with their names.
pub fn open_files<D: BlockDevice + 'static>(
    dev: D,
    writable: bool,
) -> node::NodeResult<(FsKind, Box<dyn node::FileSystem>)> {
    use node::{ErrorKind, NodeError};
    let probe_err = |e: &dyn std::fmt::Display| NodeError::with(ErrorKind::Io, e.to_string());
    if ext4::probe(&dev).map_err(|e| probe_err(&e))? {
        let fs = ext4::files::Ext4Files::open(dev)?;
        return Ok((FsKind::Ext4, Box::new(fs)));
    }
    if xfs::probe(&dev).map_err(|e| probe_err(&e))? {
        let fs = if writable {
            xfs::files::XfsFiles::open(dev)?
        } else {
            xfs::files::XfsFiles::open_read_only(dev)?
        };
        return Ok((FsKind::Xfs, Box::new(fs)));
    }
    Err(NodeError::with(
        ErrorKind::Unsupported,
        "no ext4 or XFS filesystem",
    ))
}
