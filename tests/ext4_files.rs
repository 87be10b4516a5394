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
    let m = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
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

/// The whole round trip on an image: ebsim writes the tree and syncs;
/// e2fsck is silent; the kernel mounts it and sees the same manifest and
/// statfs; the kernel writes more; ebsim reads the kernel's result, writes
/// again; e2fsck is silent again; a read-only kernel mount agrees again.
fn round_trip(img: &Path, spec: TreeSpec) {
    let _lock = common::mount_lock();
    let mut fs = open(img);
    write_tree(&mut fs, spec);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let ours_statfs = fs.statfs().expect("statfs");
    drop(fs);
    assert_e2fsck_silent(img);
    // The kernel sees what ebsim wrote.
    let m = RwMount::new(img);
    let kernel = host_manifest(m.path());
    assert_manifests_equal(&ours, &kernel, "ebsim's tree through the kernel");
    let s = m.statvfs();
    assert_eq!(
        s,
        [
            ours_statfs.frsize,
            ours_statfs.blocks,
            ours_statfs.bfree,
            ours_statfs.bavail,
            ours_statfs.files,
            ours_statfs.ffree
        ],
        "statvfs of the mount vs ebsim's statfs"
    );
    // The kernel writes more.
    kernel_writes(m.path(), spec);
    common::sh("sync");
    let kernel = host_manifest(m.path());
    let kernel_statfs = m.statvfs();
    m.umount();
    assert_e2fsck_silent(img);
    // ebsim reads the kernel's result and writes again.
    let mut fs = open(img);
    let back = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    assert_manifests_equal(&kernel, &back, "the kernel's writes read by ebsim");
    let st = fs.statfs().expect("statfs");
    assert_eq!(
        [
            st.frsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree
        ],
        kernel_statfs,
        "ebsim's statfs of the kernel's result"
    );
    ebsim_writes_again(&mut fs);
    fs.sync().expect("sync");
    let ours = fs_manifest(&fs, &|i| fs.data_ranges(i).expect("ranges"));
    let st = fs.statfs().expect("statfs");
    drop(fs);
    assert_e2fsck_silent(img);
    let m = ext4_util::RoMount::new(img);
    assert_manifests_equal(
        &ours,
        &host_manifest(m.dir.path()),
        "second round through the kernel",
    );
    let k = m.stat_f();
    assert_eq!(
        k[..3],
        [st.frsize, st.blocks, st.bfree],
        "statfs after the second round"
    );
}

/// What the kernel adds: files and directories, an append to one of
/// ebsim's files, a write into the middle of the preallocated file, 50
/// entries in ebsim's big directory, an indexed (htree) directory, links,
/// a rename and a removal.
fn kernel_writes(root: &Path, spec: TreeSpec) {
    use std::io::{Seek, SeekFrom, Write};
    let k = root.join("kernel/a/b/c");
    std::fs::create_dir_all(&k).expect("mkdir");
    for i in 0..20 {
        std::fs::write(k.join(format!("k{i}")), bytes(100 + i, 5000 * i as usize)).expect("write");
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("mib"))
        .expect("open");
    f.write_all(&bytes(9, 1000)).expect("append");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("prealloc"))
        .expect("open");
    f.seek(SeekFrom::Start(spec.prealloc / 2 + 12345))
        .expect("seek");
    f.write_all(&bytes(10, 1 << 20))
        .expect("write into unwritten");
    drop(f);
    for i in 0..50 {
        std::fs::write(root.join(format!("many/kernel-{i}")), b"k").expect("write");
    }
    let kdir = root.join("kdir");
    std::fs::create_dir(&kdir).expect("mkdir");
    for i in 0..400 {
        std::fs::write(kdir.join(format!("kernel-file-number-{i:04}")), b"x").expect("write");
    }
    std::fs::hard_link(root.join("one"), root.join("kernel/one-link")).expect("link");
    std::os::unix::fs::symlink("../mib", root.join("kernel/link")).expect("symlink");
    std::fs::rename(root.join("d1/page"), root.join("kernel/page")).expect("rename");
    std::fs::remove_file(root.join("d3moved/odd")).expect("rm");
}

/// ebsim again: into the kernel's htree directory (un-indexed), removals
/// of kernel files, a write into the preallocated file, new files.
fn ebsim_writes_again(fs: &mut Ext4Files<ImageFile>) {
    let ctx = root_ctx();
    let kdir = resolve(fs, "/kdir");
    for i in 0..30 {
        let a = fs
            .mknod(
                ctx,
                kdir,
                format!("ebsim-{i}").as_bytes(),
                FileType::Regular,
                0o644,
                0,
            )
            .expect("create in htree dir");
        fs.write(ctx, a.ino, 0, &bytes(200 + i, 3000))
            .expect("write");
    }
    for i in (0..400).step_by(3) {
        fs.unlink(ctx, kdir, format!("kernel-file-number-{i:04}").as_bytes())
            .expect("unlink");
    }
    let c = resolve(fs, "/kernel/a/b/c");
    fs.unlink(ctx, c, b"k3").expect("unlink");
    let pre = resolve(fs, "/prealloc");
    let size = fs.getattr(pre).expect("stat").size;
    fs.write(ctx, pre, size / 3, &bytes(11, 300_000))
        .expect("write into unwritten");
    let r = fs.root();
    mkfile(fs, r, "after-kernel", &bytes(12, 77_777));
}

#[test]
fn round_trip_64m_ebsim_mkfs() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, 64 << 20);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 16 << 20,
            many: 3100,
        },
    );
}

const GIB: u64 = 1 << 30;

#[test]
fn round_trip_1g_ebsim_mkfs() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 300 << 20,
            many: 3000,
        },
    );
}

#[test]
fn round_trip_1g_real_mke2fs() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::real_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 300 << 20,
            many: 3000,
        },
    );
}

/// 1 GiB grown to 8 GiB by ebsim's resize2fs: new groups with
/// BLOCK_UNINIT/INODE_UNINIT and no zeroed inode tables; the
/// preallocation runs through them.
#[test]
fn round_trip_grown_1g_to_8g() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    let o = ext4_util::resize2fs_to(true, &img, "8G");
    assert!(o.status.success(), "resize2fs: {}", common::stderr(&o));
    round_trip(
        &img,
        TreeSpec {
            prealloc: 6 * GIB,
            many: 3000,
        },
    );
}

/// 200 GiB with a 150 GiB preallocation (a depth-1 tree of about 1300
/// unwritten extents).
#[test]
fn round_trip_200g_with_150g_fallocate() {
    if !require_tools(&["e2fsck", "mkfs.ext4"]) || !common::require_mount() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    ext4_util::sparse_file(&img, 200 * GIB);
    ext4_util::ebsim_mkfs(&img, &[]);
    round_trip(
        &img,
        TreeSpec {
            prealloc: 150 * GIB,
            many: 3000,
        },
    );
}
