//! A read-only FUSE filesystem of partitions: its root holds one regular
//! file per partition of a set of disk images (`xvda1`, `nvme0n1p1`), whose
//! bytes are the partition's bytes in the image, so real programs (`file
//! -s`, `od`, `cmp`, `sha256sum`, `dd if=`) can read a partition as they
//! read a partition's block device.
//!
//! It follows the partition table as the kernel's re-read does: every
//! lookup, getattr and open reads the disk's table again (a few sectors),
//! so after a partition is grown its file has the new length, a deleted
//! partition's name is gone and a new one is found. An open file reads
//! the range the table gave at open time, never past the partition's end.
//! Reads go through the image layer's read path, so they see what is
//! committed to the image (a filesystem served over FUSE shows here what
//! its server has written back, as a raw read of a mounted filesystem's
//! device sees what the kernel has written back).
//!
//! Nothing is ever written: the mount is read-only and an open for writing
//! is refused with `EROFS` (a raw write under a served filesystem would
//! bypass its server and the image's undo log).

use crate::blockdev::BlockDevice;
use crate::blockdev::image::{Access, ImageFile};
use crate::partition::{self, SECTOR};
use fuser::{
    Errno, FileAttr, FileHandle, FopenFlags, Generation, INodeNo, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Attributes and entries are never cached: the table may change at any
/// time.
const TTL: Duration = Duration::ZERO;
/// The largest read answered at once.
const MAX_READ: u32 = 1 << 20;

/// One disk whose partitions are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The disk's kernel name (`xvda`, `nvme1n1`).
    pub name: String,
    /// Its image.
    pub image: PathBuf,
}

/// The kernel name of partition `part` of `disk` (`xvda1`, `nvme0n1p1`).
pub fn partition_name(disk: &str, part: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{part}")
    } else {
        format!("{disk}{part}")
    }
}

/// The disks shown, shared with whoever attaches and detaches them.
pub type DiskList = Arc<Mutex<Vec<Disk>>>;

/// Where a partition is: its image, first byte and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The disk's image.
    pub image: PathBuf,
    /// First byte of the partition in the image.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The partitions of `image` (a disk named `disk`) now, in number order:
/// name, first byte, length. A partition that does not fit the image is
/// left out, as the kernel does.
pub fn scan(disk: &str, image: &std::path::Path) -> Vec<(String, u64, u64)> {
    let Ok(img) = ImageFile::open(image, Access::ReadOnly) else {
        return Vec::new();
    };
    let size = img.size();
    let Some(label) = partition::probe(&img).ok().and_then(|p| p.label) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, first, sectors) in label.partitions() {
        let (Some(start), Some(len)) = (first.checked_mul(SECTOR), sectors.checked_mul(SECTOR))
        else {
            continue;
        };
        if len == 0 || start.saturating_add(len) > size {
            continue;
        }
        out.push((partition_name(disk, n), start, len));
    }
    out
}

struct Open {
    img: ImageFile,
    start: u64,
    len: u64,
}

#[derive(Default)]
struct State {
    /// Inode numbers by name (inode = index + 2), stable for the mount's
    /// life.
    names: Vec<String>,
    open: HashMap<u64, Open>,
    next_fh: u64,
}

/// The filesystem (give it to [`mount`]).
pub struct PartitionsFs {
    disks: DiskList,
    state: Mutex<State>,
    born: SystemTime,
}

