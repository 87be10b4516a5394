//! The guest's VFS: the files of an instance's mounted filesystems seen
//! through paths, as the guest kernel's VFS presents them to a process.
//!
//! A [`Vfs`] is a mount table (targets in mount order, each naming a
//! device) over filesystems reached through the filesystem-neutral
//! [`FileSystem`] trait, plus the calling process: its credentials, umask,
//! working directory and the time to stamp on changes (the caller owns the
//! clock). Filesystems are opened on first use, so a command touches only
//! the images its paths lead to.
//!
//! Paths are walked as Linux's `namei` walks them ([`walk`]): absolute
//! from the root mount, relative from the working directory; the most
//! recent mount on a path hides what is below it (a mount point need not
//! exist as a directory underneath: the model records mounts without one);
//! `..` is the physical parent, across mount points, and stays at `/`;
//! symlinks are followed everywhere but in the last component when asked
//! not to, at most 40 in one walk (`ELOOP`); every directory passed
//! through needs search permission. Permissions are checked as the
//! kernel's `generic_permission` does ([`perm`]): root passes read and
//! write checks and may execute a file only when some execute bit is set;
//! others get the owner's, the group's or everyone's bits; a sticky
//! directory lets only the owner of a file (or of the directory) remove or
//! rename it. Read-only mounts refuse changes with `EROFS`.
//!
//! The operations ([`ops`]) follow the system calls a command makes
//! (`stat`, `lstat`, `open` with its flags, `read`, `write`, `ftruncate`,
//! `fallocate`, `mkdir`, `unlink`, `rmdir`, `rename`, `link`, `symlink`,
//! `getdents`, `chmod`, `chown`, `utimensat`, `statfs`), with the kernel's
//! order of checks, so a command gets the errno the kernel would give it.
//! Changes are staged by each filesystem; [`Vfs::sync`] commits every
//! changed filesystem (one crash-safe batch each).
//!
//! One writer per image: an instance's VFS opened for writing holds each
//! image it opens read-write, under the image's exclusive lock, until it is
//! dropped; one opened for reading holds a shared lock on each image it
//! reads. So a file command and an online grow (or another file command) of
//! the same image run one after the other, never interleaved.

mod device;
pub mod ops;
pub mod perm;
pub mod walk;

pub use device::{InstanceVfs, SharedImage};
pub use ops::{OpenFlags, Opened, TimeSet};
pub use perm::Creds;

use crate::fs::node::Timespec;
use crate::fs::node::{Attr, Cred, Ctx, ErrorKind, FileSystem, Ino, NodeError, NodeResult};
use crate::fs::{FsKind, StatFs};

/// Where a file is: which device of the table, and its inode there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    /// Index of the device in the VFS.
    pub dev: usize,
    /// Inode number on that device's filesystem.
    pub ino: Ino,
}

/// What `stat` returns: the inode's attributes and the device holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Where it is.
    pub loc: Loc,
    /// Its attributes.
    pub attr: Attr,
    /// `st_dev`'s major number (the guest's: 202 for Xen disks, 259 NVMe).
    pub major: u32,
    /// `st_dev`'s minor number.
    pub minor: u32,
}

impl Stat {
    /// `st_dev` as glibc's `makedev` encodes it.
    pub fn st_dev(&self) -> u64 {
        makedev(self.major, self.minor)
    }
}

/// glibc's `makedev`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// The device index of the directories the VFS makes up on the way to a
/// mount point whose parent directories the filesystem below lacks (the
/// instance model records mounts without making their directories):
/// root-owned, mode 0755, empty but for the way to the mount, and
/// read-only.
pub const VIRTUAL: usize = usize::MAX;

/// The inode number shown for a made-up directory (stable per path).
pub(crate) fn virtual_ino(path: &[u8]) -> u64 {
    // FNV-1a, kept below 2^32 like ext4's inode numbers.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & 0x7fff_ffff) | 0x4000_0000
}

