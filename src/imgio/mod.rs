//! Host-side access to the files inside plain image files, for tests and
//! scripts: the library behind `ebsim image` (ls, cp in and out, cat,
//! mkdir, rm, fallocate, stat, df).
//!
//! A location is written as e2tools and mtools users know it:
//! `IMAGE:/path` (the filesystem on the whole image) or `IMAGE@N:/path`
//! (the filesystem in partition N of the image's GPT or MBR table, found
//! as sfdisk finds it). [`open`] opens the image (read-only, or
//! read-write under the image's exclusive lock), finds the partition,
//! recognises the filesystem and opens its file layer
//! ([`crate::fs::node::FileSystem`]), which refuses, by name, the features
//! and states it cannot handle. Everything is staged in the file layer
//! and written by its `sync` through the blockdev commit path, so a
//! command that fails writes nothing.
//!
//! [`copy`] holds the operations on trees (copy in, copy out, make
//! directories, remove), with the semantics of cp, mkdir and rm.

pub mod copy;

use crate::blockdev::image::Access;
use crate::blockdev::{self, BlockDevice, ImageFile, Slice};
use crate::fs::node::{FileSystem, NodeError};
use crate::fs::{FsKind, ext4};
use crate::partition::{self, SECTOR};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why an image's filesystem could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImgError {
    /// The image file does not exist.
    #[error("{0}: No such file or directory")]
    NotFound(PathBuf),
    /// The path is not a regular file (or block device).
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    /// The image could not be read (or locked).
    #[error(transparent)]
    Device(blockdev::Error),
    /// The partition table could not be read.
    #[error("{image}: {source}")]
    Table {
        /// The image.
        image: String,
        /// The partition layer's error.
        source: partition::Error,
    },
    /// A partition was named but the image has no partition table.
    #[error("{image}: no partition table, so no partition {number}")]
    NoTable {
        /// The image.
        image: String,
        /// The partition asked for.
        number: u32,
    },
    /// The table has no such partition.
    #[error("{image}: the {table} partition table has no partition {number} (partitions: {list})")]
    NoPartition {
        /// The image.
        image: String,
        /// `gpt` or `dos`.
        table: &'static str,
        /// The partition asked for.
        number: u32,
        /// The partitions it has, comma separated.
        list: String,
    },
    /// The partition does not lie inside the image.
    #[error(
        "{image}: partition {number} (sectors {start}-{end}) ends past the end of the image ({size} bytes)"
    )]
    PartitionOutside {
        /// The image.
        image: String,
        /// The partition.
        number: u32,
        /// First sector.
        start: u64,
        /// Last sector.
        end: u64,
        /// The image's size.
        size: u64,
    },
    /// The whole image holds a partition table, not a filesystem.
    #[error(
        "{image}: holds a {table} partition table, not a filesystem; name a partition as {image}@N:PATH ({hint})"
    )]
    PartitionNeeded {
        /// The image.
        image: String,
        /// `gpt` or `dos`.
        table: &'static str,
        /// Which partitions hold a filesystem.
        hint: String,
    },
    /// No filesystem ebsim knows is there.
    #[error("{device}: no ext4 or XFS filesystem found")]
    NoFilesystem {
        /// The image, or `IMAGE@N`.
        device: String,
    },
    /// The filesystem is there but cannot be read or written (a feature
    /// or state the file layer refuses, or damage).
    #[error("{device}: {kind}: {error}")]
    Open {
        /// The image, or `IMAGE@N`.
        device: String,
        /// Its type.
        kind: &'static str,
        /// The file layer's refusal.
        error: NodeError,
    },
}

/// A place inside an image: `IMAGE[@N]:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The image file.
    pub image: PathBuf,
    /// The partition number, if one was named.
    pub partition: Option<u32>,
    /// The path inside the filesystem (`/` when empty).
    pub path: Vec<u8>,
}

impl Location {
    /// Parses `IMAGE[@N]:PATH`; `None` when `arg` has no `:` (a host
    /// path). The image is everything before the first `:`; a trailing
    /// `@DIGITS` of it is the partition number.
    pub fn parse(arg: &OsStr) -> Option<Location> {
        let b = arg.as_bytes();
        let colon = b.iter().position(|&c| c == b':')?;
        let (image, partition) = split_partition(&b[..colon]);
        let mut path = b[colon + 1..].to_vec();
        if path.is_empty() {
            path.push(b'/');
        }
        Some(Location {
            image,
            partition,
            path,
        })
    }

