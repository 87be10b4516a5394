//! Filesystems: ext4 and XFS, each with mkfs, open, grow and statfs; and
//! the small facade the guest layer uses: which filesystem is on a device
//! (by magic, as blkid would say it) and what statfs reports for it.

pub mod ext4;
pub mod node;
pub mod path;
pub mod xfs;

use crate::blockdev::BlockDevice;

/// A filesystem type ebsim can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext4.
    Ext4,
    /// XFS (v5).
    Xfs,
}

impl FsKind {
    /// The name blkid, mount and df use.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
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

/// Errors of the facade: the filesystem's own error, as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub String);

fn uuid_string(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Which filesystem `dev` holds, if any ebsim knows.
pub fn probe<D: BlockDevice>(dev: D) -> Result<Option<FsInfo>, FsError> {
    let err = |e: &dyn std::fmt::Display| FsError(e.to_string());
    if ext4::probe(&dev).map_err(|e| err(&e))? {
        let i = ext4::info(dev).map_err(|e| err(&e))?;
        return Ok(Some(FsInfo {
            kind: FsKind::Ext4,
            uuid: uuid_string(&i.uuid),
            label: i.label,
            version: Some("1.0".into()),
            clean: i.clean,
        }));
    }
    if xfs::probe(&dev).map_err(|e| err(&e))? {
        let fs = xfs::Xfs::open(dev).map_err(|e| err(&e))?;
        let i = fs.info();
        return Ok(Some(FsInfo {
            kind: FsKind::Xfs,
            uuid: uuid_string(&i.uuid),
            label: i.label,
            version: None,
            clean: fs.check_log_clean().is_ok(),
        }));
    }
    Ok(None)
}

/// What statfs returns for the filesystem on `dev` while mounted
/// (read-only mounts of XFS reserve nothing).
pub fn statfs<D: BlockDevice>(dev: D, kind: FsKind, read_only: bool) -> Result<StatFs, FsError> {
    let err = |e: &dyn std::fmt::Display| FsError(e.to_string());
    match kind {
        FsKind::Ext4 => {
            let fs = ext4::fs::Ext4::open(dev).map_err(|e| err(&e))?;
            let s = ext4::statfs(&fs).map_err(|e| err(&e))?;
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
            let fs = xfs::Xfs::open(dev).map_err(|e| err(&e))?;
            let mode = if read_only {
                xfs::MountMode::ReadOnly
            } else {
                xfs::MountMode::ReadWrite
            };
            let s = fs.statfs(mode).map_err(|e| err(&e))?;
            Ok(StatFs {
                frsize: s.f_bsize,
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_format() {
        let u = [
            0x05, 0x40, 0x13, 0x20, 0xe9, 0x9f, 0x4f, 0xea, 0xbd, 0x36, 0xd9, 0x33, 0x65, 0x35,
            0xb0, 0x8d,
        ];
        assert_eq!(
            super::uuid_string(&u),
            "05401320-e99f-4fea-bd36-d9336535b08d"
        );
    }
}