/// A filesystem the VFS opened.
pub struct OpenedFs {
    /// Its type.
    pub kind: FsKind,
    /// Its files.
    pub fs: Box<dyn FileSystem>,
    /// statfs's `f_fsid` as the kernel computes it (ext4: the two halves
    /// of the UUID xor'ed; XFS: the device number).
    pub fsid: u64,
}

/// How a filesystem is opened when the VFS first needs it.
pub type Opener = Box<dyn FnOnce() -> NodeResult<OpenedFs>>;

/// One block device holding a filesystem.
pub struct DeviceSpec {
    /// The guest's major number.
    pub major: u32,
    /// The guest's minor number.
    pub minor: u32,
    /// Opens its filesystem.
    pub opener: Opener,
}

/// One entry of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The mount point: an absolute path, normalized (`/`, `/var/lib`).
    pub target: String,
    /// The device (index in the device list).
    pub device: usize,
    /// Mounted read-only.
    pub read_only: bool,
}

enum DevState {
    Closed(Opener),
    Open {
        kind: FsKind,
        fs: Box<dyn FileSystem>,
        fsid: u64,
    },
    Failed(ErrorKind, String),
    Opening,
}

struct Device {
    major: u32,
    minor: u32,
    state: DevState,
    dirty: bool,
}

/// The VFS of one process inside an instance (see the module
/// documentation).
pub struct Vfs {
    devices: Vec<Device>,
    mounts: Vec<MountSpec>,
    creds: Creds,
    umask: u16,
    cwd: Vec<u8>,
    now: Timespec,
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs")
            .field("mounts", &self.mounts)
            .field("creds", &self.creds)
            .field("umask", &self.umask)
            .field("cwd", &String::from_utf8_lossy(&self.cwd))
            .finish()
    }
}

impl Vfs {
    /// A VFS over `devices` mounted as `mounts` (oldest first), for a
    /// process with `creds` and `umask` in the working directory `cwd` (an
    /// absolute path), stamping changes with `now`.
    pub fn new(
        devices: Vec<DeviceSpec>,
        mounts: Vec<MountSpec>,
        creds: Creds,
        umask: u16,
        cwd: &[u8],
        now: Timespec,
    ) -> Vfs {
        Vfs {
            devices: devices
                .into_iter()
                .map(|d| Device {
                    major: d.major,
                    minor: d.minor,
                    state: DevState::Closed(d.opener),
                    dirty: false,
                })
                .collect(),
            mounts: mounts
                .into_iter()
                .map(|mut m| {
                    m.target = normalize(&m.target);
                    m
                })
                .collect(),
            creds,
            umask: umask & 0o777,
            cwd: if cwd.starts_with(b"/") {
                cwd.to_vec()
            } else {
                b"/".to_vec()
            },
            now,
        }
    }

    /// The caller's credentials.
    pub fn creds(&self) -> &Creds {
        &self.creds
    }

    /// The umask new files are created with.
    pub fn umask(&self) -> u16 {
        self.umask
    }

    /// The working directory.
    pub fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// The time changes are stamped with.
    pub fn now(&self) -> Timespec {
        self.now
    }

