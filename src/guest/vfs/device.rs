//! An instance's VFS: its mount table's devices, each a volume image (or a
//! partition's byte range of it) opened when first used.
//!
//! The filesystems of several partitions of one image share one open image
//! file, so one command holds one lock per image. Opened for writing, an
//! image is held under its exclusive lock (the blockdev layer takes it);
//! opened for reading, a shared lock is taken on it beside, so a reader
//! waits for a writer (a file command, or an online grow) to finish its
//! commit and never sees half of it.

use super::{DeviceSpec, MountSpec, OpenedFs, Vfs, perm::Creds};
use crate::blockdev::image::Access;
use crate::blockdev::{BlockDevice, Error as DevError, ImageFile, Slice, WritePlan};
use crate::ec2::model::Mount;
use crate::fs::node::{ErrorKind, NodeError, Timespec};
use crate::guest::instance::GuestDisk;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// One open image file shared by the filesystems on it.
#[derive(Debug, Clone)]
pub struct SharedImage {
    img: Rc<RefCell<ImageFile>>,
    _shared_lock: Option<Rc<nix::fcntl::Flock<std::fs::File>>>,
}

impl SharedImage {
    /// Opens a volume image (a regular file, never through a link): for
    /// writing under its exclusive lock, or for reading under a shared one.
    pub fn open(path: &Path, access: Access) -> Result<SharedImage, DevError> {
        let img = crate::ec2::store::open_volume_image(path, access)?;
        let lock = if access == Access::ReadOnly {
            let f = std::fs::File::open(path).map_err(|e| DevError::io(path, "open", e))?;
            Some(Rc::new(crate::blockdev::lock::lock(
                f,
                path,
                crate::blockdev::lock::Kind::Shared,
            )?))
        } else {
            None
        };
        Ok(SharedImage {
            img: Rc::new(RefCell::new(img)),
            _shared_lock: lock,
        })
    }
}

impl BlockDevice for SharedImage {
    fn size(&self) -> u64 {
        self.img.borrow().size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.img.borrow().read_at(offset, buf)
    }

    fn commit(&mut self, plan: &dyn WritePlan) -> Result<(), DevError> {
        self.img.borrow_mut().commit(plan)
    }

    fn data_ranges(&self, range: Range<u64>) -> Result<Vec<Range<u64>>, DevError> {
        self.img.borrow().data_ranges(range)
    }

    fn name(&self) -> String {
        self.img.borrow().name()
    }
}

/// Builds the VFS of an instance.
#[derive(Debug)]
pub struct InstanceVfs;

impl InstanceVfs {
    /// The VFS of a process in an instance with `disks` and `mounts`
    /// (oldest first). `access` says whether the command may write (then
    /// every image it reaches is opened for writing, under its lock).
    pub fn build(
        disks: &[GuestDisk],
        mounts: &[Mount],
        access: Access,
        creds: Creds,
        umask: u16,
        cwd: &[u8],
        now: Timespec,
    ) -> Vfs {
        let images: Rc<RefCell<HashMap<PathBuf, SharedImage>>> = Rc::default();
        let mut keys: Vec<(String, Option<u32>)> = Vec::new();
        let mut devices: Vec<DeviceSpec> = Vec::new();
        let mut table: Vec<MountSpec> = Vec::new();
        for m in mounts {
            let key = (m.volume_id.clone(), m.partition);
            let device = match keys.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    keys.push(key);
                    devices.push(device_for(disks, m, access, images.clone()));
                    devices.len() - 1
                }
            };
            table.push(MountSpec {
                target: m.target.clone(),
                device,
                read_only: m.options.split(',').any(|o| o == "ro"),
            });
        }
        Vfs::new(devices, table, creds, umask, cwd, now)
    }
}

fn device_for(
    disks: &[GuestDisk],
    m: &Mount,
    access: Access,
    images: Rc<RefCell<HashMap<PathBuf, SharedImage>>>,
) -> DeviceSpec {
    let gone = |what: String| DeviceSpec {
        major: 0,
        minor: 0,
        opener: Box::new(move || Err(NodeError::with(ErrorKind::Io, what))),
    };
    let Some(d) = disks.iter().find(|d| d.view.volume_id == m.volume_id) else {
        return gone(format!("{} is no longer attached", m.source));
    };
    let (major, minor, off, len) = match m.partition {
        Some(n) => match d.parts.iter().find(|p| p.number == n) {
            Some(p) => (p.major, p.minor, p.start, p.len),
            None => return gone(format!("{} has no partition {n}", d.view.name)),
        },
        None => (d.view.major, d.view.minor, 0, d.size),
    };
    let path = d.view.image.clone();
    DeviceSpec {
        major,
        minor,
        opener: Box::new(move || {
            let io = |e: DevError| NodeError::with(ErrorKind::Io, e);
            let img = {
                let mut cache = images.borrow_mut();
                match cache.get(&path) {
                    Some(i) => i.clone(),
                    None => {
                        let i = SharedImage::open(&path, access).map_err(io)?;
                        cache.insert(path.clone(), i.clone());
                        i
                    }
                }
            };
            let probe = Slice::new(img.clone(), off, len).map_err(io)?;
            let uuid = crate::fs::probe(probe)
                .ok()
                .flatten()
                .map(|i| i.uuid)
                .unwrap_or_default();
            let slice = Slice::new(img, off, len).map_err(io)?;
            let (kind, fs) = crate::fs::open_files(slice, access == Access::ReadWrite)?;
            let fsid = fsid_of(kind, &uuid, major, minor);
            Ok(OpenedFs { kind, fs, fsid })
        }),
    }
}

/// statfs's `f_fsid` as the kernel computes it: ext4 xors the two
/// little-endian halves of the UUID; XFS encodes the device number.
pub fn fsid_of(kind: crate::fs::FsKind, uuid: &str, major: u32, minor: u32) -> u64 {
    match kind {
        crate::fs::FsKind::Ext4 => {
            let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect();
            if bytes.len() != 16 {
                return 0;
            }
            let half = |r: std::ops::Range<usize>| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[r]);
                u64::from_le_bytes(b)
            };
            half(0..8) ^ half(8..16)
        }
        // FAT, like XFS, encodes the device number.
        // Never mounted.
        crate::fs::FsKind::Swap => 0,
        crate::fs::FsKind::Xfs | crate::fs::FsKind::Vfat => {
            let (ma, mi) = (u64::from(major), u64::from(minor));
            (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12)
        }
    }
}