    /// Parses an argument that must name an image: `IMAGE[@N][:PATH]`
    /// (no `:` means the filesystem's root).
    pub fn parse_image(arg: &OsStr) -> Location {
        Location::parse(arg).unwrap_or_else(|| {
            let (image, partition) = split_partition(arg.as_bytes());
            Location {
                image,
                partition,
                path: b"/".to_vec(),
            }
        })
    }

    /// How messages name it: `IMAGE[@N]:PATH`.
    pub fn display(&self) -> String {
        format!(
            "{}:{}",
            device_name(&self.image, self.partition),
            String::from_utf8_lossy(&self.path)
        )
    }
}

/// `disk.img@2` → (`disk.img`, 2); anything else is all image.
fn split_partition(b: &[u8]) -> (PathBuf, Option<u32>) {
    if let Some(at) = b.iter().rposition(|&c| c == b'@') {
        let digits = &b[at + 1..];
        if !digits.is_empty() && at > 0 && digits.iter().all(u8::is_ascii_digit) {
            if let Some(n) = std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            {
                return (PathBuf::from(OsStr::from_bytes(&b[..at])), Some(n));
            }
        }
    }
    (PathBuf::from(OsStr::from_bytes(b)), None)
}

/// How messages name an image or one of its partitions (`disk.img@1`).
pub fn device_name(image: &Path, partition: Option<u32>) -> String {
    match partition {
        Some(n) => format!("{}@{n}", image.display()),
        None => image.display().to_string(),
    }
}