    /// The mount table, oldest first.
    pub fn mounts(&self) -> &[MountSpec] {
        &self.mounts
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            cred: Cred {
                uid: self.creds.uid,
                gid: self.creds.gid,
            },
            now: self.now,
        }
    }

    /// The attributes of a made-up directory.
    pub(crate) fn virtual_attr(&self, ino: u64) -> Attr {
        Attr {
            ino,
            kind: crate::fs::node::FileType::Directory,
            perm: 0o755,
            nlink: 2,
            uid: 0,
            gid: 0,
            size: 4096,
            blocks: 0,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
            crtime: self.now,
            rdev: 0,
            blksize: 4096,
        }
    }

    /// The filesystem of device `dev`, opened on first use.
    fn fs(&mut self, dev: usize) -> NodeResult<&mut Box<dyn FileSystem>> {
        if dev == VIRTUAL {
            return Err(NodeError::with(
                ErrorKind::ReadOnly,
                "a directory on the way to a mount point, which the filesystem below does not have",
            ));
        }
        let d = self
            .devices
            .get_mut(dev)
            .ok_or_else(|| NodeError::new(ErrorKind::NotFound))?;
        if let DevState::Closed(_) = d.state {
            let DevState::Closed(open) = std::mem::replace(&mut d.state, DevState::Opening) else {
                return Err(NodeError::new(ErrorKind::Io));
            };
            d.state = match open() {
                Ok(o) => DevState::Open {
                    kind: o.kind,
                    fs: o.fs,
                    fsid: o.fsid,
                },
                Err(e) => DevState::Failed(e.kind(), e.to_string()),
            };
        }
        match &mut d.state {
            DevState::Open { fs, .. } => Ok(fs),
            DevState::Failed(kind, why) => Err(NodeError::with(*kind, why.clone())),
            DevState::Closed(_) | DevState::Opening => Err(NodeError::new(ErrorKind::Io)),
        }
    }

    /// The filesystem of `dev` for a change: marks it to be synced.
    fn fs_mut(&mut self, dev: usize) -> NodeResult<&mut Box<dyn FileSystem>> {
        self.fs(dev)?;
        if let Some(d) = self.devices.get_mut(dev) {
            d.dirty = true;
        }
        self.fs(dev)
    }

    /// The type of the filesystem on `dev` (opening it).
    pub fn kind(&mut self, dev: usize) -> NodeResult<FsKind> {
        self.fs(dev)?;
        match self.devices.get(dev).map(|d| &d.state) {
            Some(DevState::Open { kind, .. }) => Ok(*kind),
            _ => Err(NodeError::new(ErrorKind::Io)),
        }
    }

    /// statfs's `f_fsid` of the filesystem on `dev` (opening it).
    pub fn fsid(&mut self, dev: usize) -> NodeResult<u64> {
        self.fs(dev)?;
        match self.devices.get(dev).map(|d| &d.state) {
            Some(DevState::Open { fsid, .. }) => Ok(*fsid),
            _ => Err(NodeError::new(ErrorKind::Io)),
        }
    }

    /// The mount point of device `dev` (its most recent mount).
    pub fn mount_point(&self, dev: usize) -> Option<&str> {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.device == dev)
            .map(|m| m.target.as_str())
    }

    fn stat_of(&self, loc: Loc, attr: Attr) -> Stat {
        let (major, minor) = self
            .devices
            .get(loc.dev)
            .map_or((0, 0), |d| (d.major, d.minor));
        Stat {
            loc,
            attr,
            major,
            minor,
        }
    }

    /// The attributes of an inode.
    pub fn getattr(&mut self, loc: Loc) -> NodeResult<Stat> {
        if loc.dev == VIRTUAL {
            let attr = self.virtual_attr(loc.ino);
            return Ok(self.stat_of(loc, attr));
        }
        let attr = self.fs(loc.dev)?.getattr(loc.ino)?;
        Ok(self.stat_of(loc, attr))
    }

    /// statfs(2) of the filesystem holding `loc`.
    pub fn statfs_of(&mut self, loc: Loc) -> NodeResult<StatFs> {
        self.fs(loc.dev)?.statfs()
    }

    /// Whether the mount holding `loc`'s device is read-only (the most
    /// recent mount of the device decides).
    pub fn read_only(&self, dev: usize) -> bool {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.device == dev)
            .is_some_and(|m| m.read_only)
    }

    /// Commits every filesystem changed through this VFS. Every changed
    /// filesystem is tried; the first failure is returned.
    pub fn sync(&mut self) -> NodeResult<()> {
        let mut first = None;
        for d in &mut self.devices {
            if !d.dirty {
                continue;
            }
            if let DevState::Open { fs, .. } = &mut d.state {
                match fs.sync() {
                    Ok(()) => d.dirty = false,
                    Err(e) => {
                        if first.is_none() {
                            first = Some(e);
                        }
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// `/var//lib/./x/` → `/var/lib/x`, lexically (mount targets only).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests;
