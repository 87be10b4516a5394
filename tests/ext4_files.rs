//! The native ext4 file layer (issue 11): differential against e2fsck and
//! the kernel.

mod common;
mod ext4_files_util;
mod ext4_util;

use common::require_tools;
use ebsim::blockdev::ImageFile;
use ebsim::blockdev::image::Access;
use ebsim::fs::ext4::files::Ext4Files;
use ebsim::fs::node::{FallocateMode, FileSystem, FileType, RenameFlags, SetAttr};
use ext4_files_util::*;
use std::path::Path;

fn open(img: &Path) -> Ext4Files<ImageFile> {
    let dev = ImageFile::open(img, Access::ReadWrite).expect("open image");
    Ext4Files::open(dev).expect("open ext4")
}

#[test]
fn smoke_small() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("s.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    let ctx = root_ctx();
    let mut fs = open(&img);
    let root = fs.root();
    let f = fs
        .mknod(ctx, root, b"hello", FileType::Regular, 0o644, 0)
        .expect("create");
    assert_eq!(
        fs.write(ctx, f.ino, 0, b"hello world\n").expect("write"),
        12
    );
    let d = fs.mkdir(ctx, root, b"dir", 0o755).expect("mkdir");
    let big = fs
        .mknod(ctx, d.ino, b"big", FileType::Regular, 0o600, 0)
        .expect("create");
    let data = bytes(7, 3 << 20);
    fs.write(ctx, big.ino, 0, &data).expect("write big");
    fs.symlink(ctx, root, b"fast", b"dir/big").expect("symlink");
    fs.symlink(ctx, root, b"slow", &[b'x'; 200])
        .expect("symlink");
    fs.sync().expect("sync");
    drop(fs);
    assert_e2fsck_silent(&img);
    let fs = open(&img);
    let m = fs_manifest(&fs);
    assert_eq!(m["/hello"].size, 12);
    assert_eq!(
        m["/dir/big"].content,
        hex(<sha2::Sha256 as sha2::Digest>::digest(&data))
    );
    assert_eq!(m["/slow"].content.len(), 200);
    let _ = (
        FallocateMode::PunchHole,
        RenameFlags::default(),
        SetAttr::default(),
    );
}