/// An image's filesystem, opened for its files.
pub struct Opened {
    /// The file layer.
    pub fs: Box<dyn FileSystem>,
    /// Its type.
    pub kind: FsKind,
    /// `IMAGE` or `IMAGE@N`, for messages and df.
    pub device: String,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("kind", &self.kind)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The byte range of partition `number` of `dev`.
fn partition_range(
    dev: &ImageFile,
    image: &str,
    number: u32,
) -> Result<std::ops::Range<u64>, ImgError> {
    let probe = partition::probe(dev).map_err(|source| ImgError::Table {
        image: image.to_string(),
        source,
    })?;
    let Some(label) = probe.label else {
        return Err(ImgError::NoTable {
            image: image.to_string(),
            number,
        });
    };
    let parts = label.partitions();
    let Some(&(_, start, sectors)) = parts.iter().find(|(n, _, _)| *n == number) else {
        let list: Vec<String> = parts.iter().map(|(n, _, _)| n.to_string()).collect();
        return Err(ImgError::NoPartition {
            image: image.to_string(),
            table: label.kind(),
            number,
            list: if list.is_empty() {
                "none".into()
            } else {
                list.join(", ")
            },
        });
    };
    let off = start.checked_mul(SECTOR);
    let end = start
        .checked_add(sectors)
        .and_then(|e| e.checked_mul(SECTOR));
    match (off, end) {
        (Some(o), Some(e)) if e <= dev.size() && sectors > 0 => Ok(o..e),
        _ => Err(ImgError::PartitionOutside {
            image: image.to_string(),
            number,
            start,
            end: start.saturating_add(sectors).saturating_sub(1),
            size: dev.size(),
        }),
    }
}

/// Which filesystem `dev` holds.
fn probe_kind<D: BlockDevice>(dev: &D) -> Option<FsKind> {
    if ext4::probe(dev).unwrap_or(false) {
        Some(FsKind::Ext4)
    } else if crate::fs::xfs::probe(dev).unwrap_or(false) {
        Some(FsKind::Xfs)
    } else {
        None
    }
}

/// The hint of [`ImgError::PartitionNeeded`]: the partitions holding a
/// filesystem ebsim knows.
fn partition_hint(dev: &ImageFile, label: &partition::Label) -> String {
    let mut with_fs = Vec::new();
    for (n, start, sectors) in label.partitions() {
        let (Some(off), Some(len)) = (start.checked_mul(SECTOR), sectors.checked_mul(SECTOR))
        else {
            continue;
        };
        if let Ok(s) = Slice::new(dev, off, len) {
            if let Some(k) = probe_kind(&s) {
                with_fs.push(format!("{n} is {}", k.name()));
            }
        }
    }
    if with_fs.is_empty() {
        "no partition holds an ext4 or XFS filesystem".into()
    } else {
        format!("partition {}", with_fs.join(", "))
    }
}

/// Opens the filesystem of `image` (or of its partition `partition`) for
/// its files: read-only unless `write`, in which case the image is locked
/// for as long as the result lives. Refuses with a typed error a missing
/// image, a missing partition or table, a partition outside the image, no
/// filesystem, and what the file layer refuses.
pub fn open(image: &Path, partition: Option<u32>, write: bool) -> Result<Opened, ImgError> {
    let name = image.display().to_string();
    match std::fs::metadata(image) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImgError::NotFound(image.to_path_buf()));
        }
        Err(e) => {
            return Err(ImgError::Device(blockdev::Error::Io {
                path: image.to_path_buf(),
                op: "stat".into(),
                source: e,
            }));
        }
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if !(t.is_file() || t.is_block_device() || blockdev::segmented::is_segmented(image)) {
                return Err(ImgError::NotAFile(image.to_path_buf()));
            }
        }
    }
    let access = if write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let dev = ImageFile::open(image, access).map_err(|e| match e {
        blockdev::Error::NotFound(p) => ImgError::NotFound(p),
        e => ImgError::Device(e),
    })?;
    let device = device_name(image, partition);
    let range = match partition {
        Some(n) => partition_range(&dev, &name, n)?,
        None => 0..dev.size(),
    };
    let slice = Slice::new(dev, range.start, range.end - range.start).map_err(ImgError::Device)?;
    let Some(kind) = probe_kind(&slice) else {
        if partition.is_none() {
            if let Ok(p) = partition::probe(slice.inner()) {
                if let Some(label) = p.label {
                    return Err(ImgError::PartitionNeeded {
                        image: name,
                        table: label.kind(),
                        hint: partition_hint(slice.inner(), &label),
                    });
                }
            }
        }
        return Err(ImgError::NoFilesystem { device });
    };
    let fs: Box<dyn FileSystem> = match kind {
        FsKind::Ext4 => {
            Box::new(
                ext4::files::Ext4Files::open(slice).map_err(|error| ImgError::Open {
                    device: device.clone(),
                    kind: kind.name(),
                    error,
                })?,
            )
        }
        FsKind::Xfs => {
            let open = |e| ImgError::Open {
                device: device.clone(),
                kind: kind.name(),
                error: e,
            };
            if write {
                Box::new(crate::fs::xfs::files::XfsFiles::open(slice).map_err(open)?)
            } else {
                Box::new(crate::fs::xfs::files::XfsFiles::open_read_only(slice).map_err(open)?)
            }
        }
        // Never probed here: FAT files are not served.
        FsKind::Vfat | FsKind::Swap => return Err(ImgError::NoFilesystem { device }),
    };
    Ok(Opened { fs, kind, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = |s: &str| Location::parse(OsStr::new(s));
        assert_eq!(l("host/file"), None);
        let x = l("disk.img:/etc/fstab").unwrap_or_else(|| unreachable!());
        assert_eq!(
            (x.image.to_str(), x.partition, &x.path[..]),
            (Some("disk.img"), None, &b"/etc/fstab"[..])
        );
        let x = l("a/b@c.img@15:").unwrap_or_else(|| unreachable!());
        assert_eq!(
            (x.image.to_str(), x.partition, &x.path[..]),
            (Some("a/b@c.img"), Some(15), &b"/"[..])
        );
        assert_eq!(x.display(), "a/b@c.img@15:/");
        let x = l("x@:/a").unwrap_or_else(|| unreachable!());
        assert_eq!((x.image.to_str(), x.partition), (Some("x@"), None));
        let x = l("@1:/a").unwrap_or_else(|| unreachable!());
        assert_eq!((x.image.to_str(), x.partition), (Some("@1"), None));
        let x = l("x@99999999999:/a").unwrap_or_else(|| unreachable!());
        assert_eq!(x.partition, None, "not a u32: part of the name");
        let x = Location::parse_image(OsStr::new("d.img@1"));
        assert_eq!(
            (x.image.to_str(), x.partition, &x.path[..]),
            (Some("d.img"), Some(1), &b"/"[..])
        );
    }
}