impl PartitionsFs {
    /// Shows the partitions of `disks` (which may change while mounted).
    pub fn new(disks: DiskList) -> Self {
        PartitionsFs {
            disks,
            state: Mutex::new(State::default()),
            born: SystemTime::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn disks(&self) -> Vec<Disk> {
        self.disks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where partition `name` is now, reading only its disk's table.
    fn locate(&self, name: &str) -> Option<Located> {
        for d in self.disks() {
            let Some(rest) = name.strip_prefix(d.name.as_str()) else {
                continue;
            };
            let digits = rest.strip_prefix('p').unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some((_, start, len)) = scan(&d.name, &d.image)
                .into_iter()
                .find(|(n, _, _)| n == name)
            {
                return Some(Located {
                    image: d.image,
                    start,
                    len,
                });
            }
        }
        None
    }

    fn ino_of(st: &mut State, name: &str) -> INodeNo {
        let i = match st.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                st.names.push(name.to_string());
                st.names.len() - 1
            }
        };
        INodeNo(i as u64 + 2)
    }

    fn name_of(st: &State, ino: INodeNo) -> Option<String> {
        let i = usize::try_from(ino.0.checked_sub(2)?).ok()?;
        st.names.get(i).cloned()
    }

    fn file_attr(&self, ino: INodeNo, size: u64) -> FileAttr {
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: self.born,
            mtime: self.born,
            ctime: self.born,
            crtime: self.born,
            kind: fuser::FileType::RegularFile,
            perm: 0o660,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn root_attr(&self) -> FileAttr {
        FileAttr {
            ino: INodeNo::ROOT,
            size: 0,
            blocks: 0,
            atime: self.born,
            mtime: self.born,
            ctime: self.born,
            crtime: self.born,
            kind: fuser::FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

fn is_write(flags: OpenFlags) -> bool {
    // O_WRONLY = 1, O_RDWR = 2, O_TRUNC = 0o1000.
    flags.0 & (1 | 2 | 0o1000) != 0
}

impl fuser::Filesystem for PartitionsFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        match self.locate(name) {
            Some(l) => {
                let ino = Self::ino_of(&mut self.lock(), name);
                reply.entry(&TTL, &self.file_attr(ino, l.len), Generation(0));
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT {
            return reply.attr(&TTL, &self.root_attr());
        }
        let name = Self::name_of(&self.lock(), ino);
        match name.and_then(|n| self.locate(&n)) {
            Some(l) => reply.attr(&TTL, &self.file_attr(ino, l.len)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if is_write(flags) {
            return reply.error(Errno::EROFS);
        }
        let name = Self::name_of(&self.lock(), ino);
        let Some(l) = name.and_then(|n| self.locate(&n)) else {
            return reply.error(Errno::ENOENT);
        };
        let Ok(img) = ImageFile::open(&l.image, Access::ReadOnly) else {
            return reply.error(Errno::EIO);
        };
        let mut st = self.lock();
        st.next_fh += 1;
        let fh = st.next_fh;
        st.open.insert(
            fh,
            Open {
                img,
                start: l.start,
                len: l.len,
            },
        );
        // No FOPEN_KEEP_CACHE: each open drops what the kernel cached of
        // the file (the bytes may have changed since).
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.lock();
        let Some(o) = st.open.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        if offset >= o.len {
            return reply.data(&[]);
        }
        let n = u64::from(size.min(MAX_READ)).min(o.len - offset);
        let Ok(n) = usize::try_from(n) else {
            return reply.error(Errno::EIO);
        };
        let mut buf = vec![0u8; n];
        match o.img.read_at(o.start.saturating_add(offset), &mut buf) {
            Ok(()) => reply.data(&buf),
            Err(_) => reply.error(Errno::EIO),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().open.remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let mut names: Vec<String> = vec![".".into(), "..".into()];
        for d in self.disks() {
            names.extend(scan(&d.name, &d.image).into_iter().map(|(n, _, _)| n));
        }
        let mut st = self.lock();
        for (i, n) in names.iter().enumerate().skip(offset as usize) {
            let (ino, kind) = if i < 2 {
                (INodeNo::ROOT, fuser::FileType::Directory)
            } else {
                (Self::ino_of(&mut st, n), fuser::FileType::RegularFile)
            };
            if reply.add(ino, i as u64 + 1, kind, OsStr::new(n)) {
                break;
            }
        }
        reply.ok();
    }
}

/// A live mount of a [`PartitionsFs`], served on its own thread.
#[derive(Debug)]
pub struct Served {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The disks shown (change them to attach or detach a disk).
    pub disks: DiskList,
}

/// Mounts the partitions of `disks` read-only at `mountpoint` and serves
/// them on a new thread until unmounted.
pub fn mount(mountpoint: &std::path::Path, disks: Vec<Disk>) -> Result<Served, super::ServeError> {
    let list: DiskList = Arc::new(Mutex::new(disks));
    let flags = super::kernel::MountFlags {
        read_only: true,
        allow_other: true,
        nosuid: true,
        nodev: true,
        noexec: true,
        noatime: true,
        fsname: "ebsim-partitions".into(),
        root_mode: 0o040555,
    };
    let fd = super::kernel::mount(mountpoint, &flags)?;
    let mut cfg = fuser::Config::default();
    cfg.n_threads = Some(1);
    let session = match fuser::Session::from_fd(
        PartitionsFs::new(list.clone()),
        fd,
        fuser::SessionACL::All,
        cfg,
    ) {
        Ok(s) => s,
        Err(source) => {
            let _ = super::kernel::unmount(mountpoint, true);
            return Err(super::ServeError::Io {
                what: format!("FUSE handshake on {}", mountpoint.display()),
                source,
            });
        }
    };
    std::thread::spawn(move || session.run());
    Ok(Served {
        mountpoint: mountpoint.to_path_buf(),
        disks: list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernel() {
        assert_eq!(partition_name("xvda", 1), "xvda1");
        assert_eq!(partition_name("nvme0n1", 12), "nvme0n1p12");
    }

    #[test]
    fn writes_are_recognised() {
        assert!(!is_write(OpenFlags(0)));
        assert!(is_write(OpenFlags(1)));
        assert!(is_write(OpenFlags(2)));
        assert!(is_write(OpenFlags(0o1000)));
    }

    #[test]
    fn a_missing_image_has_no_partitions() {
        assert!(scan("xvda", std::path::Path::new("/nonexistent/ebsim-image")).is_empty());
    }
}
