//! The XFS file write path (`xfs::XfsFiles`) against xfs_repair and the
//! kernel: trees written by ebsim are repair-clean, the kernel reads them
//! back exactly (content, size, mode, owner, links, targets, statfs), the
//! kernel's own additions are read back by ebsim; full disks stop where
//! the kernel stops; an interrupted sync leaves the image as it was or as
//! a clean run leaves it.

mod common;
mod xfs_util;

use common::{require_tools, run, stderr, stdout};
use ebsim::blockdev::{BlockDevice, ImageFile, image::Access};
use ebsim::fs::node::{
    Cred, Ctx, ErrorKind, FallocateMode, FileSystem, FileType, Ino, RenameFlags, SetAttr, Timespec,
};
use ebsim::fs::xfs::{self, XfsFiles};
use std::path::Path;
use xfs_util::*;

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn ctx() -> Ctx {
    Ctx {
        cred: Cred::ROOT,
        now: Timespec {
            sec: 1_700_000_000,
            nsec: 123_456_789,
        },
    }
}

/// Makes an XFS of `size` bytes on a new sparse file with ebsim's mkfs.
fn ebsim_mkfs(path: &Path, size: u64) {
    let mut f = ImageFile::create(path, size).expect("create image");
    let opts = xfs::mkfs::MkfsOptions {
        uuid: *uuid::Uuid::new_v4().as_bytes(),
        label: Vec::new(),
        dblocks: None,
        times: xfs::inode::MkfsTimes {
            root: xfs::inode::Timestamp::EPOCH,
            rbm: xfs::inode::Timestamp::EPOCH,
            rsum: xfs::inode::Timestamp::EPOCH,
        },
    };
    let plan = xfs::mkfs::plan(&f, &opts).expect("plan");
    xfs::mkfs::apply(&mut f, &plan).expect("mkfs");
}

fn open(path: &Path) -> XfsFiles<ImageFile> {
    XfsFiles::open(ImageFile::open(path, Access::ReadWrite).expect("open image")).expect("open xfs")
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn read_all<F: FileSystem>(fs: &F, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(ino).expect("getattr").size as usize;
    let mut buf = vec![0u8; size];
    let n = fs.read(ino, 0, &mut buf).expect("read");
    assert_eq!(n, size);
    buf
}

fn assert_repair_clean(img: &Path) {
    let (rc, out) = repair(img);
    assert_eq!(rc, 0, "xfs_repair -n: {out}");
}

#[test]
fn smoke_tree_is_repair_clean() {
    if !require_tools(&["xfs_repair"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    ebsim_mkfs(&img, G);
    let c = ctx();
    {
        let mut fs = open(&img);
        let root = fs.root();
        let d = fs.mkdir(c, root, b"dir", 0o755).expect("mkdir").ino;
        let f = fs
            .mknod(c, d, b"file", FileType::Regular, 0o644, 0)
            .expect("create")
            .ino;
        let data = pattern(1, 100_000);
        assert_eq!(fs.write(c, f, 0, &data).expect("write"), data.len());
        assert_eq!(read_all(&fs, f), data);
        let s = fs
            .symlink(c, root, b"link", b"dir/file")
            .expect("symlink")
            .ino;
        assert_eq!(fs.readlink(s).expect("readlink"), b"dir/file");
        let long = vec![b'x'; 600];
        let s2 = fs.symlink(c, root, b"long", &long).expect("symlink").ino;
        assert_eq!(fs.readlink(s2).expect("readlink"), long);
        fs.sync().expect("sync");
    }
    assert_repair_clean(&img);
    let fs = open(&img);
    let root = fs.root();
    let d = fs.lookup(root, b"dir").expect("lookup").ino;
    let f = fs.lookup(d, b"file").expect("lookup").ino;
    assert_eq!(read_all(&fs, f), pattern(1, 100_000));
}
